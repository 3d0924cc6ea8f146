//! `/admin/api/v1/directory/...`: the built-in directory's users (create, edit, delete,
//! set or generate a password, reset the second factor, lock and unlock) and groups
//! (create, delete, add and remove members). Every change is audited with the before
//! and after (never a password, hash or TOTP secret). A change that would take the
//! acting admin's own admin access away is refused with 409 `LOCKOUT_RISK` unless the
//! request says `?confirm_lockout=true` (see [`lockout_guard`]).

use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::auth::{Admin, AdminRead, AdminWrite};
use super::common::{audit_change, end_sign_ins, when_not_found};
use super::error::AdminError;
use crate::iam::{GroupName, UserName};
use crate::idp::directory::{DIRECTORY_SOURCE_ID, check_new_password, hash_password_async};
use crate::idp::identity::Identity;
use crate::service::admin_access::{AccessChange, acting_person, loses_admin_access};
use crate::store::{Group, NewGroup, NewUser, Outcome, StoreError, User};
use crate::web::AppState;
use crate::web::audit::audit;

/// The longest display name or description kept.
const MAX_TEXT_CHARS: usize = 256;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/directory/users", web::get().to(list_users))
        .route("/directory/users", web::post().to(create_user))
        .route("/directory/users/{user}", web::get().to(get_user))
        .route("/directory/users/{user}", web::patch().to(update_user))
        .route("/directory/users/{user}", web::delete().to(delete_user))
        .route(
            "/directory/users/{user}/password",
            web::post().to(set_password),
        )
        .route("/directory/users/{user}/totp", web::delete().to(reset_totp))
        .route("/directory/users/{user}/lock", web::post().to(lock_user))
        .route(
            "/directory/users/{user}/unlock",
            web::post().to(unlock_user),
        )
        .route("/directory/groups", web::get().to(list_groups))
        .route("/directory/groups", web::post().to(create_group))
        .route("/directory/groups/{group}", web::delete().to(delete_group))
        .route(
            "/directory/groups/{group}/members/{user}",
            web::put().to(add_member),
        )
        .route(
            "/directory/groups/{group}/members/{user}",
            web::delete().to(remove_member),
        );
}

/// `?confirm_lockout=true`: go ahead even if the change ends the caller's own admin
/// access.
#[derive(Debug, Default, Deserialize)]
pub(super) struct Confirm {
    #[serde(default)]
    confirm_lockout: bool,
}

/// The person behind the request as the admin-access check sees them: the session's
/// identity, or for a token the identity of its creator now (a directory user with
/// their current groups; a person of another source is assumed to hold every admin
/// group of that source, since Rolegate cannot see their groups between sign-ins).
/// `None` when there is no such person (a deleted user, the bootstrap CLI).
async fn acting_identity(state: &AppState, admin: &Admin) -> Result<Option<Identity>, AdminError> {
    if let Some(identity) = &admin.identity {
        return Ok(Some(identity.clone()));
    }
    let Some((source, user_name)) = acting_person(&admin.actor) else {
        return Ok(None);
    };
    let groups = if source == DIRECTORY_SOURCE_ID {
        let Ok(name) = UserName::parse(user_name) else {
            return Ok(None);
        };
        match group_names(state, &name).await {
            Ok(groups) => groups,
            Err(StoreError::NotFound { .. }) => return Ok(None),
            Err(error) => return Err(error.into()),
        }
    } else {
        state
            .admin
            .groups()
            .iter()
            .filter(|g| g.source == source)
            .map(|g| g.group.clone())
            .collect()
    };
    Ok(Some(Identity {
        source_id: source.to_owned(),
        subject: String::new(),
        user_name: user_name.to_owned(),
        display_name: user_name.to_owned(),
        email: None,
        groups,
        attributes: Default::default(),
        claims: Default::default(),
    }))
}

