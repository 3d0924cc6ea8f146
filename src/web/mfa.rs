//! The built-in directory's optional TOTP second factor on the web: the code step of
//! a directory sign-in (`/signin/totp`) and self-service enrolment (`/account/mfa`).
//!
//! After a correct password for a user with TOTP on, no session exists yet: a
//! pending sign-in (the identity, `return_to` and a CSRF token) waits in the cache
//! for five minutes under a hash of a random id that only this browser holds in a
//! cookie. A correct, unused code turns it into a portal session exactly once; wrong
//! codes count towards the directory's lock-out like wrong passwords. Secrets are
//! sealed with the master key wherever they rest (database and cache).

use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::AppState;
use super::audit::audit;
use super::aws_json::client_network;
use super::page::{cookie, error_page, html, random_token, redirect, safe_return_to, same};
use super::session::{PortalSession, end_other_sessions, session, signed_in_form, start_session};
use crate::cache::hashed_key;
use crate::iam::UserName;
use crate::idp::directory::{DIRECTORY_SOURCE_ID, SignInError};
use crate::idp::identity::Identity;
use crate::idp::totp::{self, TotpSecret};
use crate::store::{Outcome, StoreError};

/// The browser's handle on its pending second-factor step.
const PENDING_COOKIE: &str = "rg_mfa";
/// How long the code step waits after the password was accepted.
const PENDING_TTL: Duration = Duration::from_secs(5 * 60);
/// How long an unconfirmed enrolment secret waits for its first code.
const ENROL_TTL: Duration = Duration::from_secs(15 * 60);

const SIGN_IN: &str = "portal:SignIn";
const ENABLE: &str = "portal:EnableMFADevice";
const DISABLE: &str = "portal:DeactivateMFADevice";

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/signin/totp", web::get().to(code_page))
        .route("/signin/totp", web::post().to(submit_code))
        .route("/account/mfa", web::get().to(account_page))
        .route("/account/mfa", web::post().to(enable))
        .route("/account/mfa/disable", web::post().to(disable));
}

/// The sealing context of a user's stored TOTP secret: bound to the user's id.
fn stored_secret_context(user_id: &str) -> String {
    format!("totp-secret:{user_id}")
}

/// A password accepted, a code still owed.
#[derive(Serialize, Deserialize)]
struct PendingSignIn {
    identity: Identity,
    return_to: String,
    csrf: String,
}

/// Called by the directory sign-in after a correct password when the user has TOTP
/// on: parks the sign-in and sends the browser to the code step.
pub(crate) async fn challenge(
    state: &AppState,
    request: &HttpRequest,
    identity: Identity,
    return_to: &str,
) -> HttpResponse {
    let id = random_token(&state.random);
    let pending = PendingSignIn {
        identity,
        return_to: safe_return_to(return_to).to_owned(),
        csrf: random_token(&state.random),
    };
    let stored = serde_json::to_vec(&pending).unwrap_or_default();
    if let Err(error) = state
        .cache
        .put(&hashed_key("mfa-pending", &id), &stored, PENDING_TTL)
        .await
    {
        tracing::error!(%error, "cannot store a pending second-factor sign-in");
        return unavailable();
    }
    let mut response = redirect("/signin/totp");
    let _ = response.add_cookie(&cookie(request, PENDING_COOKIE, id));
    response
}

/// The pending sign-in this browser's cookie names: (cache key, state).
async fn pending(state: &AppState, request: &HttpRequest) -> Option<(String, PendingSignIn)> {
    let id = request.cookie(PENDING_COOKIE)?.value().to_owned();
    let key = hashed_key("mfa-pending", &id);
    let stored = state.cache.get(&key).await.ok()??;
    let pending = serde_json::from_slice(&stored).ok()?;
    Some((key, pending))
}

fn without_pending_cookie(request: &HttpRequest, mut response: HttpResponse) -> HttpResponse {
    let mut gone = cookie(request, PENDING_COOKIE, String::new());
    gone.make_removal();
    let _ = response.add_cookie(&gone);
    response
}

fn unavailable() -> HttpResponse {
    error_page(
        StatusCode::SERVICE_UNAVAILABLE,
        "Sign-in unavailable",
        "Your sign-in could not be completed. Please try again shortly.",
        "/signin",
        "Sign in",
    )
}

