//! Persistence of the IAM model behind one trait, [`Store`], with SQLite (embedded
//! default) and PostgreSQL (production) implementations sharing one body of SQL (see
//! `sql/`, one file per aggregate).
//!
//! The store enforces the model's invariants at the edge: names arrive as validated
//! newtypes, policy documents are parsed before they are written, uniqueness and
//! referential integrity live in the database and come back as typed [`StoreError`]s,
//! and every multi-row change runs in one transaction.

mod health;
mod iam_cache;
mod model;
mod sql;

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::ConnectOptions;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

use crate::clock::{Clock, Random};
use crate::iam::{Partition, ValidationError};
use crate::policy::PolicyError;

pub use health::{DatabaseDown, is_connection_failure};
pub use iam_cache::{IamCache, IamCacheSettings};
pub use model::*;
pub use sql::AUDIT_BATCH_LIMIT;
pub use sql::{
    AccountStore, AdminTokenStore, AuditStore, DirectoryStore, IamUserStore, PolicyScope,
    PolicyStore, RoleStore, RulesetStore, SamlProviderStore, StsKeyStore, check_saml_provider_name,
};

/// What went wrong in a store call, in terms a handler can map to its wire format.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{entity} {key} does not exist")]
    NotFound { entity: &'static str, key: String },
    #[error("{entity} {key} already exists")]
    AlreadyExists { entity: &'static str, key: String },
    /// The change would break a reference (IAM's `DeleteConflict`).
    #[error("{0}")]
    Conflict(String),
    /// A quota such as five versions per managed policy (IAM's `LimitExceeded`).
    #[error("{0}")]
    LimitExceeded(String),
    /// The row changed since the caller read the version it edits (optimistic
    /// concurrency: the admin API's 412 for a stale `If-Match`).
    #[error("{0}")]
    Stale(String),
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    #[error("{what}: {error}")]
    MalformedPolicy { what: String, error: PolicyError },
    #[error("database error: {0}")]
    Backend(sqlx::Error),
    /// The database cannot be reached: where (`host:port`, never a password) and why.
    #[error("cannot connect to the database at {target}: {cause}")]
    Unreachable { target: String, cause: String },
    #[error("database migration failed: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
}

/// A connection failure the database circuit reported becomes
/// [`StoreError::Unreachable`] (where and why); any other error stays `Backend`.
impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> Self {
        match DatabaseDown::within(&error) {
            Some(down) => StoreError::Unreachable {
                target: down.target.clone(),
                cause: down.cause.clone(),
            },
            None => StoreError::Backend(error),
        }
    }
}

impl StoreError {
    /// Whether the database could not be reached (or gave no connection in time):
    /// the caller should come back later (503), nothing was wrong with the request.
    pub fn is_unavailable(&self) -> bool {
        match self {
            StoreError::Unreachable { .. } => true,
            StoreError::Backend(error) => is_connection_failure(error),
            _ => false,
        }
    }

    /// A stable, greppable code for logs and API error bodies.
    pub fn code(&self) -> &'static str {
        match self {
            StoreError::NotFound { .. } => "NoSuchEntity",
            StoreError::AlreadyExists { .. } => "EntityAlreadyExists",
            StoreError::Conflict(_) => "DeleteConflict",
            StoreError::LimitExceeded(_) => "LimitExceeded",
            StoreError::Stale(_) => "ConcurrentModification",
            StoreError::Invalid(_) => "ValidationError",
            StoreError::MalformedPolicy { .. } => "MalformedPolicyDocument",
            StoreError::Backend(_) | StoreError::Migration(_) | StoreError::Unreachable { .. } => {
                "ServiceFailure"
            }
        }
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The IAM model's persistence. Every method is one transaction.
///
/// The methods live in one trait per aggregate, each declared beside its SQL in
/// `sql/`; `Store` joins them, so a `&dyn Store` offers every method without the
/// aggregate traits being imported. A new aggregate adds its trait here.
#[async_trait]
pub trait Store:
    AccountStore
    + PolicyStore
    + RoleStore
    + RulesetStore
    + DirectoryStore
    + IamUserStore
    + StsKeyStore
    + SamlProviderStore
    + AuditStore
    + AdminTokenStore
    + Send
    + Sync
    + 'static
{
    fn backend(&self) -> Backend;
    fn partition(&self) -> &Partition;
    /// The clock rows are stamped with: the application's one clock (the state built
    /// on this store takes it from here).
    fn clock(&self) -> &Clock;
    /// The application's one random source.
    fn random(&self) -> Random;
    /// Readiness: the database answers a query.
    async fn ping(&self) -> StoreResult<()>;
    /// Where the database is: `host:port` (PostgreSQL) or the SQLite file. Never
    /// a password: safe for logs and health answers.
    fn target(&self) -> &str;
    /// Why the database cannot be used, in one line naming [`Store::target`]: one
    /// direct connection attempt past the pool, bounded by `within` (the pool itself
    /// only says that it timed out waiting).
    async fn diagnose(&self, within: Duration) -> String;
    /// Why the database is marked down (the circuit of [`health`] is open), if it is:
    /// calls that need it fail at once until a probe finds it back.
    fn database_down(&self) -> Option<String>;
    /// The connection pool's size and idle connections, for metrics.
    fn pool_figures(&self) -> PoolFigures;
    /// The IAM generation: a counter that the database itself (by trigger, in the
    /// writing transaction) moves on every change to accounts, IAM users, access
    /// keys, roles, policies and OIDC providers, whoever writes them. [`IamCache`]
    /// drops its copies when it moves.
    async fn iam_generation(&self) -> StoreResult<i64>;
}

/// The connection pool right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolFigures {
    /// Open connections (idle and in use).
    pub size: u32,
    pub idle: u32,
    /// The most it may open (`database.max_connections`).
    pub max: u32,
}

