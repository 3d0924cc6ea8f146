//! AssumeRoleWithSAML: a SAML 2.0 response from an IdP that an account trusts (an IAM
//! SAML provider) is traded for role credentials, the AWS way.
//!
//! The request names the role and the provider; the response must be signed by the
//! provider's IdP (verified by [`crate::idp::saml::verify_response`], the one verifier
//! the portal's service provider uses too) and its
//! `https://aws.amazon.com/SAML/Attributes/Role` values must hold that
//! (role, provider) pair. Then the role's trust policy decides, with the provider's ARN
//! as the `Federated` principal and the `SAML:*` condition keys. This module holds the
//! pure rules; the issuance service does the lookups.

use std::collections::BTreeMap;

use base64::Engine;
use sha1::{Digest, Sha1};

use crate::iam::{AccountId, RoleArn};
use crate::policy::ContextKeys;

use super::assume::{self, AssumeRoleParams};
use super::credentials::AssumedRole;
use super::error::StsError;

/// The action trust policies must allow.
pub const ACTION: &str = "sts:AssumeRoleWithSAML";
/// Model limits of `SAMLAssertion` (AWS's cap on the base64 text).
pub const MIN_ASSERTION_LEN: usize = 4;
pub const MAX_ASSERTION_LEN: usize = 100_000;

/// The attributes AWS reads from the assertion.
pub const ROLE_ATTRIBUTE: &str = "https://aws.amazon.com/SAML/Attributes/Role";
pub const ROLE_SESSION_NAME_ATTRIBUTE: &str =
    "https://aws.amazon.com/SAML/Attributes/RoleSessionName";
pub const SESSION_DURATION_ATTRIBUTE: &str =
    "https://aws.amazon.com/SAML/Attributes/SessionDuration";
pub const PRINCIPAL_TAG_ATTRIBUTE_PREFIX: &str =
    "https://aws.amazon.com/SAML/Attributes/PrincipalTag:";
pub const TRANSITIVE_TAG_KEYS_ATTRIBUTE: &str =
    "https://aws.amazon.com/SAML/Attributes/TransitiveTagKeys";
pub const SOURCE_IDENTITY_ATTRIBUTE: &str = "https://aws.amazon.com/SAML/Attributes/SourceIdentity";

/// The NameID format prefix AWS strips from `SubjectType`.
const NAME_ID_FORMAT_PREFIX: &str = "urn:oasis:names:tc:SAML:2.0:nameid-format:";
/// A NameID without a Format attribute has this one (SAML core 8.3.1).
const UNSPECIFIED_FORMAT: &str = "urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified";

/// AssumeRoleWithSAML's parameters as they arrive on the wire.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct SamlParams {
    pub role_arn: String,
    pub principal_arn: String,
    pub saml_assertion: String,
    pub duration_seconds: Option<i64>,
    pub policy: Option<String>,
    pub policy_arns: Vec<String>,
}

impl std::fmt::Debug for SamlParams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The assertion is a bearer credential: never printed.
        f.debug_struct("SamlParams")
            .field("role_arn", &self.role_arn)
            .field("principal_arn", &self.principal_arn)
            .field(
                "saml_assertion",
                &format_args!("<{} chars>", self.saml_assertion.len()),
            )
            .field("duration_seconds", &self.duration_seconds)
            .field("policy", &self.policy.as_ref().map(|_| "<policy>"))
            .field("policy_arns", &self.policy_arns)
            .finish()
    }
}

/// The IAM SAML provider a request names (`PrincipalArn`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderName {
    pub arn: String,
    pub account: AccountId,
    /// The friendly name: the last part of the ARN.
    pub name: String,
}

/// What the verified assertion says, as this module needs it.
#[derive(Debug, Clone, Copy)]
pub struct AssertionFacts<'a> {
    pub issuer: &'a str,
    pub name_id: &'a str,
    pub name_id_format: Option<&'a str>,
    pub attributes: &'a BTreeMap<String, Vec<String>>,
}

/// The session the assertion asks for, from its AWS attributes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRequest {
    pub role_session_name: String,
    /// `SessionDuration`: caps the session's length.
    pub session_duration: Option<i64>,
    /// `PrincipalTag:<key>` attributes, in attribute-name order.
    pub tags: Vec<(String, String)>,
    pub transitive_tag_keys: Vec<String>,
    pub source_identity: Option<String>,
}

