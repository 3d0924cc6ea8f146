//! Fixed-window limits kept in the cache, shared by replicas: how Rolegate bounds
//! what one client network may do anonymously (sign-in failures, refused federation
//! and SSO-OIDC requests, audit records of refusals).

use std::time::Duration;

use super::{Cache, CacheError};

/// A fixed-window limit: at most `max` events per `window` for one key.
#[derive(Debug, Clone, Copy)]
pub struct RateLimit {
    /// Names the counter (`rate:<name>:<network>`).
    pub name: &'static str,
    pub max: u64,
    pub window: Duration,
}

impl RateLimit {
    fn key(&self, network: &str) -> String {
        format!("rate:{}:{network}", self.name)
    }

    /// Counts one event for `network`; `Some(seconds to wait)` when it is over the
    /// limit. A flood costs one small cache entry per network and window.
    pub async fn take(&self, cache: &dyn Cache, network: &str) -> Result<Option<u64>, CacheError> {
        let count = self.count(cache, network).await?;
        Ok((count > self.max).then(|| self.window.as_secs().max(1)))
    }

    /// Counts one event for `network` and returns how many there were in this window.
    pub async fn count(&self, cache: &dyn Cache, network: &str) -> Result<u64, CacheError> {
        cache.incr(&self.key(network), self.window).await
    }

    /// Whether `network` is over the limit already, without counting an event.
    pub async fn exceeded(
        &self,
        cache: &dyn Cache,
        network: &str,
    ) -> Result<Option<u64>, CacheError> {
        let count = cache
            .get(&self.key(network))
            .await?
            .and_then(|v| String::from_utf8(v).ok())
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0);
        Ok((count >= self.max).then(|| self.window.as_secs().max(1)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::MemoryCache;

    #[tokio::test]
    async fn limits_count_per_network_and_say_how_long_to_wait() {
        let cache = MemoryCache::new(crate::clock::Clock::system());
        let limit = RateLimit {
            name: "test",
            max: 2,
            window: Duration::from_secs(60),
        };
        assert_eq!(limit.take(&cache, "10.0.0.1").await.unwrap(), None);
        assert_eq!(limit.exceeded(&cache, "10.0.0.1").await.unwrap(), None);
        assert_eq!(limit.take(&cache, "10.0.0.1").await.unwrap(), None);
        assert_eq!(limit.exceeded(&cache, "10.0.0.1").await.unwrap(), Some(60));
        assert_eq!(limit.take(&cache, "10.0.0.1").await.unwrap(), Some(60));
        assert_eq!(limit.take(&cache, "10.0.0.2").await.unwrap(), None);
    }
}
