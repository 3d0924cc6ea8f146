//! The built-in directory's optional TOTP second factor on the web: the code step of
//! a directory sign-in (`/signin/totp`) and self-service enrolment (`/account/mfa`),
//! over [`crate::service::second_factor`].
//!
//! After a correct password for a user with TOTP on, no session exists yet: the
//! pending sign-in's id waits in a cookie only this browser holds. A correct, unused
//! code turns it into a portal session exactly once; wrong codes count towards the
//! directory's lock-out like wrong passwords.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::json;

use super::AppState;
use super::audit::audit;
use super::aws_json::client_network;
use super::page::{PageError, cookie, html, redirect, safe_return_to, same};
use super::session::{PortalSession, end_other_sessions, session, signed_in_form, start_session};
use crate::iam::UserName;
use crate::idp::directory::{DIRECTORY_SOURCE_ID, SignInError};
use crate::idp::identity::Identity;
use crate::idp::totp;
use crate::service::second_factor::{CodeCheck, PendingSignIn, TurnedOn};
use crate::store::Outcome;

/// The browser's handle on its pending second-factor step.
const PENDING_COOKIE: &str = "rg_mfa";

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

/// Called by the directory sign-in after a correct password when the user has TOTP
/// on: parks the sign-in and sends the browser to the code step.
pub(crate) async fn challenge(
    state: &AppState,
    request: &HttpRequest,
    identity: Identity,
    return_to: &str,
) -> HttpResponse {
    let id = match state
        .second_factor
        .park(identity, safe_return_to(return_to))
        .await
    {
        Ok(id) => id,
        Err(error) => return unavailable(&error),
    };
    let mut response = redirect("/signin/totp");
    let _ = response.add_cookie(&cookie(request, PENDING_COOKIE, id));
    response
}

/// The pending sign-in this browser's cookie names: (its id, the sign-in).
async fn pending(state: &AppState, request: &HttpRequest) -> Option<(String, PendingSignIn)> {
    let id = request.cookie(PENDING_COOKIE)?.value().to_owned();
    let pending = state.second_factor.pending(&id).await?;
    Some((id, pending))
}

fn without_pending_cookie(request: &HttpRequest, mut response: HttpResponse) -> HttpResponse {
    let mut gone = cookie(request, PENDING_COOKIE, String::new());
    gone.make_removal();
    let _ = response.add_cookie(&gone);
    response
}

/// The page for a failed dependency (the cause is logged).
fn unavailable(cause: &dyn std::fmt::Display) -> HttpResponse {
    PageError::unavailable(
        cause,
        "Sign-in unavailable",
        "Your sign-in could not be completed. Please try again shortly.",
    )
    .next("/signin", "Sign in")
    .into_response()
}

fn expired(request: &HttpRequest) -> HttpResponse {
    without_pending_cookie(
        request,
        PageError::new(
            StatusCode::UNAUTHORIZED,
            "Sign-in expired",
            "This sign-in was not finished in time, or was already used. Please sign in again.",
        )
        .next("/signin", "Sign in")
        .into_response(),
    )
}

