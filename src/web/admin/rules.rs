//! Mapping rules: the published ruleset and its versions, single-rule edits (each
//! publishes a new version), dry runs, impact reports and the access views. Every
//! write carries `If-Match` with the version it was made against; every change is
//! audited with the before and after and the new version.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use serde_json::json;

use super::auth::{Admin, AdminRead, AdminWrite};
use super::common::audit_change;
use super::error::AdminError;
use crate::mapping::{Rule, RuleError};
use crate::service::rulesets::{CurrentRuleset, RulesetError};
use crate::store::Outcome;
use crate::web::AppState;
use crate::web::audit::audit;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/ruleset", web::get().to(get_ruleset))
        .route("/ruleset", web::put().to(put_ruleset))
        .route("/ruleset/versions", web::get().to(list_versions))
        .route("/ruleset/versions/{n}", web::get().to(get_version))
        .route("/ruleset/versions/{n}/restore", web::post().to(restore))
        .route("/ruleset/impact", web::post().to(impact))
        .route("/mapping-rules", web::get().to(list_rules))
        .route("/mapping-rules", web::post().to(create_rule))
        // Before `{id}`: "test" is not a rule id here.
        .route("/mapping-rules/test", web::post().to(test_rules))
        .route("/mapping-rules/{id}", web::get().to(get_rule))
        .route("/mapping-rules/{id}", web::put().to(replace_rule))
        .route("/mapping-rules/{id}", web::delete().to(delete_rule))
        .route(
            "/access/roles/{account}/{role}",
            web::get().to(role_holders),
        )
        .route(
            "/access/people/{source}/{subject}",
            web::get().to(person_access),
        );
}

/// The ETag of ruleset version `version`.
fn etag(version: i64) -> String {
    format!("\"v{version}\"")
}

/// The version a write was made against, from `If-Match`: 428 without one, 412
/// when it names no version or not the one in force.
fn if_match(request: &HttpRequest, current: i64) -> Result<i64, AdminError> {
    let Some(value) = request.headers().get(header::IF_MATCH) else {
        return Err(AdminError::precondition_required());
    };
    let stale = || {
        AdminError::precondition_failed(format!(
            "If-Match does not name the ruleset in force; it is at {}",
            etag(current)
        ))
    };
    let text = value.to_str().map_err(|_| stale())?.trim();
    let text = text.strip_prefix("W/").unwrap_or(text);
    let version: i64 = text
        .strip_prefix("\"v")
        .and_then(|t| t.strip_suffix('"'))
        .and_then(|n| n.parse().ok())
        .ok_or_else(stale)?;
    if version != current {
        return Err(stale());
    }
    Ok(version)
}

fn with_etag(mut response: HttpResponse, version: i64) -> HttpResponse {
    if let Ok(value) = header::HeaderValue::from_str(&etag(version)) {
        response.headers_mut().insert(header::ETAG, value);
    }
    response
}

fn ruleset_body(ruleset: &CurrentRuleset) -> serde_json::Value {
    json!({
        "version": ruleset.version,
        "content_hash": ruleset.content_hash,
        "rules": ruleset.rules,
    })
}

/// Maps the service's refusal to the admin API's error; rule errors point into the
/// request body through `rebase`.
fn refusal(error: RulesetError, rebase: impl Fn(&str) -> String) -> AdminError {
    match error {
        RulesetError::Invalid(errors) => AdminError::invalid_all(
            errors
                .into_iter()
                .map(|e| (e.code, e.message, Some(rebase(&e.pointer))))
                .collect(),
        ),
        RulesetError::Stale { current, .. } => AdminError::precondition_failed(format!(
            "the ruleset changed meanwhile; it is at {}",
            etag(current)
        )),
        RulesetError::NotFound(message) => AdminError::not_found("NOT_FOUND", message),
        RulesetError::Duplicate(message) => AdminError::conflict("DUPLICATE_NAME", message),
        RulesetError::Entitlements(error) => AdminError::internal(error),
    }
}

/// A refusal about a `{"rules": [...]}` body (or no body).
fn refused(error: RulesetError) -> AdminError {
    refusal(error, in_rules_body)
}

/// The ruleset in force.
async fn current(state: &AppState) -> Result<CurrentRuleset, AdminError> {
    state.rulesets.current().await.map_err(refused)
}

/// Rule errors of a `{"rules": [...]}` body point under `/rules`.
pub(crate) fn in_rules_body(pointer: &str) -> String {
    format!("/rules{pointer}")
}