/// Refuses (409 `LOCKOUT_RISK`, audited as denied) a change that would end the
/// acting admin's own admin access, unless the request confirmed it.
pub(super) async fn lockout_guard(
    state: &AppState,
    request: &HttpRequest,
    admin: &Admin,
    confirm: &Confirm,
    action: &str,
    target: &str,
    change: AccessChange<'_>,
) -> Result<(), AdminError> {
    if confirm.confirm_lockout {
        return Ok(());
    }
    let Some(identity) = acting_identity(state, admin).await? else {
        return Ok(());
    };
    if !loses_admin_access(state.admin.groups(), &identity, change) {
        return Ok(());
    }
    audit(
        state,
        request,
        &admin.actor,
        action,
        target,
        Outcome::Denied,
        json!({ "reason": "the change would end the caller's own admin access", "code": "LOCKOUT_RISK" }),
    )
    .await;
    Err(AdminError::conflict(
        "LOCKOUT_RISK",
        format!(
            "This change would end your own admin access ({}:{}). Repeat it with ?confirm_lockout=true if that is what you want.",
            identity.source_id, identity.user_name
        ),
    ))
}

/// A directory user as the API shows it: never the password hash or TOTP secret.
#[derive(Serialize)]
struct UserView {
    user_name: String,
    display_name: String,
    email: Option<String>,
    disabled: bool,
    password_set: bool,
    totp_enabled_at: Option<DateTime<Utc>>,
    locked_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    groups: Option<Vec<String>>,
}

fn user_view(user: &User, groups: Option<Vec<String>>) -> UserView {
    UserView {
        user_name: user.user_name.to_string(),
        display_name: user.display_name.clone(),
        email: user.email.clone(),
        disabled: user.disabled,
        password_set: user.password_hash.is_some(),
        totp_enabled_at: user.totp_enabled_at,
        locked_at: user.locked_at,
        created_at: user.created_at,
        groups,
    }
}

fn to_json(value: impl Serialize) -> serde_json::Value {
    serde_json::to_value(value).unwrap_or(serde_json::Value::Null)
}

#[derive(Serialize)]
struct GroupView {
    name: String,
    description: String,
    created_at: DateTime<Utc>,
    members: Vec<String>,
}

fn group_view(group: &Group, members: &[UserName]) -> GroupView {
    GroupView {
        name: group.name.to_string(),
        description: group.description.clone(),
        created_at: group.created_at,
        members: members.iter().map(ToString::to_string).collect(),
    }
}

/// A user name from the path; one that cannot exist is not found.
fn user_in_path(raw: &str) -> Result<UserName, AdminError> {
    UserName::parse(raw).map_err(|_| no_user(raw))
}

fn group_in_path(raw: &str) -> Result<GroupName, AdminError> {
    GroupName::parse(raw).map_err(|_| no_group(raw))
}

fn no_user(name: &str) -> AdminError {
    AdminError::not_found("NOT_FOUND", format!("The directory has no user {name:?}."))
}

fn no_group(name: &str) -> AdminError {
    AdminError::not_found("NOT_FOUND", format!("The directory has no group {name:?}."))
}

/// Store errors of one user: not found names the user.
fn user_error(name: &str) -> impl Fn(StoreError) -> AdminError + '_ {
    when_not_found(move || no_user(name))
}

/// The stored user `name`, named in the path as `raw`.
async fn stored_user(state: &AppState, name: &UserName, raw: &str) -> Result<User, AdminError> {
    state
        .store
        .get_user(DIRECTORY_SOURCE_ID, name)
        .await
        .map_err(user_error(raw))
}

/// The names of the groups the user is in.
async fn group_names(state: &AppState, name: &UserName) -> Result<Vec<String>, StoreError> {
    let groups = state
        .store
        .groups_for_user(DIRECTORY_SOURCE_ID, name)
        .await?;
    Ok(groups.into_iter().map(|g| g.name.to_string()).collect())
}