fn expired(request: &HttpRequest) -> HttpResponse {
    without_pending_cookie(
        request,
        error_page(
            StatusCode::UNAUTHORIZED,
            "Sign-in expired",
            "This sign-in was not finished in time, or was already used. Please sign in again.",
            "/signin",
            "Sign in",
        ),
    )
}

fn locked_page(request: &HttpRequest, until: DateTime<Utc>) -> HttpResponse {
    without_pending_cookie(
        request,
        error_page(
            StatusCode::TOO_MANY_REQUESTS,
            "Account locked",
            &format!(
                "Too many failed sign-ins. Try again after {}.",
                until.format("%H:%M:%S UTC")
            ),
            "/signin",
            "Sign in",
        ),
    )
}

#[derive(Template)]
#[template(path = "totp.html")]
struct CodePage<'a> {
    csrf: &'a str,
    user_name: &'a str,
    error: Option<&'a str>,
}

fn render_code_page(
    pending: &PendingSignIn,
    status: StatusCode,
    error: Option<&str>,
) -> HttpResponse {
    let page = CodePage {
        csrf: &pending.csrf,
        user_name: &pending.identity.user_name,
        error,
    };
    html(status, page.render().unwrap_or_default())
}

async fn code_page(state: web::Data<AppState>, request: HttpRequest) -> HttpResponse {
    match pending(&state, &request).await {
        Some((_, pending)) => render_code_page(&pending, StatusCode::OK, None),
        None => without_pending_cookie(&request, redirect("/signin")),
    }
}

/// What a submitted code turned out to be.
enum CodeCheck {
    Accepted,
    Wrong,
    /// Right, but already used for this user within its validity window.
    Replayed,
}

impl CodeCheck {
    fn reason(&self) -> &'static str {
        match self {
            CodeCheck::Accepted => "",
            CodeCheck::Wrong => "wrong second factor",
            CodeCheck::Replayed => "second factor code already used",
        }
    }

    fn message(&self) -> &'static str {
        match self {
            CodeCheck::Accepted => "",
            CodeCheck::Wrong => {
                "That code is not correct. Enter the 6-digit code your authenticator app shows now."
            }
            CodeCheck::Replayed => {
                "That code was already used. Wait for your authenticator app to show a new code and enter that."
            }
        }
    }
}

/// Checks `input` against `secret` at `now` and claims the matched time step for
/// this user, so that no code of that step is accepted again while it is valid.
async fn check_code(
    state: &AppState,
    source_id: &str,
    name: &UserName,
    secret: &TotpSecret,
    input: &str,
    now: DateTime<Utc>,
) -> Result<CodeCheck, crate::cache::CacheError> {
    let Some(step) = totp::verify(secret, &totp::normalize_code(input), now.timestamp()) else {
        return Ok(CodeCheck::Wrong);
    };
    let remember = totp::valid_until(step)
        .saturating_sub(now.timestamp())
        .clamp(1, 3 * totp::STEP_SECONDS);
    let used = |step: i64| {
        format!(
            "totp-used:{source_id}:{}:{step}",
            name.as_str().to_lowercase()
        )
    };
    let remember = Duration::from_secs(remember.unsigned_abs() + 1);
    if !state
        .cache
        .put_if_absent(&used(step), b"1", remember)
        .await?
    {
        return Ok(CodeCheck::Replayed);
    }
    // RFC 6238 §5.2: once a code is accepted, codes of earlier steps still inside
    // the window are spent too, so an observed older code cannot follow a newer one.
    for earlier in step - 2 * totp::SKEW_STEPS..step {
        state.cache.put(&used(earlier), b"1", remember).await?;
    }
    Ok(CodeCheck::Accepted)
}

/// The user's current TOTP secret: `Ok(None)` when the user is gone, disabled or has
/// TOTP off; `Err` when it cannot be read (logged).
async fn stored_secret(
    state: &AppState,
    source_id: &str,
    name: &UserName,
) -> Result<Option<(TotpSecret, DateTime<Utc>)>, ()> {
    let user = match state.store.get_user(source_id, name).await {
        Ok(user) => user,
        Err(StoreError::NotFound { .. }) => return Ok(None),
        Err(error) => {
            tracing::error!(%error, "cannot read a directory user");
            return Err(());
        }
    };
    let (Some(sealed), Some(since)) = (user.totp_secret.as_deref(), user.totp_enabled_at) else {
        return Ok(None);
    };
    if user.disabled {
        return Ok(None);
    }
    let opened = state
        .sealer
        .open_secret(sealed, &stored_secret_context(&user.id))
        .ok()
        .and_then(|text| TotpSecret::from_base32(text.expose()));
    match opened {
        Some(secret) => Ok(Some((secret, since))),
        None => {
            tracing::error!(user = %user.user_name, "a stored TOTP secret cannot be opened");
            Err(())
        }
    }
}

