//! Errors produced while parsing and validating a policy document.

use std::borrow::Cow;
use std::fmt;

/// IAM error code for documents that are not valid policies.
pub const MALFORMED_POLICY_DOCUMENT: &str = "MalformedPolicyDocument";
/// IAM error code for documents that exceed a size quota.
pub const LIMIT_EXCEEDED: &str = "LimitExceeded";

/// Message used by IAM for any structural problem in the JSON.
pub(crate) const SYNTAX_ERRORS: &str = "Syntax errors in policy.";
pub(crate) const LEGACY_PARSING: &str = "The policy failed legacy parsing";
pub(crate) const NEEDS_2012_VERSION: &str =
    "Policy document must be version 2012-10-17 or greater.";
pub(crate) const MUST_CONTAIN_ACTIONS: &str = "Policy statement must contain actions.";
pub(crate) const MUST_CONTAIN_RESOURCES: &str = "Policy statement must contain resources.";
pub(crate) const SID_NOT_UNIQUE: &str = "Statement IDs (SID) in a single policy must be unique.";
pub(crate) const NEEDS_VENDOR: &str =
    "Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc.";
pub(crate) const ONE_COLON: &str = "Actions/Condition can contain only one colon.";
pub(crate) const NO_PRINCIPAL_ALLOWED: &str = "Policy document should not specify a principal.";
pub(crate) const PRINCIPAL_REQUIRED: &str = "Missing required field Principal";
pub(crate) const RESOURCE_PROHIBITED: &str = "Has prohibited field Resource";

/// A policy document was rejected.
///
/// `Display` prints the IAM-style message exactly as IAM returns it (for example
/// `Syntax errors in policy.`); the alternate form (`{:#}`) appends a more
/// specific [`detail`](PolicyError::detail) when one is known, such as the
/// name of an unknown condition operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyError {
    code: &'static str,
    message: Cow<'static, str>,
    detail: Option<String>,
    /// Boxed: errors travel inside larger error enums.
    location: Box<Location>,
}

/// Where in the document a problem is: a JSON pointer to the element at fault
/// (`/Statement/1/Action/0`; `""` is the whole document) when the document is JSON,
/// and the line and column (1-based, columns in characters) of that element, or of
/// the JSON syntax error.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Location {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pointer: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<usize>,
}

impl PolicyError {
    pub(crate) fn malformed(message: impl Into<Cow<'static, str>>) -> Self {
        PolicyError {
            code: MALFORMED_POLICY_DOCUMENT,
            message: message.into(),
            detail: None,
            location: Box::default(),
        }
    }

    pub(crate) fn syntax(detail: impl Into<String>) -> Self {
        PolicyError::malformed(SYNTAX_ERRORS).with_detail(detail)
    }

    pub(crate) fn legacy(detail: impl Into<String>) -> Self {
        PolicyError::malformed(LEGACY_PARSING).with_detail(detail)
    }

    pub(crate) fn limit_exceeded(limit: usize) -> Self {
        PolicyError {
            code: LIMIT_EXCEEDED,
            message: Cow::Owned(format!("Cannot exceed quota for PolicySize: {limit}")),
            detail: None,
            location: Box::default(),
        }
    }

    pub(crate) fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    /// Points the error at the element `pointer` names, unless it already points
    /// somewhere (the innermost element found first wins).
    pub(crate) fn at(mut self, pointer: impl Into<String>) -> Self {
        if self.location.pointer.is_none() {
            self.location.pointer = Some(pointer.into());
        }
        self
    }

    /// Places the error at a line and column of the text.
    pub(crate) fn at_position(mut self, line: usize, column: usize) -> Self {
        self.location.line = Some(line);
        self.location.column = Some(column);
        self
    }

    /// Where in the document the problem is, as far as known.
    pub fn location(&self) -> &Location {
        &self.location
    }

    /// The IAM error code: `MalformedPolicyDocument` or `LimitExceeded`.
    pub fn code(&self) -> &'static str {
        self.code
    }

    /// The IAM-style message (same as `Display`).
    pub fn message(&self) -> &str {
        &self.message
    }

    /// A more specific explanation than IAM gives, if any (e.g. which operator
    /// or value was not understood).
    pub fn detail(&self) -> Option<&str> {
        self.detail.as_deref()
    }
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        if f.alternate()
            && let Some(detail) = &self.detail
        {
            write!(f, " ({detail})")?;
        }
        Ok(())
    }
}

impl std::error::Error for PolicyError {}
