//! `rolegate admin bootstrap`: the first admin of an empty deployment. Creates a
//! built-in directory user in the first `directory:` group of `[admin] groups`
//! (creating the directory source and the group when missing) and/or a
//! write-scoped admin API token. Idempotent: an existing user is left alone, and
//! each run with a token name makes one more token.

use std::sync::Arc;

use serde_json::json;

use crate::iam::{GroupName, UserName};
use crate::idp::directory::{DIRECTORY_SOURCE_ID, built_in_source, hash_password_async};
use crate::secrets::Secret;
use crate::service::admin_access::{AdminAccess, AdminGroup};
use crate::service::audit::AuditLog;
use crate::store::{AdminScope, AuditEvent, NewGroup, NewUser, Outcome, Store, StoreError};

/// The shortest password a bootstrapped admin may have.
pub const MIN_ADMIN_PASSWORD_CHARS: usize = crate::idp::directory::MIN_PASSWORD_CHARS;
/// The audit actor of what the command does without a user.
pub const BOOTSTRAP_ACTOR: &str = "cli:bootstrap";

/// What to create.
#[derive(Debug, Default)]
pub struct Bootstrap {
    /// A directory user to make (or keep) as the first admin.
    pub user: Option<String>,
    /// The new user's password (only read when the user does not exist yet).
    pub password: Option<Secret>,
    /// The name of a write-scoped token to issue.
    pub token: Option<String>,
}

/// What the command did: lines for the operator, and the new token's secret.
#[derive(Debug, Default)]
pub struct Bootstrapped {
    pub lines: Vec<String>,
    pub token_secret: Option<String>,
}

/// Runs the bootstrap on `store` under the configured admin `groups`.
pub async fn run(
    store: Arc<dyn Store>,
    groups: &[AdminGroup],
    request: Bootstrap,
) -> Result<Bootstrapped, String> {
    if request.user.is_none() && request.token.is_none() {
        return Err(
            "nothing to do: give --user NAME (with --password-stdin) and/or --token NAME".into(),
        );
    }
    let audit = AuditLog::start(store.clone()).map_err(|e| e.to_string())?;
    let mut done = Bootstrapped::default();
    let mut actor = BOOTSTRAP_ACTOR.to_owned();
    if let Some(user) = &request.user {
        let group = groups
            .iter()
            .find(|g| g.source == DIRECTORY_SOURCE_ID)
            .ok_or_else(|| {
                "[admin] groups has no directory: entry, so a directory user cannot be made an admin: add one, e.g. groups = [\"directory:admins\"] (or ROLEGATE_ADMIN__GROUPS=directory:admins)".to_owned()
            })?;
        bootstrap_user(
            store.as_ref(),
            &audit,
            group,
            user,
            request.password.as_ref(),
            &mut done,
        )
        .await?;
        actor = format!("{DIRECTORY_SOURCE_ID}:{user}");
    }
    if let Some(name) = &request.token {
        let access = AdminAccess::new(store.clone(), groups.to_vec());
        let issued = access
            .issue(name, AdminScope::Write, None, &actor)
            .await
            .map_err(|e| format!("cannot create the token: {e}"))?;
        record(
            store.as_ref(),
            &audit,
            BOOTSTRAP_ACTOR,
            "admin:CreateToken",
            &issued.token.id,
            json!({
                "token_id": issued.token.id,
                "name": issued.token.name,
                "scope": issued.token.scope,
                "expires_at": issued.token.expires_at,
                "created_by": issued.token.created_by,
            }),
        )
        .await;
        done.lines.push(format!(
            "created write-scoped admin API token {} ({:?}, acting for {actor}, expires {}); its secret is printed once, below",
            issued.token.id,
            issued.token.name,
            issued.token.expires_at.format("%Y-%m-%d")
        ));
        done.token_secret = Some(issued.secret);
    }
    Ok(done)
}

async fn bootstrap_user(
    store: &dyn Store,
    audit: &AuditLog,
    group: &AdminGroup,
    user: &str,
    password: Option<&Secret>,
    done: &mut Bootstrapped,
) -> Result<(), String> {
    let user_name = UserName::parse(user).map_err(|e| format!("--user {user:?}: {e}"))?;
    let group_name =
        GroupName::parse(&group.group).map_err(|e| format!("admin group {group}: {e}"))?;
    match store.get_identity_source(DIRECTORY_SOURCE_ID).await {
        Ok(_) => {}
        Err(StoreError::NotFound { .. }) => {
            store
                .create_identity_source(&built_in_source())
                .await
                .map_err(|e| e.to_string())?;
            done.lines.push(format!(
                "created identity source {DIRECTORY_SOURCE_ID} (built-in directory)"
            ));
        }
        Err(error) => return Err(error.to_string()),
    }
    match store
        .create_group(&NewGroup {
            identity_source_id: DIRECTORY_SOURCE_ID.into(),
            name: group_name.clone(),
            description: "Rolegate admins".into(),
        })
        .await
    {
        Ok(_) => done.lines.push(format!("created group {group}")),
        Err(StoreError::AlreadyExists { .. }) => done.lines.push(format!("kept    group {group}")),
        Err(error) => return Err(error.to_string()),
    }
    match store.get_user(DIRECTORY_SOURCE_ID, &user_name).await {
        Ok(_) => {
            let member = store
                .groups_for_user(DIRECTORY_SOURCE_ID, &user_name)
                .await
                .map_err(|e| e.to_string())?
                .iter()
                .any(|g| g.name == group_name);
            done.lines.push(format!(
                "user {user} already exists: left alone (its password and groups are unchanged){}",
                if member {
                    String::new()
                } else {
                    format!("; note: it is not a member of {group}, so it is not an admin")
                }
            ));
            return Ok(());
        }
        Err(StoreError::NotFound { .. }) => {}
        Err(error) => return Err(error.to_string()),
    }
    let password = password.ok_or_else(|| {
        format!("user {user} does not exist yet: give its password on standard input with --password-stdin")
    })?;
    let typed = password.expose();
    crate::idp::directory::check_new_password(typed)?;
    let hash = hash_password_async(typed.to_owned())
        .await
        .map_err(|e| e.to_string())?;
    store
        .create_user(&NewUser {
            identity_source_id: DIRECTORY_SOURCE_ID.into(),
            user_name: user_name.clone(),
            display_name: user.to_owned(),
            email: None,
            password_hash: Some(hash),
        })
        .await
        .map_err(|e| e.to_string())?;
    store
        .add_user_to_group(DIRECTORY_SOURCE_ID, &group_name, &user_name)
        .await
        .map_err(|e| e.to_string())?;
    record(
        store,
        audit,
        BOOTSTRAP_ACTOR,
        "admin:BootstrapUser",
        &format!("{DIRECTORY_SOURCE_ID}:{user}"),
        json!({ "group": group.to_string() }),
    )
    .await;
    done.lines.push(format!(
        "created directory user {user} in group {group}: sign in at /signin"
    ));
    Ok(())
}

/// Writes an audit event of the command (a failure is logged, not fatal).
async fn record(
    store: &dyn Store,
    audit: &AuditLog,
    actor: &str,
    action: &str,
    target: &str,
    details: serde_json::Value,
) {
    let event = AuditEvent {
        at: store.clock().now(),
        actor: actor.to_owned(),
        action: action.to_owned(),
        target: target.to_owned(),
        outcome: Outcome::Success,
        source_ip: None,
        user_agent: Some("rolegate admin bootstrap".into()),
        details,
    };
    audit.record(event).await;
}
