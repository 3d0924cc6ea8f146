//! One body of SQL serving both backends. Queries use `$n` placeholders, which
//! PostgreSQL and (through sqlx) SQLite both accept; the two migration trees define
//! the same schema. Each aggregate has one file holding its trait (a part of
//! [`Store`]), its row types and a macro that implements the trait for
//! `SqlStore<Sqlite>` and `SqlStore<Postgres>`; a new aggregate is one new file.
//! This file holds what they share: the store itself, the write-transaction opener,
//! the clock and id source, and the classification of database errors (with sqlx's
//! backend-neutral `ErrorKind`).

mod accounts;
mod admin_tokens;
mod audit;
mod directory;
mod holders;
mod iam_users;
mod policies;
mod roles;
mod rulesets;
mod saml_providers;
mod sts;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::error::ErrorKind;
use sqlx::{Database, Pool, Postgres, Sqlite, Transaction};

use super::health::GuardedPool;

use super::{Backend, Store, StoreError, StoreResult};
use crate::clock::{Clock, Random};
use crate::iam::{IdKind, Partition, ValidationError, new_unique_id};
use crate::policy::{ParseOptions, Policy, PolicyKind};

pub use accounts::AccountStore;
pub use admin_tokens::AdminTokenStore;
pub use audit::AUDIT_BATCH_LIMIT;
pub use audit::AuditStore;
pub use directory::DirectoryStore;
pub use iam_users::IamUserStore;
pub use policies::{PolicyScope, PolicyStore};
pub use roles::RoleStore;
pub use rulesets::RulesetStore;
pub use saml_providers::{SamlProviderStore, check_saml_provider_name};
pub use sts::StsKeyStore;

pub struct SqlStore<DB: Database> {
    /// The pool behind the database circuit ([`super::health`]).
    pool: GuardedPool<DB>,
    /// Where the database is (`host:port` or the SQLite file), never a secret.
    target: String,
    partition: Partition,
    clock: Clock,
    random: Random,
}

impl<DB: Database> SqlStore<DB> {
    pub fn new(
        pool: Pool<DB>,
        target: String,
        partition: Partition,
        clock: Clock,
        random: Random,
    ) -> Self {
        Self {
            pool: GuardedPool::new(pool, target.clone(), clock.clone()),
            target,
            partition,
            clock,
            random,
        }
    }

    /// When a row is written.
    fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    fn new_id(&self, kind: IdKind) -> String {
        new_unique_id(kind, &mut self.random.rng())
    }
}

// SQLite: writing transactions take the write lock up front (`BEGIN IMMEDIATE`), so
// they wait (busy_timeout) for another writer instead of failing with SQLITE_BUSY
// when a deferred transaction that has already read tries to upgrade.
impl SqlStore<Sqlite> {
    /// Opens a transaction that will write.
    async fn begin_write(&self) -> sqlx::Result<Transaction<'static, Sqlite>> {
        self.pool.begin_with("BEGIN IMMEDIATE").await
    }
}

impl SqlStore<Postgres> {
    /// Opens a transaction that will write.
    async fn begin_write(&self) -> sqlx::Result<Transaction<'static, Postgres>> {
        self.pool.begin_with("BEGIN").await
    }
}

macro_rules! impl_store {
    ($db:ty, $backend:expr) => {
        #[async_trait]
        impl Store for SqlStore<$db> {
            fn backend(&self) -> Backend {
                $backend
            }

            fn partition(&self) -> &Partition {
                &self.partition
            }

            fn clock(&self) -> &Clock {
                &self.clock
            }

            fn random(&self) -> Random {
                self.random
            }

            async fn ping(&self) -> StoreResult<()> {
                sqlx::query("SELECT 1").execute(&self.pool).await?;
                Ok(())
            }

            fn target(&self) -> &str {
                &self.target
            }

            async fn diagnose(&self, within: std::time::Duration) -> String {
                let pool = self.pool.inner();
                match self.pool.connect_directly(within).await {
                    Ok(()) => format!(
                        "{}: a new connection works, so the pool is busy ({} connections, {} idle)",
                        self.target,
                        pool.size(),
                        pool.num_idle()
                    ),
                    Err(cause) => format!("{}: {cause}", self.target),
                }
            }

            fn database_down(&self) -> Option<String> {
                self.pool.health().down_cause()
            }

            async fn iam_generation(&self) -> StoreResult<i64> {
                Ok(
                    sqlx::query_scalar("SELECT generation FROM iam_generation WHERE id = 1")
                        .fetch_one(&self.pool)
                        .await?,
                )
            }

            fn pool_figures(&self) -> crate::store::PoolFigures {
                let pool = self.pool.inner();
                crate::store::PoolFigures {
                    size: pool.size(),
                    idle: u32::try_from(pool.num_idle()).unwrap_or(u32::MAX),
                    max: pool.options().get_max_connections(),
                }
            }
        }
    };
}

impl_store!(Sqlite, Backend::Sqlite);
impl_store!(Postgres, Backend::Postgres);

/// The constraint a database error broke, if any.
fn violated(error: &sqlx::Error) -> Option<ErrorKind> {
    match error {
        // SQLite reports `ON DELETE RESTRICT` as SQLITE_CONSTRAINT_TRIGGER (1811),
        // which sqlx does not classify; its message is the same as a plain FK error.
        sqlx::Error::Database(db)
            if matches!(db.kind(), ErrorKind::Other)
                && db.message().contains("FOREIGN KEY constraint failed") =>
        {
            Some(ErrorKind::ForeignKeyViolation)
        }
        sqlx::Error::Database(db) => Some(db.kind()),
        _ => None,
    }
}

/// Maps a write error: a unique violation means the entity exists, a foreign-key
/// violation means something it refers to does not (`missing`).
fn write_error(error: sqlx::Error, entity: &'static str, key: &str, missing: &str) -> StoreError {
    match violated(&error) {
        Some(ErrorKind::UniqueViolation) => StoreError::AlreadyExists {
            entity,
            key: key.to_owned(),
        },
        Some(ErrorKind::ForeignKeyViolation) => StoreError::NotFound {
            entity: "referenced entity",
            key: missing.to_owned(),
        },
        Some(ErrorKind::CheckViolation) => StoreError::Invalid(ValidationError::new(
            entity,
            format!("{entity} {key} breaks a database constraint: {error}"),
        )),
        _ => StoreError::from(error),
    }
}

/// Maps a delete error: a foreign-key violation means something still uses the entity.
fn delete_error(error: sqlx::Error, what: &str) -> StoreError {
    match violated(&error) {
        Some(ErrorKind::ForeignKeyViolation) => {
            StoreError::Conflict(format!("Cannot delete {what}: it is still in use."))
        }
        _ => StoreError::from(error),
    }
}

fn not_found(entity: &'static str, key: impl Into<String>) -> StoreError {
    StoreError::NotFound {
        entity,
        key: key.into(),
    }
}

/// Parses a document before it is stored, so nothing invalid is ever written.
fn check_document(document: &str, kind: PolicyKind, customer: bool, what: &str) -> StoreResult<()> {
    Policy::parse(
        document,
        ParseOptions {
            kind,
            enforce_customer_size_limit: customer,
        },
    )
    .map(|_| ())
    .map_err(|error| StoreError::MalformedPolicy {
        what: what.to_owned(),
        error,
    })
}