/// A free text (display name, description) of at most [`MAX_TEXT_CHARS`] without
/// control characters; 422 pointing at `field`.
fn check_text(value: &str, field: &str) -> Result<String, AdminError> {
    let value = value.trim();
    if value.chars().count() > MAX_TEXT_CHARS || value.chars().any(char::is_control) {
        return Err(AdminError::invalid(
            "INVALID_TEXT",
            format!(
                "{field} must be at most {MAX_TEXT_CHARS} characters without control characters"
            ),
            Some(format!("/{field}")),
        ));
    }
    Ok(value.to_owned())
}

/// An email address (`None` or empty: none), plausibly shaped; 422 at `/email`.
fn check_email(email: Option<&str>) -> Result<Option<String>, AdminError> {
    let email = match email.map(str::trim) {
        None | Some("") => return Ok(None),
        Some(email) => email,
    };
    let plausible = email.len() <= MAX_TEXT_CHARS
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty() && domain.contains('.') && !domain.starts_with('.')
        })
        && !email.chars().any(|c| c.is_whitespace() || c.is_control());
    if !plausible {
        return Err(AdminError::invalid(
            "INVALID_EMAIL",
            format!("{email:?} is not an email address"),
            Some("/email".into()),
        ));
    }
    Ok(Some(email.to_owned()))
}

/// Gives the user's live portal sessions their current groups, so admin access and
/// the portal follow a membership change at once.
async fn refresh_session_groups(state: &AppState, user_name: &UserName) -> Result<(), AdminError> {
    let groups = match group_names(state, user_name).await {
        Ok(groups) => groups,
        Err(StoreError::NotFound { .. }) => return Ok(()),
        Err(error) => return Err(error.into()),
    };
    state
        .sessions
        .set_groups_for_user(DIRECTORY_SOURCE_ID, user_name.as_str(), &groups)
        .await
        .map_err(AdminError::unavailable)?;
    Ok(())
}

fn user_target(user_name: &UserName) -> String {
    format!("{DIRECTORY_SOURCE_ID}:{user_name}")
}

fn group_target(group: &GroupName) -> String {
    format!("{DIRECTORY_SOURCE_ID}:group/{group}")
}