#[derive(Deserialize)]
struct CodeForm {
    csrf: String,
    code: String,
    /// The account password, owed on the account page unless the sign-in is recent
    /// (see [`needs_password`]); unused at the sign-in code step.
    #[serde(default)]
    password: String,
}

async fn submit_code(
    state: web::Data<AppState>,
    request: HttpRequest,
    form: web::Form<CodeForm>,
) -> HttpResponse {
    let Some((key, pending)) = pending(&state, &request).await else {
        return expired(&request);
    };
    let source_id = pending.identity.source_id.clone();
    let user = pending.identity.user_name.clone();
    let fail = |outcome: Outcome, reason: serde_json::Value| {
        let (state, request, user, source_id) = (&state, &request, &user, &source_id);
        async move { audit(state, request, user, SIGN_IN, source_id, outcome, reason).await }
    };
    if !same(&pending.csrf, &form.csrf) {
        fail(
            Outcome::Denied,
            json!({ "reason": "missing or wrong CSRF token", "step": "second factor" }),
        )
        .await;
        return error_page(
            StatusCode::FORBIDDEN,
            "Sign-in form expired",
            "The code form was not accepted (it may have expired, or came from another site). Please sign in again.",
            "/signin",
            "Sign in",
        );
    }
    let Ok(name) = UserName::parse(user.as_str()) else {
        return expired(&request);
    };
    let now = state.clock.now();
    let network = client_network(&request);
    match state
        .directory
        .locked_until_for(&source_id, &name, &network, now)
        .await
    {
        Ok(None) => {}
        Ok(Some(until)) => {
            let _ = state.cache.delete(&key).await;
            fail(
                Outcome::Failure,
                json!({ "reason": SignInError::Locked { until }.to_string(), "step": "second factor" }),
            )
            .await;
            return locked_page(&request, until);
        }
        Err(error) => {
            tracing::error!(%error, "second-factor sign-in unavailable");
            return unavailable();
        }
    }
    // The user is read again: deleted, disabled or TOTP turned off since the
    // password step all end this sign-in.
    let secret = match stored_secret(&state, &source_id, &name).await {
        Ok(Some((secret, _))) => secret,
        Ok(None) => {
            let _ = state.cache.delete(&key).await;
            fail(
                Outcome::Failure,
                json!({ "reason": "second factor no longer available" }),
            )
            .await;
            return expired(&request);
        }
        Err(()) => return unavailable(),
    };
    let check = match check_code(&state, &source_id, &name, &secret, &form.code, now).await {
        Ok(check) => check,
        Err(error) => {
            tracing::error!(%error, "second-factor sign-in unavailable");
            return unavailable();
        }
    };
    if !matches!(check, CodeCheck::Accepted) {
        let locked = match state
            .directory
            .count_failure(&source_id, &name, &network, now)
            .await
        {
            Ok(locked) => locked,
            Err(error) => {
                tracing::error!(%error, "cannot count a failed second factor");
                return unavailable();
            }
        };
        let mut details = json!({ "reason": check.reason() });
        if let Some(until) = locked {
            details["locked_until"] = json!(until.to_rfc3339());
        }
        fail(Outcome::Failure, details).await;
        if let Some(until) = locked {
            let _ = state.cache.delete(&key).await;
            return locked_page(&request, until);
        }
        return render_code_page(&pending, StatusCode::UNAUTHORIZED, Some(check.message()));
    }
    // Concurrent guesses all pass the lock check above before any of them is
    // counted; a lock set by them meanwhile must stop a right guess too.
    match state
        .directory
        .locked_until_for(&source_id, &name, &network, now)
        .await
    {
        Ok(None) => {}
        Ok(Some(until)) => {
            let _ = state.cache.delete(&key).await;
            fail(
                Outcome::Failure,
                json!({ "reason": SignInError::Locked { until }.to_string(), "step": "second factor" }),
            )
            .await;
            return locked_page(&request, until);
        }
        Err(error) => {
            tracing::error!(%error, "second-factor sign-in unavailable");
            return unavailable();
        }
    }
    // Single use even under concurrent submissions: the first claim wins.
    match state
        .cache
        .put_if_absent(&format!("{key}:done"), b"1", PENDING_TTL)
        .await
    {
        Ok(true) => {}
        Ok(false) => return expired(&request),
        Err(error) => {
            tracing::error!(%error, "second-factor sign-in unavailable");
            return unavailable();
        }
    }
    let _ = state.cache.delete(&key).await;
    if let Err(error) = state
        .directory
        .complete_sign_in(&source_id, &name, &network)
        .await
    {
        tracing::warn!(%error, "cannot clear the sign-in failure counter");
    }
    let response = start_session(&state, &request, pending.identity, &pending.return_to).await;
    without_pending_cookie(&request, response)
}

