//! Portal sign-in through a SAML identity source:
//! `GET /saml/{source}/metadata` is Rolegate's SP metadata for the IdP,
//! `GET /saml/{source}/login` sends the browser to the IdP with an AuthnRequest
//! (HTTP-Redirect binding), and `POST /saml/{source}/acs` takes the IdP's answer
//! (HTTP-POST binding), verifies it and starts a portal session exactly as an OIDC
//! sign-in does (deep links and the device approval page included). Anything wrong
//! gets a page that says what happened, an audit event with the reason code and the
//! IdP (never the response), and no session. The flow is
//! [`crate::service::saml_login`].
//!
//! The ACS is a cross-site POST from the IdP, so it has no CSRF token of ours: what
//! binds a response to this browser is the single-use `RelayState` of an
//! SP-initiated sign-in, whose record holds the AuthnRequest ID (the response's
//! InResponseTo) and a hash of the browser-binding cookie set when the sign-in began.
//! Over https that cookie is `SameSite=None` (`__Host-`, Secure) so that the IdP's
//! cross-site POST carries it.

use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use serde_json::json;

use super::AppState;
use super::audit::{audit, audit_anonymous};
use super::page::{
    PageError, host_cookie_name, path_segment, random_token, redirect, safe_return_to,
};
use super::request_info;
use super::session::start_session_with;
use crate::idp::saml::SamlError;
use crate::service::saml_login::{
    self, MAX_RESPONSE_CHARS, PendingRequest, SamlLogin, SamlLoginError,
};
use crate::service::sign_in_test::TEST_ACTION;
use crate::store::{IdentitySource, IdentitySourceKind, Outcome, StoreError};

/// Binds a started sign-in to the browser that started it.
const BINDING_COOKIE: &str = "rg_saml";
/// The largest ACS body read: a 100,000-character response, URL-encoded, and room.
const MAX_ACS_BODY: usize = 400 * 1024;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/saml/{source}/metadata", web::get().to(metadata))
        .route("/saml/{source}/login", web::get().to(begin))
        .route("/saml/{source}/acs", web::post().to(acs));
}

/// The path that starts a sign-in at SAML source `id` (the sign-in page's button).
pub(crate) fn login_path(id: &str) -> String {
    format!("/saml/{}/login", path_segment(id))
}

/// A SAML source; enabled, unless for an admin's test sign-in (`test`).
async fn load(state: &AppState, id: &str, test: bool) -> Result<IdentitySource, SamlLoginError> {
    match state.store.get_identity_source(id).await {
        Ok(source) if (source.enabled || test) && source.kind == IdentitySourceKind::Saml => {
            Ok(source)
        }
        Ok(_) | Err(StoreError::NotFound { .. }) => {
            Err(SamlLoginError::UnknownSource(id.to_owned()))
        }
        Err(error) => Err(SamlLoginError::Unavailable(error.to_string())),
    }
}

