//! Ephemeral state behind one trait: short-lived values with a time to live (denied
//! access keys today; web sessions, device codes and replay caches as they arrive).
//! The in-memory implementation is the default for one process; a shared store
//! (Redis) serves several replicas.

pub mod rate_limit;
pub mod redis_cache;

pub use rate_limit::RateLimit;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;

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

/// One process's cache. Expired entries are dropped on access and swept when the map
/// grows, so memory stays bounded by what is live.
#[derive(Default)]
pub struct MemoryCache {
    entries: Mutex<HashMap<String, (Vec<u8>, Instant)>>,
}

impl MemoryCache {
    const SWEEP_AT: usize = 10_000;

    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Vec<u8>, Instant)>> {
        match self.entries.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    fn insert(
        entries: &mut HashMap<String, (Vec<u8>, Instant)>,
        key: &str,
        value: &[u8],
        ttl: Duration,
    ) {
        let now = Instant::now();
        if entries.len() >= Self::SWEEP_AT {
            entries.retain(|_, (_, expires)| *expires > now);
        }
        entries.insert(key.to_owned(), (value.to_vec(), now + ttl));
    }
}

#[async_trait]
impl Cache for MemoryCache {
    async fn put(&self, key: &str, value: &[u8], ttl: Duration) -> Result<(), CacheError> {
        Self::insert(&mut self.lock(), key, value, ttl);
        Ok(())
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, CacheError> {
        let mut entries = self.lock();
        match entries.get(key) {
            Some((value, expires)) if *expires > Instant::now() => Ok(Some(value.clone())),
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
        let mut entries = self.lock();
        if entries
            .get(key)
            .is_some_and(|(_, expires)| *expires > Instant::now())
        {
            return Ok(false);
        }
        Self::insert(&mut entries, key, value, ttl);
        Ok(true)
    }

    async fn delete(&self, key: &str) -> Result<(), CacheError> {
        self.lock().remove(key);
        Ok(())
    }

    async fn incr(&self, key: &str, ttl: Duration) -> Result<u64, CacheError> {
        let mut entries = self.lock();
        let now = Instant::now();
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
        Self::insert(&mut entries, key, b"1", ttl);
        Ok(1)
    }
}

/// How long [`open_cache`] waits for Redis to answer at start-up (and each command).
pub const REDIS_TIMEOUT: Duration = Duration::from_secs(5);

/// Opens the cache the configuration names: none means this process's
/// [`MemoryCache`] (one replica, `dev`), a `redis://` URL a [`redis_cache::RedisCache`]
/// shared by every replica that uses the same URL and `prefix`.
pub async fn open_cache(url: Option<&str>, prefix: &str) -> Result<Arc<dyn Cache>, CacheError> {
    match url.map(str::trim).filter(|url| !url.is_empty()) {
        None => Ok(Arc::new(MemoryCache::new())),
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
        let cache = MemoryCache::new();
        let window = Duration::from_millis(200);
        assert_eq!(cache.incr("c", window).await.unwrap(), 1);
        assert_eq!(cache.incr("c", window).await.unwrap(), 2);
        assert_eq!(cache.get("c").await.unwrap().as_deref(), Some(&b"2"[..]));
        assert_eq!(cache.incr("other", window).await.unwrap(), 1);
        tokio::time::sleep(Duration::from_millis(250)).await;
        assert_eq!(cache.incr("c", window).await.unwrap(), 1, "a new window");
    }
}
