//! Portal sign-in through an OpenID Connect identity source:
//! `GET /signin/oidc/{source}` sends the browser to the provider,
//! `GET /signin/oidc/{source}/callback` validates the answer and starts a portal
//! session. Anything wrong gets a page that says what happened and how to go on, an
//! audit event, and no session. The relying-party logic is in [`crate::idp::oidc`].

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use serde_json::json;

use super::AppState;
use super::audit::{audit, audit_anonymous};
use super::page::{
    PageError, cookie, host_cookie_name, path_segment, random_token, redirect, safe_return_to,
};
use super::request_info;
use super::session::start_session_with;
use crate::idp::oidc::{self, OidcConfig, OidcError};
use crate::service::admin_access::person_actor;
use crate::store::{IdentitySource, IdentitySourceKind, Outcome, StoreError};

/// Binds a started sign-in to the browser that started it (login CSRF): the pending
/// sign-in stores a hash of this cookie's value.
const BINDING_COOKIE: &str = "rg_oidc";

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/signin/oidc/{source}", web::get().to(begin))
        .route("/signin/oidc/{source}/callback", web::get().to(callback));
}

/// A federated way to sign in, shown as a link on the sign-in page. A link, not a
/// form: the CSP's `form-action 'self'` would block a form's redirect to the provider.
pub(crate) struct SignInSource {
    /// The local path that starts the sign-in (`return_to` is appended).
    pub(crate) action: String,
    pub(crate) name: String,
}

/// The enabled federated (OIDC and SAML) sources, as buttons for the sign-in page.
pub(crate) async fn signin_sources(state: &AppState) -> Vec<SignInSource> {
    match state.store.list_identity_sources().await {
        Ok(sources) => sources
            .into_iter()
            .filter(|s| s.enabled)
            .filter_map(|s| {
                let action = match s.kind {
                    IdentitySourceKind::Oidc => format!("/signin/oidc/{}", path_segment(&s.id)),
                    IdentitySourceKind::Saml => super::saml_login::login_path(&s.id),
                    IdentitySourceKind::Directory => return None,
                };
                Some(SignInSource {
                    action,
                    name: s.display_name,
                })
            })
            .collect(),
        Err(error) => {
            tracing::error!(%error, "cannot list identity sources");
            Vec::new()
        }
    }
}

/// An enabled OIDC source, or why not.
async fn load_source(state: &AppState, id: &str) -> Result<IdentitySource, OidcError> {
    load(state, id, false).await
}

/// An OIDC source; enabled, unless for an admin's test sign-in (`test`), which may
/// try a source before it is turned on.
async fn load(state: &AppState, id: &str, test: bool) -> Result<IdentitySource, OidcError> {
    match state.store.get_identity_source(id).await {
        Ok(source) if (source.enabled || test) && source.kind == IdentitySourceKind::Oidc => {
            Ok(source)
        }
        Ok(_) | Err(StoreError::NotFound { .. }) => Err(OidcError::UnknownSource(id.to_owned())),
        Err(error) => Err(OidcError::Unavailable(error.to_string())),
    }
}

