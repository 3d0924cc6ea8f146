//! Portal sessions: the signed-in session extractor and the CSRF guard of every
//! state-changing form, starting a session at sign-in, and ending a user's sessions
//! when their sign-in settings change. Sessions live in the cache (shared by
//! replicas) under a hash of the cookie's opaque random id.

use actix_web::cookie::Cookie;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::AppState;
use super::audit::audit;
use super::page::{cookie, error_page, random_token, redirect, safe_return_to, same};
use crate::cache::hashed_key;
use crate::service::sign_in_settings;
use crate::store::Outcome;
use crate::sts::portal::PortalIdentity;

const SESSION_COOKIE: &str = "rg_session";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct PortalSession {
    pub(crate) identity: PortalIdentity,
    pub(crate) csrf: String,
    /// The ID token of an OIDC sign-in, for `id_token_hint` at RP-initiated logout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) id_token: Option<String>,
    /// When the person signed in (Unix seconds): a terminal sign-in approved from
    /// this session ends when this session would. 0 in sessions stored before.
    #[serde(default)]
    pub(crate) signed_in_at: i64,
    /// Since when (Unix milliseconds) this session stands for the user's current
    /// sign-in settings: set at sign-in and renewed when this session turns a second
    /// factor on or off. A session older than the user's
    /// [`sign_in_settings`] marker is over. 0 in sessions stored before.
    #[serde(default)]
    pub(crate) valid_from_ms: i64,
}

impl PortalSession {
    /// When the person signed in (Unix seconds), never later than `now`: a terminal
    /// sign-in approved from this session lives no longer than it. Sessions stored
    /// before the field existed count from `now`.
    pub(crate) fn sign_in_time(&self, now: i64) -> i64 {
        if self.signed_in_at > 0 {
            self.signed_in_at.min(now)
        } else {
            now
        }
    }
}

/// Sessions are stored under a hash of the cookie value, so whoever can read the
/// cache cannot use what it finds there.
fn session_key(id: &str) -> String {
    hashed_key("portal-session", id)
}

/// The signed-in session, if the cookie names a live one (not ended by a change of
/// the user's sign-in settings since, see [`end_other_sessions`]).
pub(crate) async fn session(
    state: &AppState,
    request: &HttpRequest,
) -> Option<(String, PortalSession)> {
    let id = request.cookie(SESSION_COOKIE)?.value().to_owned();
    let key = session_key(&id);
    let stored = state.cache.get(&key).await.ok()??;
    let session: PortalSession = serde_json::from_slice(&stored).ok()?;
    // Unreadable cache: no session (fail closed), as when the session itself is.
    if sign_in_settings::ended_by_settings_change(
        state.cache.as_ref(),
        &session.identity,
        session.signed_in_at,
        session.valid_from_ms,
    )
    .await
    .ok()?
    {
        let _ = state.cache.delete(&key).await;
        return None;
    }
    Some((id, session))
}

/// After the user's sign-in settings changed (a second factor turned on or off):
/// ends every other portal session of the user, on every replica, and every
/// terminal sign-in (SSO access and refresh tokens) approved until now, and renews
/// this session under a new id (returned as the cookie to set). Its sign-in time,
/// and so its end, stays as it was.
pub(crate) async fn end_other_sessions(
    state: &AppState,
    request: &HttpRequest,
    id: &str,
    mut session: PortalSession,
) -> Result<Cookie<'static>, crate::cache::CacheError> {
    let now = state.clock.now();
    let now_ms = now.timestamp_millis();
    sign_in_settings::settings_changed(
        state.cache.as_ref(),
        &session.identity,
        now_ms,
        state.portal.session_ttl,
    )
    .await?;
    session.valid_from_ms = now_ms;
    let ttl = i64::try_from(state.portal.session_ttl.as_secs()).unwrap_or(i64::MAX);
    let left = session
        .signed_in_at
        .saturating_add(ttl)
        .saturating_sub(now.timestamp())
        .clamp(1, ttl.max(1));
    let renewed = random_token(&state.random);
    let stored = serde_json::to_vec(&session).unwrap_or_default();
    state
        .cache
        .put(
            &session_key(&renewed),
            &stored,
            std::time::Duration::from_secs(left.unsigned_abs()),
        )
        .await?;
    let _ = state.cache.delete(&session_key(id)).await;
    Ok(cookie(request, SESSION_COOKIE, renewed).into_owned())
}

/// Creates a portal session for a signed-in identity (any identity source), audits
/// the sign-in, sets the session cookie and redirects to `return_to` (local only).
pub(crate) async fn start_session(
    state: &AppState,
    request: &HttpRequest,
    identity: PortalIdentity,
    return_to: &str,
) -> HttpResponse {
    start_session_with(state, request, identity, return_to, None).await
}

/// [`start_session`], keeping the OIDC ID token for RP-initiated logout.
pub(crate) async fn start_session_with(
    state: &AppState,
    request: &HttpRequest,
    identity: PortalIdentity,
    return_to: &str,
    id_token: Option<String>,
) -> HttpResponse {
    // A new sign-in in this browser replaces the one before: end it, so that its
    // id (which may have leaked) stops working now rather than when it expires.
    if let Some(previous) = request.cookie(SESSION_COOKIE) {
        let _ = state.cache.delete(&session_key(previous.value())).await;
    }
    let id = random_token(&state.random);
    let session = PortalSession {
        identity,
        csrf: random_token(&state.random),
        id_token,
        signed_in_at: state.clock.now().timestamp(),
        valid_from_ms: state.clock.now().timestamp_millis(),
    };
    let stored = serde_json::to_vec(&session).unwrap_or_default();
    if let Err(error) = state
        .cache
        .put(&session_key(&id), &stored, state.portal.session_ttl)
        .await
    {
        tracing::error!(%error, "cannot store portal session");
        return error_page(
            StatusCode::SERVICE_UNAVAILABLE,
            "Sign-in unavailable",
            "Your sign-in could not be completed. Please try again shortly.",
            "/signin",
            "Sign in",
        );
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
        return Err(error_page(
            StatusCode::FORBIDDEN,
            "Request not accepted",
            "This request did not come from your Rolegate page. Go back to your accounts and try again.",
            "/start",
            "Your accounts",
        ));
    }
    Ok(session)
}

/// Ends the session `id` on every replica (sign-out).
pub(crate) async fn end_session(state: &AppState, id: &str) {
    let _ = state.cache.delete(&session_key(id)).await;
}

/// The cookie that removes the session cookie from the browser.
pub(crate) fn session_removal(request: &HttpRequest) -> Cookie<'static> {
    let mut gone = cookie(request, SESSION_COOKIE, String::new()).into_owned();
    gone.make_removal();
    gone
}
