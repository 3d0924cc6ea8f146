//! Admin API tokens: created with the hash of their secret, read back for
//! authentication and listing, revoked (never deleted: the audit log names them).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::{Postgres, Sqlite};

use super::{SqlStore, not_found, write_error};
use crate::store::{AdminToken, NewAdminToken, StoreResult};

const COLUMNS: &str = "id, name, secret_sha256, scope, created_by, created_at, expires_at, \
                       last_used_at, revoked_at";

/// Admin API tokens (part of [`Store`](crate::store::Store)).
#[async_trait]
pub trait AdminTokenStore: Send + Sync {
    /// Stores a new token, stamped now; `AlreadyExists` if the id is taken.
    async fn create_admin_token(&self, new: &NewAdminToken) -> StoreResult<AdminToken>;
    async fn get_admin_token(&self, id: &str) -> StoreResult<AdminToken>;
    /// Every token, newest first (revoked and expired ones too).
    async fn list_admin_tokens(&self) -> StoreResult<Vec<AdminToken>>;
    /// Revokes the token at `at` (a token revoked before keeps its first time);
    /// returns it as it is now.
    async fn revoke_admin_token(&self, id: &str, at: DateTime<Utc>) -> StoreResult<AdminToken>;
    /// Records a use at `at`, unless one was recorded after `unless_after` (so a
    /// busy token writes at most once per interval). True when it wrote.
    async fn touch_admin_token(
        &self,
        id: &str,
        at: DateTime<Utc>,
        unless_after: DateTime<Utc>,
    ) -> StoreResult<bool>;
}

macro_rules! impl_admin_token_store {
    ($db:ty) => {
        #[async_trait]
        impl AdminTokenStore for SqlStore<$db> {
            async fn create_admin_token(&self, new: &NewAdminToken) -> StoreResult<AdminToken> {
                sqlx::query_as::<_, AdminToken>(&format!(
                    "INSERT INTO admin_tokens (id, name, secret_sha256, scope, created_by, \
                     created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7) \
                     RETURNING {COLUMNS}"
                ))
                .bind(&new.id)
                .bind(&new.name)
                .bind(&new.secret_sha256)
                .bind(new.scope.as_str())
                .bind(&new.created_by)
                .bind(self.now())
                .bind(new.expires_at)
                .fetch_one(&self.pool)
                .await
                .map_err(|e| write_error(e, "admin token", &new.id, ""))
            }

            async fn get_admin_token(&self, id: &str) -> StoreResult<AdminToken> {
                sqlx::query_as::<_, AdminToken>(&format!(
                    "SELECT {COLUMNS} FROM admin_tokens WHERE id = $1"
                ))
                .bind(id)
                .fetch_optional(&self.pool)
                .await?
                .ok_or_else(|| not_found("admin token", id))
            }

            async fn list_admin_tokens(&self) -> StoreResult<Vec<AdminToken>> {
                Ok(sqlx::query_as::<_, AdminToken>(&format!(
                    "SELECT {COLUMNS} FROM admin_tokens ORDER BY created_at DESC, id"
                ))
                .fetch_all(&self.pool)
                .await?)
            }

            async fn revoke_admin_token(
                &self,
                id: &str,
                at: DateTime<Utc>,
            ) -> StoreResult<AdminToken> {
                sqlx::query_as::<_, AdminToken>(&format!(
                    "UPDATE admin_tokens SET revoked_at = COALESCE(revoked_at, $2) \
                     WHERE id = $1 RETURNING {COLUMNS}"
                ))
                .bind(id)
                .bind(at)
                .fetch_optional(&self.pool)
                .await?
                .ok_or_else(|| not_found("admin token", id))
            }

            async fn touch_admin_token(
                &self,
                id: &str,
                at: DateTime<Utc>,
                unless_after: DateTime<Utc>,
            ) -> StoreResult<bool> {
                let updated = sqlx::query(
                    "UPDATE admin_tokens SET last_used_at = $2 \
                     WHERE id = $1 AND (last_used_at IS NULL OR last_used_at <= $3)",
                )
                .bind(id)
                .bind(at)
                .bind(unless_after)
                .execute(&self.pool)
                .await?;
                Ok(updated.rows_affected() > 0)
            }
        }
    };
}

impl_admin_token_store!(Sqlite);
impl_admin_token_store!(Postgres);