/// The result of AssumeRoleWithSAML, as AWS returns it.
#[derive(Debug, Clone)]
pub struct AssumedRoleWithSaml {
    pub assumed: AssumedRole,
    /// The NameID.
    pub subject: String,
    pub subject_type: String,
    pub issuer: String,
    /// The SubjectConfirmationData Recipient (the STS SAML endpoint).
    pub audience: String,
    pub name_qualifier: String,
    /// The provider's ARN, for the audit log.
    pub provider_arn: String,
}

/// An invalid identity token, AWS's answer to an assertion it cannot use.
pub fn invalid_token(message: impl Into<String>) -> StsError {
    StsError::new("InvalidIdentityToken", 400, message)
}

/// AWS's answer when the role may not be assumed with this assertion (no such role,
/// the pair is not in the assertion, or the trust policy says no).
pub fn not_authorized() -> StsError {
    StsError::access_denied(format!("Not authorized to perform {ACTION}"))
}

/// AWS's "Value null" ValidationError for a missing required parameter.
pub fn missing(parameter: &str) -> StsError {
    StsError::validation(format!(
        "1 validation error detected: Value null at '{parameter}' failed to satisfy constraint: Member must not be null"
    ))
}

/// Checks everything that needs neither a lookup nor the assertion's content:
/// lengths, the two ARNs, the session policy's size, the duration's range.
pub fn validate(params: &SamlParams) -> Result<(Option<RoleArn>, ProviderName), StsError> {
    let len = params.saml_assertion.chars().count();
    if len < MIN_ASSERTION_LEN {
        return Err(StsError::constraint(
            "SAMLAssertion",
            &format!("<{len} characters>"),
            &format!("Member must have length greater than or equal to {MIN_ASSERTION_LEN}"),
        ));
    }
    if len > MAX_ASSERTION_LEN {
        return Err(StsError::constraint(
            "SAMLAssertion",
            &format!("<{len} characters>"),
            &format!("Member must have length less than or equal to {MAX_ASSERTION_LEN}"),
        ));
    }
    let role = assume::role_arn(&params.role_arn)?;
    let provider = provider_arn(&params.principal_arn)?;
    if let Some(policy) = &params.policy {
        assume::check_session_policy_size(policy)?;
    }
    assume::POLICY_ARNS.check(params.policy_arns.len())?;
    // The range needs no role; the role's own maximum is checked later.
    assume::role_session_duration(params.duration_seconds, 43_200, false)?;
    Ok((role, provider))
}

/// `arn:<partition>:iam::<account>:saml-provider/<name>`, or AWS's ValidationError.
pub fn provider_arn(value: &str) -> Result<ProviderName, StsError> {
    let invalid = || {
        StsError::constraint(
            "principalArn",
            value,
            "Member must be a SAML provider ARN such as arn:aws:iam::123456789012:saml-provider/Name",
        )
    };
    let arn = crate::iam::Arn::parse(value).map_err(|_| invalid())?;
    let name = arn
        .resource
        .strip_prefix("saml-provider/")
        .ok_or_else(invalid)?;
    if arn.service != "iam" || !arn.region.is_empty() {
        return Err(invalid());
    }
    crate::store::check_saml_provider_name(name).map_err(|_| invalid())?;
    let account = AccountId::parse(arn.account.clone()).map_err(|_| invalid())?;
    Ok(ProviderName {
        arn: value.to_owned(),
        account,
        name: name.to_owned(),
    })
}

/// Whether the assertion's Role attribute holds the (role, provider) pair, in either
/// order (`role-arn,provider-arn` or `provider-arn,role-arn`), as AWS accepts it.
pub fn has_role_pair(
    attributes: &BTreeMap<String, Vec<String>>,
    role_arn: &str,
    provider_arn: &str,
) -> bool {
    attributes.get(ROLE_ATTRIBUTE).is_some_and(|values| {
        values.iter().any(|value| {
            let mut parts = value.split(',').map(str::trim);
            match (parts.next(), parts.next(), parts.next()) {
                (Some(a), Some(b), None) => {
                    (a == role_arn && b == provider_arn) || (a == provider_arn && b == role_arn)
                }
                _ => false,
            }
        })
    })
}

