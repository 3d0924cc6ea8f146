//! RegisterClient.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};

use super::error::OidcError;
use super::{json_body, list_or_null, required};
use crate::service::device::NewClient;
use crate::web::AppState;
use crate::web::aws_json::{client_network, json_ok};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RegisterClientRequest {
    client_name: Option<String>,
    client_type: Option<String>,
    #[serde(default, deserialize_with = "list_or_null")]
    scopes: Vec<String>,
    #[serde(default, deserialize_with = "list_or_null")]
    grant_types: Vec<String>,
    /// Loopback URIs for the authorization code grant (any port at use time).
    #[serde(default, deserialize_with = "list_or_null")]
    redirect_uris: Vec<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RegisterClientResponse {
    client_id: String,
    client_secret: String,
    client_id_issued_at: i64,
    client_secret_expires_at: i64,
}

pub(super) async fn register_client(
    state: web::Data<AppState>,
    http: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, OidcError> {
    state
        .device
        .admit_registration(&client_network(&http))
        .await?;
    let request: RegisterClientRequest = json_body(&http, payload).await?;
    let registered = state.device.register_client(NewClient {
        name: required(&request.client_name, "clientName")?,
        client_type: required(&request.client_type, "clientType")?,
        scopes: request.scopes,
        grant_types: request.grant_types,
        redirect_uris: request.redirect_uris,
    })?;
    Ok(json_ok(&RegisterClientResponse {
        client_id: registered.client_id,
        client_secret: registered.client_secret,
        client_id_issued_at: registered.issued_at,
        client_secret_expires_at: registered.expires_at,
    }))
}
