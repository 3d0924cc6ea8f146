//! AssumeRoleWithSAML: the provider lookup, the verification of the response by the
//! shared SAML verifier, the replay claim and the role load; the session and trust
//! rules are [`crate::sts::saml`]'s.

use chrono::{DateTime, Utc};

use crate::cache::Cache;
use crate::idp::saml::{
    Expectations, InResponseTo, SamlError, claim_assertion_once, parse_idp_metadata,
    verify_response,
};
use crate::policy::{PolicyKind, PolicySet, PrincipalRef, Request, ResourcePolicy};
use crate::store::StoreError;
use crate::sts::assume;
use crate::sts::error::StsError;
use crate::sts::saml::{
    ACTION, AssertionFacts, AssumedRoleWithSaml, SamlParams, assume_shape, has_role_pair,
    invalid_token, name_qualifier, not_authorized, session_length, session_request, subject_type,
    trust_context, validate,
};

use super::Sts;

/// How far the assertion's validity window may be from this server's clock.
pub const SAML_CLOCK_SKEW: std::time::Duration = std::time::Duration::from_secs(60);

/// Why an AssumeRoleWithSAML request was refused: the AWS error, a stable short reason
/// for the audit log (the verifier's code for assertions it refused) and the provider
/// and issuer when known. Never the assertion.
#[derive(Debug, Clone)]
pub struct SamlRefusal {
    pub error: StsError,
    pub reason: &'static str,
    pub provider: Option<String>,
    pub issuer: Option<String>,
}

impl SamlRefusal {
    fn new(error: StsError, reason: &'static str) -> Self {
        Self {
            error,
            reason,
            provider: None,
            issuer: None,
        }
    }
}

/// The AWS error for an assertion the verifier refused.
pub fn saml_error_to_sts(error: &SamlError) -> StsError {
    let message = format!("Invalid SAML response: {error}");
    match error {
        SamlError::Expired => StsError::new("ExpiredTokenException", 400, message),
        SamlError::WrongAudience
        | SamlError::WrongRecipient
        | SamlError::WrongDestination
        | SamlError::NotYetValid
        | SamlError::UnknownInResponseTo
        | SamlError::NoBearer
        | SamlError::Replayed
        | SamlError::IdpStatus(_) => StsError::new("IDPRejectedClaim", 403, message),
        SamlError::Unavailable(_) => StsError::internal(),
        _ => invalid_token(message),
    }
}

