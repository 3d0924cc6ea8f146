//! The audit log: append (the database itself keeps it append-only) and page through
//! it newest first.

use async_trait::async_trait;
use sqlx::types::Json;
use sqlx::{Postgres, Sqlite};

use super::SqlStore;
use crate::store::{AuditEvent, AuditRecord, StoreResult};

/// The audit log (part of [`Store`](crate::store::Store)).
#[async_trait]
pub trait AuditStore: Send + Sync {
    /// Appends to the audit log (which the database itself keeps append-only).
    async fn append_audit(&self, event: &AuditEvent) -> StoreResult<i64>;
    /// Newest first, at most `limit`, optionally only ids below `before_id` (paging).
    async fn list_audit(&self, limit: i64, before_id: Option<i64>)
    -> StoreResult<Vec<AuditRecord>>;
}

macro_rules! impl_audit_store {
    ($db:ty) => {
        #[async_trait]
        impl AuditStore for SqlStore<$db> {
            async fn append_audit(&self, event: &AuditEvent) -> StoreResult<i64> {
                let event = &event.bounded();
                Ok(sqlx::query_scalar::<_, i64>(
                    "INSERT INTO audit_events (at, actor, action, target, outcome, source_ip, \
                     user_agent, details) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
                )
                .bind(event.at)
                .bind(&event.actor)
                .bind(&event.action)
                .bind(&event.target)
                .bind(event.outcome.as_str())
                .bind(event.source_ip.as_deref())
                .bind(event.user_agent.as_deref())
                .bind(Json(&event.details))
                .fetch_one(&self.pool)
                .await?)
            }

            async fn list_audit(
                &self,
                limit: i64,
                before_id: Option<i64>,
            ) -> StoreResult<Vec<AuditRecord>> {
                Ok(sqlx::query_as::<_, AuditRecord>(
                    "SELECT id, at, actor, action, target, outcome, source_ip, user_agent, details \
                     FROM audit_events WHERE ($1 IS NULL OR id < $1) ORDER BY id DESC LIMIT $2",
                )
                .bind(before_id)
                .bind(limit.clamp(1, 1000))
                .fetch_all(&self.pool)
                .await?)
            }
        }
    };
}

impl_audit_store!(Sqlite);
impl_audit_store!(Postgres);
