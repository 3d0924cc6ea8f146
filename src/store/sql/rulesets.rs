//! Mapping rules: published ruleset versions (immutable, numbered, the highest in
//! force) and the recent sign-ins that dry runs and impact reports evaluate.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::types::Json;
use sqlx::{Postgres, Sqlite};

use super::{SqlStore, not_found, write_error};
use crate::store::{
    NewRulesetVersion, RecentSignIn, RuleHit, RulesetVersion, RulesetVersionSummary, StoreError,
    StoreResult,
};

/// Ruleset versions and recent sign-ins (part of [`Store`](crate::store::Store)).
#[async_trait]
pub trait RulesetStore: Send + Sync {
    /// The version in force (the highest), if any was ever published.
    async fn current_ruleset(&self) -> StoreResult<Option<RulesetVersion>>;
    /// The number and hash of the version in force: what every request compares
    /// against its compiled copy, so it reads no rules.
    async fn current_ruleset_head(&self) -> StoreResult<Option<RulesetVersionSummary>>;
    async fn get_ruleset_version(&self, version: i64) -> StoreResult<RulesetVersion>;
    /// Newest first.
    async fn list_ruleset_versions(&self) -> StoreResult<Vec<RulesetVersionSummary>>;
    /// Publishes `new` as the next version, in one transaction, only while the
    /// version in force is still `new.base` (0: none yet); otherwise `Conflict`,
    /// and nothing is written.
    async fn publish_ruleset(&self, new: &NewRulesetVersion) -> StoreResult<RulesetVersion>;

    /// Keeps `sign_in` as the person's latest sign-in, counts a hit for each rule
    /// in `matched_rules` (the rules that fired for it), and deletes every sign-in
    /// older than `keep_after`.
    async fn record_sign_in(
        &self,
        sign_in: &RecentSignIn,
        matched_rules: &[String],
        keep_after: DateTime<Utc>,
    ) -> StoreResult<()>;
    /// Every rule that ever fired at a sign-in: hits and last match.
    async fn rule_hits(&self) -> StoreResult<Vec<RuleHit>>;
    /// The latest sign-in of each person, newest first, at most `limit`.
    async fn recent_sign_ins(&self, limit: i64) -> StoreResult<Vec<RecentSignIn>>;
}

type VersionRow = (
    i64,
    String,
    Json<serde_json::Value>,
    String,
    Option<i64>,
    DateTime<Utc>,
    Option<String>,
);
type SummaryRow = (
    i64,
    String,
    String,
    Option<i64>,
    DateTime<Utc>,
    Option<String>,
);

fn version(row: VersionRow) -> RulesetVersion {
    let (version, content_hash, Json(rules), published_by, restored_from, published_at, reason) =
        row;
    RulesetVersion {
        summary: RulesetVersionSummary {
            version,
            content_hash,
            published_by,
            restored_from,
            published_at,
            reason,
        },
        rules,
    }
}

fn summary(row: SummaryRow) -> RulesetVersionSummary {
    let (version, content_hash, published_by, restored_from, published_at, reason) = row;
    RulesetVersionSummary {
        version,
        content_hash,
        published_by,
        restored_from,
        published_at,
        reason,
    }
}

const VERSION_COLUMNS: &str =
    "version, content_hash, rules, published_by, restored_from, published_at, reason";
const SUMMARY_COLUMNS: &str =
    "version, content_hash, published_by, restored_from, published_at, reason";

