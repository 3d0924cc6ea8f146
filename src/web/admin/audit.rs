//! `/admin/api/v1/audit-events`: the audit log, newest first, filtered by actor,
//! action, outcome and time; `/export` writes the same selection as NDJSON.

use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::auth::AdminRead;
use super::error::AdminError;
use crate::store::{AuditFilter, Outcome};
use crate::web::AppState;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/audit-events", web::get().to(list))
        .route("/audit-events/export", web::get().to(export));
}

/// Events per page when `limit` is not given, and the most per page.
const DEFAULT_LIMIT: i64 = 100;
const MAX_LIMIT: i64 = 1000;
/// Events per export when `limit` is not given, and the most per export.
const DEFAULT_EXPORT_LIMIT: i64 = 10_000;
const MAX_EXPORT_LIMIT: i64 = 100_000;

/// The query of a listing or an export; the admin UI's audit page takes the same
/// query, so its export link is its own query without the paging.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AuditQuery {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
    /// RFC 3339: events at or after.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
    /// RFC 3339: events before.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub until: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<i64>,
    /// Paging: only events with a smaller id (the previous page's `next_before`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub before: Option<i64>,
}

fn time(value: Option<&str>, name: &str) -> Result<Option<DateTime<Utc>>, AdminError> {
    value
        .filter(|v| !v.is_empty())
        .map(|v| {
            DateTime::parse_from_rfc3339(v)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|_| {
                    AdminError::invalid(
                        "VALIDATION_ERROR",
                        format!("{name} must be an RFC 3339 time, e.g. 2026-12-07T10:00:00Z"),
                        None,
                    )
                })
        })
        .transpose()
}

impl AuditQuery {
    pub(crate) fn filter(&self) -> Result<AuditFilter, AdminError> {
        let outcome = match self.outcome.as_deref().filter(|v| !v.is_empty()) {
            None => None,
            Some(value) => Some(Outcome::try_from(value.to_owned()).map_err(|_| {
                AdminError::invalid(
                    "VALIDATION_ERROR",
                    "outcome must be success, failure or denied",
                    None,
                )
            })?),
        };
        let text = |value: &Option<String>| value.clone().filter(|v| !v.is_empty());
        Ok(AuditFilter {
            actor: text(&self.actor),
            action: text(&self.action),
            outcome,
            since: time(self.since.as_deref(), "since")?,
            until: time(self.until.as_deref(), "until")?,
            before_id: self.before,
        })
    }

    fn limit(&self, default: i64, max: i64) -> Result<i64, AdminError> {
        let limit = self.limit.unwrap_or(default);
        if !(1..=max).contains(&limit) {
            return Err(AdminError::invalid(
                "VALIDATION_ERROR",
                format!("limit must be between 1 and {max}"),
                None,
            ));
        }
        Ok(limit)
    }
}

async fn list(
    state: web::Data<AppState>,
    AdminRead(_): AdminRead,
    query: web::Query<AuditQuery>,
) -> Result<HttpResponse, AdminError> {
    let filter = query.filter()?;
    let limit = query.limit(DEFAULT_LIMIT, MAX_LIMIT)?;
    let events = state.store.list_audit_filtered(&filter, limit).await?;
    let next_before = (events.len() as i64 == limit)
        .then(|| events.last().map(|e| e.id))
        .flatten();
    Ok(HttpResponse::Ok().json(json!({ "events": events, "next_before": next_before })))
}

async fn export(
    state: web::Data<AppState>,
    AdminRead(_): AdminRead,
    query: web::Query<AuditQuery>,
) -> Result<HttpResponse, AdminError> {
    let mut filter = query.filter()?;
    let mut left = query.limit(DEFAULT_EXPORT_LIMIT, MAX_EXPORT_LIMIT)?;
    let mut body = Vec::new();
    while left > 0 {
        let page = left.min(MAX_LIMIT);
        let events = state.store.list_audit_filtered(&filter, page).await?;
        for event in &events {
            serde_json::to_writer(&mut body, event).map_err(AdminError::internal)?;
            body.push(b'\n');
        }
        left -= events.len() as i64;
        match events.last() {
            Some(last) if events.len() as i64 == page => filter.before_id = Some(last.id),
            _ => break,
        }
    }
    Ok(HttpResponse::Ok()
        .content_type("application/x-ndjson")
        .insert_header((
            actix_web::http::header::CONTENT_DISPOSITION,
            "attachment; filename=\"audit-events.ndjson\"",
        ))
        .body(body))
}
