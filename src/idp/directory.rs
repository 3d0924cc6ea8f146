//! The built-in directory: Rolegate's own users with argon2id password hashes.
//!
//! Sign-in is deliberately uninformative: an unknown user, a wrong password, a user
//! without a password and a disabled user all get the same [`SignInError::InvalidCredentials`],
//! and the work done is the same (a password is always verified, against a dummy hash
//! when there is no real one), so neither the answer nor its timing tells which names
//! exist. Repeated failures lock the name for a while; the failure counter and the
//! lock live in the shared cache, so every replica sees them.

use std::sync::Arc;
use std::time::Duration;

use argon2::{Algorithm, Argon2, Params, PasswordHash, PasswordHasher, PasswordVerifier, Version};
use chrono::{DateTime, Utc};

use crate::cache::{Cache, CacheError};
use crate::iam::UserName;
use crate::store::{IdentitySourceKind, Store, StoreError, User};

/// OWASP's recommended argon2id parameters: 19 MiB of memory, two passes, one lane.
pub const ARGON2_MEMORY_KIB: u32 = 19_456;
pub const ARGON2_ITERATIONS: u32 = 2;
pub const ARGON2_PARALLELISM: u32 = 1;

/// Longer passwords are refused outright (hashing cost grows with the input).
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// A hash of a throw-away password with the parameters above: what a sign-in for a
/// user without a (real) hash verifies against, so it costs the same.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$7CPE4kf+Fk9OxYte5tkMIw$Tr38gWr1Y1el27ZTcwH1Uz2rnZbszdjHiyVeNsB+8mk";

#[derive(Debug, thiserror::Error)]
#[error("cannot hash the password: {0}")]
pub struct PasswordHashError(String);

fn hasher() -> Result<Argon2<'static>, PasswordHashError> {
    let params = Params::new(
        ARGON2_MEMORY_KIB,
        ARGON2_ITERATIONS,
        ARGON2_PARALLELISM,
        None,
    )
    .map_err(|e| PasswordHashError(e.to_string()))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// Hashes `password` to an argon2id PHC string (`$argon2id$v=19$m=19456,t=2,p=1$...`)
/// with a fresh random salt. CPU-bound (tens of milliseconds in a release build): call
/// it off the async runtime, e.g. through [`hash_password_async`].
pub fn hash_password(password: &str) -> Result<String, PasswordHashError> {
    if password.is_empty() {
        return Err(PasswordHashError("the password is empty".into()));
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(PasswordHashError(format!(
            "the password is longer than {MAX_PASSWORD_BYTES} bytes"
        )));
    }
    hasher()?
        .hash_password(password.as_bytes())
        .map(|hash| hash.to_string())
        .map_err(|e| PasswordHashError(e.to_string()))
}

/// [`hash_password`] on the blocking thread pool.
pub async fn hash_password_async(password: String) -> Result<String, PasswordHashError> {
    tokio::task::spawn_blocking(move || hash_password(&password))
        .await
        .map_err(|e| PasswordHashError(format!("the hashing task failed: {e}")))?
}

