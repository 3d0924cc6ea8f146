//! StartDeviceAuthorization.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::error::OidcError;
use super::{client_actor, json_body, required};
use crate::service::device::short_client_id;
use crate::store::Outcome;
use crate::web::audit::audit;
use crate::web::aws_json::{client_network, json_ok};
use crate::web::{AppState, request_info};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct StartDeviceAuthorizationRequest {
    client_id: Option<String>,
    client_secret: Option<String>,
    start_url: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct StartDeviceAuthorizationResponse {
    device_code: String,
    user_code: String,
    verification_uri: String,
    verification_uri_complete: String,
    expires_in: i64,
    interval: i64,
}

pub(super) async fn start_device_authorization(
    state: web::Data<AppState>,
    request: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, OidcError> {
    state
        .device
        .admit_device_authorization(&client_network(&request))
        .await?;
    let input: StartDeviceAuthorizationRequest = json_body(&request, payload).await?;
    let client_id = required(&input.client_id, "clientId")?;
    let client_secret = required(&input.client_secret, "clientSecret")?;
    required(&input.start_url, "startUrl")?;
    let registration = state.device.verify_client(client_id, client_secret)?;
    let started = state
        .device
        .start_device_authorization(&registration)
        .await?;
    audit(
        &state,
        &request,
        &client_actor(registration.client_id()),
        "sso:StartDeviceAuthorization",
        registration.client_name(),
        Outcome::Success,
        json!({ "client_id": short_client_id(registration.client_id()) }),
    )
    .await;
    let verification_uri = format!("{}/device", request_info::public_origin(&request));
    Ok(json_ok(&StartDeviceAuthorizationResponse {
        device_code: started.device_code,
        verification_uri_complete: format!("{verification_uri}?user_code={}", started.user_code),
        user_code: started.user_code.to_string(),
        verification_uri,
        expires_in: started.expires_in,
        interval: started.interval,
    }))
}