#[derive(Template)]
#[template(path = "mfa.html")]
struct AccountPage<'a> {
    display_name: &'a str,
    csrf: &'a str,
    error: Option<&'a str>,
    /// The forms ask for the password: the sign-in is not recent.
    needs_password: bool,
    /// Signed in through a federated source (its id): nothing to set up here.
    federated_source: Option<&'a str>,
    /// TOTP is on since then.
    enabled_since: Option<String>,
    /// Enrolment: the new secret in base32 and its `otpauth://` URI.
    secret: Option<String>,
    uri: String,
}

fn enrol_key(session_id: &str) -> String {
    hashed_key("mfa-enrol", session_id)
}

fn enrol_context(identity: &Identity) -> String {
    format!(
        "totp-enrol:{}:{}",
        identity.source_id,
        identity.user_name.to_lowercase()
    )
}

/// The unconfirmed secret of this session's enrolment, made when there is none.
async fn enrolment_secret(
    state: &AppState,
    session_id: &str,
    identity: &Identity,
    create: bool,
) -> Option<TotpSecret> {
    let key = enrol_key(session_id);
    let context = enrol_context(identity);
    if let Ok(Some(stored)) = state.cache.get(&key).await {
        let opened = std::str::from_utf8(&stored)
            .ok()
            .and_then(|sealed| state.sealer.open_secret(sealed, &context).ok())
            .and_then(|text| TotpSecret::from_base32(text.expose()));
        if opened.is_some() {
            return opened;
        }
    }
    if !create {
        return None;
    }
    let secret = TotpSecret::generate(&mut state.random.rng());
    let sealed = state.sealer.seal_secret(&secret.to_base32(), &context);
    match state.cache.put(&key, sealed.as_bytes(), ENROL_TTL).await {
        Ok(()) => Some(secret),
        Err(error) => {
            tracing::error!(%error, "cannot store an enrolment secret");
            None
        }
    }
}

/// Renders the account page for the session's identity, in whichever state it is.
async fn render_account(
    state: &AppState,
    session_id: &str,
    session: &PortalSession,
    status: StatusCode,
    error: Option<&str>,
) -> HttpResponse {
    let identity = &session.identity;
    let mut page = AccountPage {
        display_name: &identity.display_name,
        csrf: &session.csrf,
        error,
        needs_password: needs_password(state, session),
        federated_source: None,
        enabled_since: None,
        secret: None,
        uri: String::new(),
    };
    if identity.source_id != DIRECTORY_SOURCE_ID {
        page.federated_source = Some(&identity.source_id);
        return html(status, page.render().unwrap_or_default());
    }
    let Ok(name) = UserName::parse(identity.user_name.as_str()) else {
        return unavailable();
    };
    match stored_secret(state, &identity.source_id, &name).await {
        Ok(Some((_, since))) => {
            page.enabled_since = Some(since.format("%Y-%m-%d %H:%M UTC").to_string());
        }
        Ok(None) => {
            let Some(secret) = enrolment_secret(state, session_id, identity, true).await else {
                return unavailable();
            };
            page.uri = totp::otpauth_uri(&identity.user_name, &secret);
            page.secret = Some(secret.to_base32());
        }
        Err(()) => return unavailable(),
    }
    html(status, page.render().unwrap_or_default())
}

async fn account_page(state: web::Data<AppState>, request: HttpRequest) -> HttpResponse {
    let Some((id, session)) = session(&state, &request).await else {
        return redirect("/signin?return_to=/account/mfa");
    };
    render_account(&state, &id, &session, StatusCode::OK, None).await
}

