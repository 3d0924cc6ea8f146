//! AWS Signature Version 4 (`AWS4-HMAC-SHA256`) verification of incoming
//! requests, header and presigned-query forms. Pure: no I/O, no clock (`now`
//! is a parameter), no panics.
//!
//! How the STS layer uses it:
//! 1. [`parse`] the request: learns the access key id, session token, scope and
//!    time, or fails with `MissingAuthenticationToken` / `IncompleteSignature`.
//! 2. Optionally [`validate`] (clock window, `host` signed, scope): the checks
//!    that need no secret. AWS runs them before looking the key up, so calling
//!    it here gives AWS's error precedence (an expired request with an unknown
//!    key gets "Signature expired", not `InvalidClientTokenId`).
//! 3. Look the secret up (unknown key -> [`SigV4Error::InvalidClientTokenId`],
//!    expired session -> [`SigV4Error::ExpiredToken`]).
//! 4. [`verify`] (or [`verify_with_signing_key`] with a cached
//!    [`signing_key`]): repeats `validate`, rebuilds the canonical request and
//!    compares the HMAC in constant time.
//!
//! Canonicalisation (what AWS does; checked against the AWS/botocore and
//! aws-c-auth test suites in `tests/it/sigv4.rs`):
//! - URI: with [`VerifyOptions::normalize_path`], `.`/`..` segments and empty
//!   segments are removed; then the path *as received* is percent-encoded once
//!   more (non-S3 services "double-encode": `%3A` -> `%253A`, a raw space ->
//!   `%20`). [`VerifyOptions::s3`] turns both off (decode, then encode once).
//! - Query: names and values decoded then encoded with the unreserved set,
//!   sorted by name then value, `name=` for empty values, `X-Amz-Signature`
//!   left out for presigned requests.
//! - Headers: the signed ones only, lower-case names, values trimmed with inner
//!   whitespace runs folded to one space, repeated headers joined with `,` in
//!   request order.
//! - Payload: [`SignedRequest::payload_sha256`], as supplied by the caller.
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::unreachable,
    clippy::todo
)]

mod canonical;
mod error;
mod parsing;
mod sign;

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use subtle::ConstantTimeEq;

pub use canonical::{
    canonical_request, compute_signature, hash_payload, signing_key, string_to_sign, uri_encode,
};
pub use error::{ExpiryKind, SIGNATURE_MISMATCH_MESSAGE, SigV4Error};
pub use parsing::{CredentialScope, SignatureInfo, SignatureLocation, parse};
pub use sign::{SigningParams, presign_query, sign_request};

/// The only algorithm accepted.
pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";
/// The last element of a credential scope.
pub const TERMINATOR: &str = "aws4_request";
/// The payload hash a client sends when it did not hash the body (S3, presigned URLs).
pub const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";
/// The longest presigned-URL lifetime AWS accepts (7 days).
pub const MAX_PRESIGN_EXPIRES_SECS: i64 = 604_800;
/// `chrono` format of `X-Amz-Date`.
pub const AMZ_DATE_FORMAT: &str = "%Y%m%dT%H%M%SZ";

/// A borrowed view of a request as the service received it.
#[derive(Debug, Clone)]
pub struct SignedRequest<'a> {
    /// The HTTP method, as sent (`GET`, `POST`, ...).
    pub method: &'a str,
    /// The path of the request target exactly as sent on the wire (still
    /// percent-encoded), without the query, e.g. `/` or `/a%20b/c`.
    pub path: &'a str,
    /// The raw query string as sent, without the `?` (empty if none).
    pub query: &'a str,
    /// All headers in the order received; names are matched
    /// case-insensitively and may repeat.
    pub headers: &'a [(&'a str, &'a str)],
    /// Lower-case hex SHA-256 of the body as received (see [`hash_payload`]),
    /// or [`UNSIGNED_PAYLOAD`] where the service allows it (S3). For STS always
    /// hash the body you received; never trust a client-sent hash.
    pub payload_sha256: Cow<'a, str>,
}

impl<'a> SignedRequest<'a> {
    /// The values of every header named `name` (case-insensitive), in order.
    pub fn header_values<'s>(&'s self, name: &'s str) -> impl Iterator<Item = &'a str> + 's {
        self.headers
            .iter()
            .filter(move |(n, _)| n.trim().eq_ignore_ascii_case(name))
            .map(|(_, v)| *v)
    }

    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&'a str> {
        self.header_values(name).next()
    }
}

