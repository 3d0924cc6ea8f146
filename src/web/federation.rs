//! Console sessions: the AWS-shaped federation endpoint (`getSigninToken` / `login`),
//! the "Console" button of the portal, deep links to a role's console, and the
//! console page itself (who you are, what the role may do, "can I?").
//!
//! A sign-in token is a random single-use bearer value, valid 15 minutes, stored in
//! the cache under its hash together with the role session it was minted for. A
//! console session is a random id in the cache (under its hash) that lives as long as
//! the role session; its cookie is scoped to `/console/<short id>`, so several
//! consoles for different roles can be open in different tabs.
//!
//! Destination allow-list: Rolegate's own console, i.e. `/console` (optionally with a
//! query, which pre-fills the "can I?" form) as a relative path or as an absolute URL
//! on the request's own origin; a missing Destination means `/console`, and the
//! redirect is then the relative `/console/<short id>`. Besides that, each account
//! has a list of console destinations ([`ConsoleDestination`]: absolute `https://`
//! URL prefixes, stored on the account): a Destination that is an absolute URL
//! matching an entry of the account *of the role session being signed in* (same
//! scheme, host and port, path at or below the entry's path at a `/` boundary, all
//! on the parsed URL) gets the console session and a 302 to the URL as parsed and
//! re-serialised. Relative paths other than `/console`, scheme-relative `//host`,
//! `javascript:` and anything else are refused before the sign-in token is looked
//! at; a Destination off the account's list is refused without using the token up.
//! Every refusal is audited (`refuse_login`). `Issuer`, if a local path, is where the
//! console's "Back" link and "Close console" go.

use std::collections::BTreeMap;
use std::time::Duration;

use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::AppState;
use super::audit::{audit, audit_anonymous};
use super::aws_json::client_network;
use super::page::{error_page, html, random_token, redirect, safe_return_to, same};
use super::portal::issue_for_session;
use super::request_info;
use super::session::{session, signed_in_form};
use crate::cache::RateLimit;
use crate::cache::hashed_key;
use crate::iam::{AccountId, RoleName};
use crate::policy::PolicySource;
use crate::store::{ConsoleDestination, Outcome};
use crate::sts::assume::{Caller, CallerKind, is_reserved_context_key};
use crate::sts::credentials::KeyKind;
use crate::sts::policies::CallerPolicies;

/// AWS: a sign-in URL is valid for 15 minutes after the token was issued.
const SIGNIN_TOKEN_TTL: Duration = Duration::from_secs(15 * 60);
const SIGNIN_PREFIX: &str = "federation-signin";
const SIGNIN_USED_PREFIX: &str = "federation-signin-used";
const CONSOLE_PREFIX: &str = "console-session";
const CONSOLE_COOKIE_PREFIX: &str = "rgc_";
/// The console id's prefix that names the console in URLs and its cookie.
const SHORT_ID_LEN: usize = 12;
const CONSOLE_ID_LEN: usize = 64;
/// AWS's bounds for `SessionDuration`.
const MIN_SESSION_DURATION: i64 = 900;
const MAX_SESSION_DURATION: i64 = 43_200;
const MAX_CHECK_FIELD: usize = 2_048;
const MAX_CONTEXT_LINES: usize = 50;
const ANONYMOUS: &str = "anonymous";

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/federation", web::get().to(federation_get))
        .route("/federation", web::post().to(federation_post))
        .route("/start/console", web::post().to(start_console))
        .route(
            "/start/account/{account}/role/{role}/console",
            web::get().to(confirm_console),
        )
        .route("/console", web::get().to(console_index))
        .route("/console/", web::get().to(console_index))
        .route("/console/{short}", web::get().to(console_view))
        .route("/console/{short}/check", web::post().to(console_check))
        .route("/console/{short}/logout", web::post().to(console_logout))
        .route("/static/console.css", web::get().to(css));
}

fn no_store(mut response: HttpResponse) -> HttpResponse {
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    response
}

fn format_time(at: i64) -> String {
    DateTime::<Utc>::from_timestamp(at, 0)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_default()
}

fn format_remaining(seconds: i64) -> String {
    let minutes = (seconds.max(0) + 59) / 60;
    match (minutes / 60, minutes % 60) {
        (0, m) => format!("{m} min"),
        (h, 0) => format!("{h} h"),
        (h, m) => format!("{h} h {m} min"),
    }
}

fn truncated(value: &str) -> String {
    value.chars().take(200).collect()
}

// ---------------------------------------------------------------------------------
// The allow-list.

/// Whether `destination` is Rolegate's own console on `own_origin` (e.g.
/// `http://127.0.0.1:8080`): `/console` or `/console/`, relative or absolute on this
/// origin, with an optional query. Returns the query to carry over (`""` or `?...`).
pub(crate) fn allowed_destination(destination: &str, own_origin: &str) -> Option<String> {
    let destination = destination.trim();
    if destination.is_empty()
        || !destination.is_ascii()
        || destination
            .chars()
            .any(|c| c.is_ascii_control() || c == '\\' || c == ' ')
    {
        return None;
    }
    let local = if destination.starts_with('/') {
        if destination.starts_with("//") {
            return None;
        }
        destination
    } else {
        let head = destination.get(..own_origin.len())?;
        if !head.eq_ignore_ascii_case(own_origin) {
            return None;
        }
        let rest = destination.get(own_origin.len()..)?;
        if !rest.starts_with('/') {
            return None;
        }
        rest
    };
    let without_fragment = local.split('#').next().unwrap_or_default();
    let (path, query) = match without_fragment.split_once('?') {
        Some((path, query)) => (path, query),
        None => (without_fragment, ""),
    };
    if path != "/console" && path != "/console/" {
        return None;
    }
    Some(if query.is_empty() {
        String::new()
    } else {
        format!("?{query}")
    })
}

/// Where a login may continue, before the account's list is consulted.
#[derive(Debug, PartialEq, Eq)]
enum Destination {
    /// Rolegate's own console; the query to carry over (`""` or `?...`).
    Console(String),
    /// An absolute `http(s)://` URL; the account's console destinations decide.
    External(reqwest::Url),
}

/// Classifies a Destination: the own console, an absolute web URL without user info,
/// or nothing acceptable (relative paths other than `/console`, `//host`, other
/// schemes such as `javascript:`, control characters, backslashes).
fn parse_destination(destination: &str, own_origin: &str) -> Option<Destination> {
    if let Some(query) = allowed_destination(destination, own_origin) {
        return Some(Destination::Console(query));
    }
    let destination = destination.trim();
    if destination.len() > MAX_CHECK_FIELD
        || !destination.is_ascii()
        || destination
            .chars()
            .any(|c| c.is_ascii_control() || c == '\\' || c == ' ')
    {
        return None;
    }
    let lower = destination.to_ascii_lowercase();
    if !(lower.starts_with("https://") || lower.starts_with("http://")) {
        return None;
    }
    let url = reqwest::Url::parse(destination).ok()?;
    if url.host_str().is_none() || !url.username().is_empty() || url.password().is_some() {
        return None;
    }
    Some(Destination::External(url))
}

