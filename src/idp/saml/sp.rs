//! Rolegate as a SAML service provider for the portal: a SAML source's settings
//! ([`SamlConfig`], its `config` JSON), the SP's own key and certificate (generated
//! when not given, the key sealed with the master key), the SP metadata document,
//! the HTTP-Redirect AuthnRequest (signed when the source says so), and the mapping
//! of a verified assertion to the shared [`Identity`]. Pure: time and randomness come
//! in as arguments; the sign-in flow that uses these is
//! [`crate::service::saml_login`].

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::VerifiedAssertion;
use crate::idp::identity::{Identity, bounded_claims};
use crate::service::sealing::SecretSealer;

/// The HTTP-POST binding: how the IdP answers at the ACS.
pub const HTTP_POST_BINDING: &str = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST";
/// The HTTP-Redirect binding: how the AuthnRequest travels to the IdP.
pub const HTTP_REDIRECT_BINDING: &str = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect";
/// What `user_name_attribute` says to take the user name from the subject's NameID.
pub const NAME_ID: &str = "NameID";

/// The most groups one assertion may carry (as for OIDC sources).
const MAX_GROUPS: usize = 10_000;
/// Longest user name, email or display name kept.
const MAX_NAME_LEN: usize = 256;
/// Most and fewest seconds of clock skew a source may allow.
const MAX_SKEW_SECONDS: u32 = 600;
/// How long a generated SP certificate is valid.
const CERTIFICATE_DAYS: i64 = 10 * 365;

/// The settings of one SAML identity source: its `config` JSON.
///
/// ```json
/// {
///   "idp_metadata_url": "https://idp.example.com/metadata",
///   "idp_metadata": "<md:EntityDescriptor ...>",
///   "sp_entity_id": "https://rolegate.example.com/saml/corp-saml/metadata",
///   "user_name_attribute": "NameID",
///   "email_attribute": "email",
///   "display_name_attribute": "displayName",
///   "groups_attribute": "groups",
///   "clock_skew_seconds": 60,
///   "allow_idp_initiated": false,
///   "sign_authn_requests": false,
///   "sp_certificate": "-----BEGIN CERTIFICATE-----...",
///   "sp_private_key": "v1:...sealed...",
///   "session_tags": {"Department": "department"}
/// }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SamlConfig {
    /// Where the IdP's metadata was fetched from (again at every start of `serve`
    /// and `dev`, and when an admin saves the source).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idp_metadata_url: Option<String>,
    /// The IdP's metadata document as imported: its entityID, signing certificates
    /// (several during a rollover) and single sign-on URL.
    #[serde(default)]
    pub idp_metadata: String,
    /// Rolegate's entityID at this IdP; default `<public URL>/saml/<id>/metadata`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sp_entity_id: Option<String>,
    /// The attribute holding the user name, or `NameID` for the subject's NameID.
    #[serde(default = "default_user_name_attribute")]
    pub user_name_attribute: String,
    #[serde(default = "default_email_attribute")]
    pub email_attribute: String,
    #[serde(default = "default_display_name_attribute")]
    pub display_name_attribute: String,
    /// Multi-valued: each value one group.
    #[serde(default = "default_groups_attribute")]
    pub groups_attribute: String,
    /// Tolerated clock difference with the IdP, on NotBefore and NotOnOrAfter alike.
    #[serde(default = "default_clock_skew_seconds")]
    pub clock_skew_seconds: u32,
    /// Accept responses the IdP sends unasked (no AuthnRequest of ours).
    #[serde(default)]
    pub allow_idp_initiated: bool,
    /// Sign the AuthnRequest (HTTP-Redirect `SigAlg` + `Signature`, RSA-SHA256).
    #[serde(default)]
    pub sign_authn_requests: bool,
    /// The SP certificate (PEM), published in the SP metadata for signing and
    /// encryption.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sp_certificate: Option<String>,
    /// The SP private key (PEM), sealed with the master key ([`seal_sp_key`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sp_private_key: Option<String>,
    /// Session tags from attributes: tag key → attribute name (single-valued
    /// attributes only).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub session_tags: BTreeMap<String, String>,
    /// How the mapping rules see this source's claims.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mapping: Option<crate::mapping::ClaimsHygiene>,
}

