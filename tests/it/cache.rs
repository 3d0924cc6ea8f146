//! The cache layer's behaviour: one suite run against the in-memory cache and against
//! the real Redis on 127.0.0.1:6379 (a hard requirement: these tests fail, never skip,
//! when it is down), plus what only a shared cache has: key prefixes and replicas.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rolegate::cache::redis_cache::RedisCache;
use rolegate::cache::{Cache, open_cache};
use rolegate::clock::Clock;

/// The Redis the tests use.
pub fn redis_url() -> String {
    std::env::var("ROLEGATE_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

/// A key prefix no other test (or run) uses.
pub fn unique_prefix() -> String {
    let n: u64 = rand::random();
    format!("rolegate-test-{}-{n:016x}", std::process::id())
}

/// A Redis cache under `prefix`; panics with a clear message when Redis is down.
pub async fn redis_cache(prefix: &str) -> RedisCache {
    let url = redis_url();
    RedisCache::connect(&url, prefix, Duration::from_secs(5))
        .await
        .unwrap_or_else(|e| {
            panic!("Redis at {url} is required for these tests (set ROLEGATE_TEST_REDIS_URL): {e}")
        })
}

async fn raw_connection() -> redis::aio::MultiplexedConnection {
    redis::Client::open(redis_url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

/// Every key under `prefix` (the prefix has no glob characters).
async fn keys_under(prefix: &str) -> Vec<String> {
    let mut conn = raw_connection().await;
    let mut cursor = 0u64;
    let mut keys = Vec::new();
    loop {
        let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(format!("{prefix}:*"))
            .arg("COUNT")
            .arg(1000)
            .query_async(&mut conn)
            .await
            .unwrap();
        keys.extend(batch);
        if next == 0 {
            return keys;
        }
        cursor = next;
    }
}

/// Deletes every key under `prefix` and checks that none is left.
pub async fn remove_prefix(prefix: &str) {
    let keys = keys_under(prefix).await;
    if !keys.is_empty() {
        let mut conn = raw_connection().await;
        redis::cmd("DEL")
            .arg(&keys)
            .query_async::<()>(&mut conn)
            .await
            .unwrap();
    }
    assert!(keys_under(prefix).await.is_empty());
}

/// How a cache test lets time pass: the memory cache reads the application's clock,
/// which the test moves; Redis expires keys on its own clock, so for it the wait is
/// real (and short).
pub enum Elapse {
    Clock(rolegate::clock::ClockHand),
    Real,
}

impl Elapse {
    pub async fn by(&self, duration: Duration) {
        match self {
            Elapse::Clock(hand) => hand.advance(duration),
            Elapse::Real => tokio::time::sleep(duration).await,
        }
    }
}

/// Runs a behaviour test once per implementation: `both_caches!(name)` expects
/// `async fn name(cache: Arc<dyn Cache>, elapse: Elapse)` and makes `name::memory`
/// and `name::redis`.
macro_rules! both_caches {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn memory() {
                    let (clock, hand) = rolegate::clock::Clock::adjustable();
                    let cache = rolegate::cache::MemoryCache::new(clock);
                    super::$name(std::sync::Arc::new(cache), super::Elapse::Clock(hand)).await
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn redis() {
                    let prefix = super::unique_prefix();
                    let cache = super::redis_cache(&prefix).await;
                    super::$name(std::sync::Arc::new(cache), super::Elapse::Real).await;
                    super::remove_prefix(&prefix).await;
                }
            }
        )*
    };
}

const MINUTE: Duration = Duration::from_secs(60);

async fn values_expire_after_their_ttl(cache: Arc<dyn Cache>, elapse: Elapse) {
    cache
        .put("short", b"v", Duration::from_millis(300))
        .await
        .unwrap();
    cache.put("long", b"w", MINUTE).await.unwrap();
    assert_eq!(
        cache.get("short").await.unwrap().as_deref(),
        Some(&b"v"[..])
    );
    assert!(
        !cache.put_if_absent("short", b"x", MINUTE).await.unwrap(),
        "a live key is present"
    );
    elapse.by(Duration::from_millis(450)).await;
    assert_eq!(cache.get("short").await.unwrap(), None, "expired");
    assert_eq!(cache.get("long").await.unwrap().as_deref(), Some(&b"w"[..]));
    assert!(
        cache.put_if_absent("short", b"x", MINUTE).await.unwrap(),
        "an expired key is absent"
    );
    assert_eq!(
        cache.get("short").await.unwrap().as_deref(),
        Some(&b"x"[..])
    );
    // A TTL below a millisecond still stores (Redis's PX takes whole milliseconds).
    cache
        .put("tiny", b"t", Duration::from_micros(1500))
        .await
        .unwrap();
    elapse.by(Duration::from_millis(20)).await;
    assert_eq!(cache.get("tiny").await.unwrap(), None);
}

async fn put_replaces_value_and_ttl(cache: Arc<dyn Cache>, elapse: Elapse) {
    assert_eq!(cache.get("k").await.unwrap(), None);
    cache.put("k", b"one", MINUTE).await.unwrap();
    cache.put("k", b"two", MINUTE).await.unwrap();
    assert_eq!(cache.get("k").await.unwrap().as_deref(), Some(&b"two"[..]));
    // Replacing also replaces the TTL.
    cache
        .put("k", b"three", Duration::from_millis(200))
        .await
        .unwrap();
    assert_eq!(
        cache.get("k").await.unwrap().as_deref(),
        Some(&b"three"[..])
    );
    elapse.by(Duration::from_millis(350)).await;
    assert_eq!(cache.get("k").await.unwrap(), None);
    // Values are bytes, not text.
    let binary: Vec<u8> = (0..=255).collect();
    cache.put("bin", &binary, MINUTE).await.unwrap();
    assert_eq!(cache.get("bin").await.unwrap(), Some(binary));
    cache.put("empty", b"", MINUTE).await.unwrap();
    assert_eq!(cache.get("empty").await.unwrap(), Some(Vec::new()));
}

async fn put_if_absent_first_wins_under_concurrency(cache: Arc<dyn Cache>, _: Elapse) {
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let cache = cache.clone();
            tokio::spawn(async move {
                let value = format!("task-{i}");
                let won = cache
                    .put_if_absent("replay:nonce", value.as_bytes(), MINUTE)
                    .await
                    .unwrap();
                (won, value)
            })
        })
        .collect();
    let mut winners = Vec::new();
    for task in tasks {
        let (won, value) = task.await.unwrap();
        if won {
            winners.push(value);
        }
    }
    assert_eq!(winners.len(), 1, "exactly one presenter wins: {winners:?}");
    assert_eq!(
        cache.get("replay:nonce").await.unwrap(),
        Some(winners[0].as_bytes().to_vec()),
        "the winner's value is the one kept"
    );
    assert!(
        !cache
            .put_if_absent("replay:nonce", b"late", MINUTE)
            .await
            .unwrap()
    );
}

