//! The admin API's one error answer: an HTTP status and
//! `{"error": {"code": "<STABLE_CODE>", "message": "...", "pointer": "/grant/0/role"}}`
//! (`pointer`, a JSON pointer into the request body, only when one input is at
//! fault; `location`, where in a policy document the fault is: a pointer into the
//! document and its line and column), never cached. Handlers return `Result<_, AdminError>` and use `?`.

use std::fmt;

use actix_web::error::{JsonPayloadError, QueryPayloadError};
use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, ResponseError};
use serde::Serialize;

use crate::policy::Location;
use crate::service::admin_access::AdminAccessError;
use crate::store::StoreError;

/// What the client reads of an internal failure; the cause goes to the log.
const INTERNAL_MESSAGE: &str = "The request could not be completed. Try again later.";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminError {
    status: StatusCode,
    code: &'static str,
    message: String,
    pointer: Option<String>,
    /// Where in a policy document the fault is (boxed: errors stay small).
    location: Option<Box<Location>>,
    /// Every input at fault, when there are several (the first is the `error`).
    all: Vec<(&'static str, String, Option<String>)>,
}

#[derive(Serialize)]
struct Body<'a> {
    error: Inner<'a>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    errors: Vec<Inner<'a>>,
}

#[derive(Serialize)]
struct Inner<'a> {
    code: &'a str,
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pointer: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    location: Option<&'a Location>,
}

impl AdminError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            pointer: None,
            location: None,
            all: Vec::new(),
        }
    }

    /// The error with where in a policy document its fault is.
    pub fn with_location(mut self, location: Location) -> Self {
        self.location = Some(Box::new(location));
        self
    }

    /// 422 for several faults at once (every rule error of a ruleset): the first is
    /// the `error`, all of them are listed under `errors`.
    pub fn invalid_all(mut faults: Vec<(&'static str, String, Option<String>)>) -> Self {
        if faults.is_empty() {
            faults.push(("VALIDATION_ERROR", "The input is not valid.".into(), None));
        }
        let (code, message, pointer) = faults[0].clone();
        Self {
            all: if faults.len() > 1 { faults } else { Vec::new() },
            ..Self::invalid(code, message, pointer)
        }
    }

    /// 422: the request is well-formed but breaks a rule; `pointer` names the
    /// input at fault (`/grant/0/role`).
    pub fn invalid(
        code: &'static str,
        message: impl Into<String>,
        pointer: Option<String>,
    ) -> Self {
        Self {
            pointer,
            ..Self::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
        }
    }

    /// 412 `PRECONDITION_FAILED`: `If-Match` names another version.
    pub fn precondition_failed(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::PRECONDITION_FAILED,
            "PRECONDITION_FAILED",
            message,
        )
    }

    /// 428 `PRECONDITION_REQUIRED`: the change needs `If-Match`.
    pub fn precondition_required() -> Self {
        Self::new(
            StatusCode::PRECONDITION_REQUIRED,
            "PRECONDITION_REQUIRED",
            "This change needs an If-Match header with the ETag of the version you read.",
        )
    }

    /// 409.
    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, message)
    }

    /// 404.
    pub fn not_found(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, code, message)
    }

    /// 401 `UNAUTHENTICATED`: no credentials, or a bad, expired or revoked token.
    pub fn unauthenticated() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "UNAUTHENTICATED",
            "Sign in to the portal as an admin, or send an admin API token (Authorization: Bearer rgat_...) that is valid, not expired and not revoked.",
        )
    }

    /// 403 with `code` (`NOT_AN_ADMIN`, `INSUFFICIENT_SCOPE`, `CSRF_TOKEN_INVALID`, ...).
    pub fn forbidden(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, code, message)
    }

    /// 500 `INTERNAL`: `cause` is logged, the client reads only an opaque message.
    pub fn internal(cause: impl fmt::Display) -> Self {
        tracing::error!(%cause, "admin API: internal failure");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "INTERNAL",
            INTERNAL_MESSAGE,
        )
    }

    /// 503 `UNAVAILABLE`: a dependency (the cache) does not answer; logged.
    pub fn unavailable(cause: impl fmt::Display) -> Self {
        tracing::error!(%cause, "admin API: dependency unavailable");
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "UNAVAILABLE",
            "A dependency of Rolegate does not answer right now. Try again shortly.",
        )
    }

    pub fn status(&self) -> StatusCode {
        self.status
    }

    pub fn code(&self) -> &'static str {
        self.code
    }

    pub fn message(&self) -> &str {
        &self.message
    }

    pub fn pointer(&self) -> Option<&str> {
        self.pointer.as_deref()
    }

    /// A body that could not be read as the endpoint's JSON (the admin scope's
    /// `JsonConfig` error handler): 400 `MALFORMED_JSON` for what is not JSON,
    /// 422 `MALFORMED_JSON` for JSON of the wrong shape.
    pub fn from_json(error: &JsonPayloadError) -> Self {
        match error {
            JsonPayloadError::ContentType => Self::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "UNSUPPORTED_MEDIA_TYPE",
                "Send the body as Content-Type: application/json.",
            ),
            JsonPayloadError::OverflowKnownLength { .. } | JsonPayloadError::Overflow { .. } => {
                Self::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "PAYLOAD_TOO_LARGE",
                    "The request body is too large.",
                )
            }
            JsonPayloadError::Deserialize(parse) if parse.is_data() => Self::invalid(
                "MALFORMED_JSON",
                format!("The body does not have the expected shape: {parse}"),
                None,
            ),
            JsonPayloadError::Deserialize(parse) => Self::new(
                StatusCode::BAD_REQUEST,
                "MALFORMED_JSON",
                format!("The body is not valid JSON: {parse}"),
            ),
            other => Self::new(
                StatusCode::BAD_REQUEST,
                "MALFORMED_JSON",
                format!("The body could not be read: {other}"),
            ),
        }
    }

    /// A query string that does not fit the endpoint: 422 `VALIDATION_ERROR`.
    pub fn from_query(error: &QueryPayloadError) -> Self {
        Self::invalid(
            "VALIDATION_ERROR",
            format!("The query string is not valid: {error}"),
            None,
        )
    }
}

