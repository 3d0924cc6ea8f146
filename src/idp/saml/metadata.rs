//! IdP metadata imported from XML (fetching it from a URL is the caller's business):
//! the entityID, the signing certificates (several, for rollover) and the SSO
//! endpoints. Metadata without a signing certificate is refused: a verifier without
//! a key would have nothing to check signatures against. DTDs are refused before
//! parsing, as for responses.

use base64::Engine as _;

use super::SamlError;
use super::xml_guard::{Element, parse_strict};

pub const NS_MD: &str = "urn:oasis:names:tc:SAML:2.0:metadata";
pub const NS_DS: &str = "http://www.w3.org/2000/09/xmldsig#";
pub const BINDING_REDIRECT: &str = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect";
pub const BINDING_POST: &str = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST";

/// A SAML identity provider as its metadata describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdpMetadata {
    pub entity_id: String,
    /// DER X.509 certificates whose keys may sign responses (at least one).
    pub signing_certs: Vec<Vec<u8>>,
    /// SingleSignOnService with the HTTP-Redirect binding (SP-initiated sign-in).
    pub sso_redirect_url: Option<String>,
    /// SingleSignOnService with the HTTP-POST binding.
    pub sso_post_url: Option<String>,
    /// SingleLogoutService with the HTTP-Redirect binding.
    pub slo_redirect_url: Option<String>,
    /// `WantAuthnRequestsSigned` of the IDPSSODescriptor.
    pub want_authn_requests_signed: bool,
}

fn bad(what: impl Into<String>) -> SamlError {
    SamlError::BadMetadata(what.into())
}

/// Parses IdP metadata: an `EntityDescriptor` with one `IDPSSODescriptor` (or an
/// `EntitiesDescriptor` holding exactly one such entity).
pub fn parse_idp_metadata(xml: &str) -> Result<IdpMetadata, SamlError> {
    let root = parse_strict(xml).map_err(|e| match e {
        SamlError::DtdForbidden => SamlError::DtdForbidden,
        other => bad(other.to_string()),
    })?;
    let entity = if root.is(NS_MD, "EntityDescriptor") {
        &root
    } else if root.is(NS_MD, "EntitiesDescriptor") {
        let all = root.walk();
        let idps: Vec<&Element> = all
            .iter()
            .map(|(e, _)| *e)
            .filter(|e| {
                e.is(NS_MD, "EntityDescriptor")
                    && e.children_named(NS_MD, "IDPSSODescriptor").next().is_some()
            })
            .collect();
        match idps.as_slice() {
            [one] => *one,
            [] => {
                return Err(bad(
                    "no identity provider (IDPSSODescriptor) in the metadata",
                ));
            }
            _ => {
                return Err(bad(
                    "the metadata describes several identity providers; import one",
                ));
            }
        }
    } else {
        return Err(bad(
            "the root element is not a SAML metadata EntityDescriptor",
        ));
    };
    let entity_id = entity
        .attr("entityID")
        .map(str::trim)
        .filter(|id| !id.is_empty())
        .ok_or_else(|| bad("the EntityDescriptor has no entityID"))?
        .to_owned();
    let idp = entity
        .only_child(NS_MD, "IDPSSODescriptor")
        .map_err(|_| bad("several IDPSSODescriptor elements"))?
        .ok_or_else(|| bad("no IDPSSODescriptor: this is not identity provider metadata"))?;
    let mut signing_certs: Vec<Vec<u8>> = Vec::new();
    for key in idp.children_named(NS_MD, "KeyDescriptor") {
        match key.attr("use").map(str::trim) {
            None | Some("") | Some("signing") => {}
            Some(_) => continue,
        }
        for (element, _) in key.walk() {
            if element.is(NS_DS, "X509Certificate") {
                let der = certificate_der(&element.text())?;
                if !signing_certs.contains(&der) {
                    signing_certs.push(der);
                }
            }
        }
    }
    if signing_certs.is_empty() {
        return Err(bad(
            "the metadata has no signing certificate (KeyDescriptor use=\"signing\" with an X509Certificate)",
        ));
    }
    let endpoint = |local: &str, binding: &str| {
        idp.children_named(NS_MD, local)
            .find(|e| e.attr("Binding") == Some(binding))
            .and_then(|e| e.attr("Location"))
            .map(|l| l.trim().to_owned())
            .filter(|l| !l.is_empty())
    };
    Ok(IdpMetadata {
        entity_id,
        sso_redirect_url: endpoint("SingleSignOnService", BINDING_REDIRECT),
        sso_post_url: endpoint("SingleSignOnService", BINDING_POST),
        slo_redirect_url: endpoint("SingleLogoutService", BINDING_REDIRECT),
        want_authn_requests_signed: matches!(
            idp.attr("WantAuthnRequestsSigned").map(str::trim),
            Some("true") | Some("1")
        ),
        signing_certs,
    })
}

/// The DER of a base64 certificate (whitespace ignored), checked to be an X.509
/// certificate.
pub fn certificate_der(b64: &str) -> Result<Vec<u8>, SamlError> {
    let compact: String = b64.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(compact.as_bytes())
        .map_err(|_| bad("a certificate is not valid base64"))?;
    openssl::x509::X509::from_der(&der).map_err(|_| bad("a certificate is not X.509 DER"))?;
    Ok(der)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_without_a_signing_certificate_is_refused() {
        let xml = r#"<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="https://idp.example/">
  <md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">
    <md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="https://idp.example/sso"/>
  </md:IDPSSODescriptor>
</md:EntityDescriptor>"#;
        assert_eq!(parse_idp_metadata(xml).unwrap_err().code(), "bad_metadata");
    }

    #[test]
    fn metadata_with_a_dtd_is_refused() {
        let xml = r#"<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="&e;"/>"#;
        assert_eq!(
            parse_idp_metadata(xml).unwrap_err(),
            SamlError::DtdForbidden
        );
    }
}