/// Whether `password` matches the PHC string `phc` (any argon2 variant; the parameters
/// come from the string). The comparison is constant-time (done by the `argon2`
/// crate); a malformed `phc` never matches.
pub fn verify_password(phc: &str, password: &str) -> bool {
    if password.len() > MAX_PASSWORD_BYTES {
        return false;
    }
    match PasswordHash::new(phc) {
        Ok(parsed) => Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// When repeated failures lock a user name out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockoutPolicy {
    /// Failures within `window` that lock the name; 0 never locks. At most
    /// [`LockoutPolicy::MAX_FAILURES`].
    pub max_failures: u32,
    pub window: Duration,
    /// How long the lock lasts.
    pub lockout: Duration,
}

impl LockoutPolicy {
    /// The upper bound of `max_failures` (each counted failure is one cache key).
    pub const MAX_FAILURES: u32 = 50;
}

impl Default for LockoutPolicy {
    fn default() -> Self {
        Self {
            max_failures: 5,
            window: Duration::from_secs(15 * 60),
            lockout: Duration::from_secs(15 * 60),
        }
    }
}

/// A directory user who proved their password, with the names of their groups.
/// The password hash is cleared from `user`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthenticatedUser {
    pub user: User,
    pub groups: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum SignInError {
    /// Unknown user, wrong password, no password or disabled user: deliberately one
    /// answer for all.
    #[error("the user name or password is incorrect")]
    InvalidCredentials,
    /// Too many recent failures for this user name.
    #[error("too many failed sign-ins: this account is locked until {until}")]
    Locked { until: DateTime<Utc> },
    /// The source does not exist, is disabled, or is not a directory.
    #[error("identity source {0:?} is not an enabled directory")]
    UnknownSource(String),
    /// The store or the cache failed; nothing was decided.
    #[error("sign-in is unavailable: {0}")]
    Unavailable(String),
}

impl From<CacheError> for SignInError {
    fn from(error: CacheError) -> Self {
        SignInError::Unavailable(error.to_string())
    }
}

impl From<StoreError> for SignInError {
    fn from(error: StoreError) -> Self {
        SignInError::Unavailable(error.to_string())
    }
}

/// The cache keys that track one user name of one source.
struct LockKeys {
    base: String,
}

impl LockKeys {
    fn new(source_id: &str, user_name: &UserName) -> Self {
        // Names are unique ignoring case, so "Alice" and "alice" share a counter.
        Self {
            base: format!("signin:{source_id}:{}", user_name.as_str().to_lowercase()),
        }
    }

    fn lock(&self) -> String {
        format!("{}:lock", self.base)
    }

    fn failure(&self, slot: u32) -> String {
        format!("{}:fail:{slot}", self.base)
    }
}

/// Password sign-in against the built-in directory.
pub struct DirectoryAuth {
    store: Arc<dyn Store>,
    cache: Arc<dyn Cache>,
    policy: LockoutPolicy,
}

impl std::fmt::Debug for DirectoryAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DirectoryAuth")
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl DirectoryAuth {
    /// With the default lock-out: 5 failures within 15 minutes lock for 15 minutes.
    pub fn new(store: Arc<dyn Store>, cache: Arc<dyn Cache>) -> Self {
        Self::with_policy(store, cache, LockoutPolicy::default())
    }

    pub fn with_policy(
        store: Arc<dyn Store>,
        cache: Arc<dyn Cache>,
        policy: LockoutPolicy,
    ) -> Self {
        let policy = LockoutPolicy {
            max_failures: policy.max_failures.min(LockoutPolicy::MAX_FAILURES),
            ..policy
        };
        Self {
            store,
            cache,
            policy,
        }
    }

    pub fn policy(&self) -> &LockoutPolicy {
        &self.policy
    }

    /// Checks `password` for `user_name` in the directory `source_id`. `now` is the
    /// time of the attempt (it dates a lock); the counters expire by the cache's TTLs.
    pub async fn authenticate(
        &self,
        source_id: &str,
        user_name: &str,
        password: &str,
        now: DateTime<Utc>,
    ) -> Result<AuthenticatedUser, SignInError> {
        self.check_source(source_id).await?;
        let Ok(name) = UserName::parse(user_name.trim()) else {
            // No such user can exist; spend the same time anyway.
            verify_off_thread(None, password).await?;
            return Err(SignInError::InvalidCredentials);
        };
        let keys = LockKeys::new(source_id, &name);
        if let Some(until) = self.locked_until(&keys, now).await? {
            return Err(SignInError::Locked { until });
        }

        let user = match self.store.get_user(source_id, &name).await {
            Ok(user) => Some(user),
            Err(StoreError::NotFound { .. }) => None,
            Err(error) => return Err(error.into()),
        };
        let hash = user.as_ref().and_then(|u| u.password_hash.clone());
        let matches = verify_off_thread(hash, password).await?;
        let mut user = match user {
            Some(user) if matches => user,
            // Unknown, wrong password or no password: all count towards the lock, so
            // locking does not tell real names from made-up ones either.
            _ => {
                return match self.record_failure(&keys, now).await? {
                    Some(until) => Err(SignInError::Locked { until }),
                    None => Err(SignInError::InvalidCredentials),
                };
            }
        };
        if user.disabled {
            return Err(SignInError::InvalidCredentials);
        }

        // With a second factor the sign-in is not complete yet: wrong passwords and
        // wrong codes count together until a code is accepted (see `complete_sign_in`),
        // so a known password cannot reset the counter between code guesses.
        if user.totp_enabled_at.is_none() {
            self.clear_failures(&keys).await?;
        }
        let groups = self
            .store
            .groups_for_user(source_id, &name)
            .await?
            .into_iter()
            .map(|group| group.name.to_string())
            .collect();
        user.password_hash = None;
        user.totp_secret = None;
        Ok(AuthenticatedUser { user, groups })
    }

    /// When `user_name`'s lock ends, if it is locked at `now` (checked before a
    /// second factor, which a lock stops as it stops passwords).
    pub async fn locked_until_for(
        &self,
        source_id: &str,
        user_name: &UserName,
        now: DateTime<Utc>,
    ) -> Result<Option<DateTime<Utc>>, SignInError> {
        self.locked_until(&LockKeys::new(source_id, user_name), now)
            .await
    }

    /// Counts a failure other than a wrong password (a wrong second-factor code)
    /// towards the same lock-out; returns the end of the lock when this one set it.
    pub async fn count_failure(
        &self,
        source_id: &str,
        user_name: &UserName,
        now: DateTime<Utc>,
    ) -> Result<Option<DateTime<Utc>>, SignInError> {
        self.record_failure(&LockKeys::new(source_id, user_name), now)
            .await
    }

    /// Clears the failure counter once every factor of a sign-in was accepted.
    pub async fn complete_sign_in(
        &self,
        source_id: &str,
        user_name: &UserName,
    ) -> Result<(), SignInError> {
        self.clear_failures(&LockKeys::new(source_id, user_name))
            .await
    }

    async fn check_source(&self, source_id: &str) -> Result<(), SignInError> {
        match self.store.get_identity_source(source_id).await {
            Ok(source) if source.enabled && source.kind == IdentitySourceKind::Directory => Ok(()),
            Ok(_) | Err(StoreError::NotFound { .. }) => {
                Err(SignInError::UnknownSource(source_id.to_owned()))
            }
            Err(error) => Err(error.into()),
        }
    }

    async fn locked_until(
        &self,
        keys: &LockKeys,
        now: DateTime<Utc>,
    ) -> Result<Option<DateTime<Utc>>, SignInError> {
        let Some(value) = self.cache.get(&keys.lock()).await? else {
            return Ok(None);
        };
        let until = std::str::from_utf8(&value)
            .ok()
            .and_then(|text| DateTime::parse_from_rfc3339(text).ok())
            .map(|until| until.with_timezone(&Utc))
            .unwrap_or_else(|| now + self.policy.lockout);
        Ok(Some(until))
    }

    /// Counts a failure; returns the end of the lock when this failure set one.
    ///
    /// The counter is a row of slot keys claimed with `put_if_absent`, each living for
    /// the window: concurrent failures (from any replica) claim distinct slots, so none
    /// goes uncounted, and the live slots are exactly the failures within the window.
    async fn record_failure(
        &self,
        keys: &LockKeys,
        now: DateTime<Utc>,
    ) -> Result<Option<DateTime<Utc>>, SignInError> {
        let max = self.policy.max_failures;
        if max == 0 {
            return Ok(None);
        }
        let stamp = now.to_rfc3339();
        let mut claimed = false;
        for slot in 0..max {
            if self
                .cache
                .put_if_absent(&keys.failure(slot), stamp.as_bytes(), self.policy.window)
                .await?
            {
                claimed = true;
                break;
            }
        }
        let failures = if claimed {
            let mut live = 0;
            for slot in 0..max {
                if self.cache.get(&keys.failure(slot)).await?.is_some() {
                    live += 1;
                }
            }
            live
        } else {
            max
        };
        if failures < max {
            return Ok(None);
        }
        let until = now + self.policy.lockout;
        self.cache
            .put(
                &keys.lock(),
                until.to_rfc3339().as_bytes(),
                self.policy.lockout,
            )
            .await?;
        self.clear_failures(keys).await?;
        tracing::warn!(
            user = %keys.base,
            failures,
            %until,
            "directory sign-in locked after repeated failures"
        );
        Ok(Some(until))
    }

    async fn clear_failures(&self, keys: &LockKeys) -> Result<(), SignInError> {
        for slot in 0..self.policy.max_failures {
            self.cache.delete(&keys.failure(slot)).await?;
        }
        Ok(())
    }
}

/// Verifies on the blocking pool, against the dummy hash when there is no real one.
async fn verify_off_thread(hash: Option<String>, password: &str) -> Result<bool, SignInError> {
    let password = password.to_owned();
    tokio::task::spawn_blocking(move || match hash {
        Some(hash) => verify_password(&hash, &password),
        None => {
            let _ = verify_password(DUMMY_HASH, &password);
            false
        }
    })
    .await
    .map_err(|e| SignInError::Unavailable(format!("the password check failed: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dummy_hash_uses_the_current_parameters() {
        let params = format!(
            "$argon2id$v=19$m={ARGON2_MEMORY_KIB},t={ARGON2_ITERATIONS},p={ARGON2_PARALLELISM}$"
        );
        assert!(DUMMY_HASH.starts_with(&params), "{DUMMY_HASH}");
        assert!(PasswordHash::new(DUMMY_HASH).is_ok());
    }
}