/// The page for a failed sign-in, after auditing and logging why. A failed test
/// sign-in (`test_by`: the admin who started it) is audited as that admin's, and its
/// page leads back to the source's admin page.
async fn failed(
    state: &AppState,
    request: &HttpRequest,
    source_id: &str,
    error: &OidcError,
    test_by: Option<&str>,
) -> HttpResponse {
    let outcome = match error {
        OidcError::ProviderError { .. } => Outcome::Denied,
        _ => Outcome::Failure,
    };
    tracing::warn!(source = source_id, code = error.code(), reason = %error, test = test_by.is_some(), "OIDC sign-in failed");
    let details = json!({ "method": "oidc", "code": error.code(), "reason": error.to_string() });
    match test_by {
        None => {
            audit_anonymous(
                state,
                request,
                "anonymous",
                "portal:SignIn",
                source_id,
                outcome,
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
                outcome,
                details,
            )
            .await
        }
    }
    let again = "Start the sign-in again from the sign-in page.";
    let (status, title, message) = match error {
        OidcError::UnknownSource(_) => (
            StatusCode::NOT_FOUND,
            "Unknown sign-in method",
            "This sign-in method does not exist or is turned off. Choose another way to sign in."
                .to_owned(),
        ),
        OidcError::Misconfigured(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "Sign-in method not set up correctly",
            "This sign-in method is misconfigured in Rolegate. Tell your Rolegate administrator; meanwhile, choose another way to sign in.".to_owned(),
        ),
        OidcError::Provider(_) | OidcError::UserInfo(_) => (
            StatusCode::BAD_GATEWAY,
            "Identity provider unavailable",
            "Rolegate could not reach your identity provider, or did not understand its answer. Try again in a moment.".to_owned(),
        ),
        OidcError::Unavailable(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "Sign-in unavailable",
            "Sign-in is unavailable right now. Try again in a moment.".to_owned(),
        ),
        OidcError::MissingState
        | OidcError::UnknownState
        | OidcError::ReplayedState
        | OidcError::SourceMismatch
        | OidcError::BrowserMismatch
        | OidcError::IssuerMismatch(_)
        | OidcError::MissingCode => (
            StatusCode::BAD_REQUEST,
            "Sign-in expired or already used",
            format!(
                "This sign-in response is not one Rolegate is waiting for: it has expired (a sign-in must finish within {} minutes), was already used, or was started in another browser. You are not signed in. {again}",
                oidc::LOGIN_TTL.as_secs() / 60
            ),
        ),
        OidcError::ProviderError { error, .. } if error == "access_denied" => (
            StatusCode::FORBIDDEN,
            "Sign-in declined",
            format!("Your identity provider did not sign you in (access denied): the sign-in was cancelled, or your account may not use Rolegate. {again} If you should have access, ask your administrator."),
        ),
        OidcError::ProviderError { error, .. } => (
            StatusCode::UNAUTHORIZED,
            "Sign-in not completed",
            format!(
                "Your identity provider ended the sign-in with the error \u{201c}{}\u{201d}. {again}",
                error.chars().filter(|c| c.is_ascii_graphic()).take(64).collect::<String>()
            ),
        ),
        OidcError::CodeRejected(_) => (
            StatusCode::UNAUTHORIZED,
            "Sign-in not completed",
            format!("Your identity provider did not accept this sign-in (it may have been used already or have expired). {again}"),
        ),
        OidcError::MissingIdToken
        | OidcError::WrongIssuer(_)
        | OidcError::WrongAudience(_)
        | OidcError::Expired(_)
        | OidcError::WrongNonce(_)
        | OidcError::BadSignature(_)
        | OidcError::InvalidToken(_) => {
            let what = match error {
                OidcError::WrongIssuer(_) => "it was issued by a different identity provider",
                OidcError::WrongAudience(_) => "it was issued for a different application",
                OidcError::Expired(_) => "it has expired or is not valid yet (check the clocks of Rolegate and the identity provider)",
                OidcError::WrongNonce(_) => "it belongs to a different sign-in",
                OidcError::BadSignature(_) => "it is not signed with the identity provider's key",
                _ => "it is missing or malformed",
            };
            (
                StatusCode::UNAUTHORIZED,
                "Sign-in could not be verified",
                format!("The identity provider's answer failed Rolegate's checks: {what}. You are not signed in. {again} If this keeps happening, tell your administrator."),
            )
        }
        OidcError::Claims(_) => (
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
    let source = match load_source(&state, &source_id).await {
        Ok(source) => source,
        Err(error) => return failed(&state, &request, &source_id, &error, None).await,
    };
    // Fresh for every sign-in, never taken from the request: a value planted in the
    // browser (say by a sibling subdomain over http) must not bind anything. Over
    // https the cookie is `__Host-` prefixed, which only this origin can set.
    let binding = random_token(&state.random);
    let started = state
        .oidc
        .begin(
            &source,
            &callback_url(&request, &source_id),
            &return_to,
            &binding,
        )
        .await;
    match started {
        Ok(url) => to_provider(&request, &url, binding),
        Err(error) => failed(&state, &request, &source_id, &error, None).await,
    }
}

/// The callback every sign-in at `source_id` returns to (the one registered at the
/// provider; test sign-ins use it too).
fn callback_url(request: &HttpRequest, source_id: &str) -> String {
    format!(
        "{}/signin/oidc/{}/callback",
        request_info::public_origin(request),
        path_segment(source_id)
    )
}

/// The redirect to the provider, with the browser-binding cookie.
fn to_provider(request: &HttpRequest, url: &str, binding: String) -> HttpResponse {
    let mut response = redirect(url);
    let name = host_cookie_name(request, BINDING_COOKIE);
    let _ = response.add_cookie(&cookie(request, &name, binding));
    response
}

/// What test sign-ins are audited as.
pub(crate) use crate::service::sign_in_test::TEST_ACTION;

/// Starts the admin `admin`'s (audit actor) test sign-in at OIDC source
/// `source_id`: the real flow, in this browser, also for a source not enabled yet.
/// Its callback starts no portal session: the admin's own session stays as it is,
/// and the browser lands on the source's test-result page.
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
        .oidc
        .begin_test(&source, &callback_url(request, source_id), admin, &binding)
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
                json!({ "stage": "started", "enabled": source.enabled }),
            )
            .await;
            to_provider(request, &url, binding)
        }
        Err(error) => failed(state, request, source_id, &error, Some(admin)).await,
    }
}

