//! The built-in directory: Rolegate's own users with argon2id password hashes.
//!
//! Sign-in is deliberately uninformative: an unknown user, a wrong password, a user
//! without a password, a disabled user and a user an admin locked all get the same [`SignInError::InvalidCredentials`],
//! and the work done is the same (a password is always verified, against a dummy hash
//! when there is no real one), so neither the answer nor its timing tells which names
//! exist. Repeated failures lock the name for a while; the failure counter and the
//! lock live in the shared cache, so every replica sees them.

use std::sync::Arc;
use std::time::Duration;

use argon2::{Algorithm, Argon2, Block, Params, PasswordHash, PasswordHasher, Version};
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::cache::{Cache, CacheError, RateLimit};
use crate::iam::UserName;
use crate::idp::identity::Identity;
use crate::store::{IdentitySourceKind, NewIdentitySource, Store, StoreError, User};
use crate::sts::portal::{
    DirectorySettings, directory_attribute, log_skipped_tags, select_attributes,
};

/// The id of the built-in directory identity source that the portal's password form
/// signs in against.
pub const DIRECTORY_SOURCE_ID: &str = "directory";

/// The built-in directory as an identity source (created by bootstrap or import).
pub fn built_in_source() -> NewIdentitySource {
    NewIdentitySource {
        id: DIRECTORY_SOURCE_ID.into(),
        kind: IdentitySourceKind::Directory,
        display_name: "Rolegate directory".into(),
        config: serde_json::json!({}),
        enabled: true,
    }
}

/// OWASP's recommended argon2id parameters: 19 MiB of memory, two passes, one lane.
pub const ARGON2_MEMORY_KIB: u32 = 19_456;
pub const ARGON2_ITERATIONS: u32 = 2;
pub const ARGON2_PARALLELISM: u32 = 1;

/// Longer passwords are refused outright (hashing cost grows with the input).
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// The shortest password an admin may give a directory user.
pub const MIN_PASSWORD_CHARS: usize = 12;

/// Whether `password` may be set as a directory user's new password: at least
/// [`MIN_PASSWORD_CHARS`] characters and at most [`MAX_PASSWORD_BYTES`] bytes.
pub fn check_new_password(password: &str) -> Result<(), String> {
    if password.chars().count() < MIN_PASSWORD_CHARS || password.len() > MAX_PASSWORD_BYTES {
        return Err(format!(
            "the password must be at least {MIN_PASSWORD_CHARS} characters (and at most {MAX_PASSWORD_BYTES} bytes)"
        ));
    }
    Ok(())
}

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
/// come from the string). The comparison is constant-time; a malformed `phc` never
/// matches.
pub fn verify_password(phc: &str, password: &str) -> bool {
    verify_with_memory(&mut Vec::new(), phc, password)
}

/// The most working memory one stored hash may ask for (256 MiB): a larger `m` in a
/// stored hash never matches rather than exhausting memory.
const MAX_CHECK_BLOCKS: usize = 256 * 1024;

/// [`verify_password`] in `memory`, grown to what the hash asks for and kept by the
/// caller for the next check: a worker that checks passwords all day allocates its
/// 19 MiB once, instead of once per check (which glibc's allocator answers with
/// fresh, scattered memory under concurrency).
fn verify_with_memory(memory: &mut Vec<Block>, phc: &str, password: &str) -> bool {
    if password.len() > MAX_PASSWORD_BYTES {
        return false;
    }
    let Ok(parsed) = PasswordHash::new(phc) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (&parsed.salt, &parsed.hash) else {
        return false;
    };
    let Ok(algorithm) = Algorithm::try_from(parsed.algorithm.as_str()) else {
        return false;
    };
    let version = match parsed.version.map(Version::try_from) {
        None => Version::default(),
        Some(Ok(version)) => version,
        Some(Err(_)) => return false,
    };
    let Ok(params) = Params::try_from(&parsed) else {
        return false;
    };
    let blocks = params.block_count();
    if blocks > MAX_CHECK_BLOCKS {
        return false;
    }
    if memory.len() < blocks {
        memory.resize(blocks, Block::new());
    }
    let Some(working) = memory.get_mut(..blocks) else {
        return false;
    };
    let mut computed = vec![0u8; expected.len()];
    Argon2::new(algorithm, version, params)
        .hash_password_into_with_memory(password.as_bytes(), salt.as_ref(), &mut computed, working)
        .is_ok()
        && bool::from(computed.as_slice().ct_eq(expected.as_bytes()))
}