/// Whether an entry of `entries` allows `url`.
fn listed(entries: &[ConsoleDestination], url: &reqwest::Url) -> bool {
    entries.iter().any(|entry| entry.allows(url))
}

// ---------------------------------------------------------------------------------
// The federation endpoint.

#[derive(Debug, Default, Deserialize)]
struct FederationParams {
    #[serde(rename = "Action")]
    action: Option<String>,
    #[serde(rename = "Session")]
    session: Option<String>,
    #[serde(rename = "SessionDuration")]
    session_duration: Option<String>,
    #[serde(rename = "SigninToken")]
    signin_token: Option<String>,
    #[serde(rename = "Destination")]
    destination: Option<String>,
    #[serde(rename = "Issuer")]
    issuer: Option<String>,
}

/// The `Session` parameter. No `Debug`: it holds the secret key.
#[derive(Deserialize)]
struct SessionParam {
    #[serde(rename = "sessionId")]
    session_id: String,
    #[serde(rename = "sessionKey")]
    session_key: String,
    #[serde(rename = "sessionToken")]
    session_token: String,
}

/// What a sign-in token stands for, in the cache under the token's hash.
#[derive(Serialize, Deserialize)]
struct SigninGrant {
    access_key_id: String,
    session_token: String,
    /// The console session length asked for with `SessionDuration`.
    duration: Option<i64>,
    issued_at: i64,
}

fn json_error(status: StatusCode, code: &str, message: &str) -> HttpResponse {
    no_store(HttpResponse::build(status).json(json!({ "error": code, "message": message })))
}

async fn federation_get(state: web::Data<AppState>, request: HttpRequest) -> HttpResponse {
    match serde_urlencoded::from_str::<FederationParams>(request.query_string()) {
        Ok(params) => federation(&state, &request, params).await,
        Err(_) => json_error(
            StatusCode::BAD_REQUEST,
            "InvalidParameter",
            "The query string could not be read.",
        ),
    }
}

/// AWS accepts the same fields form-encoded in a POST body.
async fn federation_post(
    state: web::Data<AppState>,
    request: HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    let parsed = if body.is_empty() {
        serde_urlencoded::from_str::<FederationParams>(request.query_string())
    } else {
        serde_urlencoded::from_bytes::<FederationParams>(&body)
    };
    match parsed {
        Ok(params) => federation(&state, &request, params).await,
        Err(_) => json_error(
            StatusCode::BAD_REQUEST,
            "InvalidParameter",
            "The form could not be read.",
        ),
    }
}

/// Refused federation requests one client network may make per window; past it
/// every request from that network is refused unevaluated until the window ends, so
/// guessing sign-in tokens or session keys stays slow and the audit log small.
const FEDERATION_FAILURES: RateLimit = RateLimit {
    name: "federation-failures",
    max: 30,
    window: std::time::Duration::from_secs(5 * 60),
};

/// Counts a refused federation request against its network's budget.
async fn count_failure(state: &AppState, request: &HttpRequest) {
    if let Err(error) = FEDERATION_FAILURES
        .count(state.cache.as_ref(), &client_network(request))
        .await
    {
        tracing::warn!(%error, "cannot count a refused federation request");
    }
}

async fn federation(
    state: &AppState,
    request: &HttpRequest,
    params: FederationParams,
) -> HttpResponse {
    let network = client_network(request);
    if let Ok(Some(retry_after)) = FEDERATION_FAILURES
        .exceeded(state.cache.as_ref(), &network)
        .await
    {
        tracing::warn!(%network, "federation: too many refused requests from this network");
        let message = format!(
            "Too many refused sign-in requests from your network. Try again in {} minutes.",
            retry_after.div_ceil(60)
        );
        let mut response = if params.action.as_deref() == Some("login") {
            error_page(
                StatusCode::TOO_MANY_REQUESTS,
                "Too many attempts",
                &message,
                "/start",
                "Your accounts",
            )
        } else {
            json_error(StatusCode::TOO_MANY_REQUESTS, "Throttling", &message)
        };
        if let Ok(value) = header::HeaderValue::from_str(&retry_after.to_string()) {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        return response;
    }
    match params.action.as_deref() {
        Some("getSigninToken") => get_signin_token(state, request, params).await,
        Some("login") => login(state, request, params).await,
        Some(_) => json_error(
            StatusCode::BAD_REQUEST,
            "InvalidAction",
            "Action must be getSigninToken or login.",
        ),
        None => json_error(
            StatusCode::BAD_REQUEST,
            "MissingAction",
            "The Action parameter is required: getSigninToken or login.",
        ),
    }
}

fn parse_duration(raw: Option<&str>) -> Result<Option<i64>, String> {
    let Some(raw) = raw.map(str::trim).filter(|r| !r.is_empty()) else {
        return Ok(None);
    };
    match raw.parse::<i64>() {
        Ok(seconds) if (MIN_SESSION_DURATION..=MAX_SESSION_DURATION).contains(&seconds) => {
            Ok(Some(seconds))
        }
        _ => Err(format!(
            "SessionDuration must be a number of seconds from {MIN_SESSION_DURATION} to {MAX_SESSION_DURATION}."
        )),
    }
}

async fn get_signin_token(
    state: &AppState,
    request: &HttpRequest,
    params: FederationParams,
) -> HttpResponse {
    const ACTION: &str = "federation:GetSigninToken";
    let now = state.clock.now().timestamp();
    let Some(raw) = params.session.as_deref().filter(|s| !s.trim().is_empty()) else {
        return json_error(
            StatusCode::BAD_REQUEST,
            "MissingParameter",
            "The Session parameter is required: url-encoded JSON with sessionId, sessionKey and sessionToken.",
        );
    };
    let Ok(given) = serde_json::from_str::<SessionParam>(raw) else {
        return json_error(
            StatusCode::BAD_REQUEST,
            "MalformedSession",
            "Session must be JSON with the string fields sessionId, sessionKey and sessionToken.",
        );
    };
    let duration = match parse_duration(params.session_duration.as_deref()) {
        Ok(duration) => duration,
        Err(message) => {
            return json_error(StatusCode::BAD_REQUEST, "InvalidParameterValue", &message);
        }
    };
    let key_id = truncated(&given.session_id);
    let key_id = key_id.as_str();
    let refuse = move |code: &'static str, message: &'static str| async move {
        count_failure(state, request).await;
        audit_anonymous(
            state,
            request,
            ANONYMOUS,
            ACTION,
            key_id,
            Outcome::Denied,
            json!({ "code": code, "reason": message }),
        )
        .await;
        json_error(StatusCode::FORBIDDEN, code, message)
    };
    if KeyKind::of(&given.session_id) != Some(KeyKind::Temporary) {
        return refuse(
            "InvalidClientTokenId",
            "sessionId must be the access key id of temporary role credentials (ASIA...).",
        )
        .await;
    }
    let caller = match state
        .sts
        .resolve_keys(&given.session_id, Some(&given.session_token), now)
        .await
    {
        Ok((caller, secret)) if same(&secret, &given.session_key) => caller,
        Ok(_) => {
            return refuse(
                "SignatureDoesNotMatch",
                "sessionKey does not match the credentials.",
            )
            .await;
        }
        Err(error) if error.status >= 500 => {
            return json_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                error.code,
                &error.message,
            );
        }
        Err(error) if error.code == "ExpiredToken" => {
            return refuse("ExpiredToken", "The session token has expired.").await;
        }
        Err(_) => {
            return refuse(
                "InvalidClientTokenId",
                "The session token is not valid for sessionId.",
            )
            .await;
        }
    };
    if !caller.is_role_session() || caller.session.is_none() {
        return refuse(
            "AccessDenied",
            "Console sessions are only for assumed-role credentials.",
        )
        .await;
    }
    let token = random_token(&state.random);
    let grant = SigninGrant {
        access_key_id: given.session_id.clone(),
        session_token: given.session_token.clone(),
        duration,
        issued_at: now,
    };
    let stored = match serde_json::to_vec(&grant) {
        Ok(stored) => stored,
        Err(_) => {
            return json_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalFailure",
                "The sign-in token could not be issued.",
            );
        }
    };
    if let Err(error) = state
        .cache
        .put(
            &hashed_key(SIGNIN_PREFIX, &token),
            &stored,
            SIGNIN_TOKEN_TTL,
        )
        .await
    {
        tracing::error!(%error, "cannot store a sign-in token");
        return json_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "ServiceUnavailable",
            "The sign-in token could not be issued. Try again shortly.",
        );
    }
    let role_arn = role_arn_of(&caller);
    audit(
        state,
        request,
        &caller.arn,
        ACTION,
        &role_arn,
        Outcome::Success,
        json!({ "access_key_id": caller.access_key_id, "session_duration": duration }),
    )
    .await;
    no_store(HttpResponse::Ok().json(json!({ "SigninToken": token })))
}