fn locked_page(request: &HttpRequest, until: DateTime<Utc>) -> HttpResponse {
    without_pending_cookie(
        request,
        PageError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "Account locked",
            format!(
                "Too many failed sign-ins. Try again after {}.",
                until.format("%H:%M:%S UTC")
            ),
        )
        .next("/signin", "Sign in")
        .into_response(),
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

/// What the person reads about a refused code.
fn check_message(check: CodeCheck) -> &'static str {
    match check {
        CodeCheck::Accepted => "",
        CodeCheck::Wrong => {
            "That code is not correct. Enter the 6-digit code your authenticator app shows now."
        }
        CodeCheck::Replayed => {
            "That code was already used. Wait for your authenticator app to show a new code and enter that."
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
    let Some((id, pending)) = pending(&state, &request).await else {
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
        return PageError::sign_in_form_expired("code form").into_response();
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
            state.second_factor.abandon(&id).await;
            fail(
                Outcome::Failure,
                json!({ "reason": SignInError::Locked { until }.to_string(), "step": "second factor" }),
            )
            .await;
            return locked_page(&request, until);
        }
        Err(error) => return unavailable(&error),
    }
    // The user is read again: deleted, disabled or TOTP turned off since the
    // password step all end this sign-in.
    let secret = match state.second_factor.stored_secret(&source_id, &name).await {
        Ok(Some((secret, _))) => secret,
        Ok(None) => {
            state.second_factor.abandon(&id).await;
            fail(
                Outcome::Failure,
                json!({ "reason": "second factor no longer available" }),
            )
            .await;
            return expired(&request);
        }
        Err(error) => return unavailable(&error),
    };
    let check = match state
        .second_factor
        .check_code(&source_id, &name, &secret, &form.code, now)
        .await
    {
        Ok(check) => check,
        Err(error) => return unavailable(&error),
    };
    if !matches!(check, CodeCheck::Accepted) {
        let locked = match state
            .directory
            .count_failure(&source_id, &name, &network, now)
            .await
        {
            Ok(locked) => locked,
            Err(error) => return unavailable(&error),
        };
        let mut details = json!({ "reason": check.reason() });
        if let Some(until) = locked {
            details["locked_until"] = json!(until.to_rfc3339());
        }
        fail(Outcome::Failure, details).await;
        if let Some(until) = locked {
            state.second_factor.abandon(&id).await;
            return locked_page(&request, until);
        }
        return render_code_page(
            &pending,
            StatusCode::UNAUTHORIZED,
            Some(check_message(check)),
        );
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
            state.second_factor.abandon(&id).await;
            fail(
                Outcome::Failure,
                json!({ "reason": SignInError::Locked { until }.to_string(), "step": "second factor" }),
            )
            .await;
            return locked_page(&request, until);
        }
        Err(error) => return unavailable(&error),
    }
    // Single use even under concurrent submissions: the first claim wins.
    match state.second_factor.finish(&id).await {
        Ok(true) => {}
        Ok(false) => return expired(&request),
        Err(error) => return unavailable(&error),
    }
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
        return unavailable(&"a stored user name no longer parses");
    };
    match state
        .second_factor
        .stored_secret(&identity.source_id, &name)
        .await
    {
        Ok(Some((_, since))) => {
            page.enabled_since = Some(since.format("%Y-%m-%d %H:%M UTC").to_string());
        }
        Ok(None) => {
            let Some(secret) = state
                .second_factor
                .enrolment_secret(session_id, identity, true)
                .await
            else {
                return unavailable(&"no enrolment secret could be kept");
            };
            page.uri = totp::otpauth_uri(&identity.user_name, &secret);
            page.secret = Some(secret.to_base32());
        }
        Err(error) => return unavailable(&error),
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
        return Err(unavailable(&"a session's user name no longer parses"));
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
        Err(error) => return Err(unavailable(&error)),
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
    match state
        .second_factor
        .stored_secret(DIRECTORY_SOURCE_ID, &name)
        .await
    {
        Ok(None) => {}
        Ok(Some(_)) => return redirect("/account/mfa"),
        Err(error) => return unavailable(&error),
    }
    let Some(secret) = state
        .second_factor
        .enrolment_secret(&id, &session.identity, false)
        .await
    else {
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
    let check = match state
        .second_factor
        .check_code(DIRECTORY_SOURCE_ID, &name, &secret, &form.code, now)
        .await
    {
        Ok(check) => check,
        Err(error) => return unavailable(&error),
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
            Some(check_message(check)),
        )
        .await;
    }
    match state
        .second_factor
        .turn_on(DIRECTORY_SOURCE_ID, &name, &secret, &id, now)
        .await
    {
        Ok(TurnedOn::Now) => {}
        // Another session of this user turned it on meanwhile; theirs stands.
        Ok(TurnedOn::Already) => return redirect("/account/mfa"),
        Err(error) => return unavailable(&error),
    }
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
            Err(error) => Some(unavailable(&error)),
        }
    };
    if let Some(refusal) = refuse_if_locked().await {
        return refusal;
    }
    let secret = match state
        .second_factor
        .stored_secret(DIRECTORY_SOURCE_ID, &name)
        .await
    {
        Ok(Some((secret, _))) => secret,
        Ok(None) => return redirect("/account/mfa"),
        Err(error) => return unavailable(&error),
    };
    let check = match state
        .second_factor
        .check_code(DIRECTORY_SOURCE_ID, &name, &secret, &form.code, now)
        .await
    {
        Ok(check) => check,
        Err(error) => return unavailable(&error),
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
            None => check_message(check).to_owned(),
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
        .second_factor
        .turn_off(DIRECTORY_SOURCE_ID, &name)
        .await
    {
        return unavailable(&error);
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
