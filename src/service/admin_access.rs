//! Who may use the admin API: the members of the groups named in `[admin] groups`
//! (each as `source:group`, checked on every request against the signed-in
//! identity), and holders of admin API tokens.
//!
//! A token is `rgat_<hex id>_<secret>`: the id finds the row, the secret is stored
//! only as its SHA-256 and compared in constant time. A token acts for the admin
//! who created it (its `created_by`) and keeps working, even if that person is no
//! longer an admin, until it expires or is revoked: revoke the tokens of an admin
//! you remove.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::clock::{Clock, Random};
use crate::idp::identity::Identity;
use crate::secrets::same_secret;
use crate::store::{AdminScope, AdminToken, NewAdminToken, Store, StoreError};

/// What a token's secret starts with (so secret scanners can find leaked ones).
pub const TOKEN_PREFIX: &str = "rgat_";
/// A token's lifetime when none is asked for, and the longest allowed.
pub const DEFAULT_EXPIRES_IN_DAYS: i64 = 90;
pub const MAX_EXPIRES_IN_DAYS: i64 = 365;
/// The longest token name.
pub const MAX_TOKEN_NAME_CHARS: usize = 100;
/// A token's `last_used_at` is written at most this often.
const LAST_USED_GRANULARITY: chrono::Duration = chrono::Duration::seconds(60);
/// The longest bearer value looked at.
const MAX_BEARER_BYTES: usize = 256;

/// One `[admin] groups` entry: members of `group` of identity source `source` are
/// admins.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AdminGroup {
    pub source: String,
    pub group: String,
}

impl AdminGroup {
    /// Parses `source:group` (the group may itself contain `:`).
    pub fn parse(entry: &str) -> Result<Self, String> {
        let Some((source, group)) = entry.trim().split_once(':') else {
            return Err(format!(
                "{entry:?} must be written source:group, e.g. \"directory:admins\""
            ));
        };
        let slug = (1..=64).contains(&source.len())
            && source
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !slug {
            return Err(format!(
                "{entry:?}: the source {source:?} must be an identity source id (1 to 64 lower-case letters, digits or '-')"
            ));
        }
        if group.is_empty() || group.chars().count() > 256 || group.chars().any(char::is_control) {
            return Err(format!(
                "{entry:?}: the group after ':' must be 1 to 256 characters"
            ));
        }
        Ok(Self {
            source: source.to_owned(),
            group: group.to_owned(),
        })
    }

    /// Parses every entry; the error names the first bad one.
    pub fn parse_all(entries: &[String]) -> Result<Vec<Self>, String> {
        entries.iter().map(|e| Self::parse(e)).collect()
    }
}

impl std::fmt::Display for AdminGroup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.source, self.group)
    }
}

/// Whether `identity` is an admin under `groups_config`: a member of one of its
/// groups, as its own identity source says.
pub fn is_admin(groups_config: &[AdminGroup], identity: &Identity) -> bool {
    groups_config
        .iter()
        .any(|admin| admin.source == identity.source_id && identity.groups.contains(&admin.group))
}

/// A change to the directory or to the identity sources that can cost a person
/// their admin access (see [`loses_admin_access`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccessChange<'a> {
    /// `user_name` of `source` leaves `group`.
    LeaveGroup {
        source: &'a str,
        group: &'a str,
        user_name: &'a str,
    },
    /// `group` of `source` is deleted, with every membership.
    DeleteGroup { source: &'a str, group: &'a str },
    /// `user_name` of `source` can no longer sign in (deleted or locked).
    RemoveUser { source: &'a str, user_name: &'a str },
    /// Nobody can sign in through `source` any more (deleted or disabled).
    RemoveSource { source: &'a str },
}

