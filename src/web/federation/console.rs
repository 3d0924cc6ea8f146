//! `/console/<short id>`: the console page of an open console session (who you are,
//! the role's policies, "can I?"), its sign-out, and the cookie that carries the
//! console's id, scoped to the console's own path.

use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::json;

use super::check::{CheckForm, CheckResult, MAX_CHECK_FIELD, check};
use super::{ANONYMOUS, accounts_page, role_arn_of};
use crate::service::console::{
    Console, ConsoleError, ConsolePolicies, OpenedConsole, PolicyDocuments, is_short_id,
};
use crate::store::Outcome;
use crate::sts::assume::CallerKind;
use crate::web::AppState;
use crate::web::audit::audit;
use crate::web::page::{PageError, html, redirect, safe_return_to};
use crate::web::request_info;

const CONSOLE_COOKIE_PREFIX: &str = "rgc_";

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

fn removal(request: &HttpRequest, short: &str) -> Cookie<'static> {
    let mut gone = console_cookie(request, short, String::new(), 0);
    gone.make_removal();
    gone
}

/// The redirect into a console just opened (to `location`, with its cookie); `None`
/// when `location` cannot be a header.
pub(super) fn entered(
    request: &HttpRequest,
    status: StatusCode,
    location: &str,
    opened: &OpenedConsole,
) -> Option<HttpResponse> {
    let location = header::HeaderValue::from_str(location).ok()?;
    let mut response = HttpResponse::build(status)
        .insert_header((header::LOCATION, location))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish();
    let _ = response.add_cookie(&console_cookie(
        request,
        &opened.short,
        opened.id.clone(),
        opened.ttl,
    ));
    Some(response)
}

/// The page for a console that could not be opened.
pub(super) fn open_failure(error: &ConsoleError) -> HttpResponse {
    match error {
        ConsoleError::NotRoleSession => accounts_page(
            StatusCode::FORBIDDEN,
            "No console for these credentials",
            "Console sessions are only for role sessions.",
        ),
        ConsoleError::RoleSessionExpired => accounts_page(
            StatusCode::FORBIDDEN,
            "Role session ended",
            "The role session has expired. Open the console again from your accounts.",
        ),
        _ => {
            tracing::error!(%error, "cannot store a console session");
            accounts_page(
                StatusCode::SERVICE_UNAVAILABLE,
                "Console unavailable",
                "The console could not be opened right now. Please try again shortly.",
            )
        }
    }
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
    let mut response = accounts_page(StatusCode::FORBIDDEN, title, message);
    let _ = response.add_cookie(&removal(request, short));
    response
}

/// The console at `/console/<short>` if this browser holds its cookie and its role
/// session still verifies; otherwise the refusal to send.
async fn load_console(
    state: &AppState,
    request: &HttpRequest,
    short: &str,
) -> Result<Console, HttpResponse> {
    if !is_short_id(short) {
        return Err(accounts_page(
            StatusCode::NOT_FOUND,
            "No such console",
            "There is no console at this address. Open one from your accounts.",
        ));
    }
    let Some(id) = request
        .cookie(&console_cookie_name(short))
        .map(|c| c.value().to_owned())
    else {
        return Err(refuse_console(state, request, short, ANONYMOUS, "no console cookie", "Console not open in this browser", "This console session is not open in this browser (or it ended). Open the console again from your accounts.").await);
    };
    match state.console.find(short, &id).await {
        Ok(console) => Ok(console),
        Err(ConsoleError::UnknownConsole) => Err(refuse_console(state, request, short, ANONYMOUS, "unknown or tampered console cookie", "Console session not valid", "This console session is not valid: it has ended, was signed out, or its cookie was changed. No session was opened. Open the console again from your accounts.").await),
        Err(ConsoleError::RoleSessionEnded { access_key_id, .. }) => Err(refuse_console(state, request, short, &access_key_id, "role session ended", "Role session ended", "The role session behind this console has expired or was revoked. Open the console again from your accounts.").await),
        Err(error) => {
            tracing::error!(%error, "cannot read console sessions");
            Err(accounts_page(
                StatusCode::SERVICE_UNAVAILABLE,
                "Console unavailable",
                "The console could not be shown right now. Please try again shortly.",
            ))
        }
    }
}

struct PolicyView {
    kind: &'static str,
    name: String,
    document: String,
}

