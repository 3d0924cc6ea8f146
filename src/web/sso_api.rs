//! The AWS SSO portal API (rest-json, unsigned, bearer token in the
//! `x-amz-sso_bearer_token` header): GetRoleCredentials, ListAccounts,
//! ListAccountRoles and Logout, for access tokens of the terminal sign-ins that
//! `oauth` starts (looked up and ended by [`crate::service::device`]).
//! Entitlements come from the identity's groups at every call.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, ResponseError, guard, web};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::AppState;
use super::audit::audit;
use super::aws_json::{empty_ok, json_error, json_ok};
use crate::service::device::{DeviceError, TokenRecord};
use crate::service::entitlements::Grant;
use crate::store::Outcome;

pub(crate) const BEARER_HEADER: &str = "x-amz-sso_bearer_token";
const DEFAULT_PAGE: usize = 20;

/// Must be registered before the portal's routes: `POST /logout` with the bearer
/// header is the SSO Logout API, without it the portal's form sign-out.
pub fn routes(cfg: &mut web::ServiceConfig) {
    for (path, handler) in [
        (
            "/federation/credentials",
            web::get().to(get_role_credentials),
        ),
        ("/assignment/accounts", web::get().to(list_accounts)),
        ("/assignment/roles", web::get().to(list_account_roles)),
    ] {
        cfg.service(
            web::resource(path)
                .app_data(web::QueryConfig::default().error_handler(|error, _| {
                    PortalApiError::InvalidRequest(format!(
                        "The query string is not valid: {error}"
                    ))
                    .into()
                }))
                .route(handler)
                .default_service(web::to(unknown_operation)),
        );
    }
    cfg.route(
        "/logout",
        web::post()
            .guard(guard::fn_guard(|ctx| {
                ctx.head().headers().contains_key(BEARER_HEADER)
            }))
            .to(logout),
    );
}

/// Any other method on a portal API path: a typed error, not a bare 405.
async fn unknown_operation() -> HttpResponse {
    PortalApiError::UnknownOperation.error_response()
}

/// Failures of the portal API as AWS renders them: `{"message"}` and the exception
/// name in `x-amzn-ErrorType` (botocore turns a typed 401 into "run aws sso login").
#[derive(Debug, thiserror::Error)]
enum PortalApiError {
    #[error("Session token not found or invalid")]
    Unauthorized,
    #[error("{0}")]
    InvalidRequest(String),
    #[error("{0}")]
    NotFound(String),
    #[error("No access")]
    Forbidden,
    #[error("This path only accepts GET")]
    UnknownOperation,
    #[error("An internal error occurred; please try again")]
    Internal,
    /// The database cannot be reached right now (clients retry a 503).
    #[error("The service is unavailable right now; please try again")]
    Unavailable,
}

impl PortalApiError {
    /// A failure of Rolegate's own: 503 when the STS says a dependency is down, else
    /// 500 (the cause is logged by whoever calls this).
    fn of_sts(error: &crate::sts::error::StsError) -> Self {
        if error.status == 503 {
            Self::Unavailable
        } else {
            Self::Internal
        }
    }
}

impl PortalApiError {
    fn exception(&self) -> &'static str {
        match self {
            Self::Unauthorized => "UnauthorizedException",
            Self::InvalidRequest(_) => "InvalidRequestException",
            Self::NotFound(_) => "ResourceNotFoundException",
            Self::Forbidden => "ForbiddenException",
            Self::UnknownOperation => "UnknownOperationException",
            Self::Internal => "InternalServerException",
            Self::Unavailable => "ServiceUnavailableException",
        }
    }
}

impl ResponseError for PortalApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::InvalidRequest(_) => StatusCode::BAD_REQUEST,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Forbidden => StatusCode::FORBIDDEN,
            Self::UnknownOperation => StatusCode::METHOD_NOT_ALLOWED,
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn error_response(&self) -> HttpResponse {
        json_error(
            self.status_code(),
            self.exception(),
            &json!({ "message": self.to_string() }),
            None,
        )
    }
}

impl From<DeviceError> for PortalApiError {
    fn from(error: DeviceError) -> Self {
        tracing::error!(%error, "sso portal: token lookup");
        Self::Internal
    }
}