#[derive(Deserialize)]
struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
    /// RFC 9207: the issuer the response comes from, when the provider says.
    iss: Option<String>,
}

async fn callback(
    state: web::Data<AppState>,
    request: HttpRequest,
    path: web::Path<String>,
) -> HttpResponse {
    let source_id = path.into_inner();
    let (query, pending) = match received(&state, &request).await {
        Ok(received) => received,
        Err(error) => return failed(&state, &request, &source_id, &error, None).await,
    };
    let test_by = pending.test_by.clone();
    let finished = match &test_by {
        None => finish(&state, &request, &source_id, query, pending).await,
        Some(admin) => finish_test(&state, &request, &source_id, query, pending, admin).await,
    };
    match finished {
        Ok(response) => response,
        Err(error) => failed(&state, &request, &source_id, &error, test_by.as_deref()).await,
    }
}

/// The callback's query and the pending sign-in its `state` names (consumed before
/// anything else: whatever happens next, this state is spent).
async fn received(
    state: &AppState,
    request: &HttpRequest,
) -> Result<(CallbackQuery, oidc::PendingLogin), OidcError> {
    let query: CallbackQuery =
        serde_urlencoded::from_str(request.query_string()).map_err(|_| OidcError::MissingState)?;
    let Some(state_param) = query.state.as_deref().filter(|s| !s.is_empty()) else {
        return Err(provider_error(&query).unwrap_or(OidcError::MissingState));
    };
    let pending = state.oidc.take_pending(state_param).await?;
    Ok((query, pending))
}

/// The provider's own error in the callback, if it sent one.
fn provider_error(query: &CallbackQuery) -> Option<OidcError> {
    query.error.as_ref().map(|error| OidcError::ProviderError {
        error: error.chars().take(64).collect(),
        description: query
            .error_description
            .as_ref()
            .map(|d| d.chars().take(200).collect()),
    })
}

