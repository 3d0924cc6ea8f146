//! The console surface: the AWS-shaped federation endpoint (`getSigninToken` /
//! `login`, [`signin`]), the portal's "Console" button and deep links ([`start`]),
//! and the console page itself ([`console`]: who you are, what the role may do,
//! "can I?", evaluated in [`check`]). Sign-in tokens and console sessions are the
//! console service's ([`crate::service::console`]); where a login may continue is
//! the allow-list's ([`crate::iam::LoginDestination`]). These handlers translate
//! HTTP to calls into them, write the audit events, and render the answers.
//!
//! A console's cookie is scoped to `/console/<short id>`, so several consoles for
//! different roles can be open in different tabs. `Issuer`, if a local path, is
//! where the console's "Back" link and "Close console" go.

mod check;
mod console;
mod signin;
mod start;

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};

use super::page::PageError;
use crate::sts::assume::{Caller, CallerKind};

/// The actor of audit events about requests that name no one.
const ANONYMOUS: &str = "anonymous";

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/federation", web::get().to(signin::federation_get))
        .route("/federation", web::post().to(signin::federation_post))
        .route("/start/console", web::post().to(start::start_console))
        .route(
            "/start/account/{account}/role/{role}/console",
            web::get().to(start::confirm_console),
        )
        .route("/console", web::get().to(console::console_index))
        .route("/console/", web::get().to(console::console_index))
        .route("/console/{short}", web::get().to(console::console_view))
        .route(
            "/console/{short}/check",
            web::post().to(console::console_check),
        )
        .route(
            "/console/{short}/logout",
            web::post().to(console::console_logout),
        )
        .route("/static/console.css", web::get().to(console::css));
}

/// An error page whose way on is the portal's list of accounts.
fn accounts_page(status: StatusCode, title: &str, message: &str) -> HttpResponse {
    PageError::new(status, title, message)
        .next("/start", "Your accounts")
        .into_response()
}

/// At most 200 characters of a client-supplied value, for audit targets and pages.
fn truncated(value: &str) -> String {
    value.chars().take(200).collect()
}

/// The role a session's caller assumed (its own ARN for other callers).
fn role_arn_of(caller: &Caller) -> String {
    match &caller.kind {
        CallerKind::AssumedRole { role_arn, .. } => role_arn.clone(),
        _ => caller.arn.clone(),
    }
}