/// The `JsonConfig` error handler of the admin scope.
pub(crate) fn json_error(error: JsonPayloadError, _: &HttpRequest) -> actix_web::Error {
    AdminError::from_json(&error).into()
}

/// The `QueryConfig` error handler of the admin scope.
pub(crate) fn query_error(error: QueryPayloadError, _: &HttpRequest) -> actix_web::Error {
    AdminError::from_query(&error).into()
}

impl fmt::Display for AdminError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl ResponseError for AdminError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status);
        response.insert_header((header::CACHE_CONTROL, "no-store"));
        if self.status == StatusCode::UNAUTHORIZED {
            response.insert_header((header::WWW_AUTHENTICATE, "Bearer realm=\"rolegate-admin\""));
        }
        response.json(Body {
            error: Inner {
                code: self.code,
                message: &self.message,
                pointer: self.pointer.as_deref(),
                location: self.location.as_deref(),
            },
            errors: self
                .all
                .iter()
                .map(|(code, message, pointer)| Inner {
                    code,
                    message,
                    pointer: pointer.as_deref(),
                    location: None,
                })
                .collect(),
        })
    }
}

/// NotFound → 404 `NOT_FOUND`, AlreadyExists → 409 `DUPLICATE_NAME`, Conflict → 409
/// `CONFLICT`, Stale → 412 `PRECONDITION_FAILED`, Invalid → 422 `VALIDATION_ERROR`, MalformedPolicy → 422
/// `MALFORMED_POLICY_DOCUMENT` (the message says where), an unreachable database → 503
/// `UNAVAILABLE`, any other database failure → 500.
impl From<StoreError> for AdminError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::NotFound { .. } => Self::not_found("NOT_FOUND", error.to_string()),
            StoreError::AlreadyExists { .. } => Self::conflict("DUPLICATE_NAME", error.to_string()),
            StoreError::Conflict(message) => Self::conflict("CONFLICT", message),
            StoreError::LimitExceeded(message) => Self::conflict("LIMIT_EXCEEDED", message),
            StoreError::Stale(message) => Self::precondition_failed(message),
            StoreError::Invalid(invalid) => Self::invalid(
                "VALIDATION_ERROR",
                invalid.message,
                Some(format!("/{}", invalid.field)),
            ),
            StoreError::MalformedPolicy { .. } => {
                Self::invalid("MALFORMED_POLICY_DOCUMENT", error.to_string(), None)
            }
            _ if error.is_unavailable() => Self::unavailable(error),
            StoreError::Backend(_) | StoreError::Migration(_) | StoreError::Unreachable { .. } => {
                Self::internal(error)
            }
        }
    }
}

