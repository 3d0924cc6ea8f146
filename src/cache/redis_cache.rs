//! The shared cache for several replicas: Redis through a `ConnectionManager`, which
//! multiplexes one connection and reconnects on its own. Every key lives under a
//! per-deployment prefix (`<prefix>:<key>`), so several deployments (or tests) can
//! share one Redis without seeing each other's state, and every value has a TTL.

use std::time::Duration;

use async_trait::async_trait;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{AsyncConnectionConfig, Client};

use super::{Cache, CacheError};
use crate::secrets::redact_url;

/// Redis behind the [`Cache`] trait.
#[derive(Clone)]
pub struct RedisCache {
    manager: ConnectionManager,
    /// For readiness: a direct connection past the manager says why it fails.
    client: Client,
    prefix: String,
    /// The URL with any password hidden, for messages.
    url: String,
}

impl std::fmt::Debug for RedisCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisCache")
            .field("url", &self.url)
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

/// The longest one command may take once connected (a healthy Redis answers in
/// milliseconds; a hung one must not hold requests for the connect timeout).
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(1);

impl RedisCache {
    /// Connects to the Redis at `url` (`redis://[user:password@]host[:port][/db]`) and
    /// checks that it answers a `PING` within `timeout`, so a wrong address fails at
    /// start-up with a message naming it (password hidden) rather than at the first
    /// request. Each later command is bounded by [`COMMAND_TIMEOUT`] (or `timeout`,
    /// if shorter): a hung Redis costs a request about a second, not `timeout`.
    pub async fn connect(url: &str, prefix: &str, timeout: Duration) -> Result<Self, CacheError> {
        let shown = redact_url(url);
        if prefix.is_empty() || prefix.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(CacheError(format!(
                "the Redis key prefix {prefix:?} must be non-empty and contain no whitespace"
            )));
        }
        let client = Client::open(url)
            .map_err(|e| CacheError(format!("the Redis URL {shown} is not valid: {e}")))?;
        let fail = |what: &str, error: &dyn std::fmt::Display| {
            CacheError(format!("Redis at {shown} is unreachable ({what}): {error}"))
        };

        // One direct attempt first: the manager retries with back-off, which would turn
        // "connection refused" into a slow, vague timeout.
        let probe_config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout));
        let probe = async {
            let mut conn = client
                .get_multiplexed_async_connection_with_config(&probe_config)
                .await
                .map_err(|e| fail("connect", &e))?;
            redis::cmd("PING")
                .query_async::<String>(&mut conn)
                .await
                .map_err(|e| fail("PING", &e))
        };
        match tokio::time::timeout(timeout, probe).await {
            Ok(Ok(_)) => {}
            Ok(Err(error)) => return Err(error),
            Err(_) => return Err(fail("connect", &format!("no answer within {timeout:?}"))),
        }

        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout.min(COMMAND_TIMEOUT)))
            .set_number_of_retries(3)
            .set_max_delay(Duration::from_secs(1));
        let manager = match tokio::time::timeout(
            timeout,
            ConnectionManager::new_with_config(client.clone(), config),
        )
        .await
        {
            Ok(Ok(manager)) => manager,
            Ok(Err(error)) => return Err(fail("connect", &error)),
            Err(_) => return Err(fail("connect", &format!("no answer within {timeout:?}"))),
        };
        Ok(Self {
            manager,
            client,
            prefix: prefix.to_owned(),
            url: shown,
        })
    }

    /// The prefix every key of this cache lives under (without the `:`).
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    fn key(&self, key: &str) -> String {
        format!("{}:{key}", self.prefix)
    }

    fn error(&self, op: &str, error: redis::RedisError) -> CacheError {
        CacheError(format!("Redis {op} at {} failed: {error}", self.url))
    }
}

/// Redis's `PX` takes whole milliseconds and refuses 0: round up.
fn millis(ttl: Duration) -> u64 {
    let ms = ttl.as_millis() + u128::from(!ttl.subsec_nanos().is_multiple_of(1_000_000));
    u64::try_from(ms).unwrap_or(u64::MAX).max(1)
}

