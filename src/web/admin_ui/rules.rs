//! The mapping-rule pages: the ordered list with hit counts, the editor with its
//! live test panel, the review of a draft (rule diff and who gains or loses which
//! role) and the versions with restore.
//!
//! A draft lives in the admin's browser (`static/admin-rules.js`, local storage)
//! until it is published: the pages render the rules in force and the recent
//! sign-ins, the script keeps the draft, and every check, dry run, impact report
//! and publish is the admin API's (`/admin/api/v1/ruleset`, `/mapping-rules/test`,
//! `/ruleset/impact`), so the UI validates nothing itself.

use std::collections::HashMap;

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;

use super::{AdminPage, Layout, Section, pretty, render, unavailable};
use crate::mapping::{Effect, Rule, Sources};
use crate::store::RulesetVersionSummary;
use crate::web::AppState;
use crate::web::page::PageError;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/rules", web::get().to(list))
        .route("/rules/new", web::get().to(new_rule))
        .route("/rules/review", web::get().to(review))
        .route("/rules/versions", web::get().to(versions))
        .route("/rules/versions/{n}", web::get().to(version))
        .route("/rules/{id}", web::get().to(edit_rule));
}

/// One row of the rule list.
struct RuleRow {
    id: String,
    name: String,
    effect: &'static str,
    sources: String,
    priority: i32,
    enabled: bool,
    grants: String,
    hits: i64,
    last_match: String,
}

fn effect_name(effect: Effect) -> &'static str {
    match effect {
        Effect::Grant => "grant",
        Effect::Deny => "deny",
        Effect::Session => "session",
    }
}

fn sources_text(sources: &Sources) -> String {
    match sources {
        Sources::Any => "any".into(),
        Sources::Ids(ids) => ids.join(", "),
    }
}

#[derive(Template)]
#[template(path = "admin/rules.html")]
struct ListPage {
    layout: Layout,
    version: i64,
    rows: Vec<RuleRow>,
    /// The rules in force as JSON, for the draft script.
    published: String,
}

/// The rules in force, in evaluation order (priority, then id).
fn in_order(rules: &[Rule]) -> Vec<&Rule> {
    let mut ordered: Vec<&Rule> = rules.iter().collect();
    ordered.sort_by(|a, b| (a.priority, &a.id).cmp(&(b.priority, &b.id)));
    ordered
}

async fn list(state: web::Data<AppState>, admin: AdminPage) -> Result<HttpResponse, PageError> {
    let current = state.rulesets.current().await.map_err(unavailable)?;
    let hits = state.rulesets.hits().await.map_err(unavailable)?;
    let rows = in_order(&current.rules)
        .into_iter()
        .map(|rule| {
            let hit = hits.get(&rule.id);
            RuleRow {
                id: rule.id.clone(),
                name: rule.name.clone(),
                effect: effect_name(rule.effect),
                sources: sources_text(&rule.source),
                priority: rule.priority,
                enabled: rule.enabled,
                grants: rule
                    .grant
                    .iter()
                    .map(|g| format!("{}/{}", g.account, g.role))
                    .collect::<Vec<_>>()
                    .join(", "),
                hits: hit.map_or(0, |h| h.hits),
                last_match: hit.map_or_else(
                    || "never".into(),
                    |h| h.last_matched_at.format("%Y-%m-%d %H:%M UTC").to_string(),
                ),
            }
        })
        .collect();
    render(&ListPage {
        layout: admin.layout(Section::Rules, "Mapping rules"),
        version: current.version,
        rows,
        published: pretty(&current.rules),
    })
}

/// A recent sign-in the test panel offers: its claims as the rules see them.
struct SignInChoice {
    label: String,
    source: String,
    claims: String,
}

#[derive(Template)]
#[template(path = "admin/rule_edit.html")]
struct EditPage {
    layout: Layout,
    version: i64,
    /// The rule's id when editing one; empty for a new rule.
    rule_id: String,
    published: String,
    sources: Vec<String>,
    sign_ins: Vec<SignInChoice>,
}

async fn new_rule(state: web::Data<AppState>, admin: AdminPage) -> Result<HttpResponse, PageError> {
    editor(&state, &admin, String::new()).await
}

