//! STS errors as AWS reports them: an error code, an HTTP status and a message.
//! The web layer renders them as AWS error XML.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StsError {
    pub code: &'static str,
    pub status: u16,
    pub message: String,
}

impl StsError {
    pub fn new(code: &'static str, status: u16, message: impl Into<String>) -> Self {
        Self {
            code,
            status,
            message: message.into(),
        }
    }

    pub fn access_denied(message: impl Into<String>) -> Self {
        Self::new("AccessDenied", 403, message)
    }

    /// AWS's wording for a principal that may not perform `action` on `resource`.
    pub fn not_authorized(principal_arn: &str, action: &str, resource: &str) -> Self {
        Self::access_denied(format!(
            "User: {principal_arn} is not authorized to perform: {action} on resource: {resource}"
        ))
    }

    pub fn invalid_client_token_id() -> Self {
        Self::new(
            "InvalidClientTokenId",
            403,
            "The security token included in the request is invalid.",
        )
    }

    /// STS answers expired session credentials with 403 (the modeled
    /// `ExpiredTokenException` of AssumeRoleWithWebIdentity is a different, 400 error).
    pub fn expired_token() -> Self {
        Self::new(
            "ExpiredToken",
            403,
            "The security token included in the request is expired",
        )
    }

    pub fn validation(message: impl Into<String>) -> Self {
        Self::new("ValidationError", 400, message)
    }

    /// AWS's "1 validation error detected" wording for a constraint on a parameter.
    pub fn constraint(parameter: &str, value: &str, constraint: &str) -> Self {
        Self::validation(format!(
            "1 validation error detected: Value '{value}' at '{parameter}' failed to satisfy constraint: {constraint}"
        ))
    }

    pub fn missing_parameter(name: &str) -> Self {
        Self::new(
            "MissingParameter",
            400,
            format!("The request must contain the parameter {name}"),
        )
    }

    pub fn malformed_policy(message: impl Into<String>) -> Self {
        Self::new("MalformedPolicyDocument", 400, message)
    }

    pub fn internal() -> Self {
        Self::new(
            "InternalFailure",
            500,
            "The request processing has failed because of an unknown error.",
        )
    }

    /// A dependency (the database) cannot be reached right now: the caller should
    /// retry (AWS SDKs retry a 503).
    pub fn service_unavailable() -> Self {
        Self::new(
            "ServiceUnavailable",
            503,
            "The service is unavailable. Please retry the request later.",
        )
    }

    /// Whether the fault is the caller's (`Sender`) or ours (`Receiver`).
    pub fn fault(&self) -> &'static str {
        if self.status >= 500 {
            "Receiver"
        } else {
            "Sender"
        }
    }
}

impl fmt::Display for StsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for StsError {}

impl From<super::sigv4::SigV4Error> for StsError {
    fn from(error: super::sigv4::SigV4Error) -> Self {
        Self::new(
            error.code(),
            error.http_status(),
            error.message().to_owned(),
        )
    }
}
