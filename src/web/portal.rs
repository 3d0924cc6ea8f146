//! The login portal: sign in at the built-in directory, see the accounts and roles
//! your groups grant, get access keys for a role, sign out. Sessions themselves are
//! in `session.rs`, the shared page pieces in `page.rs`, the audit writer in
//! `audit.rs`.

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use serde_json::json;

use super::AppState;
use super::audit::{audit, audit_anonymous};
use super::aws_json::client_network;
use super::oidc_login::SignInSource;
use super::page::{
    PageError, cookie, host_cookie_name, html, random_token, redirect, safe_return_to, same,
};
use super::request_info;
use super::session::{
    PortalSession, end_session, session, session_removal, signed_in_form, start_session,
};
use crate::idp::directory::{DIRECTORY_SOURCE_ID, SignInError, masked_name};
use crate::service::entitlements::Grant;
use crate::store::Outcome;

/// The login CSRF cookie, before any session exists: a random value, which the
/// sign-in form must answer with its MAC under the server's key (a signed double
/// submit: a value planted in the cookie is useless without the MAC). Over https the
/// cookie is `__Host-rg_csrf`, which no other host or path can set.
const CSRF_COOKIE: &str = "rg_csrf";
const LOGIN_CSRF_CONTEXT: &str = "login-csrf";

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

async fn root() -> HttpResponse {
    redirect("/start")
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
    /// Nobody can sign in yet (no federated source, an empty directory): the page
    /// says how to bootstrap instead of offering a form that cannot succeed.
    empty: bool,
}

#[derive(Deserialize)]
struct ReturnTo {
    return_to: Option<String>,
}

async fn render_signin(
    state: &AppState,
    request: &HttpRequest,
    status: StatusCode,
    return_to: &str,
    error: Option<&str>,
    sources: &[SignInSource],
) -> HttpResponse {
    // A database that cannot say reads as "someone may sign in": show the form.
    let empty = sources.is_empty()
        && !state
            .store
            .has_users(crate::idp::directory::DIRECTORY_SOURCE_ID)
            .await
            .unwrap_or(true);
    let nonce = login_csrf_nonce(request).unwrap_or_else(|| random_token(&state.random));
    let csrf = state.sealer.mac(LOGIN_CSRF_CONTEXT, nonce.as_bytes());
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
        empty,
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
    .await
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
        .map(|nonce| state.sealer.mac(LOGIN_CSRF_CONTEXT, nonce.as_bytes()))
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
        return PageError::sign_in_form_expired("sign-in form").into_response();
    }
    let result = state
        .directory
        .authenticate(
            DIRECTORY_SOURCE_ID,
            &form.username,
            &form.password,
            &client_network(&request),
            state.clock.now(),
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
            let (actor, locked) = audited_name(&state, &form.username).await;
            let mut details = json!({ "reason": error.to_string() });
            // The person reads the wrong-password answer; the audit log says why.
            if locked && matches!(error, SignInError::InvalidCredentials) {
                details["locked_by_admin"] = json!(true);
            }
            audit_anonymous(
                &state,
                &request,
                &actor,
                "portal:SignIn",
                DIRECTORY_SOURCE_ID,
                Outcome::Failure,
                details,
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
            )
            .await;
            if matches!(error, SignInError::Busy) {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, header::HeaderValue::from_static("2"));
            }
            return response;
        }
    };
    let identity = state
        .directory
        .identity(&signed_in.user, signed_in.groups.clone())
        .await;
    // A second factor is owed: no session until the code step (src/web/mfa.rs).
    if signed_in.user.totp_enabled_at.is_some() {
        return super::mfa::challenge(&state, &request, identity, &form.return_to).await;
    }
    start_session(&state, &request, identity, &form.return_to).await
}

/// How a failed sign-in names its actor in the audit log: the user name when such a
/// user exists, else a masked form ([`masked_name`]), since what was typed may be a
/// password typed into the wrong field. Also whether that user is locked by an admin.
async fn audited_name(state: &AppState, typed: &str) -> (String, bool) {
    if let Ok(name) = crate::iam::UserName::parse(typed.trim())
        && let Ok(user) = state.store.get_user(DIRECTORY_SOURCE_ID, &name).await
    {
        return (user.user_name.to_string(), user.locked_at.is_some());
    }
    (masked_name(typed), false)
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
    /// Whether the header links the admin pages (admins only).
    is_admin: bool,
}

async fn start(
    state: web::Data<AppState>,
    request: HttpRequest,
) -> Result<HttpResponse, PageError> {
    let Some((_, session)) = session(&state, &request).await else {
        return Ok(redirect("/signin?return_to=/start"));
    };
    // Entitlements come from the identity's groups at every view, never a stale copy.
    let roles = state
        .sts
        .entitlements(&session.identity)
        .await
        .map_err(|error| {
            PageError::unavailable(
                &error,
                "Unavailable",
                "Your accounts could not be listed right now.",
            )
            .next("/start", "Try again")
        })?;
    // Account names come with the grants: the accounts are read once per view.
    let mut accounts: Vec<AccountView> = Vec::new();
    for grant in roles {
        let id = grant.account().to_string();
        if accounts.last().is_none_or(|a| a.id != id) {
            let name = grant.account_name().to_owned();
            accounts.push(AccountView {
                search: format!("{id} {name}").to_lowercase(),
                id,
                name,
                roles: Vec::new(),
            });
        }
        if let Some(account) = accounts.last_mut() {
            account.roles.push(RoleView {
                search: format!("{} {}", grant.role_name(), grant.description()).to_lowercase(),
                name: grant.role_name().to_string(),
                description: grant.description().to_owned(),
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
        is_admin: state.admin.is_admin(&session.identity),
    };
    Ok(html(StatusCode::OK, page.render().unwrap_or_default()))
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
    let (assumed, grant) = match issue_for_session(
        &state,
        &request,
        &session,
        (&form.account, &form.role),
        "portal:GetRoleCredentials",
        "",
    )
    .await
    {
        Ok(issued) => issued,
        Err(refusal) => return refusal,
    };
    audit(
        &state,
        &request,
        &user,
        "portal:GetRoleCredentials",
        &assumed.assumed_role_arn,
        Outcome::Success,
        grant.audited(json!({ "access_key_id": assumed.credentials.access_key_id })),
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
) -> Result<(crate::sts::credentials::AssumedRole, Grant), HttpResponse> {
    let issued = state
        .sts
        .issue_granted(
            &session.identity,
            (account, role),
            state.clock.now().timestamp(),
        )
        .await;
    let error = match issued {
        Ok(issued) => return Ok(issued),
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
    Err(
        PageError::new(status, "No access to this role", message.trim_end())
            .next("/start", "Your accounts")
            .into_response(),
    )
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
            return PageError::new(
                StatusCode::FORBIDDEN,
                "Request not accepted",
                "This sign-out did not come from your Rolegate page.",
            )
            .next("/start", "Accounts")
            .into_response();
        }
        end_session(&state, &id).await;
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
        Some((url, provider)) => PageError::new(StatusCode::OK, "Signed out of Rolegate", format!(
                "You are signed out of Rolegate, but may still be signed in at {provider}. Continue to sign out there too."
            )).next(url, format!("Sign out of {provider}")).into_response(),
        None => redirect("/signin"),
    };
    let _ = response.add_cookie(&session_removal(&request));
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