fn single<'a>(
    attributes: &'a BTreeMap<String, Vec<String>>,
    name: &str,
    what: &str,
) -> Result<Option<&'a str>, StsError> {
    match attributes.get(name).map(Vec::as_slice) {
        None | Some([]) => Ok(None),
        Some([one]) => Ok(Some(one.trim())),
        Some(_) => Err(invalid_token(format!(
            "{what} in AuthnResponse must have exactly one value"
        ))),
    }
}

/// The session the assertion's AWS attributes ask for, checked as AWS checks them.
pub fn session_request(
    attributes: &BTreeMap<String, Vec<String>>,
) -> Result<SessionRequest, StsError> {
    let role_session_name = single(attributes, ROLE_SESSION_NAME_ATTRIBUTE, "RoleSessionName")?
        .ok_or_else(|| invalid_token("RoleSessionName is required in AuthnResponse"))?
        .to_owned();
    if !assume::is_valid_session_name(&role_session_name) {
        return Err(invalid_token(
            "RoleSessionName in AuthnResponse must match [a-zA-Z_0-9+=,.@-]{2,64}",
        ));
    }
    let session_duration = single(attributes, SESSION_DURATION_ATTRIBUTE, "SessionDuration")?
        .map(|value| {
            value
                .parse::<i64>()
                .ok()
                .filter(|d| (assume::MIN_DURATION..=43_200).contains(d))
                .ok_or_else(|| {
                    invalid_token(
                        "SessionDuration in AuthnResponse must be a number of seconds from 900 to 43200",
                    )
                })
        })
        .transpose()?;
    let source_identity =
        single(attributes, SOURCE_IDENTITY_ATTRIBUTE, "SourceIdentity")?.map(str::to_owned);
    if let Some(value) = &source_identity
        && (!assume::is_valid_session_name(value) || value.to_ascii_lowercase().starts_with("aws:"))
    {
        return Err(invalid_token(
            "Source Identity must match [a-zA-Z_0-9+=,.@-]{2,64} and not begin with \"aws:\"",
        ));
    }
    let mut tags = Vec::new();
    for (name, values) in attributes.range(PRINCIPAL_TAG_ATTRIBUTE_PREFIX.to_owned()..) {
        let Some(key) = name.strip_prefix(PRINCIPAL_TAG_ATTRIBUTE_PREFIX) else {
            break;
        };
        match values.as_slice() {
            [value] => tags.push((key.to_owned(), value.clone())),
            _ => {
                return Err(invalid_token(format!(
                    "PrincipalTag:{key} in AuthnResponse must have exactly one value"
                )));
            }
        }
    }
    let transitive_tag_keys = attributes
        .get(TRANSITIVE_TAG_KEYS_ATTRIBUTE)
        .cloned()
        .unwrap_or_default();
    Ok(SessionRequest {
        role_session_name,
        session_duration,
        tags,
        transitive_tag_keys,
        source_identity,
    })
}

/// The request in AssumeRole's shape, for the shared session rules (tag limits,
/// transitive keys among the tags, session claims).
pub fn assume_shape(params: &SamlParams, session: &SessionRequest) -> AssumeRoleParams {
    AssumeRoleParams {
        role_arn: params.role_arn.clone(),
        role_session_name: session.role_session_name.clone(),
        duration_seconds: params.duration_seconds,
        policy: params.policy.clone(),
        policy_arns: params.policy_arns.clone(),
        tags: session.tags.clone(),
        transitive_tag_keys: session.transitive_tag_keys.clone(),
        external_id: None,
        source_identity: session.source_identity.clone(),
    }
}

/// The session length: DurationSeconds (default one hour) within the role's maximum,
/// no longer than the assertion's `SessionDuration` attribute, and ending no later than
/// its `SessionNotOnOrAfter` (`session_ends`, epoch seconds) when it has one.
pub fn session_length(
    requested: Option<i64>,
    role_max: i64,
    session: &SessionRequest,
    session_ends: Option<i64>,
    now: i64,
) -> Result<i64, StsError> {
    let mut duration = assume::role_session_duration(requested, role_max, false)?;
    if let Some(cap) = session.session_duration {
        duration = duration.min(cap);
    }
    if let Some(ends) = session_ends {
        let left = ends - now;
        if left <= 0 {
            return Err(StsError::new(
                "ExpiredTokenException",
                400,
                "The SAML session has ended (SessionNotOnOrAfter has passed).",
            ));
        }
        duration = duration.min(left);
    }
    Ok(duration)
}

