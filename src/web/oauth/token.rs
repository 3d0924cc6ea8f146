//! CreateToken: the device code, refresh token and authorization code grants.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::error::OidcError;
use super::{client_actor, json_body, required};
use crate::service::device::{
    AUTHORIZATION_CODE_GRANT, CodeExchange, DEVICE_GRANT, DeviceError, REFRESH_GRANT, Registration,
    TokenGrant, short_client_id, unsupported_grant_type,
};
use crate::store::Outcome;
use crate::web::AppState;
use crate::web::audit::audit;
use crate::web::aws_json::{client_network, json_ok};

const ACTION: &str = "sso:CreateToken";

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreateTokenRequest {
    client_id: Option<String>,
    client_secret: Option<String>,
    grant_type: Option<String>,
    device_code: Option<String>,
    refresh_token: Option<String>,
    code: Option<String>,
    redirect_uri: Option<String>,
    code_verifier: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CreateTokenResponse {
    access_token: String,
    token_type: &'static str,
    expires_in: i64,
    refresh_token: String,
}

/// Whether a refusal counts against the network's budget of failed calls: polling
/// is the normal state of a device login, and our own failures are not the caller's.
fn is_failure(error: &OidcError) -> bool {
    !matches!(error, OidcError::Internal)
        && !matches!(error, OidcError::Flow(flow) if flow.is_polling())
}

pub(super) async fn create_token(
    state: web::Data<AppState>,
    request: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, OidcError> {
    let network = client_network(&request);
    state.device.admit_token_request(&network).await?;
    let result = token_request(&state, &request, payload).await;
    if let Err(error) = &result
        && is_failure(error)
    {
        state.device.count_token_failure(&network).await;
    }
    result
}

/// The grant a request presents, its members present. Missing members are refusals
/// like the others (audited).
fn grant<'a>(
    registration: &Registration,
    input: &'a CreateTokenRequest,
    grant_type: &str,
) -> Result<TokenGrant<'a>, OidcError> {
    Ok(match grant_type {
        DEVICE_GRANT => TokenGrant::DeviceCode(required(&input.device_code, "deviceCode")?),
        REFRESH_GRANT => TokenGrant::RefreshToken(required(&input.refresh_token, "refreshToken")?),
        AUTHORIZATION_CODE_GRANT => {
            registration.require_authorization_code()?;
            TokenGrant::AuthorizationCode(CodeExchange {
                code: required(&input.code, "code")?,
                redirect_uri: required(&input.redirect_uri, "redirectUri")?,
                code_verifier: required(&input.code_verifier, "codeVerifier")?,
            })
        }
        other => return Err(unsupported_grant_type(other).into()),
    })
}

async fn token_request(
    state: &AppState,
    request: &HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, OidcError> {
    let input: CreateTokenRequest = json_body(request, payload).await?;
    let client_id = required(&input.client_id, "clientId")?;
    let client_secret = required(&input.client_secret, "clientSecret")?;
    let grant_type = required(&input.grant_type, "grantType")?;
    // For the audit log: a bounded copy of what the caller sent.
    let grant_label: String = grant_type.chars().take(64).collect();
    let registration = match state.device.verify_client(client_id, client_secret) {
        Ok(registration) => registration,
        Err(error) => {
            audit(
                state,
                request,
                &client_actor(client_id),
                ACTION,
                &grant_label,
                Outcome::Failure,
                json!({ "reason": error.to_string() }),
            )
            .await;
            return Err(error.into());
        }
    };
    let result = match grant(&registration, &input, grant_type) {
        Ok(grant) => state
            .device
            .create_token(&registration, grant)
            .await
            .map_err(OidcError::from),
        Err(error) => Err(error),
    };
    match result {
        Ok((identity, tokens)) => {
            audit(
                state,
                request,
                &identity.user_name,
                ACTION,
                registration.client_name(),
                Outcome::Success,
                json!({ "client_id": short_client_id(registration.client_id()), "grant_type": grant_label, "expires_in": tokens.expires_in }),
            )
            .await;
            Ok(json_ok(&CreateTokenResponse {
                access_token: tokens.access_token,
                token_type: "Bearer",
                expires_in: tokens.expires_in,
                refresh_token: tokens.refresh_token,
            }))
        }
        Err(error) => {
            if is_failure(&error) {
                let denied = matches!(error, OidcError::Flow(DeviceError::AccessDenied(_)));
                audit(
                    state,
                    request,
                    &client_actor(registration.client_id()),
                    ACTION,
                    registration.client_name(),
                    if denied {
                        Outcome::Denied
                    } else {
                        Outcome::Failure
                    },
                    json!({ "grant_type": grant_label, "error": error.exception(), "reason": error.to_string() }),
                )
                .await;
            }
            Err(error)
        }
    }
}