/// How failed sign-ins slow down further attempts.
///
/// Failures are counted per user name *and client network* (an IPv4 address or an
/// IPv6 /64), so guessing from one network never stops the real person signing in
/// from another. Within `window`, `max_failures` failures are free; after that each
/// further attempt must wait a delay that doubles from [`FIRST_DELAY`] up to `lockout`,
/// so a guesser gets a handful of tries an hour while a person who mistyped waits
/// seconds, not a quarter of an hour. Every network also has a budget of
/// `network_max_failures` failures per window across all names, which stops
/// spraying one password over many names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockoutPolicy {
    /// Free failures within `window` for one name from one network; 0 never locks.
    /// At most [`LockoutPolicy::MAX_FAILURES`].
    pub max_failures: u32,
    pub window: Duration,
    /// The longest wait between attempts once the free failures are spent.
    pub lockout: Duration,
    /// Failures within `window` from one network, whatever the names; 0 means no
    /// limit.
    pub network_max_failures: u64,
}

/// The first wait after the free failures; it doubles with each further failure.
pub const FIRST_DELAY: Duration = Duration::from_secs(30);

/// Delayed attempts beyond the free ones that are tracked; past them the last delay
/// (capped at `lockout`) applies until the oldest failure leaves the window.
const DELAYED_SLOTS: u32 = 8;

impl LockoutPolicy {
    /// The upper bound of `max_failures` (each counted failure is one cache key).
    pub const MAX_FAILURES: u32 = 50;

    fn slots(&self) -> u32 {
        self.max_failures + DELAYED_SLOTS
    }

    /// The wait before the attempt that would take delayed slot `n` (0-based).
    fn delay(&self, n: u32) -> Duration {
        let doubled = FIRST_DELAY.saturating_mul(1u32 << n.min(20));
        doubled.min(self.lockout)
    }
}

