//! `/admin`: what an admin checks first. Counts, rules that never matched in 30
//! days, rules whose account or role is gone, and recent denials and failures.

use actix_web::{HttpResponse, web};
use askama::Template;

use super::{AdminPage, Layout, Section, render, unavailable};
use crate::store::{AuditFilter, AuditRecord, Outcome};
use crate::web::AppState;
use crate::web::page::PageError;

/// How far back "never matched" looks.
const QUIET_DAYS: i64 = 30;
/// How many recent denials and failures the page lists.
const RECENT_EVENTS: i64 = 10;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("", web::get().to(overview))
        .route("/", web::get().to(overview));
}

struct Count {
    label: &'static str,
    value: usize,
    href: &'static str,
}

struct QuietRule {
    id: String,
    name: String,
    last_matched: String,
}

struct EventList {
    title: &'static str,
    id: &'static str,
    events: Vec<AuditRecord>,
}

struct Broken {
    rule: String,
    message: String,
}

#[derive(Template)]
#[template(path = "admin/overview.html")]
struct OverviewPage {
    layout: Layout,
    counts: Vec<Count>,
    ruleset_version: i64,
    quiet: Vec<QuietRule>,
    broken: Vec<Broken>,
    /// Recent denials, then recent failures.
    events: Vec<EventList>,
}

async fn overview(state: web::Data<AppState>, admin: AdminPage) -> Result<HttpResponse, PageError> {
    let store = state.store.as_ref();
    let accounts = store.list_accounts().await.map_err(unavailable)?;
    let roles = store.list_all_roles().await.map_err(unavailable)?.len();
    let sources = store.list_identity_sources().await.map_err(unavailable)?;
    let people = state
        .entitlements
        .recent_claims()
        .await
        .map_err(unavailable)?
        .len();
    let ruleset = state.rulesets.current().await.map_err(unavailable)?;
    let hits = state.rulesets.hits().await.map_err(unavailable)?;
    let since = state.clock.now() - chrono::Duration::days(QUIET_DAYS);
    let quiet = ruleset
        .rules
        .iter()
        .filter(|rule| rule.enabled)
        .filter_map(|rule| {
            let last = hits.get(&rule.id).map(|hit| hit.last_matched_at);
            (last.is_none_or(|at| at < since)).then(|| QuietRule {
                id: rule.id.clone(),
                name: rule.name.clone(),
                last_matched: last
                    .map(|at| at.format("%Y-%m-%d %H:%M UTC").to_string())
                    .unwrap_or_else(|| "never".into()),
            })
        })
        .collect();
    let broken = state
        .rulesets
        .broken_references()
        .await
        .map_err(unavailable)?
        .into_iter()
        .map(|error| Broken {
            rule: rule_at(&ruleset.rules, &error.pointer),
            message: error.message,
        })
        .collect();
    let recent = |outcome| AuditFilter {
        outcome: Some(outcome),
        ..AuditFilter::default()
    };
    let denials = store
        .list_audit_filtered(&recent(Outcome::Denied), RECENT_EVENTS)
        .await
        .map_err(unavailable)?;
    let failures = store
        .list_audit_filtered(&recent(Outcome::Failure), RECENT_EVENTS)
        .await
        .map_err(unavailable)?;
    let counts = vec![
        Count {
            label: "Accounts",
            value: accounts.len(),
            href: "/admin/accounts",
        },
        Count {
            label: "Roles",
            value: roles,
            href: "/admin/accounts",
        },
        Count {
            label: "Identity sources",
            value: sources.len(),
            href: "/admin/identity-sources",
        },
        Count {
            label: "Mapping rules",
            value: ruleset.rules.len(),
            href: "/admin/rules",
        },
        Count {
            label: "People seen",
            value: people,
            href: "/admin/people",
        },
    ];
    render(&OverviewPage {
        layout: admin.layout(Section::Overview, "Overview"),
        counts,
        ruleset_version: ruleset.version,
        quiet,
        broken,
        events: vec![
            EventList {
                title: "Recent denials",
                id: "recent-denials",
                events: denials,
            },
            EventList {
                title: "Recent failures (failed sign-ins and errors)",
                id: "recent-failures",
                events: failures,
            },
        ],
    })
}

/// The id of the rule a pointer such as `/3/grant/0/role` falls in.
fn rule_at(rules: &[crate::mapping::Rule], pointer: &str) -> String {
    pointer
        .split('/')
        .nth(1)
        .and_then(|index| index.parse::<usize>().ok())
        .and_then(|index| rules.get(index))
        .map(|rule| rule.id.clone())
        .unwrap_or_default()
}