/// The signed-in directory user behind a form on the account page, or the response.
/// Whether a change on the account page must be confirmed with the password: the
/// sign-in behind this session is older than `portal.reauthenticate_within`, so the
/// session alone (perhaps stolen) does not prove the person is at the keyboard.
fn needs_password(state: &AppState, session: &PortalSession) -> bool {
    let age = state
        .clock
        .now()
        .timestamp()
        .saturating_sub(session.signed_in_at);
    u64::try_from(age).map_or(true, |age| {
        age >= state.portal.reauthenticate_within.as_secs()
    })
}

/// The signed-in directory user behind a form on the account page, or the response.
/// The password is checked (and a wrong one counted like a failed sign-in) when the
/// sign-in is not recent.
async fn directory_form(
    state: &AppState,
    request: &HttpRequest,
    form: &CodeForm,
    action: &str,
) -> Result<(String, PortalSession, UserName), HttpResponse> {
    let session = signed_in_form(state, request, &form.csrf, action, DIRECTORY_SOURCE_ID).await?;
    let Some((id, _)) = super::session::session(state, request).await else {
        return Err(redirect("/signin?return_to=/account/mfa"));
    };
    if session.identity.source_id != DIRECTORY_SOURCE_ID {
        return Err(render_account(state, &id, &session, StatusCode::BAD_REQUEST, None).await);
    }
    let Ok(name) = UserName::parse(session.identity.user_name.as_str()) else {
        return Err(unavailable());
    };
    if !needs_password(state, &session) {
        return Ok((id, session, name));
    }
    let confirmed = state
        .directory
        .confirm_password(
            DIRECTORY_SOURCE_ID,
            &name,
            &form.password,
            &client_network(request),
            state.clock.now(),
        )
        .await;
    let (status, message, reason) = match confirmed {
        Ok(true) => return Ok((id, session, name)),
        Ok(false) => (
            StatusCode::UNAUTHORIZED,
            "Your password is needed to change how you sign in, and the one entered is not right."
                .to_owned(),
            "password confirmation failed".to_owned(),
        ),
        Err(SignInError::Locked { until }) => (
            StatusCode::TOO_MANY_REQUESTS,
            format!(
                "Too many failed attempts. Try again after {}.",
                until.format("%H:%M:%S UTC")
            ),
            SignInError::Locked { until }.to_string(),
        ),
        Err(error) => {
            tracing::error!(%error, "cannot confirm a password");
            return Err(unavailable());
        }
    };
    audit(
        state,
        request,
        &session.identity.user_name,
        action,
        DIRECTORY_SOURCE_ID,
        Outcome::Failure,
        json!({ "reason": reason }),
    )
    .await;
    Err(render_account(state, &id, &session, status, Some(&message)).await)
}

async fn enable(
    state: web::Data<AppState>,
    request: HttpRequest,
    form: web::Form<CodeForm>,
) -> HttpResponse {
    let (id, session, name) = match directory_form(&state, &request, &form, ENABLE).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let user = session.identity.user_name.as_str();
    match stored_secret(&state, DIRECTORY_SOURCE_ID, &name).await {
        Ok(None) => {}
        Ok(Some(_)) => return redirect("/account/mfa"),
        Err(()) => return unavailable(),
    }
    let Some(secret) = enrolment_secret(&state, &id, &session.identity, false).await else {
        return render_account(
            &state,
            &id,
            &session,
            StatusCode::BAD_REQUEST,
            Some("The setup key expired. Add this new key to your authenticator app, then enter its code."),
        )
        .await;
    };
    let now = state.clock.now();
    let check = match check_code(&state, DIRECTORY_SOURCE_ID, &name, &secret, &form.code, now).await
    {
        Ok(check) => check,
        Err(error) => {
            tracing::error!(%error, "cannot check an enrolment code");
            return unavailable();
        }
    };
    if !matches!(check, CodeCheck::Accepted) {
        audit(
            &state,
            &request,
            user,
            ENABLE,
            DIRECTORY_SOURCE_ID,
            Outcome::Failure,
            json!({ "reason": check.reason() }),
        )
        .await;
        return render_account(
            &state,
            &id,
            &session,
            StatusCode::BAD_REQUEST,
            Some(check.message()),
        )
        .await;
    }
    let Ok(record) = state.store.get_user(DIRECTORY_SOURCE_ID, &name).await else {
        return unavailable();
    };
    let sealed = state
        .sealer
        .seal_secret(&secret.to_base32(), &stored_secret_context(&record.id));
    match state
        .store
        .set_totp_secret(DIRECTORY_SOURCE_ID, &name, Some((&sealed, now)))
        .await
    {
        Ok(()) => {}
        // Another session of this user turned it on meanwhile; theirs stands.
        Err(StoreError::AlreadyExists { .. }) => return redirect("/account/mfa"),
        Err(error) => {
            tracing::error!(%error, "cannot store a TOTP secret");
            return unavailable();
        }
    }
    let _ = state.cache.delete(&enrol_key(&id)).await;
    audit(
        &state,
        &request,
        user,
        ENABLE,
        DIRECTORY_SOURCE_ID,
        Outcome::Success,
        json!({ "type": "totp" }),
    )
    .await;
    after_change(&state, &request, &id, session).await
}