/// Reads a list of rules, each on its own so a malformed one is named by index.
pub(crate) fn parse_rules(
    values: Vec<serde_json::Value>,
    rebase: impl Fn(&str) -> String,
) -> Result<Vec<Rule>, AdminError> {
    let mut rules = Vec::with_capacity(values.len());
    let mut errors = Vec::new();
    for (index, value) in values.into_iter().enumerate() {
        match serde_json::from_value::<Rule>(value) {
            Ok(rule) => rules.push(rule),
            Err(error) => errors.push((
                "INVALID_RULE",
                error.to_string(),
                Some(rebase(&format!("/{index}"))),
            )),
        }
    }
    if errors.is_empty() {
        Ok(rules)
    } else {
        Err(AdminError::invalid_all(errors))
    }
}

#[derive(Deserialize)]
pub(crate) struct RulesBody {
    pub(crate) rules: Vec<serde_json::Value>,
    /// Why the ruleset is published (kept with the version; PUT only).
    #[serde(default)]
    reason: Option<String>,
}

async fn get_ruleset(
    state: web::Data<AppState>,
    _admin: AdminRead,
) -> Result<HttpResponse, AdminError> {
    let current = current(&state).await?;
    Ok(with_etag(
        HttpResponse::Ok().json(ruleset_body(&current)),
        current.version,
    ))
}

async fn put_ruleset(
    state: web::Data<AppState>,
    request: HttpRequest,
    AdminWrite(admin): AdminWrite,
    body: web::Json<RulesBody>,
) -> Result<HttpResponse, AdminError> {
    let body = body.into_inner();
    let rules = parse_rules(body.rules, in_rules_body)?;
    let reason = body
        .reason
        .map(|r| r.trim().to_owned())
        .filter(|r| !r.is_empty());
    if reason.as_ref().is_some_and(|r| r.chars().count() > 500) {
        return Err(AdminError::invalid(
            "REASON_TOO_LONG",
            "the reason is longer than 500 characters",
            Some("/reason".into()),
        ));
    }
    let change = Change {
        action: "admin:PublishRuleset",
        details: json!({ "reason": reason }),
        restored_from: None,
        reason,
    };
    publish_list(&state, &request, &admin, change, rules).await
}

/// Publishes `rules` as the whole list; answers with the new version.
async fn publish_list(
    state: &AppState,
    request: &HttpRequest,
    admin: &Admin,
    change: Change,
    rules: Vec<Rule>,
) -> Result<HttpResponse, AdminError> {
    let after = publish(state, request, admin, change, |current| {
        *current = rules;
        Ok(None)
    })
    .await?;
    Ok(with_etag(
        HttpResponse::Ok().json(ruleset_body(&after)),
        after.version,
    ))
}

async fn list_versions(
    state: web::Data<AppState>,
    _admin: AdminRead,
) -> Result<HttpResponse, AdminError> {
    let versions = state
        .entitlements
        .store()
        .list_ruleset_versions()
        .await
        .map_err(AdminError::from)?;
    Ok(HttpResponse::Ok().json(json!({ "versions": versions })))
}

fn version_number(raw: &str) -> Result<i64, AdminError> {
    raw.parse::<i64>().ok().filter(|n| *n >= 1).ok_or_else(|| {
        AdminError::not_found("NOT_FOUND", format!("ruleset version {raw} does not exist"))
    })
}

async fn get_version(
    state: web::Data<AppState>,
    _admin: AdminRead,
    path: web::Path<String>,
) -> Result<HttpResponse, AdminError> {
    let number = version_number(&path)?;
    let version = state.rulesets.version(number).await.map_err(refused)?;
    Ok(HttpResponse::Ok().json(ruleset_body(&version)))
}

async fn restore(
    state: web::Data<AppState>,
    request: HttpRequest,
    AdminWrite(admin): AdminWrite,
    path: web::Path<String>,
) -> Result<HttpResponse, AdminError> {
    let number = version_number(&path)?;
    let old = state.rulesets.version(number).await.map_err(refused)?;
    let change = Change {
        action: "admin:RestoreRuleset",
        details: json!({ "restored_from": number }),
        restored_from: Some(number),
        reason: Some(format!("restored version {number}")),
    };
    publish_list(&state, &request, &admin, change, old.rules).await
}

async fn impact(
    state: web::Data<AppState>,
    _admin: AdminRead,
    body: web::Json<RulesBody>,
) -> Result<HttpResponse, AdminError> {
    let rules = parse_rules(body.into_inner().rules, in_rules_body)?;
    let current = current(&state).await?;
    let people = state.rulesets.impact(&rules).await.map_err(refused)?;
    Ok(HttpResponse::Ok().json(json!({
        "base_version": current.version,
        "people": people,
    })))
}

