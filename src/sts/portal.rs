//! Role sessions for people signed in to the portal. The broker itself vouches for
//! the identity, so the gate is the entitlement, as in IAM Identity Center: until
//! mapping rules exist, a role lists the directory groups it grants itself to in its
//! `rolegate:groups` tag (names separated by spaces or commas).

use crate::iam::{AccountId, RoleName};
use crate::store::{Role, StoreError};

use super::assume::{self, AssumeRoleParams};
use super::credentials::{self, KeyKind};
use super::error::StsError;
use super::service::{AssumedRole, Sts, store_failure};

/// The tag through which a role names the groups it is granted to.
pub const GROUPS_TAG: &str = "rolegate:groups";

/// Someone signed in to the portal, as their identity source describes them.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PortalIdentity {
    pub source_id: String,
    pub user_name: String,
    pub display_name: String,
    pub email: Option<String>,
    pub groups: Vec<String>,
}

/// Whether `role` is granted to someone in `groups` (group names ignore case).
pub fn is_entitled(role: &Role, groups: &[String]) -> bool {
    role.tags.get(GROUPS_TAG).is_some_and(|granted| {
        granted
            .split([' ', ','])
            .filter(|g| !g.is_empty())
            .any(|g| groups.iter().any(|mine| mine.eq_ignore_ascii_case(g)))
    })
}

/// A role session name from a user name or email: IAM's `[\w+=,.@-]`, 2–64 chars.
pub fn session_name(identity: &PortalIdentity) -> String {
    let raw = identity.email.as_deref().unwrap_or(&identity.user_name);
    let mut name: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "_+=,.@-".contains(c) {
                c
            } else {
                '-'
            }
        })
        .take(64)
        .collect();
    while name.len() < 2 {
        name.push('-');
    }
    name
}

impl Sts {
    /// Every (account, role) granted to `identity`, computed from its groups now.
    pub async fn entitlements(&self, identity: &PortalIdentity) -> Result<Vec<Role>, StsError> {
        let mut granted = Vec::new();
        for account in self.store().list_accounts().await.map_err(store_failure)? {
            for role in self
                .store()
                .list_roles(&account.id)
                .await
                .map_err(store_failure)?
            {
                if is_entitled(&role, &identity.groups) {
                    granted.push(role);
                }
            }
        }
        Ok(granted)
    }

    /// Issues a session of `role_name` in `account` for a portal identity, for the
    /// role's maximum session duration, with the identity as SourceIdentity.
    pub async fn issue_for_identity(
        &self,
        identity: &PortalIdentity,
        account: &str,
        role_name: &str,
        now: i64,
    ) -> Result<AssumedRole, StsError> {
        let denied = || {
            StsError::access_denied(format!(
                "{} is not entitled to role {role_name} in account {account}",
                identity.user_name
            ))
        };
        let (Ok(account_id), Ok(name)) = (
            AccountId::parse(account.to_owned()),
            RoleName::parse(role_name.to_owned()),
        ) else {
            return Err(denied());
        };
        let role = match self.store().get_role(&account_id, &name).await {
            Ok(role) => role,
            Err(StoreError::NotFound { .. }) => return Err(denied()),
            Err(error) => return Err(store_failure(error)),
        };
        if !is_entitled(&role, &identity.groups) {
            return Err(denied());
        }
        let session_name = session_name(identity);
        let params = AssumeRoleParams {
            role_arn: role.arn.clone(),
            role_session_name: session_name.clone(),
            ..AssumeRoleParams::default()
        };
        let keys = (
            credentials::new_access_key_id(
                KeyKind::Temporary,
                account_id.as_str(),
                &mut rand::rng(),
            ),
            credentials::new_secret_access_key(&mut rand::rng()),
        );
        let mut claims = assume::role_session_claims(
            self.partition(),
            account_id.as_str(),
            &role.id,
            &role.arn,
            role.name.as_str(),
            &params,
            keys,
            now,
            role.max_session_duration.seconds(),
            (Vec::new(), Vec::new()),
            Some(session_name),
            false,
        );
        claims.identity_subject = Some(format!("{}|{}", identity.source_id, identity.user_name));
        Ok(AssumedRole {
            credentials: self.credentials_for(&claims),
            assumed_role_arn: claims.principal_arn.clone(),
            assumed_role_id: claims.principal_id.clone(),
            packed_policy_size: 0,
            source_identity: claims.source_identity.clone(),
        })
    }
}
