//! An admin's test sign-in at an identity source: the identity and claims the
//! source sent, kept once in the cache between the sign-in's callback and the admin
//! page that shows them (and what the published rules would grant). Only the admin
//! who started the test can read the result, and only once.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::cache::{Cache, CacheError, hashed_key};
use crate::clock::Random;
use crate::idp::identity::Identity;

/// What test sign-ins (OIDC and SAML alike) are audited as.
pub const TEST_ACTION: &str = "admin:TestSignIn";

/// How long a result waits for its page.
pub const RESULT_TTL: Duration = Duration::from_secs(10 * 60);

const PREFIX: &str = "signin-test";

/// What a test sign-in received.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TestResult {
    pub source_id: String,
    /// The admin who started the test (audit actor).
    pub admin: String,
    /// The identity the source's claim settings made of the answer.
    pub identity: Identity,
    /// The validated claims as received (ID token, then userinfo).
    pub claims: Map<String, Value>,
    /// When the sign-in completed (Unix seconds).
    pub at: i64,
}

/// Why a result cannot be shown.
#[derive(Debug, thiserror::Error)]
pub enum TestResultError {
    /// Unknown, expired or already shown.
    #[error("this test result has expired or was already shown")]
    Gone,
    /// Another admin's test, or another source's.
    #[error("this test result belongs to another test sign-in")]
    NotYours,
    #[error(transparent)]
    Cache(#[from] CacheError),
}

/// Keeps `result` for [`RESULT_TTL`]; returns the one-time reference to it.
pub async fn keep(
    cache: &dyn Cache,
    random: &Random,
    result: &TestResult,
) -> Result<String, TestResultError> {
    let reference = random.token();
    let bytes = serde_json::to_vec(result).map_err(|e| CacheError(e.to_string()))?;
    cache
        .put(&hashed_key(PREFIX, &reference), &bytes, RESULT_TTL)
        .await?;
    Ok(reference)
}

/// The result `reference` names, for `admin` at `source`: consumed on first read
/// by its own admin; another admin's (or source's) reference reads nothing and
/// leaves the result where it is.
pub async fn take(
    cache: &dyn Cache,
    reference: &str,
    admin: &str,
    source: &str,
) -> Result<TestResult, TestResultError> {
    if reference.is_empty() || reference.len() > 128 {
        return Err(TestResultError::Gone);
    }
    let key = hashed_key(PREFIX, reference);
    let Some(bytes) = cache.get(&key).await? else {
        return Err(TestResultError::Gone);
    };
    let result: TestResult = serde_json::from_slice(&bytes).map_err(|_| TestResultError::Gone)?;
    if result.admin != admin || result.source_id != source {
        return Err(TestResultError::NotYours);
    }
    cache.delete(&key).await?;
    Ok(result)
}