/// The page for a failed sign-in, after auditing and logging why (with the IdP's
/// entityID when the source names one). A failed test sign-in (`test_by`) is
/// audited as that admin's and leads back to the source's admin page.
async fn failed(
    state: &AppState,
    request: &HttpRequest,
    source_id: &str,
    error: &SamlLoginError,
    test_by: Option<&str>,
) -> HttpResponse {
    let idp = match state.store.get_identity_source(source_id).await {
        Ok(source) => SamlLogin::idp_entity_id(&source),
        Err(_) => None,
    };
    tracing::warn!(source = source_id, idp = idp.as_deref().unwrap_or("-"), code = error.code(), reason = %error, test = test_by.is_some(), "SAML sign-in failed");
    let details = json!({
        "method": "saml",
        "code": error.code(),
        "reason": error.to_string(),
        "idp": idp,
    });
    match test_by {
        None => {
            audit_anonymous(
                state,
                request,
                "anonymous",
                "portal:SignIn",
                source_id,
                Outcome::Failure,
                details,
            )
            .await
        }
        Some(admin) => {
            audit(
                state,
                request,
                admin,
                TEST_ACTION,
                source_id,
                Outcome::Failure,
                details,
            )
            .await
        }
    }
    let again = "Start the sign-in again from the sign-in page.";
    let (status, title, message) = match error {
        SamlLoginError::UnknownSource(_) => (
            StatusCode::NOT_FOUND,
            "Unknown sign-in method",
            "This sign-in method does not exist or is turned off. Choose another way to sign in."
                .to_owned(),
        ),
        SamlLoginError::Misconfigured(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "Sign-in method not set up correctly",
            "This sign-in method is misconfigured in Rolegate. Tell your Rolegate administrator; meanwhile, choose another way to sign in.".to_owned(),
        ),
        SamlLoginError::Unavailable(_) | SamlLoginError::Rejected(SamlError::Unavailable(_)) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "Sign-in unavailable",
            "Sign-in is unavailable right now. Try again in a moment.".to_owned(),
        ),
        SamlLoginError::MissingResponse => (
            StatusCode::BAD_REQUEST,
            "No sign-in response",
            format!("This page takes the answer of your identity provider, and none came with the request. You are not signed in. {again}"),
        ),
        SamlLoginError::TooLarge => (
            StatusCode::PAYLOAD_TOO_LARGE,
            "Sign-in response too large",
            format!("The identity provider's answer is larger than Rolegate accepts ({MAX_RESPONSE_CHARS} characters). You are not signed in. {again} If this keeps happening, tell your administrator."),
        ),
        SamlLoginError::UnknownRelayState
        | SamlLoginError::ReplayedRelayState
        | SamlLoginError::SourceMismatch
        | SamlLoginError::BrowserMismatch => (
            StatusCode::BAD_REQUEST,
            "Sign-in expired or already used",
            format!(
                "This sign-in response is not one Rolegate is waiting for: it has expired (a sign-in must finish within {} minutes), was already used, or was started in another browser. You are not signed in. {again}",
                saml_login::LOGIN_TTL.as_secs() / 60
            ),
        ),
        SamlLoginError::IdpInitiatedNotAllowed => (
            StatusCode::FORBIDDEN,
            "Sign-in must start at Rolegate",
            "Your identity provider sent a sign-in that Rolegate did not ask for, and this sign-in method accepts only sign-ins started at Rolegate. You are not signed in. Start from Rolegate's sign-in page instead of your identity provider's portal.".to_owned(),
        ),
        SamlLoginError::Rejected(rejected) => {
            let what = match rejected.code() {
                "replayed" => "it was already used once (a response can be used only once)",
                "expired" | "not_yet_valid" => "it has expired or is not valid yet (check the clocks of Rolegate and the identity provider)",
                "wrong_issuer" => "it comes from a different identity provider",
                "wrong_audience" | "wrong_recipient" | "wrong_destination" => "it was issued for a different application",
                "unknown_in_response_to" => "it answers a sign-in Rolegate did not start",
                "unsigned" | "untrusted_signature" | "weak_algorithm" => "it is not signed with the identity provider's key",
                _ => "it is malformed or not what a signed sign-in response must be",
            };
            (
                StatusCode::UNAUTHORIZED,
                "Sign-in could not be verified",
                format!("The identity provider's answer failed Rolegate's checks: {what}. You are not signed in. {again} If this keeps happening, tell your administrator."),
            )
        }
        SamlLoginError::Claims(_) => (
            StatusCode::UNAUTHORIZED,
            "Account not usable",
            "Your identity provider signed you in, but did not say who you are in a way Rolegate can use. Tell your administrator.".to_owned(),
        ),
    };
    let page = PageError::new(status, title, message);
    match test_by {
        None => page.next("/signin", "Back to sign-in"),
        Some(_) => page.next(
            format!("/admin/identity-sources/{}", path_segment(source_id)),
            "Back to the identity source",
        ),
    }
    .into_response()
}

/// `GET /saml/{source}/metadata`: the SP metadata to give the IdP (also for a
/// disabled source, so that it can be registered before it is turned on).
async fn metadata(
    state: web::Data<AppState>,
    request: HttpRequest,
    path: web::Path<String>,
) -> HttpResponse {
    let source_id = path.into_inner();
    let source = match load(&state, &source_id, true).await {
        Ok(source) => source,
        Err(error) => return failed(&state, &request, &source_id, &error, None).await,
    };
    match SamlLogin::sp_metadata(&source, &request_info::public_origin(&request)) {
        Ok(xml) => HttpResponse::Ok()
            .content_type("application/samlmetadata+xml")
            .insert_header((
                header::CONTENT_DISPOSITION,
                format!("inline; filename=\"rolegate-{source_id}-sp-metadata.xml\""),
            ))
            .body(xml),
        Err(error) => failed(&state, &request, &source_id, &error, None).await,
    }
}