async fn delete_removes_and_tolerates_missing(cache: Arc<dyn Cache>, _: Elapse) {
    cache.put("gone", b"v", MINUTE).await.unwrap();
    cache.put("kept", b"v", MINUTE).await.unwrap();
    cache.delete("gone").await.unwrap();
    assert_eq!(cache.get("gone").await.unwrap(), None);
    assert_eq!(cache.get("kept").await.unwrap().as_deref(), Some(&b"v"[..]));
    cache.delete("gone").await.unwrap();
    cache.delete("never-there").await.unwrap();
    assert!(cache.put_if_absent("gone", b"again", MINUTE).await.unwrap());
}

async fn sets_index_members_and_expire_as_a_whole(cache: Arc<dyn Cache>, elapse: Elapse) {
    let sorted = |mut members: Vec<String>| {
        members.sort();
        members
    };
    assert!(cache.set_members("index").await.unwrap().is_empty());
    cache.set_add("index", "b", MINUTE).await.unwrap();
    cache.set_add("index", "a", MINUTE).await.unwrap();
    cache.set_add("index", "a", MINUTE).await.unwrap();
    assert_eq!(
        sorted(cache.set_members("index").await.unwrap()),
        ["a", "b"]
    );
    cache.set_remove("index", "b").await.unwrap();
    cache.set_remove("index", "never-there").await.unwrap();
    assert_eq!(cache.set_members("index").await.unwrap(), ["a"]);
    cache.set_remove("index", "a").await.unwrap();
    assert!(cache.set_members("index").await.unwrap().is_empty());

    // A later, shorter add never shortens the set's life; a longer one lengthens it.
    cache
        .set_add("short", "x", Duration::from_millis(300))
        .await
        .unwrap();
    cache
        .set_add("short", "y", Duration::from_millis(100))
        .await
        .unwrap();
    cache
        .set_add("long", "x", Duration::from_millis(100))
        .await
        .unwrap();
    cache.set_add("long", "y", MINUTE).await.unwrap();
    elapse.by(Duration::from_millis(200)).await;
    assert_eq!(
        sorted(cache.set_members("short").await.unwrap()),
        ["x", "y"]
    );
    elapse.by(Duration::from_millis(250)).await;
    assert!(
        cache.set_members("short").await.unwrap().is_empty(),
        "expired"
    );
    assert_eq!(sorted(cache.set_members("long").await.unwrap()), ["x", "y"]);
}