/// The answer to a second factor turned on or off: every other portal session of
/// the user ends (one opened with a stolen password must not outlive the new
/// factor, nor one opened with the factor outlive its removal), and this one goes on
/// under a new id.
async fn after_change(
    state: &AppState,
    request: &HttpRequest,
    id: &str,
    session: PortalSession,
) -> HttpResponse {
    let mut response = redirect("/account/mfa");
    match end_other_sessions(state, request, id, session).await {
        Ok(renewed) => {
            let _ = response.add_cookie(&renewed);
        }
        Err(error) => {
            tracing::error!(%error, "cannot end the user's other portal sessions");
        }
    }
    response
}

async fn disable(
    state: web::Data<AppState>,
    request: HttpRequest,
    form: web::Form<CodeForm>,
) -> HttpResponse {
    let (id, session, name) = match directory_form(&state, &request, &form, DISABLE).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let user = session.identity.user_name.as_str();
    let refuse = |reason: serde_json::Value| {
        let (state, request) = (&state, &request);
        async move {
            audit(
                state,
                request,
                user,
                DISABLE,
                DIRECTORY_SOURCE_ID,
                Outcome::Failure,
                reason,
            )
            .await
        }
    };
    let now = state.clock.now();
    let network = client_network(&request);
    // Checked before the code and again after it: a lock set by concurrent wrong
    // guesses stops a right one too (as at sign-in).
    let refuse_if_locked = || async {
        match state
            .directory
            .locked_until_for(DIRECTORY_SOURCE_ID, &name, &network, now)
            .await
        {
            Ok(None) => None,
            Ok(Some(until)) => {
                refuse(json!({ "reason": SignInError::Locked { until }.to_string() })).await;
                Some(
                    render_account(
                        &state,
                        &id,
                        &session,
                        StatusCode::TOO_MANY_REQUESTS,
                        Some(&format!(
                            "Too many wrong codes. Try again after {}.",
                            until.format("%H:%M:%S UTC")
                        )),
                    )
                    .await,
                )
            }
            Err(_) => Some(unavailable()),
        }
    };
    if let Some(refusal) = refuse_if_locked().await {
        return refusal;
    }
    let secret = match stored_secret(&state, DIRECTORY_SOURCE_ID, &name).await {
        Ok(Some((secret, _))) => secret,
        Ok(None) => return redirect("/account/mfa"),
        Err(()) => return unavailable(),
    };
    let check = match check_code(&state, DIRECTORY_SOURCE_ID, &name, &secret, &form.code, now).await
    {
        Ok(check) => check,
        Err(error) => {
            tracing::error!(%error, "cannot check a code");
            return unavailable();
        }
    };
    if !matches!(check, CodeCheck::Accepted) {
        // Guessing codes here is guessing a second factor: it counts like sign-in.
        let locked = state
            .directory
            .count_failure(DIRECTORY_SOURCE_ID, &name, &network, now)
            .await
            .ok()
            .flatten();
        refuse(json!({ "reason": check.reason() })).await;
        let message = match locked {
            Some(until) => format!(
                "Too many wrong codes. Try again after {}.",
                until.format("%H:%M:%S UTC")
            ),
            None => check.message().to_owned(),
        };
        return render_account(
            &state,
            &id,
            &session,
            StatusCode::BAD_REQUEST,
            Some(&message),
        )
        .await;
    }
    if let Some(refusal) = refuse_if_locked().await {
        return refusal;
    }
    if let Err(error) = state
        .store
        .set_totp_secret(DIRECTORY_SOURCE_ID, &name, None)
        .await
    {
        tracing::error!(%error, "cannot turn TOTP off");
        return unavailable();
    }
    audit(
        &state,
        &request,
        user,
        DISABLE,
        DIRECTORY_SOURCE_ID,
        Outcome::Success,
        json!({ "type": "totp" }),
    )
    .await;
    after_change(&state, &request, &id, session).await
}
