//! Role sessions for people signed in to the portal: which roles they are granted
//! is [`crate::mapping`]'s to decide, the session's name and tags
//! [`crate::sts::portal`]'s; this reads the candidate roles and issues what was
//! granted.

use crate::iam::{AccountId, RoleArn, RoleName};
use crate::idp::identity::Identity;
use crate::mapping::{self, Grant};
use crate::sts::assume::AssumeRoleParams;
use crate::sts::credentials::AssumedRole;
use crate::sts::error::StsError;
use crate::sts::portal::{session_name, session_tags_of};

use super::{Sts, store_failure};

impl Sts {
    /// Every role granted to `identity`, with why, computed from its groups now.
    pub async fn entitlements(&self, identity: &Identity) -> Result<Vec<Grant>, StsError> {
        let mut roles = Vec::new();
        for account in self.store.list_accounts().await.map_err(store_failure)? {
            roles.extend(
                self.store
                    .list_roles(&account.id)
                    .await
                    .map_err(store_failure)?,
            );
        }
        Ok(mapping::entitlements(identity, &roles))
    }

    /// The grant of role `role_name` in `account` to `identity`, as a person picked
    /// it (portal, SSO API, console link); refused like a role that does not exist
    /// when it is not granted, or names no role that can exist.
    pub async fn grant(
        &self,
        identity: &Identity,
        account: &str,
        role_name: &str,
    ) -> Result<Grant, StsError> {
        let denied = || not_entitled(identity, account, role_name);
        let (Ok(account_id), Ok(name)) = (AccountId::parse(account), RoleName::parse(role_name))
        else {
            return Err(denied());
        };
        let role = self.find_role(&account_id, &name, denied).await?;
        mapping::entitlements(identity, [&role])
            .pop()
            .ok_or_else(denied)
    }

    /// Issues a session of the granted role for a portal identity, for the role's
    /// maximum session duration, with the identity as SourceIdentity and its
    /// attributes as session tags.
    pub async fn issue_for_identity(
        &self,
        identity: &Identity,
        grant: &Grant,
        now: i64,
    ) -> Result<AssumedRole, StsError> {
        let arn: &RoleArn = grant.role();
        let role = self
            .load_role(arn, || {
                not_entitled(identity, arn.account.as_str(), arn.name.as_str())
            })
            .await?;
        let session_name = session_name(identity);
        let params = AssumeRoleParams {
            role_arn: arn.to_string(),
            role_session_name: session_name.clone(),
            ..AssumeRoleParams::default()
        };
        let mut claims = self.role_session(
            &role,
            &params,
            now,
            role.max_session_duration.seconds(),
            (session_tags_of(identity), Vec::new()),
            Some(session_name),
            false,
        );
        claims.identity_subject = Some(format!("{}|{}", identity.source_id, identity.user_name));
        Ok(self.assumed(&claims, 0))
    }
}

fn not_entitled(identity: &Identity, account: &str, role_name: &str) -> StsError {
    StsError::access_denied(format!(
        "{} is not entitled to role {role_name} in account {account}",
        identity.user_name
    ))
}
