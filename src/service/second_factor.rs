//! The built-in directory's TOTP second factor: sign-ins that wait for their code,
//! code checks that spend each time step once, and enrolment (a secret offered to the
//! person, kept until their first code confirms it).
//!
//! A pending sign-in waits in the cache for five minutes under a hash of a random id
//! that only the browser holds; a correct, unused code finishes it exactly once.
//! Secrets are sealed with the master key wherever they rest (database and cache).

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::cache::{Cache, CacheError, hashed_key};
use crate::iam::UserName;
use crate::idp::identity::Identity;
use crate::idp::totp::{self, TotpSecret};
use crate::service::sealing::SecretSealer;
use crate::store::{Store, StoreError};

/// How long the code step waits after the password was accepted.
const PENDING_TTL: Duration = Duration::from_secs(5 * 60);
/// How long an unconfirmed enrolment secret waits for its first code.
const ENROL_TTL: Duration = Duration::from_secs(15 * 60);

#[derive(Debug, thiserror::Error)]
pub enum SecondFactorError {
    #[error(transparent)]
    Cache(#[from] CacheError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the stored TOTP secret of {0} cannot be opened")]
    Unreadable(String),
}

/// A password accepted, a code still owed.
#[derive(Serialize, Deserialize)]
pub struct PendingSignIn {
    pub identity: Identity,
    pub return_to: String,
    pub csrf: String,
}

/// What a submitted code turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeCheck {
    Accepted,
    Wrong,
    /// Right, but already used for this user within its validity window.
    Replayed,
}

impl CodeCheck {
    /// The reason the audit log gives for a refused code.
    pub fn reason(&self) -> &'static str {
        match self {
            CodeCheck::Accepted => "",
            CodeCheck::Wrong => "wrong second factor",
            CodeCheck::Replayed => "second factor code already used",
        }
    }
}

/// How turning the second factor on ended.
#[derive(Debug, PartialEq, Eq)]
pub enum TurnedOn {
    Now,
    /// Another session of the person turned it on meanwhile; theirs stands.
    Already,
}

pub struct SecondFactor {
    cache: Arc<dyn Cache>,
    store: Arc<dyn Store>,
    sealer: SecretSealer,
}

fn pending_key(id: &str) -> String {
    hashed_key("mfa-pending", id)
}

fn enrol_key(session_id: &str) -> String {
    hashed_key("mfa-enrol", session_id)
}

/// The sealing context of a user's stored TOTP secret: bound to the user's id.
fn stored_secret_context(user_id: &str) -> String {
    format!("totp-secret:{user_id}")
}

fn enrol_context(identity: &Identity) -> String {
    format!(
        "totp-enrol:{}:{}",
        identity.source_id,
        identity.user_name.to_lowercase()
    )
}

impl SecondFactor {
    pub fn new(cache: Arc<dyn Cache>, store: Arc<dyn Store>, sealer: SecretSealer) -> Self {
        Self {
            cache,
            store,
            sealer,
        }
    }

    /// Parks a sign-in whose password was right until its code comes; returns the id
    /// the browser keeps (in a cookie).
    pub async fn park(
        &self,
        identity: Identity,
        return_to: &str,
    ) -> Result<String, SecondFactorError> {
        let id = self.sealer.random().token();
        let pending = PendingSignIn {
            identity,
            return_to: return_to.to_owned(),
            csrf: self.sealer.random().token(),
        };
        let stored = serde_json::to_vec(&pending).unwrap_or_default();
        self.cache
            .put(&pending_key(&id), &stored, PENDING_TTL)
            .await?;
        Ok(id)
    }

    /// The sign-in parked under `id`, if it still waits.
    pub async fn pending(&self, id: &str) -> Option<PendingSignIn> {
        let stored = self.cache.get(&pending_key(id)).await.ok()??;
        serde_json::from_slice(&stored).ok()
    }

    /// Drops the sign-in parked under `id` (locked out, or the user changed since).
    pub async fn abandon(&self, id: &str) {
        let _ = self.cache.delete(&pending_key(id)).await;
    }

    /// Finishes the sign-in parked under `id`: true for exactly one caller, even
    /// under concurrent submissions (the first claim wins).
    pub async fn finish(&self, id: &str) -> Result<bool, SecondFactorError> {
        let key = pending_key(id);
        let first = self
            .cache
            .put_if_absent(&format!("{key}:done"), b"1", PENDING_TTL)
            .await?;
        if first {
            let _ = self.cache.delete(&key).await;
        }
        Ok(first)
    }