fn bearer_token(request: &HttpRequest) -> Option<&str> {
    request
        .headers()
        .get(BEARER_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

/// The sign-in behind the request's bearer token: (token, record).
async fn caller<'r>(
    state: &AppState,
    request: &'r HttpRequest,
) -> Result<(&'r str, TokenRecord), PortalApiError> {
    let token = bearer_token(request).ok_or(PortalApiError::Unauthorized)?;
    let record = state
        .device
        .bearer(token)
        .await?
        .ok_or(PortalApiError::Unauthorized)?;
    Ok((token, record))
}

fn valid_account_id(value: &str) -> bool {
    value.len() == 12 && value.bytes().all(|b| b.is_ascii_digit())
}

fn page_size(max_result: Option<&str>) -> Result<usize, PortalApiError> {
    match max_result {
        None => Ok(DEFAULT_PAGE),
        Some(raw) => raw
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=100).contains(n))
            .ok_or_else(|| {
                PortalApiError::InvalidRequest("max_result must be an integer from 1 to 100".into())
            }),
    }
}

/// One page of `items` (sorted by key) after the item named by `next_token`; the
/// token is the last key returned, so pages stay consistent while roles change.
fn paginate<T>(
    items: Vec<T>,
    key: impl Fn(&T) -> String,
    max_result: Option<&str>,
    next_token: Option<&str>,
) -> Result<(Vec<T>, Option<String>), PortalApiError> {
    let size = page_size(max_result)?;
    let after = match next_token.filter(|t| !t.is_empty()) {
        None => None,
        Some(token) => Some(
            URL_SAFE_NO_PAD
                .decode(token)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(|| PortalApiError::InvalidRequest("next_token is not valid".into()))?,
        ),
    };
    let mut rest: Vec<T> = items
        .into_iter()
        .filter(|item| after.as_ref().is_none_or(|a| key(item) > *a))
        .collect();
    let more = rest.len() > size;
    rest.truncate(size);
    let next = if more {
        rest.last().map(|last| URL_SAFE_NO_PAD.encode(key(last)))
    } else {
        None
    };
    Ok((rest, next))
}

/// Adds `nextToken` only when there is a next page (absent means the last page).
fn with_next(mut body: serde_json::Value, next: Option<String>) -> serde_json::Value {
    if let (Some(next), Some(object)) = (next, body.as_object_mut()) {
        object.insert("nextToken".into(), next.into());
    }
    body
}

async fn entitlements(
    state: &AppState,
    record: &TokenRecord,
) -> Result<Vec<Grant>, PortalApiError> {
    state
        .sts
        .entitlements(&record.identity)
        .await
        .map_err(|error| {
            tracing::error!(%error, "sso portal: cannot compute entitlements");
            PortalApiError::of_sts(&error)
        })
}

// ---------------------------------------------------------------------------------
// GetRoleCredentials

