//! AssumeRoleWithWebIdentity: the provider lookup, the key fetch and the role load;
//! the token, trust and session rules are [`crate::sts::web_identity`]'s.

use crate::policy::{PolicyKind, PolicySet, PrincipalRef, Request, ResourcePolicy};
use crate::store::StoreError;
use crate::sts::assume;
use crate::sts::error::StsError;
use crate::sts::web_identity::jwt::{self, UnverifiedToken, invalid_token};
use crate::sts::web_identity::{
    ACTION, AssumedRoleWithWebIdentity, WebIdentityParams, not_authorized, provider_url,
    trust_context, validate,
};

use super::Sts;

impl Sts {
    /// AssumeRoleWithWebIdentity: verifies the ID token against the IAM OIDC provider
    /// of the role's account, evaluates the role's trust policy and issues a role
    /// session. Unsigned on the wire: the token is the only credential.
    pub async fn assume_role_with_web_identity(
        &self,
        params: &WebIdentityParams,
        source_ip: Option<&str>,
        now: i64,
    ) -> Result<AssumedRoleWithWebIdentity, StsError> {
        // Cheap, bounded checks only (lengths, names, the session policy's raw
        // and packed size): the caller is anonymous until the token is verified.
        let (role_arn, raw_token, shape) = validate(params)?;
        let role_arn = role_arn.ok_or_else(not_authorized)?;
        let account = &role_arn.account;

        // The token: structure and header first, nothing trusted yet.
        let token = UnverifiedToken::parse(raw_token)?;
        let provider = match self.iam.find_oidc_provider(account, &token.issuer).await {
            Ok(provider) => provider,
            Err(StoreError::NotFound { .. } | StoreError::Invalid(_)) => {
                return Err(invalid_token(format!(
                    "No OpenIDConnect provider found in your account for {}",
                    token.issuer
                )));
            }
            Err(error) => return Err(self.store_failure(error)),
        };
        provider_url(&token.issuer, "issuer", crate::iam::ProviderUrlKind::Issuer)?;
        self.web_identity.verify_signature(&token, now).await?;
        let claims = jwt::validate_claims(&token.claims, &token.issuer, &provider.client_ids, now)
            .inspect_err(|error| {
                tracing::info!(issuer = %token.issuer, code = error.code, reason = %error.message, "web identity token refused");
            })?;

        // Parsed only now that the token is verified, so that an anonymous caller
        // cannot make the policy parser work.
        let session_policy = assume::parse_session_policy(params.policy.as_deref())?;

        // Session policy ARNs must exist (checked once the caller is authenticated).
        self.check_policy_arns(&params.policy_arns).await?;

        let role = self.load_role(&role_arn, not_authorized).await?;
        let role_arn = role_arn.to_string();
        let duration = assume::role_session_duration(
            params.duration_seconds,
            role.max_session_duration.seconds(),
            false,
        )?;

        let trust = self.parsed(&role.trust_policy, PolicyKind::Trust, &role_arn)?;
        let set = PolicySet {
            identity: &[],
            boundary: None,
            session: &[],
            resource: Some(ResourcePolicy {
                policy: &trust,
                owner_account: account.as_str(),
            }),
        };
        let context = trust_context(
            &provider.arn,
            &provider.url,
            &claims,
            &params.role_session_name,
            source_ip,
            now,
        );
        let request = Request {
            principal: PrincipalRef::Federated(&provider.arn),
            action: ACTION,
            resource: &role_arn,
            context: &context,
        };
        if !crate::policy::evaluate(&set, &request).is_allowed() {
            tracing::info!(
                role = %role_arn,
                provider = %provider.arn,
                subject = %claims.subject,
                "trust policy refused AssumeRoleWithWebIdentity"
            );
            return Err(not_authorized());
        }

        let mut session = self.role_session(
            &role,
            &shape,
            now,
            duration,
            (Vec::new(), Vec::new()),
            None,
            false,
        );
        session.identity_subject = Some(format!("{}|{}", claims.issuer, claims.subject));
        let assumed = self.assumed(
            &session,
            assume::packed_size_percent(&shape, session_policy.is_some()),
        );
        Ok(AssumedRoleWithWebIdentity {
            assumed,
            subject: claims.subject,
            provider: claims.issuer,
            audience: claims.audience,
        })
    }
}