    /// The user's current TOTP secret and since when it is on: `None` when the user
    /// is gone, disabled or has TOTP off.
    pub async fn stored_secret(
        &self,
        source_id: &str,
        name: &UserName,
    ) -> Result<Option<(TotpSecret, DateTime<Utc>)>, SecondFactorError> {
        let user = match self.store.get_user(source_id, name).await {
            Ok(user) => user,
            Err(StoreError::NotFound { .. }) => return Ok(None),
            Err(error) => return Err(error.into()),
        };
        let (Some(sealed), Some(since)) = (user.totp_secret.as_deref(), user.totp_enabled_at)
        else {
            return Ok(None);
        };
        if user.disabled {
            return Ok(None);
        }
        self.open(sealed, &stored_secret_context(&user.id))
            .map(|secret| Some((secret, since)))
            .ok_or_else(|| SecondFactorError::Unreadable(user.user_name.to_string()))
    }

    fn open(&self, sealed: &str, context: &str) -> Option<TotpSecret> {
        let text = self.sealer.open_secret(sealed, context).ok()?;
        TotpSecret::from_base32(text.expose())
    }

    fn seal(&self, secret: &TotpSecret, context: &str) -> String {
        self.sealer.seal_secret(&secret.to_base32(), context)
    }

    /// Checks `input` against `secret` at `now` and claims the matched time step for
    /// this user, so that no code of that step is accepted again while it is valid.
    pub async fn check_code(
        &self,
        source_id: &str,
        name: &UserName,
        secret: &TotpSecret,
        input: &str,
        now: DateTime<Utc>,
    ) -> Result<CodeCheck, SecondFactorError> {
        let Some(step) = totp::verify(secret, &totp::normalize_code(input), now.timestamp()) else {
            return Ok(CodeCheck::Wrong);
        };
        let remember = totp::valid_until(step)
            .saturating_sub(now.timestamp())
            .clamp(1, 3 * totp::STEP_SECONDS);
        let used = |step: i64| {
            format!(
                "totp-used:{source_id}:{}:{step}",
                name.as_str().to_lowercase()
            )
        };
        let remember = Duration::from_secs(remember.unsigned_abs() + 1);
        if !self
            .cache
            .put_if_absent(&used(step), b"1", remember)
            .await?
        {
            return Ok(CodeCheck::Replayed);
        }
        // RFC 6238 §5.2: once a code is accepted, codes of earlier steps still inside
        // the window are spent too, so an observed older code cannot follow a newer one.
        for earlier in step - 2 * totp::SKEW_STEPS..step {
            self.cache.put(&used(earlier), b"1", remember).await?;
        }
        Ok(CodeCheck::Accepted)
    }

    /// The unconfirmed secret of the enrolment of portal session `session_id`, made
    /// when there is none and `create` says so. `None` when there is none (or the
    /// cache failed, logged).
    pub async fn enrolment_secret(
        &self,
        session_id: &str,
        identity: &Identity,
        create: bool,
    ) -> Option<TotpSecret> {
        let key = enrol_key(session_id);
        let context = enrol_context(identity);
        if let Ok(Some(stored)) = self.cache.get(&key).await {
            let opened = std::str::from_utf8(&stored)
                .ok()
                .and_then(|sealed| self.open(sealed, &context));
            if opened.is_some() {
                return opened;
            }
        }
        if !create {
            return None;
        }
        let secret = TotpSecret::generate(&mut self.sealer.random().rng());
        let sealed = self.seal(&secret, &context);
        match self.cache.put(&key, sealed.as_bytes(), ENROL_TTL).await {
            Ok(()) => Some(secret),
            Err(error) => {
                tracing::error!(%error, "cannot store an enrolment secret");
                None
            }
        }
    }

    /// Turns the second factor on for the user with the confirmed enrolment `secret`
    /// of portal session `session_id`.
    pub async fn turn_on(
        &self,
        source_id: &str,
        name: &UserName,
        secret: &TotpSecret,
        session_id: &str,
        now: DateTime<Utc>,
    ) -> Result<TurnedOn, SecondFactorError> {
        let record = self.store.get_user(source_id, name).await?;
        let sealed = self.seal(secret, &stored_secret_context(&record.id));
        match self
            .store
            .set_totp_secret(source_id, name, Some((&sealed, now)))
            .await
        {
            Ok(()) => {}
            Err(StoreError::AlreadyExists { .. }) => return Ok(TurnedOn::Already),
            Err(error) => return Err(error.into()),
        }
        let _ = self.cache.delete(&enrol_key(session_id)).await;
        Ok(TurnedOn::Now)
    }

    pub async fn turn_off(
        &self,
        source_id: &str,
        name: &UserName,
    ) -> Result<(), SecondFactorError> {
        self.store.set_totp_secret(source_id, name, None).await?;
        Ok(())
    }
}
