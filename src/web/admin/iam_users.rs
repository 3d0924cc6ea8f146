//! An account's IAM users (long-term workload identities) and their access keys.
//! Keys are made by the STS service ([`crate::service::issuance::Sts::create_access_key`]:
//! generated there, the secret sealed under the master key); the secret is in the
//! creation answer only, never in a GET and never in the audit log. The store keeps
//! no last-used time for keys, so none is shown.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::accounts::{existing_account, in_account, invalid_at};
use super::auth::{AdminRead, AdminWrite};
use super::common::{
    audit_change, created, listed, listed_in_account, named_in_path, when_not_found,
};
use super::error::AdminError;
use super::policies::{
    check_attached_policies, check_inline_policies, identity_policies_view, optional_iam_path,
};
use crate::iam::{AccountId, Tag, Tags, UserName};
use crate::store::{AccessKeyRecord, AccessKeyStatus, NewIamUser, UserPermissions};
use crate::web::AppState;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/accounts/{account}/iam-users", web::get().to(list))
        .route("/accounts/{account}/iam-users", web::post().to(create))
        .route("/accounts/{account}/iam-users/{user}", web::get().to(get))
        .route(
            "/accounts/{account}/iam-users/{user}/access-keys",
            web::get().to(list_keys),
        )
        .route(
            "/accounts/{account}/iam-users/{user}/access-keys",
            web::post().to(create_key),
        )
        .route(
            "/accounts/{account}/iam-users/{user}/access-keys/{key_id}",
            web::put().to(set_key_status),
        )
        .route(
            "/accounts/{account}/iam-users/{user}/access-keys/{key_id}",
            web::delete().to(delete_key),
        );
}

fn user_in_path(raw: &str) -> Result<UserName, AdminError> {
    named_in_path(UserName::parse(raw), || {
        format!("IAM user {raw} does not exist")
    })
}

fn path_of(path: (String, String)) -> Result<(AccountId, UserName), AdminError> {
    in_account(path, user_in_path)
}

fn target(account: &AccountId, user: &UserName) -> String {
    format!("iam-user/{account}/{user}")
}

/// A user with its inline policies by name and its attached policies' ARNs.
fn view(permissions: &UserPermissions) -> Value {
    let user = &permissions.user;
    let (inline, attached) = identity_policies_view(&permissions.identity_policies);
    json!({
        "id": user.id,
        "arn": user.arn,
        "account": user.account_id,
        "path": user.path,
        "name": user.name,
        "tags": user.tags,
        "inline_policies": inline,
        "attached_policies": attached,
        "created_at": user.created_at,
    })
}

/// An access key as shown: never its secret.
fn key_view(key: &AccessKeyRecord) -> Value {
    json!({
        "access_key_id": key.access_key_id,
        "user": key.user.name,
        "status": key.status.as_str(),
        "created_at": key.created_at,
    })
}