/// The editor of rule `id`: a published one, or one only the draft has (the
/// script finds it there; an id in neither shows the script's "not found").
async fn edit_rule(
    state: web::Data<AppState>,
    admin: AdminPage,
    path: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    editor(&state, &admin, path.into_inner()).await
}

async fn editor(
    state: &AppState,
    admin: &AdminPage,
    rule_id: String,
) -> Result<HttpResponse, PageError> {
    let current = state.rulesets.current().await.map_err(unavailable)?;
    let sources = state
        .store
        .list_identity_sources()
        .await
        .map_err(unavailable)?
        .into_iter()
        .map(|s| s.id)
        .collect();
    let title = if rule_id.is_empty() {
        "New mapping rule".to_owned()
    } else {
        format!("Mapping rule {rule_id}")
    };
    render(&EditPage {
        layout: admin.layout(Section::Rules, title),
        version: current.version,
        rule_id,
        published: pretty(&current.rules),
        sources,
        sign_ins: sign_in_choices(state).await?,
    })
}

/// The recent sign-ins, newest first, with their claims in the shape the dry run
/// takes (the groups under the source's groups claim).
async fn sign_in_choices(state: &AppState) -> Result<Vec<SignInChoice>, PageError> {
    let recent = state
        .entitlements
        .recent_claims()
        .await
        .map_err(unavailable)?;
    let mut groups_claim: HashMap<String, String> = HashMap::new();
    let mut choices = Vec::with_capacity(recent.len());
    for (identity, claims) in recent {
        if !groups_claim.contains_key(&claims.source) {
            let hygiene = state
                .entitlements
                .hygiene(&claims.source)
                .await
                .map_err(unavailable)?;
            groups_claim.insert(claims.source.clone(), hygiene.groups_claim);
        }
        let mut values = claims.values.clone();
        if let (Some(name), Some(groups)) =
            (groups_claim.get(&claims.source), values.remove("groups"))
        {
            values.insert(name.clone(), groups);
        }
        choices.push(SignInChoice {
            label: format!("{} ({})", identity.user_name, identity.source_id),
            source: claims.source,
            claims: serde_json::to_string(&values).unwrap_or_default(),
        });
    }
    Ok(choices)
}

#[derive(Template)]
#[template(path = "admin/rules_review.html")]
struct ReviewPage {
    layout: Layout,
    version: i64,
    published: String,
}

async fn review(state: web::Data<AppState>, admin: AdminPage) -> Result<HttpResponse, PageError> {
    let current = state.rulesets.current().await.map_err(unavailable)?;
    render(&ReviewPage {
        layout: admin.layout(Section::Rules, "Review the draft"),
        version: current.version,
        published: pretty(&current.rules),
    })
}

#[derive(Template)]
#[template(path = "admin/rules_versions.html")]
struct VersionsPage {
    layout: Layout,
    current: i64,
    versions: Vec<RulesetVersionSummary>,
}

async fn versions(state: web::Data<AppState>, admin: AdminPage) -> Result<HttpResponse, PageError> {
    let current = state.rulesets.current().await.map_err(unavailable)?;
    let versions = state
        .entitlements
        .store()
        .list_ruleset_versions()
        .await
        .map_err(unavailable)?;
    render(&VersionsPage {
        layout: admin.layout(Section::Rules, "Ruleset versions"),
        current: current.version,
        versions,
    })
}

#[derive(Template)]
#[template(path = "admin/rules_version.html")]
struct VersionPage {
    layout: Layout,
    number: i64,
    current: i64,
    rules: String,
}

async fn version(
    state: web::Data<AppState>,
    admin: AdminPage,
    path: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    let not_found = || {
        PageError::new(
            StatusCode::NOT_FOUND,
            "No such version",
            "The ruleset has no version with this number.",
        )
        .next("/admin/rules/versions", "Ruleset versions")
    };
    let number: i64 = path.parse().map_err(|_| not_found())?;
    let current = state.rulesets.current().await.map_err(unavailable)?;
    let version = match state.rulesets.version(number).await {
        Ok(version) => version,
        Err(crate::service::rulesets::RulesetError::NotFound(_)) => return Err(not_found()),
        Err(error) => return Err(unavailable(error)),
    };
    render(&VersionPage {
        layout: admin.layout(Section::Rules, format!("Ruleset version {number}")),
        number,
        current: current.version,
        rules: pretty(&version.rules),
    })
}
