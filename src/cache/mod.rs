//! Ephemeral state behind one trait: short-lived values with a time to live (portal
//! sessions, SSO tokens, device codes, lock-out counters, replay caches).
//! The in-memory implementation is the default for one process; a shared store
//! (Redis) serves several replicas.

pub mod rate_limit;
pub mod redis_cache;

pub use rate_limit::RateLimit;

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;

use crate::clock::Clock;

#[derive(Debug, thiserror::Error)]
#[error("cache unavailable: {0}")]
pub struct CacheError(pub String);

#[async_trait]
pub trait Cache: Send + Sync + 'static {
    /// Stores `value` under `key` for `ttl`, replacing any previous value.
    async fn put(&self, key: &str, value: &[u8], ttl: Duration) -> Result<(), CacheError>;
    /// The live value under `key`, if any.
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, CacheError>;
    /// Stores only when `key` is absent (or expired); true when this call stored it.
    /// Replay caches use it: the first presenter wins.
    async fn put_if_absent(
        &self,
        key: &str,
        value: &[u8],
        ttl: Duration,
    ) -> Result<bool, CacheError>;
    async fn delete(&self, key: &str) -> Result<(), CacheError>;
    /// Adds one to the counter under `key` and returns the new count. An absent (or
    /// expired) counter starts at 1 and lives for `ttl` from then on; later increments
    /// keep that expiry, so the counter is a fixed window (rate limits use it). The
    /// value is the count in ASCII decimal, so [`Cache::get`] reads it too.
    async fn incr(&self, key: &str, ttl: Duration) -> Result<u64, CacheError>;
    /// Adds `member` to the set under `key` (an index: a person's sessions, say) and
    /// keeps the set alive for at least `ttl` from now (never shortens it). Sets and
    /// values use separate keys: never put both under one key.
    async fn set_add(&self, key: &str, member: &str, ttl: Duration) -> Result<(), CacheError>;
    /// The members of the set under `key` (none when absent or expired), in no order.
    async fn set_members(&self, key: &str) -> Result<Vec<String>, CacheError>;
    /// Removes `member` from the set under `key`; an empty set is gone.
    async fn set_remove(&self, key: &str, member: &str) -> Result<(), CacheError>;
    /// Whether the cache lives outside this process (and so can be down): `false`
    /// for the in-memory cache, which readiness reports as `none`.
    fn is_shared(&self) -> bool {
        false
    }
    /// Where the cache is, for messages (a URL without its password).
    fn location(&self) -> &str {
        "in-process"
    }
    /// Readiness: the cache answers a round trip (an error names where and why).
    async fn ping(&self) -> Result<(), CacheError> {
        Ok(())
    }
}

/// Hex SHA-256 of a bearer value (a session id, a code, a token): what the cache
/// holds instead of the value, so whoever can read the cache cannot use what it finds
/// there.
pub fn digest(value: &str) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(value.as_bytes()))
}

/// The cache key `prefix:`[`digest`]`(value)`.
pub fn hashed_key(prefix: &str, value: &str) -> String {
    format!("{prefix}:{}", digest(value))
}

/// A value and when it expires (milliseconds since the epoch, on the cache's clock).
type Entries = HashMap<String, (Vec<u8>, i64)>;
/// A set and when it expires.
type Sets = HashMap<String, (BTreeSet<String>, i64)>;

/// One process's cache. Expired entries are dropped on access and swept when the map
/// grows, so memory stays bounded by what is live.
pub struct MemoryCache {
    entries: Mutex<Entries>,
    sets: Mutex<Sets>,
    clock: Clock,
}

impl MemoryCache {
    const SWEEP_AT: usize = 10_000;

    pub fn new(clock: Clock) -> Self {
        Self {
            entries: Mutex::default(),
            sets: Mutex::default(),
            clock,
        }
    }

