//! The one error answer of Rolegate's own JSON surfaces (`/v1/authorize`, the JSON
//! answers of `/federation`; the admin API has its own, `admin::error`): an HTTP status and a body
//! `{"error": "<stable code>", "message": "...", "field": "..."}` (`field` only for
//! validation errors), never cached, with `Retry-After` when the client should come
//! back later. Handlers return `Result<_, ApiError>` and use `?`. The AWS JSON
//! surfaces have their own wire format (`aws_json`).

use std::fmt;

use actix_web::http::{StatusCode, header};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

use crate::store::StoreError;
use crate::sts::error::StsError;

/// What the client reads of an internal failure; the cause goes to the log.
const INTERNAL_MESSAGE: &str = "The request could not be completed. Try again later.";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    /// The input at fault, for validation errors.
    field: Option<&'static str>,
    /// Seconds, for `429` and `503`.
    retry_after: Option<u64>,
}

#[derive(Serialize)]
struct Body<'a> {
    error: &'a str,
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<&'a str>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            field: None,
            retry_after: None,
        }
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// Input `field` breaks a rule that `message` states (`ValidationError`).
    pub fn validation(field: &'static str, message: impl Into<String>) -> Self {
        Self {
            field: Some(field),
            ..Self::bad_request("ValidationError", message)
        }
    }

    pub fn forbidden(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, code, message)
    }

    pub fn not_found(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, code, message)
    }

    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, message)
    }

    /// The client is over a limit and may try again after `retry_after` seconds.
    pub fn too_many_requests(
        code: &'static str,
        message: impl Into<String>,
        retry_after: u64,
    ) -> Self {
        Self {
            retry_after: Some(retry_after),
            ..Self::new(StatusCode::TOO_MANY_REQUESTS, code, message)
        }
    }

    /// A dependency (the cache, the database) does not answer right now.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "ServiceUnavailable",
            message,
        )
    }

    /// A failure of Rolegate itself: `cause` is logged, the client reads only an
    /// opaque message.
    pub fn internal(cause: impl fmt::Display) -> Self {
        Self::internal_saying(INTERNAL_MESSAGE, cause)
    }

    /// [`ApiError::internal`] with a message of the surface's own (still saying
    /// nothing of the cause).
    pub fn internal_saying(message: impl Into<String>, cause: impl fmt::Display) -> Self {
        tracing::error!(%cause, "internal failure");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalFailure",
            message,
        )
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status);
        response.insert_header((header::CACHE_CONTROL, "no-store"));
        if let Some(seconds) = self.retry_after {
            response.insert_header((header::RETRY_AFTER, seconds.to_string()));
        }
        response.json(Body {
            error: self.code,
            message: &self.message,
            field: self.field,
        })
    }
}

/// The STS's own status, code and message (its 5xx messages are already opaque).
impl From<&StsError> for ApiError {
    fn from(error: &StsError) -> Self {
        let status =
            StatusCode::from_u16(error.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        Self::new(status, error.code, error.message.clone())
    }
}

impl From<StsError> for ApiError {
    fn from(error: StsError) -> Self {
        Self::from(&error)
    }
}

/// [`StoreError::code`] as the code; a database failure is internal (logged, opaque).
impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        let code = error.code();
        match error {
            StoreError::NotFound { .. } => Self::not_found(code, error.to_string()),
            StoreError::AlreadyExists { .. }
            | StoreError::Conflict(_)
            | StoreError::LimitExceeded(_)
            | StoreError::Stale(_) => Self::conflict(code, error.to_string()),
            StoreError::Invalid(invalid) => Self {
                code,
                ..Self::validation(invalid.field, invalid.message)
            },
            StoreError::MalformedPolicy { .. } => Self::bad_request(code, error.to_string()),
            _ if error.is_unavailable() => {
                tracing::warn!(%error, "database unavailable");
                Self {
                    retry_after: Some(1),
                    ..Self::unavailable("The database is unavailable right now. Try again shortly.")
                }
            }
            StoreError::Backend(_) | StoreError::Migration(_) | StoreError::Unreachable { .. } => {
                Self {
                    code,
                    ..Self::internal(error)
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use actix_web::body::MessageBody;

    use super::*;
    use crate::iam::ValidationError;

    fn body(error: &ApiError) -> serde_json::Value {
        let bytes = error.error_response().into_body().try_into_bytes().unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[test]
    fn the_body_is_code_and_message() {
        let error = ApiError::bad_request("InvalidAction", "Action must be login.");
        assert_eq!(error.status_code(), StatusCode::BAD_REQUEST);
        assert_eq!(
            body(&error),
            serde_json::json!({ "error": "InvalidAction", "message": "Action must be login." })
        );
        let response = error.error_response();
        assert_eq!(
            response.headers().get(header::CACHE_CONTROL).unwrap(),
            "no-store"
        );
        assert!(response.headers().get(header::RETRY_AFTER).is_none());
    }

    #[test]
    fn throttling_says_when_to_come_back() {
        let error = ApiError::too_many_requests("Throttling", "Slow down.", 300);
        let response = error.error_response();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers().get(header::RETRY_AFTER).unwrap(), "300");
    }

    #[test]
    fn store_errors_keep_their_stable_codes() {
        let not_found = ApiError::from(StoreError::NotFound {
            entity: "role",
            key: "Admin".into(),
        });
        assert_eq!(
            (not_found.status_code(), not_found.code),
            (StatusCode::NOT_FOUND, "NoSuchEntity")
        );
        let conflict = ApiError::from(StoreError::Conflict("in use".into()));
        assert_eq!(
            (conflict.status_code(), conflict.code),
            (StatusCode::CONFLICT, "DeleteConflict")
        );
        let invalid = ApiError::from(StoreError::Invalid(ValidationError::new(
            "role_name",
            "too long",
        )));
        assert_eq!(invalid.status_code(), StatusCode::BAD_REQUEST);
        assert_eq!(
            body(&invalid),
            serde_json::json!({ "error": "ValidationError", "message": "too long", "field": "role_name" })
        );
    }

    #[test]
    fn internal_failures_say_nothing_of_their_cause() {
        let error = ApiError::from(StoreError::Backend(sqlx::Error::ColumnNotFound("x".into())));
        assert_eq!(error.status_code(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(error.code, "ServiceFailure");
        assert_eq!(error.message, INTERNAL_MESSAGE);
    }

    #[test]
    fn an_unreachable_database_is_a_503_to_retry() {
        let error = ApiError::from(StoreError::Unreachable {
            target: "db:5432".into(),
            cause: "Connection refused".into(),
        });
        assert_eq!(error.status_code(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(error.code, "ServiceUnavailable");
        assert!(!error.message.contains("db:5432"), "{}", error.message);
        let response = error.error_response();
        assert_eq!(response.headers().get(header::RETRY_AFTER).unwrap(), "1");
    }
}