/// `SubjectType`: the NameID format without the SAML 2.0 prefix.
pub fn subject_type(format: Option<&str>) -> String {
    let format = format.unwrap_or(UNSPECIFIED_FORMAT);
    format
        .strip_prefix(NAME_ID_FORMAT_PREFIX)
        .unwrap_or(format)
        .to_owned()
}

/// `NameQualifier`: BASE64(SHA1(issuer + account id + "/" + provider name)), as AWS
/// computes it; with the subject, it names a federated user uniquely.
pub fn name_qualifier(issuer: &str, account: &str, provider_name: &str) -> String {
    let mut hasher = Sha1::new();
    hasher.update(issuer.as_bytes());
    hasher.update(account.as_bytes());
    hasher.update(b"/");
    hasher.update(provider_name.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(hasher.finalize())
}

/// Well-known attributes AWS exposes as `SAML:<key>` condition keys, by the OID
/// names (`urn:oid:...`) and the friendly names IdPs send them under.
const KNOWN_ATTRIBUTES: &[(&str, &str)] = &[
    ("1.3.6.1.4.1.5923.1.1.1.1", "edupersonaffiliation"),
    ("1.3.6.1.4.1.5923.1.1.1.2", "edupersonnickname"),
    ("1.3.6.1.4.1.5923.1.1.1.3", "edupersonorgdn"),
    ("1.3.6.1.4.1.5923.1.1.1.4", "edupersonorgunitdn"),
    ("1.3.6.1.4.1.5923.1.1.1.5", "edupersonprimaryaffiliation"),
    ("1.3.6.1.4.1.5923.1.1.1.6", "edupersonprincipalname"),
    ("1.3.6.1.4.1.5923.1.1.1.7", "edupersonentitlement"),
    ("1.3.6.1.4.1.5923.1.1.1.8", "edupersonprimaryorgunitdn"),
    ("1.3.6.1.4.1.5923.1.1.1.9", "edupersonscopedaffiliation"),
    ("1.3.6.1.4.1.5923.1.1.1.10", "edupersontargetedid"),
    ("1.3.6.1.4.1.5923.1.1.1.11", "edupersonassurance"),
    ("1.3.6.1.4.1.5923.1.2.1.2", "eduorghomepageuri"),
    ("1.3.6.1.4.1.5923.1.2.1.3", "eduorgidentityauthnpolicyuri"),
    ("1.3.6.1.4.1.5923.1.2.1.4", "eduorglegalname"),
    ("1.3.6.1.4.1.5923.1.2.1.5", "eduorgsuperioruri"),
    ("1.3.6.1.4.1.5923.1.2.1.6", "eduorgwhitepagesuri"),
    ("2.5.4.3", "cn"),
    ("2.5.4.4", "surname"),
    ("2.5.4.41", "name"),
    ("2.5.4.42", "givenName"),
    ("2.5.4.45", "x500UniqueIdentifier"),
    ("0.9.2342.19200300.100.1.1", "uid"),
    ("0.9.2342.19200300.100.1.3", "mail"),
    ("1.3.6.1.4.1.25178.1.2.9", "organizationStatus"),
];

/// The `SAML:<key>` condition key an attribute name maps to, if AWS has one.
fn known_attribute_key(name: &str) -> Option<&'static str> {
    let oid = name.strip_prefix("urn:oid:");
    KNOWN_ATTRIBUTES.iter().find_map(|(known_oid, key)| {
        let hit = match oid {
            Some(oid) => oid == *known_oid,
            None => {
                name.eq_ignore_ascii_case(key)
                    || (*key == "cn" && name.eq_ignore_ascii_case("commonName"))
            }
        };
        hit.then_some(*key)
    })
}

