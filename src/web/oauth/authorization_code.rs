//! The portal pages of the authorization code grant (`/authorize`): the request is
//! checked by the device service, the signed-in person approves or denies the client,
//! and the answer goes back to the client's registered loopback redirect URI
//! (RFC 6749 §4.1.2). Codes and tokens are the service's.

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use serde::Deserialize;
use serde_json::json;

use super::approver;
use crate::service::device::{AuthorizationRequest, AuthorizeParams, RedirectRefusal, Refusal};
use crate::store::Outcome;
use crate::web::AppState;
use crate::web::audit::{audit, audit_anonymous};
use crate::web::page::{PageError, html, redirect};
use crate::web::session::{PortalSession, session, signed_in_form};

const ACTION: &str = "sso:Authorize";

/// `uri` with `params` added to its query.
fn with_query(uri: &str, params: &[(&str, &str)]) -> String {
    match reqwest::Url::parse(uri) {
        Ok(mut url) => {
            url.query_pairs_mut().extend_pairs(params);
            url.to_string()
        }
        Err(_) => uri.to_owned(),
    }
}

#[derive(Template)]
#[template(path = "authorize.html")]
struct AuthorizePage<'a> {
    display_name: &'a str,
    csrf: &'a str,
    client_name: &'a str,
    client_id: &'a str,
    response_type: &'a str,
    full_client_id: &'a str,
    redirect_uri: &'a str,
    state: &'a str,
    code_challenge: &'a str,
    scopes: &'a str,
}

/// A page that shows no form from a foreign client: the client or redirect URI of
/// the request cannot be trusted, so nothing goes back to it.
fn refusal_page() -> HttpResponse {
    PageError::new(StatusCode::BAD_REQUEST, "Sign-in request not valid", "This sign-in link is not valid: the application is unknown, its registration has expired, or it asked to return somewhere it did not register. Nothing was sent back to it. Start the sign-in again in your terminal (aws sso login).").next("/start", "Your accounts").into_response()
}

/// One audit record of `/authorize`: the signed-in person's, or an anonymous one
/// within the network's budget.
async fn record(
    state: &AppState,
    request: &HttpRequest,
    session: Option<&PortalSession>,
    action: &str,
    target: &str,
    outcome: Outcome,
    details: serde_json::Value,
) {
    match session {
        Some(session) => {
            let user = &session.identity.user_name;
            audit(state, request, user, action, target, outcome, details).await;
        }
        None => {
            audit_anonymous(
                state,
                request,
                "anonymous",
                action,
                target,
                outcome,
                details,
            )
            .await
        }
    }
}

/// Audits a refusal (within the network's anonymous budget when nobody is signed
/// in, see [`audit_anonymous`]) and renders it: a page, or the RFC 6749 §4.1.2.1
/// error on the client's redirect URI.
async fn refuse(
    state: &AppState,
    request: &HttpRequest,
    session: Option<&PortalSession>,
    refusal: Refusal,
) -> HttpResponse {
    match refusal {
        Refusal::Page { reason } => {
            record(
                state,
                request,
                session,
                ACTION,
                "authorize",
                Outcome::Failure,
                json!({ "reason": reason }),
            )
            .await;
            refusal_page()
        }
        Refusal::Redirect(redirect) => {
            let RedirectRefusal {
                client_name,
                client_id,
                redirect_uri,
                state: client_state,
                error,
                description,
            } = *redirect;
            record(
                state,
                request,
                session,
                ACTION,
                &client_name,
                if error == "access_denied" {
                    Outcome::Denied
                } else {
                    Outcome::Failure
                },
                json!({ "client_id": client_id, "error": error, "reason": description }),
            )
            .await;
            let mut params = vec![
                ("error", error),
                ("error_description", description.as_str()),
            ];
            if let Some(s) = client_state.as_deref() {
                params.push(("state", s));
            }
            crate::web::page::found(&with_query(&redirect_uri, &params))
        }
    }
}

