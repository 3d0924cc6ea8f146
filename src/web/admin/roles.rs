//! An account's roles: list, create, read, replace (PUT sets every setting: the
//! trust policy, description, maximum session duration, permissions boundary, tags,
//! inline policies and attached managed policies, in one transaction), delete (with
//! its inline policies and attachments), and "revoke active sessions". Every
//! document is validated before anything is stored. Deleting a role that published
//! mapping rules grant is allowed; the answer's `warnings` name those rules.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::accounts::{existing_account, in_account, invalid_at};
use super::auth::{AdminRead, AdminWrite};
use super::common::{
    audit_change, content_etag, created, if_match, listed_in_account, named_in_path, with_etag,
};
use super::error::AdminError;
use super::policies::{
    check_attached_policies, check_document, check_inline_policies, check_policy_exists,
    document_json, document_text, identity_policies_view, optional_iam_path,
};
use crate::iam::{AccountId, Description, MaxSessionDuration, PolicyName, RoleName, Tag, Tags};
use crate::policy::PolicyKind;
use crate::store::{NewRole, RolePermissions, RoleUpdate};
use crate::web::AppState;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/accounts/{account}/roles", web::get().to(list))
        .route("/accounts/{account}/roles", web::post().to(create))
        .route("/accounts/{account}/roles/{role}", web::get().to(get))
        .route("/accounts/{account}/roles/{role}", web::put().to(replace))
        .route("/accounts/{account}/roles/{role}", web::delete().to(delete))
        .route(
            "/accounts/{account}/roles/{role}/revoke-sessions",
            web::post().to(revoke_sessions),
        );
}

/// Every setting of a role as the API takes it (POST adds `name` and `path`).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    trust_policy: Value,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    max_session_duration: Option<i64>,
    /// A managed policy ARN; absent or null: none.
    #[serde(default)]
    permissions_boundary: Option<String>,
    /// `[{"Key": "team", "Value": "platform"}]`.
    #[serde(default)]
    tags: Vec<Tag>,
    /// Inline policies by name.
    #[serde(default)]
    inline_policies: Map<String, Value>,
    /// Managed policy ARNs.
    #[serde(default)]
    attached_policies: Vec<String>,
}

/// A POST body: `name`, optional `path`, and the [`Settings`].
struct CreateRole {
    name: String,
    path: Option<String>,
    settings: Settings,
}

impl CreateRole {
    /// Splits the body by hand: serde's `flatten` cannot refuse unknown fields.
    fn from_body(mut body: Map<String, Value>) -> Result<Self, AdminError> {
        let text = |value: Option<Value>, pointer: &str| match value {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(text)) => Ok(Some(text)),
            Some(_) => Err(AdminError::invalid(
                "MALFORMED_JSON",
                format!("{} must be a string", &pointer[1..]),
                Some(pointer.to_owned()),
            )),
        };
        let name = text(body.remove("name"), "/name")?.ok_or_else(|| {
            AdminError::invalid("MALFORMED_JSON", "name is required", Some("/name".into()))
        })?;
        let path = text(body.remove("path"), "/path")?;
        let settings = serde_json::from_value(Value::Object(body)).map_err(|error| {
            AdminError::invalid(
                "MALFORMED_JSON",
                format!("The body does not have the expected shape: {error}"),
                None,
            )
        })?;
        Ok(Self {
            name,
            path,
            settings,
        })
    }
}

/// Settings validated in full (every document parsed, every referenced policy
/// found) before the store is called.
struct Checked {
    trust_policy: String,
    description: Description,
    max_session_duration: MaxSessionDuration,
    permissions_boundary: Option<String>,
    tags: Tags,
    inline_policies: Vec<(PolicyName, String)>,
    attached_policies: Vec<String>,
}

