//! SSO-OIDC in the AWS shape (rest-json, unsigned): RegisterClient,
//! StartDeviceAuthorization and CreateToken, i.e. the OAuth 2.0 device authorization
//! grant (RFC 8628) and the authorization code grant as botocore, the AWS CLI and
//! `rolegate login` speak them, plus the portal pages where a signed-in person
//! approves a device (`/device`) or an authorization-code client (`/authorize`).
//! The flows are [`crate::service::device`]'s; these handlers translate HTTP to its
//! calls and its answers back to the wire, and write the audit records.

mod approve;
mod authorization_code;
mod device;
mod error;
mod register;
mod token;

use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use serde::Deserialize;
use serde::de::DeserializeOwned;

use self::error::OidcError;
use super::AppState;
use super::aws_json::{BodyError, read_body};
use super::session::PortalSession;
use crate::service::device::Approver;

/// The largest request body accepted (botocore's are well under 1 KiB).
const BODY_LIMIT: usize = 64 * 1024;

pub fn routes(cfg: &mut web::ServiceConfig) {
    // The AWS CLI v2 resolves a start URL with HEAD (§2.3 of the wire notes): one
    // redirect to the AWS-shaped identifier. GET stays the portal's page.
    cfg.service(
        web::resource("/start")
            .guard(actix_web::guard::Head())
            .to(start_url_identifier),
    );
    for (path, handler) in [
        (
            "/client/register",
            web::post().to(register::register_client),
        ),
        (
            "/device_authorization",
            web::post().to(device::start_device_authorization),
        ),
        ("/token", web::post().to(token::create_token)),
    ] {
        cfg.service(
            web::resource(path)
                .route(handler)
                .default_service(web::to(unknown_operation)),
        );
    }
    cfg.route("/device", web::get().to(approve::device_page))
        .route("/device", web::post().to(approve::device_decision))
        .route(
            "/authorize",
            web::get().to(authorization_code::authorize_page),
        )
        .route(
            "/authorize",
            web::post().to(authorization_code::authorize_decision),
        );
}

/// `HEAD /start`: `302` to `sso.aws_start_url`, the identifier the AWS CLI v2 then
/// sends as `startUrl` (it never requests it).
async fn start_url_identifier(state: web::Data<AppState>) -> HttpResponse {
    super::page::found(state.sso.aws_start_url.as_str())
}

/// Any other method on an SSO-OIDC path: a typed error, not a bare 405.
async fn unknown_operation() -> HttpResponse {
    OidcError::UnknownOperation.error_response()
}

/// The JSON request body as `T`: bounded in size; unknown members are ignored (as
/// AWS does, so newer clients keep working).
async fn json_body<T: DeserializeOwned>(
    request: &HttpRequest,
    payload: web::Payload,
) -> Result<T, OidcError> {
    let body = read_body(request, payload, BODY_LIMIT)
        .await
        .map_err(|error| match error {
            BodyError::TooLarge => OidcError::PayloadTooLarge,
            BodyError::Broken(detail) => {
                OidcError::InvalidRequest(format!("The request body could not be read: {detail}"))
            }
        })?;
    serde_json::from_slice(&body).map_err(|e| {
        // serde names the member and the line, never the value sent.
        let what = match e.classify() {
            serde_json::error::Category::Data => "has a member of the wrong type",
            _ => "is not a JSON object",
        };
        OidcError::InvalidRequest(format!(
            "The request body {what} (line {}, column {})",
            e.line(),
            e.column()
        ))
    })
}

/// A JSON array member that may also be absent or `null`.
fn list_or_null<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Vec<String>, D::Error> {
    Ok(Option::<Vec<String>>::deserialize(deserializer)?.unwrap_or_default())
}

fn required<'a>(value: &'a Option<String>, name: &str) -> Result<&'a str, OidcError> {
    match value.as_deref().map(str::trim) {
        Some(v) if !v.is_empty() && v.len() <= 4096 => Ok(v),
        Some(v) if !v.is_empty() => Err(OidcError::InvalidRequest(format!("{name} is too long"))),
        _ => Err(OidcError::InvalidRequest(format!("{name} is required"))),
    }
}

/// The person approving a terminal sign-in from `session`.
fn approver(state: &AppState, session: &PortalSession) -> Approver {
    Approver {
        identity: session.identity.clone(),
        // Tokens live no longer than the portal sign-in that approved them.
        signed_in_at: session.sign_in_time(state.clock.timestamp()),
        valid_from_ms: session.valid_from_ms,
    }
}

/// The audit actor of a client not yet known to be genuine, or of its refusals.
fn client_actor(client_id: &str) -> String {
    format!(
        "client:{}",
        crate::service::device::short_client_id(client_id)
    )
}
