//! AssumeRoleWithWebIdentity: workloads (a Kubernetes service account, a CI job)
//! trade an OpenID Connect ID token for role credentials.
//!
//! The token's `iss` selects an IAM OIDC provider of the role's account; the token is
//! verified with the keys the issuer publishes (discovery document → `jwks_uri`,
//! cached, see [`crate::service::jwks`]) and checked by the pure rules in [`jwt`];
//! then the role's trust policy decides, with the provider's ARN as the `Federated`
//! principal and the condition keys `<provider>:sub`, `:aud`, `:oaud`, `:azp` and
//! `:amr`, where `<provider>` is the issuer without its scheme, as IAM names it.
//! This module holds the rules; the issuance service does the lookups.

pub mod jwt;

use reqwest::Url;

use crate::iam::{ProviderUrlKind, RoleArn, check_provider_url};
use crate::policy::ContextKeys;

use super::assume::{self, AssumeRoleParams};
use super::credentials::AssumedRole;
use super::error::StsError;
use jwt::{VerifiedClaims, invalid_token};

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

/// Checks the parameters that need no lookup. Returns the role (see
/// [`assume::role_arn`]), the trimmed token, and the parameters in AssumeRole's shape
/// for the shared rules.
#[allow(clippy::type_complexity)]
pub fn validate(
    params: &WebIdentityParams,
) -> Result<(Option<RoleArn>, &str, AssumeRoleParams), StsError> {
    let shape = AssumeRoleParams {
        role_arn: params.role_arn.clone(),
        role_session_name: params.role_session_name.clone(),
        duration_seconds: params.duration_seconds,
        policy: params.policy.clone(),
        policy_arns: params.policy_arns.clone(),
        ..AssumeRoleParams::default()
    };
    let role_arn = assume::validate_assume_role(&shape)?;
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
    Ok((role_arn, token, shape))
}

/// The keys the trust policy sees for this request.
pub fn trust_context(
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
    assume::request_keys(&mut context, source_ip, now);
    context
}

pub fn not_authorized() -> StsError {
    StsError::access_denied(format!("Not authorized to perform {ACTION}"))
}

/// A provider URL of `kind` under the one set of rules
/// ([`crate::iam::check_provider_url`]), refused as an invalid identity token.
pub fn provider_url(value: &str, what: &str, kind: ProviderUrlKind) -> Result<Url, StsError> {
    check_provider_url(value, kind)
        .map_err(|why| invalid_token(format!("The {what} {value:?} {why}.")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_urls_need_https_except_on_loopback() {
        for ok in [
            "https://idp.example.com",
            "https://idp.example.com/realms/x",
            "http://127.0.0.1:8080",
            "http://localhost:9000/issuer",
            "http://[::1]:1234",
        ] {
            assert!(
                provider_url(ok, "issuer", ProviderUrlKind::Issuer).is_ok(),
                "{ok}"
            );
        }
        for bad in [
            "http://idp.example.com",
            "http://10.0.0.1",
            "ftp://127.0.0.1",
            "https://user:pw@idp.example.com",
            "https://idp.example.com/?q=1",
            "https://idp.example.com/#f",
            "idp.example.com",
        ] {
            let error = provider_url(bad, "issuer", ProviderUrlKind::Issuer).unwrap_err();
            assert_eq!(error.code, "InvalidIdentityToken", "{bad}");
        }
    }
}
