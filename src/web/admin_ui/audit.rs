//! `/admin/audit`: the audit log, newest first, filtered by actor, action, outcome
//! and time (the admin API's own query, so the "Export as JSON lines" link is this
//! page's query sent to the API's export), each event expandable to its details
//! with the before and after of a change side by side.

use actix_web::{HttpResponse, web};
use askama::Template;

use super::{AdminPage, Layout, Section, pretty, render, unavailable};
use crate::store::AuditRecord;
use crate::web::AppState;
use crate::web::admin::audit::AuditQuery;
use crate::web::page::PageError;

/// Events per page.
const PAGE_SIZE: i64 = 50;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/audit", web::get().to(audit));
}

/// One event as the page shows it.
struct Row {
    event: AuditRecord,
    /// This page filtered by the event's actor, and by its action.
    actor_href: String,
    action_href: String,
    /// The change's before and after, when the event records them.
    change: Option<(String, String)>,
    details: String,
}

impl Row {
    fn new(event: AuditRecord) -> Self {
        let details = &event.details;
        let change =
            (details.get("before").is_some() || details.get("after").is_some()).then(|| {
                let side = |key: &str| pretty(details.get(key).unwrap_or(&serde_json::Value::Null));
                (side("before"), side("after"))
            });
        let only = |query: AuditQuery| with_query("/admin/audit", &query);
        Self {
            details: pretty(details),
            change,
            actor_href: only(AuditQuery {
                actor: Some(event.actor.clone()),
                ..AuditQuery::default()
            }),
            action_href: only(AuditQuery {
                action: Some(event.action.clone()),
                ..AuditQuery::default()
            }),
            event,
        }
    }

    fn reason(&self) -> &str {
        self.event.details["reason"].as_str().unwrap_or("")
    }
}

#[derive(Template)]
#[template(path = "admin/audit.html")]
struct AuditPage {
    layout: Layout,
    query: AuditQuery,
    /// Why the filter could not be applied.
    error: Option<String>,
    rows: Vec<Row>,
    /// The API export of this selection (every page of it).
    export: String,
    /// The next (older) page, when this one is full.
    older: Option<String>,
    /// Whether this is a later page (offer the newest again).
    paged: bool,
    /// The first page of this selection.
    newest: String,
}

impl AuditPage {
    fn outcome_is(&self, outcome: &str) -> bool {
        self.query.outcome.as_deref().unwrap_or("") == outcome
    }
}

/// `path?query` with `query`'s non-empty filters (`before` as given).
fn with_query(path: &str, query: &AuditQuery) -> String {
    let blank = |value: &Option<String>| value.clone().filter(|v| !v.trim().is_empty());
    let query = AuditQuery {
        actor: blank(&query.actor),
        action: blank(&query.action),
        outcome: blank(&query.outcome),
        since: blank(&query.since),
        until: blank(&query.until),
        limit: None,
        before: query.before,
    };
    match serde_urlencoded::to_string(&query) {
        Ok(encoded) if !encoded.is_empty() => format!("{path}?{encoded}"),
        _ => path.to_owned(),
    }
}

async fn audit(
    state: web::Data<AppState>,
    admin: AdminPage,
    query: Result<web::Query<AuditQuery>, actix_web::Error>,
) -> Result<HttpResponse, PageError> {
    let (query, filter) = match query {
        Ok(query) => {
            let query = query.into_inner();
            let filter = query.filter().map_err(|e| e.message().to_owned());
            (query, filter)
        }
        Err(error) => (
            AuditQuery::default(),
            Err(format!("The filters could not be read: {error}")),
        ),
    };
    let (rows, error) = match filter {
        Ok(filter) => {
            let events = state
                .store
                .list_audit_filtered(&filter, PAGE_SIZE)
                .await
                .map_err(unavailable)?;
            (events, None)
        }
        Err(error) => (Vec::new(), Some(error)),
    };
    let older = (rows.len() as i64 == PAGE_SIZE)
        .then(|| rows.last().map(|event| event.id))
        .flatten()
        .map(|before| {
            with_query(
                "/admin/audit",
                &AuditQuery {
                    before: Some(before),
                    ..query.clone()
                },
            )
        });
    let export = with_query(
        &format!("{}/audit-events/export", crate::web::admin::PREFIX),
        &AuditQuery {
            before: None,
            ..query.clone()
        },
    );
    render(&AuditPage {
        layout: admin.layout(Section::Audit, "Audit log"),
        paged: query.before.is_some(),
        newest: with_query(
            "/admin/audit",
            &AuditQuery {
                before: None,
                ..query.clone()
            },
        ),
        query,
        error,
        rows: rows.into_iter().map(Row::new).collect(),
        export,
        older,
    })
}
