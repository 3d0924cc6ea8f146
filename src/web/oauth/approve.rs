//! The portal page where a signed-in person approves or denies a device login
//! (`/device`): the user code is parsed here, once, and the service looks it up and
//! records the answer.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use serde::Deserialize;
use serde_json::json;

use super::approver;
use crate::service::device::{Budget, Decided, Lookup, PendingDevice, UserCode, short_client_id};
use crate::store::Outcome;
use crate::web::AppState;
use crate::web::audit::audit;
use crate::web::page::{PageError, html, redirect};
use crate::web::session::{PortalSession, session, signed_in_form};

const ACTION: &str = "sso:ApproveDevice";

struct DeviceResult<'a> {
    title: &'a str,
    message: String,
}

#[derive(Template)]
#[template(path = "device.html")]
struct DevicePage<'a> {
    display_name: &'a str,
    csrf: &'a str,
    user_code: &'a str,
    /// Set when the code names a pending request: then Approve and Deny are offered.
    client_name: Option<&'a str>,
    /// The registration id of that client, so that two clients of the same name
    /// can be told apart.
    client_id: &'a str,
    error: Option<&'a str>,
    result: Option<DeviceResult<'a>>,
}

fn render(status: StatusCode, page: DevicePage<'_>) -> HttpResponse {
    match page.render() {
        Ok(body) => html(status, body),
        Err(error) => {
            tracing::error!(%error, "cannot render device page");
            PageError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Unavailable",
                "This page could not be shown.",
            )
            .next("/start", "Your accounts")
            .into_response()
        }
    }
}

fn entry_page(
    session: &PortalSession,
    user_code: &str,
    status: StatusCode,
    error: Option<&str>,
) -> HttpResponse {
    render(
        status,
        DevicePage {
            display_name: &session.identity.display_name,
            csrf: &session.csrf,
            user_code,
            client_name: None,
            client_id: "",
            error,
            result: None,
        },
    )
}

fn result_page(session: &PortalSession, title: &str, message: String) -> HttpResponse {
    render(
        StatusCode::OK,
        DevicePage {
            display_name: &session.identity.display_name,
            csrf: &session.csrf,
            user_code: "",
            client_name: None,
            client_id: "",
            error: None,
            result: Some(DeviceResult { title, message }),
        },
    )
}

fn confirm_page(session: &PortalSession, pending: &PendingDevice) -> HttpResponse {
    render(
        StatusCode::OK,
        DevicePage {
            display_name: &session.identity.display_name,
            csrf: &session.csrf,
            user_code: pending.user_code().as_str(),
            client_name: Some(pending.client_name()),
            client_id: short_client_id(pending.client_id()),
            error: None,
            result: None,
        },
    )
}

fn unavailable() -> HttpResponse {
    PageError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "Unavailable",
        "Device sign-in is unavailable right now. Please try again shortly.",
    )
    .next("/device", "Try again")
    .into_response()
}

/// What a person typed, bounded, to show back to them.
fn typed(raw: &str) -> String {
    raw.chars().take(16).collect()
}

/// The page for typed text that is no user code.
fn malformed(session: &PortalSession, raw: &str) -> HttpResponse {
    entry_page(
        session,
        &typed(raw),
        StatusCode::BAD_REQUEST,
        Some(
            "That is not a valid code. Codes look like BCDF-GHJK: eight letters, shown in your terminal.",
        ),
    )
}

/// Looks `code` (typed as `raw`) up for the signed-in person: the pending request it
/// names, or the page that says why there is none (audited where it is a refusal).
async fn find(
    state: &AppState,
    request: &HttpRequest,
    session: &PortalSession,
    raw: &str,
    code: UserCode,
    budget: Budget,
) -> Result<Box<PendingDevice>, HttpResponse> {
    let normalised = code.to_string();
    let found = match state.device.lookup(&session.identity, code, budget).await {
        Ok(found) => found,
        Err(error) => {
            tracing::error!(%error, "sso-oidc: device lookup");
            return Err(unavailable());
        }
    };
    let user = &session.identity.user_name;
    match found {
        Lookup::Pending(pending) => Ok(pending),
        // Not a refusal: the link fills in the form, and the person's own Continue
        // (a POST) looks the code up.
        Lookup::NotLookedUp => Err(entry_page(session, &normalised, StatusCode::OK, None)),
        Lookup::Unknown => {
            let details = json!({ "reason": "unknown or expired user code" });
            audit(
                state,
                request,
                user,
                ACTION,
                "device",
                Outcome::Failure,
                details,
            )
            .await;
            Err(entry_page(
                session,
                &typed(raw),
                StatusCode::NOT_FOUND,
                Some(
                    "This code is unknown or has expired. Check the code in your terminal, or start the sign-in again there.",
                ),
            ))
        }
        Lookup::AlreadyAnswered { approved } => Err(result_page(
            session,
            if approved {
                "Device approved — return to your terminal"
            } else {
                "Request denied"
            },
            "This request has already been answered; nothing changed.".into(),
        )),
        Lookup::Limited => {
            let details = json!({ "reason": "too many wrong user codes" });
            audit(
                state,
                request,
                user,
                ACTION,
                "device",
                Outcome::Denied,
                details,
            )
            .await;
            Err(PageError::new(StatusCode::TOO_MANY_REQUESTS, "Too many wrong codes", "You entered too many wrong device codes. For your security, device approval is paused for 15 minutes. Start the sign-in again in your terminal later.").next("/start", "Your accounts").into_response())
        }
    }
}

