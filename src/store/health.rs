//! Database health: the one circuit every store call passes through. After a
//! connection failure (confirmed by one direct connection attempt, which also names
//! the root cause) the database is marked down and calls fail at once with
//! [`DatabaseDown`] instead of each waiting out the pool's acquire timeout; every
//! [`PROBE_INTERVAL`] (by the injected clock) one call is let through as a probe, so
//! recovery needs no operator. While up, an acquire that takes longer than
//! [`SUSPECT_AFTER`] triggers a probe too: a database that died under an idle pool
//! is found within about a second, and a merely busy pool keeps waiting.
//!
//! [`GuardedPool`] wraps the sqlx pool with the same methods the SQL uses
//! (`&pool` as an executor, `acquire`, `begin`, `begin_with`), so the aggregate
//! files do not know the circuit is there.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_util::future::BoxFuture;
use futures_util::stream::{BoxStream, StreamExt};
use sqlx::pool::PoolConnection;
use sqlx::{Database, Describe, Either, Execute, Executor, Pool, Transaction};

use crate::clock::Clock;

/// How long an acquire may take before a direct connection attempt checks whether
/// the database is there at all.
pub const SUSPECT_AFTER: Duration = Duration::from_millis(300);
/// How long that direct attempt (and a recovery probe) may take.
pub const PROBE_TIMEOUT: Duration = Duration::from_millis(600);
/// While down, how often one call is let through to find out whether it is back.
pub const PROBE_INTERVAL: Duration = Duration::from_secs(1);
/// A probe's verdict is shared with calls that wanted one within this long.
const PROBE_FRESH: Duration = Duration::from_millis(500);

/// The database cannot be reached: where (`host:port`, never a password) and why.
/// Carried inside `sqlx::Error::Io` so that every store call reports it through its
/// usual `?`; [`crate::store::StoreError`]'s `From` turns it into
/// `StoreError::Unreachable`.
#[derive(Debug, Clone, thiserror::Error)]
#[error("cannot connect to the database at {target}: {cause}")]
pub struct DatabaseDown {
    pub target: String,
    pub cause: String,
}

impl DatabaseDown {
    fn into_sqlx(self) -> sqlx::Error {
        sqlx::Error::Io(std::io::Error::new(std::io::ErrorKind::NotConnected, self))
    }

    /// The [`DatabaseDown`] inside `error`, if it carries one.
    pub fn within(error: &sqlx::Error) -> Option<&DatabaseDown> {
        match error {
            sqlx::Error::Io(io) => io.get_ref()?.downcast_ref::<DatabaseDown>(),
            _ => None,
        }
    }
}

/// Whether `error` says the connection to the database (not a statement) failed:
/// the server is gone, refuses, shuts down, or the pool could not get a connection.
pub fn is_connection_failure(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        // SQLSTATE class 08 (connection exception) and 57P0x (the server shuts down
        // or is starting up).
        sqlx::Error::Database(db) => db
            .code()
            .is_some_and(|code| code.starts_with("08") || code.starts_with("57P0")),
        _ => false,
    }
}

/// What the circuit lets a call do.
enum Admit {
    /// Up: go ahead.
    Go,
    /// Down, and it is time to check: this call probes first.
    Probe,
    /// Down: fail now, with the last known cause.
    Refuse(String),
}

#[derive(Default)]
struct State {
    down: Option<Down>,
    /// The last direct connection attempt: when, and its verdict.
    last_probe: Option<(DateTime<Utc>, Result<(), String>)>,
}

struct Down {
    since: DateTime<Utc>,
    cause: String,
    next_probe: DateTime<Utc>,
}

/// The circuit's state, shared by every clone of the pool.
pub struct DatabaseHealth {
    clock: Clock,
    target: String,
    state: Mutex<State>,
    /// One direct connection attempt at a time; others wait for its verdict.
    probing: tokio::sync::Mutex<()>,
}

