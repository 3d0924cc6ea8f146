//! The portal's way into a console: the "Console" button (`POST /start/console`:
//! credentials for the role, then a console session for them) and the deep link
//! `GET /start/account/<id>/role/<name>/console`, which only shows that button.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;
use serde_json::json;

use super::console::{entered, open_failure};
use super::{accounts_page, truncated};
use crate::store::Outcome;
use crate::web::AppState;
use crate::web::audit::audit;
use crate::web::page::{PageError, html, redirect};
use crate::web::portal::issue_for_session;
use crate::web::session::{session, signed_in_form};

#[derive(Deserialize)]
pub(super) struct ConsoleForm {
    #[serde(default)]
    csrf: String,
    account: String,
    role: String,
}

pub(super) async fn start_console(
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
    let (assumed, grant) = match issue_for_session(
        &state,
        &request,
        &portal,
        (&form.account, &form.role),
        ACTION,
        "No console session was created.",
    )
    .await
    {
        Ok(issued) => issued,
        Err(refusal) => return refusal,
    };
    let credentials = &assumed.credentials;
    let unavailable = || {
        accounts_page(
            StatusCode::SERVICE_UNAVAILABLE,
            "Console unavailable",
            "The console could not be opened right now. Please try again shortly.",
        )
    };
    let session = match state
        .console
        .role_session(&credentials.access_key_id, &credentials.session_token)
        .await
    {
        Ok(session) => session,
        Err(error) => {
            let cause = error.sts_cause();
            audit(
                &state,
                &request,
                &user,
                ACTION,
                &target,
                Outcome::Failure,
                json!({
                    "code": cause.map(|c| c.code),
                    "reason": cause.map_or_else(|| error.to_string(), |c| c.message.clone()),
                }),
            )
            .await;
            return unavailable();
        }
    };
    let opened = match state.console.open(&session, "/start").await {
        Ok(opened) => opened,
        Err(error) => {
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
            return open_failure(&error);
        }
    };
    let location = format!("/console/{}", opened.short);
    let Some(response) = entered(&request, StatusCode::SEE_OTHER, &location, &opened) else {
        return unavailable();
    };
    audit(
        &state,
        &request,
        &user,
        ACTION,
        &assumed.assumed_role_arn,
        Outcome::Success,
        grant.audited(
            json!({ "access_key_id": credentials.access_key_id, "console": opened.short }),
        ),
    )
    .await;
    response
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
pub(super) async fn confirm_console(
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
    let granted = match state
        .console
        .entitled_role(&portal.identity, &account, &role)
        .await
    {
        Ok(granted) => granted,
        Err(_) => {
            return PageError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "Unavailable",
                "Your roles could not be checked right now.",
            )
            .next("/start", "Try again")
            .into_response();
        }
    };
    let Some(granted) = granted else {
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
        return accounts_page(
            StatusCode::FORBIDDEN,
            "No access to this role",
            &format!(
                "Your groups do not grant you role {role} in account {account}, so no console was opened. Choose one of your roles instead, or ask an administrator for access."
            ),
        );
    };
    let page = ConfirmPage {
        csrf: &portal.csrf,
        account: &account,
        account_name: &granted.account_name,
        role: &role,
        description: &granted.description,
    };
    html(StatusCode::OK, page.render().unwrap_or_default())
}