fn default_user_name_attribute() -> String {
    NAME_ID.into()
}
fn default_email_attribute() -> String {
    "email".into()
}
fn default_display_name_attribute() -> String {
    "displayName".into()
}
fn default_groups_attribute() -> String {
    "groups".into()
}
fn default_clock_skew_seconds() -> u32 {
    60
}

impl Default for SamlConfig {
    fn default() -> Self {
        Self {
            idp_metadata_url: None,
            idp_metadata: String::new(),
            sp_entity_id: None,
            user_name_attribute: default_user_name_attribute(),
            email_attribute: default_email_attribute(),
            display_name_attribute: default_display_name_attribute(),
            groups_attribute: default_groups_attribute(),
            clock_skew_seconds: default_clock_skew_seconds(),
            allow_idp_initiated: false,
            sign_authn_requests: false,
            sp_certificate: None,
            sp_private_key: None,
            session_tags: BTreeMap::new(),
            mapping: None,
        }
    }
}

/// Why a SAML source's settings cannot be used: the setting at fault (a JSON pointer
/// into `config`) and a sentence.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SettingError {
    pub pointer: &'static str,
    pub message: String,
}

fn setting(pointer: &'static str, message: impl Into<String>) -> SettingError {
    SettingError {
        pointer,
        message: message.into(),
    }
}

impl SamlConfig {
    /// The settings of a stored source's `config`.
    pub fn from_json(config: &Value) -> Result<Self, SettingError> {
        let parsed: Self = serde_json::from_value(config.clone())
            .map_err(|e| setting("", format!("invalid SAML settings: {e}")))?;
        parsed.validate()?;
        Ok(parsed)
    }

    /// The JSON stored as the source's `config`.
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }

    /// Checks the settings that need no IdP and no master key: attribute names,
    /// skew, URLs, session tags, mapping.
    pub fn validate(&self) -> Result<(), SettingError> {
        for (pointer, name, value) in [
            (
                "/user_name_attribute",
                "user_name_attribute",
                &self.user_name_attribute,
            ),
            ("/email_attribute", "email_attribute", &self.email_attribute),
            (
                "/display_name_attribute",
                "display_name_attribute",
                &self.display_name_attribute,
            ),
            (
                "/groups_attribute",
                "groups_attribute",
                &self.groups_attribute,
            ),
        ] {
            if value.trim().is_empty() || value.len() > 512 || value.chars().any(char::is_control) {
                return Err(setting(
                    pointer,
                    format!("{name} must be an attribute name (1 to 512 characters)"),
                ));
            }
        }
        if self.clock_skew_seconds > MAX_SKEW_SECONDS {
            return Err(setting(
                "/clock_skew_seconds",
                format!("clock_skew_seconds must be 0 to {MAX_SKEW_SECONDS}"),
            ));
        }
        if let Some(url) = &self.idp_metadata_url {
            crate::iam::check_provider_url(url, crate::iam::ProviderUrlKind::Endpoint).map_err(
                |why| {
                    setting(
                        "/idp_metadata_url",
                        format!("idp_metadata_url {url:?} {why}"),
                    )
                },
            )?;
        }
        if let Some(entity) = &self.sp_entity_id
            && (entity.trim().is_empty() || entity.len() > 1024)
        {
            return Err(setting(
                "/sp_entity_id",
                "sp_entity_id must be 1 to 1024 characters (leave it out for the default)",
            ));
        }
        if self.sp_certificate.is_some() != self.sp_private_key.is_some() {
            return Err(setting(
                "/sp_private_key",
                "give the SP certificate and its private key together, or neither (then both are generated)",
            ));
        }
        if let Some(pem) = &self.sp_certificate {
            certificate_der(pem).map_err(|why| setting("/sp_certificate", why))?;
        }
        crate::sts::portal::check_session_tags(&self.session_tags)
            .map_err(|e| setting("/session_tags", e))?;
        if let Some(mapping) = &self.mapping {
            mapping
                .check()
                .map_err(|e| setting("/mapping", format!("mapping: {e}")))?;
        }
        Ok(())
    }

    /// The tolerated clock difference.
    pub fn clock_skew(&self) -> std::time::Duration {
        std::time::Duration::from_secs(u64::from(self.clock_skew_seconds))
    }
}

