//! Accounts: creation, lookup, deletion, and each account's console-destination
//! allow-list.

use async_trait::async_trait;
use sqlx::types::Json;
use sqlx::{Postgres, Sqlite};

use super::{SqlStore, delete_error, not_found, write_error};
use crate::iam::{AccountId, ValidationError};
use crate::store::{Account, ConsoleDestination, StoreResult};

/// Accounts and their console-destination allow-lists (part of [`Store`](crate::store::Store)).
#[async_trait]
pub trait AccountStore: Send + Sync {
    async fn create_account(&self, id: &AccountId, name: &str) -> StoreResult<Account>;
    async fn get_account(&self, id: &AccountId) -> StoreResult<Account>;
    async fn list_accounts(&self) -> StoreResult<Vec<Account>>;
    /// Fails with `Conflict` while the account still has roles or policies.
    async fn delete_account(&self, id: &AccountId) -> StoreResult<()>;
    /// The account's console-destination allow-list; empty means only Rolegate's
    /// own `/console`. Stored entries that no longer validate are skipped (logged).
    async fn console_destinations(&self, id: &AccountId) -> StoreResult<Vec<ConsoleDestination>>;
    /// Replaces the account's console-destination allow-list (duplicates dropped,
    /// order kept); at most [`ConsoleDestination::MAX_PER_ACCOUNT`] entries.
    async fn set_console_destinations(
        &self,
        id: &AccountId,
        destinations: &[ConsoleDestination],
    ) -> StoreResult<Vec<ConsoleDestination>>;
}

macro_rules! impl_account_store {
    ($db:ty) => {
        #[async_trait]
        impl AccountStore for SqlStore<$db> {
            async fn create_account(&self, id: &AccountId, name: &str) -> StoreResult<Account> {
                let name = name.trim();
                if name.is_empty() || name.chars().count() > 50 {
                    return Err(ValidationError::new(
                        "AccountName",
                        "account name must be 1 to 50 characters",
                    )
                    .into());
                }
                sqlx::query_as::<_, Account>(
                    "INSERT INTO accounts (id, name, created_at) VALUES ($1, $2, $3) \
                     RETURNING id, name, created_at",
                )
                .bind(id.as_str())
                .bind(name)
                .bind(self.now())
                .fetch_one(&self.pool)
                .await
                .map_err(|e| write_error(e, "account", id.as_str(), ""))
            }

            async fn get_account(&self, id: &AccountId) -> StoreResult<Account> {
                sqlx::query_as::<_, Account>(
                    "SELECT id, name, created_at FROM accounts WHERE id = $1",
                )
                .bind(id.as_str())
                .fetch_optional(&self.pool)
                .await?
                .ok_or_else(|| not_found("account", id.as_str()))
            }

            async fn list_accounts(&self) -> StoreResult<Vec<Account>> {
                Ok(sqlx::query_as::<_, Account>(
                    "SELECT id, name, created_at FROM accounts ORDER BY id",
                )
                .fetch_all(&self.pool)
                .await?)
            }

            async fn delete_account(&self, id: &AccountId) -> StoreResult<()> {
                let deleted = sqlx::query("DELETE FROM accounts WHERE id = $1")
                    .bind(id.as_str())
                    .execute(&self.pool)
                    .await
                    .map_err(|e| delete_error(e, &format!("account {id}")))?;
                if deleted.rows_affected() == 0 {
                    return Err(not_found("account", id.as_str()));
                }
                Ok(())
            }

            async fn console_destinations(
                &self,
                id: &AccountId,
            ) -> StoreResult<Vec<ConsoleDestination>> {
                let Json(stored) = sqlx::query_scalar::<_, Json<Vec<String>>>(
                    "SELECT console_destinations FROM accounts WHERE id = $1",
                )
                .bind(id.as_str())
                .fetch_optional(&self.pool)
                .await?
                .ok_or_else(|| not_found("account", id.as_str()))?;
                Ok(stored
                    .iter()
                    .filter_map(|entry| match ConsoleDestination::parse(entry) {
                        Ok(destination) => Some(destination),
                        Err(error) => {
                            tracing::warn!(account = %id, %error, "skipping an invalid stored console destination");
                            None
                        }
                    })
                    .collect())
            }

            async fn set_console_destinations(
                &self,
                id: &AccountId,
                destinations: &[ConsoleDestination],
            ) -> StoreResult<Vec<ConsoleDestination>> {
                let mut kept: Vec<ConsoleDestination> = Vec::new();
                for destination in destinations {
                    if !kept.contains(destination) {
                        kept.push(destination.clone());
                    }
                }
                if kept.len() > ConsoleDestination::MAX_PER_ACCOUNT {
                    return Err(ValidationError::new(
                        "console_destinations",
                        format!(
                            "{} console destinations given; an account may have at most {}",
                            kept.len(),
                            ConsoleDestination::MAX_PER_ACCOUNT
                        ),
                    )
                    .into());
                }
                let stored: Vec<&str> = kept.iter().map(ConsoleDestination::as_str).collect();
                let updated =
                    sqlx::query("UPDATE accounts SET console_destinations = $1 WHERE id = $2")
                        .bind(Json(&stored))
                        .bind(id.as_str())
                        .execute(&self.pool)
                        .await?;
                if updated.rows_affected() == 0 {
                    return Err(not_found("account", id.as_str()));
                }
                Ok(kept)
            }
        }
    };
}

impl_account_store!(Sqlite);
impl_account_store!(Postgres);