/// Whether `identity` would be an admin under `groups_config` after `change`.
/// Directory names compare without case, as the directory keeps them unique.
pub fn is_admin_after(
    groups_config: &[AdminGroup],
    identity: &Identity,
    change: AccessChange<'_>,
) -> bool {
    let same = |a: &str, b: &str| a.to_lowercase() == b.to_lowercase();
    let is_me = |source: &str, user_name: &str| {
        identity.source_id == source && same(&identity.user_name, user_name)
    };
    // The group this identity loses, if the change takes one away.
    let lost_group = match change {
        AccessChange::RemoveSource { source } if identity.source_id == source => return false,
        AccessChange::RemoveUser { source, user_name } if is_me(source, user_name) => {
            return false;
        }
        AccessChange::LeaveGroup {
            source,
            group,
            user_name,
        } if is_me(source, user_name) => Some(group),
        AccessChange::DeleteGroup { source, group } if identity.source_id == source => Some(group),
        _ => None,
    };
    groups_config.iter().any(|admin| {
        admin.source == identity.source_id
            && identity
                .groups
                .iter()
                .any(|g| *g == admin.group && !lost_group.is_some_and(|lost| same(g, lost)))
    })
}

/// Whether `change` would take admin access away from `identity`, an admin now.
pub fn loses_admin_access(
    groups_config: &[AdminGroup],
    identity: &Identity,
    change: AccessChange<'_>,
) -> bool {
    is_admin(groups_config, identity) && !is_admin_after(groups_config, identity, change)
}

/// The person an audit actor stands for, as (source, user name): `directory:alice`
/// itself, or the creator of a token, `token:<id> (directory:alice)`.
pub fn acting_person(actor: &str) -> Option<(&str, &str)> {
    let person = match actor.strip_prefix("token:") {
        Some(rest) => rest.split_once(" (")?.1.strip_suffix(')')?,
        None => actor,
    };
    let (source, user_name) = person.split_once(':')?;
    (!source.is_empty() && !user_name.is_empty()).then_some((source, user_name))
}

/// The audit actor of a person: `source:user_name`.
pub fn person_actor(identity: &Identity) -> String {
    format!("{}:{}", identity.source_id, identity.user_name)
}

#[derive(Debug, thiserror::Error)]
pub enum AdminAccessError {
    /// A request parameter breaks a rule (`field` names it).
    #[error("{message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    /// The bearer value is not a live token; `reason` is for the audit log only.
    #[error("not a valid admin API token: {reason}")]
    Rejected {
        reason: &'static str,
        /// The token id the value named, when it named one.
        token_id: Option<String>,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A token just issued: the only time its secret is seen.
#[derive(Debug, Clone)]
pub struct IssuedToken {
    pub token: AdminToken,
    /// `rgat_...`, to show once.
    pub secret: String,
}

/// Whether a token can be used now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenStatus {
    Active,
    Expired,
    Revoked,
}

pub fn token_status(token: &AdminToken, now: DateTime<Utc>) -> TokenStatus {
    if token.revoked_at.is_some() {
        TokenStatus::Revoked
    } else if token.expires_at <= now {
        TokenStatus::Expired
    } else {
        TokenStatus::Active
    }
}

fn sha256_hex(value: &str) -> String {
    crate::cache::digest(value)
}

/// Admin membership and admin API tokens.
pub struct AdminAccess {
    store: Arc<dyn Store>,
    clock: Clock,
    random: Random,
    groups: Vec<AdminGroup>,
}

impl AdminAccess {
    /// Over `store` (its clock and random source), with the admin groups.
    pub fn new(store: Arc<dyn Store>, groups: Vec<AdminGroup>) -> Self {
        Self {
            clock: store.clock().clone(),
            random: store.random(),
            store,
            groups,
        }
    }

    /// The configured admin groups.
    pub fn groups(&self) -> &[AdminGroup] {
        &self.groups
    }

    /// Whether `identity` is an admin now.
    pub fn is_admin(&self, identity: &Identity) -> bool {
        is_admin(&self.groups, identity)
    }

