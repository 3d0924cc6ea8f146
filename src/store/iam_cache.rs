//! Short-lived in-process copies of what every SigV4 verification and issuance
//! reads from the store: access keys (by access key id), IAM users' and roles'
//! permissions, roles, managed policy documents and OIDC providers. Without them an
//! AssumeRole costs several statements before its audit row is written.
//!
//! Two bounds keep the copies honest, both read on the injected clock:
//! - **Invalidation across replicas**: the database moves the store-wide IAM
//!   generation ([`Store::iam_generation`]) by trigger in the same transaction as
//!   every change to those rows, whoever writes them (admin API and UI, CLI, seed,
//!   SQL by hand). Before serving a copy, the cache looks at the generation if it
//!   last looked `check_interval` ago or more, and drops every copy when it moved.
//!   So a change committed at time T is seen by every replica's requests from
//!   T + `check_interval` on: a deactivated key or a changed trust policy stops
//!   working within that bound. Why not Redis pub/sub: a message published while a
//!   replica is reconnecting is lost, and then nothing bounds how stale it stays;
//!   the counter is in the database that holds the truth, is moved atomically with
//!   it, and cannot be missed.
//! - **Age**: a copy older than `ttl` is read again whatever the generation says.
//!
//! If the generation cannot be read, every copy is dropped and the error returned:
//! the cache never serves what it cannot vouch for. Failures (no such key, a store
//! error) are not cached.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use super::UserPermissions;
use super::{AccessKeyRecord, OidcProvider, Role, RolePermissions, Store, StoreResult};
use crate::clock::Clock;
use crate::iam::{AccountId, RoleName, UserName};

/// How long copies live and how often the generation is looked at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IamCacheSettings {
    /// The most a copy may age; zero turns caching off (every read goes to the store).
    pub ttl: Duration,
    /// How long a looked-at generation is trusted: the bound within which a change
    /// reaches every replica.
    pub check_interval: Duration,
}

impl Default for IamCacheSettings {
    /// `config/default.toml`'s `database.iam_cache_ttl_seconds` and
    /// `database.iam_cache_check_ms`.
    fn default() -> Self {
        Self {
            ttl: Duration::from_secs(30),
            check_interval: Duration::from_millis(1_000),
        }
    }
}

/// One kind of copy: values by key, each stamped with when it was read and the
/// cache epoch it was read under (copies of an older epoch are dead).
struct Copies<V> {
    entries: Mutex<HashMap<String, Copy<V>>>,
}

struct Copy<V> {
    value: Arc<V>,
    read_at_ms: i64,
    epoch: u64,
}

impl<V> Default for Copies<V> {
    fn default() -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
        }
    }
}