/// Verification settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyOptions {
    /// How far the request time may be from `now` (AWS uses 15 minutes; the
    /// default here is 5). For presigned URLs, how early they may be used.
    pub max_clock_skew: chrono::Duration,
    /// Remove `.`/`..`/empty path segments before encoding (every service but S3).
    pub normalize_path: bool,
    /// Encode the received (already encoded) path again (every service but S3).
    pub double_encode_path: bool,
    /// If set, the credential scope's region must equal it.
    pub region: Option<String>,
    /// If set, the credential scope's service must equal it (e.g. `sts`).
    pub service: Option<String>,
    /// Presigned URLs only: also accept a signature computed without the
    /// `X-Amz-Security-Token` query parameter (clients that append the token
    /// after signing, e.g. AWS IoT websockets). Safe when the secret is bound to
    /// the token, as Rolegate's session tokens are. Default off.
    pub allow_unsigned_query_session_token: bool,
}

impl Default for VerifyOptions {
    fn default() -> Self {
        Self {
            max_clock_skew: chrono::Duration::minutes(5),
            normalize_path: true,
            double_encode_path: true,
            region: None,
            service: None,
            allow_unsigned_query_session_token: false,
        }
    }
}

impl VerifyOptions {
    /// S3's rules: no path normalisation, path encoded once.
    pub fn s3() -> Self {
        Self {
            normalize_path: false,
            double_encode_path: false,
            ..Self::default()
        }
    }
}

fn format_skew(skew: chrono::Duration) -> String {
    let secs = skew.num_seconds();
    if secs % 60 == 0 {
        format!("{} min", secs / 60)
    } else {
        format!("{secs} sec")
    }
}

fn amz(t: DateTime<Utc>) -> String {
    t.format(AMZ_DATE_FORMAT).to_string()
}

/// The checks that need no secret, in AWS's order: the time window, `host`
/// among the signed headers, then the credential scope (terminator, region and
/// service when configured, and the scope date against the request date).
pub fn validate(
    info: &SignatureInfo,
    now: DateTime<Utc>,
    opts: &VerifyOptions,
) -> Result<(), SigV4Error> {
    check_time(info, now, opts)?;

    if !info
        .signed_headers
        .iter()
        .any(|h| h == "host" || h == ":authority")
    {
        return Err(SigV4Error::mismatch(
            "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.",
        ));
    }

    let scope = &info.scope;
    let mut problems = Vec::new();
    if let Some(region) = &opts.region
        && scope.region != *region
    {
        problems.push(format!(
            "Credential should be scoped to a valid region, not '{}'.",
            scope.region
        ));
    }
    if let Some(service) = &opts.service
        && scope.service != *service
    {
        problems.push(format!(
            "Credential should be scoped to correct service: '{service}'."
        ));
    }
    if scope.terminator != TERMINATOR {
        problems.push(format!(
            "Credential should be scoped with a valid terminator: '{TERMINATOR}', not '{}'.",
            scope.terminator
        ));
    }
    let request_date = info.request_time.format("%Y%m%d").to_string();
    if scope.date != request_date {
        problems.push(format!(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '{}' != '{request_date}', from '{}'.",
            scope.date,
            info.amz_date()
        ));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(SigV4Error::mismatch(problems.join(" ")))
    }
}

/// How long a presigned request to any service but S3 is good for after its
/// X-Amz-Date, as STS does (X-Amz-Expires is not honoured there).
pub const PRESIGNED_STS_LIFETIME: chrono::Duration = chrono::Duration::minutes(15);

/// AWS's answer to a signature older than `window`: SignatureDoesNotMatch
/// "Signature expired: T is now earlier than NOW-WINDOW (NOW - WINDOW.)".
fn signature_expired(t: DateTime<Utc>, now: DateTime<Utc>, window: chrono::Duration) -> SigV4Error {
    SigV4Error::RequestExpired {
        kind: ExpiryKind::SignatureExpired,
        message: format!(
            "Signature expired: {} is now earlier than {} ({} - {}.)",
            amz(t),
            amz(now.checked_sub_signed(window).unwrap_or(now)),
            amz(now),
            format_skew(window)
        ),
    }
}

