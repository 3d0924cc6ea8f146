//! The web side of portal sessions (kept by [`crate::service::sessions`]): the
//! session cookie, the signed-in session extractor, the CSRF guard of every
//! state-changing form, and the sign-in response (audit, cookie, redirect).

use actix_web::cookie::Cookie;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
use serde_json::json;

use super::AppState;
use super::audit::audit;
use super::page::{PageError, cookie, redirect, safe_return_to, same};
use crate::idp::identity::Identity;
pub(crate) use crate::service::sessions::PortalSession;
use crate::service::sessions::{SessionError, Started};
use crate::store::Outcome;

const SESSION_COOKIE: &str = "rg_session";

/// The signed-in session, if the cookie names a live one: its id and the session.
pub(crate) async fn session(
    state: &AppState,
    request: &HttpRequest,
) -> Option<(String, PortalSession)> {
    let id = request.cookie(SESSION_COOKIE)?.value().to_owned();
    let session = state.sessions.find(&id).await?;
    Some((id, session))
}

/// After the user's sign-in settings changed (a second factor turned on or off):
/// ends their other sessions and terminal sign-ins, and renews this session under a
/// new id (returned as the cookie to set).
pub(crate) async fn end_other_sessions(
    state: &AppState,
    request: &HttpRequest,
    id: &str,
    session: PortalSession,
) -> Result<Cookie<'static>, SessionError> {
    let renewed = state.sessions.end_others(id, session).await?;
    Ok(cookie(request, SESSION_COOKIE, renewed).into_owned())
}

/// Creates a portal session for a signed-in identity (any identity source), audits
/// the sign-in, sets the session cookie and redirects to `return_to` (local only).
pub(crate) async fn start_session(
    state: &AppState,
    request: &HttpRequest,
    identity: Identity,
    return_to: &str,
) -> HttpResponse {
    start_session_with(state, request, identity, return_to, None).await
}

/// [`start_session`], keeping the OIDC ID token for RP-initiated logout.
pub(crate) async fn start_session_with(
    state: &AppState,
    request: &HttpRequest,
    identity: Identity,
    return_to: &str,
    id_token: Option<String>,
) -> HttpResponse {
    // Claims the mapping rules cannot take (more groups than the source allows)
    // refuse the sign-in: deciding on a silently cut list could grant or deny wrongly.
    if let Err(crate::service::entitlements::EntitlementError::Claims { code, message }) =
        state.entitlements.claims_of(&identity).await
    {
        audit(
            state,
            request,
            &identity.user_name,
            "portal:SignIn",
            &identity.source_id,
            Outcome::Denied,
            json!({ "code": code, "reason": message }),
        )
        .await;
        return PageError::new(StatusCode::FORBIDDEN, "Sign-in refused", message)
            .next("/signin", "Sign in")
            .into_response();
    }
    // A new sign-in in this browser replaces the one before.
    let previous = request.cookie(SESSION_COOKIE);
    let Started { id, session } = match state
        .sessions
        .start(identity, id_token, previous.as_ref().map(|c| c.value()))
        .await
    {
        Ok(started) => started,
        Err(error) => {
            tracing::error!(%error, "cannot store portal session");
            return PageError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "Sign-in unavailable",
                "Your sign-in could not be completed. Please try again shortly.",
            )
            .next("/signin", "Sign in")
            .into_response();
        }
    };
    // Kept for dry runs, impact reports and the access views; never a reason to
    // fail the sign-in.
    if let Err(error) = state.entitlements.record_sign_in(&session.identity).await {
        tracing::warn!(%error, "cannot record the sign-in for the mapping rules");
    }
    let source = session.identity.source_id.clone();
    audit(
        state,
        request,
        &session.identity.user_name,
        "portal:SignIn",
        &source,
        Outcome::Success,
        json!({ "groups": session.identity.groups }),
    )
    .await;
    let mut response = redirect(safe_return_to(return_to));
    let _ = response.add_cookie(&cookie(request, SESSION_COOKIE, id));
    response
}

/// The guard of every state-changing portal form: a live session (else off to
/// sign-in) and the session's CSRF token (else an audited refusal page).
pub(crate) async fn signed_in_form(
    state: &AppState,
    request: &HttpRequest,
    csrf: &str,
    action: &str,
    target: &str,
) -> Result<PortalSession, HttpResponse> {
    let Some((_, session)) = session(state, request).await else {
        return Err(redirect("/signin?return_to=/start"));
    };
    if !same(&session.csrf, csrf) {
        audit(
            state,
            request,
            &session.identity.user_name,
            action,
            target,
            Outcome::Denied,
            json!({ "reason": "missing or wrong CSRF token" }),
        )
        .await;
        return Err(PageError::new(StatusCode::FORBIDDEN, "Request not accepted", "This request did not come from your Rolegate page. Go back to your accounts and try again.").next("/start", "Your accounts").into_response());
    }
    Ok(session)
}

/// Ends the session `id` on every replica (sign-out).
pub(crate) async fn end_session(state: &AppState, id: &str) {
    state.sessions.end(id).await;
}

/// The cookie that removes the session cookie from the browser.
pub(crate) fn session_removal(request: &HttpRequest) -> Cookie<'static> {
    let mut gone = cookie(request, SESSION_COOKIE, String::new()).into_owned();
    gone.make_removal();
    gone
}