fn role_arn_of(caller: &Caller) -> String {
    match &caller.kind {
        CallerKind::AssumedRole { role_arn, .. } => role_arn.clone(),
        _ => caller.arn.clone(),
    }
}

enum Consumed {
    Grant(SigninGrant),
    Used,
    Unknown,
}

/// Takes a sign-in token exactly once: the first presenter stores the used-marker.
async fn consume(
    state: &AppState,
    token: &str,
    now: i64,
) -> Result<Consumed, crate::cache::CacheError> {
    let key = hashed_key(SIGNIN_PREFIX, token);
    let used_key = hashed_key(SIGNIN_USED_PREFIX, token);
    let Some(stored) = state.cache.get(&key).await? else {
        return Ok(if state.cache.get(&used_key).await?.is_some() {
            Consumed::Used
        } else {
            Consumed::Unknown
        });
    };
    if !state
        .cache
        .put_if_absent(&used_key, b"1", SIGNIN_TOKEN_TTL)
        .await?
    {
        return Ok(Consumed::Used);
    }
    if let Err(error) = state.cache.delete(&key).await {
        // The used-marker already refuses any second use.
        tracing::warn!(%error, "cannot delete a used sign-in token");
    }
    match serde_json::from_slice::<SigninGrant>(&stored) {
        Ok(grant) if now - grant.issued_at <= SIGNIN_TOKEN_TTL.as_secs() as i64 => {
            Ok(Consumed::Grant(grant))
        }
        _ => Ok(Consumed::Unknown),
    }
}

const LOGIN_ACTION: &str = "federation:Login";

/// A sign-in link refused before any session exists: an audited denial and a page
/// that says what happened and how to continue.
async fn refuse_login(
    state: &AppState,
    request: &HttpRequest,
    target: &str,
    details: serde_json::Value,
    status: StatusCode,
    title: &str,
    message: &str,
) -> HttpResponse {
    count_failure(state, request).await;
    audit_anonymous(
        state,
        request,
        ANONYMOUS,
        LOGIN_ACTION,
        target,
        Outcome::Denied,
        details,
    )
    .await;
    error_page(status, title, message, "/start", "Your accounts")
}

/// The account of the role session a sign-in token stands for, without using the
/// token up; `None` when the token is unknown, used or its session no longer valid
/// (the login then refuses it for that reason).
async fn peek_account(
    state: &AppState,
    token: &str,
    now: i64,
) -> Result<Option<String>, crate::cache::CacheError> {
    let Some(stored) = state.cache.get(&hashed_key(SIGNIN_PREFIX, token)).await? else {
        return Ok(None);
    };
    let Ok(grant) = serde_json::from_slice::<SigninGrant>(&stored) else {
        return Ok(None);
    };
    Ok(state
        .sts
        .resolve_keys(&grant.access_key_id, Some(&grant.session_token), now)
        .await
        .ok()
        .map(|(caller, _)| caller.account))
}

/// Whether `account`'s console destinations allow `url`; a store failure is logged
/// and allows nothing.
async fn account_allows(state: &AppState, account: &str, url: &reqwest::Url) -> bool {
    let Ok(account_id) = AccountId::parse(account.to_owned()) else {
        return false;
    };
    match state.store.console_destinations(&account_id).await {
        Ok(entries) => listed(&entries, url),
        Err(error) => {
            tracing::error!(%error, account, "cannot read console destinations");
            false
        }
    }
}

/// The refusal of a Destination that the session's account does not list.
async fn refuse_unlisted(
    state: &AppState,
    request: &HttpRequest,
    url: &reqwest::Url,
    account: &str,
) -> HttpResponse {
    refuse_login(
        state,
        request,
        &truncated(url.as_str()),
        json!({ "reason": "Destination is not on the account's console destinations", "account": account }),
        StatusCode::BAD_REQUEST,
        "Destination not allowed",
        &format!(
            "This sign-in link asks to continue to {}, which is not one of the console destinations of account {account}. No session was created. Open the console from your accounts instead, or ask an administrator to add the address to the account's console destinations.",
            truncated(url.as_str())
        ),
    )
    .await
}