async fn list_users(
    state: web::Data<AppState>,
    AdminRead(_): AdminRead,
) -> Result<HttpResponse, AdminError> {
    let users: Vec<UserView> = state
        .store
        .list_users(DIRECTORY_SOURCE_ID)
        .await?
        .iter()
        .map(|u| user_view(u, None))
        .collect();
    Ok(HttpResponse::Ok().json(json!({ "users": users })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateUser {
    user_name: String,
    #[serde(default)]
    display_name: String,
    #[serde(default)]
    email: Option<String>,
}

async fn create_user(
    state: web::Data<AppState>,
    request: HttpRequest,
    AdminWrite(admin): AdminWrite,
    body: web::Json<CreateUser>,
) -> Result<HttpResponse, AdminError> {
    let body = body.into_inner();
    let user_name = UserName::parse(body.user_name.trim()).map_err(|e| {
        AdminError::invalid(
            "INVALID_USER_NAME",
            e.to_string(),
            Some("/user_name".into()),
        )
    })?;
    let display_name = check_text(&body.display_name, "display_name")?;
    let email = check_email(body.email.as_deref())?;
    let user = state
        .store
        .create_user(&NewUser {
            identity_source_id: DIRECTORY_SOURCE_ID.into(),
            user_name: user_name.clone(),
            display_name,
            email,
            password_hash: None,
        })
        .await?;
    let after = to_json(user_view(&user, None));
    audit_change(
        &state,
        &request,
        &admin,
        "admin:CreateDirectoryUser",
        &user_target(&user_name),
        json!({ "before": null, "after": after }),
    )
    .await;
    Ok(HttpResponse::Created().json(after))
}

async fn get_user(
    state: web::Data<AppState>,
    AdminRead(_): AdminRead,
    path: web::Path<String>,
) -> Result<HttpResponse, AdminError> {
    let raw = path.into_inner();
    let name = user_in_path(&raw)?;
    let user = stored_user(&state, &name, &raw).await?;
    let groups = group_names(&state, &name).await.map_err(user_error(&raw))?;
    Ok(HttpResponse::Ok().json(user_view(&user, Some(groups))))
}

/// A profile change: each field given replaces the stored one (an empty email
/// removes it); a field left out stays.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateUser {
    #[serde(default)]
    display_name: Option<String>,
    #[serde(default)]
    email: Option<String>,
}

async fn update_user(
    state: web::Data<AppState>,
    request: HttpRequest,
    AdminWrite(admin): AdminWrite,
    path: web::Path<String>,
    body: web::Json<UpdateUser>,
) -> Result<HttpResponse, AdminError> {
    let raw = path.into_inner();
    let name = user_in_path(&raw)?;
    let body = body.into_inner();
    let before = stored_user(&state, &name, &raw).await?;
    let display_name = match &body.display_name {
        Some(display_name) => check_text(display_name, "display_name")?,
        None => before.display_name.clone(),
    };
    let email = match &body.email {
        Some(email) => check_email(Some(email))?,
        None => before.email.clone(),
    };
    let after = state
        .store
        .update_user_profile(DIRECTORY_SOURCE_ID, &name, &display_name, email.as_deref())
        .await
        .map_err(user_error(&raw))?;
    let after_view = to_json(user_view(&after, None));
    audit_change(
        &state,
        &request,
        &admin,
        "admin:UpdateDirectoryUser",
        &user_target(&after.user_name),
        json!({ "before": to_json(user_view(&before, None)), "after": after_view }),
    )
    .await;
    Ok(HttpResponse::Ok().json(after_view))
}

async fn delete_user(
    state: web::Data<AppState>,
    request: HttpRequest,
    AdminWrite(admin): AdminWrite,
    path: web::Path<String>,
    confirm: web::Query<Confirm>,
) -> Result<HttpResponse, AdminError> {
    let raw = path.into_inner();
    let name = user_in_path(&raw)?;
    let user = stored_user(&state, &name, &raw).await?;
    let target = user_target(&user.user_name);
    let action = "admin:DeleteDirectoryUser";
    lockout_guard(
        &state,
        &request,
        &admin,
        &confirm,
        action,
        &target,
        AccessChange::RemoveUser {
            source: DIRECTORY_SOURCE_ID,
            user_name: name.as_str(),
        },
    )
    .await?;
    let groups = group_names(&state, &name).await.map_err(user_error(&raw))?;
    state
        .store
        .delete_user(DIRECTORY_SOURCE_ID, &name)
        .await
        .map_err(user_error(&raw))?;
    let (portal, terminal) =
        end_sign_ins(&state, DIRECTORY_SOURCE_ID, user.user_name.as_str()).await?;
    audit_change(
        &state,
        &request,
        &admin,
        action,
        &target,
        json!({
            "before": to_json(user_view(&user, Some(groups))),
            "after": null,
            "portal_sessions_ended": portal,
            "terminal_sign_ins_ended": terminal,
        }),
    )
    .await;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SetPassword {
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    generate: bool,
}

async fn set_password(
    state: web::Data<AppState>,
    request: HttpRequest,
    AdminWrite(admin): AdminWrite,
    path: web::Path<String>,
    body: web::Json<SetPassword>,
) -> Result<HttpResponse, AdminError> {
    let raw = path.into_inner();
    let name = user_in_path(&raw)?;
    let body = body.into_inner();
    let (password, generated) = match (body.password, body.generate) {
        (Some(_), true) => {
            return Err(AdminError::invalid(
                "PASSWORD_OR_GENERATE",
                "Send either a password or \"generate\": true, not both.",
                Some("/generate".into()),
            ));
        }
        (Some(password), false) => {
            check_new_password(&password).map_err(|why| {
                AdminError::invalid("WEAK_PASSWORD", why, Some("/password".into()))
            })?;
            (password, false)
        }
        (None, true) => (state.random.token(), true),
        (None, false) => {
            return Err(AdminError::invalid(
                "PASSWORD_OR_GENERATE",
                "Send a new password, or \"generate\": true for a generated one.",
                Some("/password".into()),
            ));
        }
    };
    let before = stored_user(&state, &name, &raw).await?;
    let hash = hash_password_async(password.clone())
        .await
        .map_err(AdminError::internal)?;
    state
        .store
        .set_password_hash(DIRECTORY_SOURCE_ID, &name, Some(&hash))
        .await
        .map_err(user_error(&raw))?;
    let (portal, terminal) =
        end_sign_ins(&state, DIRECTORY_SOURCE_ID, before.user_name.as_str()).await?;
    audit_change(
        &state,
        &request,
        &admin,
        "admin:SetDirectoryUserPassword",
        &user_target(&before.user_name),
        json!({
            "before": { "password_set": before.password_hash.is_some() },
            "after": { "password_set": true },
            "generated": generated,
            "portal_sessions_ended": portal,
            "terminal_sign_ins_ended": terminal,
        }),
    )
    .await;
    let mut answer = json!({
        "user_name": before.user_name.to_string(),
        "portal_sessions_ended": portal,
        "terminal_sign_ins_ended": terminal,
    });
    // Shown this once; never stored or logged in plain.
    if generated {
        answer["password"] = json!(password);
    }
    Ok(HttpResponse::Ok().json(answer))
}

async fn reset_totp(
    state: web::Data<AppState>,
    request: HttpRequest,
    AdminWrite(admin): AdminWrite,
    path: web::Path<String>,
) -> Result<HttpResponse, AdminError> {
    let raw = path.into_inner();
    let name = user_in_path(&raw)?;
    let before = stored_user(&state, &name, &raw).await?;
    state
        .store
        .set_totp_secret(DIRECTORY_SOURCE_ID, &name, None)
        .await
        .map_err(user_error(&raw))?;
    // Sign-ins made with the old second factor end with it.
    let (portal, terminal) =
        end_sign_ins(&state, DIRECTORY_SOURCE_ID, before.user_name.as_str()).await?;
    audit_change(
        &state,
        &request,
        &admin,
        "admin:ResetDirectoryUserTotp",
        &user_target(&before.user_name),
        json!({
            "before": { "totp_enabled_at": before.totp_enabled_at },
            "after": { "totp_enabled_at": null },
            "portal_sessions_ended": portal,
            "terminal_sign_ins_ended": terminal,
        }),
    )
    .await;
    Ok(HttpResponse::NoContent().finish())
}

async fn lock_user(
    state: web::Data<AppState>,
    request: HttpRequest,
    AdminWrite(admin): AdminWrite,
    path: web::Path<String>,
    confirm: web::Query<Confirm>,
) -> Result<HttpResponse, AdminError> {
    set_locked(
        state,
        request,
        admin,
        path.into_inner(),
        confirm.into_inner(),
        true,
    )
    .await
}

async fn unlock_user(
    state: web::Data<AppState>,
    request: HttpRequest,
    AdminWrite(admin): AdminWrite,
    path: web::Path<String>,
) -> Result<HttpResponse, AdminError> {
    set_locked(
        state,
        request,
        admin,
        path.into_inner(),
        Confirm::default(),
        false,
    )
    .await
}

async fn set_locked(
    state: web::Data<AppState>,
    request: HttpRequest,
    admin: Admin,
    raw: String,
    confirm: Confirm,
    lock: bool,
) -> Result<HttpResponse, AdminError> {
    let name = user_in_path(&raw)?;
    let before = stored_user(&state, &name, &raw).await?;
    let target = user_target(&before.user_name);
    let action = if lock {
        "admin:LockDirectoryUser"
    } else {
        "admin:UnlockDirectoryUser"
    };
    if lock {
        lockout_guard(
            &state,
            &request,
            &admin,
            &confirm,
            action,
            &target,
            AccessChange::RemoveUser {
                source: DIRECTORY_SOURCE_ID,
                user_name: name.as_str(),
            },
        )
        .await?;
    }
    let after = state
        .store
        .set_user_locked(DIRECTORY_SOURCE_ID, &name, lock.then(|| state.clock.now()))
        .await
        .map_err(user_error(&raw))?;
    let mut details = json!({
        "before": { "locked_at": before.locked_at },
        "after": { "locked_at": after.locked_at },
    });
    if lock {
        let (portal, terminal) =
            end_sign_ins(&state, DIRECTORY_SOURCE_ID, after.user_name.as_str()).await?;
        details["portal_sessions_ended"] = json!(portal);
        details["terminal_sign_ins_ended"] = json!(terminal);
    }
    audit_change(&state, &request, &admin, action, &target, details).await;
    Ok(HttpResponse::Ok().json(user_view(&after, None)))
}

async fn list_groups(
    state: web::Data<AppState>,
    AdminRead(_): AdminRead,
) -> Result<HttpResponse, AdminError> {
    let mut groups = Vec::new();
    for group in state.store.list_groups(DIRECTORY_SOURCE_ID).await? {
        let members = state
            .store
            .group_members(DIRECTORY_SOURCE_ID, &group.name)
            .await?;
        groups.push(group_view(&group, &members));
    }
    Ok(HttpResponse::Ok().json(json!({ "groups": groups })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateGroup {
    name: String,
    #[serde(default)]
    description: String,
}

async fn create_group(
    state: web::Data<AppState>,
    request: HttpRequest,
    AdminWrite(admin): AdminWrite,
    body: web::Json<CreateGroup>,
) -> Result<HttpResponse, AdminError> {
    let body = body.into_inner();
    let name = GroupName::parse(body.name.trim()).map_err(|e| {
        AdminError::invalid("INVALID_GROUP_NAME", e.to_string(), Some("/name".into()))
    })?;
    let description = check_text(&body.description, "description")?;
    let group = state
        .store
        .create_group(&NewGroup {
            identity_source_id: DIRECTORY_SOURCE_ID.into(),
            name: name.clone(),
            description,
        })
        .await?;
    let after = to_json(group_view(&group, &[]));
    audit_change(
        &state,
        &request,
        &admin,
        "admin:CreateDirectoryGroup",
        &group_target(&name),
        json!({ "before": null, "after": after }),
    )
    .await;
    Ok(HttpResponse::Created().json(after))
}

async fn delete_group(
    state: web::Data<AppState>,
    request: HttpRequest,
    AdminWrite(admin): AdminWrite,
    path: web::Path<String>,
    confirm: web::Query<Confirm>,
) -> Result<HttpResponse, AdminError> {
    let raw = path.into_inner();
    let name = group_in_path(&raw)?;
    let target = group_target(&name);
    let action = "admin:DeleteDirectoryGroup";
    let group_error = when_not_found(|| no_group(&raw));
    // Unknown groups are 404 before the guard weighs anything.
    state
        .store
        .group_members(DIRECTORY_SOURCE_ID, &name)
        .await
        .map_err(&group_error)?;
    lockout_guard(
        &state,
        &request,
        &admin,
        &confirm,
        action,
        &target,
        AccessChange::DeleteGroup {
            source: DIRECTORY_SOURCE_ID,
            group: name.as_str(),
        },
    )
    .await?;
    let (group, members) = state
        .store
        .delete_group(DIRECTORY_SOURCE_ID, &name)
        .await
        .map_err(&group_error)?;
    for member in &members {
        refresh_session_groups(&state, member).await?;
    }
    audit_change(
        &state,
        &request,
        &admin,
        action,
        &target,
        json!({ "before": to_json(group_view(&group, &members)), "after": null }),
    )
    .await;
    Ok(HttpResponse::NoContent().finish())
}

/// The group and user of a membership path, both known to exist.
async fn membership(
    state: &AppState,
    group: &str,
    user: &str,
) -> Result<(GroupName, User, Vec<UserName>), AdminError> {
    let group_name = group_in_path(group)?;
    let user_name = user_in_path(user)?;
    let members = state
        .store
        .group_members(DIRECTORY_SOURCE_ID, &group_name)
        .await
        .map_err(when_not_found(|| no_group(group)))?;
    let user = stored_user(state, &user_name, user).await?;
    Ok((group_name, user, members))
}

fn names(members: &[UserName]) -> Vec<String> {
    members.iter().map(ToString::to_string).collect()
}

/// A membership just added or removed, with the members before.
struct MembershipChange {
    action: &'static str,
    group_name: GroupName,
    user: User,
    before: Vec<UserName>,
}

impl MembershipChange {
    /// The user's sessions follow the change; audited with the members before and
    /// after.
    async fn audited(
        self,
        state: &AppState,
        request: &HttpRequest,
        admin: &Admin,
    ) -> Result<HttpResponse, AdminError> {
        refresh_session_groups(state, &self.user.user_name).await?;
        let after = state
            .store
            .group_members(DIRECTORY_SOURCE_ID, &self.group_name)
            .await?;
        audit_change(
            state,
            request,
            admin,
            self.action,
            &group_target(&self.group_name),
            json!({
                "user_name": self.user.user_name.to_string(),
                "before": { "members": names(&self.before) },
                "after": { "members": names(&after) },
            }),
        )
        .await;
        Ok(HttpResponse::NoContent().finish())
    }
}

async fn add_member(
    state: web::Data<AppState>,
    request: HttpRequest,
    AdminWrite(admin): AdminWrite,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, AdminError> {
    let (group, user) = path.into_inner();
    let (group_name, user, before) = membership(&state, &group, &user).await?;
    state
        .store
        .add_user_to_group(DIRECTORY_SOURCE_ID, &group_name, &user.user_name)
        .await?;
    let change = MembershipChange {
        action: "admin:AddDirectoryGroupMember",
        group_name,
        user,
        before,
    };
    change.audited(&state, &request, &admin).await
}

async fn remove_member(
    state: web::Data<AppState>,
    request: HttpRequest,
    AdminWrite(admin): AdminWrite,
    path: web::Path<(String, String)>,
    confirm: web::Query<Confirm>,
) -> Result<HttpResponse, AdminError> {
    let (group, user) = path.into_inner();
    let (group_name, user, before) = membership(&state, &group, &user).await?;
    let target = group_target(&group_name);
    let action = "admin:RemoveDirectoryGroupMember";
    if !before
        .iter()
        .any(|m| m.as_str().eq_ignore_ascii_case(user.user_name.as_str()))
    {
        return Err(AdminError::not_found(
            "NOT_FOUND",
            format!("{} is not a member of {group_name}.", user.user_name),
        ));
    }
    lockout_guard(
        &state,
        &request,
        &admin,
        &confirm,
        action,
        &target,
        AccessChange::LeaveGroup {
            source: DIRECTORY_SOURCE_ID,
            group: group_name.as_str(),
            user_name: user.user_name.as_str(),
        },
    )
    .await?;
    state
        .store
        .remove_user_from_group(DIRECTORY_SOURCE_ID, &group_name, &user.user_name)
        .await?;
    let change = MembershipChange {
        action,
        group_name,
        user,
        before,
    };
    change.audited(&state, &request, &admin).await
}