/// Where Rolegate is, as this SP, for one source: its entityID and ACS URL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpEndpoints {
    pub entity_id: String,
    pub acs_url: String,
}

impl SpEndpoints {
    /// The endpoints of source `source_id` at the public origin `origin`
    /// (`https://rolegate.example.com`), with the source's entityID if it sets one.
    pub fn of(origin: &str, source_id: &str, config: &SamlConfig) -> Self {
        let base = format!("{}/saml/{}", origin.trim_end_matches('/'), source_id);
        Self {
            entity_id: config
                .sp_entity_id
                .clone()
                .unwrap_or_else(|| format!("{base}/metadata")),
            acs_url: format!("{base}/acs"),
        }
    }
}

// ---------------------------------------------------------------------------
// The SP's key and certificate
// ---------------------------------------------------------------------------

/// What binds a sealed SP private key to its source.
pub fn sp_key_context(source_id: &str) -> String {
    format!("saml-sp-key:{source_id}")
}

/// Seals an SP private key (PEM) for the `sp_private_key` field of `source_id`.
pub fn seal_sp_key(sealer: &SecretSealer, source_id: &str, pem: &str) -> String {
    sealer.seal_secret(pem, &sp_key_context(source_id))
}

/// A key pair made for one source: the certificate and the private key, both PEM.
pub struct GeneratedKeys {
    pub certificate_pem: String,
    pub private_key_pem: crate::secrets::Secret,
}