async fn login(state: &AppState, request: &HttpRequest, params: FederationParams) -> HttpResponse {
    const ACTION: &str = LOGIN_ACTION;
    let now = state.clock.now().timestamp();
    let raw_destination = params.destination.as_deref().unwrap_or("/console");
    let Some(destination) =
        parse_destination(raw_destination, &request_info::public_origin(request))
    else {
        return refuse_login(
            state,
            request,
            &truncated(raw_destination),
            json!({ "reason": "Destination is not on the allow-list" }),
            StatusCode::BAD_REQUEST,
            "Destination not allowed",
            "This sign-in link asks to continue to an address that Rolegate does not send console sessions to: only this Rolegate's own console (/console) or an https:// address on the account's console destinations is allowed. No session was created. Open the console from your accounts instead.",
        )
        .await;
    };
    let Some(token) = params
        .signin_token
        .as_deref()
        .filter(|t| !t.is_empty() && t.len() <= 256)
    else {
        return refuse_login(
            state,
            request,
            "-",
            json!({ "reason": "no SigninToken" }),
            StatusCode::BAD_REQUEST,
            "Sign-in link incomplete",
            "This sign-in link has no sign-in token. Get a new link, or open the console from your accounts.",
        )
        .await;
    };
    let unavailable = || {
        error_page(
            StatusCode::SERVICE_UNAVAILABLE,
            "Sign-in unavailable",
            "The console could not be opened right now. Please try again shortly.",
            "/start",
            "Your accounts",
        )
    };
    // An external Destination is checked against the session's account before the
    // token is used up, so a link with a wrong Destination does not cost the token.
    if let Destination::External(url) = &destination {
        match peek_account(state, token, now).await {
            Ok(Some(account)) if !account_allows(state, &account, url).await => {
                return refuse_unlisted(state, request, url, &account).await;
            }
            Ok(_) => {}
            Err(error) => {
                tracing::error!(%error, "cannot read sign-in tokens");
                return unavailable();
            }
        }
    }
    let grant = match consume(state, token, now).await {
        Ok(Consumed::Grant(grant)) => grant,
        Ok(Consumed::Used) => {
            return refuse_login(
                state,
                request,
                "-",
                json!({ "reason": "sign-in token already used" }),
                StatusCode::FORBIDDEN,
                "Sign-in link already used",
                "Each sign-in link works once, and this one has been used. No session was created. Get a new link, or open the console from your accounts.",
            )
            .await;
        }
        Ok(Consumed::Unknown) => {
            return refuse_login(
                state,
                request,
                "-",
                json!({ "reason": "sign-in token expired or unknown" }),
                StatusCode::FORBIDDEN,
                "Sign-in link expired",
                "This sign-in link has expired (links are valid for 15 minutes) or was not issued by this Rolegate. No session was created. Get a new link, or open the console from your accounts.",
            )
            .await;
        }
        Err(error) => {
            tracing::error!(%error, "cannot read sign-in tokens");
            return unavailable();
        }
    };
    let caller = match state
        .sts
        .resolve_keys(&grant.access_key_id, Some(&grant.session_token), now)
        .await
    {
        Ok((caller, _)) => caller,
        Err(error) => {
            return refuse_login(
                state,
                request,
                &grant.access_key_id,
                json!({ "code": error.code, "reason": "the role session ended" }),
                StatusCode::FORBIDDEN,
                "Role session ended",
                "The role session behind this sign-in link has expired or was revoked. No console session was created. Open the console again from your accounts.",
            )
            .await;
        }
    };
    // The decision itself, on the session actually signed in.
    let (query, external) = match destination {
        Destination::Console(query) => (query, None),
        Destination::External(url) => {
            if !account_allows(state, &caller.account, &url).await {
                return refuse_unlisted(state, request, &url, &caller.account).await;
            }
            (String::new(), Some(url))
        }
    };
    let back = params.issuer.as_deref().map_or("/start", safe_return_to);
    let opened = open_console(
        state,
        request,
        &caller,
        &grant.session_token,
        grant.duration,
        back,
        &query,
        StatusCode::FOUND,
        now,
    )
    .await;
    match opened {
        Ok((mut response, short)) => {
            if let Some(url) = &external {
                match header::HeaderValue::from_str(url.as_str()) {
                    Ok(location) => {
                        response.headers_mut().insert(header::LOCATION, location);
                    }
                    Err(_) => return unavailable(),
                }
            }
            audit(
                state,
                request,
                &caller.arn,
                ACTION,
                &role_arn_of(&caller),
                Outcome::Success,
                json!({
                    "access_key_id": caller.access_key_id,
                    "console": short,
                    "destination": external.as_ref().map(|u| truncated(u.as_str())),
                }),
            )
            .await;
            response
        }
        Err(response) => response,
    }
}

// ---------------------------------------------------------------------------------
// Console sessions.

#[derive(Serialize, Deserialize)]
struct ConsoleSession {
    access_key_id: String,
    session_token: String,
    csrf: String,
    /// Where "Back" goes: a local path (the login's `Issuer`, or `/start`).
    back: String,
    expires_at: i64,
}

fn console_cookie_name(short: &str) -> String {
    format!("{CONSOLE_COOKIE_PREFIX}{short}")
}

fn console_cookie(request: &HttpRequest, short: &str, value: String, ttl: i64) -> Cookie<'static> {
    Cookie::build(console_cookie_name(short), value)
        .path(format!("/console/{short}"))
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(request_info::is_https(request))
        .max_age(actix_web::cookie::time::Duration::seconds(ttl))
        .finish()
}

/// Creates a console session for a verified role session and redirects into it.
/// Returns the response and the console's short id.
#[allow(clippy::too_many_arguments)]
async fn open_console(
    state: &AppState,
    request: &HttpRequest,
    caller: &Caller,
    session_token: &str,
    duration: Option<i64>,
    back: &str,
    query: &str,
    status: StatusCode,
    now: i64,
) -> Result<(HttpResponse, String), HttpResponse> {
    let Some(claims) = caller.session.as_ref().filter(|_| caller.is_role_session()) else {
        return Err(error_page(
            StatusCode::FORBIDDEN,
            "No console for these credentials",
            "Console sessions are only for role sessions.",
            "/start",
            "Your accounts",
        ));
    };
    let remaining = claims.expires_at - now;
    if remaining <= 0 {
        return Err(error_page(
            StatusCode::FORBIDDEN,
            "Role session ended",
            "The role session has expired. Open the console again from your accounts.",
            "/start",
            "Your accounts",
        ));
    }
    let ttl = duration.map_or(remaining, |d| d.min(remaining));
    let id = hex::encode(state.random.bytes::<32>());
    let short = id.get(..SHORT_ID_LEN).unwrap_or_default().to_owned();
    let session = ConsoleSession {
        access_key_id: caller.access_key_id.clone(),
        session_token: session_token.to_owned(),
        csrf: random_token(&state.random),
        back: back.to_owned(),
        expires_at: now + ttl,
    };
    let unavailable = || {
        error_page(
            StatusCode::SERVICE_UNAVAILABLE,
            "Console unavailable",
            "The console could not be opened right now. Please try again shortly.",
            "/start",
            "Your accounts",
        )
    };
    let Ok(stored) = serde_json::to_vec(&session) else {
        return Err(unavailable());
    };
    if let Err(error) = state
        .cache
        .put(
            &hashed_key(CONSOLE_PREFIX, &id),
            &stored,
            Duration::from_secs(ttl.unsigned_abs()),
        )
        .await
    {
        tracing::error!(%error, "cannot store a console session");
        return Err(unavailable());
    }
    let mut response = no_store(
        HttpResponse::build(status)
            .insert_header((header::LOCATION, format!("/console/{short}{query}")))
            .finish(),
    );
    let _ = response.add_cookie(&console_cookie(request, &short, id, ttl));
    Ok((response, short))
}

/// A console whose cookie checked out, with the role session behind it.
struct OpenConsole {
    id: String,
    short: String,
    session: ConsoleSession,
    caller: Caller,
}

fn is_short_id(short: &str) -> bool {
    short.len() == SHORT_ID_LEN
        && short
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn removal(request: &HttpRequest, short: &str) -> Cookie<'static> {
    let mut gone = console_cookie(request, short, String::new(), 0);
    gone.make_removal();
    gone
}