#[derive(Deserialize)]
struct CredentialsQuery {
    role_name: Option<String>,
    account_id: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RoleCredentials {
    access_key_id: String,
    secret_access_key: String,
    session_token: String,
    /// Epoch milliseconds.
    expiration: i64,
}

async fn get_role_credentials(
    state: web::Data<AppState>,
    request: HttpRequest,
    query: web::Query<CredentialsQuery>,
) -> Result<HttpResponse, PortalApiError> {
    let now = state.clock.now();
    let (_, record) = caller(&state, &request).await?;
    let (Some(role), Some(account)) = (
        query.role_name.as_deref().filter(|v| !v.is_empty()),
        query.account_id.as_deref().filter(|v| !v.is_empty()),
    ) else {
        return Err(PortalApiError::InvalidRequest(
            "role_name and account_id are required".into(),
        ));
    };
    if !valid_account_id(account) || role.len() > 64 {
        return Err(PortalApiError::InvalidRequest(
            "account_id must be 12 digits and role_name at most 64 characters".into(),
        ));
    }
    let user = record.identity.user_name.as_str();
    let issued = state
        .sts
        .issue_granted(&record.identity, (account, role), now.timestamp())
        .await;
    match issued {
        Ok((assumed, grant)) => {
            audit(
                &state,
                &request,
                user,
                "sso:GetRoleCredentials",
                &assumed.assumed_role_arn,
                Outcome::Success,
                grant.audited(json!({ "access_key_id": assumed.credentials.access_key_id, "client_id": record.client_id })),
            )
            .await;
            let creds = assumed.credentials;
            Ok(json_ok(&json!({
                "roleCredentials": RoleCredentials {
                    access_key_id: creds.access_key_id,
                    secret_access_key: creds.secret_access_key,
                    session_token: creds.session_token,
                    expiration: creds.expiration.timestamp_millis(),
                }
            })))
        }
        Err(error) => {
            let denied = error.status == 403;
            audit(
                &state,
                &request,
                user,
                "sso:GetRoleCredentials",
                &format!("{account}/{role}"),
                if denied {
                    Outcome::Denied
                } else {
                    Outcome::Failure
                },
                json!({ "code": error.code, "reason": error.message, "client_id": record.client_id }),
            )
            .await;
            if denied {
                Err(PortalApiError::Forbidden)
            } else {
                tracing::error!(%error, "sso portal: cannot issue role credentials");
                Err(PortalApiError::of_sts(&error))
            }
        }
    }
}

// ---------------------------------------------------------------------------------
// ListAccounts / ListAccountRoles

#[derive(Deserialize)]
struct PageQuery {
    account_id: Option<String>,
    max_result: Option<String>,
    next_token: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct AccountInfo {
    account_id: String,
    account_name: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RoleInfo {
    role_name: String,
    account_id: String,
}

async fn list_accounts(
    state: web::Data<AppState>,
    request: HttpRequest,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, PortalApiError> {
    let (_, record) = caller(&state, &request).await?;
    let roles = entitlements(&state, &record).await?;
    let names = state.store.list_accounts().await.map_err(|error| {
        tracing::error!(%error, "sso portal: cannot list accounts");
        if error.is_unavailable() {
            PortalApiError::Unavailable
        } else {
            PortalApiError::Internal
        }
    })?;
    let mut ids: Vec<String> = roles.iter().map(|g| g.account().to_string()).collect();
    ids.sort();
    ids.dedup();
    let accounts: Vec<AccountInfo> = ids
        .into_iter()
        .map(|id| AccountInfo {
            account_name: names
                .iter()
                .find(|a| a.id.as_str() == id)
                .map(|a| a.name.clone())
                .unwrap_or_default(),
            account_id: id,
        })
        .collect();
    let (page, next) = paginate(
        accounts,
        |a| a.account_id.clone(),
        query.max_result.as_deref(),
        query.next_token.as_deref(),
    )?;
    Ok(json_ok(&with_next(json!({ "accountList": page }), next)))
}

async fn list_account_roles(
    state: web::Data<AppState>,
    request: HttpRequest,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, PortalApiError> {
    let (_, record) = caller(&state, &request).await?;
    let Some(account) = query.account_id.as_deref().filter(|v| !v.is_empty()) else {
        return Err(PortalApiError::InvalidRequest(
            "account_id is required".into(),
        ));
    };
    if !valid_account_id(account) {
        return Err(PortalApiError::InvalidRequest(
            "account_id must be 12 digits".into(),
        ));
    }
    let mut roles: Vec<RoleInfo> = entitlements(&state, &record)
        .await?
        .into_iter()
        .filter(|g| g.account().as_str() == account)
        .map(|g| RoleInfo {
            role_name: g.role_name().to_string(),
            account_id: g.account().to_string(),
        })
        .collect();
    if roles.is_empty() {
        return Err(PortalApiError::NotFound(format!(
            "No roles in account {account} are assigned to you"
        )));
    }
    roles.sort_by(|a, b| a.role_name.cmp(&b.role_name));
    let (page, next) = paginate(
        roles,
        |r| r.role_name.clone(),
        query.max_result.as_deref(),
        query.next_token.as_deref(),
    )?;
    Ok(json_ok(&with_next(json!({ "roleList": page }), next)))
}

// ---------------------------------------------------------------------------------
// Logout

async fn logout(
    state: web::Data<AppState>,
    request: HttpRequest,
) -> Result<HttpResponse, PortalApiError> {
    let (token, record) = caller(&state, &request).await?;
    state.device.logout(token, &record).await?;
    audit(
        &state,
        &request,
        &record.identity.user_name,
        "sso:Logout",
        &record.identity.source_id,
        Outcome::Success,
        json!({ "client_id": record.client_id }),
    )
    .await;
    Ok(empty_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_follow_the_last_key() {
        let items: Vec<String> = ["a", "b", "c"].iter().map(|s| s.to_string()).collect();
        let (page, next) = paginate(items.clone(), String::clone, Some("2"), None).unwrap();
        assert_eq!(page, ["a", "b"]);
        let (page, next) =
            paginate(items.clone(), String::clone, Some("2"), next.as_deref()).unwrap();
        assert_eq!(page, ["c"]);
        assert!(next.is_none());
        assert!(paginate(items.clone(), String::clone, Some("0"), None).is_err());
        assert!(paginate(items.clone(), String::clone, Some("101"), None).is_err());
        assert!(paginate(items, String::clone, None, Some("%%%")).is_err());
    }
}