macro_rules! impl_ruleset_store {
    ($db:ty) => {
        #[async_trait]
        impl RulesetStore for SqlStore<$db> {
            async fn current_ruleset(&self) -> StoreResult<Option<RulesetVersion>> {
                Ok(sqlx::query_as::<_, VersionRow>(&format!(
                    "SELECT {VERSION_COLUMNS} FROM ruleset_versions ORDER BY version DESC LIMIT 1"
                ))
                .fetch_optional(&self.pool)
                .await?
                .map(version))
            }

            async fn current_ruleset_head(&self) -> StoreResult<Option<RulesetVersionSummary>> {
                Ok(sqlx::query_as::<_, SummaryRow>(&format!(
                    "SELECT {SUMMARY_COLUMNS} FROM ruleset_versions ORDER BY version DESC LIMIT 1"
                ))
                .fetch_optional(&self.pool)
                .await?
                .map(summary))
            }

            async fn get_ruleset_version(&self, number: i64) -> StoreResult<RulesetVersion> {
                sqlx::query_as::<_, VersionRow>(&format!(
                    "SELECT {VERSION_COLUMNS} FROM ruleset_versions WHERE version = $1"
                ))
                .bind(number)
                .fetch_optional(&self.pool)
                .await?
                .map(version)
                .ok_or_else(|| not_found("ruleset version", number.to_string()))
            }

            async fn list_ruleset_versions(&self) -> StoreResult<Vec<RulesetVersionSummary>> {
                Ok(sqlx::query_as::<_, SummaryRow>(&format!(
                    "SELECT {SUMMARY_COLUMNS} FROM ruleset_versions ORDER BY version DESC"
                ))
                .fetch_all(&self.pool)
                .await?
                .into_iter()
                .map(summary)
                .collect())
            }

            async fn publish_ruleset(
                &self,
                new: &NewRulesetVersion,
            ) -> StoreResult<RulesetVersion> {
                let mut tx = self.begin_write().await?;
                let current: Option<i64> =
                    sqlx::query_scalar("SELECT MAX(version) FROM ruleset_versions")
                        .fetch_one(&mut *tx)
                        .await?;
                let current = current.unwrap_or(0);
                if current != new.base {
                    return Err(StoreError::Conflict(format!(
                        "the ruleset is at version {current}, not {}",
                        new.base
                    )));
                }
                let next = current + 1;
                let row = sqlx::query_as::<_, VersionRow>(&format!(
                    "INSERT INTO ruleset_versions ({VERSION_COLUMNS}) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {VERSION_COLUMNS}"
                ))
                .bind(next)
                .bind(&new.content_hash)
                .bind(Json(&new.rules))
                .bind(&new.published_by)
                .bind(new.restored_from)
                .bind(self.now())
                .bind(&new.reason)
                .fetch_one(&mut *tx)
                .await
                // Two publishers on the same base: the second loses the race here.
                .map_err(|e| {
                    match write_error(e, "ruleset version", &next.to_string(), "") {
                        StoreError::AlreadyExists { .. } => StoreError::Conflict(format!(
                            "the ruleset moved past version {current} meanwhile"
                        )),
                        other => other,
                    }
                })?;
                tx.commit().await?;
                Ok(version(row))
            }

            async fn record_sign_in(
                &self,
                sign_in: &RecentSignIn,
                matched_rules: &[String],
                keep_after: DateTime<Utc>,
            ) -> StoreResult<()> {
                let mut tx = self.begin_write().await?;
                sqlx::query(
                    "INSERT INTO recent_sign_ins (source_id, subject, user_name, identity, \
                     signed_in_at) VALUES ($1, $2, $3, $4, $5) \
                     ON CONFLICT (source_id, subject) DO UPDATE SET \
                     user_name = excluded.user_name, identity = excluded.identity, \
                     signed_in_at = excluded.signed_in_at",
                )
                .bind(&sign_in.source_id)
                .bind(&sign_in.subject)
                .bind(&sign_in.user_name)
                .bind(Json(&sign_in.identity))
                .bind(sign_in.signed_in_at)
                .execute(&mut *tx)
                .await?;
                for rule in matched_rules {
                    sqlx::query(
                        "INSERT INTO mapping_rule_hits (rule_id, hits, last_matched_at) \
                         VALUES ($1, 1, $2) ON CONFLICT (rule_id) DO UPDATE SET \
                         hits = mapping_rule_hits.hits + 1, \
                         last_matched_at = excluded.last_matched_at",
                    )
                    .bind(rule)
                    .bind(sign_in.signed_in_at)
                    .execute(&mut *tx)
                    .await?;
                }
                sqlx::query("DELETE FROM recent_sign_ins WHERE signed_in_at < $1")
                    .bind(keep_after)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(())
            }

            async fn rule_hits(&self) -> StoreResult<Vec<RuleHit>> {
                Ok(sqlx::query_as::<_, (String, i64, DateTime<Utc>)>(
                    "SELECT rule_id, hits, last_matched_at FROM mapping_rule_hits ORDER BY rule_id",
                )
                .fetch_all(&self.pool)
                .await?
                .into_iter()
                .map(|(rule_id, hits, last_matched_at)| RuleHit {
                    rule_id,
                    hits,
                    last_matched_at,
                })
                .collect())
            }

            async fn recent_sign_ins(&self, limit: i64) -> StoreResult<Vec<RecentSignIn>> {
                let rows = sqlx::query_as::<
                    _,
                    (
                        String,
                        String,
                        String,
                        Json<serde_json::Value>,
                        DateTime<Utc>,
                    ),
                >(
                    "SELECT source_id, subject, user_name, identity, signed_in_at \
                     FROM recent_sign_ins ORDER BY signed_in_at DESC, source_id, subject \
                     LIMIT $1",
                )
                .bind(limit)
                .fetch_all(&self.pool)
                .await?;
                Ok(rows
                    .into_iter()
                    .map(
                        |(source_id, subject, user_name, Json(identity), signed_in_at)| {
                            RecentSignIn {
                                source_id,
                                subject,
                                user_name,
                                identity,
                                signed_in_at,
                            }
                        },
                    )
                    .collect())
            }
        }
    };
}

impl_ruleset_store!(Sqlite);
impl_ruleset_store!(Postgres);