/// Refuses a console request: a page, an audit event, and the cookie removed.
async fn refuse_console(
    state: &AppState,
    request: &HttpRequest,
    short: &str,
    actor: &str,
    reason: &str,
    title: &str,
    message: &str,
) -> HttpResponse {
    audit(
        state,
        request,
        actor,
        "console:Open",
        &format!("/console/{short}"),
        Outcome::Denied,
        json!({ "reason": reason }),
    )
    .await;
    let mut response = error_page(
        StatusCode::FORBIDDEN,
        title,
        message,
        "/start",
        "Your accounts",
    );
    let _ = response.add_cookie(&removal(request, short));
    response
}

async fn load_console(
    state: &AppState,
    request: &HttpRequest,
    short: &str,
) -> Result<OpenConsole, HttpResponse> {
    if !is_short_id(short) {
        return Err(error_page(
            StatusCode::NOT_FOUND,
            "No such console",
            "There is no console at this address. Open one from your accounts.",
            "/start",
            "Your accounts",
        ));
    }
    let Some(id) = request
        .cookie(&console_cookie_name(short))
        .map(|c| c.value().to_owned())
    else {
        return Err(refuse_console(state, request, short, ANONYMOUS, "no console cookie", "Console not open in this browser", "This console session is not open in this browser (or it ended). Open the console again from your accounts.").await);
    };
    let well_formed = id.len() == CONSOLE_ID_LEN
        && id.starts_with(short)
        && id.bytes().all(|b| b.is_ascii_hexdigit());
    let stored = if well_formed {
        match state.cache.get(&hashed_key(CONSOLE_PREFIX, &id)).await {
            Ok(stored) => stored,
            Err(error) => {
                tracing::error!(%error, "cannot read console sessions");
                return Err(error_page(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Console unavailable",
                    "The console could not be shown right now. Please try again shortly.",
                    "/start",
                    "Your accounts",
                ));
            }
        }
    } else {
        None
    };
    let Some(session) = stored.and_then(|s| serde_json::from_slice::<ConsoleSession>(&s).ok())
    else {
        return Err(refuse_console(state, request, short, ANONYMOUS, "unknown or tampered console cookie", "Console session not valid", "This console session is not valid: it has ended, was signed out, or its cookie was changed. No session was opened. Open the console again from your accounts.").await);
    };
    let now = state.clock.now().timestamp();
    match state
        .sts
        .resolve_keys(&session.access_key_id, Some(&session.session_token), now)
        .await
    {
        Ok((caller, _)) if caller.is_role_session() => Ok(OpenConsole {
            id,
            short: short.to_owned(),
            session,
            caller,
        }),
        Ok(_) | Err(_) => {
            let _ = state.cache.delete(&hashed_key(CONSOLE_PREFIX, &id)).await;
            Err(refuse_console(state, request, short, &session.access_key_id, "role session ended", "Role session ended", "The role session behind this console has expired or was revoked. Open the console again from your accounts.").await)
        }
    }
}

// ---------------------------------------------------------------------------------
// The console page.

struct PolicyView {
    kind: &'static str,
    name: String,
    document: String,
}

struct TagView {
    key: String,
    value: String,
}

struct CheckResult {
    decision: &'static str,
    reason: String,
    /// The deciding statement: where it is, and its JSON.
    source: Option<String>,
    statement: Option<String>,
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "console.html")]
struct ConsolePage<'a> {
    short: &'a str,
    csrf: &'a str,
    back: &'a str,
    arn: &'a str,
    account: &'a str,
    role_name: &'a str,
    role_arn: &'a str,
    session_name: &'a str,
    source_identity: &'a str,
    access_key_id: &'a str,
    expires: String,
    remaining: String,
    tags: Vec<TagView>,
    policies: Vec<PolicyView>,
    action: &'a str,
    resource: &'a str,
    context: &'a str,
    resource_policy: &'a str,
    result: Option<CheckResult>,
}

fn pretty(document: &str) -> String {
    serde_json::from_str::<serde_json::Value>(document)
        .ok()
        .and_then(|v| serde_json::to_string_pretty(&v).ok())
        .unwrap_or_else(|| document.to_owned())
}

/// The JSON of statement `index` of a policy document.
fn statement_json(document: &str, index: usize) -> Option<String> {
    let value: serde_json::Value = serde_json::from_str(document).ok()?;
    let statement = match value.get("Statement")? {
        serde_json::Value::Array(list) => list.get(index)?.clone(),
        single if index == 0 => single.clone(),
        _ => return None,
    };
    serde_json::to_string_pretty(&statement).ok()
}

/// The documents behind a session's policies, in the order the evaluation indexes them.
struct Documents {
    identity: Vec<(String, String)>,
    boundary: Option<(String, String)>,
    session: Vec<(String, String)>,
}

impl Documents {
    fn views(&self) -> Vec<PolicyView> {
        let identity = self.identity.iter().map(|(name, doc)| PolicyView {
            kind: if name.starts_with("arn:") {
                "Managed policy"
            } else {
                "Inline policy"
            },
            name: name.clone(),
            document: pretty(doc),
        });
        let boundary = self.boundary.iter().map(|(name, doc)| PolicyView {
            kind: "Permissions boundary",
            name: name.clone(),
            document: pretty(doc),
        });
        let session = self.session.iter().map(|(name, doc)| PolicyView {
            kind: "Session policy",
            name: name.clone(),
            document: pretty(doc),
        });
        identity.chain(boundary).chain(session).collect()
    }

    fn get(&self, source: PolicySource) -> Option<&(String, String)> {
        match source {
            PolicySource::Identity(i) => self.identity.get(i),
            PolicySource::Boundary => self.boundary.as_ref(),
            PolicySource::Session(i) => self.session.get(i),
            PolicySource::Resource => None,
        }
    }
}

async fn documents(state: &AppState, caller: &Caller) -> Result<Documents, String> {
    let CallerKind::AssumedRole { role_name, .. } = &caller.kind else {
        return Err("not a role session".into());
    };
    let account = AccountId::parse(caller.account.clone()).map_err(|e| e.to_string())?;
    let name = RoleName::parse(role_name.clone()).map_err(|e| e.to_string())?;
    let permissions = state
        .store
        .role_permissions(&account, &name)
        .await
        .map_err(|e| e.to_string())?;
    let mut session = Vec::new();
    if let Some(claims) = &caller.session {
        if let Some(document) = &claims.session_policy {
            session.push(("inline session policy".to_owned(), document.clone()));
        }
        for arn in &claims.policy_arns {
            let document = state
                .store
                .policy_document(arn)
                .await
                .map_err(|e| e.to_string())?;
            session.push((arn.clone(), document));
        }
    }
    Ok(Documents {
        identity: permissions
            .identity_policies
            .into_iter()
            .map(|d| (d.source, d.document))
            .collect(),
        boundary: permissions
            .permissions_boundary
            .map(|d| (d.source, d.document)),
        session,
    })
}

#[derive(Debug, Default, Deserialize)]
struct CheckForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    action: String,
    #[serde(default)]
    resource: String,
    #[serde(default)]
    context: String,
    /// Optional resource-based policy of the resource's owner (JSON).
    #[serde(default)]
    resource_policy: String,
}