impl Default for LockoutPolicy {
    fn default() -> Self {
        Self {
            max_failures: 5,
            window: Duration::from_secs(15 * 60),
            lockout: Duration::from_secs(15 * 60),
            network_max_failures: 30,
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
    /// Unknown user, wrong password, no password, disabled or locked user:
    /// deliberately one answer for all.
    #[error("the user name or password is incorrect")]
    InvalidCredentials,
    /// Too many recent failures for this user name from this network, or from this
    /// network altogether: no attempt before `until`.
    #[error("too many failed sign-ins: this account is locked until {until}")]
    Locked { until: DateTime<Utc> },
    /// Too many password checks are running or waiting on this server: the attempt
    /// was not evaluated (nothing was counted); try again shortly.
    #[error("too many sign-ins at once: try again shortly")]
    Busy,
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

/// A short, stable stand-in for a typed user name in logs and for unknown names in
/// the audit log: people type passwords into the name field, and those must not be
/// written anywhere. Two characters and a hash prefix still let an operator tell
/// attempts on the same name apart.
pub fn masked_name(typed: &str) -> String {
    let typed = typed.trim();
    let shown: String = typed.chars().take(2).collect();
    let digest = Sha256::digest(typed.to_lowercase().as_bytes());
    format!("{shown}…#{}", &hex::encode(digest)[..10])
}

/// The cache keys that track one user name of one source from one client network.
struct LockKeys {
    base: String,
    /// The client network, for the network's own budget.
    network: String,
}

impl LockKeys {
    fn new(source_id: &str, user_name: &UserName, network: &str) -> Self {
        // Names are unique ignoring case, so "Alice" and "alice" share a counter. The
        // name is hashed: keys are listed by cache tooling and must not hold what was
        // typed.
        let name = hex::encode(Sha256::digest(user_name.as_str().to_lowercase().as_bytes()));
        Self {
            base: format!("signin:{source_id}:{name}:{network}"),
            network: network.to_owned(),
        }
    }

    fn failure(&self, slot: u32) -> String {
        format!("{}:fail:{slot}", self.base)
    }
}

/// What a scan of a name's failure slots found: the slot the next attempt takes, or
/// when an attempt is next allowed.
enum NextSlot {
    Free(u32),
    WaitUntil(DateTime<Utc>),
}

/// Password sign-in against the built-in directory.
pub struct DirectoryAuth {
    store: Arc<dyn Store>,
    cache: Arc<dyn Cache>,
    policy: LockoutPolicy,
    hashing: HashingLimit,
}

impl std::fmt::Debug for DirectoryAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DirectoryAuth")
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl DirectoryAuth {
    /// With the default lock-out policy (see [`LockoutPolicy`]).
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
            hashing: HashingLimit::for_this_machine(),
        }
    }

    pub fn policy(&self) -> &LockoutPolicy {
        &self.policy
    }

    /// Checks `password` for `user_name` in the directory `source_id`, for a client
    /// in `network` (see [`LockoutPolicy`]). `now` is the time of the attempt; the
    /// counters expire by the cache's TTLs.
    ///
    /// A failure slot is claimed *before* the password is verified and given back
    /// when it matches, so however many attempts arrive at once, no more than the
    /// policy allows are ever evaluated.
    pub async fn authenticate(
        &self,
        source_id: &str,
        user_name: &str,
        password: &str,
        network: &str,
        now: DateTime<Utc>,
    ) -> Result<AuthenticatedUser, SignInError> {
        self.check_source(source_id).await?;
        self.check_network(network, now).await?;
        let Ok(name) = UserName::parse(user_name.trim()) else {
            // No such user can exist; spend the same time anyway, and count it
            // against the network like any other failure.
            self.verify(None, password).await?;
            self.count_network_failure(network).await?;
            return Err(SignInError::InvalidCredentials);
        };
        let keys = LockKeys::new(source_id, &name, network);
        let slot = match self.claim(&keys, now).await? {
            NextSlot::Free(slot) => slot,
            NextSlot::WaitUntil(until) => return Err(SignInError::Locked { until }),
        };
        let verdict = self.verify_claimed(source_id, &name, password).await;
        let mut user = match verdict {
            Ok(Some(user)) => user,
            // Unknown, wrong password, no password or disabled: all count towards the
            // lock, so locking does not tell real names from made-up ones either.
            Ok(None) => return Err(self.failed(&keys, slot, now).await?),
            Err(error) => {
                // Nothing was decided: the attempt does not count.
                self.cache.delete(&keys.failure(slot)).await?;
                return Err(error);
            }
        };
        self.cache.delete(&keys.failure(slot)).await?;

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

    /// Checks the password of a user who is already signed in (before a change to
    /// their sign-in settings). Counts towards the same lock-out as sign-in; true when
    /// it matches.
    pub async fn confirm_password(
        &self,
        source_id: &str,
        user_name: &UserName,
        password: &str,
        network: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, SignInError> {
        let keys = LockKeys::new(source_id, user_name, network);
        let slot = match self.claim(&keys, now).await? {
            NextSlot::Free(slot) => slot,
            NextSlot::WaitUntil(until) => return Err(SignInError::Locked { until }),
        };
        match self.verify_claimed(source_id, user_name, password).await {
            Ok(Some(_)) => {
                self.cache.delete(&keys.failure(slot)).await?;
                Ok(true)
            }
            Ok(None) => match self.failed(&keys, slot, now).await? {
                SignInError::Locked { until } => Err(SignInError::Locked { until }),
                _ => Ok(false),
            },
            Err(error) => {
                self.cache.delete(&keys.failure(slot)).await?;
                Err(error)
            }
        }
    }

    /// The user when `password` is theirs (and they are enabled and not locked by an
    /// admin), else `None`: a locked user's right password fails like a wrong one.
    async fn verify_claimed(
        &self,
        source_id: &str,
        name: &UserName,
        password: &str,
    ) -> Result<Option<User>, SignInError> {
        let user = match self.store.get_user(source_id, name).await {
            Ok(user) => Some(user),
            Err(StoreError::NotFound { .. }) => None,
            Err(error) => return Err(error.into()),
        };
        let hash = user.as_ref().and_then(|u| u.password_hash.clone());
        let matches = self.verify(hash, password).await?;
        Ok(user.filter(|user| matches && !user.disabled && user.locked_at.is_none()))
    }

    /// Records a failed attempt that holds `slot`: the failure is the slot itself.
    /// Returns the error to report: `Locked` when the free failures are now spent.
    async fn failed(
        &self,
        keys: &LockKeys,
        slot: u32,
        now: DateTime<Utc>,
    ) -> Result<SignInError, SignInError> {
        self.count_network_failure(&keys.network).await?;
        let failures = slot.saturating_add(1);
        if self.policy.max_failures == 0 || failures < self.policy.max_failures {
            return Ok(SignInError::InvalidCredentials);
        }
        let until = now + self.policy.delay(failures - self.policy.max_failures);
        tracing::warn!(
            key = %keys.base,
            failures,
            %until,
            "directory sign-in slowed down after repeated failures"
        );
        Ok(SignInError::Locked { until })
    }

    /// When `user_name`'s next attempt from `network` is allowed, if not now
    /// (checked before a second factor, which a lock stops as it stops passwords).
    pub async fn locked_until_for(
        &self,
        source_id: &str,
        user_name: &UserName,
        network: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<DateTime<Utc>>, SignInError> {
        let keys = LockKeys::new(source_id, user_name, network);
        if let Err(SignInError::Locked { until }) = self.check_network(&keys.network, now).await {
            return Ok(Some(until));
        }
        match self.scan(&keys, now, 0).await? {
            NextSlot::Free(_) => Ok(None),
            NextSlot::WaitUntil(until) => Ok(Some(until)),
        }
    }

    /// Counts a failure other than a wrong password (a wrong second-factor code)
    /// towards the same lock-out; returns when the next attempt is allowed when this
    /// one spent the free failures (or none was left).
    pub async fn count_failure(
        &self,
        source_id: &str,
        user_name: &UserName,
        network: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<DateTime<Utc>>, SignInError> {
        let keys = LockKeys::new(source_id, user_name, network);
        match self.claim(&keys, now).await? {
            NextSlot::Free(slot) => match self.failed(&keys, slot, now).await? {
                SignInError::Locked { until } => Ok(Some(until)),
                _ => Ok(None),
            },
            NextSlot::WaitUntil(until) => Ok(Some(until)),
        }
    }

    /// Clears the failure counter once every factor of a sign-in was accepted.
    pub async fn complete_sign_in(
        &self,
        source_id: &str,
        user_name: &UserName,
        network: &str,
    ) -> Result<(), SignInError> {
        self.clear_failures(&LockKeys::new(source_id, user_name, network))
            .await
    }

    /// The identity of a directory user who signed in as a member of `groups`: the
    /// user id as subject, and the session-tag attributes the directory's
    /// `session_tags` setting selects. Never fails the sign-in: an unreadable
    /// setting or a skipped tag is logged and leaves the tag out.
    pub async fn identity(&self, user: &User, groups: Vec<String>) -> Identity {
        let source_id = DIRECTORY_SOURCE_ID;
        let settings = match self.store.get_identity_source(source_id).await {
            Ok(source) => serde_json::from_value::<DirectorySettings>(source.config)
                .inspect_err(|error| {
                    tracing::warn!(source = source_id, %error, "directory settings unreadable; no session tags");
                })
                .unwrap_or_default(),
            Err(error) => {
                tracing::warn!(source = source_id, %error, "cannot read the directory settings; no session tags");
                DirectorySettings::default()
            }
        };
        let (attributes, skipped) = select_attributes(&settings.session_tags, |name| {
            directory_attribute(user, name)
        });
        log_skipped_tags(source_id, user.user_name.as_str(), &skipped);
        Identity {
            source_id: source_id.to_owned(),
            subject: user.id.clone(),
            user_name: user.user_name.to_string(),
            display_name: if user.display_name.is_empty() {
                user.user_name.to_string()
            } else {
                user.display_name.clone()
            },
            email: user.email.clone(),
            groups,
            attributes,
            claims: Default::default(),
        }
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

    /// The failures one network may have within the window, across all names.
    fn network_budget(&self) -> RateLimit {
        RateLimit {
            name: "signin-network-failures",
            max: self.policy.network_max_failures,
            window: self.policy.window,
        }
    }

    /// Refuses every attempt from a network that spent its failure budget.
    async fn check_network(&self, network: &str, now: DateTime<Utc>) -> Result<(), SignInError> {
        if self.policy.network_max_failures == 0 {
            return Ok(());
        }
        if self
            .network_budget()
            .exceeded(self.cache.as_ref(), network)
            .await?
            .is_some()
        {
            tracing::warn!(%network, "directory sign-in: network over its failure budget");
            return Err(SignInError::Locked {
                until: now + self.policy.window,
            });
        }
        Ok(())
    }

    async fn count_network_failure(&self, network: &str) -> Result<(), SignInError> {
        if self.policy.network_max_failures > 0 {
            self.network_budget()
                .count(self.cache.as_ref(), network)
                .await?;
        }
        Ok(())
    }

    /// Finds the slot the next attempt would take, from `from` on: the lowest free
    /// slot, which past the free failures is open only once the delay since the
    /// previous failure has passed.
    async fn scan(
        &self,
        keys: &LockKeys,
        now: DateTime<Utc>,
        from: u32,
    ) -> Result<NextSlot, SignInError> {
        if self.policy.max_failures == 0 {
            return Ok(NextSlot::Free(u32::MAX));
        }
        let mut previous = now;
        for slot in from..self.policy.slots() {
            match self.cache.get(&keys.failure(slot)).await? {
                Some(stamp) => previous = parse_stamp(&stamp).unwrap_or(now),
                None if slot < self.policy.max_failures => return Ok(NextSlot::Free(slot)),
                None => {
                    let until = previous + self.policy.delay(slot - self.policy.max_failures);
                    return Ok(if now >= until {
                        NextSlot::Free(slot)
                    } else {
                        NextSlot::WaitUntil(until)
                    });
                }
            }
        }
        Ok(NextSlot::WaitUntil(previous + self.policy.lockout))
    }

    /// Claims the slot the next attempt takes. Concurrent claims (from any replica)
    /// race on `put_if_absent`: a loser moves on to the next slot, whose delay then
    /// usually refuses it.
    async fn claim(&self, keys: &LockKeys, now: DateTime<Utc>) -> Result<NextSlot, SignInError> {
        if self.policy.max_failures == 0 {
            return Ok(NextSlot::Free(u32::MAX));
        }
        let stamp = now.to_rfc3339();
        let mut from = 0;
        for _ in 0..=self.policy.slots() {
            match self.scan(keys, now, from).await? {
                NextSlot::Free(slot) => {
                    if self
                        .cache
                        .put_if_absent(&keys.failure(slot), stamp.as_bytes(), self.policy.window)
                        .await?
                    {
                        return Ok(NextSlot::Free(slot));
                    }
                    from = slot;
                }
                wait => return Ok(wait),
            }
        }
        Ok(NextSlot::WaitUntil(now + self.policy.lockout))
    }

    async fn clear_failures(&self, keys: &LockKeys) -> Result<(), SignInError> {
        for slot in 0..self.policy.slots() {
            self.cache.delete(&keys.failure(slot)).await?;
        }
        Ok(())
    }

    /// Verifies on the password-check workers, against the dummy hash when there is
    /// no real one.
    async fn verify(&self, hash: Option<String>, password: &str) -> Result<bool, SignInError> {
        self.hashing.verify(hash, password).await
    }
}

fn parse_stamp(value: &[u8]) -> Option<DateTime<Utc>> {
    std::str::from_utf8(value)
        .ok()
        .and_then(|text| DateTime::parse_from_rfc3339(text).ok())
        .map(|at| at.with_timezone(&Utc))
}

/// The password checks of one server: a fixed set of worker threads (twice the
/// cores) fed by a bounded queue (eight times the cores). Each check holds 19 MiB and
/// a core for tens of milliseconds; with the workers fixed, at most that many run at
/// once, and since the same few threads do every check the allocator reuses their
/// memory instead of leaving 19 MiB behind in the arena of each short-lived blocking
/// thread. A check that finds the queue full, or waits longer than
/// [`HASHING_QUEUE_WAIT`], is refused as [`SignInError::Busy`] without being
/// evaluated: a flood of anonymous sign-ins costs bounded memory and CPU.
struct HashingLimit {
    jobs: std::sync::mpsc::SyncSender<VerifyJob>,
}

struct VerifyJob {
    hash: Option<String>,
    password: String,
    answer: tokio::sync::oneshot::Sender<bool>,
}

/// How long an attempt waits for a free password check before it is refused.
const HASHING_QUEUE_WAIT: Duration = Duration::from_secs(10);

impl HashingLimit {
    fn for_this_machine() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, std::num::NonZero::get);
        let (jobs, queue) = std::sync::mpsc::sync_channel::<VerifyJob>(8 * cores);
        let queue = Arc::new(std::sync::Mutex::new(queue));
        for n in 0..2 * cores {
            let queue = queue.clone();
            // A worker ends when the server's sender is dropped.
            let spawned = std::thread::Builder::new()
                .name(format!("password-check-{n}"))
                .spawn(move || {
                    let mut memory = Vec::new();
                    loop {
                        let next = match queue.lock() {
                            Ok(receiver) => receiver.recv(),
                            Err(_) => return,
                        };
                        let Ok(job) = next else { return };
                        let matches = match &job.hash {
                            Some(hash) => verify_with_memory(&mut memory, hash, &job.password),
                            None => {
                                let _ = verify_with_memory(&mut memory, DUMMY_HASH, &job.password);
                                false
                            }
                        };
                        let _ = job.answer.send(matches);
                    }
                });
            if let Err(error) = spawned {
                tracing::error!(%error, "cannot start a password-check thread");
            }
        }
        Self { jobs }
    }

    /// Whether `password` matches `hash` (the dummy hash when `None`, always false).
    async fn verify(&self, hash: Option<String>, password: &str) -> Result<bool, SignInError> {
        let (answer, answered) = tokio::sync::oneshot::channel();
        let job = VerifyJob {
            hash,
            password: password.to_owned(),
            answer,
        };
        match self.jobs.try_send(job) {
            Ok(()) => {}
            Err(std::sync::mpsc::TrySendError::Full(_)) => return Err(SignInError::Busy),
            Err(std::sync::mpsc::TrySendError::Disconnected(_)) => {
                return Err(SignInError::Unavailable(
                    "the password checks are not running".into(),
                ));
            }
        }
        match tokio::time::timeout(HASHING_QUEUE_WAIT, answered).await {
            Ok(Ok(matches)) => Ok(matches),
            Ok(Err(_)) => Err(SignInError::Unavailable("the password check failed".into())),
            Err(_) => Err(SignInError::Busy),
        }
    }
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