struct TagView {
    key: String,
    value: String,
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

fn pretty(document: &str) -> String {
    serde_json::from_str::<serde_json::Value>(document)
        .ok()
        .and_then(|v| serde_json::to_string_pretty(&v).ok())
        .unwrap_or_else(|| document.to_owned())
}

/// The policies as the page lists them, in the order the evaluation indexes them.
fn policy_views(documents: &PolicyDocuments) -> Vec<PolicyView> {
    let identity = documents.identity.iter().map(|(name, doc)| PolicyView {
        kind: if name.starts_with("arn:") {
            "Managed policy"
        } else {
            "Inline policy"
        },
        name: name.clone(),
        document: pretty(doc),
    });
    let boundary = documents.boundary.iter().map(|(name, doc)| PolicyView {
        kind: "Permissions boundary",
        name: name.clone(),
        document: pretty(doc),
    });
    let session = documents.session.iter().map(|(name, doc)| PolicyView {
        kind: "Session policy",
        name: name.clone(),
        document: pretty(doc),
    });
    identity.chain(boundary).chain(session).collect()
}

fn policies_unavailable() -> HttpResponse {
    accounts_page(
        StatusCode::SERVICE_UNAVAILABLE,
        "Console unavailable",
        "The role's policies could not be read right now. Please try again shortly.",
    )
}

async fn render_console(
    state: &AppState,
    request: &HttpRequest,
    console: &Console,
    form: &CheckForm,
    run_check: bool,
) -> HttpResponse {
    let now = state.clock.timestamp();
    let caller = &console.caller;
    let ConsolePolicies {
        policies,
        documents,
    } = match state.console.policies(console).await {
        Ok(policies) => policies,
        Err(ConsoleError::RoleGone(error)) => {
            return refuse_console(state, request, &console.short, &caller.arn, &error.message, "Role session ended", "The role session behind this console was revoked or its role no longer exists. Open the console again from your accounts.").await;
        }
        Err(ConsoleError::Sts(_)) => return policies_unavailable(),
        Err(error) => {
            tracing::error!(%error, "cannot read role policies for the console");
            return policies_unavailable();
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
    let expires_at = console.expires_at();
    let page = ConsolePage {
        short: &console.short,
        csrf: console.csrf(),
        back: safe_return_to(console.back()),
        arn: &caller.arn,
        account: &caller.account,
        role_name,
        role_arn,
        session_name,
        source_identity: caller
            .session
            .as_ref()
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
        policies: policy_views(&documents),
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
            accounts_page(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Console unavailable",
                "The console page could not be shown.",
            )
        }
    }
}

pub(super) async fn console_index() -> HttpResponse {
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

pub(super) async fn console_view(
    state: web::Data<AppState>,
    request: HttpRequest,
    path: web::Path<String>,
) -> HttpResponse {
    let console = match load_console(&state, &request, &path).await {
        Ok(console) => console,
        Err(response) => return response,
    };
    let prefill = serde_urlencoded::from_str::<Prefill>(request.query_string()).unwrap_or_default();
    let form = CheckForm {
        action: prefill.action.chars().take(MAX_CHECK_FIELD).collect(),
        resource: prefill.resource.chars().take(MAX_CHECK_FIELD).collect(),
        ..CheckForm::default()
    };
    render_console(&state, &request, &console, &form, false).await
}

pub(super) async fn console_check(
    state: web::Data<AppState>,
    request: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
) -> HttpResponse {
    let console = match load_console(&state, &request, &path).await {
        Ok(console) => console,
        Err(response) => return response,
    };
    let form = serde_urlencoded::from_bytes::<CheckForm>(&body).unwrap_or_default();
    if !console.csrf_matches(&form.csrf) {
        audit(
            &state,
            &request,
            &console.caller.arn,
            "console:Check",
            &format!("/console/{}", console.short),
            Outcome::Denied,
            json!({ "reason": "missing or wrong CSRF token" }),
        )
        .await;
        return PageError::new(StatusCode::FORBIDDEN, "Request not accepted", "This request did not come from your console page. Go back to the console and try again.").next(format!("/console/{}", console.short), "Console").into_response();
    }
    render_console(&state, &request, &console, &form, true).await
}

#[derive(Deserialize)]
pub(super) struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

pub(super) async fn console_logout(
    state: web::Data<AppState>,
    request: HttpRequest,
    path: web::Path<String>,
    form: web::Form<CsrfForm>,
) -> HttpResponse {
    let console = match load_console(&state, &request, &path).await {
        Ok(console) => console,
        Err(response) => return response,
    };
    if !console.csrf_matches(&form.csrf) {
        return PageError::new(
            StatusCode::FORBIDDEN,
            "Request not accepted",
            "This sign-out did not come from your console page.",
        )
        .next(format!("/console/{}", console.short), "Console")
        .into_response();
    }
    if let Err(error) = state.console.end(&console).await {
        // The cookie is removed below; the session expires with its role session.
        tracing::warn!(%error, "cannot end a console session");
    }
    audit(
        &state,
        &request,
        &console.caller.arn,
        "console:SignOut",
        &role_arn_of(&console.caller),
        Outcome::Success,
        json!({ "console": console.short }),
    )
    .await;
    let mut response = redirect(safe_return_to(console.back()));
    let _ = response.add_cookie(&removal(&request, &console.short));
    response
}

pub(super) async fn css() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/css; charset=utf-8")
        .body(include_str!("../../../static/console.css"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remaining_time() {
        assert_eq!(format_remaining(3600), "1 h");
        assert_eq!(format_remaining(3660), "1 h 1 min");
        assert_eq!(format_remaining(30), "1 min");
    }
}
