//! AssumeRoleWithWebIdentity: workloads (a Kubernetes service account, a CI job)
//! trade an OpenID Connect ID token for role credentials.
//!
//! The token's `iss` selects an IAM OIDC provider of the role's account; the token is
//! verified with the keys the issuer publishes (discovery document → `jwks_uri`,
//! cached, see [`jwks`]) and checked by the pure rules in [`jwt`]; then the role's
//! trust policy decides, with the provider's ARN as the `Federated` principal and the
//! condition keys `<provider>:sub`, `:aud`, `:oaud`, `:azp` and `:amr`, where
//! `<provider>` is the issuer without its scheme, as IAM names it.

pub mod jwks;
pub mod jwt;

use crate::iam::AccountId;
use crate::policy::{ContextKeys, PolicyKind, PolicySet, PrincipalRef, Request, ResourcePolicy};
use crate::store::StoreError;

use super::assume::{self, AssumeRoleParams};
use super::credentials::{self, KeyKind};
use super::error::StsError;
use super::service::{AssumedRole, Sts, packed_size_percent, parse_session_policy, store_failure};

pub use jwks::{VerifierSettings, WebIdentityVerifier};
use jwt::{UnverifiedToken, VerifiedClaims, invalid_token};

/// The action trust policies must allow.
pub const ACTION: &str = "sts:AssumeRoleWithWebIdentity";
/// Model limits of `WebIdentityToken`.
pub const MIN_TOKEN_LEN: usize = 4;
pub const MAX_TOKEN_LEN: usize = 20_000;

/// AssumeRoleWithWebIdentity's parameters as they arrive on the wire.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct WebIdentityParams {
    pub role_arn: String,
    pub role_session_name: String,
    pub web_identity_token: String,
    /// Only for OAuth 2.0 access tokens of Amazon and Facebook, which Rolegate does
    /// not accept; must be absent for OpenID Connect ID tokens.
    pub provider_id: Option<String>,
    pub duration_seconds: Option<i64>,
    pub policy: Option<String>,
    pub policy_arns: Vec<String>,
}

impl std::fmt::Debug for WebIdentityParams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The token is a bearer credential: never printed.
        f.debug_struct("WebIdentityParams")
            .field("role_arn", &self.role_arn)
            .field("role_session_name", &self.role_session_name)
            .field(
                "web_identity_token",
                &format_args!("<{} chars>", self.web_identity_token.len()),
            )
            .field("provider_id", &self.provider_id)
            .field("duration_seconds", &self.duration_seconds)
            .field("policy", &self.policy.as_ref().map(|_| "<policy>"))
            .field("policy_arns", &self.policy_arns)
            .finish()
    }
}

/// The result of AssumeRoleWithWebIdentity, as AWS returns it.
#[derive(Debug, Clone)]
pub struct AssumedRoleWithWebIdentity {
    pub assumed: AssumedRole,
    /// `SubjectFromWebIdentityToken`: the token's `sub`.
    pub subject: String,
    /// `Provider`: the token's issuer (`iss`), as in the captured AWS exchange.
    pub provider: String,
    /// `Audience`: the token audience that matched the provider's client ids.
    pub audience: String,
}

/// Checks the parameters that need no lookup. Returns the role's account and name,
/// the trimmed token, and the parameters in AssumeRole's shape for the shared rules.
fn validate(
    params: &WebIdentityParams,
) -> Result<(String, String, &str, AssumeRoleParams), StsError> {
    let shape = AssumeRoleParams {
        role_arn: params.role_arn.clone(),
        role_session_name: params.role_session_name.clone(),
        duration_seconds: params.duration_seconds,
        policy: params.policy.clone(),
        policy_arns: params.policy_arns.clone(),
        ..AssumeRoleParams::default()
    };
    let (account, role_name) = assume::validate_assume_role(&shape)?;
    // boto3 sends a token file's trailing newline along.
    let token = params.web_identity_token.trim();
    let len = token.chars().count();
    if !(MIN_TOKEN_LEN..=MAX_TOKEN_LEN).contains(&len) {
        return Err(StsError::constraint(
            "webIdentityToken",
            &format!("<{len} characters>"),
            &format!("Member must have length between {MIN_TOKEN_LEN} and {MAX_TOKEN_LEN}"),
        ));
    }
    if params.provider_id.is_some() {
        return Err(StsError::new(
            "InvalidParameterValue",
            400,
            "ProviderId is only for OAuth 2.0 access tokens of www.amazon.com and graph.facebook.com, which this STS does not accept; omit it for OpenID Connect ID tokens.",
        ));
    }
    // The range check needs no role; the role's own maximum is checked later.
    assume::role_session_duration(params.duration_seconds, 43_200, false)?;
    Ok((account, role_name, token, shape))
}

