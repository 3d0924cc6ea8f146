//! `/admin/api/v1/tokens`: list, create (the secret is shown once) and revoke admin
//! API tokens. Creating and revoking are audited (never with the secret).

use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::auth::{AdminRead, AdminWrite, Scope};
use super::common::audit_change;
use super::error::AdminError;
use crate::service::admin_access::{TokenStatus, token_status};
use crate::store::{AdminToken, StoreError};
use crate::web::AppState;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/tokens", web::get().to(list))
        .route("/tokens", web::post().to(create))
        .route("/tokens/{id}", web::delete().to(revoke));
}

/// A token as the API shows it: never its secret or its hash.
#[derive(Serialize)]
struct TokenView {
    id: String,
    name: String,
    scope: Scope,
    created_by: String,
    created_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
    last_used_at: Option<DateTime<Utc>>,
    revoked_at: Option<DateTime<Utc>>,
    status: TokenStatus,
}

fn view(token: AdminToken, now: DateTime<Utc>) -> TokenView {
    TokenView {
        status: token_status(&token, now),
        id: token.id,
        name: token.name,
        scope: token.scope,
        created_by: token.created_by,
        created_at: token.created_at,
        expires_at: token.expires_at,
        last_used_at: token.last_used_at,
        revoked_at: token.revoked_at,
    }
}

/// A token as its audit events record it: never its secret or its hash.
fn audited(token: &AdminToken) -> serde_json::Value {
    json!({
        "token_id": token.id,
        "name": token.name,
        "scope": token.scope,
        "expires_at": token.expires_at,
    })
}

async fn list(
    state: web::Data<AppState>,
    AdminRead(_): AdminRead,
) -> Result<HttpResponse, AdminError> {
    let now = state.admin.now();
    let tokens: Vec<TokenView> = state
        .admin
        .list()
        .await?
        .into_iter()
        .map(|t| view(t, now))
        .collect();
    Ok(HttpResponse::Ok().json(json!({ "tokens": tokens })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateToken {
    name: String,
    scope: Scope,
    #[serde(default)]
    expires_in_days: Option<i64>,
}

async fn create(
    state: web::Data<AppState>,
    request: HttpRequest,
    AdminWrite(admin): AdminWrite,
    body: web::Json<CreateToken>,
) -> Result<HttpResponse, AdminError> {
    let body = body.into_inner();
    let issued = state
        .admin
        .issue(&body.name, body.scope, body.expires_in_days, &admin.actor)
        .await?;
    let token = issued.token;
    audit_change(
        &state,
        &request,
        &admin,
        "admin:CreateToken",
        &token.id,
        audited(&token),
    )
    .await;
    let mut body =
        serde_json::to_value(view(token, state.admin.now())).map_err(AdminError::internal)?;
    body["secret"] = json!(issued.secret);
    Ok(HttpResponse::Created().json(body))
}

async fn revoke(
    state: web::Data<AppState>,
    request: HttpRequest,
    AdminWrite(admin): AdminWrite,
    id: web::Path<String>,
) -> Result<HttpResponse, AdminError> {
    let id = id.into_inner();
    let token = match state.admin.revoke(&id).await {
        Ok(token) => token,
        Err(crate::service::admin_access::AdminAccessError::Store(StoreError::NotFound {
            ..
        })) => {
            return Err(AdminError::not_found(
                "NOT_FOUND",
                format!("There is no admin API token {id}."),
            ));
        }
        Err(error) => return Err(error.into()),
    };
    audit_change(&state, &request, &admin, "admin:RevokeToken", &token.id, {
        let mut details = audited(&token);
        details["created_by"] = json!(token.created_by);
        details
    })
    .await;
    Ok(HttpResponse::NoContent().finish())
}