#[derive(Deserialize)]
pub(super) struct DeviceQuery {
    user_code: Option<String>,
}

/// `GET /device`, from the verification link (`?user_code=`) or typed by hand.
pub(super) async fn device_page(
    state: web::Data<AppState>,
    request: HttpRequest,
    query: web::Query<DeviceQuery>,
) -> HttpResponse {
    let raw = query.user_code.as_deref().unwrap_or("").trim();
    let code = raw.parse::<UserCode>().ok();
    let Some((_, session)) = session(&state, &request).await else {
        let back = match &code {
            Some(code) => format!("/device?user_code={code}"),
            None => "/device".to_owned(),
        };
        return redirect(&format!(
            "/signin?return_to={}",
            utf8_percent_encode(&back, NON_ALPHANUMERIC)
        ));
    };
    if raw.is_empty() {
        return entry_page(&session, "", StatusCode::OK, None);
    }
    let Some(code) = code else {
        return malformed(&session, raw);
    };
    match find(&state, &request, &session, raw, code, Budget::Link).await {
        Ok(pending) => confirm_page(&session, &pending),
        Err(page) => page,
    }
}

#[derive(Deserialize)]
pub(super) struct DeviceForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    user_code: String,
    #[serde(default)]
    decision: String,
    /// The code whose client the person saw when offered Approve.
    #[serde(default)]
    confirmed_code: String,
}

/// `POST /device`: Continue (look the code up), Approve or Deny.
pub(super) async fn device_decision(
    state: web::Data<AppState>,
    request: HttpRequest,
    form: web::Form<DeviceForm>,
) -> HttpResponse {
    let form = form.into_inner();
    let session = match signed_in_form(&state, &request, &form.csrf, ACTION, "device").await {
        Ok(session) => session,
        Err(refusal) => return refusal,
    };
    let approve = match form.decision.as_str() {
        "approve" => Some(true),
        "deny" => Some(false),
        "" | "continue" => None,
        _ => {
            return entry_page(
                &session,
                "",
                StatusCode::BAD_REQUEST,
                Some("Choose Approve or Deny."),
            );
        }
    };
    let raw = form.user_code.trim();
    if raw.is_empty() {
        return entry_page(
            &session,
            "",
            StatusCode::BAD_REQUEST,
            Some("Enter the code shown in your terminal."),
        );
    }
    let Ok(code) = raw.parse::<UserCode>() else {
        return malformed(&session, raw);
    };
    let pending = match find(&state, &request, &session, raw, code, Budget::Approve).await {
        Ok(pending) => pending,
        Err(page) => return page,
    };
    let Some(approve) = approve else {
        return confirm_page(&session, &pending);
    };
    // Approve only what was shown: an edited code gets its own confirmation first.
    if approve && form.confirmed_code.parse::<UserCode>().ok().as_ref() != Some(pending.user_code())
    {
        return confirm_page(&session, &pending);
    }
    match state
        .device
        .decide(&pending, approver(&state, &session), approve)
        .await
    {
        Ok(Decided::Recorded) => {}
        Ok(Decided::AlreadyAnswered) => {
            return result_page(
                &session,
                "Request already answered",
                "This request has already been approved or denied; nothing changed.".into(),
            );
        }
        Err(error) => {
            tracing::error!(%error, "sso-oidc: device decision");
            return unavailable();
        }
    }
    audit(
        &state,
        &request,
        &session.identity.user_name,
        ACTION,
        pending.client_name(),
        if approve {
            Outcome::Success
        } else {
            Outcome::Denied
        },
        json!({ "client_id": short_client_id(pending.client_id()), "decision": if approve { "approve" } else { "deny" } }),
    )
    .await;
    let client_name = pending.client_name();
    if approve {
        result_page(
            &session,
            "Device approved — return to your terminal",
            format!(
                "{client_name} is now signed in as you and can get credentials for your roles. You can close this window."
            ),
        )
    } else {
        result_page(
            &session,
            "Request denied",
            format!(
                "{client_name} was not given access. If you did not start this sign-in yourself, tell your administrator."
            ),
        )
    }
}