impl Sts {
    /// AssumeRoleWithSAML: verifies the SAML response against the IAM SAML provider
    /// `PrincipalArn` names (its metadata's entity ID and signing certificates),
    /// checks that the assertion grants the (role, provider) pair, evaluates the role's
    /// trust policy and issues a role session. Unsigned on the wire: the assertion is
    /// the only credential. `audience` is this STS's SAML endpoint (Audience and
    /// Recipient must name it); `cache` keeps the IDs of used assertions.
    pub async fn assume_role_with_saml(
        &self,
        params: &SamlParams,
        cache: &dyn Cache,
        audience: &str,
        source_ip: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<AssumedRoleWithSaml, SamlRefusal> {
        // Cheap, bounded checks only: the caller is anonymous until the assertion
        // is verified.
        let (role_arn, provider_name) =
            validate(params).map_err(|e| SamlRefusal::new(e, "invalid_parameter"))?;
        let provider_arn = provider_name.arn.clone();
        let refuse = |error: StsError, reason: &'static str, issuer: Option<&str>| SamlRefusal {
            error,
            reason,
            provider: Some(provider_arn.clone()),
            issuer: issuer.map(str::to_owned),
        };

        let provider = match self
            .store
            .get_saml_provider(&provider_name.account, &provider_name.name)
            .await
        {
            Ok(provider) => provider,
            Err(StoreError::NotFound { .. } | StoreError::Invalid(_)) => {
                return Err(refuse(
                    invalid_token("Specified provider doesn't exist"),
                    "unknown_provider",
                    None,
                ));
            }
            Err(error) => return Err(refuse(self.store_failure(error), "store_failure", None)),
        };
        let metadata = parse_idp_metadata(&provider.metadata_document).map_err(|error| {
            // Validated when stored: failing now means the data was damaged.
            tracing::error!(provider = %provider.arn, %error, "stored SAML provider metadata no longer parses");
            refuse(StsError::internal(), "bad_metadata", None)
        })?;
        let expect = Expectations {
            idp: &metadata,
            audience,
            recipient: audience,
            in_response_to: InResponseTo::IdpInitiatedOnly,
            now,
            clock_skew: SAML_CLOCK_SKEW,
            decryption_key: None,
        };
        let issuer = Some(metadata.entity_id.as_str());
        let verified = verify_response(params.saml_assertion.trim(), &expect).map_err(|error| {
            tracing::info!(provider = %provider.arn, reason = error.code(), "SAML assertion refused");
            refuse(saml_error_to_sts(&error), error.code(), issuer)
        })?;
        claim_assertion_once(
            cache,
            &verified.issuer,
            &verified.assertion_id,
            verified.not_on_or_after,
            now,
        )
        .await
        .map_err(|error| refuse(saml_error_to_sts(&error), error.code(), issuer))?;

        let session = session_request(&verified.attributes)
            .map_err(|e| refuse(e, "session_attributes", issuer))?;
        let Some(role_arn) = role_arn else {
            return Err(refuse(not_authorized(), "no_such_role", issuer));
        };
        let role_arn_text = role_arn.to_string();
        if !has_role_pair(&verified.attributes, &params.role_arn, &provider.arn) {
            tracing::info!(role = %role_arn_text, provider = %provider.arn, "the SAML assertion does not grant this role");
            return Err(refuse(not_authorized(), "role_not_in_assertion", issuer));
        }
        if role_arn.account != provider.account_id {
            return Err(refuse(
                not_authorized(),
                "provider_of_another_account",
                issuer,
            ));
        }
        let shape = assume_shape(params, &session);
        assume::validate_assume_role(&shape)
            .map_err(|e| refuse(e, "session_attributes", issuer))?;
        let session_policy = assume::parse_session_policy(params.policy.as_deref())
            .map_err(|e| refuse(e, "malformed_policy", issuer))?;
        let packed_policy_size = assume::packed_size_percent(&shape, session_policy.is_some());
        if packed_policy_size > 100 {
            return Err(refuse(
                StsError::new(
                    "PackedPolicyTooLarge",
                    400,
                    format!(
                        "The session policy, policy ARNs and session tags take {packed_policy_size}% of the packed allowance."
                    ),
                ),
                "packed_policy_too_large",
                issuer,
            ));
        }
        self.check_policy_arns(&params.policy_arns)
            .await
            .map_err(|e| refuse(e, "invalid_parameter", issuer))?;

        let role = self
            .load_role(&role_arn, not_authorized)
            .await
            .map_err(|e| refuse(e, "no_such_role", issuer))?;
        let timestamp = now.timestamp();
        let duration = session_length(
            params.duration_seconds,
            role.max_session_duration.seconds(),
            &session,
            verified.session_not_on_or_after.map(|t| t.timestamp()),
            timestamp,
        )
        .map_err(|e| refuse(e, "duration", issuer))?;

        let qualifier = name_qualifier(
            &verified.issuer,
            provider.account_id.as_str(),
            &provider.name,
        );
        let facts = AssertionFacts {
            issuer: &verified.issuer,
            name_id: &verified.name_id,
            name_id_format: verified.name_id_format.as_deref(),
            attributes: &verified.attributes,
        };
        let trust = self
            .parsed(&role.trust_policy, PolicyKind::Trust, &role_arn_text)
            .map_err(|e| refuse(e, "store_failure", issuer))?;
        let set = PolicySet {
            identity: &[],
            boundary: None,
            session: &[],
            resource: Some(ResourcePolicy {
                policy: &trust,
                owner_account: role.account_id.as_str(),
            }),
        };
        let context = trust_context(
            &provider_name,
            &facts,
            audience,
            &qualifier,
            &shape,
            source_ip,
            timestamp,
        );
        let mut actions = vec![ACTION];
        if !shape.tags.is_empty() {
            actions.push("sts:TagSession");
        }
        if shape.source_identity.is_some() {
            actions.push("sts:SetSourceIdentity");
        }
        for action in actions {
            let request = Request {
                principal: PrincipalRef::Federated(&provider.arn),
                action,
                resource: &role_arn_text,
                context: &context,
            };
            if !crate::policy::evaluate(&set, &request).is_allowed() {
                tracing::info!(
                    role = %role_arn_text,
                    provider = %provider.arn,
                    action,
                    "trust policy refused AssumeRoleWithSAML"
                );
                return Err(refuse(not_authorized(), "trust_policy", issuer));
            }
        }

        let mut claims = self.role_session(
            &role,
            &shape,
            timestamp,
            duration,
            (shape.tags.clone(), shape.transitive_tag_keys.clone()),
            shape.source_identity.clone(),
            false,
        );
        claims.identity_subject = Some(format!("{}|{}", verified.issuer, verified.name_id));
        Ok(AssumedRoleWithSaml {
            assumed: self.assumed(&claims, packed_policy_size),
            subject_type: subject_type(verified.name_id_format.as_deref()),
            subject: verified.name_id,
            issuer: verified.issuer,
            audience: audience.to_owned(),
            name_qualifier: qualifier,
            provider_arn: provider.arn,
        })
    }
}
