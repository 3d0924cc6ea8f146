//! The login portal: sign in at the built-in directory, see the accounts and roles
//! your groups grant, get access keys for a role. Sessions live in the cache (shared
//! by replicas); the cookie holds only an opaque random id.

use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::Utc;
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::AppState;
use super::aws_json::{RateLimit, client_network};
use super::request_info;
use crate::idp::directory::{SignInError, masked_name};
use crate::seed::DIRECTORY_SOURCE_ID;
use crate::store::{AuditEvent, Outcome};
use crate::sts::portal::PortalIdentity;

const SESSION_COOKIE: &str = "rg_session";
/// The login CSRF cookie, before any session exists: a random value, which the
/// sign-in form must answer with its MAC under the server's key (a signed double
/// submit: a value planted in the cookie is useless without the MAC). Over https the
/// cookie is `__Host-rg_csrf`, which no other host or path can set.
const CSRF_COOKIE: &str = "rg_csrf";
const LOGIN_CSRF_CONTEXT: &str = "login-csrf";

/// Refusals of anonymous requests that one client network may write to the audit
/// log per window; past it they are logged at debug level only, after one event
/// saying so, so an anonymous client cannot grow the database at will.
const ANONYMOUS_AUDIT: RateLimit = RateLimit {
    name: "audit-anonymous",
    max: 60,
    window: std::time::Duration::from_secs(15 * 60),
};

/// `base` over http; `__Host-base` over https (Secure, path `/`, no domain: the
/// cookie can be set only by this origin).
pub(crate) fn host_cookie_name(request: &HttpRequest, base: &'static str) -> String {
    if request_info::is_https(request) {
        format!("__Host-{base}")
    } else {
        base.to_owned()
    }
}

/// The login CSRF cookie's value, if it has the shape this server gives it.
fn login_csrf_nonce(request: &HttpRequest) -> Option<String> {
    request
        .cookie(&host_cookie_name(request, CSRF_COOKIE))
        .map(|c| c.value().to_owned())
        .filter(|v| v.len() == 43 && URL_SAFE_NO_PAD.decode(v).is_ok())
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/", web::get().to(root))
        .route("/signin", web::get().to(signin_page))
        .route("/signin/directory", web::post().to(signin_directory))
        .route("/start", web::get().to(start))
        .route("/start/credentials", web::post().to(credentials))
        .route("/logout", web::post().to(logout))
        .route("/static/portal.css", web::get().to(css))
        .route("/static/portal.js", web::get().to(js));
}

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
    /// [`sessions_valid_from_key`] marker is over. 0 in sessions stored before.
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

pub(crate) fn random_token() -> String {
    let bytes: [u8; 32] = rand::random();
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Sessions are stored under a hash of the cookie value, so whoever can read the
/// cache cannot use what it finds there.
fn session_key(id: &str) -> String {
    format!(
        "portal-session:{}",
        hex::encode(Sha256::digest(id.as_bytes()))
    )
}

pub(crate) fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// Only local paths: never an absolute URL or a scheme-relative `//host`.
pub(crate) fn safe_return_to(candidate: &str) -> &str {
    let ok = candidate.starts_with('/')
        && !candidate.starts_with("//")
        && !candidate.contains('\\')
        && !candidate.chars().any(char::is_control);
    if ok { candidate } else { "/start" }
}

pub(crate) fn cookie<'c>(request: &HttpRequest, name: &'c str, value: String) -> Cookie<'c> {
    Cookie::build(name, value)
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(request_info::is_https(request))
        .finish()
}

pub(crate) fn html(status: StatusCode, body: String) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(body)
}

pub(crate) fn redirect(to: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, to))
        .finish()
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    title: &'a str,
    message: &'a str,
    next_href: &'a str,
    next_label: &'a str,
}

pub(crate) fn error_page(
    status: StatusCode,
    title: &str,
    message: &str,
    next_href: &str,
    next_label: &str,
) -> HttpResponse {
    let page = ErrorPage {
        title,
        message,
        next_href,
        next_label,
    };
    html(status, page.render().unwrap_or_else(|_| message.to_owned()))
}

fn origin(request: &HttpRequest) -> (Option<String>, Option<String>) {
    (
        request_info::client_ip(request).map(|ip| ip.to_string()),
        request
            .headers()
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
    )
}

pub(crate) async fn audit(
    state: &AppState,
    request: &HttpRequest,
    actor: &str,
    action: &str,
    target: &str,
    outcome: Outcome,
    details: serde_json::Value,
) {
    let (source_ip, user_agent) = origin(request);
    let event = AuditEvent {
        at: Utc::now(),
        actor: actor.to_owned(),
        action: action.to_owned(),
        target: target.to_owned(),
        outcome,
        source_ip,
        user_agent,
        details,
    };
    if let Err(error) = state.store.append_audit(&event).await {
        tracing::error!(%error, "cannot write audit event");
    }
}