/// `GET /authorize`: checks the request, signs the person in (keeping the whole
/// request as the way back), then asks them to approve the client.
pub(super) async fn authorize_page(
    state: web::Data<AppState>,
    request: HttpRequest,
    params: web::Query<AuthorizeParams>,
) -> HttpResponse {
    let signed_in = session(&state, &request).await.map(|(_, s)| s);
    let checked = match state.device.check_authorization(&params) {
        Ok(checked) => checked,
        Err(refusal) => return refuse(&state, &request, signed_in.as_ref(), refusal).await,
    };
    let Some(session) = signed_in else {
        let back = format!("/authorize?{}", request.query_string());
        return redirect(&format!(
            "/signin?return_to={}",
            utf8_percent_encode(&back, NON_ALPHANUMERIC)
        ));
    };
    approval_page(&session, &checked)
}

fn approval_page(session: &PortalSession, checked: &AuthorizationRequest) -> HttpResponse {
    let page = AuthorizePage {
        display_name: &session.identity.display_name,
        csrf: &session.csrf,
        client_name: &checked.client_name,
        client_id: &checked.short_client_id,
        response_type: "code",
        full_client_id: &checked.client_id,
        redirect_uri: &checked.redirect_uri,
        state: checked.state.as_deref().unwrap_or(""),
        code_challenge: &checked.code_challenge,
        scopes: &checked.scopes,
    };
    let Ok(body) = page.render() else {
        return refusal_page();
    };
    let mut response = html(StatusCode::OK, body);
    // The form's answer redirects to the client's loopback listener: the page's
    // `form-action` must allow that origin (and only it) or browsers stop there.
    if let Ok(url) = reqwest::Url::parse(&checked.redirect_uri) {
        let origin = url.origin().ascii_serialization();
        if let Ok(value) = header::HeaderValue::from_str(
            &crate::web::page::content_security_policy_with_form_action(&origin),
        ) {
            response
                .headers_mut()
                .insert(header::CONTENT_SECURITY_POLICY, value);
        }
    }
    response
}

#[derive(Deserialize)]
pub(super) struct AuthorizeForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    decision: String,
    #[serde(flatten)]
    params: AuthorizeParams,
}

/// `POST /authorize`: the person's Approve or Deny (the same CSRF guard as every
/// portal form), answered with a redirect to the client's registered loopback URI.
pub(super) async fn authorize_decision(
    state: web::Data<AppState>,
    request: HttpRequest,
    form: web::Form<AuthorizeForm>,
) -> HttpResponse {
    let form = form.into_inner();
    let session = match signed_in_form(&state, &request, &form.csrf, ACTION, "authorize").await {
        Ok(session) => session,
        Err(refusal) => return refusal,
    };
    let checked = match state.device.check_authorization(&form.params) {
        Ok(checked) => checked,
        Err(refusal) => return refuse(&state, &request, Some(&session), refusal).await,
    };
    match form.decision.as_str() {
        "approve" => {}
        "deny" => {
            let refusal = checked.refusal("access_denied", "The sign-in was denied in the browser");
            return refuse(&state, &request, Some(&session), refusal).await;
        }
        _ => return approval_page(&session, &checked),
    }
    let code = match state
        .device
        .issue_code(&checked, approver(&state, &session))
        .await
    {
        Ok(code) => code,
        Err(error) => {
            tracing::error!(%error, "sso-oidc: authorization code");
            // The client and its redirect URI are known good: tell the client, as
            // RFC 6749 §4.1.2.1 says, rather than leaving it waiting.
            let refusal = checked.refusal(
                "server_error",
                "Rolegate could not complete the sign-in; try again shortly",
            );
            return refuse(&state, &request, Some(&session), refusal).await;
        }
    };
    audit(
        &state,
        &request,
        &session.identity.user_name,
        ACTION,
        &checked.client_name,
        Outcome::Success,
        json!({ "client_id": checked.short_client_id, "decision": "approve" }),
    )
    .await;
    let mut params = vec![("code", code.as_str())];
    if let Some(s) = checked.state.as_deref() {
        params.push(("state", s));
    }
    crate::web::page::found(&with_query(&checked.redirect_uri, &params))
}
