//! `/admin/api/v1/people/{source}/{user_name}/sessions`: one person's portal
//! sessions and terminal sign-ins (`rolegate login`, the AWS CLI's SSO sign-ins),
//! and ending them all. Ending is audited.

use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::json;

use super::auth::{AdminRead, AdminWrite};
use super::common::{audit_change, end_sign_ins};
use super::error::AdminError;
use crate::web::AppState;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/people/{source}/{user_name}/sessions", web::get().to(list))
        .route(
            "/people/{source}/{user_name}/sessions",
            web::delete().to(revoke_all),
        );
}

async fn list(
    state: web::Data<AppState>,
    AdminRead(_): AdminRead,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, AdminError> {
    let (source, user_name) = path.into_inner();
    let portal = state
        .sessions
        .list_for_user(&source, &user_name)
        .await
        .map_err(AdminError::unavailable)?;
    let terminal = state
        .device
        .list_for_user(&source, &user_name)
        .await
        .map_err(AdminError::unavailable)?;
    Ok(HttpResponse::Ok().json(json!({
        "source": source,
        "user_name": user_name,
        "portal_sessions": portal,
        "terminal_sign_ins": terminal,
    })))
}

async fn revoke_all(
    state: web::Data<AppState>,
    request: HttpRequest,
    AdminWrite(admin): AdminWrite,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, AdminError> {
    let (source, user_name) = path.into_inner();
    let (portal, terminal) = end_sign_ins(&state, &source, &user_name).await?;
    audit_change(
        &state,
        &request,
        &admin,
        "admin:RevokeSessions",
        &format!("{source}:{user_name}"),
        json!({ "portal_sessions_ended": portal, "terminal_sign_ins_ended": terminal }),
    )
    .await;
    Ok(HttpResponse::Ok().json(json!({
        "portal_sessions_ended": portal,
        "terminal_sign_ins_ended": terminal,
    })))
}