fn check_time(
    info: &SignatureInfo,
    now: DateTime<Utc>,
    opts: &VerifyOptions,
) -> Result<(), SigV4Error> {
    let skew = opts.max_clock_skew;
    let t = info.request_time;
    let earliest = now
        .checked_sub_signed(skew)
        .unwrap_or(DateTime::<Utc>::MIN_UTC);
    let latest = now
        .checked_add_signed(skew)
        .unwrap_or(DateTime::<Utc>::MAX_UTC);

    if t > latest {
        return Err(SigV4Error::RequestExpired {
            kind: ExpiryKind::SignatureNotYetCurrent,
            message: format!(
                "Signature not yet current: {} is still later than {} ({} + {}.)",
                amz(t),
                amz(latest),
                amz(now),
                format_skew(skew)
            ),
        });
    }
    match (info.location, info.expires) {
        (SignatureLocation::Query, Some(expires)) => {
            // S3 honours X-Amz-Expires up to a week and answers a used-up URL with
            // AccessDenied "Request has expired" (recorded against AWS, see error.rs).
            // STS does not honour X-Amz-Expires: a presigned STS URL is good for 15
            // minutes from its X-Amz-Date whatever it says (aws/aws-sdk-go#2167;
            // kubernetes-sigs/aws-iam-authenticator#258, where the maintainer says
            // "STS does not support X-Amz-Expires"). aws-iam-authenticator relies on it:
            // its tokens say 60 s and are used for 14 minutes. A stale one gets the
            // answer of a stale header signature, SignatureDoesNotMatch "Signature
            // expired: … is now earlier than … (… - 15 min.)". Every service but S3
            // follows STS here.
            let s3 = opts.service.as_deref().unwrap_or(&info.scope.service) == "s3";
            let lifetime = if s3 { expires } else { PRESIGNED_STS_LIFETIME };
            let end = t.checked_add_signed(lifetime).unwrap_or(t);
            if now > end {
                return Err(if s3 {
                    SigV4Error::RequestExpired {
                        kind: ExpiryKind::PresignedUrlExpired,
                        message: "Request has expired".to_owned(),
                    }
                } else {
                    signature_expired(t, now, lifetime)
                });
            }
        }
        _ => {
            if t < earliest {
                return Err(signature_expired(t, now, skew));
            }
        }
    }
    Ok(())
}

/// Verifies the signature of `req` (as parsed into `info`) with the caller's
/// secret key. See [`verify_with_signing_key`].
pub fn verify(
    req: &SignedRequest<'_>,
    info: &SignatureInfo,
    secret_access_key: &str,
    now: DateTime<Utc>,
    opts: &VerifyOptions,
) -> Result<(), SigV4Error> {
    validate(info, now, opts)?;
    let key = signing_key(
        secret_access_key,
        &info.scope.date,
        &info.scope.region,
        &info.scope.service,
    );
    check_signature(req, info, &key, opts)
}

/// Like [`verify`], with a signing key the caller derived (and may have
/// cached) with [`signing_key`]`(secret, &info.scope.date, &info.scope.region,
/// &info.scope.service)`.
pub fn verify_with_signing_key(
    req: &SignedRequest<'_>,
    info: &SignatureInfo,
    signing_key: &[u8; 32],
    now: DateTime<Utc>,
    opts: &VerifyOptions,
) -> Result<(), SigV4Error> {
    validate(info, now, opts)?;
    check_signature(req, info, signing_key, opts)
}

fn check_signature(
    req: &SignedRequest<'_>,
    info: &SignatureInfo,
    key: &[u8; 32],
    opts: &VerifyOptions,
) -> Result<(), SigV4Error> {
    if let Some(name) = info
        .signed_headers
        .iter()
        .find(|name| req.header(name).is_none())
    {
        return Err(SigV4Error::incomplete(format!(
            "'{name}' is named as a SignedHeader, but it does not exist in the HTTP request."
        )));
    }

    let creq =
        canonical::build_canonical_request(req, &info.signed_headers, info.location, opts, false);
    let sts = string_to_sign(info, &creq);
    if signatures_equal(&compute_signature(key, &sts), &info.signature) {
        return Ok(());
    }

    if info.location == SignatureLocation::Query
        && opts.allow_unsigned_query_session_token
        && parsing::query_param(req.query, "X-Amz-Security-Token").is_some()
    {
        let creq_without_token = canonical::build_canonical_request(
            req,
            &info.signed_headers,
            info.location,
            opts,
            true,
        );
        let sts_without_token = string_to_sign(info, &creq_without_token);
        if signatures_equal(&compute_signature(key, &sts_without_token), &info.signature) {
            return Ok(());
        }
    }

    Err(SigV4Error::SignatureDoesNotMatch {
        message: SIGNATURE_MISMATCH_MESSAGE.to_owned(),
        canonical_request: Some(creq),
        string_to_sign: Some(sts),
    })
}

fn signatures_equal(expected: &str, provided: &str) -> bool {
    expected.as_bytes().ct_eq(provided.as_bytes()).into()
}
