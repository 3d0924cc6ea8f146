//! SSO-OIDC errors as AWS renders them: a JSON body with `error` and
//! `error_description` and the exception name in `x-amzn-ErrorType`.

use actix_web::http::{StatusCode, header};
use actix_web::{HttpResponse, ResponseError};
use serde_json::json;

use super::BODY_LIMIT;
use crate::service::device::DeviceError;
use crate::web::aws_json::json_error;

const ERROR_TYPE_SUFFIX: &str =
    ":http://internal.amazon.com/coral/com.amazonaws.switchboard.portal/";

/// Every failure of the SSO-OIDC surface: the device service's (never
/// [`DeviceError::Unavailable`], which becomes [`OidcError::Internal`] with its cause
/// logged) and the wire's own.
#[derive(Debug, thiserror::Error)]
pub(super) enum OidcError {
    #[error(transparent)]
    Flow(DeviceError),
    #[error("{0}")]
    InvalidRequest(String),
    #[error("The request body is larger than {} KiB", BODY_LIMIT / 1024)]
    PayloadTooLarge,
    #[error("This path only accepts POST")]
    UnknownOperation,
    #[error("An internal error occurred; please try again")]
    Internal,
}

impl From<DeviceError> for OidcError {
    fn from(error: DeviceError) -> Self {
        match error {
            DeviceError::Unavailable { what, cause } => {
                tracing::error!(%cause, "sso-oidc: {what}");
                Self::Internal
            }
            error => Self::Flow(error),
        }
    }
}

impl OidcError {
    /// The exception name and the OAuth error code.
    fn codes(&self) -> (&'static str, &'static str) {
        match self {
            Self::Flow(error) => match error {
                DeviceError::AuthorizationPending => {
                    ("AuthorizationPendingException", "authorization_pending")
                }
                // botocore does not retry it (not a throttling code in either retry
                // mode): StartDeviceAuthorization fails with a clear message, and
                // CreateToken polling (CLI v2, rolegate login) backs off by 5 s and
                // carries on.
                DeviceError::SlowDown | DeviceError::TooManyRequests(_) => {
                    ("SlowDownException", "slow_down")
                }
                DeviceError::ExpiredDeviceCode => ("ExpiredTokenException", "expired_token"),
                DeviceError::AccessDenied(_) => ("AccessDeniedException", "access_denied"),
                DeviceError::InvalidGrant(_) => ("InvalidGrantException", "invalid_grant"),
                DeviceError::InvalidClient(_) => ("InvalidClientException", "invalid_client"),
                DeviceError::UnauthorizedClient(_) => {
                    ("UnauthorizedClientException", "unauthorized_client")
                }
                DeviceError::InvalidScope(_) => ("InvalidScopeException", "invalid_scope"),
                DeviceError::UnsupportedGrantType(_) => {
                    ("UnsupportedGrantTypeException", "unsupported_grant_type")
                }
                DeviceError::InvalidClientMetadata(_) => {
                    ("InvalidClientMetadataException", "invalid_client_metadata")
                }
                DeviceError::InvalidRedirectUri(_) => {
                    ("InvalidRedirectUriException", "invalid_redirect_uri")
                }
                DeviceError::Unavailable { .. } => ("InternalServerException", "server_error"),
            },
            Self::InvalidRequest(_) | Self::PayloadTooLarge => {
                ("InvalidRequestException", "invalid_request")
            }
            Self::UnknownOperation => ("UnknownOperationException", "invalid_request"),
            Self::Internal => ("InternalServerException", "server_error"),
        }
    }

    pub(super) fn exception(&self) -> &'static str {
        self.codes().0
    }
}

impl ResponseError for OidcError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::Flow(DeviceError::InvalidClient(_)) => StatusCode::UNAUTHORIZED,
            Self::Flow(DeviceError::TooManyRequests(_)) => StatusCode::TOO_MANY_REQUESTS,
            Self::Flow(DeviceError::Unavailable { .. }) | Self::Internal => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnknownOperation => StatusCode::METHOD_NOT_ALLOWED,
            _ => StatusCode::BAD_REQUEST,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let retry_after = match self {
            Self::Flow(DeviceError::TooManyRequests(seconds)) => Some(*seconds),
            _ => None,
        };
        let (exception, oauth_error) = self.codes();
        let description = match self {
            // Its cause is for the log (where `From` put it), never for the client.
            Self::Flow(DeviceError::Unavailable { .. }) => Self::Internal.to_string(),
            _ => self.to_string(),
        };
        let mut response = json_error(
            self.status_code(),
            &format!("{exception}{ERROR_TYPE_SUFFIX}"),
            &json!({ "error": oauth_error, "error_description": description }),
            retry_after,
        );
        if matches!(self, Self::UnknownOperation) {
            response
                .headers_mut()
                .insert(header::ALLOW, header::HeaderValue::from_static("POST"));
        }
        response
    }
}