/// `key=value` lines; a key given on several lines is multi-valued.
fn parse_context(text: &str) -> Result<BTreeMap<String, Vec<String>>, String> {
    let mut context: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    if lines.len() > MAX_CONTEXT_LINES {
        return Err(format!("At most {MAX_CONTEXT_LINES} context lines."));
    }
    for line in lines {
        let Some((key, value)) = line.split_once('=') else {
            return Err(format!("Context line \"{line}\" is not key=value."));
        };
        let key = key.trim();
        if key.is_empty() {
            return Err(format!("Context line \"{line}\" has no key."));
        }
        if is_reserved_context_key(key) {
            return Err(format!(
                "{key} is set by Rolegate from the verified session and cannot be supplied."
            ));
        }
        context
            .entry(key.to_owned())
            .or_default()
            .push(value.trim().to_owned());
    }
    Ok(context)
}

/// Evaluates an action and resource against the session's policies exactly as
/// `/v1/authorize` does (the same decision function): identity policies,
/// permissions boundary, session policies, and the account boundary: a
/// resource in another account (its ARN's account, or `aws:ResourceAccount`
/// in the context) is an implicit deny, as `/v1/authorize` answers without a
/// resource policy.
fn check(
    caller: &Caller,
    policies: &CallerPolicies,
    documents: &Documents,
    form: &CheckForm,
    now: i64,
) -> CheckResult {
    let failed = |message: String| CheckResult {
        decision: "Error",
        reason: String::new(),
        source: None,
        statement: None,
        error: Some(message),
    };
    let (action, resource) = (form.action.trim(), form.resource.trim());
    if action.is_empty() || resource.is_empty() {
        return failed("Enter an action (e.g. s3:GetObject) and a resource ARN (or *).".into());
    }
    if action.len() > MAX_CHECK_FIELD
        || resource.len() > MAX_CHECK_FIELD
        || form.context.len() > 8 * MAX_CHECK_FIELD
    {
        return failed("The action, resource or context is too long.".into());
    }
    let extra = match parse_context(&form.context) {
        Ok(extra) => extra,
        Err(message) => return failed(message),
    };
    let resource_policy = match crate::policy::parse_supplied_resource_policy(&form.resource_policy)
    {
        Ok(policy) => policy,
        Err(error) => return failed(format!("The resource policy is not valid: {error}")),
    };
    let context = caller.context_with(now, extra.iter().map(|(k, v)| (k.as_str(), v.as_slice())));
    let verdict = policies.authorize(caller, action, resource, &context, resource_policy.as_ref());
    let reason = if verdict.is_allowed() {
        "allowed by the statement below".to_owned()
    } else {
        verdict.reason.clone()
    };
    let (source, statement) = match verdict.deciding {
        Some((PolicySource::Resource, statement_index, sid)) => {
            let sid = sid.map(|s| format!(" (Sid {s})")).unwrap_or_default();
            (
                Some(format!(
                    "statement {} of the resource policy{sid}",
                    statement_index + 1
                )),
                statement_json(form.resource_policy.trim(), statement_index),
            )
        }
        Some((deciding_source, statement_index, sid)) => {
            let document = documents.get(deciding_source);
            let name =
                document.map_or_else(|| deciding_source.to_string(), |(name, _)| name.clone());
            let sid = sid.map(|s| format!(" (Sid {s})")).unwrap_or_default();
            (
                Some(format!("statement {} of {name}{sid}", statement_index + 1)),
                document.and_then(|(_, doc)| statement_json(doc, statement_index)),
            )
        }
        None => (None, None),
    };
    CheckResult {
        decision: verdict.decision.as_str(),
        reason,
        source,
        statement,
        error: None,
    }
}

async fn render_console(
    state: &AppState,
    request: &HttpRequest,
    open: &OpenConsole,
    form: &CheckForm,
    run_check: bool,
) -> HttpResponse {
    let now = state.clock.now().timestamp();
    let caller = &open.caller;
    let policies = match state.sts.caller_policies(caller).await {
        Ok(policies) => policies,
        Err(error) if error.status >= 500 => {
            return error_page(
                StatusCode::SERVICE_UNAVAILABLE,
                "Console unavailable",
                "The role's policies could not be read right now. Please try again shortly.",
                "/start",
                "Your accounts",
            );
        }
        Err(error) => {
            let _ = state
                .cache
                .delete(&hashed_key(CONSOLE_PREFIX, &open.id))
                .await;
            return refuse_console(state, request, &open.short, &caller.arn, &error.message, "Role session ended", "The role session behind this console was revoked or its role no longer exists. Open the console again from your accounts.").await;
        }
    };
    let documents = match documents(state, caller).await {
        Ok(documents) => documents,
        Err(error) => {
            tracing::error!(%error, "cannot read role policies for the console");
            return error_page(
                StatusCode::SERVICE_UNAVAILABLE,
                "Console unavailable",
                "The role's policies could not be read right now. Please try again shortly.",
                "/start",
                "Your accounts",
            );
        }
    };
    let result = run_check.then(|| check(caller, &policies, &documents, form, now));
    let (role_arn, role_name, session_name) = match &caller.kind {
        CallerKind::AssumedRole {
            role_arn,
            role_name,
            session_name,
        } => (role_arn.as_str(), role_name.as_str(), session_name.as_str()),
        _ => ("", "", ""),
    };
    let claims = caller.session.as_ref();
    let expires_at = claims
        .map_or(now, |c| c.expires_at)
        .min(open.session.expires_at);
    let page = ConsolePage {
        short: &open.short,
        csrf: &open.session.csrf,
        back: safe_return_to(&open.session.back),
        arn: &caller.arn,
        account: &caller.account,
        role_name,
        role_arn,
        session_name,
        source_identity: claims
            .and_then(|c| c.source_identity.as_deref())
            .unwrap_or(""),
        access_key_id: &caller.access_key_id,
        expires: format_time(expires_at),
        remaining: format_remaining(expires_at - now),
        tags: caller
            .principal_tags
            .iter()
            .map(|(key, value)| TagView {
                key: key.clone(),
                value: value.clone(),
            })
            .collect(),
        policies: documents.views(),
        action: &form.action,
        resource: &form.resource,
        context: &form.context,
        resource_policy: &form.resource_policy,
        result,
    };
    match page.render() {
        Ok(body) => html(StatusCode::OK, body),
        Err(error) => {
            tracing::error!(%error, "cannot render the console page");
            error_page(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Console unavailable",
                "The console page could not be shown.",
                "/start",
                "Your accounts",
            )
        }
    }
}

async fn console_index() -> HttpResponse {
    // Each console lives at its own /console/<id>; the list of roles is the portal.
    redirect("/start")
}

/// `?action=...&resource=...` (e.g. from the login's Destination) pre-fills "can I?".
#[derive(Debug, Default, Deserialize)]
struct Prefill {
    #[serde(default)]
    action: String,
    #[serde(default)]
    resource: String,
}