/// Generates an RSA-3072 key and a self-signed certificate for source `source_id`,
/// valid from `now` for ten years (IdPs pin it; they do not check a chain).
pub fn generate_sp_keys(
    source_id: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<GeneratedKeys, String> {
    use openssl::asn1::Asn1Time;
    use openssl::bn::{BigNum, MsbOption};
    use openssl::hash::MessageDigest;
    use openssl::nid::Nid;
    use openssl::pkey::PKey;
    use openssl::rsa::Rsa;
    use openssl::x509::{X509, X509NameBuilder};
    let failed = |e: openssl::error::ErrorStack| format!("cannot generate the SP key: {e}");
    let key = PKey::from_rsa(Rsa::generate(3072).map_err(failed)?).map_err(failed)?;
    let mut name = X509NameBuilder::new().map_err(failed)?;
    name.append_entry_by_nid(Nid::COMMONNAME, &format!("Rolegate SAML SP {source_id}"))
        .map_err(failed)?;
    let name = name.build();
    let mut builder = X509::builder().map_err(failed)?;
    builder.set_version(2).map_err(failed)?;
    let mut serial = BigNum::new().map_err(failed)?;
    serial
        .rand(127, MsbOption::MAYBE_ZERO, false)
        .map_err(failed)?;
    let serial = serial.to_asn1_integer().map_err(failed)?;
    builder.set_serial_number(&serial).map_err(failed)?;
    builder.set_subject_name(&name).map_err(failed)?;
    builder.set_issuer_name(&name).map_err(failed)?;
    builder.set_pubkey(&key).map_err(failed)?;
    let start = now.timestamp() - 3600;
    let end = now.timestamp() + CERTIFICATE_DAYS * 86_400;
    let (start, end) = (
        Asn1Time::from_unix(start).map_err(failed)?,
        Asn1Time::from_unix(end).map_err(failed)?,
    );
    builder.set_not_before(&start).map_err(failed)?;
    builder.set_not_after(&end).map_err(failed)?;
    builder
        .sign(&key, MessageDigest::sha256())
        .map_err(failed)?;
    let certificate = builder.build().to_pem().map_err(failed)?;
    let private = key.private_key_to_pem_pkcs8().map_err(failed)?;
    Ok(GeneratedKeys {
        certificate_pem: String::from_utf8(certificate).map_err(|e| e.to_string())?,
        private_key_pem: crate::secrets::Secret::new(
            String::from_utf8(private).map_err(|e| e.to_string())?,
        ),
    })
}

/// Checks that `key_pem` is an RSA or EC private key whose public half is the one
/// `certificate_pem` certifies.
pub fn check_key_pair(certificate_pem: &str, key_pem: &str) -> Result<(), String> {
    let certificate = openssl::x509::X509::from_pem(certificate_pem.as_bytes())
        .map_err(|_| "the SP certificate is not a PEM certificate".to_owned())?;
    let key = openssl::pkey::PKey::private_key_from_pem(key_pem.as_bytes())
        .map_err(|_| "the SP private key is not a PEM private key".to_owned())?;
    let public = certificate
        .public_key()
        .map_err(|_| "the SP certificate has no usable public key".to_owned())?;
    if !public.public_eq(&key) {
        return Err("the SP private key does not belong to the SP certificate".into());
    }
    Ok(())
}

/// The DER of a PEM certificate.
pub fn certificate_der(pem: &str) -> Result<Vec<u8>, String> {
    openssl::x509::X509::from_pem(pem.as_bytes())
        .and_then(|c| c.to_der())
        .map_err(|_| "not a PEM certificate".to_owned())
}

/// The SP private key of a source, opened with the master key.
pub fn open_sp_key(
    sealer: &SecretSealer,
    source_id: &str,
    config: &SamlConfig,
) -> Result<crate::secrets::Secret, String> {
    let sealed = config
        .sp_private_key
        .as_deref()
        .ok_or_else(|| "the source has no SP key (apply its configuration again)".to_owned())?;
    sealer
        .open_secret(sealed, &sp_key_context(source_id))
        .map_err(|e| format!("the SP key cannot be opened with this master key: {e}"))
}

// ---------------------------------------------------------------------------
// SP metadata
// ---------------------------------------------------------------------------

fn escape(text: &str) -> String {
    quick_xml::escape::escape(text).into_owned()
}

/// The SP metadata document: entityID, the ACS (HTTP-POST), and the certificate for
/// signing and for encryption.
pub fn sp_metadata_xml(endpoints: &SpEndpoints, config: &SamlConfig) -> Result<String, String> {
    let certificate = config
        .sp_certificate
        .as_deref()
        .ok_or_else(|| "the source has no SP certificate".to_owned())?;
    let der = STANDARD.encode(certificate_der(certificate)?);
    let key_info = format!(
        "<ds:KeyInfo><ds:X509Data><ds:X509Certificate>{der}</ds:X509Certificate></ds:X509Data></ds:KeyInfo>"
    );
    let encryption_methods = [
        "http://www.w3.org/2009/xmlenc11#aes256-gcm",
        "http://www.w3.org/2009/xmlenc11#aes128-gcm",
        "http://www.w3.org/2001/04/xmlenc#aes256-cbc",
        "http://www.w3.org/2001/04/xmlenc#aes128-cbc",
        "http://www.w3.org/2009/xmlenc11#rsa-oaep",
        "http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p",
    ]
    .iter()
    .map(|algorithm| format!("<md:EncryptionMethod Algorithm=\"{algorithm}\"/>"))
    .collect::<String>();
    Ok(format!(
        concat!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n",
            "<md:EntityDescriptor xmlns:md=\"urn:oasis:names:tc:SAML:2.0:metadata\" ",
            "xmlns:ds=\"http://www.w3.org/2000/09/xmldsig#\" entityID=\"{entity}\">",
            "<md:SPSSODescriptor AuthnRequestsSigned=\"{signed}\" WantAssertionsSigned=\"true\" ",
            "protocolSupportEnumeration=\"urn:oasis:names:tc:SAML:2.0:protocol\">",
            "<md:KeyDescriptor use=\"signing\">{key_info}</md:KeyDescriptor>",
            "<md:KeyDescriptor use=\"encryption\">{key_info}{methods}</md:KeyDescriptor>",
            "<md:AssertionConsumerService Binding=\"{binding}\" Location=\"{acs}\" index=\"0\" isDefault=\"true\"/>",
            "</md:SPSSODescriptor></md:EntityDescriptor>\n"
        ),
        entity = escape(&endpoints.entity_id),
        signed = config.sign_authn_requests,
        key_info = key_info,
        methods = encryption_methods,
        binding = HTTP_POST_BINDING,
        acs = escape(&endpoints.acs_url),
    ))
}

