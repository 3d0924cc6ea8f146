//! `/admin/tokens`: the admin API tokens (name, scope, expiry, last use, status),
//! a form that creates one through the API (its secret is shown once, by
//! `static/admin-people.js` from the API's answer, and never rendered by a page),
//! and revoking.

use actix_web::{HttpResponse, web};
use askama::Template;

use super::{AdminPage, Layout, Section, render, unavailable};
use crate::service::admin_access::{
    DEFAULT_EXPIRES_IN_DAYS, MAX_EXPIRES_IN_DAYS, MAX_TOKEN_NAME_CHARS, TokenStatus, token_status,
};
use crate::store::AdminToken;
use crate::web::AppState;
use crate::web::page::PageError;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/tokens", web::get().to(tokens));
}

struct Row {
    token: AdminToken,
    status: &'static str,
    active: bool,
}

#[derive(Template)]
#[template(path = "admin/tokens.html")]
struct TokensPage {
    layout: Layout,
    rows: Vec<Row>,
    default_days: i64,
    max_days: i64,
    max_name: usize,
}

async fn tokens(state: web::Data<AppState>, admin: AdminPage) -> Result<HttpResponse, PageError> {
    let now = state.admin.now();
    let rows = state
        .admin
        .list()
        .await
        .map_err(unavailable)?
        .into_iter()
        .map(|token| {
            let status = token_status(&token, now);
            Row {
                status: match status {
                    TokenStatus::Active => "active",
                    TokenStatus::Expired => "expired",
                    TokenStatus::Revoked => "revoked",
                },
                active: status == TokenStatus::Active,
                token,
            }
        })
        .collect();
    render(&TokensPage {
        layout: admin.layout(Section::Tokens, "API tokens"),
        rows,
        default_days: DEFAULT_EXPIRES_IN_DAYS,
        max_days: MAX_EXPIRES_IN_DAYS,
        max_name: MAX_TOKEN_NAME_CHARS,
    })
}