async fn console_view(
    state: web::Data<AppState>,
    request: HttpRequest,
    path: web::Path<String>,
) -> HttpResponse {
    let open = match load_console(&state, &request, &path).await {
        Ok(open) => open,
        Err(response) => return response,
    };
    let prefill = serde_urlencoded::from_str::<Prefill>(request.query_string()).unwrap_or_default();
    let form = CheckForm {
        action: prefill.action.chars().take(MAX_CHECK_FIELD).collect(),
        resource: prefill.resource.chars().take(MAX_CHECK_FIELD).collect(),
        ..CheckForm::default()
    };
    render_console(&state, &request, &open, &form, false).await
}

async fn console_check(
    state: web::Data<AppState>,
    request: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
) -> HttpResponse {
    let open = match load_console(&state, &request, &path).await {
        Ok(open) => open,
        Err(response) => return response,
    };
    let form = serde_urlencoded::from_bytes::<CheckForm>(&body).unwrap_or_default();
    if !same(&open.session.csrf, &form.csrf) {
        audit(
            &state,
            &request,
            &open.caller.arn,
            "console:Check",
            &format!("/console/{}", open.short),
            Outcome::Denied,
            json!({ "reason": "missing or wrong CSRF token" }),
        )
        .await;
        return error_page(
            StatusCode::FORBIDDEN,
            "Request not accepted",
            "This request did not come from your console page. Go back to the console and try again.",
            &format!("/console/{}", open.short),
            "Console",
        );
    }
    render_console(&state, &request, &open, &form, true).await
}

#[derive(Deserialize)]
struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

async fn console_logout(
    state: web::Data<AppState>,
    request: HttpRequest,
    path: web::Path<String>,
    form: web::Form<CsrfForm>,
) -> HttpResponse {
    let open = match load_console(&state, &request, &path).await {
        Ok(open) => open,
        Err(response) => return response,
    };
    if !same(&open.session.csrf, &form.csrf) {
        return error_page(
            StatusCode::FORBIDDEN,
            "Request not accepted",
            "This sign-out did not come from your console page.",
            &format!("/console/{}", open.short),
            "Console",
        );
    }
    let _ = state
        .cache
        .delete(&hashed_key(CONSOLE_PREFIX, &open.id))
        .await;
    audit(
        &state,
        &request,
        &open.caller.arn,
        "console:SignOut",
        &role_arn_of(&open.caller),
        Outcome::Success,
        json!({ "console": open.short }),
    )
    .await;
    let mut response = redirect(safe_return_to(&open.session.back));
    let _ = response.add_cookie(&removal(&request, &open.short));
    response
}

// ---------------------------------------------------------------------------------
// The portal's "Console" button and deep links.

#[derive(Deserialize)]
struct ConsoleForm {
    #[serde(default)]
    csrf: String,
    account: String,
    role: String,
}

async fn start_console(
    state: web::Data<AppState>,
    request: HttpRequest,
    form: web::Form<ConsoleForm>,
) -> HttpResponse {
    const ACTION: &str = "portal:OpenConsole";
    let target = format!("{}/{}", form.account, form.role);
    let portal = match signed_in_form(&state, &request, &form.csrf, ACTION, &target).await {
        Ok(portal) => portal,
        Err(refusal) => return refusal,
    };
    let user = portal.identity.user_name.clone();
    let now = state.clock.now().timestamp();
    let assumed = match issue_for_session(
        &state,
        &request,
        &portal,
        (&form.account, &form.role),
        ACTION,
        "No console session was created.",
    )
    .await
    {
        Ok(assumed) => assumed,
        Err(refusal) => return refusal,
    };
    let token = &assumed.credentials.session_token;
    let caller = match state
        .sts
        .resolve_keys(&assumed.credentials.access_key_id, Some(token), now)
        .await
    {
        Ok((caller, _)) => caller,
        Err(error) => {
            audit(
                &state,
                &request,
                &user,
                ACTION,
                &target,
                Outcome::Failure,
                json!({ "code": error.code, "reason": error.message }),
            )
            .await;
            return error_page(
                StatusCode::SERVICE_UNAVAILABLE,
                "Console unavailable",
                "The console could not be opened right now. Please try again shortly.",
                "/start",
                "Your accounts",
            );
        }
    };
    match open_console(
        &state,
        &request,
        &caller,
        token,
        None,
        "/start",
        "",
        StatusCode::SEE_OTHER,
        now,
    )
    .await
    {
        Ok((response, short)) => {
            audit(
                &state,
                &request,
                &user,
                ACTION,
                &assumed.assumed_role_arn,
                Outcome::Success,
                json!({ "access_key_id": assumed.credentials.access_key_id, "console": short }),
            )
            .await;
            response
        }
        Err(response) => {
            audit(
                &state,
                &request,
                &user,
                ACTION,
                &target,
                Outcome::Failure,
                json!({ "reason": "console session not stored" }),
            )
            .await;
            response
        }
    }
}

#[derive(Template)]
#[template(path = "console_open.html")]
struct ConfirmPage<'a> {
    csrf: &'a str,
    account: &'a str,
    account_name: &'a str,
    role: &'a str,
    description: &'a str,
}

/// `GET /start/account/<id>/role/<name>/console`: a deep link that works without
/// script. GET mints nothing; it shows a button that posts the Console form.
async fn confirm_console(
    state: web::Data<AppState>,
    request: HttpRequest,
    path: web::Path<(String, String)>,
) -> HttpResponse {
    let (account, role) = path.into_inner();
    let Some((_, portal)) = session(&state, &request).await else {
        let here = format!("/start/account/{account}/role/{role}/console");
        let encoded =
            percent_encoding::utf8_percent_encode(&here, percent_encoding::NON_ALPHANUMERIC);
        return redirect(&format!("/signin?return_to={encoded}"));
    };
    let roles = match state.sts.entitlements(&portal.identity).await {
        Ok(roles) => roles,
        Err(_) => {
            return error_page(
                StatusCode::SERVICE_UNAVAILABLE,
                "Unavailable",
                "Your roles could not be checked right now.",
                "/start",
                "Try again",
            );
        }
    };
    let Some(granted) = roles
        .iter()
        .find(|g| g.account().as_str() == account && g.role_name().as_str() == role)
    else {
        audit(
            &state,
            &request,
            &portal.identity.user_name,
            "portal:OpenConsole",
            &truncated(&format!("{account}/{role}")),
            Outcome::Denied,
            json!({ "reason": "not entitled (deep link)" }),
        )
        .await;
        return error_page(
            StatusCode::FORBIDDEN,
            "No access to this role",
            &format!(
                "Your groups do not grant you role {role} in account {account}, so no console was opened. Choose one of your roles instead, or ask an administrator for access."
            ),
            "/start",
            "Your accounts",
        );
    };
    let account_name = state
        .store
        .list_accounts()
        .await
        .unwrap_or_default()
        .into_iter()
        .find(|a| &a.id == granted.account())
        .map(|a| a.name)
        .unwrap_or_default();
    let page = ConfirmPage {
        csrf: &portal.csrf,
        account: &account,
        account_name: &account_name,
        role: &role,
        description: granted.description(),
    };
    html(StatusCode::OK, page.render().unwrap_or_default())
}