impl<V> Copies<V> {
    /// Copies kept per kind; past it, dead and aged copies go, then all.
    const CAPACITY: usize = 10_000;

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Copy<V>>> {
        match self.entries.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    fn get(&self, key: &str, now_ms: i64, ttl_ms: i64, epoch: u64) -> Option<Arc<V>> {
        self.lock()
            .get(key)
            .filter(|c| c.epoch == epoch && live(c.read_at_ms, now_ms, ttl_ms))
            .map(|c| c.value.clone())
    }

    fn put(&self, key: String, copy: Copy<V>, now_ms: i64, ttl_ms: i64) {
        let mut entries = self.lock();
        if entries.len() >= Self::CAPACITY && !entries.contains_key(&key) {
            let epoch = copy.epoch;
            entries.retain(|_, c| c.epoch == epoch && live(c.read_at_ms, now_ms, ttl_ms));
            if entries.len() >= Self::CAPACITY {
                entries.clear();
            }
        }
        entries.insert(key, copy);
    }

    fn len(&self) -> usize {
        self.lock().len()
    }

    fn clear(&self) {
        self.lock().clear();
    }
}

fn live(read_at_ms: i64, now_ms: i64, ttl_ms: i64) -> bool {
    // A clock that went back counts as aged: read again.
    (0..ttl_ms).contains(&now_ms.saturating_sub(read_at_ms))
}

/// The store's hot reads, cached (see the module documentation).
pub struct IamCache {
    store: Arc<dyn Store>,
    clock: Clock,
    ttl_ms: AtomicI64,
    check_ms: AtomicI64,
    /// Copies are valid only under the epoch they were read in; a new generation
    /// (or a failure to read it) moves the epoch, which kills every copy at once.
    epoch: AtomicU64,
    /// When the generation was last looked at (ms since the epoch, taken before the
    /// query), `i64::MIN` before the first look.
    checked_at_ms: AtomicI64,
    /// The generation last seen; the lock makes one request look while the others
    /// wait for its answer.
    generation: tokio::sync::Mutex<Option<i64>>,
    access_keys: Copies<AccessKeyRecord>,
    user_permissions: Copies<UserPermissions>,
    role_permissions: Copies<RolePermissions>,
    roles: Copies<Role>,
    policy_documents: Copies<String>,
    oidc_providers: Copies<OidcProvider>,
}

impl IamCache {
    pub fn new(store: Arc<dyn Store>, settings: IamCacheSettings) -> Self {
        let cache = Self {
            clock: store.clock().clone(),
            store,
            ttl_ms: AtomicI64::new(0),
            check_ms: AtomicI64::new(0),
            epoch: AtomicU64::new(0),
            checked_at_ms: AtomicI64::new(i64::MIN),
            generation: tokio::sync::Mutex::new(None),
            access_keys: Copies::default(),
            user_permissions: Copies::default(),
            role_permissions: Copies::default(),
            roles: Copies::default(),
            policy_documents: Copies::default(),
            oidc_providers: Copies::default(),
        };
        cache.configure(settings);
        cache
    }

    /// Applies new settings; every copy is dropped.
    pub fn configure(&self, settings: IamCacheSettings) {
        let ms = |d: Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
        self.ttl_ms.store(ms(settings.ttl), Ordering::Relaxed);
        self.check_ms
            .store(ms(settings.check_interval), Ordering::Relaxed);
        self.invalidate();
        self.access_keys.clear();
        self.user_permissions.clear();
        self.role_permissions.clear();
        self.roles.clear();
        self.policy_documents.clear();
        self.oidc_providers.clear();
    }

    pub fn settings(&self) -> IamCacheSettings {
        let duration = |ms: i64| Duration::from_millis(u64::try_from(ms).unwrap_or(0));
        IamCacheSettings {
            ttl: duration(self.ttl_ms.load(Ordering::Relaxed)),
            check_interval: duration(self.check_ms.load(Ordering::Relaxed)),
        }
    }

    /// Drops every copy (they are read again on next use).
    pub fn invalidate(&self) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
    }

    /// How many copies are held (dead ones included until overwritten): for tests
    /// and metrics.
    pub fn held(&self) -> usize {
        self.access_keys.len()
            + self.user_permissions.len()
            + self.role_permissions.len()
            + self.roles.len()
            + self.policy_documents.len()
            + self.oidc_providers.len()
    }

    pub async fn get_access_key(&self, access_key_id: &str) -> StoreResult<Arc<AccessKeyRecord>> {
        self.cached(&self.access_keys, access_key_id.to_owned(), || {
            self.store.get_access_key(access_key_id)
        })
        .await
    }

    pub async fn user_permissions(
        &self,
        account: &AccountId,
        name: &UserName,
    ) -> StoreResult<Arc<UserPermissions>> {
        self.cached(&self.user_permissions, format!("{account}/{name}"), || {
            self.store.user_permissions(account, name)
        })
        .await
    }

    pub async fn role_permissions(
        &self,
        account: &AccountId,
        name: &RoleName,
    ) -> StoreResult<Arc<RolePermissions>> {
        self.cached(&self.role_permissions, format!("{account}/{name}"), || {
            self.store.role_permissions(account, name)
        })
        .await
    }

    pub async fn get_role(&self, account: &AccountId, name: &RoleName) -> StoreResult<Arc<Role>> {
        self.cached(&self.roles, format!("{account}/{name}"), || {
            self.store.get_role(account, name)
        })
        .await
    }

    /// The default version's document of the managed policy `arn`.
    pub async fn policy_document(&self, arn: &str) -> StoreResult<Arc<String>> {
        self.cached(&self.policy_documents, arn.to_owned(), || {
            self.store.policy_document(arn)
        })
        .await
    }

