//! SAML 2.0: the one hardened front door that both the portal's service provider and
//! the STS's AssumeRoleWithSAML use. [`verify_response`] is pure (its time comes in
//! [`Expectations::now`]); replay protection is [`claim_assertion_once`], on the cache.
//!
//! Order of checks in [`verify_response`]: size cap (100,000 base64 characters),
//! base64, DTD / entity refusal (before any parser), strict parse, structure (one
//! Response, exactly one assertion anywhere, signatures only where they belong and
//! referencing their parent's ID, allowed algorithms), the signature by xmlsec
//! against the IdP's certificates, then the SAML conditions on the signed element.

pub mod metadata;
pub mod sp;
pub mod verify;
pub mod xml_guard;

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::cache::{Cache, hashed_key};

pub use metadata::{IdpMetadata, parse_idp_metadata};
pub use verify::{Expectations, InResponseTo, VerifiedAssertion, verify_response};
pub use xml_guard::MAX_BASE64_CHARS;

/// Why a SAML response (or IdP metadata) was refused. [`SamlError::code`] is the stable
/// short code for audit events; the message says what was wrong without quoting the
/// assertion.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SamlError {
    #[error("the SAML response is not signed (neither the response nor the assertion)")]
    Unsigned,
    #[error("the SAML response is signed by a key that is not among the IdP's certificates")]
    UntrustedSignature,
    #[error(
        "the SAML signature does not verify with the IdP's certificates (altered content or another key)"
    )]
    InvalidSignature,
    #[error("the SAML signature uses an algorithm that is not allowed: {0}")]
    WeakAlgorithm(String),
    #[error("the SAML response has an unexpected structure (signature wrapping): {0}")]
    Wrapping(String),
    #[error("the SAML response has more than one assertion")]
    MultipleAssertions,
    #[error("the SAML response has no assertion")]
    NoAssertion,
    #[error("the SAML issuer is not the identity provider's entity ID")]
    WrongIssuer,
    #[error("the SAML assertion is not meant for this audience")]
    WrongAudience,
    #[error("the SAML subject confirmation's recipient is not this endpoint")]
    WrongRecipient,
    #[error("the SAML response's destination is not this endpoint")]
    WrongDestination,
    #[error("the SAML assertion has expired")]
    Expired,
    #[error("the SAML assertion is not yet valid")]
    NotYetValid,
    #[error("the SAML response answers a request this service did not send (InResponseTo)")]
    UnknownInResponseTo,
    #[error("the SAML assertion has no usable bearer subject confirmation")]
    NoBearer,
    #[error("the SAML assertion was already used")]
    Replayed,
    #[error("the identity provider reported a failure ({0})")]
    IdpStatus(String),
    #[error("DTDs and entity declarations are not accepted in SAML messages")]
    DtdForbidden,
    #[error("the SAML response is larger than 100,000 base64 characters")]
    TooLarge,
    #[error("the SAML response is not valid base64")]
    MalformedBase64,
    #[error("the SAML message is not acceptable XML: {0}")]
    MalformedXml(String),
    #[error("a comment inside a SAML value (NameID, Issuer, Audience or attribute value)")]
    CommentInjection,
    #[error("the encrypted SAML assertion could not be decrypted: {0}")]
    DecryptionFailed(String),
    #[error("the SAML metadata is not usable: {0}")]
    BadMetadata(String),
    #[error("the replay cache is unavailable: {0}")]
    Unavailable(String),
}

impl SamlError {
    /// Stable short code, for audit events and tests.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Unsigned => "unsigned",
            Self::UntrustedSignature => "untrusted_signature",
            Self::InvalidSignature => "invalid_signature",
            Self::WeakAlgorithm(_) => "weak_algorithm",
            Self::Wrapping(_) => "wrapping",
            Self::MultipleAssertions => "multiple_assertions",
            Self::NoAssertion => "no_assertion",
            Self::WrongIssuer => "wrong_issuer",
            Self::WrongAudience => "wrong_audience",
            Self::WrongRecipient => "wrong_recipient",
            Self::WrongDestination => "wrong_destination",
            Self::Expired => "expired",
            Self::NotYetValid => "not_yet_valid",
            Self::UnknownInResponseTo => "unknown_in_response_to",
            Self::NoBearer => "no_bearer",
            Self::Replayed => "replayed",
            Self::IdpStatus(_) => "idp_status",
            Self::DtdForbidden => "dtd_forbidden",
            Self::TooLarge => "too_large",
            Self::MalformedBase64 => "malformed_base64",
            Self::MalformedXml(_) => "malformed_xml",
            Self::CommentInjection => "comment_injection",
            Self::DecryptionFailed(_) => "decryption_failed",
            Self::BadMetadata(_) => "bad_metadata",
            Self::Unavailable(_) => "unavailable",
        }
    }
}

/// Cache key prefix of the assertion replay guard.
const REPLAY_PREFIX: &str = "saml:assertion";

/// Records that the assertion `assertion_id` from `issuer` has been used, until
/// `until` (pass [`VerifiedAssertion::not_on_or_after`]: after it the assertion is
/// refused as expired anyway). The first call wins; any later one, from this process
/// or another replica sharing the cache, gets [`SamlError::Replayed`]. `now` comes
/// from the injected clock. The key is a digest of issuer and ID, so one IdP cannot
/// burn another's IDs.
pub async fn claim_assertion_once(
    cache: &dyn Cache,
    issuer: &str,
    assertion_id: &str,
    until: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<(), SamlError> {
    let ttl = (until - now)
        .to_std()
        .unwrap_or(Duration::ZERO)
        .max(Duration::from_secs(1));
    let key = hashed_key(REPLAY_PREFIX, &format!("{issuer}\n{assertion_id}"));
    let first = cache
        .put_if_absent(&key, b"1", ttl)
        .await
        .map_err(|e| SamlError::Unavailable(e.to_string()))?;
    if first {
        Ok(())
    } else {
        Err(SamlError::Replayed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::MemoryCache;
    use crate::clock::Clock;

    #[tokio::test]
    async fn an_assertion_id_is_accepted_once_per_issuer_until_it_expires() {
        let (clock, hand) = Clock::adjustable();
        let cache = MemoryCache::new(clock.clone());
        let until = clock.now() + chrono::TimeDelta::seconds(300);
        claim_assertion_once(&cache, "idp-a", "_1", until, clock.now())
            .await
            .unwrap();
        assert_eq!(
            claim_assertion_once(&cache, "idp-a", "_1", until, clock.now()).await,
            Err(SamlError::Replayed)
        );
        claim_assertion_once(&cache, "idp-b", "_1", until, clock.now())
            .await
            .unwrap();
        hand.advance(std::time::Duration::from_secs(301));
        claim_assertion_once(&cache, "idp-a", "_1", until, clock.now())
            .await
            .unwrap();
    }
}