// ---------------------------------------------------------------------------
// AuthnRequest
// ---------------------------------------------------------------------------

/// A new AuthnRequest ID: an NCName (`_` and 40 hex digits) from the random source.
pub fn new_request_id(random: &crate::clock::Random) -> String {
    format!("_{}", random.hex::<20>())
}

/// The URL that sends the browser to the IdP's single sign-on service with an
/// AuthnRequest (HTTP-Redirect binding: deflated, base64, `RelayState`), signed with
/// `signing_key` (PEM) when given.
pub fn authn_request_url(
    sso_url: &str,
    endpoints: &SpEndpoints,
    request_id: &str,
    issued_at: chrono::DateTime<chrono::Utc>,
    relay_state: &str,
    signing_key: Option<&str>,
) -> Result<String, String> {
    let request = samael::schema::AuthnRequest {
        id: request_id.to_owned(),
        version: "2.0".into(),
        issue_instant: issued_at,
        destination: Some(sso_url.to_owned()),
        assertion_consumer_service_url: Some(endpoints.acs_url.clone()),
        protocol_binding: Some(HTTP_POST_BINDING.into()),
        issuer: Some(samael::schema::Issuer {
            value: Some(endpoints.entity_id.clone()),
            ..samael::schema::Issuer::default()
        }),
        ..samael::schema::AuthnRequest::default()
    };
    let url = match signing_key {
        None => request.redirect(relay_state),
        Some(pem) => {
            let key = openssl::pkey::PKey::private_key_from_pem(pem.as_bytes())
                .map_err(|_| "the SP private key is unreadable".to_owned())?;
            request.signed_redirect(relay_state, &key)
        }
    }
    .map_err(|e| format!("cannot build the AuthnRequest: {e}"))?;
    url.map(|u| u.to_string())
        .ok_or_else(|| "the AuthnRequest has no destination".into())
}

// ---------------------------------------------------------------------------
// Assertion → identity
// ---------------------------------------------------------------------------

/// An attribute's values, trimmed, without empty ones or ones with control
/// characters.
fn values<'a>(assertion: &'a VerifiedAssertion, name: &str) -> Vec<&'a str> {
    assertion
        .attributes
        .get(name)
        .map(|values| {
            values
                .iter()
                .map(|v| v.trim())
                .filter(|v| !v.is_empty() && !v.chars().any(char::is_control))
                .collect()
        })
        .unwrap_or_default()
}

/// The first usable value of attribute `name` (or the NameID for [`NAME_ID`]).
fn single(assertion: &VerifiedAssertion, name: &str) -> Option<String> {
    let value = if name == NAME_ID {
        Some(assertion.name_id.trim()).filter(|v| !v.is_empty())
    } else {
        values(assertion, name).first().copied()
    };
    value.map(|v| v.chars().take(MAX_NAME_LEN).collect())
}