async fn check(state: &AppState, role: &str, settings: Settings) -> Result<Checked, AdminError> {
    let trust_policy = document_text(&settings.trust_policy);
    check_document(
        &trust_policy,
        PolicyKind::Trust,
        false,
        &format!("trust policy of role {role}"),
        "/trust_policy",
    )?;
    let description = Description::parse(settings.description.unwrap_or_default())
        .map_err(|e| invalid_at("/description", e))?;
    let max_session_duration = settings
        .max_session_duration
        .map(MaxSessionDuration::from_seconds)
        .transpose()
        .map_err(|e| invalid_at("/max_session_duration", e))?
        .unwrap_or_default();
    let tags = Tags::new(settings.tags).map_err(|e| invalid_at("/tags", e))?;
    let inline_policies =
        check_inline_policies(&settings.inline_policies, &format!("role {role}"))?;
    if let Some(arn) = &settings.permissions_boundary {
        check_policy_exists(state, arn, "/permissions_boundary").await?;
    }
    check_attached_policies(state, &settings.attached_policies).await?;
    Ok(Checked {
        trust_policy,
        description,
        max_session_duration,
        permissions_boundary: settings.permissions_boundary,
        tags,
        inline_policies,
        attached_policies: settings.attached_policies,
    })
}

/// A role with its documents as JSON, its inline policies by name and its
/// attached policies' ARNs: what GET answers and the audit records.
pub(crate) fn view(permissions: &RolePermissions) -> Value {
    let role = &permissions.role;
    let (inline, attached) = identity_policies_view(&permissions.identity_policies);
    json!({
        "id": role.id,
        "arn": role.arn.to_string(),
        "account": role.account_id,
        "path": role.path,
        "name": role.name,
        "description": role.description,
        "trust_policy": document_json(&role.trust_policy),
        "max_session_duration": role.max_session_duration,
        "permissions_boundary": role.permissions_boundary_arn,
        "tags": role.tags,
        "inline_policies": inline,
        "attached_policies": attached,
        "revoke_sessions_before": role.revoke_sessions_before,
        "created_at": role.created_at,
    })
}

fn summary(role: &crate::store::Role) -> Value {
    json!({
        "id": role.id,
        "arn": role.arn.to_string(),
        "path": role.path,
        "name": role.name,
        "description": role.description,
        "max_session_duration": role.max_session_duration,
        "permissions_boundary": role.permissions_boundary_arn,
        "created_at": role.created_at,
    })
}

fn target(account: &AccountId, role: &RoleName) -> String {
    format!("role/{account}/{role}")
}

/// The role a path names (a malformed name names none).
pub(super) fn role_in_path(raw: &str) -> Result<RoleName, AdminError> {
    named_in_path(RoleName::parse(raw), || {
        format!("role {raw} does not exist")
    })
}

async fn full_view(
    state: &AppState,
    account: &AccountId,
    role: &RoleName,
) -> Result<Value, AdminError> {
    Ok(view(&state.store.role_permissions(account, role).await?))
}

async fn list(
    state: web::Data<AppState>,
    _admin: AdminRead,
    path: web::Path<String>,
) -> Result<HttpResponse, AdminError> {
    let account = existing_account(&state, &path).await?;
    let roles = state.store.list_roles(&account).await?;
    let body = listed_in_account(&account, "roles", &roles, summary);
    Ok(HttpResponse::Ok().json(body))
}

async fn create(
    state: web::Data<AppState>,
    request: HttpRequest,
    AdminWrite(admin): AdminWrite,
    path: web::Path<String>,
    body: web::Json<Map<String, Value>>,
) -> Result<HttpResponse, AdminError> {
    let account = existing_account(&state, &path).await?;
    let body = CreateRole::from_body(body.into_inner())?;
    let name = RoleName::parse(body.name).map_err(|e| invalid_at("/name", e))?;
    let role_path = optional_iam_path(body.path)?;
    let checked = check(&state, name.as_str(), body.settings).await?;
    let new = NewRole {
        account_id: account.clone(),
        path: role_path,
        name: name.clone(),
        description: checked.description,
        trust_policy: checked.trust_policy,
        max_session_duration: checked.max_session_duration,
        permissions_boundary: checked.permissions_boundary,
        tags: checked.tags,
        inline_policies: checked.inline_policies,
        attached_policies: checked.attached_policies,
    };
    let role = state.store.create_role(&new).await?;
    let after = full_view(&state, &account, &role.name).await?;
    Ok(created(
        &state,
        &request,
        &admin,
        "admin:CreateRole",
        &target(&account, &role.name),
        &format!("/accounts/{account}/roles/{}", role.name),
        after,
    )
    .await)
}