both_caches!(
    sets_index_members_and_expire_as_a_whole,
    values_expire_after_their_ttl,
    put_replaces_value_and_ttl,
    put_if_absent_first_wins_under_concurrency,
    delete_removes_and_tolerates_missing,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_keys_live_under_the_prefix_and_prefixes_are_isolated() {
    let (first, second) = (unique_prefix(), unique_prefix());
    let a = redis_cache(&first).await;
    let b = redis_cache(&second).await;
    assert_eq!(a.prefix(), first);

    a.put("session:1", b"from-a", MINUTE).await.unwrap();
    assert_eq!(b.get("session:1").await.unwrap(), None);
    assert!(
        b.put_if_absent("session:1", b"from-b", MINUTE)
            .await
            .unwrap()
    );
    assert_eq!(
        a.get("session:1").await.unwrap().as_deref(),
        Some(&b"from-a"[..])
    );
    b.delete("session:1").await.unwrap();
    assert_eq!(
        a.get("session:1").await.unwrap().as_deref(),
        Some(&b"from-a"[..])
    );

    // Every key is `<prefix>:<key>`, with its TTL set.
    assert_eq!(keys_under(&first).await, [format!("{first}:session:1")]);
    let mut conn = raw_connection().await;
    let pttl: i64 = redis::cmd("PTTL")
        .arg(format!("{first}:session:1"))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!((1..=60_000).contains(&pttl), "{pttl}");

    remove_prefix(&first).await;
    remove_prefix(&second).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_caches_with_the_same_prefix_share_state() {
    // Two replicas of one deployment: separate connections, one prefix.
    let prefix = unique_prefix();
    let replica_a: Arc<dyn Cache> = Arc::new(redis_cache(&prefix).await);
    let replica_b: Arc<dyn Cache> = open_cache(Some(&redis_url()), &prefix, &Clock::system())
        .await
        .unwrap();

    replica_a
        .put("session:abc", b"alice", MINUTE)
        .await
        .unwrap();
    assert_eq!(
        replica_b.get("session:abc").await.unwrap().as_deref(),
        Some(&b"alice"[..])
    );
    assert!(
        !replica_b
            .put_if_absent("session:abc", b"mallory", MINUTE)
            .await
            .unwrap()
    );
    assert!(
        replica_b
            .put_if_absent("device:XYZ", b"pending", MINUTE)
            .await
            .unwrap()
    );
    assert!(
        !replica_a
            .put_if_absent("device:XYZ", b"pending", MINUTE)
            .await
            .unwrap()
    );
    replica_b.delete("session:abc").await.unwrap();
    assert_eq!(replica_a.get("session:abc").await.unwrap(), None);

    // Replay protection across replicas: of 20 presenters spread over both, one wins.
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let cache = if i % 2 == 0 {
                replica_a.clone()
            } else {
                replica_b.clone()
            };
            tokio::spawn(async move {
                cache
                    .put_if_absent("replay:once", b"x", MINUTE)
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut wins = 0;
    for task in tasks {
        wins += usize::from(task.await.unwrap());
    }
    assert_eq!(wins, 1);

    remove_prefix(&prefix).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_redis_fails_fast_naming_the_url_without_password() {
    let url = "redis://:hunter2-secret@127.0.0.1:1/0";
    let started = Instant::now();
    let error = RedisCache::connect(url, "rolegate-test", Duration::from_secs(3))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    assert!(error.contains("127.0.0.1:1"), "{error}");
    assert!(error.contains("unreachable"), "{error}");
    assert!(
        !error.contains("hunter2"),
        "the password is hidden: {error}"
    );

    let error = open_cache(Some(url), "rolegate-test", &Clock::system())
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(
        error.contains("127.0.0.1:1") && !error.contains("hunter2"),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_cache_picks_the_implementation_from_the_url() {
    // No URL: this process's memory.
    let memory = open_cache(None, "ignored", &Clock::system()).await.unwrap();
    memory.put("k", b"v", MINUTE).await.unwrap();
    assert_eq!(memory.get("k").await.unwrap().as_deref(), Some(&b"v"[..]));
    let other_memory = open_cache(None, "ignored", &Clock::system()).await.unwrap();
    assert_eq!(other_memory.get("k").await.unwrap(), None, "not shared");

    // A redis:// URL: Redis under the prefix.
    let prefix = unique_prefix();
    let shared = open_cache(Some(&redis_url()), &prefix, &Clock::system())
        .await
        .unwrap();
    shared.put("k", b"v", MINUTE).await.unwrap();
    assert_eq!(keys_under(&prefix).await, [format!("{prefix}:k")]);
    remove_prefix(&prefix).await;

    for bad in ["memcached://127.0.0.1:11211", "127.0.0.1:6379"] {
        let error = open_cache(Some(bad), "p", &Clock::system())
            .await
            .err()
            .unwrap()
            .to_string();
        assert!(error.contains("redis://"), "{error}");
    }
    let error = RedisCache::connect(&redis_url(), "", MINUTE)
        .await
        .unwrap_err();
    assert!(error.to_string().contains("prefix"), "{error}");
}