/// Maps a verified assertion to the portal identity with the source's attribute
/// names: subject = NameID; user name from `user_name_attribute` (falling back to the
/// NameID); email; display name (falling back to the user name); groups from every
/// value of `groups_attribute`; every attribute as a claim (a list of strings) for
/// the mapping rules; session-tag attributes from `session_tags`.
pub fn map_identity(
    source_id: &str,
    assertion: &VerifiedAssertion,
    config: &SamlConfig,
) -> Result<Identity, String> {
    let subject = assertion.name_id.trim();
    if subject.is_empty() || subject.chars().any(char::is_control) {
        return Err("the assertion's NameID is empty or unusable".into());
    }
    let subject: String = subject.chars().take(MAX_NAME_LEN).collect();
    let user_name =
        single(assertion, &config.user_name_attribute).unwrap_or_else(|| subject.clone());
    let email = single(assertion, &config.email_attribute);
    let display_name =
        single(assertion, &config.display_name_attribute).unwrap_or_else(|| user_name.clone());
    let mut seen = std::collections::BTreeSet::new();
    let groups: Vec<String> = values(assertion, &config.groups_attribute)
        .into_iter()
        .filter(|g| seen.insert(g.to_lowercase()))
        .map(str::to_owned)
        .collect();
    if groups.len() > MAX_GROUPS {
        return Err(format!(
            "{} groups; at most {MAX_GROUPS} are accepted",
            groups.len()
        ));
    }
    let claims = bounded_claims(source_id, claims_of(assertion));
    let (attributes, skipped) =
        crate::sts::portal::select_attributes(&config.session_tags, |name| {
            let all = values(assertion, name);
            match all.as_slice() {
                [one] => Some((*one).to_owned()),
                _ => None,
            }
        });
    crate::sts::portal::log_skipped_tags(source_id, &user_name, &skipped);
    Ok(Identity {
        source_id: source_id.to_owned(),
        subject,
        user_name,
        display_name,
        email,
        groups,
        attributes,
        claims,
    })
}