#[derive(Deserialize)]
struct BeginQuery {
    return_to: Option<String>,
}

async fn begin(
    state: web::Data<AppState>,
    request: HttpRequest,
    path: web::Path<String>,
    query: web::Query<BeginQuery>,
) -> HttpResponse {
    let source_id = path.into_inner();
    let return_to = safe_return_to(query.return_to.as_deref().unwrap_or("/start")).to_owned();
    let source = match load(&state, &source_id, false).await {
        Ok(source) => source,
        Err(error) => return failed(&state, &request, &source_id, &error, None).await,
    };
    // Fresh for every sign-in, never taken from the request (as for OIDC).
    let binding = random_token(&state.random);
    let started = state
        .saml
        .begin(
            &source,
            &request_info::public_origin(&request),
            &return_to,
            &binding,
            None,
        )
        .await;
    match started {
        Ok(url) => to_idp(&request, &url, binding),
        Err(error) => failed(&state, &request, &source_id, &error, None).await,
    }
}

/// The browser-binding cookie: over https `__Host-`, Secure and `SameSite=None`,
/// since the IdP's POST to the ACS is cross-site; over plain http (development, no
/// `SameSite=None` without Secure) `Lax`, which holds for an IdP on the same site.
fn binding_cookie(request: &HttpRequest, value: String) -> Cookie<'static> {
    let https = request_info::is_https(request);
    Cookie::build(host_cookie_name(request, BINDING_COOKIE), value)
        .path("/")
        .http_only(true)
        .secure(https)
        .same_site(if https { SameSite::None } else { SameSite::Lax })
        .max_age(actix_web::cookie::time::Duration::seconds(
            i64::try_from(saml_login::LOGIN_TTL.as_secs()).unwrap_or(600),
        ))
        .finish()
}

/// The redirect to the IdP, with the browser-binding cookie.
fn to_idp(request: &HttpRequest, url: &str, binding: String) -> HttpResponse {
    let mut response = redirect(url);
    let _ = response.add_cookie(&binding_cookie(request, binding));
    response
}

/// Starts the admin `admin`'s (audit actor) test sign-in at SAML source
/// `source_id`: the real flow, in this browser, also for a source not enabled yet.
/// Its ACS starts no portal session; the browser lands on the test-result page.
pub(crate) async fn begin_test(
    state: &AppState,
    request: &HttpRequest,
    source_id: &str,
    admin: &str,
) -> HttpResponse {
    let source = match load(state, source_id, true).await {
        Ok(source) => source,
        Err(error) => return failed(state, request, source_id, &error, Some(admin)).await,
    };
    let binding = random_token(&state.random);
    let started = state
        .saml
        .begin(
            &source,
            &request_info::public_origin(request),
            "/admin",
            &binding,
            Some(admin.to_owned()),
        )
        .await;
    match started {
        Ok(url) => {
            audit(
                state,
                request,
                admin,
                TEST_ACTION,
                source_id,
                Outcome::Success,
                json!({ "stage": "started", "method": "saml", "enabled": source.enabled }),
            )
            .await;
            to_idp(request, &url, binding)
        }
        Err(error) => failed(state, request, source_id, &error, Some(admin)).await,
    }
}

#[derive(Deserialize)]
struct AcsForm {
    #[serde(rename = "SAMLResponse")]
    saml_response: Option<String>,
    #[serde(rename = "RelayState")]
    relay_state: Option<String>,
}

/// The posted form, read up to [`MAX_ACS_BODY`] bytes; the response's size is the
/// first thing checked.
async fn read_form(payload: web::Payload) -> Result<AcsForm, SamlLoginError> {
    let body = match payload.to_bytes_limited(MAX_ACS_BODY).await {
        Ok(Ok(body)) => body,
        Ok(Err(_)) => return Err(SamlLoginError::MissingResponse),
        Err(_) => return Err(SamlLoginError::TooLarge),
    };
    let form: AcsForm =
        serde_urlencoded::from_bytes(&body).map_err(|_| SamlLoginError::MissingResponse)?;
    match &form.saml_response {
        Some(response) if response.chars().count() > MAX_RESPONSE_CHARS => {
            Err(SamlLoginError::TooLarge)
        }
        Some(response) if !response.trim().is_empty() => Ok(form),
        _ => Err(SamlLoginError::MissingResponse),
    }
}