    /// Issues a token acting for `created_by`; `expires_in_days` 1 to 365 (default 90).
    pub async fn issue(
        &self,
        name: &str,
        scope: AdminScope,
        expires_in_days: Option<i64>,
        created_by: &str,
    ) -> Result<IssuedToken, AdminAccessError> {
        let name = name.trim();
        if name.is_empty()
            || name.chars().count() > MAX_TOKEN_NAME_CHARS
            || name.chars().any(char::is_control)
        {
            return Err(AdminAccessError::Invalid {
                field: "name",
                message: format!(
                    "name must be 1 to {MAX_TOKEN_NAME_CHARS} characters without control characters"
                ),
            });
        }
        let days = expires_in_days.unwrap_or(DEFAULT_EXPIRES_IN_DAYS);
        if !(1..=MAX_EXPIRES_IN_DAYS).contains(&days) {
            return Err(AdminAccessError::Invalid {
                field: "expires_in_days",
                message: format!("expires_in_days must be between 1 and {MAX_EXPIRES_IN_DAYS}"),
            });
        }
        let hex_id = self.random.hex::<8>();
        let secret = self.random.token();
        let new = NewAdminToken {
            id: format!("at-{hex_id}"),
            name: name.to_owned(),
            secret_sha256: sha256_hex(&secret),
            scope,
            created_by: created_by.to_owned(),
            expires_at: self.clock.now() + chrono::Duration::days(days),
        };
        let token = self.store.create_admin_token(&new).await?;
        Ok(IssuedToken {
            token,
            secret: format!("{TOKEN_PREFIX}{hex_id}_{secret}"),
        })
    }

    /// The live token `bearer` (`rgat_...`) is; records its use (at most once a
    /// minute).
    pub async fn authenticate(&self, bearer: &str) -> Result<AdminToken, AdminAccessError> {
        let rejected = |reason, token_id: Option<&str>| AdminAccessError::Rejected {
            reason,
            token_id: token_id.map(str::to_owned),
        };
        if bearer.len() > MAX_BEARER_BYTES {
            return Err(rejected("token too long", None));
        }
        let Some((hex_id, secret)) = bearer
            .strip_prefix(TOKEN_PREFIX)
            .and_then(|rest| rest.split_once('_'))
        else {
            return Err(rejected("not an admin API token", None));
        };
        if hex_id.is_empty() || !hex_id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(rejected("not an admin API token", None));
        }
        let id = format!("at-{hex_id}");
        let token = match self.store.get_admin_token(&id).await {
            Ok(token) => token,
            Err(StoreError::NotFound { .. }) => return Err(rejected("unknown token", Some(&id))),
            Err(error) => return Err(error.into()),
        };
        if !same_secret(&sha256_hex(secret), &token.secret_sha256) {
            return Err(rejected("wrong secret", Some(&id)));
        }
        let now = self.clock.now();
        match token_status(&token, now) {
            TokenStatus::Active => {}
            TokenStatus::Expired => return Err(rejected("token expired", Some(&id))),
            TokenStatus::Revoked => return Err(rejected("token revoked", Some(&id))),
        }
        if let Err(error) = self
            .store
            .touch_admin_token(&id, now, now - LAST_USED_GRANULARITY)
            .await
        {
            tracing::warn!(%error, token = %id, "cannot record the admin token's use");
        }
        Ok(token)
    }

    pub async fn list(&self) -> Result<Vec<AdminToken>, AdminAccessError> {
        Ok(self.store.list_admin_tokens().await?)
    }

