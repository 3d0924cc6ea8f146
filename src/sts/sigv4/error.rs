//! The one error type of SigV4 verification, with the code, HTTP status and
//! message AWS returns for each case.
//!
//! Sources for the wire values (AWS query protocol, as STS speaks it):
//! - `../shared/spec/aws-wire-protocols.md` §4 (common STS errors):
//!   `SignatureDoesNotMatch` 403, `IncompleteSignature` 400,
//!   `MissingAuthenticationToken` 403, `InvalidClientTokenId` 403.
//! - Real STS answers quoted in public bug reports (aws/aws-cli#6676,
//!   devsecops/bootcamp#101, a Terraform report with "status code: 403"): a
//!   request outside the clock-skew window gets **`SignatureDoesNotMatch`, 403**,
//!   with "Signature expired: … is now earlier than … (… - 15 min.)" or
//!   "Signature not yet current: … is still later than … (… + 15 min.)", not the
//!   `RequestExpired` code the generic AWS error list mentions.
//! - Real coral-service answers recorded by dynalite (DynamoDB emulator built
//!   against AWS): message texts for missing `Authorization` parts, key=value
//!   pairs without `=`, malformed dates, unsupported algorithms, credential
//!   shape and scope mismatches, and the "Canonical String … should have been"
//!   detail.
//! - `../shared/corpora/aws-recorded-snapshots/localstack-s3-presigned-auth-errors.snapshot.json`:
//!   an S3 presigned URL used after `X-Amz-Expires` gets `AccessDenied`, 403,
//!   "Request has expired" (recorded against real AWS). STS ignores
//!   `X-Amz-Expires` beyond its clock-skew window and answers a stale presigned
//!   URL like a stale header signature (aws/aws-sdk-go#2167,
//!   kubernetes-sigs/aws-iam-authenticator#258): `SignatureDoesNotMatch`,
//!   "Signature expired: …".
//! - `ExpiredToken` is 403 from STS (aws/aws-sdk-java-v2#1649 quotes
//!   "Status Code: 403" for it; IAM's query API answers 403 too).

use std::fmt;

/// The message AWS sends with `SignatureDoesNotMatch` when the HMAC differs.
pub const SIGNATURE_MISMATCH_MESSAGE: &str = "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.";

/// Which time check a request failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpiryKind {
    /// The request time is older than `now - max_clock_skew`
    /// ("Signature expired: …").
    SignatureExpired,
    /// The request time is later than `now + max_clock_skew`
    /// ("Signature not yet current: …").
    SignatureNotYetCurrent,
    /// An S3 presigned URL used after `X-Amz-Date + X-Amz-Expires`
    /// ("Request has expired"). Other services report a used-up presigned URL
    /// as [`ExpiryKind::SignatureExpired`], as STS does.
    PresignedUrlExpired,
}

/// Why a request's SigV4 authentication failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SigV4Error {
    /// No SigV4 signature at all: no `Authorization` header starting with
    /// `AWS4-` and no presigned query parameters.
    #[error("Request is missing Authentication Token")]
    MissingAuthenticationToken,

    /// The signature is present but malformed or incomplete (missing
    /// `Credential`/`SignedHeaders`/`Signature`, no date, unsupported algorithm,
    /// bad credential shape, bad `X-Amz-Expires`, a signed header absent from the
    /// request, ...).
    #[error("{message}")]
    IncompleteSignature { message: String },

    /// `X-Amz-Date` (or `Date`) could not be parsed. AWS reports it as
    /// `IncompleteSignature`.
    #[error("{message}")]
    MalformedDate { message: String },

    /// The signature is well formed but wrong: bad HMAC, scope date/region/
    /// service/terminator mismatch, or `host` not signed. When the HMAC was
    /// computed, the canonical request and string to sign the server expected are
    /// attached (see [`SigV4Error::detailed_message`]).
    #[error("{message}")]
    SignatureDoesNotMatch {
        message: String,
        canonical_request: Option<String>,
        string_to_sign: Option<String>,
    },

    /// The request is outside its validity window (clock skew for header
    /// signatures, `X-Amz-Expires` for presigned URLs). The wire code depends on
    /// `kind`, see [`SigV4Error::code`].
    #[error("{message}")]
    RequestExpired { kind: ExpiryKind, message: String },

    /// The access key id is unknown (decided by the caller, not this module).
    #[error("The security token included in the request is invalid.")]
    InvalidClientTokenId,

    /// The session token has expired (decided by the caller, not this module).
    #[error("The security token included in the request is expired")]
    ExpiredToken,
}

impl SigV4Error {
    pub(crate) fn incomplete(message: impl Into<String>) -> Self {
        Self::IncompleteSignature {
            message: message.into(),
        }
    }

    pub(crate) fn mismatch(message: impl Into<String>) -> Self {
        Self::SignatureDoesNotMatch {
            message: message.into(),
            canonical_request: None,
            string_to_sign: None,
        }
    }

    /// The exact AWS error code for the `<Code>` element.
    pub fn code(&self) -> &'static str {
        match self {
            Self::MissingAuthenticationToken => "MissingAuthenticationToken",
            Self::IncompleteSignature { .. } | Self::MalformedDate { .. } => "IncompleteSignature",
            Self::SignatureDoesNotMatch { .. } => "SignatureDoesNotMatch",
            Self::RequestExpired { kind, .. } => match kind {
                ExpiryKind::SignatureExpired | ExpiryKind::SignatureNotYetCurrent => {
                    "SignatureDoesNotMatch"
                }
                ExpiryKind::PresignedUrlExpired => "AccessDenied",
            },
            Self::InvalidClientTokenId => "InvalidClientTokenId",
            Self::ExpiredToken => "ExpiredToken",
        }
    }

    /// The HTTP status AWS answers with.
    pub fn http_status(&self) -> u16 {
        match self {
            Self::IncompleteSignature { .. } | Self::MalformedDate { .. } => 400,
            Self::MissingAuthenticationToken
            | Self::SignatureDoesNotMatch { .. }
            | Self::RequestExpired { .. }
            | Self::InvalidClientTokenId
            | Self::ExpiredToken => 403,
        }
    }

    /// The human message for the `<Message>` element (what STS sends).
    pub fn message(&self) -> &str {
        match self {
            Self::MissingAuthenticationToken => "Request is missing Authentication Token",
            Self::IncompleteSignature { message }
            | Self::MalformedDate { message }
            | Self::SignatureDoesNotMatch { message, .. }
            | Self::RequestExpired { message, .. } => message,
            Self::InvalidClientTokenId => "The security token included in the request is invalid.",
            Self::ExpiredToken => "The security token included in the request is expired",
        }
    }

    /// The message with the server's canonical request and string to sign
    /// appended, in the form some AWS services (API Gateway, Elasticsearch,
    /// DynamoDB) return for `SignatureDoesNotMatch`. STS itself sends only
    /// [`message`](Self::message); this is for logs and debugging endpoints.
    pub fn detailed_message(&self) -> String {
        match self {
            Self::SignatureDoesNotMatch {
                message,
                canonical_request: Some(creq),
                string_to_sign: Some(sts),
            } => format!(
                "{message}\n\nThe Canonical String for this request should have been\n'{creq}'\n\nThe String-to-Sign should have been\n'{sts}'\n"
            ),
            other => other.message().to_owned(),
        }
    }
}

impl fmt::Display for ExpiryKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::SignatureExpired => "signature expired",
            Self::SignatureNotYetCurrent => "signature not yet current",
            Self::PresignedUrlExpired => "presigned URL expired",
        })
    }
}