impl From<AdminAccessError> for AdminError {
    fn from(error: AdminAccessError) -> Self {
        match error {
            AdminAccessError::Invalid { field, message } => {
                Self::invalid("VALIDATION_ERROR", message, Some(format!("/{field}")))
            }
            AdminAccessError::Rejected { .. } => Self::unauthenticated(),
            AdminAccessError::Store(error) => error.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use actix_web::body::MessageBody;

    use super::*;
    use crate::iam::ValidationError;

    fn body(error: &AdminError) -> serde_json::Value {
        let bytes = error.error_response().into_body().try_into_bytes().unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[test]
    fn admin_error_body_is_nested_with_optional_pointer() {
        let error = AdminError::invalid("BAD_ROLE", "no such role", Some("/grant/0/role".into()));
        assert_eq!(error.status_code(), StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(
            body(&error),
            serde_json::json!({"error": {"code": "BAD_ROLE", "message": "no such role", "pointer": "/grant/0/role"}})
        );
        let response = AdminError::unauthenticated().error_response();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            response.headers().get(header::CACHE_CONTROL).unwrap(),
            "no-store"
        );
        assert!(response.headers().contains_key(header::WWW_AUTHENTICATE));
        assert_eq!(
            body(&AdminError::precondition_required())["error"]["code"],
            "PRECONDITION_REQUIRED"
        );
        assert_eq!(
            AdminError::precondition_failed("x").status_code(),
            StatusCode::PRECONDITION_FAILED
        );
    }

    #[test]
    fn admin_error_from_store_errors() {
        let cases = [
            (
                StoreError::NotFound {
                    entity: "role",
                    key: "x".into(),
                },
                404,
                "NOT_FOUND",
            ),
            (
                StoreError::AlreadyExists {
                    entity: "role",
                    key: "x".into(),
                },
                409,
                "DUPLICATE_NAME",
            ),
            (StoreError::Conflict("in use".into()), 409, "CONFLICT"),
            (
                StoreError::Invalid(ValidationError::new("name", "too long")),
                422,
                "VALIDATION_ERROR",
            ),
            (
                StoreError::Backend(sqlx::Error::ColumnNotFound("x".into())),
                500,
                "INTERNAL",
            ),
            (
                StoreError::Unreachable {
                    target: "db:5432".into(),
                    cause: "Connection refused".into(),
                },
                503,
                "UNAVAILABLE",
            ),
            (
                StoreError::Backend(sqlx::Error::PoolTimedOut),
                503,
                "UNAVAILABLE",
            ),
        ];
        for (error, status, code) in cases {
            let admin = AdminError::from(error);
            assert_eq!((admin.status_code().as_u16(), admin.code), (status, code));
        }
        let internal =
            AdminError::from(StoreError::Backend(sqlx::Error::ColumnNotFound("x".into())));
        assert_eq!(internal.message, INTERNAL_MESSAGE);
    }
}