impl DatabaseHealth {
    fn new(clock: Clock, target: String) -> Self {
        Self {
            clock,
            target,
            state: Mutex::default(),
            probing: tokio::sync::Mutex::new(()),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether the database is marked down, and why.
    pub fn down_cause(&self) -> Option<String> {
        self.state().down.as_ref().map(|down| down.cause.clone())
    }

    fn admit(&self) -> Admit {
        let now = self.clock.now();
        let mut state = self.state();
        match &mut state.down {
            None => Admit::Go,
            Some(down) if now >= down.next_probe => {
                down.next_probe = now + interval(PROBE_INTERVAL);
                Admit::Probe
            }
            Some(down) => Admit::Refuse(down.cause.clone()),
        }
    }

    fn mark_down(&self, cause: &str) {
        let now = self.clock.now();
        let mut state = self.state();
        match &mut state.down {
            Some(down) => down.cause = cause.to_owned(),
            None => {
                tracing::error!(
                    database = %self.target,
                    cause,
                    "database unavailable: calls that need it fail at once until it answers again (checked every {PROBE_INTERVAL:?})"
                );
                state.down = Some(Down {
                    since: now,
                    cause: cause.to_owned(),
                    next_probe: now + interval(PROBE_INTERVAL),
                });
            }
        }
    }

    fn mark_up(&self) {
        let now = self.clock.now();
        if let Some(down) = self.state().down.take() {
            let seconds = (now - down.since).num_milliseconds() as f64 / 1000.0;
            tracing::warn!(database = %self.target, down_seconds = seconds, "database answers again");
        }
    }

    fn down(&self, cause: String) -> sqlx::Error {
        DatabaseDown {
            target: self.target.clone(),
            cause,
        }
        .into_sqlx()
    }
}

fn interval(duration: Duration) -> chrono::Duration {
    chrono::Duration::from_std(duration).unwrap_or(chrono::Duration::seconds(1))
}

/// The sqlx pool behind the database circuit (cheap to clone).
pub struct GuardedPool<DB: Database> {
    pool: Pool<DB>,
    health: Arc<DatabaseHealth>,
}

impl<DB: Database> Clone for GuardedPool<DB> {
    fn clone(&self) -> Self {
        Self {
            pool: self.pool.clone(),
            health: self.health.clone(),
        }
    }
}

impl<DB: Database> std::fmt::Debug for GuardedPool<DB> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GuardedPool")
            .field("target", &self.health.target)
            .finish_non_exhaustive()
    }
}

impl<DB: Database> GuardedPool<DB> {
    /// `pool` for the database at `target` (`host:port` or the SQLite file).
    pub fn new(pool: Pool<DB>, target: String, clock: Clock) -> Self {
        Self {
            pool,
            health: Arc::new(DatabaseHealth::new(clock, target)),
        }
    }

    /// The pool itself, for its figures.
    pub fn inner(&self) -> &Pool<DB> {
        &self.pool
    }

    pub fn health(&self) -> &DatabaseHealth {
        &self.health
    }

    /// One direct connection, made and closed within `within`, past the pool (which
    /// only says that it timed out): `Err` names where and the underlying error.
    pub async fn connect_directly(&self, within: Duration) -> Result<(), String> {
        use sqlx::{ConnectOptions, Connection};
        let options = self.pool.connect_options();
        match tokio::time::timeout(within, options.connect()).await {
            Ok(Ok(connection)) => {
                let _ = connection.close().await;
                Ok(())
            }
            Ok(Err(error)) => Err(error.to_string()),
            Err(_) => Err(format!("no answer within {within:?}")),
        }
    }

    /// A direct attempt, or the verdict of one made moments ago (only one runs at a
    /// time: a crowd of slow calls makes one extra connection, not a storm).
    async fn probe(&self) -> Result<(), String> {
        let _one = self.health.probing.lock().await;
        let now = self.health.clock.now();
        if let Some((at, verdict)) = &self.health.state().last_probe
            && now - *at < interval(PROBE_FRESH)
            && now >= *at
        {
            return verdict.clone();
        }
        let verdict = self.connect_directly(PROBE_TIMEOUT).await;
        self.health.state().last_probe = Some((self.health.clock.now(), verdict.clone()));
        verdict
    }

    /// Runs `acquire` (a connection or a transaction from the pool) through the
    /// circuit.
    async fn guarded<T>(&self, acquire: impl Future<Output = sqlx::Result<T>>) -> sqlx::Result<T> {
        match self.health.admit() {
            Admit::Go => {}
            Admit::Refuse(cause) => return Err(self.health.down(cause)),
            Admit::Probe => match self.probe().await {
                Ok(()) => self.health.mark_up(),
                Err(cause) => {
                    self.health.mark_down(&cause);
                    return Err(self.health.down(cause));
                }
            },
        }
        let mut acquire = std::pin::pin!(acquire);
        let result = tokio::select! {
            result = &mut acquire => result,
            () = tokio::time::sleep(SUSPECT_AFTER) => match self.probe().await {
                // There: the pool is only busy, so wait for it as usual.
                Ok(()) => acquire.await,
                Err(cause) => {
                    self.health.mark_down(&cause);
                    return Err(self.health.down(cause));
                }
            },
        };
        self.observed(result).await
    }

    pub async fn acquire(&self) -> sqlx::Result<PoolConnection<DB>> {
        self.guarded(self.pool.acquire()).await
    }

    pub async fn begin(&self) -> sqlx::Result<Transaction<'static, DB>> {
        self.guarded(self.pool.begin()).await
    }

    pub async fn begin_with(
        &self,
        statement: impl Into<std::borrow::Cow<'static, str>>,
    ) -> sqlx::Result<Transaction<'static, DB>> {
        let statement = statement.into();
        self.guarded(self.pool.begin_with(statement)).await
    }

    /// A failed call: a connection failure (or a pool that gave none) is checked with
    /// a direct attempt, which opens the circuit, naming the root cause, only when
    /// the database is not there (a busy pool is not a dead database).
    async fn observed<T>(&self, result: sqlx::Result<T>) -> sqlx::Result<T> {
        match result {
            Err(error)
                if is_connection_failure(&error) && DatabaseDown::within(&error).is_none() =>
            {
                match self.probe().await {
                    Ok(()) => Err(error),
                    Err(cause) => {
                        self.health.mark_down(&cause);
                        Err(self.health.down(cause))
                    }
                }
            }
            other => other,
        }
    }
}