/// Settings for opening a store.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    pub max_connections: u32,
    pub connect_timeout: Duration,
    pub partition: Partition,
    /// When rows are written, and where new ids come from.
    pub clock: Clock,
    pub random: Random,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            max_connections: 10,
            connect_timeout: Duration::from_secs(5),
            partition: Partition::default(),
            clock: Clock::system(),
            random: Random::system(),
        }
    }
}

/// Opens the store the URL names (`sqlite:` or `postgres:`), checks that it answers,
/// and applies the embedded migrations. A database that cannot be reached fails here
/// with its root cause (`host:port` and, e.g., "Connection refused"), not the pool's
/// "timed out while waiting for an open connection".
pub async fn open(url: &str, options: &StoreOptions) -> StoreResult<Arc<dyn Store>> {
    let store: Arc<dyn Store> = if url.starts_with("sqlite:") {
        let connect = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // Safe with WAL (no corruption); only the last commits can be lost on
            // power failure, and each write stops paying for an fsync.
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(5));
        let target = connect.get_filename().display().to_string();
        let pool = SqlitePoolOptions::new()
            .max_connections(options.max_connections)
            .acquire_timeout(options.connect_timeout)
            .connect_with(connect)
            .await
            .map_err(|error| unreachable(&target, error))?;
        sqlx::migrate!("migrations/sqlite").run(&pool).await?;
        Arc::new(sql::SqlStore::new(
            pool,
            target,
            options.partition.clone(),
            options.clock.clone(),
            options.random,
        ))
    } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
        let connect = PgConnectOptions::from_str(url)?;
        let target = postgres_target(&connect);
        // One direct attempt first: the pool retries a refused connection until its
        // timeout and then reports only the timeout.
        probe(&target, options.connect_timeout, connect.connect()).await?;
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections)
            .acquire_timeout(options.connect_timeout)
            .connect_with(connect)
            .await
            .map_err(|error| unreachable(&target, error))?;
        sqlx::migrate!("migrations/postgres").run(&pool).await?;
        Arc::new(sql::SqlStore::new(
            pool,
            target,
            options.partition.clone(),
            options.clock.clone(),
            options.random,
        ))
    } else {
        return Err(StoreError::Invalid(ValidationError::new(
            "database.url",
            "the database URL must start with sqlite: or postgres:",
        )));
    };
    Ok(store)
}

/// `host:port` of a PostgreSQL connection (or its Unix socket directory).
fn postgres_target(connect: &PgConnectOptions) -> String {
    let host = connect.get_host();
    if host.starts_with('/') {
        format!("{host} (Unix socket, port {})", connect.get_port())
    } else if host.contains(':') {
        format!("[{host}]:{}", connect.get_port())
    } else {
        format!("{host}:{}", connect.get_port())
    }
}

fn unreachable(target: &str, error: sqlx::Error) -> StoreError {
    StoreError::Unreachable {
        target: target.to_owned(),
        cause: error.to_string(),
    }
}

/// One connection made and closed within `within`, or the reason it could not be.
async fn probe<C: sqlx::Connection>(
    target: &str,
    within: Duration,
    connect: impl std::future::Future<Output = sqlx::Result<C>>,
) -> StoreResult<()> {
    match tokio::time::timeout(within, connect).await {
        Ok(Ok(connection)) => {
            let _ = connection.close().await;
            Ok(())
        }
        Ok(Err(error)) => Err(unreachable(target, error)),
        Err(_) => Err(StoreError::Unreachable {
            target: target.to_owned(),
            cause: format!("no answer within {within:?}"),
        }),
    }
}