#[async_trait]
impl Cache for RedisCache {
    async fn put(&self, key: &str, value: &[u8], ttl: Duration) -> Result<(), CacheError> {
        let mut conn = self.manager.clone();
        redis::cmd("SET")
            .arg(self.key(key))
            .arg(value)
            .arg("PX")
            .arg(millis(ttl))
            .query_async::<()>(&mut conn)
            .await
            .map_err(|e| self.error("SET", e))
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, CacheError> {
        let mut conn = self.manager.clone();
        redis::cmd("GET")
            .arg(self.key(key))
            .query_async::<Option<Vec<u8>>>(&mut conn)
            .await
            .map_err(|e| self.error("GET", e))
    }

    async fn put_if_absent(
        &self,
        key: &str,
        value: &[u8],
        ttl: Duration,
    ) -> Result<bool, CacheError> {
        let mut conn = self.manager.clone();
        // `SET NX` answers OK when it stored the value and nil when the key exists.
        let stored: Option<String> = redis::cmd("SET")
            .arg(self.key(key))
            .arg(value)
            .arg("NX")
            .arg("PX")
            .arg(millis(ttl))
            .query_async(&mut conn)
            .await
            .map_err(|e| self.error("SET NX", e))?;
        Ok(stored.is_some())
    }

    async fn delete(&self, key: &str) -> Result<(), CacheError> {
        let mut conn = self.manager.clone();
        redis::cmd("DEL")
            .arg(self.key(key))
            .query_async::<()>(&mut conn)
            .await
            .map_err(|e| self.error("DEL", e))
    }

    async fn incr(&self, key: &str, ttl: Duration) -> Result<u64, CacheError> {
        let mut conn = self.manager.clone();
        let key = self.key(key);
        // One transaction: the first `SET NX` gives a new counter its expiry, `INCR`
        // keeps it. Together, so that no counter is ever left without a TTL.
        let (_, count): (Option<String>, u64) = redis::pipe()
            .atomic()
            .cmd("SET")
            .arg(&key)
            .arg(0)
            .arg("NX")
            .arg("PX")
            .arg(millis(ttl))
            .cmd("INCR")
            .arg(&key)
            .query_async(&mut conn)
            .await
            .map_err(|e| self.error("INCR", e))?;
        Ok(count)
    }

    async fn set_add(&self, key: &str, member: &str, ttl: Duration) -> Result<(), CacheError> {
        let mut conn = self.manager.clone();
        let key = self.key(key);
        // `NX` gives a new set its expiry, `GT` lengthens an existing one: never
        // shortened, never left without a TTL.
        redis::pipe()
            .atomic()
            .cmd("SADD")
            .arg(&key)
            .arg(member)
            .ignore()
            .cmd("PEXPIRE")
            .arg(&key)
            .arg(millis(ttl))
            .arg("NX")
            .ignore()
            .cmd("PEXPIRE")
            .arg(&key)
            .arg(millis(ttl))
            .arg("GT")
            .ignore()
            .query_async::<()>(&mut conn)
            .await
            .map_err(|e| self.error("SADD", e))
    }

    async fn set_members(&self, key: &str) -> Result<Vec<String>, CacheError> {
        let mut conn = self.manager.clone();
        redis::cmd("SMEMBERS")
            .arg(self.key(key))
            .query_async::<Vec<String>>(&mut conn)
            .await
            .map_err(|e| self.error("SMEMBERS", e))
    }

    async fn set_remove(&self, key: &str, member: &str) -> Result<(), CacheError> {
        let mut conn = self.manager.clone();
        redis::cmd("SREM")
            .arg(self.key(key))
            .arg(member)
            .query_async::<()>(&mut conn)
            .await
            .map_err(|e| self.error("SREM", e))
    }

    fn is_shared(&self) -> bool {
        true
    }

    fn location(&self) -> &str {
        &self.url
    }

    /// A PING through the shared connection; when that does not answer in time
    /// (the manager may be waiting to reconnect), one direct connection says why
    /// (700 ms in all, under readiness's 800 ms):
    /// refused, or accepted and silent (a hung server).
    async fn ping(&self) -> Result<(), CacheError> {
        const THROUGH_MANAGER: Duration = Duration::from_millis(400);
        const DIRECT: Duration = Duration::from_millis(150);
        let mut conn = self.manager.clone();
        let command = redis::cmd("PING");
        let ping = command.query_async::<String>(&mut conn);
        match tokio::time::timeout(THROUGH_MANAGER, ping).await {
            Ok(Ok(_)) => return Ok(()),
            Ok(Err(error)) => return Err(self.error("PING", error)),
            Err(_) => {}
        }
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(DIRECT))
            .set_response_timeout(Some(DIRECT));
        let direct = async {
            let mut conn = self
                .client
                .get_multiplexed_async_connection_with_config(&config)
                .await?;
            redis::cmd("PING").query_async::<String>(&mut conn).await
        };
        Err(match tokio::time::timeout(DIRECT * 2, direct).await {
            Ok(Ok(_)) => CacheError(format!(
                "Redis at {} answers a new connection but not the shared one within {THROUGH_MANAGER:?}",
                self.url
            )),
            Ok(Err(error)) if error.is_timeout() => CacheError(format!(
                "Redis at {}: no answer within {DIRECT:?} (it accepts connections but does not respond)",
                self.url
            )),
            Ok(Err(error)) => CacheError(format!("Redis at {} is unreachable: {error}", self.url)),
            Err(_) => CacheError(format!(
                "Redis at {}: no answer within {:?}",
                self.url,
                THROUGH_MANAGER + DIRECT * 2
            )),
        })
    }
}
