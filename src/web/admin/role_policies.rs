//! A role's policies one at a time: attach and detach a managed policy (named by
//! its id), put and delete an inline policy (named by its name). The role's PUT
//! replaces everything at once; these change one policy and leave the rest.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use serde_json::{Value, json};

use super::accounts::{in_account, invalid_at};
use super::auth::AdminWrite;
use super::common::{audit_change, named_in_path, when_not_found};
use super::error::AdminError;
use super::policies::{check_document, document_json, document_text, identity_policies_view};
use super::roles::role_in_path;
use crate::iam::{AccountId, PolicyName, RoleName};
use crate::policy::PolicyKind;
use crate::web::AppState;

pub fn routes(cfg: &mut web::ServiceConfig) {
    const ATTACHED: &str = "/accounts/{account}/roles/{role}/attached-policies/{policy_id}";
    const INLINE: &str = "/accounts/{account}/roles/{role}/inline-policies/{name}";
    cfg.route(ATTACHED, web::put().to(attach))
        .route(ATTACHED, web::delete().to(detach))
        .route(INLINE, web::put().to(put_inline))
        .route(INLINE, web::delete().to(delete_inline));
}

fn target(account: &AccountId, role: &RoleName) -> String {
    format!("role/{account}/{role}")
}

/// The role's policies as the role's GET shows them.
async fn policies_view(
    state: &AppState,
    account: &AccountId,
    role: &RoleName,
) -> Result<Value, AdminError> {
    let permissions = state.store.role_permissions(account, role).await?;
    let (inline, attached) = identity_policies_view(&permissions.identity_policies);
    Ok(json!({
        "arn": permissions.role.arn.to_string(),
        "inline_policies": inline,
        "attached_policies": attached,
    }))
}

/// `(account, role, policy id)` from the path; the role must exist.
async fn role_and_policy(
    state: &AppState,
    path: (String, String, String),
) -> Result<(AccountId, RoleName, crate::store::ManagedPolicy), AdminError> {
    let (account, role, policy_id) = path;
    let (account, role) = in_account((account, role), role_in_path)?;
    state.store.get_role(&account, &role).await?;
    let policy = state.store.get_policy_by_id(&policy_id).await?;
    Ok((account, role, policy))
}

/// `PUT .../attached-policies/{policy_id}`: attaches the policy (again is no change).
async fn attach(
    state: web::Data<AppState>,
    request: HttpRequest,
    AdminWrite(admin): AdminWrite,
    path: web::Path<(String, String, String)>,
) -> Result<HttpResponse, AdminError> {
    let (account, role, policy) = role_and_policy(&state, path.into_inner()).await?;
    let before = policies_view(&state, &account, &role).await?;
    state
        .store
        .attach_role_policy(&account, &role, &policy.arn)
        .await?;
    let after = policies_view(&state, &account, &role).await?;
    audit_change(
        &state,
        &request,
        &admin,
        "admin:AttachRolePolicy",
        &target(&account, &role),
        json!({ "policy_arn": policy.arn, "before": before["attached_policies"], "after": after["attached_policies"] }),
    )
    .await;
    Ok(HttpResponse::Ok().json(after))
}

/// `DELETE .../attached-policies/{policy_id}`: 404 when it is not attached.
async fn detach(
    state: web::Data<AppState>,
    request: HttpRequest,
    AdminWrite(admin): AdminWrite,
    path: web::Path<(String, String, String)>,
) -> Result<HttpResponse, AdminError> {
    let (account, role, policy) = role_and_policy(&state, path.into_inner()).await?;
    let before = policies_view(&state, &account, &role).await?;
    state
        .store
        .detach_role_policy(&account, &role, &policy.arn)
        .await
        .map_err(when_not_found(|| {
            AdminError::not_found(
                "NOT_FOUND",
                format!("policy {} is not attached to role {role}", policy.arn),
            )
        }))?;
    let after = policies_view(&state, &account, &role).await?;
    audit_change(
        &state,
        &request,
        &admin,
        "admin:DetachRolePolicy",
        &target(&account, &role),
        json!({ "policy_arn": policy.arn, "before": before["attached_policies"], "after": after["attached_policies"] }),
    )
    .await;
    Ok(HttpResponse::Ok().json(after))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InlineBody {
    document: Value,
}

/// `(account, role, inline policy name)` from the path; the role must exist.
async fn role_and_name(
    state: &AppState,
    path: (String, String, String),
) -> Result<(AccountId, RoleName, PolicyName), AdminError> {
    let (account, role, name) = path;
    let (account, role) = in_account((account, role), role_in_path)?;
    state.store.get_role(&account, &role).await?;
    let name = named_in_path(PolicyName::parse(name.as_str()), || {
        format!("role {role} has no inline policy {name}")
    })?;
    Ok((account, role, name))
}

/// `PUT .../inline-policies/{name}`: creates or replaces the inline policy; the
/// document is validated first (422 with its location).
async fn put_inline(
    state: web::Data<AppState>,
    request: HttpRequest,
    AdminWrite(admin): AdminWrite,
    path: web::Path<(String, String, String)>,
    body: web::Json<InlineBody>,
) -> Result<HttpResponse, AdminError> {
    let (account, role, name) = role_and_name(&state, path.into_inner()).await?;
    let document = document_text(&body.into_inner().document);
    check_document(
        &document,
        PolicyKind::Identity,
        true,
        &format!("inline policy {name} of role {role}"),
        "/document",
    )?;
    let before = policies_view(&state, &account, &role).await?;
    state
        .store
        .put_role_policy(&account, &role, &name, &document)
        .await
        .map_err(|error| match error {
            crate::store::StoreError::Invalid(invalid) => invalid_at("/document", invalid),
            other => other.into(),
        })?;
    audit_change(
        &state,
        &request,
        &admin,
        "admin:PutRolePolicy",
        &target(&account, &role),
        json!({
            "policy_name": name,
            "before": before["inline_policies"].get(name.as_str()),
            "after": document_json(&document),
        }),
    )
    .await;
    Ok(HttpResponse::Ok().json(policies_view(&state, &account, &role).await?))
}

/// `DELETE .../inline-policies/{name}`.
async fn delete_inline(
    state: web::Data<AppState>,
    request: HttpRequest,
    AdminWrite(admin): AdminWrite,
    path: web::Path<(String, String, String)>,
) -> Result<HttpResponse, AdminError> {
    let (account, role, name) = role_and_name(&state, path.into_inner()).await?;
    let before = policies_view(&state, &account, &role).await?;
    state
        .store
        .delete_role_policy(&account, &role, &name)
        .await
        .map_err(when_not_found(|| {
            AdminError::not_found(
                "NOT_FOUND",
                format!("role {role} has no inline policy {name}"),
            )
        }))?;
    audit_change(
        &state,
        &request,
        &admin,
        "admin:DeleteRolePolicy",
        &target(&account, &role),
        json!({ "policy_name": name, "before": before["inline_policies"].get(name.as_str()) }),
    )
    .await;
    Ok(HttpResponse::Ok().json(policies_view(&state, &account, &role).await?))
}