    fn now(&self) -> i64 {
        self.clock.timestamp_millis()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Entries> {
        match self.entries.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    fn lock_sets(&self) -> std::sync::MutexGuard<'_, Sets> {
        match self.sets.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    fn insert(entries: &mut Entries, now: i64, key: &str, value: &[u8], ttl: Duration) {
        if entries.len() >= Self::SWEEP_AT {
            entries.retain(|_, (_, expires)| *expires > now);
        }
        let ttl = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
        entries.insert(key.to_owned(), (value.to_vec(), now.saturating_add(ttl)));
    }
}

#[async_trait]
impl Cache for MemoryCache {
    async fn put(&self, key: &str, value: &[u8], ttl: Duration) -> Result<(), CacheError> {
        Self::insert(&mut self.lock(), self.now(), key, value, ttl);
        Ok(())
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, CacheError> {
        let now = self.now();
        let mut entries = self.lock();
        match entries.get(key) {
            Some((value, expires)) if *expires > now => Ok(Some(value.clone())),
            Some(_) => {
                entries.remove(key);
                Ok(None)
            }
            None => Ok(None),
        }
    }

    async fn put_if_absent(
        &self,
        key: &str,
        value: &[u8],
        ttl: Duration,
    ) -> Result<bool, CacheError> {
        let now = self.now();
        let mut entries = self.lock();
        if entries.get(key).is_some_and(|(_, expires)| *expires > now) {
            return Ok(false);
        }
        Self::insert(&mut entries, now, key, value, ttl);
        Ok(true)
    }

    async fn delete(&self, key: &str) -> Result<(), CacheError> {
        self.lock().remove(key);
        Ok(())
    }

    async fn incr(&self, key: &str, ttl: Duration) -> Result<u64, CacheError> {
        let now = self.now();
        let mut entries = self.lock();
        if let Some((value, expires)) = entries.get_mut(key)
            && *expires > now
        {
            let count = std::str::from_utf8(value)
                .ok()
                .and_then(|text| text.parse::<u64>().ok())
                .unwrap_or(0)
                .saturating_add(1);
            *value = count.to_string().into_bytes();
            return Ok(count);
        }
        Self::insert(&mut entries, now, key, b"1", ttl);
        Ok(1)
    }

    async fn set_add(&self, key: &str, member: &str, ttl: Duration) -> Result<(), CacheError> {
        let now = self.now();
        let until = now.saturating_add(i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX));
        let mut sets = self.lock_sets();
        if sets.len() >= Self::SWEEP_AT {
            sets.retain(|_, (_, expires)| *expires > now);
        }
        let (members, expires) = sets
            .entry(key.to_owned())
            .or_insert_with(|| (BTreeSet::new(), until));
        if *expires <= now {
            members.clear();
        }
        *expires = (*expires).max(until);
        members.insert(member.to_owned());
        Ok(())
    }

    async fn set_members(&self, key: &str) -> Result<Vec<String>, CacheError> {
        let now = self.now();
        let mut sets = self.lock_sets();
        match sets.get(key) {
            Some((members, expires)) if *expires > now => Ok(members.iter().cloned().collect()),
            Some(_) => {
                sets.remove(key);
                Ok(Vec::new())
            }
            None => Ok(Vec::new()),
        }
    }

    async fn set_remove(&self, key: &str, member: &str) -> Result<(), CacheError> {
        let mut sets = self.lock_sets();
        if let Some((members, _)) = sets.get_mut(key) {
            members.remove(member);
            if members.is_empty() {
                sets.remove(key);
            }
        }
        Ok(())
    }
}

/// A cache whose failed calls are counted in the metrics (`rolegate_cache_errors_total`).
pub struct Observed {
    inner: Arc<dyn Cache>,
    metrics: Arc<crate::metrics::Metrics>,
}

impl Observed {
    pub fn new(inner: Arc<dyn Cache>, metrics: Arc<crate::metrics::Metrics>) -> Self {
        Self { inner, metrics }
    }

    fn counted<T>(
        &self,
        operation: &'static str,
        result: Result<T, CacheError>,
    ) -> Result<T, CacheError> {
        if result.is_err() {
            self.metrics.cache_error(operation);
        }
        result
    }
}

#[async_trait]
impl Cache for Observed {
    async fn put(&self, key: &str, value: &[u8], ttl: Duration) -> Result<(), CacheError> {
        self.counted("put", self.inner.put(key, value, ttl).await)
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, CacheError> {
        self.counted("get", self.inner.get(key).await)
    }

    async fn put_if_absent(
        &self,
        key: &str,
        value: &[u8],
        ttl: Duration,
    ) -> Result<bool, CacheError> {
        self.counted(
            "put_if_absent",
            self.inner.put_if_absent(key, value, ttl).await,
        )
    }

    async fn delete(&self, key: &str) -> Result<(), CacheError> {
        self.counted("delete", self.inner.delete(key).await)
    }

    async fn incr(&self, key: &str, ttl: Duration) -> Result<u64, CacheError> {
        self.counted("incr", self.inner.incr(key, ttl).await)
    }

    async fn set_add(&self, key: &str, member: &str, ttl: Duration) -> Result<(), CacheError> {
        self.counted("set_add", self.inner.set_add(key, member, ttl).await)
    }

    async fn set_members(&self, key: &str) -> Result<Vec<String>, CacheError> {
        self.counted("set_members", self.inner.set_members(key).await)
    }

    async fn set_remove(&self, key: &str, member: &str) -> Result<(), CacheError> {
        self.counted("set_remove", self.inner.set_remove(key, member).await)
    }

    fn is_shared(&self) -> bool {
        self.inner.is_shared()
    }

    fn location(&self) -> &str {
        self.inner.location()
    }

    async fn ping(&self) -> Result<(), CacheError> {
        self.counted("ping", self.inner.ping().await)
    }
}

/// How long [`open_cache`] waits for Redis to answer at start-up (and each command).
pub const REDIS_TIMEOUT: Duration = Duration::from_secs(5);

/// Opens the cache the configuration names: none means this process's
/// [`MemoryCache`] (one replica, `dev`), a `redis://` URL a [`redis_cache::RedisCache`]
/// shared by every replica that uses the same URL and `prefix`.
pub async fn open_cache(
    url: Option<&str>,
    prefix: &str,
    clock: &Clock,
) -> Result<Arc<dyn Cache>, CacheError> {
    match url.map(str::trim).filter(|url| !url.is_empty()) {
        None => Ok(Arc::new(MemoryCache::new(clock.clone()))),
        Some(url) if url.starts_with("redis://") => Ok(Arc::new(
            redis_cache::RedisCache::connect(url, prefix, REDIS_TIMEOUT).await?,
        )),
        Some(url) => Err(CacheError(format!(
            "unsupported cache URL {}: use redis://host:port (or no URL for the in-memory cache)",
            crate::secrets::redact_url(url)
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn counters_count_within_their_window_then_start_again() {
        let (clock, hand) = Clock::adjustable();
        let cache = MemoryCache::new(clock);
        let window = Duration::from_secs(60);
        assert_eq!(cache.incr("c", window).await.unwrap(), 1);
        assert_eq!(cache.incr("c", window).await.unwrap(), 2);
        assert_eq!(cache.get("c").await.unwrap().as_deref(), Some(&b"2"[..]));
        assert_eq!(cache.incr("other", window).await.unwrap(), 1);
        hand.advance(Duration::from_secs(61));
        assert_eq!(cache.incr("c", window).await.unwrap(), 1, "a new window");
    }
}