async fn list_rules(
    state: web::Data<AppState>,
    _admin: AdminRead,
) -> Result<HttpResponse, AdminError> {
    let current = current(&state).await?;
    Ok(with_etag(
        HttpResponse::Ok().json(json!({ "version": current.version, "rules": current.rules })),
        current.version,
    ))
}

/// A single-rule body's errors: the engine points into the whole list, at the
/// rule's index; the client sent only the rule.
fn in_rule_body(index: usize) -> impl Fn(&str) -> String {
    move |pointer: &str| {
        let own = format!("/{index}");
        match pointer.strip_prefix(&own) {
            Some(rest) if rest.is_empty() || rest.starts_with('/') => rest.to_owned(),
            _ => pointer.to_owned(),
        }
    }
}

fn parse_rule(value: serde_json::Value) -> Result<Rule, AdminError> {
    serde_json::from_value::<Rule>(value).map_err(|error| {
        AdminError::invalid("INVALID_RULE", error.to_string(), Some(String::new()))
    })
}

async fn create_rule(
    state: web::Data<AppState>,
    request: HttpRequest,
    AdminWrite(admin): AdminWrite,
    body: web::Json<serde_json::Value>,
) -> Result<HttpResponse, AdminError> {
    let rule = parse_rule(body.into_inner())?;
    let id = rule.id.clone();
    let after = publish(
        &state,
        &request,
        &admin,
        rule_change("admin:CreateMappingRule", &id),
        |rules| {
            if rules.iter().any(|r| r.id == rule.id) {
                return Err(RulesetError::Duplicate(format!(
                    "a rule with id {:?} already exists",
                    rule.id
                )));
            }
            rules.push(rule);
            Ok(Some(rules.len() - 1))
        },
    )
    .await?;
    let rule = after.rules.iter().find(|r| r.id == id);
    let mut response = HttpResponse::Created();
    response.insert_header((
        header::LOCATION,
        format!("{}/mapping-rules/{id}", super::PREFIX),
    ));
    Ok(with_etag(response.json(rule), after.version))
}

async fn get_rule(
    state: web::Data<AppState>,
    _admin: AdminRead,
    path: web::Path<String>,
) -> Result<HttpResponse, AdminError> {
    let current = current(&state).await?;
    let rule = current
        .rules
        .iter()
        .find(|r| r.id == *path)
        .ok_or_else(|| {
            AdminError::not_found(
                "NOT_FOUND",
                format!("mapping rule {:?} does not exist", *path),
            )
        })?;
    Ok(with_etag(HttpResponse::Ok().json(rule), current.version))
}

async fn replace_rule(
    state: web::Data<AppState>,
    request: HttpRequest,
    AdminWrite(admin): AdminWrite,
    path: web::Path<String>,
    body: web::Json<serde_json::Value>,
) -> Result<HttpResponse, AdminError> {
    let id = path.into_inner();
    let mut body = body.into_inner();
    // The id is the path's; a body may leave it out.
    if let Some(object) = body.as_object_mut() {
        let given = object.entry("id").or_insert_with(|| json!(id));
        if given != &json!(id) {
            return Err(AdminError::invalid(
                "ID_MISMATCH",
                "the rule's id differs from the id in the path",
                Some("/id".into()),
            ));
        }
    }
    let rule = parse_rule(body)?;
    let after = publish(
        &state,
        &request,
        &admin,
        rule_change("admin:UpdateMappingRule", &id),
        |rules| {
            let index = position(rules, &id)?;
            rules[index] = rule;
            Ok(Some(index))
        },
    )
    .await?;
    let rule = after.rules.iter().find(|r| r.id == id);
    Ok(with_etag(HttpResponse::Ok().json(rule), after.version))
}

async fn delete_rule(
    state: web::Data<AppState>,
    request: HttpRequest,
    AdminWrite(admin): AdminWrite,
    path: web::Path<String>,
) -> Result<HttpResponse, AdminError> {
    let id = path.into_inner();
    let after = publish(
        &state,
        &request,
        &admin,
        rule_change("admin:DeleteMappingRule", &id),
        |rules| {
            let index = position(rules, &id)?;
            rules.remove(index);
            Ok(None)
        },
    )
    .await?;
    Ok(with_etag(HttpResponse::NoContent().finish(), after.version))
}

/// Where rule `id` is in `rules`.
fn position(rules: &[Rule], id: &str) -> Result<usize, RulesetError> {
    rules
        .iter()
        .position(|r| r.id == id)
        .ok_or_else(|| RulesetError::NotFound(format!("mapping rule {id:?} does not exist")))
}