/// The assertion's attributes as claims (each a list of strings), for the mapping
/// rules and the admin's test sign-in.
pub fn claims_of(assertion: &VerifiedAssertion) -> serde_json::Map<String, Value> {
    assertion
        .attributes
        .iter()
        .map(|(name, values)| {
            (
                name.clone(),
                Value::Array(values.iter().cloned().map(Value::String).collect()),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn assertion(attributes: &[(&str, &[&str])]) -> VerifiedAssertion {
        VerifiedAssertion {
            assertion_id: "_a1".into(),
            issuer: "https://idp.example.com".into(),
            name_id: "alice-persistent-id".into(),
            name_id_format: None,
            name_qualifier: None,
            sp_name_qualifier: None,
            attributes: attributes
                .iter()
                .map(|(n, v)| ((*n).to_owned(), v.iter().map(|s| (*s).to_owned()).collect()))
                .collect(),
            not_on_or_after: chrono::DateTime::UNIX_EPOCH,
            session_not_on_or_after: None,
            in_response_to: None,
            authn_instant: None,
        }
    }

    #[test]
    fn defaults_round_trip_and_unknown_keys_are_refused() {
        let config: SamlConfig = serde_json::from_value(json!({})).unwrap();
        assert_eq!(config, SamlConfig::default());
        assert_eq!(config.user_name_attribute, "NameID");
        assert_eq!(config.clock_skew_seconds, 60);
        assert!(!config.allow_idp_initiated);
        let back: SamlConfig = serde_json::from_value(config.to_json()).unwrap();
        assert_eq!(back, config);
        assert!(serde_json::from_value::<SamlConfig>(json!({"groups_atribute": "x"})).is_err());
    }

    #[test]
    fn validation_names_the_setting() {
        let mut config = SamlConfig {
            clock_skew_seconds: 3600,
            ..SamlConfig::default()
        };
        assert_eq!(
            config.validate().unwrap_err().pointer,
            "/clock_skew_seconds"
        );
        config.clock_skew_seconds = 60;
        config.groups_attribute = " ".into();
        assert_eq!(config.validate().unwrap_err().pointer, "/groups_attribute");
        config.groups_attribute = "groups".into();
        config.idp_metadata_url = Some("http://idp.example.com/md".into());
        assert_eq!(config.validate().unwrap_err().pointer, "/idp_metadata_url");
        config.idp_metadata_url = Some("http://127.0.0.1:8080/md".into());
        config.validate().unwrap();
        config.sp_private_key = Some("sealed".into());
        assert_eq!(config.validate().unwrap_err().pointer, "/sp_private_key");
    }

    #[test]
    fn identity_from_attributes() {
        let config = SamlConfig::default();
        let a = assertion(&[
            ("email", &["alice@example.com"]),
            ("displayName", &["Alice Example"]),
            ("groups", &["developers", " Engineering ", "DEVELOPERS", ""]),
            ("department", &["R-and-D"]),
        ]);
        let id = map_identity("corp", &a, &config).unwrap();
        assert_eq!(id.subject, "alice-persistent-id");
        assert_eq!(id.user_name, "alice-persistent-id", "NameID by default");
        assert_eq!(id.email.as_deref(), Some("alice@example.com"));
        assert_eq!(id.display_name, "Alice Example");
        assert_eq!(id.groups, ["developers", "Engineering"]);
        assert_eq!(id.claims["department"], json!(["R-and-D"]));

        let config = SamlConfig {
            user_name_attribute: "uid".into(),
            session_tags: [("Department".to_owned(), "department".to_owned())].into(),
            ..SamlConfig::default()
        };
        let with_uid = assertion(&[("uid", &["alice"]), ("department", &["R-and-D"])]);
        let id = map_identity("corp", &with_uid, &config).unwrap();
        assert_eq!(
            (id.user_name.as_str(), id.display_name.as_str()),
            ("alice", "alice")
        );
        assert_eq!(id.attributes["Department"], "R-and-D");
        // A missing attribute falls back to the NameID.
        let id = map_identity("corp", &assertion(&[]), &config).unwrap();
        assert_eq!(id.user_name, "alice-persistent-id");
        assert!(id.groups.is_empty() && id.email.is_none());
    }

    #[test]
    fn keys_metadata_and_requests() {
        let now = chrono::DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let keys = generate_sp_keys("corp", now).unwrap();
        check_key_pair(&keys.certificate_pem, keys.private_key_pem.expose()).unwrap();
        let other = generate_sp_keys("other", now).unwrap();
        assert!(check_key_pair(&keys.certificate_pem, other.private_key_pem.expose()).is_err());

        let config = SamlConfig {
            sp_certificate: Some(keys.certificate_pem.clone()),
            sp_private_key: Some("sealed".into()),
            sign_authn_requests: true,
            ..SamlConfig::default()
        };
        config.validate().unwrap();
        let endpoints = SpEndpoints::of("https://rg.example.com/", "corp", &config);
        assert_eq!(
            endpoints.entity_id,
            "https://rg.example.com/saml/corp/metadata"
        );
        assert_eq!(endpoints.acs_url, "https://rg.example.com/saml/corp/acs");
        let xml = sp_metadata_xml(&endpoints, &config).unwrap();
        assert!(xml.contains("entityID=\"https://rg.example.com/saml/corp/metadata\""));
        assert!(xml.contains("Location=\"https://rg.example.com/saml/corp/acs\""));
        assert!(xml.contains("use=\"signing\"") && xml.contains("use=\"encryption\""));
        assert!(xml.contains("AuthnRequestsSigned=\"true\""));

        let url = authn_request_url(
            "https://idp.example.com/sso",
            &endpoints,
            "_abc",
            now,
            "relay",
            Some(keys.private_key_pem.expose()),
        )
        .unwrap();
        let parsed = reqwest::Url::parse(&url).unwrap();
        let query: BTreeMap<String, String> = parsed.query_pairs().into_owned().collect();
        assert_eq!(query["RelayState"], "relay");
        assert!(query["SigAlg"].ends_with("rsa-sha256"));
        assert!(query.contains_key("Signature"));
        let deflated = STANDARD.decode(&query["SAMLRequest"]).unwrap();
        let mut xml = String::new();
        std::io::Read::read_to_string(
            &mut flate2::read::DeflateDecoder::new(deflated.as_slice()),
            &mut xml,
        )
        .unwrap();
        assert!(xml.contains("ID=\"_abc\""), "{xml}");
        assert!(
            xml.contains("AssertionConsumerServiceURL=\"https://rg.example.com/saml/corp/acs\"")
        );
        let unsigned = authn_request_url(
            "https://idp.example.com/sso",
            &endpoints,
            "_abc",
            now,
            "r",
            None,
        )
        .unwrap();
        assert!(!unsigned.contains("Signature="));
    }
}