/// The keys the trust policy sees for this request.
#[allow(clippy::too_many_arguments)]
pub fn trust_context(
    provider: &ProviderName,
    facts: &AssertionFacts<'_>,
    audience: &str,
    name_qualifier: &str,
    shape: &AssumeRoleParams,
    source_ip: Option<&str>,
    now: i64,
) -> ContextKeys {
    let mut context = ContextKeys::new();
    context.insert("aws:FederatedProvider", provider.arn.as_str());
    context.insert("SAML:aud", audience);
    context.insert("SAML:iss", facts.issuer);
    context.insert("SAML:sub", facts.name_id);
    context.insert("SAML:sub_type", subject_type(facts.name_id_format));
    context.insert("SAML:namequalifier", name_qualifier);
    context.insert(
        "SAML:doc",
        format!("{}/{}", provider.account, provider.name),
    );
    for (name, values) in facts.attributes {
        if let Some(key) = known_attribute_key(name) {
            context.set(&format!("SAML:{key}"), values.iter().cloned());
        }
    }
    assume::trust_context(
        &mut context,
        shape,
        &shape.tags,
        shape.source_identity.as_deref(),
    );
    assume::request_keys(&mut context, source_ip, now);
    context
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attributes(pairs: &[(&str, &[&str])]) -> BTreeMap<String, Vec<String>> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.iter().map(|s| (*s).to_owned()).collect()))
            .collect()
    }

    const ROLE: &str = "arn:aws:iam::123456789012:role/Demo";
    const PROVIDER: &str = "arn:aws:iam::123456789012:saml-provider/Corp";

    #[test]
    fn the_role_pair_is_found_in_either_order_and_only_whole() {
        for value in [
            format!("{ROLE},{PROVIDER}"),
            format!("{PROVIDER},{ROLE}"),
            format!("{PROVIDER}, {ROLE}"),
        ] {
            let attrs = attributes(&[(ROLE_ATTRIBUTE, &["other,pair", &value])]);
            assert!(has_role_pair(&attrs, ROLE, PROVIDER), "{value}");
        }
        for value in [
            ROLE.to_owned(),
            format!("{ROLE},{ROLE}"),
            format!("{ROLE},{PROVIDER},x"),
            format!("{ROLE},arn:aws:iam::123456789012:saml-provider/Other"),
        ] {
            let attrs = attributes(&[(ROLE_ATTRIBUTE, &[&value])]);
            assert!(!has_role_pair(&attrs, ROLE, PROVIDER), "{value}");
        }
        assert!(!has_role_pair(&BTreeMap::new(), ROLE, PROVIDER));
    }

    #[test]
    fn name_qualifier_is_awss_hash() {
        // BASE64(SHA1("https://example.com/saml" + "123456789012" + "/MySAMLIdP")).
        let mut hasher = Sha1::new();
        hasher.update(b"https://example.com/saml123456789012/MySAMLIdP");
        let expected = base64::engine::general_purpose::STANDARD.encode(hasher.finalize());
        assert_eq!(
            name_qualifier("https://example.com/saml", "123456789012", "MySAMLIdP"),
            expected
        );
        assert_eq!(expected.len(), 28);
    }

    #[test]
    fn subject_types_drop_only_the_saml2_prefix() {
        assert_eq!(
            subject_type(Some("urn:oasis:names:tc:SAML:2.0:nameid-format:persistent")),
            "persistent"
        );
        assert_eq!(
            subject_type(Some(
                "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress"
            )),
            "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress"
        );
        assert_eq!(subject_type(None), UNSPECIFIED_FORMAT);
    }

    #[test]
    fn session_attributes_are_checked_as_aws_checks_them() {
        let missing = session_request(&BTreeMap::new()).unwrap_err();
        assert_eq!(
            (missing.code, missing.message.as_str()),
            (
                "InvalidIdentityToken",
                "RoleSessionName is required in AuthnResponse"
            )
        );
        let bad =
            session_request(&attributes(&[(ROLE_SESSION_NAME_ATTRIBUTE, &["a b"])])).unwrap_err();
        assert_eq!(bad.code, "InvalidIdentityToken");
        let bad = session_request(&attributes(&[
            (ROLE_SESSION_NAME_ATTRIBUTE, &["alice"]),
            (SOURCE_IDENTITY_ATTRIBUTE, &["aws:x"]),
        ]))
        .unwrap_err();
        assert_eq!(bad.code, "InvalidIdentityToken");
        let bad = session_request(&attributes(&[
            (ROLE_SESSION_NAME_ATTRIBUTE, &["alice"]),
            (SESSION_DURATION_ATTRIBUTE, &["60"]),
        ]))
        .unwrap_err();
        assert_eq!(bad.code, "InvalidIdentityToken");
        let tag = format!("{PRINCIPAL_TAG_ATTRIBUTE_PREFIX}Team");
        let ok = session_request(&attributes(&[
            (ROLE_SESSION_NAME_ATTRIBUTE, &["alice@example.com"]),
            (SESSION_DURATION_ATTRIBUTE, &["1800"]),
            (&tag, &["platform"]),
            (TRANSITIVE_TAG_KEYS_ATTRIBUTE, &["Team"]),
            (SOURCE_IDENTITY_ATTRIBUTE, &["alice"]),
            (
                "https://aws.amazon.com/SAML/Attributes/Zzz",
                &["after the tags"],
            ),
        ]))
        .unwrap();
        assert_eq!(ok.role_session_name, "alice@example.com");
        assert_eq!(ok.session_duration, Some(1800));
        assert_eq!(ok.tags, [("Team".to_owned(), "platform".to_owned())]);
        assert_eq!(ok.transitive_tag_keys, ["Team"]);
        assert_eq!(ok.source_identity.as_deref(), Some("alice"));
    }

    #[test]
    fn the_session_is_capped_by_the_attribute_and_the_idp_session() {
        let session = SessionRequest {
            role_session_name: "alice".into(),
            session_duration: Some(1800),
            tags: Vec::new(),
            transitive_tag_keys: Vec::new(),
            source_identity: None,
        };
        assert_eq!(session_length(None, 3600, &session, None, 0).unwrap(), 1800);
        assert_eq!(
            session_length(None, 3600, &session, Some(1000), 0).unwrap(),
            1000
        );
        let ended = session_length(None, 3600, &session, Some(0), 0).unwrap_err();
        assert_eq!(ended.code, "ExpiredTokenException");
        let too_long = session_length(Some(7200), 3600, &session, None, 0).unwrap_err();
        assert_eq!(too_long.code, "ValidationError");
    }

    #[test]
    fn parameters_are_validated_before_anything_else() {
        let params = SamlParams {
            role_arn: ROLE.into(),
            principal_arn: PROVIDER.into(),
            saml_assertion: "PHNhbWw+".into(),
            ..SamlParams::default()
        };
        let (role, provider) = validate(&params).unwrap();
        assert_eq!(role.unwrap().to_string(), ROLE);
        assert_eq!(
            (provider.account.as_str(), provider.name.as_str()),
            ("123456789012", "Corp")
        );
        let oversize = SamlParams {
            saml_assertion: "A".repeat(MAX_ASSERTION_LEN + 1),
            ..params.clone()
        };
        assert_eq!(validate(&oversize).unwrap_err().code, "ValidationError");
        let short = SamlParams {
            saml_assertion: "AB".into(),
            ..params.clone()
        };
        assert_eq!(validate(&short).unwrap_err().code, "ValidationError");
        for bad in [
            "arn:aws:iam::123456789012:oidc-provider/x",
            "arn:aws:iam::123456789012:saml-provider/",
            "arn:aws:iam::12345:saml-provider/Corp",
            "not an arn",
        ] {
            let p = SamlParams {
                principal_arn: bad.into(),
                ..params.clone()
            };
            assert_eq!(validate(&p).unwrap_err().code, "ValidationError", "{bad}");
        }
    }

    #[test]
    fn well_known_attributes_become_saml_keys() {
        assert_eq!(
            known_attribute_key("urn:oid:1.3.6.1.4.1.5923.1.1.1.1"),
            Some("edupersonaffiliation")
        );
        assert_eq!(
            known_attribute_key("eduPersonAffiliation"),
            Some("edupersonaffiliation")
        );
        assert_eq!(known_attribute_key("commonName"), Some("cn"));
        assert_eq!(known_attribute_key("groups"), None);
    }
}