async fn get(
    state: web::Data<AppState>,
    _admin: AdminRead,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, AdminError> {
    let (account, role) = in_account(path.into_inner(), role_in_path)?;
    let shown = full_view(&state, &account, &role).await?;
    let etag = content_etag(&shown);
    Ok(with_etag(HttpResponse::Ok().json(shown), &etag))
}

async fn replace(
    state: web::Data<AppState>,
    request: HttpRequest,
    AdminWrite(admin): AdminWrite,
    path: web::Path<(String, String)>,
    body: web::Json<Settings>,
) -> Result<HttpResponse, AdminError> {
    let (account, role) = in_account(path.into_inner(), role_in_path)?;
    let before = full_view(&state, &account, &role).await?;
    // Optimistic concurrency: with `If-Match`, only the version it names is
    // replaced (checked against what was read just now).
    if_match(&request, &content_etag(&before), &format!("role {role}"))?;
    let checked = check(&state, role.as_str(), body.into_inner()).await?;
    let update = RoleUpdate {
        description: Some(checked.description),
        trust_policy: Some(checked.trust_policy),
        max_session_duration: Some(checked.max_session_duration),
        permissions_boundary: Some(checked.permissions_boundary),
        tags: Some(checked.tags),
        inline_policies: Some(checked.inline_policies),
        attached_policies: Some(checked.attached_policies),
    };
    let updated = state.store.update_role(&account, &role, &update).await?;
    let after = full_view(&state, &account, &updated.name).await?;
    audit_change(
        &state,
        &request,
        &admin,
        "admin:UpdateRole",
        &target(&account, &updated.name),
        json!({ "before": before, "after": after }),
    )
    .await;
    let etag = content_etag(&after);
    Ok(with_etag(HttpResponse::Ok().json(after), &etag))
}

/// The published mapping rules that grant `role` in `account` by name: what stops
/// granting anything once the role is gone.
async fn rules_granting(
    state: &AppState,
    account: &AccountId,
    role: &RoleName,
) -> Result<Vec<Value>, AdminError> {
    let current = state
        .rulesets
        .current()
        .await
        .map_err(AdminError::internal)?;
    Ok(current
        .rules
        .iter()
        .filter(|rule| {
            rule.grant.iter().any(|grant| {
                (grant.account == account.as_str() || grant.account == "*")
                    && grant.role.eq_ignore_ascii_case(role.as_str())
            })
        })
        .map(|rule| {
            json!({
                "code": "ROLE_IN_USE",
                "rule": rule.id,
                "message": format!(
                    "mapping rule {:?} ({}) grants role {role} in account {account}; it grants nothing for it now",
                    rule.id, rule.name
                ),
            })
        })
        .collect())
}

async fn delete(
    state: web::Data<AppState>,
    request: HttpRequest,
    AdminWrite(admin): AdminWrite,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, AdminError> {
    let (account, role) = in_account(path.into_inner(), role_in_path)?;
    let before = full_view(&state, &account, &role).await?;
    state
        .store
        .delete_role_with_policies(&account, &role)
        .await?;
    let warnings = rules_granting(&state, &account, &role).await?;
    audit_change(
        &state,
        &request,
        &admin,
        "admin:DeleteRole",
        &target(&account, &role),
        json!({ "before": before, "warnings": warnings }),
    )
    .await;
    Ok(HttpResponse::Ok().json(json!({ "deleted": before["arn"], "warnings": warnings })))
}

async fn revoke_sessions(
    state: web::Data<AppState>,
    request: HttpRequest,
    AdminWrite(admin): AdminWrite,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, AdminError> {
    let (account, role) = in_account(path.into_inner(), role_in_path)?;
    let before = state.store.get_role(&account, &role).await?;
    let now = state.clock.now();
    state
        .store
        .revoke_role_sessions(&account, &role, now)
        .await?;
    // As stored (PostgreSQL keeps microseconds).
    let after = state.store.get_role(&account, &role).await?;
    audit_change(
        &state,
        &request,
        &admin,
        "admin:RevokeRoleSessions",
        &target(&account, &before.name),
        json!({
            "before": { "revoke_sessions_before": before.revoke_sessions_before },
            "after": { "revoke_sessions_before": after.revoke_sessions_before },
        }),
    )
    .await;
    Ok(HttpResponse::Ok().json(json!({
        "arn": after.arn.to_string(),
        "revoke_sessions_before": after.revoke_sessions_before,
    })))
}