impl<'p, DB: Database> Executor<'p> for &'_ GuardedPool<DB>
where
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
{
    type Database = DB;

    fn fetch_many<'e, 'q: 'e, E>(
        self,
        query: E,
    ) -> BoxStream<'e, Result<Either<DB::QueryResult, DB::Row>, sqlx::Error>>
    where
        'p: 'e,
        E: 'q + Execute<'q, DB>,
    {
        // Buffered: the store reads whole results (fetch_all / fetch_one) anyway.
        let pool = self.clone();
        futures_util::stream::once(async move {
            let mut connection = match pool.acquire().await {
                Ok(connection) => connection,
                Err(error) => return vec![Err(error)],
            };
            let results: Vec<_> = (&mut *connection).fetch_many(query).collect().await;
            drop(connection);
            let mut checked = Vec::with_capacity(results.len());
            for result in results {
                checked.push(pool.observed(result).await);
            }
            checked
        })
        .flat_map(futures_util::stream::iter)
        .boxed()
    }

    fn fetch_optional<'e, 'q: 'e, E>(
        self,
        query: E,
    ) -> BoxFuture<'e, Result<Option<DB::Row>, sqlx::Error>>
    where
        'p: 'e,
        E: 'q + Execute<'q, DB>,
    {
        let pool = self.clone();
        Box::pin(async move {
            let mut connection = pool.acquire().await?;
            let result = (&mut *connection).fetch_optional(query).await;
            drop(connection);
            pool.observed(result).await
        })
    }

    fn prepare_with<'e, 'q: 'e>(
        self,
        sql: &'q str,
        parameters: &'e [DB::TypeInfo],
    ) -> BoxFuture<'e, Result<DB::Statement<'q>, sqlx::Error>>
    where
        'p: 'e,
    {
        let pool = self.clone();
        Box::pin(async move {
            let mut connection = pool.acquire().await?;
            let result = (&mut *connection).prepare_with(sql, parameters).await;
            drop(connection);
            pool.observed(result).await
        })
    }

    fn describe<'e, 'q: 'e>(self, sql: &'q str) -> BoxFuture<'e, Result<Describe<DB>, sqlx::Error>>
    where
        'p: 'e,
    {
        let pool = self.clone();
        Box::pin(async move {
            let mut connection = pool.acquire().await?;
            let result = (&mut *connection).describe(sql).await;
            drop(connection);
            pool.observed(result).await
        })
    }
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

    use super::*;

    /// A pool whose database refuses connections (a closed loopback port).
    fn refused_pool() -> (GuardedPool<sqlx::Postgres>, crate::clock::ClockHand) {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let options =
            PgConnectOptions::from_str(&format!("postgres://u:secret@127.0.0.1:{port}/db"))
                .unwrap();
        let pool = PgPoolOptions::new()
            .acquire_timeout(Duration::from_secs(5))
            .connect_lazy_with(options);
        let (clock, hand) = Clock::adjustable();
        (
            GuardedPool::new(pool, format!("127.0.0.1:{port}"), clock),
            hand,
        )
    }

    fn probes(pool: &GuardedPool<sqlx::Postgres>) -> Option<DateTime<Utc>> {
        pool.health.state().last_probe.as_ref().map(|(at, _)| *at)
    }

    #[tokio::test]
    async fn a_refusing_database_is_marked_down_and_then_refused_at_once() {
        let (pool, hand) = refused_pool();
        // The pool alone would retry for its whole 5 s acquire timeout.
        let started = crate::clock::Stopwatch::start();
        let error = pool.acquire().await.unwrap_err();
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
        let down = DatabaseDown::within(&error).expect("the circuit's error");
        assert!(down.target.starts_with("127.0.0.1:"), "{down}");
        assert!(down.cause.to_lowercase().contains("refused"), "{down}");
        assert!(!down.to_string().contains("secret"), "{down}");
        assert!(pool.health.down_cause().is_some());
        let probed = probes(&pool);
        assert!(probed.is_some());

        // Down: refused without a connection attempt until the probe interval passes.
        let error = pool.acquire().await.unwrap_err();
        assert!(DatabaseDown::within(&error).is_some());
        assert_eq!(probes(&pool), probed, "no probe before the interval");
        let crate::store::StoreError::Unreachable { .. } = crate::store::StoreError::from(error)
        else {
            panic!("not Unreachable");
        };

        hand.advance(PROBE_INTERVAL);
        let error = pool.begin().await.unwrap_err();
        assert!(DatabaseDown::within(&error).is_some());
        assert_ne!(probes(&pool), probed, "one call probes after the interval");
    }
}