    pub async fn find_oidc_provider(
        &self,
        account: &AccountId,
        url: &str,
    ) -> StoreResult<Arc<OidcProvider>> {
        self.cached(&self.oidc_providers, format!("{account} {url}"), || {
            self.store.find_oidc_provider(account, url)
        })
        .await
    }

    async fn cached<V, F, Fut>(
        &self,
        copies: &Copies<V>,
        key: String,
        read: F,
    ) -> StoreResult<Arc<V>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = StoreResult<V>>,
    {
        let ttl_ms = self.ttl_ms.load(Ordering::Relaxed);
        if ttl_ms <= 0 {
            return read().await.map(Arc::new);
        }
        self.check_generation().await?;
        let now_ms = self.clock.timestamp_millis();
        let epoch = self.epoch.load(Ordering::Acquire);
        if let Some(value) = copies.get(&key, now_ms, ttl_ms, epoch) {
            return Ok(value);
        }
        let value = Arc::new(read().await?);
        // Kept only if nothing moved the epoch while it was read: a read that raced
        // with an invalidation may hold what the invalidation was about.
        if self.epoch.load(Ordering::Acquire) == epoch {
            copies.put(
                key,
                Copy {
                    value: value.clone(),
                    read_at_ms: now_ms,
                    epoch,
                },
                now_ms,
                ttl_ms,
            );
        }
        Ok(value)
    }

    /// Looks at the generation when the last look is `check_interval` old or more.
    async fn check_generation(&self) -> StoreResult<()> {
        let due = |cache: &Self| {
            let now_ms = cache.clock.timestamp_millis();
            let last = cache.checked_at_ms.load(Ordering::Acquire);
            (now_ms.saturating_sub(last) >= cache.check_ms.load(Ordering::Relaxed) || now_ms < last)
                .then_some(now_ms)
        };
        if due(self).is_none() {
            return Ok(());
        }
        let mut seen = self.generation.lock().await;
        // Another request may have looked while this one waited.
        let Some(now_ms) = due(self) else {
            return Ok(());
        };
        match self.store.iam_generation().await {
            Ok(generation) => {
                if *seen != Some(generation) {
                    self.invalidate();
                    *seen = Some(generation);
                }
                self.checked_at_ms.store(now_ms, Ordering::Release);
                Ok(())
            }
            Err(error) => {
                self.invalidate();
                *seen = None;
                Err(error)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_age_out_and_die_with_their_epoch() {
        let copies: Copies<u32> = Copies::default();
        let copy = |epoch| Copy {
            value: Arc::new(7),
            read_at_ms: 1_000,
            epoch,
        };
        copies.put("k".into(), copy(1), 1_000, 500);
        assert_eq!(copies.get("k", 1_000, 500, 1).as_deref(), Some(&7));
        assert_eq!(copies.get("k", 1_499, 500, 1).as_deref(), Some(&7));
        // Aged: at the TTL it is read again.
        assert_eq!(copies.get("k", 1_500, 500, 1), None);
        // A clock that went back does not make it young.
        assert_eq!(copies.get("k", 999, 500, 1), None);
        // Another epoch: dead.
        assert_eq!(copies.get("k", 1_000, 500, 2), None);
        assert_eq!(copies.get("other", 1_000, 500, 1), None);
    }

    #[test]
    fn copies_stay_bounded() {
        let copies: Copies<usize> = Copies::default();
        let cap = Copies::<usize>::CAPACITY;
        for i in 0..cap {
            copies.put(
                format!("k{i}"),
                Copy {
                    value: Arc::new(i),
                    read_at_ms: 0,
                    epoch: 1,
                },
                0,
                1_000,
            );
        }
        assert_eq!(copies.len(), cap);
        // Past the bound, copies of an older epoch go first ...
        copies.put(
            "new".into(),
            Copy {
                value: Arc::new(0),
                read_at_ms: 0,
                epoch: 2,
            },
            0,
            1_000,
        );
        assert_eq!(copies.len(), 1);
        assert_eq!(copies.get("new", 0, 1_000, 2).as_deref(), Some(&0));
    }
}