/// The keys the trust policy sees for this request.
fn trust_context(
    provider_arn: &str,
    provider_url: &str,
    claims: &VerifiedClaims,
    session_name: &str,
    source_ip: Option<&str>,
    now: i64,
) -> ContextKeys {
    let mut context = ContextKeys::new();
    context.insert("aws:FederatedProvider", provider_arn);
    context.insert("aws:PrincipalType", "WebIdentityUser");
    context.insert("sts:RoleSessionName", session_name);
    context.insert(&format!("{provider_url}:sub"), claims.subject.as_str());
    context.insert(&format!("{provider_url}:aud"), claims.audience.as_str());
    context.set(
        &format!("{provider_url}:oaud"),
        claims.audiences.iter().cloned(),
    );
    if let Some(azp) = &claims.authorized_party {
        context.insert(&format!("{provider_url}:azp"), azp.as_str());
    }
    if !claims.amr.is_empty() {
        context.set(&format!("{provider_url}:amr"), claims.amr.iter().cloned());
    }
    if let Some(ip) = source_ip {
        context.insert("aws:SourceIp", ip);
    }
    context.insert("aws:EpochTime", now.to_string());
    if let Some(time) = chrono::DateTime::from_timestamp(now, 0) {
        context.insert(
            "aws:CurrentTime",
            time.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        );
    }
    context
}

fn not_authorized() -> StsError {
    StsError::access_denied(format!("Not authorized to perform {ACTION}"))
}

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
        let (role_account, role_name, raw_token, shape) = validate(params)?;
        let account = AccountId::parse(role_account).map_err(|_| not_authorized())?;

        // The token: structure and header first, nothing trusted yet.
        let token = UnverifiedToken::parse(raw_token)?;
        let provider = match self
            .store()
            .find_oidc_provider(&account, &token.issuer)
            .await
        {
            Ok(provider) => provider,
            Err(StoreError::NotFound { .. } | StoreError::Invalid(_)) => {
                return Err(invalid_token(format!(
                    "No OpenIDConnect provider found in your account for {}",
                    token.issuer
                )));
            }
            Err(error) => return Err(store_failure(error)),
        };
        jwks::provider_url(&token.issuer, "issuer", crate::iam::ProviderUrlKind::Issuer)?;
        self.web_identity.verify_signature(&token, now).await?;
        let claims = jwt::validate_claims(&token.claims, &token.issuer, &provider.client_ids, now)
            .inspect_err(|error| {
                tracing::info!(issuer = %token.issuer, code = error.code, reason = %error.message, "web identity token refused");
            })?;

        // Parsed only now that the token is verified, so that an anonymous caller
        // cannot make the policy parser work.
        let session_policy = parse_session_policy(params.policy.as_deref())?;

        // Session policy ARNs must exist (checked once the caller is authenticated).
        self.check_policy_arns(&params.policy_arns).await?;

        let role = self
            .load_role(
                account.as_str(),
                &role_name,
                Some(&params.role_arn),
                not_authorized,
            )
            .await?;
        let duration = assume::role_session_duration(
            params.duration_seconds,
            role.max_session_duration.seconds(),
            false,
        )?;

        let trust = self.parsed(&role.trust_policy, PolicyKind::Trust, &role.arn)?;
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
            resource: &role.arn,
            context: &context,
        };
        if !crate::policy::evaluate(&set, &request).is_allowed() {
            tracing::info!(
                role = %role.arn,
                provider = %provider.arn,
                subject = %claims.subject,
                "trust policy refused AssumeRoleWithWebIdentity"
            );
            return Err(not_authorized());
        }

        let keys = (
            credentials::new_access_key_id(
                KeyKind::Temporary,
                account.as_str(),
                &mut self.random.rng(),
            ),
            credentials::new_secret_access_key(&mut self.random.rng()),
        );
        let mut session = assume::role_session_claims(
            self.partition(),
            account.as_str(),
            &role.id,
            &role.arn,
            role.name.as_str(),
            &shape,
            keys,
            now,
            duration,
            (Vec::new(), Vec::new()),
            None,
            false,
        );
        session.identity_subject = Some(format!("{}|{}", claims.issuer, claims.subject));
        let assumed = AssumedRole {
            credentials: self.credentials_for(&session),
            assumed_role_arn: session.principal_arn.clone(),
            assumed_role_id: session.principal_id.clone(),
            packed_policy_size: packed_size_percent(&shape, session_policy.is_some()),
            source_identity: None,
        };
        Ok(AssumedRoleWithWebIdentity {
            assumed,
            subject: claims.subject,
            provider: claims.issuer,
            audience: claims.audience,
        })
    }
}