/// [`audit`] for a refusal of an anonymous request, within the client network's
/// [`ANONYMOUS_AUDIT`] budget.
pub(crate) async fn audit_anonymous(
    state: &AppState,
    request: &HttpRequest,
    actor: &str,
    action: &str,
    target: &str,
    outcome: Outcome,
    details: serde_json::Value,
) {
    let network = client_network(request);
    // Without the counter the event is written: losing it would be worse.
    let count: u64 = ANONYMOUS_AUDIT
        .count(state.cache.as_ref(), &network)
        .await
        .unwrap_or_default();
    if count <= ANONYMOUS_AUDIT.max {
        audit(state, request, actor, action, target, outcome, details).await;
    } else if count == ANONYMOUS_AUDIT.max + 1 {
        audit(
            state,
            request,
            "anonymous",
            "audit:Suppressed",
            &network,
            Outcome::Denied,
            json!({
                "reason": "too many refused anonymous requests from this network: further ones are not recorded until the window ends",
                "window_seconds": ANONYMOUS_AUDIT.window.as_secs(),
                "last_action": action,
            }),
        )
        .await;
    } else {
        tracing::debug!(%network, action, "anonymous refusal not audited (over budget)");
    }
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
    if ended_by_settings_change(
        state,
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

/// Whether a sign-in of `identity` that began at `signed_in_at` (Unix seconds) and
/// stood for the user's sign-in settings since `valid_from_ms` (Unix milliseconds;
/// 0 if unknown) is over because those settings changed later (a second factor
/// turned on or off, see [`end_other_sessions`]). Portal sessions and the terminal
/// sign-ins approved from them (`oauth`) both ask this. An unreadable marker counts
/// as a change (fail closed); a cache error is the caller's to refuse on.
pub(crate) async fn ended_by_settings_change(
    state: &AppState,
    identity: &PortalIdentity,
    signed_in_at: i64,
    valid_from_ms: i64,
) -> Result<bool, crate::cache::CacheError> {
    let Some(marker) = state.cache.get(&sessions_valid_from_key(identity)).await? else {
        return Ok(false);
    };
    let valid_from = std::str::from_utf8(&marker)
        .ok()
        .and_then(|text| text.parse::<i64>().ok())
        .unwrap_or(i64::MAX);
    let since = valid_from_ms.max(signed_in_at.saturating_mul(1000));
    Ok(since < valid_from)
}

/// The cache key of the moment (Unix milliseconds) before which every portal
/// session of this user is over: set when a second factor is turned on or off.
fn sessions_valid_from_key(identity: &PortalIdentity) -> String {
    format!(
        "portal-sessions-valid-from:{}:{}",
        identity.source_id,
        identity.user_name.to_lowercase()
    )
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
    let now = Utc::now();
    let now_ms = now.timestamp_millis();
    // Sessions live at most the session lifetime; so must the marker.
    state
        .cache
        .put(
            &sessions_valid_from_key(&session.identity),
            now_ms.to_string().as_bytes(),
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
    let renewed = random_token();
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

async fn root() -> HttpResponse {
    redirect("/start")
}

/// A federated way to sign in, shown as a link on the sign-in page. A link, not a
/// form: the CSP's `form-action 'self'` would block a form's redirect to the provider.
pub(crate) struct SignInSource {
    /// The local path that starts the sign-in (`return_to` is appended).
    pub(crate) action: String,
    pub(crate) name: String,
}

#[derive(Template)]
#[template(path = "signin.html")]
struct SignInPage<'a> {
    csrf: &'a str,
    return_to: &'a str,
    directory_name: &'a str,
    error: Option<&'a str>,
    /// (href, name) of each federated source.
    sources: Vec<(String, &'a str)>,
}

#[derive(Deserialize)]
struct ReturnTo {
    return_to: Option<String>,
}

fn render_signin(
    state: &AppState,
    request: &HttpRequest,
    status: StatusCode,
    return_to: &str,
    error: Option<&str>,
    sources: &[SignInSource],
) -> HttpResponse {
    let nonce = login_csrf_nonce(request).unwrap_or_else(random_token);
    let csrf = state.sts.mac(LOGIN_CSRF_CONTEXT, nonce.as_bytes());
    let page = SignInPage {
        csrf: &csrf,
        return_to: safe_return_to(return_to),
        directory_name: "Rolegate directory",
        error,
        sources: sources
            .iter()
            .map(|s| {
                (
                    format!(
                        "{}?return_to={}",
                        s.action,
                        percent_encoding::utf8_percent_encode(
                            safe_return_to(return_to),
                            percent_encoding::NON_ALPHANUMERIC
                        )
                    ),
                    s.name.as_str(),
                )
            })
            .collect(),
    };
    let mut response = html(status, page.render().unwrap_or_default());
    let name = host_cookie_name(request, CSRF_COOKIE);
    let _ = response.add_cookie(&cookie(request, &name, nonce));
    response
}

async fn signin_page(
    state: web::Data<AppState>,
    request: HttpRequest,
    query: web::Query<ReturnTo>,
) -> HttpResponse {
    let sources = super::oidc_login::signin_sources(&state).await;
    render_signin(
        &state,
        &request,
        StatusCode::OK,
        query.return_to.as_deref().unwrap_or("/start"),
        None,
        &sources,
    )
}

#[derive(Deserialize)]
struct SignInForm {
    csrf: String,
    username: String,
    password: String,
    #[serde(default)]
    return_to: String,
}

async fn signin_directory(
    state: web::Data<AppState>,
    request: HttpRequest,
    form: web::Form<SignInForm>,
) -> HttpResponse {
    let form = form.into_inner();
    let expected = login_csrf_nonce(&request)
        .map(|nonce| state.sts.mac(LOGIN_CSRF_CONTEXT, nonce.as_bytes()))
        .unwrap_or_default();
    if expected.is_empty() || !same(&expected, &form.csrf) {
        audit_anonymous(
            &state,
            &request,
            &masked_name(&form.username),
            "portal:SignIn",
            DIRECTORY_SOURCE_ID,
            Outcome::Denied,
            json!({ "reason": "missing or wrong CSRF token" }),
        )
        .await;
        return error_page(
            StatusCode::FORBIDDEN,
            "Sign-in form expired",
            "The sign-in form was not accepted (it may have expired, or came from another site). Please sign in again.",
            "/signin",
            "Sign in",
        );
    }
    let result = state
        .directory
        .authenticate(
            DIRECTORY_SOURCE_ID,
            &form.username,
            &form.password,
            &client_network(&request),
            Utc::now(),
        )
        .await;
    let signed_in = match result {
        Ok(user) => user,
        Err(error) => {
            let (status, message) = match &error {
                SignInError::InvalidCredentials => (
                    StatusCode::UNAUTHORIZED,
                    "The user name or password is incorrect.".to_owned(),
                ),
                SignInError::Locked { until } => (
                    StatusCode::TOO_MANY_REQUESTS,
                    format!(
                        "Too many failed sign-ins. Try again after {}.",
                        until.format("%H:%M:%S UTC")
                    ),
                ),
                SignInError::Busy => (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Too many people are signing in right now. Please try again in a few seconds."
                        .to_owned(),
                ),
                SignInError::UnknownSource(_) => (
                    StatusCode::NOT_FOUND,
                    "The built-in directory is not enabled.".to_owned(),
                ),
                SignInError::Unavailable(_) => (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Sign-in is unavailable right now. Please try again shortly.".to_owned(),
                ),
            };
            if let SignInError::Unavailable(reason) = &error {
                tracing::error!(%reason, "directory sign-in unavailable");
            }
            let actor = audited_name(&state, &form.username).await;
            audit_anonymous(
                &state,
                &request,
                &actor,
                "portal:SignIn",
                DIRECTORY_SOURCE_ID,
                Outcome::Failure,
                json!({ "reason": error.to_string() }),
            )
            .await;
            let sources = super::oidc_login::signin_sources(&state).await;
            let mut response = render_signin(
                &state,
                &request,
                status,
                &form.return_to,
                Some(&message),
                &sources,
            );
            if matches!(error, SignInError::Busy) {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, header::HeaderValue::from_static("2"));
            }
            return response;
        }
    };
    let identity = PortalIdentity {
        source_id: DIRECTORY_SOURCE_ID.to_owned(),
        user_name: signed_in.user.user_name.to_string(),
        display_name: if signed_in.user.display_name.is_empty() {
            signed_in.user.user_name.to_string()
        } else {
            signed_in.user.display_name.clone()
        },
        email: signed_in.user.email.clone(),
        groups: signed_in.groups.clone(),
        attributes: crate::sts::portal::directory_attributes(
            state.store.as_ref(),
            DIRECTORY_SOURCE_ID,
            &signed_in.user,
        )
        .await,
    };
    // A second factor is owed: no session until the code step (src/web/mfa.rs).
    if signed_in.user.totp_enabled_at.is_some() {
        return super::mfa::challenge(&state, &request, identity, &form.return_to).await;
    }
    start_session(&state, &request, identity, &form.return_to).await
}

/// How a failed sign-in names its actor in the audit log: the user name when such a
/// user exists, else a masked form ([`masked_name`]), since what was typed may be a
/// password typed into the wrong field.
async fn audited_name(state: &AppState, typed: &str) -> String {
    if let Ok(name) = crate::iam::UserName::parse(typed.trim())
        && let Ok(user) = state.store.get_user(DIRECTORY_SOURCE_ID, &name).await
    {
        return user.user_name.to_string();
    }
    masked_name(typed)
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
    let id = random_token();
    let session = PortalSession {
        identity,
        csrf: random_token(),
        id_token,
        signed_in_at: Utc::now().timestamp(),
        valid_from_ms: Utc::now().timestamp_millis(),
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

struct AccountView {
    id: String,
    name: String,
    search: String,
    roles: Vec<RoleView>,
}

struct RoleView {
    name: String,
    description: String,
    search: String,
}

#[derive(Template)]
#[template(path = "start.html")]
struct StartPage<'a> {
    display_name: &'a str,
    csrf: &'a str,
    groups: String,
    accounts: Vec<AccountView>,
}

async fn start(state: web::Data<AppState>, request: HttpRequest) -> HttpResponse {
    let Some((_, session)) = session(&state, &request).await else {
        return redirect("/signin?return_to=/start");
    };
    // Entitlements come from the identity's groups at every view, never a stale copy.
    let roles = match state.sts.entitlements(&session.identity).await {
        Ok(roles) => roles,
        Err(_) => {
            return error_page(
                StatusCode::SERVICE_UNAVAILABLE,
                "Unavailable",
                "Your accounts could not be listed right now.",
                "/start",
                "Try again",
            );
        }
    };
    let names = state.store.list_accounts().await.unwrap_or_default();
    let mut accounts: Vec<AccountView> = Vec::new();
    for role in roles {
        let id = role.account_id.to_string();
        if accounts.last().is_none_or(|a| a.id != id) {
            let name = names
                .iter()
                .find(|a| a.id == role.account_id)
                .map(|a| a.name.clone())
                .unwrap_or_default();
            accounts.push(AccountView {
                search: format!("{id} {name}").to_lowercase(),
                id,
                name,
                roles: Vec::new(),
            });
        }
        if let Some(account) = accounts.last_mut() {
            account.roles.push(RoleView {
                search: format!("{} {}", role.name, role.description).to_lowercase(),
                name: role.name.to_string(),
                description: role.description.clone(),
            });
        }
    }
    let page = StartPage {
        display_name: &session.identity.display_name,
        csrf: &session.csrf,
        groups: if session.identity.groups.is_empty() {
            "you are in no groups".into()
        } else {
            format!("your groups: {}", session.identity.groups.join(", "))
        },
        accounts,
    };
    html(StatusCode::OK, page.render().unwrap_or_default())
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

#[derive(Deserialize)]
struct CredentialsForm {
    csrf: String,
    account: String,
    role: String,
}

#[derive(Template)]
#[template(path = "credentials.html")]
struct CredentialsPage<'a> {
    account: &'a str,
    role_name: &'a str,
    arn: &'a str,
    expiration: String,
    access_key_id: &'a str,
    secret_access_key: &'a str,
    session_token: &'a str,
    /// This server's origin, for the `rolegate login --url` hint.
    origin: String,
    /// The config-file sections of the role's `credential_process` profile.
    aws_config: String,
}

async fn credentials(
    state: web::Data<AppState>,
    request: HttpRequest,
    form: web::Form<CredentialsForm>,
) -> HttpResponse {
    let target = format!("{}/{}", form.account, form.role);
    let session = match signed_in_form(
        &state,
        &request,
        &form.csrf,
        "portal:GetRoleCredentials",
        &target,
    )
    .await
    {
        Ok(session) => session,
        Err(refusal) => return refusal,
    };
    let user = session.identity.user_name.clone();
    let assumed = match issue_for_session(
        &state,
        &request,
        &session,
        (&form.account, &form.role),
        "portal:GetRoleCredentials",
        "",
    )
    .await
    {
        Ok(assumed) => assumed,
        Err(refusal) => return refusal,
    };
    audit(
        &state,
        &request,
        &user,
        "portal:GetRoleCredentials",
        &assumed.assumed_role_arn,
        Outcome::Success,
        json!({ "access_key_id": assumed.credentials.access_key_id }),
    )
    .await;
    let creds = &assumed.credentials;
    let origin = request_info::public_origin(&request);
    let page = CredentialsPage {
        account: &form.account,
        role_name: &form.role,
        arn: &assumed.assumed_role_arn,
        expiration: creds.expiration.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
        access_key_id: &creds.access_key_id,
        secret_access_key: &creds.secret_access_key,
        session_token: &creds.session_token,
        aws_config: credential_process_config(&state, &origin, &form.account, &form.role),
        origin,
    };
    html(StatusCode::OK, page.render().unwrap_or_default())
}

/// The `~/.aws/config` text that makes a `credential_process` profile of this role
/// work on its own: the same sections `rolegate login --write-config` writes.
fn credential_process_config(state: &AppState, origin: &str, account: &str, role: &str) -> String {
    use crate::cli::aws_config::{RoleEntry, Target, render, sections, start_url_for_cli_v2};
    let role = RoleEntry {
        account_id: account.to_owned(),
        account_name: None,
        role_name: role.to_owned(),
    };
    let session = crate::cli::sso_cache::DEFAULT_SESSION;
    let start_url = start_url_for_cli_v2(origin, Some(&state.sso.aws_start_url));
    let target = Target {
        base: origin,
        start_url: &start_url,
        region: "us-east-1",
    };
    render(&sections(session, target, &[role]))
}

/// Issues a role session for the signed-in person; a refusal (not entitled, or a
/// failure) is audited under `action` and comes back as the page to show, with
/// `consequence` (e.g. "No console session was created.") added to its message.
pub(crate) async fn issue_for_session(
    state: &AppState,
    request: &HttpRequest,
    session: &PortalSession,
    (account, role): (&str, &str),
    action: &str,
    consequence: &str,
) -> Result<crate::sts::service::AssumedRole, HttpResponse> {
    let error = match state
        .sts
        .issue_for_identity(&session.identity, account, role, Utc::now().timestamp())
        .await
    {
        Ok(assumed) => return Ok(assumed),
        Err(error) => error,
    };
    let outcome = if error.status == 403 {
        Outcome::Denied
    } else {
        Outcome::Failure
    };
    audit(
        state,
        request,
        &session.identity.user_name,
        action,
        &format!("{account}/{role}"),
        outcome,
        json!({ "code": error.code, "reason": error.message }),
    )
    .await;
    let status = StatusCode::from_u16(error.status).unwrap_or(StatusCode::FORBIDDEN);
    let message = format!("{} {consequence}", error.message);
    Err(error_page(
        status,
        "No access to this role",
        message.trim_end(),
        "/start",
        "Your accounts",
    ))
}

#[derive(Deserialize)]
struct LogoutForm {
    csrf: String,
}

async fn logout(
    state: web::Data<AppState>,
    request: HttpRequest,
    form: web::Form<LogoutForm>,
) -> HttpResponse {
    let mut provider_logout = None;
    if let Some((id, session)) = session(&state, &request).await {
        if !same(&session.csrf, &form.csrf) {
            return error_page(
                StatusCode::FORBIDDEN,
                "Request not accepted",
                "This sign-out did not come from your Rolegate page.",
                "/start",
                "Accounts",
            );
        }
        let _ = state.cache.delete(&session_key(&id)).await;
        // After an OIDC sign-in, offer RP-initiated logout at the provider when it
        // supports it. A link, not a redirect: the CSP's `form-action 'self'` stops
        // browsers from following this form's redirect to another origin.
        if let Some(id_token) = session.id_token.as_deref() {
            provider_logout = super::oidc_login::provider_logout_url(
                &state,
                &request,
                &session.identity.source_id,
                id_token,
            )
            .await;
        }
        audit(
            &state,
            &request,
            &session.identity.user_name,
            "portal:SignOut",
            &session.identity.source_id,
            Outcome::Success,
            json!({ "provider_logout_offered": provider_logout.is_some() }),
        )
        .await;
    }
    let mut response = match provider_logout {
        Some((url, provider)) => error_page(
            StatusCode::OK,
            "Signed out of Rolegate",
            &format!(
                "You are signed out of Rolegate, but may still be signed in at {provider}. Continue to sign out there too."
            ),
            &url,
            &format!("Sign out of {provider}"),
        ),
        None => redirect("/signin"),
    };
    let mut gone = cookie(&request, SESSION_COOKIE, String::new());
    gone.make_removal();
    let _ = response.add_cookie(&gone);
    response
}

async fn css() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/css; charset=utf-8")
        .body(include_str!("../../static/portal.css"))
}

async fn js() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/javascript; charset=utf-8")
        .body(include_str!("../../static/portal.js"))
}
