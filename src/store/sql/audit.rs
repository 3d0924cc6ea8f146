//! The audit log: append (the database itself keeps it append-only) and page through
//! it newest first.

use async_trait::async_trait;
use sqlx::types::Json;
use sqlx::{Postgres, QueryBuilder, Sqlite};

use super::SqlStore;
use crate::store::{
    AuditEvent, AuditFilter, AuditRecord, KeyedAuditEvent, StoreError, StoreResult,
};

/// The most events [`AuditStore::append_audit_batch`] takes at once: nine bound
/// values each stay far below both databases' limits on one statement's parameters.
pub const AUDIT_BATCH_LIMIT: usize = 256;

/// The audit log (part of [`Store`](crate::store::Store)).
#[async_trait]
pub trait AuditStore: Send + Sync {
    /// Appends `events` (at most [`AUDIT_BATCH_LIMIT`]) in one statement, so in one
    /// transaction: all or none. Each is cut to [`AuditEvent::bounded`] first.
    /// Returns their ids, in the order of `events` (ids grow in that order).
    async fn append_audit_batch(&self, events: &[AuditEvent]) -> StoreResult<Vec<i64>>;

    /// Appends `events` (at most [`AUDIT_BATCH_LIMIT`]) in one statement, each with
    /// its key (unique in the log). With `skip_written`, an event whose key is
    /// already in the log is left out (replaying the audit spool); the ids returned
    /// are then only those of the events written now.
    async fn append_audit_keyed(
        &self,
        events: &[KeyedAuditEvent],
        skip_written: bool,
    ) -> StoreResult<Vec<i64>>;

    /// Appends one event (a batch of one).
    async fn append_audit(&self, event: &AuditEvent) -> StoreResult<i64> {
        let ids = self.append_audit_batch(std::slice::from_ref(event)).await?;
        ids.first()
            .copied()
            .ok_or(StoreError::Backend(sqlx::Error::RowNotFound))
    }

    /// Newest first, at most `limit`, optionally only ids below `before_id` (paging).
    async fn list_audit(&self, limit: i64, before_id: Option<i64>)
    -> StoreResult<Vec<AuditRecord>>;

    /// The events `filter` selects, newest first, at most `limit` (1 to 1000).
    async fn list_audit_filtered(
        &self,
        filter: &AuditFilter,
        limit: i64,
    ) -> StoreResult<Vec<AuditRecord>>;
}

macro_rules! impl_audit_store {
    ($db:ty) => {
        impl SqlStore<$db> {
            /// One INSERT of `events` (each with its key, if any); with
            /// `skip_written`, keys already in the log are left out.
            async fn insert_audit(
                &self,
                events: &[(Option<&str>, &AuditEvent)],
                skip_written: bool,
            ) -> StoreResult<Vec<i64>> {
                if events.is_empty() {
                    return Ok(Vec::new());
                }
                if events.len() > AUDIT_BATCH_LIMIT {
                    return Err(StoreError::LimitExceeded(format!(
                        "at most {AUDIT_BATCH_LIMIT} audit events are appended at once, not {}",
                        events.len()
                    )));
                }
                let events: Vec<(Option<&str>, AuditEvent)> = events
                    .iter()
                    .map(|(key, event)| (*key, event.bounded()))
                    .collect();
                let mut insert = QueryBuilder::<$db>::new(
                    "INSERT INTO audit_events (at, actor, action, target, outcome, source_ip, \
                     user_agent, details, event_key) ",
                );
                insert.push_values(&events, |mut row, (key, event)| {
                    row.push_bind(event.at)
                        .push_bind(&event.actor)
                        .push_bind(&event.action)
                        .push_bind(&event.target)
                        .push_bind(event.outcome.as_str())
                        .push_bind(event.source_ip.as_deref())
                        .push_bind(event.user_agent.as_deref())
                        .push_bind(Json(&event.details))
                        .push_bind(*key);
                });
                if skip_written {
                    insert.push(" ON CONFLICT (event_key) DO NOTHING");
                }
                insert.push(" RETURNING id");
                let mut ids: Vec<i64> = insert
                    .build_query_scalar()
                    .fetch_all(&self.pool)
                    .await?;
                // Rows get their ids in the order of VALUES; RETURNING's own order
                // is not promised by either database.
                ids.sort_unstable();
                Ok(ids)
            }
        }

        #[async_trait]
        impl AuditStore for SqlStore<$db> {
            async fn append_audit_batch(&self, events: &[AuditEvent]) -> StoreResult<Vec<i64>> {
                let events: Vec<(Option<&str>, &AuditEvent)> =
                    events.iter().map(|event| (None, event)).collect();
                self.insert_audit(&events, false).await
            }

            async fn append_audit_keyed(
                &self,
                events: &[KeyedAuditEvent],
                skip_written: bool,
            ) -> StoreResult<Vec<i64>> {
                let events: Vec<(Option<&str>, &AuditEvent)> = events
                    .iter()
                    .map(|keyed| (Some(keyed.key.as_str()), &keyed.event))
                    .collect();
                self.insert_audit(&events, skip_written).await
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

            async fn list_audit_filtered(
                &self,
                filter: &AuditFilter,
                limit: i64,
            ) -> StoreResult<Vec<AuditRecord>> {
                let mut select = QueryBuilder::<$db>::new(
                    "SELECT id, at, actor, action, target, outcome, source_ip, user_agent, \
                     details FROM audit_events WHERE 1 = 1",
                );
                if let Some(actor) = &filter.actor {
                    select.push(" AND actor = ").push_bind(actor.clone());
                }
                if let Some(action) = &filter.action {
                    select.push(" AND action = ").push_bind(action.clone());
                }
                if let Some(outcome) = filter.outcome {
                    select.push(" AND outcome = ").push_bind(outcome.as_str());
                }
                if let Some(since) = filter.since {
                    select.push(" AND at >= ").push_bind(since);
                }
                if let Some(until) = filter.until {
                    select.push(" AND at < ").push_bind(until);
                }
                if let Some(before) = filter.before_id {
                    select.push(" AND id < ").push_bind(before);
                }
                select
                    .push(" ORDER BY id DESC LIMIT ")
                    .push_bind(limit.clamp(1, 1000));
                Ok(select
                    .build_query_as::<AuditRecord>()
                    .fetch_all(&self.pool)
                    .await?)
            }
        }
    };
}

impl_audit_store!(Sqlite);
impl_audit_store!(Postgres);
