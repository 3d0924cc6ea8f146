//! Role sessions for people signed in to the portal: which roles they are granted
//! is the published ruleset's to decide ([`crate::service::entitlements`]), the
//! session's name, tags and duration [`crate::sts::portal`]'s; this issues what was
//! granted.

use crate::iam::{AccountId, RoleArn, RoleName};
use crate::idp::identity::Identity;
use crate::service::entitlements::{EntitlementError, Grant};
use crate::sts::assume::AssumeRoleParams;
use crate::sts::credentials::AssumedRole;
use crate::sts::error::StsError;
use crate::sts::portal::portal_session;

use super::Sts;

fn entitlement_failure(error: EntitlementError) -> StsError {
    match error {
        EntitlementError::Claims { message, .. } => StsError::access_denied(message),
        EntitlementError::Store(error) if error.is_unavailable() => {
            tracing::warn!(%error, "cannot compute entitlements: database unavailable");
            StsError::service_unavailable()
        }
        other => {
            tracing::error!(error = %other, "cannot compute entitlements");
            StsError::internal()
        }
    }
}

impl Sts {
    /// Every role granted to `identity` now, with why.
    pub async fn entitlements(&self, identity: &Identity) -> Result<Vec<Grant>, StsError> {
        self.entitlements
            .grants(identity)
            .await
            .map_err(entitlement_failure)
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
        self.entitlements
            .grant(identity, &account_id, &name)
            .await
            .map_err(entitlement_failure)?
            .ok_or_else(denied)
    }

    /// Issues a session of role `role_name` in `account` for `identity` if the rules
    /// grant it now; returns the grant with the session, for the audit event.
    pub async fn issue_granted(
        &self,
        identity: &Identity,
        (account, role_name): (&str, &str),
        now: i64,
    ) -> Result<(AssumedRole, Grant), StsError> {
        let grant = self.grant(identity, account, role_name).await?;
        let assumed = self.issue_for_identity(identity, &grant, now).await?;
        Ok((assumed, grant))
    }

    /// Issues a session of the granted role for a portal identity: the session
    /// settings the rules chose (name, source identity, tags, duration) over the
    /// defaults (the identity's name, its attributes as tags, the role's maximum).
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
        let session = portal_session(
            identity,
            grant.session(),
            role.max_session_duration.seconds(),
        );
        let params = AssumeRoleParams {
            role_arn: arn.to_string(),
            role_session_name: session.name.clone(),
            ..AssumeRoleParams::default()
        };
        let mut claims = self.role_session(
            &role,
            &params,
            now,
            session.duration,
            (session.tags, session.transitive_tag_keys),
            Some(session.source_identity),
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