    /// Revokes token `id` now (again: no change); `NotFound` if there is none.
    pub async fn revoke(&self, id: &str) -> Result<AdminToken, AdminAccessError> {
        Ok(self.store.revoke_admin_token(id, self.clock.now()).await?)
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity(source: &str, groups: &[&str]) -> Identity {
        Identity {
            source_id: source.into(),
            subject: String::new(),
            user_name: "alice".into(),
            display_name: "Alice".into(),
            email: None,
            groups: groups.iter().map(|g| (*g).to_owned()).collect(),
            attributes: Default::default(),
            claims: Default::default(),
        }
    }

    #[test]
    fn lockout_guard_knows_who_would_stop_being_an_admin() {
        let groups =
            AdminGroup::parse_all(&["directory:admins".into(), "directory:ops".into()]).unwrap();
        let only_admins = identity("directory", &["admins", "developers"]);
        let both = identity("directory", &["admins", "ops"]);
        let leave = |group| AccessChange::LeaveGroup {
            source: "directory",
            group,
            user_name: "Alice",
        };
        assert!(loses_admin_access(&groups, &only_admins, leave("admins")));
        assert!(loses_admin_access(&groups, &only_admins, leave("ADMINS")));
        assert!(!loses_admin_access(
            &groups,
            &only_admins,
            leave("developers")
        ));
        // Still an admin through the other admin group.
        assert!(!loses_admin_access(&groups, &both, leave("admins")));
        // Someone else leaving changes nothing for alice.
        let bob_leaves = AccessChange::LeaveGroup {
            source: "directory",
            group: "admins",
            user_name: "bob",
        };
        assert!(!loses_admin_access(&groups, &only_admins, bob_leaves));
        let delete = |group| AccessChange::DeleteGroup {
            source: "directory",
            group,
        };
        assert!(loses_admin_access(&groups, &only_admins, delete("admins")));
        assert!(!loses_admin_access(&groups, &both, delete("ops")));
        let remove = |user_name| AccessChange::RemoveUser {
            source: "directory",
            user_name,
        };
        assert!(loses_admin_access(&groups, &both, remove("alice")));
        assert!(!loses_admin_access(&groups, &both, remove("bob")));
        let source = |source| AccessChange::RemoveSource { source };
        assert!(loses_admin_access(&groups, &both, source("directory")));
        assert!(!loses_admin_access(&groups, &both, source("corp")));
        // The same group name of another source is another group.
        let corp = AccessChange::DeleteGroup {
            source: "corp",
            group: "admins",
        };
        assert!(!loses_admin_access(&groups, &only_admins, corp));
        // Who is not an admin cannot lose it.
        let dev = identity("directory", &["developers"]);
        assert!(!loses_admin_access(&groups, &dev, remove("alice")));
    }

    #[test]
    fn acting_person_of_sessions_and_tokens() {
        assert_eq!(
            acting_person("directory:alice"),
            Some(("directory", "alice"))
        );
        assert_eq!(
            acting_person("token:0011aabb (corp:bob@example.com)"),
            Some(("corp", "bob@example.com"))
        );
        assert_eq!(acting_person("cli:bootstrap"), Some(("cli", "bootstrap")));
        for bad in [
            "token:0011 directory:alice",
            "anonymous",
            "token:x ()",
            ":x",
        ] {
            assert_eq!(acting_person(bad), None, "{bad}");
        }
    }

    #[test]
    fn admin_groups_are_source_and_group() {
        let groups =
            AdminGroup::parse_all(&["directory:admins".into(), "corp:platform:admins".into()])
                .unwrap();
        assert_eq!(groups[1].group, "platform:admins");
        assert!(is_admin(&groups, &identity("directory", &["admins"])));
        assert!(is_admin(
            &groups,
            &identity("corp", &["x", "platform:admins"])
        ));
        // The same group name from another source is not the admins group.
        assert!(!is_admin(&groups, &identity("corp", &["admins"])));
        assert!(!is_admin(&groups, &identity("directory", &["developers"])));
        assert!(!is_admin(&[], &identity("directory", &["admins"])));
        for bad in ["admins", ":admins", "directory:", "Corp:admins"] {
            assert!(AdminGroup::parse(bad).is_err(), "{bad}");
        }
    }
}