/// `POST /saml/{source}/acs`.
async fn acs(
    state: web::Data<AppState>,
    request: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
) -> HttpResponse {
    let source_id = path.into_inner();
    let form = match read_form(payload).await {
        Ok(form) => form,
        Err(error) => return failed(&state, &request, &source_id, &error, None).await,
    };
    let relay_state = form.relay_state.as_deref().unwrap_or_default();
    // An SP-initiated sign-in's record is spent before anything else: whatever
    // happens next, this RelayState cannot be used again.
    let pending = if relay_state.is_empty() {
        None
    } else {
        match state.saml.take_pending(relay_state).await {
            Ok(pending) => Some(pending),
            Err(error) => return failed(&state, &request, &source_id, &error, None).await,
        }
    };
    let test_by = pending.as_ref().and_then(|p| p.test_by.clone());
    let response = form.saml_response.unwrap_or_default();
    let finished = finish(&state, &request, &source_id, pending, &response).await;
    match finished {
        Ok(response) => response,
        Err(error) => failed(&state, &request, &source_id, &error, test_by.as_deref()).await,
    }
}

/// The checks and the verification, then the session (or, for a test sign-in, the
/// result page).
async fn finish(
    state: &AppState,
    request: &HttpRequest,
    source_id: &str,
    pending: Option<PendingRequest>,
    saml_response: &str,
) -> Result<HttpResponse, SamlLoginError> {
    if let Some(pending) = &pending {
        if pending.source_id != source_id {
            return Err(SamlLoginError::SourceMismatch);
        }
        let browser = request
            .cookie(&host_cookie_name(request, BINDING_COOKIE))
            .map(|c| c.value().to_owned());
        if !saml_login::same_browser(pending, browser.as_deref()) {
            return Err(SamlLoginError::BrowserMismatch);
        }
    }
    let test_by = pending.as_ref().and_then(|p| p.test_by.clone());
    let source = load(state, source_id, test_by.is_some()).await?;
    let signed_in = state
        .saml
        .complete(
            &source,
            pending.as_ref(),
            &request_info::public_origin(request),
            saml_response,
        )
        .await?;
    let actor = match &test_by {
        Some(admin) => admin.clone(),
        None => signed_in.identity.user_name.clone(),
    };
    audit(
        state,
        request,
        &actor,
        "saml:AcceptAssertion",
        source_id,
        Outcome::Success,
        json!({
            "idp": signed_in.issuer,
            "assertion_id": signed_in.assertion_id,
            "sp_initiated": pending.is_some(),
            "test": test_by.is_some(),
        }),
    )
    .await;
    if let Some(admin) = test_by {
        return finish_test(state, request, source_id, signed_in, &admin).await;
    }
    let return_to = pending
        .map(|p| p.return_to)
        .unwrap_or_else(|| "/start".to_owned());
    let mut response =
        start_session_with(state, request, signed_in.identity, &return_to, None).await;
    // The binding did its work: the browser need not keep it.
    let mut spent = binding_cookie(request, String::new());
    spent.make_removal();
    let _ = response.add_cookie(&spent);
    Ok(response)
}

/// The end of an admin's test sign-in: no session; what the IdP sent is kept once
/// for that admin (only they can read it: the result page checks) and the browser
/// goes to the result page. Unlike OIDC's, the ACS does not look for the admin's
/// session here: the IdP's cross-site POST does not carry it.
async fn finish_test(
    state: &AppState,
    request: &HttpRequest,
    source_id: &str,
    signed_in: saml_login::SignedIn,
    admin: &str,
) -> Result<HttpResponse, SamlLoginError> {
    super::test_sign_in::complete(
        state,
        request,
        admin,
        source_id,
        "saml",
        signed_in.identity,
        signed_in.claims,
    )
    .await
    .map_err(SamlLoginError::Unavailable)
}
