//! Portal sign-in through an OpenID Connect identity source:
//! `GET /signin/oidc/{source}` sends the browser to the provider,
//! `GET /signin/oidc/{source}/callback` validates the answer and starts a portal
//! session. Anything wrong gets a page that says what happened and how to go on, an
//! audit event, and no session. The relying-party logic is in [`crate::idp::oidc`].

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use serde::Deserialize;
use serde_json::json;

use super::AppState;
use super::audit::audit_anonymous;
use super::page::{PageError, cookie, host_cookie_name, random_token, redirect, safe_return_to};
use super::request_info;
use super::session::start_session_with;
use crate::idp::oidc::{self, OidcConfig, OidcError};
use crate::store::{IdentitySource, IdentitySourceKind, Outcome, StoreError};

/// Binds a started sign-in to the browser that started it (login CSRF): the pending
/// sign-in stores a hash of this cookie's value.
const BINDING_COOKIE: &str = "rg_oidc";

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/signin/oidc/{source}", web::get().to(begin))
        .route("/signin/oidc/{source}/callback", web::get().to(callback));
}

fn path_segment(value: &str) -> String {
    utf8_percent_encode(value, NON_ALPHANUMERIC).to_string()
}

/// A federated way to sign in, shown as a link on the sign-in page. A link, not a
/// form: the CSP's `form-action 'self'` would block a form's redirect to the provider.
pub(crate) struct SignInSource {
    /// The local path that starts the sign-in (`return_to` is appended).
    pub(crate) action: String,
    pub(crate) name: String,
}

/// The enabled OIDC sources, as buttons for the sign-in page.
pub(crate) async fn signin_sources(state: &AppState) -> Vec<SignInSource> {
    match state.store.list_identity_sources().await {
        Ok(sources) => sources
            .into_iter()
            .filter(|s| s.enabled && s.kind == IdentitySourceKind::Oidc)
            .map(|s| SignInSource {
                action: format!("/signin/oidc/{}", path_segment(&s.id)),
                name: s.display_name,
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
    match state.store.get_identity_source(id).await {
        Ok(source) if source.enabled && source.kind == IdentitySourceKind::Oidc => Ok(source),
        Ok(_) | Err(StoreError::NotFound { .. }) => Err(OidcError::UnknownSource(id.to_owned())),
        Err(error) => Err(OidcError::Unavailable(error.to_string())),
    }
}

/// The page for a failed sign-in, after auditing and logging why.
async fn failed(
    state: &AppState,
    request: &HttpRequest,
    source_id: &str,
    error: &OidcError,
) -> HttpResponse {
    let outcome = match error {
        OidcError::ProviderError { .. } => Outcome::Denied,
        _ => Outcome::Failure,
    };
    tracing::warn!(source = source_id, code = error.code(), reason = %error, "OIDC sign-in failed");
    audit_anonymous(
        state,
        request,
        "anonymous",
        "portal:SignIn",
        source_id,
        outcome,
        json!({ "method": "oidc", "code": error.code(), "reason": error.to_string() }),
    )
    .await;
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
    PageError::new(status, title, message)
        .next("/signin", "Back to sign-in")
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
        Err(error) => return failed(&state, &request, &source_id, &error).await,
    };
    // Fresh for every sign-in, never taken from the request: a value planted in the
    // browser (say by a sibling subdomain over http) must not bind anything. Over
    // https the cookie is `__Host-` prefixed, which only this origin can set.
    let binding = random_token(&state.random);
    let callback = format!(
        "{}/signin/oidc/{}/callback",
        request_info::public_origin(&request),
        path_segment(&source_id)
    );
    match state
        .oidc
        .begin(&source, &callback, &return_to, &binding)
        .await
    {
        Ok(url) => {
            let mut response = redirect(&url);
            let name = host_cookie_name(&request, BINDING_COOKIE);
            let _ = response.add_cookie(&cookie(&request, &name, binding));
            response
        }
        Err(error) => failed(&state, &request, &source_id, &error).await,
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
    match finish(&state, &request, &source_id).await {
        Ok(response) => response,
        Err(error) => failed(&state, &request, &source_id, &error).await,
    }
}

async fn finish(
    state: &AppState,
    request: &HttpRequest,
    source_id: &str,
) -> Result<HttpResponse, OidcError> {
    let query: CallbackQuery =
        serde_urlencoded::from_str(request.query_string()).map_err(|_| OidcError::MissingState)?;
    let provider_error = query.error.map(|error| OidcError::ProviderError {
        error: error.chars().take(64).collect(),
        description: query
            .error_description
            .map(|d| d.chars().take(200).collect()),
    });
    let Some(state_param) = query.state.filter(|s| !s.is_empty()) else {
        return Err(provider_error.unwrap_or(OidcError::MissingState));
    };
    // Consumed before anything else: whatever happens next, this state is spent.
    let pending = state.oidc.take_pending(&state_param).await?;
    if pending.source_id != source_id {
        return Err(OidcError::SourceMismatch);
    }
    let browser = request
        .cookie(&host_cookie_name(request, BINDING_COOKIE))
        .map(|c| c.value().to_owned());
    if !oidc::same_browser(&pending, browser.as_deref()) {
        return Err(OidcError::BrowserMismatch);
    }
    let source = load_source(state, source_id).await?;
    if let Some(iss) = query.iss {
        let config = OidcConfig::from_source(&source)?;
        if iss != config.issuer {
            return Err(OidcError::IssuerMismatch(iss.chars().take(200).collect()));
        }
    }
    if let Some(error) = provider_error {
        return Err(error);
    }
    let code = query
        .code
        .filter(|c| !c.is_empty() && c.len() <= 4096)
        .ok_or(OidcError::MissingCode)?;
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