async fn list(
    state: web::Data<AppState>,
    _admin: AdminRead,
    path: web::Path<String>,
) -> Result<HttpResponse, AdminError> {
    let account = existing_account(&state, &path).await?;
    let users = state.store.list_iam_users(&account).await?;
    let body = listed_in_account(&account, "iam_users", &users, |user| {
        json!({
            "id": user.id,
            "arn": user.arn,
            "path": user.path,
            "name": user.name,
            "tags": user.tags,
            "created_at": user.created_at,
        })
    });
    Ok(HttpResponse::Ok().json(body))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateUser {
    name: String,
    #[serde(default)]
    path: Option<String>,
    #[serde(default)]
    tags: Vec<Tag>,
    #[serde(default)]
    inline_policies: Map<String, Value>,
    #[serde(default)]
    attached_policies: Vec<String>,
}

async fn create(
    state: web::Data<AppState>,
    request: HttpRequest,
    AdminWrite(admin): AdminWrite,
    path: web::Path<String>,
    body: web::Json<CreateUser>,
) -> Result<HttpResponse, AdminError> {
    let account = existing_account(&state, &path).await?;
    let body = body.into_inner();
    let name = UserName::parse(body.name).map_err(|e| invalid_at("/name", e))?;
    let user_path = optional_iam_path(body.path)?;
    let tags = Tags::new(body.tags).map_err(|e| invalid_at("/tags", e))?;
    let inline_policies =
        check_inline_policies(&body.inline_policies, &format!("IAM user {name}"))?;
    check_attached_policies(&state, &body.attached_policies).await?;
    let user = state
        .store
        .create_iam_user(&NewIamUser {
            account_id: account.clone(),
            path: user_path,
            name,
            tags,
            inline_policies,
            attached_policies: body.attached_policies,
        })
        .await?;
    let after = view(&state.store.user_permissions(&account, &user.name).await?);
    Ok(created(
        &state,
        &request,
        &admin,
        "admin:CreateIamUser",
        &target(&account, &user.name),
        &format!("/accounts/{account}/iam-users/{}", user.name),
        after,
    )
    .await)
}

async fn get(
    state: web::Data<AppState>,
    _admin: AdminRead,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, AdminError> {
    let (account, user) = path_of(path.into_inner())?;
    let permissions = state.store.user_permissions(&account, &user).await?;
    Ok(HttpResponse::Ok().json(view(&permissions)))
}

async fn list_keys(
    state: web::Data<AppState>,
    _admin: AdminRead,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, AdminError> {
    let (account, user) = path_of(path.into_inner())?;
    let keys = state.store.list_access_keys(&account, &user).await?;
    Ok(HttpResponse::Ok().json(listed("access_keys", &keys, key_view)))
}

async fn create_key(
    state: web::Data<AppState>,
    request: HttpRequest,
    AdminWrite(admin): AdminWrite,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, AdminError> {
    let (account, user) = path_of(path.into_inner())?;
    let owner = state.store.get_iam_user(&account, &user).await?;
    let (access_key_id, secret) = state.sts.create_access_key(&account, &owner.name).await?;
    let key = state.store.get_access_key(&access_key_id).await?;
    let shown = key_view(&key);
    audit_change(
        &state,
        &request,
        &admin,
        "admin:CreateAccessKey",
        &target(&account, &owner.name),
        json!({ "after": shown }),
    )
    .await;
    let mut body = shown;
    // Shown this once: only its sealed form is stored.
    body["secret_access_key"] = json!(secret);
    Ok(HttpResponse::Created().json(body))
}

/// The key a path names, which must belong to the user the path names.
async fn key_in_path(
    state: &AppState,
    account: &AccountId,
    user: &UserName,
    key_id: &str,
) -> Result<AccessKeyRecord, AdminError> {
    let missing = || {
        AdminError::not_found(
            "NOT_FOUND",
            format!("IAM user {user} in account {account} has no access key {key_id}"),
        )
    };
    let key = state
        .store
        .get_access_key(key_id)
        .await
        .map_err(when_not_found(&missing))?;
    let owned = key.user.account_id == *account
        && key.user.name.as_str().eq_ignore_ascii_case(user.as_str());
    if owned { Ok(key) } else { Err(missing()) }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyStatus {
    status: String,
}

async fn set_key_status(
    state: web::Data<AppState>,
    request: HttpRequest,
    AdminWrite(admin): AdminWrite,
    path: web::Path<(String, String, String)>,
    body: web::Json<KeyStatus>,
) -> Result<HttpResponse, AdminError> {
    let (account, user, key_id) = path.into_inner();
    let (account, user) = path_of((account, user))?;
    let status = AccessKeyStatus::try_from(body.into_inner().status)
        .map_err(|e| invalid_at("/status", e))?;
    let before = key_in_path(&state, &account, &user, &key_id).await?;
    state.store.set_access_key_status(&key_id, status).await?;
    let after = key_in_path(&state, &account, &user, &key_id).await?;
    audit_change(
        &state,
        &request,
        &admin,
        "admin:UpdateAccessKey",
        &target(&account, &before.user.name),
        json!({ "before": key_view(&before), "after": key_view(&after) }),
    )
    .await;
    Ok(HttpResponse::Ok().json(key_view(&after)))
}

async fn delete_key(
    state: web::Data<AppState>,
    request: HttpRequest,
    AdminWrite(admin): AdminWrite,
    path: web::Path<(String, String, String)>,
) -> Result<HttpResponse, AdminError> {
    let (account, user, key_id) = path.into_inner();
    let (account, user) = path_of((account, user))?;
    let before = key_in_path(&state, &account, &user, &key_id).await?;
    state.store.delete_access_key(&key_id).await?;
    audit_change(
        &state,
        &request,
        &admin,
        "admin:DeleteAccessKey",
        &target(&account, &before.user.name),
        json!({ "before": key_view(&before) }),
    )
    .await;
    Ok(HttpResponse::NoContent().finish())
}