/// The checks every callback passes before its code is redeemed: the same source and
/// browser as the sign-in started with, the issuer (RFC 9207), no provider error, a
/// code. Returns the source and the code.
async fn checked(
    state: &AppState,
    request: &HttpRequest,
    source_id: &str,
    query: CallbackQuery,
    pending: &oidc::PendingLogin,
) -> Result<(IdentitySource, String), OidcError> {
    if pending.source_id != source_id {
        return Err(OidcError::SourceMismatch);
    }
    let browser = request
        .cookie(&host_cookie_name(request, BINDING_COOKIE))
        .map(|c| c.value().to_owned());
    if !oidc::same_browser(pending, browser.as_deref()) {
        return Err(OidcError::BrowserMismatch);
    }
    let source = load(state, source_id, pending.test_by.is_some()).await?;
    if let Some(iss) = &query.iss {
        let config = OidcConfig::from_source(&source)?;
        if *iss != config.issuer {
            return Err(OidcError::IssuerMismatch(iss.chars().take(200).collect()));
        }
    }
    if let Some(error) = provider_error(&query) {
        return Err(error);
    }
    let code = query
        .code
        .filter(|c| !c.is_empty() && c.len() <= 4096)
        .ok_or(OidcError::MissingCode)?;
    Ok((source, code))
}

async fn finish(
    state: &AppState,
    request: &HttpRequest,
    source_id: &str,
    query: CallbackQuery,
    pending: oidc::PendingLogin,
) -> Result<HttpResponse, OidcError> {
    let (source, code) = checked(state, request, source_id, query, &pending).await?;
    let signed_in = state.oidc.complete(&source, &pending, &code).await?;
    Ok(start_session_with(
        state,
        request,
        signed_in.identity,
        &pending.return_to,
        Some(signed_in.id_token),
    )
    .await)
}

/// The end of an admin's test sign-in: only in that admin's own session (still an
/// admin), it redeems the code as a sign-in would, starts no session, keeps what
/// the source sent once for the admin, and sends the browser to the result page.
async fn finish_test(
    state: &AppState,
    request: &HttpRequest,
    source_id: &str,
    query: CallbackQuery,
    pending: oidc::PendingLogin,
    admin: &str,
) -> Result<HttpResponse, OidcError> {
    let (source, code) = checked(state, request, source_id, query, &pending).await?;
    let same_admin = match super::session::session(state, request).await {
        Some((_, session)) => {
            state.admin.is_admin(&session.identity) && person_actor(&session.identity) == admin
        }
        None => false,
    };
    if !same_admin {
        audit(
            state,
            request,
            admin,
            TEST_ACTION,
            source_id,
            Outcome::Denied,
            json!({ "stage": "completed", "reason": "the test's callback came without the admin session that started it" }),
        )
        .await;
        return Ok(PageError::new(
            StatusCode::FORBIDDEN,
            "Test sign-in not yours",
            "This test sign-in was started by an administrator whose session this browser does not hold (any more). Nothing was signed in. Start the test again from the identity source's admin page.",
        )
        .next("/admin/identity-sources", "Identity sources")
        .into_response());
    }
    let signed_in = state.oidc.complete(&source, &pending, &code).await?;
    super::test_sign_in::complete(
        state,
        request,
        admin,
        source_id,
        "oidc",
        signed_in.identity,
        signed_in.claims,
    )
    .await
    .map_err(OidcError::Unavailable)
}

/// The provider's end-session URL (RP-initiated logout) for a portal session of an
/// OIDC sign-in, with the source's display name, when the provider advertises one.
pub(crate) async fn provider_logout_url(
    state: &AppState,
    request: &HttpRequest,
    source_id: &str,
    id_token: &str,
) -> Option<(String, String)> {
    let source = load_source(state, source_id).await.ok()?;
    let fallback = format!("{}/signin", request_info::public_origin(request));
    match state.oidc.logout_url(&source, id_token, &fallback).await {
        Ok(url) => url.map(|url| (url, source.display_name)),
        Err(error) => {
            tracing::warn!(source = source_id, reason = %error, "no RP-initiated logout");
            None
        }
    }
}