/// What a write publishes, for its audit event and the version's record.
struct Change {
    action: &'static str,
    details: serde_json::Value,
    restored_from: Option<i64>,
    reason: Option<String>,
}

fn rule_change(action: &'static str, id: &str) -> Change {
    Change {
        action,
        details: json!({ "rule": id }),
        restored_from: None,
        reason: None,
    }
}

/// Every ruleset write: the rules in force, changed by `edit`, published on top of
/// the version `If-Match` names, and audited either way. `edit` returns the index
/// of the single rule the request sent, if it sent one, so errors point into its
/// body rather than into the whole list.
async fn publish(
    state: &AppState,
    request: &HttpRequest,
    admin: &Admin,
    change: Change,
    edit: impl FnOnce(&mut Vec<Rule>) -> Result<Option<usize>, RulesetError>,
) -> Result<CurrentRuleset, AdminError> {
    let before = current(state).await?;
    let base = if_match(request, before.version)?;
    let mut rules = before.rules.clone();
    let published = match edit(&mut rules) {
        Ok(single) => state
            .rulesets
            .publish(
                base,
                &rules,
                &admin.actor,
                change.restored_from,
                change.reason.as_deref(),
            )
            .await
            .map_err(|error| (error, single)),
        Err(error) => Err((error, None)),
    };
    match published {
        Ok(after) => {
            audit_published(
                state,
                request,
                admin,
                change.action,
                &before,
                &after,
                change.details,
            )
            .await;
            Ok(after)
        }
        Err((error, single)) => {
            audit_refused(state, request, &admin.actor, change.action, &error).await;
            Err(match single {
                Some(index) => refusal(error, in_rule_body(index)),
                None => refused(error),
            })
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TestBody {
    pub(crate) source: String,
    #[serde(default)]
    pub(crate) claims: serde_json::Map<String, serde_json::Value>,
    #[serde(default)]
    pub(crate) rules: Option<Vec<serde_json::Value>>,
    /// A rule id: also report how each of its conditions fared.
    #[serde(default)]
    pub(crate) explain: Option<String>,
}

async fn test_rules(
    state: web::Data<AppState>,
    _admin: AdminRead,
    body: web::Json<TestBody>,
) -> Result<HttpResponse, AdminError> {
    let body = body.into_inner();
    let rules = body
        .rules
        .map(|rules| parse_rules(rules, in_rules_body))
        .transpose()?;
    let evaluation = state
        .rulesets
        .test(
            &body.source,
            &body.claims,
            rules.as_deref(),
            body.explain.as_deref(),
        )
        .await
        .map_err(refused)?;
    Ok(HttpResponse::Ok().json(evaluation))
}

async fn role_holders(
    state: web::Data<AppState>,
    _admin: AdminRead,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, AdminError> {
    let (account, role) = path.into_inner();
    let people = state
        .rulesets
        .holders(&account, &role)
        .await
        .map_err(refused)?;
    Ok(HttpResponse::Ok().json(json!({ "account": account, "role": role, "people": people })))
}

async fn person_access(
    state: web::Data<AppState>,
    _admin: AdminRead,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, AdminError> {
    let (source, subject) = path.into_inner();
    let (identity, evaluation) = state
        .rulesets
        .person(&source, &subject)
        .await
        .map_err(refused)?;
    Ok(HttpResponse::Ok().json(json!({
        "source": source,
        "subject": subject,
        "user_name": identity.user_name,
        "evaluation": evaluation,
    })))
}

async fn audit_published(
    state: &AppState,
    request: &HttpRequest,
    admin: &Admin,
    action: &str,
    before: &CurrentRuleset,
    after: &CurrentRuleset,
    mut details: serde_json::Value,
) {
    if let Some(object) = details.as_object_mut() {
        object.insert("version".into(), json!(after.version));
        object.insert("before_version".into(), json!(before.version));
        object.insert("before".into(), json!(before.rules));
        object.insert("after".into(), json!(after.rules));
    }
    let target = format!("ruleset/v{}", after.version);
    audit_change(state, request, admin, action, &target, details).await;
}

async fn audit_refused(
    state: &AppState,
    request: &HttpRequest,
    actor: &str,
    action: &str,
    error: &RulesetError,
) {
    let details = match error {
        RulesetError::Invalid(errors) => json!({
            "errors": errors.iter().map(|e: &RuleError| json!({"code": e.code, "pointer": e.pointer})).collect::<Vec<_>>(),
        }),
        other => json!({ "reason": other.to_string() }),
    };
    audit(
        state,
        request,
        actor,
        action,
        "ruleset",
        Outcome::Failure,
        details,
    )
    .await;
}