async fn css() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/css; charset=utf-8")
        .body(include_str!("../../static/console.css"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ORIGIN: &str = "http://127.0.0.1:8080";

    #[test]
    fn only_the_own_console_is_an_allowed_destination() {
        for (destination, query) in [
            ("/console", ""),
            ("/console/", ""),
            ("/console?action=s3:GetObject", "?action=s3:GetObject"),
            ("http://127.0.0.1:8080/console", ""),
            ("HTTP://127.0.0.1:8080/console#x", ""),
        ] {
            assert_eq!(
                allowed_destination(destination, ORIGIN).as_deref(),
                Some(query),
                "{destination}"
            );
        }
        for destination in [
            "https://evil.example/console",
            "//evil.example/console",
            "http://127.0.0.1:8080.evil.example/console",
            "http://127.0.0.1:8080@evil.example/console",
            "https://127.0.0.1:8080/console",
            "/start",
            "/console/../start",
            "/consolex",
            "/console/abc",
            "/\\evil.example",
            "javascript:alert(1)",
            "/console\r\nSet-Cookie: x=y",
            "",
        ] {
            assert_eq!(
                allowed_destination(destination, ORIGIN),
                None,
                "{destination}"
            );
        }
    }

    fn entries(list: &[&str]) -> Vec<ConsoleDestination> {
        list.iter()
            .map(|e| ConsoleDestination::parse(e).unwrap())
            .collect()
    }

    fn external(destination: &str) -> reqwest::Url {
        match parse_destination(destination, ORIGIN) {
            Some(Destination::External(url)) => url,
            other => panic!("{destination}: {other:?}"),
        }
    }

    #[test]
    fn destinations_are_the_console_or_absolute_web_urls() {
        assert_eq!(
            parse_destination("/console?a=b", ORIGIN),
            Some(Destination::Console("?a=b".into()))
        );
        for refused in [
            "//evil.example/console",
            "/start",
            "javascript:alert(1)",
            "JaVaScRiPt://good.example.com/%0aalert(1)",
            "data:text/html,x",
            "ftp://good.example.com/",
            "https://user@good.example.com/",
            "https://good.example.com:pw@evil.example/",
            "https:\\\\evil.example",
            "https://good.example.com/\tx",
            "",
        ] {
            assert_eq!(parse_destination(refused, ORIGIN), None, "{refused}");
        }
        assert_eq!(
            external("HTTPS://Good.Example.COM:443/app/x?q=1#f").as_str(),
            "https://good.example.com/app/x?q=1#f"
        );
        // Lenient forms are matched, and redirected to, as the URL they parse to.
        assert_eq!(
            external("https:///good.example.com/app").as_str(),
            "https://good.example.com/app"
        );
    }

    #[test]
    fn the_allow_list_matches_parsed_urls_not_strings() {
        let list = entries(&["https://good.example.com/app", "https://other.example.com/"]);
        for allowed in [
            "https://good.example.com/app",
            "https://good.example.com/app/",
            "https://good.example.com/app/deep/x?y=1",
            "https://GOOD.example.com:443/app/x",
            "https://good.example.com/other/../app/x",
            "https://other.example.com/",
            "https://other.example.com/anything",
        ] {
            assert!(listed(&list, &external(allowed)), "{allowed}");
        }
        for refused in [
            "https://good.example.com/apples",
            "https://good.example.com/",
            "https://good.example.com/app/../admin",
            "https://good.example.com/app/%2e%2e/admin",
            "https://good.example.com/app/..%2fadmin",
            "https://good.example.com/app%2fx",
            "https://good.example.com.evil.example/app",
            "https://evil.example/good.example.com/app",
            "https://good.example.com:8443/app",
            "http://good.example.com/app",
            "https://sub.good.example.com/app",
            "https://other.example.com.evil.example/",
        ] {
            assert!(!listed(&list, &external(refused)), "{refused}");
        }
        let slash = entries(&["https://good.example.com/app/"]);
        assert!(listed(&slash, &external("https://good.example.com/app/x")));
        assert!(!listed(&slash, &external("https://good.example.com/app")));
        let port = entries(&["http://127.0.0.1:9000/ui"]);
        assert!(listed(&port, &external("http://127.0.0.1:9000/ui/x")));
        assert!(!listed(&port, &external("http://127.0.0.1:9001/ui/x")));
    }

    #[test]
    fn allow_list_entries_are_validated() {
        for ok in [
            "https://good.example.com",
            "https://good.example.com/app",
            "https://good.example.com:8443/app/",
            "http://127.0.0.1:9000/ui",
            "http://localhost/x",
            "http://[::1]:8080/",
        ] {
            assert!(ConsoleDestination::parse(ok).is_ok(), "{ok}");
        }
        for (bad, why) in [
            ("http://good.example.com/", "https"),
            ("https://*.example.com/", "wildcard"),
            ("https://good.example.com/*", "wildcard"),
            ("https://user@good.example.com/", "user info"),
            ("https://user:pw@good.example.com/", "user info"),
            ("https://good.example.com/#x", "fragment"),
            ("https://good.example.com/?q=1", "query"),
            ("https://good.example.com/a%2Fb", "encoded"),
            ("/console", "absolute URL"),
            ("javascript:alert(1)", "https"),
            ("", "1 to 2048"),
        ] {
            let error = ConsoleDestination::parse(bad).unwrap_err().to_string();
            assert!(error.contains(why), "{bad}: {error}");
        }
        assert_eq!(
            ConsoleDestination::parse(" HTTPS://Good.Example.com ")
                .unwrap()
                .as_str(),
            "https://good.example.com/"
        );
    }

    #[test]
    fn context_lines() {
        let parsed =
            parse_context("aws:RequestedRegion = eu-west-1\n\ns3:prefix=a/\ns3:prefix=b/").unwrap();
        assert_eq!(parsed["aws:RequestedRegion"], vec!["eu-west-1"]);
        assert_eq!(parsed["s3:prefix"], vec!["a/", "b/"]);
        assert!(parse_context("no equals sign").is_err());
        assert!(parse_context("aws:PrincipalTag/team=x").is_err());
        assert!(parse_context("aws:username=root").is_err());
    }

    #[test]
    fn statements_by_index() {
        let doc = r#"{"Version":"2012-10-17","Statement":[{"Sid":"A","Effect":"Allow"},{"Sid":"B","Effect":"Deny"}]}"#;
        assert!(statement_json(doc, 1).unwrap().contains("\"B\""));
        assert!(statement_json(doc, 2).is_none());
        let single = r#"{"Statement":{"Sid":"S","Effect":"Allow"}}"#;
        assert!(statement_json(single, 0).unwrap().contains("\"S\""));
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration(None), Ok(None));
        assert_eq!(parse_duration(Some("900")), Ok(Some(900)));
        assert!(parse_duration(Some("899")).is_err());
        assert!(parse_duration(Some("43201")).is_err());
        assert!(parse_duration(Some("x")).is_err());
        assert_eq!(format_remaining(3600), "1 h");
        assert_eq!(format_remaining(3660), "1 h 1 min");
        assert_eq!(format_remaining(30), "1 min");
    }
}
