//! The SAML response verifier: base64 text as received -> a verified assertion, or
//! the reason it was refused. Pure: the time is [`Expectations::now`], replay is the
//! caller's ([`super::claim_assertion_once`]).
//!
//! Signatures are checked by xmlsec (through samael) with an algorithm allow-list;
//! everything structural is checked here on a strict parse of the same bytes, and the
//! values are read from the canonical bytes xmlsec digested (the signed element
//! itself), so what is used is what was signed.

use std::collections::BTreeMap;
use std::time::Duration;

use base64::Engine as _;
use chrono::{DateTime, TimeDelta, Utc};
use samael::crypto::{
    AllowedSignatureAlgorithm, CertificateDer, Crypto, CryptoProvider, ReduceMode,
};
use samael::schema::CipherValue;

use super::SamlError;
use super::metadata::{IdpMetadata, NS_DS};
use super::xml_guard::{Element, decode_base64_xml, parse_strict, refuse_dtd};

pub const NS_SAMLP: &str = "urn:oasis:names:tc:SAML:2.0:protocol";
pub const NS_SAML: &str = "urn:oasis:names:tc:SAML:2.0:assertion";
pub const NS_XENC: &str = "http://www.w3.org/2001/04/xmlenc#";
const BEARER: &str = "urn:oasis:names:tc:SAML:2.0:cm:bearer";
const STATUS_SUCCESS: &str = "urn:oasis:names:tc:SAML:2.0:status:Success";

/// Signature algorithms accepted (no SHA-1, no DSA).
const SIGNATURE_ALGORITHMS: [(&str, AllowedSignatureAlgorithm); 6] = [
    (
        "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
        AllowedSignatureAlgorithm::RsaSha256,
    ),
    (
        "http://www.w3.org/2001/04/xmldsig-more#rsa-sha384",
        AllowedSignatureAlgorithm::RsaSha384,
    ),
    (
        "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512",
        AllowedSignatureAlgorithm::RsaSha512,
    ),
    (
        "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256",
        AllowedSignatureAlgorithm::EcdsaSha256,
    ),
    (
        "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha384",
        AllowedSignatureAlgorithm::EcdsaSha384,
    ),
    (
        "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha512",
        AllowedSignatureAlgorithm::EcdsaSha512,
    ),
];
/// Reference digests accepted (SHA-256 and up).
const DIGEST_ALGORITHMS: [&str; 3] = [
    "http://www.w3.org/2001/04/xmlenc#sha256",
    "http://www.w3.org/2001/04/xmldsig-more#sha384",
    "http://www.w3.org/2001/04/xmlenc#sha512",
];
/// Canonicalizations accepted, for SignedInfo and as reference transforms.
const CANONICALIZATIONS: [&str; 3] = [
    "http://www.w3.org/2001/10/xml-exc-c14n#",
    "http://www.w3.org/TR/2001/REC-xml-c14n-20010315",
    "http://www.w3.org/2006/12/xml-c14n11",
];
const ENVELOPED: &str = "http://www.w3.org/2000/09/xmldsig#enveloped-signature";
const KEY_TRANSPORT_OAEP: &str = "http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p";
const AES128_CBC: &str = "http://www.w3.org/2001/04/xmlenc#aes128-cbc";
const AES128_GCM: &str = "http://www.w3.org/2009/xmlenc11#aes128-gcm";

/// What the verifier checks the response against.
pub struct Expectations<'a> {
    /// Issuer must equal `idp.entity_id`; the signature must be by one of its certificates.
    pub idp: &'a IdpMetadata,
    /// Our SP entityID, or the STS SAML endpoint URL: the Audience must be this.
    pub audience: &'a str,
    /// The Destination (when present) and the bearer SubjectConfirmationData Recipient.
    pub recipient: &'a str,
    pub in_response_to: InResponseTo<'a>,
    /// From the injected clock.
    pub now: DateTime<Utc>,
    /// Tolerance on both bounds of every validity window.
    pub clock_skew: Duration,
    /// The SP's RSA private key for encrypted assertions: PEM (PKCS#8 or PKCS#1) or
    /// DER (PKCS#8). `None` refuses encrypted assertions.
    pub decryption_key: Option<&'a [u8]>,
}

/// What the response's InResponseTo (on the Response and on the bearer
/// SubjectConfirmationData) must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InResponseTo<'a> {
    /// SP-initiated: the ID of the AuthnRequest we sent; wherever InResponseTo appears it
    /// must be this, and it must appear at least once.
    Expected(&'a str),
    /// IdP-initiated: InResponseTo must be absent everywhere.
    IdpInitiatedOnly,
    /// Either: absent (IdP-initiated), or equal to the given request ID when there is one.
    Either(Option<&'a str>),
}

/// The facts of an accepted assertion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedAssertion {
    pub assertion_id: String,
    pub issuer: String,
    pub name_id: String,
    pub name_id_format: Option<String>,
    pub name_qualifier: Option<String>,
    pub sp_name_qualifier: Option<String>,
    /// Attribute name -> values, in document order (values of repeated attributes merged).
    pub attributes: BTreeMap<String, Vec<String>>,
    /// The last instant this assertion could still be accepted (its earliest
    /// NotOnOrAfter plus the skew): the replay cache keeps its ID until then.
    pub not_on_or_after: DateTime<Utc>,
    pub session_not_on_or_after: Option<DateTime<Utc>>,
    pub in_response_to: Option<String>,
    pub authn_instant: Option<DateTime<Utc>>,
}

/// Verifies a base64 `SAMLResponse` as received (the 100,000-character cap is checked
/// first) and returns its assertion's facts.
pub fn verify_response(
    saml_response_b64: &str,
    expect: &Expectations,
) -> Result<VerifiedAssertion, SamlError> {
    let xml = decode_base64_xml(saml_response_b64)?;
    verify_response_xml(&xml, expect)
}

/// [`verify_response`] on the decoded XML text.
pub fn verify_response_xml(
    xml: &str,
    expect: &Expectations,
) -> Result<VerifiedAssertion, SamlError> {
    let doc = parse_strict(xml)?;
    let shape = Shape::of(&doc)?;
    let certs: Vec<CertificateDer> = expect
        .idp
        .signing_certs
        .iter()
        .map(|der| CertificateDer::from(der.clone()))
        .collect();
    if certs.is_empty() {
        return Err(SamlError::BadMetadata(
            "the IdP has no signing certificate".into(),
        ));
    }

    // The signed element, as xmlsec digested it.
    let signed =
        if shape.response_signed || shape.assertion_signed {
            for (signature, parent) in shape.signatures(&doc) {
                check_signature(signature, parent, &expect.idp.signing_certs)?;
            }
            let canonical = xmlsec_verify(xml, &certs)?;
            Some(parse_strict(&canonical).map_err(|_| {
                SamlError::Wrapping("the signed content could not be read back".into())
            })?)
        } else {
            None
        };

    // The Response whose attributes are checked: the signed one when it is signed.
    let response: &Element = match &signed {
        Some(root) if shape.response_signed => {
            if !root.is(NS_SAMLP, "Response") || root.attr("ID") != doc.attr("ID") {
                return Err(SamlError::Wrapping(
                    "the signed element is not the response".into(),
                ));
            }
            root
        }
        _ => &doc,
    };

    // The assertion: the signed one (inside the signed response, or the signed
    // assertion itself), or the decrypted one.
    let decrypted;
    let decrypted_signed;
    let assertion: &Element = if shape.encrypted {
        let encrypted = response
            .only_child(NS_SAML, "EncryptedAssertion")?
            .ok_or_else(|| SamlError::Wrapping("the encrypted assertion moved".into()))?;
        let plaintext = decrypt_assertion(encrypted, expect.decryption_key)?;
        refuse_dtd(&plaintext)?;
        decrypted = parse_strict(&plaintext)?;
        let inner = InnerShape::of(&decrypted)?;
        if inner.signed {
            for (signature, parent) in inner.signatures(&decrypted) {
                check_signature(signature, parent, &expect.idp.signing_certs)?;
            }
            let canonical = xmlsec_verify(&plaintext, &certs)?;
            decrypted_signed = parse_strict(&canonical).map_err(|_| {
                SamlError::Wrapping("the signed content could not be read back".into())
            })?;
            if !decrypted_signed.is(NS_SAML, "Assertion")
                || decrypted_signed.attr("ID") != decrypted.attr("ID")
            {
                return Err(SamlError::Wrapping(
                    "the signed element is not the assertion".into(),
                ));
            }
            &decrypted_signed
        } else if shape.response_signed {
            &decrypted
        } else {
            return Err(SamlError::Unsigned);
        }
    } else {
        match &signed {
            None => return Err(SamlError::Unsigned),
            Some(_) if shape.response_signed => {
                response.only_child(NS_SAML, "Assertion")?.ok_or_else(|| {
                    SamlError::Wrapping("the assertion is not in the signed response".into())
                })?
            }
            Some(root) => {
                if !root.is(NS_SAML, "Assertion")
                    || root.attr("ID") != shape.assertion_id.as_deref()
                {
                    return Err(SamlError::Wrapping(
                        "the signed element is not the assertion".into(),
                    ));
                }
                root
            }
        }
    };
    if assertion.attr("ID") != shape.assertion_id.as_deref() && !shape.encrypted {
        return Err(SamlError::Wrapping(
            "the assertion used is not the one in the response".into(),
        ));
    }
    check_response(response, expect)?;
    read_assertion(assertion, response, expect)
}

/// Where things are in the response, checked: exactly one assertion (plain or
/// encrypted) in the whole document, as a direct child of the Response; signatures
/// only directly under the Response or the assertion, at most one each; IDs unique.
struct Shape {
    encrypted: bool,
    response_signed: bool,
    assertion_signed: bool,
    assertion_id: Option<String>,
}

impl Shape {
    fn of(doc: &Element) -> Result<Self, SamlError> {
        if !doc.is(NS_SAMLP, "Response") {
            return Err(SamlError::MalformedXml(
                "the root element is not a SAML protocol Response".into(),
            ));
        }
        let all = doc.walk();
        let assertions = all
            .iter()
            .filter(|(e, _)| e.is(NS_SAML, "Assertion") || e.is(NS_SAML, "EncryptedAssertion"))
            .count();
        match assertions {
            0 => return Err(SamlError::NoAssertion),
            1 => {}
            _ => return Err(SamlError::MultipleAssertions),
        }
        let direct: Vec<&Element> = doc
            .elements()
            .filter(|e| e.is(NS_SAML, "Assertion") || e.is(NS_SAML, "EncryptedAssertion"))
            .collect();
        let [assertion] = direct.as_slice() else {
            return Err(SamlError::Wrapping(
                "the assertion is not a direct child of the response".into(),
            ));
        };
        let encrypted = assertion.local == "EncryptedAssertion";
        unique_ids(&all)?;
        let signatures_total = all.iter().filter(|(e, _)| e.is(NS_DS, "Signature")).count();
        let response_sigs = doc.children_named(NS_DS, "Signature").count();
        let assertion_sigs = if encrypted {
            0
        } else {
            assertion.children_named(NS_DS, "Signature").count()
        };
        if response_sigs > 1 || assertion_sigs > 1 {
            return Err(SamlError::Wrapping("a doubled signature".into()));
        }
        if signatures_total != response_sigs + assertion_sigs {
            return Err(SamlError::Wrapping(
                "a signature outside the response and the assertion".into(),
            ));
        }
        if doc.attr("ID").is_none() {
            return Err(SamlError::MalformedXml("the response has no ID".into()));
        }
        if !encrypted {
            check_values_without_comments(assertion)?;
        }
        if let Some(issuer) = doc.only_child(NS_SAML, "Issuer")?
            && issuer.has_comment()
        {
            return Err(SamlError::CommentInjection);
        }
        Ok(Self {
            encrypted,
            response_signed: response_sigs == 1,
            assertion_signed: assertion_sigs == 1,
            assertion_id: if encrypted {
                None
            } else {
                Some(
                    assertion
                        .attr("ID")
                        .ok_or_else(|| SamlError::MalformedXml("the assertion has no ID".into()))?
                        .to_owned(),
                )
            },
        })
    }

    /// Each signature with the element it must sign (its parent).
    fn signatures<'d>(&self, doc: &'d Element) -> Vec<(&'d Element, &'d Element)> {
        let mut out: Vec<(&Element, &Element)> = doc
            .children_named(NS_DS, "Signature")
            .map(|s| (s, doc))
            .collect();
        for assertion in doc.children_named(NS_SAML, "Assertion") {
            for signature in assertion.children_named(NS_DS, "Signature") {
                out.push((signature, assertion));
            }
        }
        out
    }
}

/// The shape of a decrypted assertion: the root is the one assertion, with at most one
/// signature, directly under it.
struct InnerShape {
    signed: bool,
}

impl InnerShape {
    fn of(assertion: &Element) -> Result<Self, SamlError> {
        if !assertion.is(NS_SAML, "Assertion") {
            return Err(SamlError::Wrapping(
                "the encrypted content is not an assertion".into(),
            ));
        }
        let all = assertion.walk();
        let nested = all
            .iter()
            .filter(|(e, _)| e.is(NS_SAML, "Assertion") || e.is(NS_SAML, "EncryptedAssertion"))
            .count();
        if nested != 1 {
            return Err(SamlError::MultipleAssertions);
        }
        unique_ids(&all)?;
        let total = all.iter().filter(|(e, _)| e.is(NS_DS, "Signature")).count();
        let direct = assertion.children_named(NS_DS, "Signature").count();
        if direct > 1 {
            return Err(SamlError::Wrapping("a doubled signature".into()));
        }
        if total != direct {
            return Err(SamlError::Wrapping(
                "a signature outside the assertion".into(),
            ));
        }
        if assertion.attr("ID").is_none() {
            return Err(SamlError::MalformedXml("the assertion has no ID".into()));
        }
        check_values_without_comments(assertion)?;
        Ok(Self {
            signed: direct == 1,
        })
    }

    fn signatures<'d>(&self, assertion: &'d Element) -> Vec<(&'d Element, &'d Element)> {
        assertion
            .children_named(NS_DS, "Signature")
            .map(|s| (s, assertion))
            .collect()
    }
}

fn unique_ids(all: &[(&Element, usize)]) -> Result<(), SamlError> {
    let mut seen = std::collections::HashSet::new();
    for (element, _) in all {
        for attr in &element.attrs {
            if attr.ns.is_none()
                && attr.local.eq_ignore_ascii_case("id")
                && !seen.insert(attr.value.as_str())
            {
                return Err(SamlError::Wrapping("two elements share one ID".into()));
            }
        }
    }
    Ok(())
}

/// Comments inside the values we read (NameID, Issuer, Audience, attribute values)
/// are refused: canonicalization drops them, so they cannot be signed, and a parser
/// that stops at them would read a shorter value than the one signed.
fn check_values_without_comments(assertion: &Element) -> Result<(), SamlError> {
    for (element, _) in assertion.walk() {
        let value = element.is(NS_SAML, "NameID")
            || element.is(NS_SAML, "Issuer")
            || element.is(NS_SAML, "Audience")
            || element.is(NS_SAML, "AttributeValue");
        if value && element.has_comment() {
            return Err(SamlError::CommentInjection);
        }
    }
    Ok(())
}

/// The signature `signature` must sign `parent` and nothing else, with allowed
/// algorithms and (when it names its key) a trusted certificate.
fn check_signature(
    signature: &Element,
    parent: &Element,
    trusted: &[Vec<u8>],
) -> Result<(), SamlError> {
    let weak = |what: &str| SamlError::WeakAlgorithm(what.to_owned());
    let signed_info = signature
        .only_child(NS_DS, "SignedInfo")?
        .ok_or_else(|| SamlError::Wrapping("a signature without SignedInfo".into()))?;
    let c14n = signed_info
        .only_child(NS_DS, "CanonicalizationMethod")?
        .and_then(|e| e.attr("Algorithm"))
        .unwrap_or_default();
    if !CANONICALIZATIONS.contains(&c14n) {
        return Err(weak(c14n));
    }
    let method = signed_info
        .only_child(NS_DS, "SignatureMethod")?
        .and_then(|e| e.attr("Algorithm"))
        .unwrap_or_default();
    if !SIGNATURE_ALGORITHMS.iter().any(|(uri, _)| *uri == method) {
        return Err(weak(method));
    }
    let references: Vec<&Element> = signed_info.children_named(NS_DS, "Reference").collect();
    let [reference] = references.as_slice() else {
        return Err(SamlError::Wrapping(
            "a signature must have exactly one reference".into(),
        ));
    };
    let digest = reference
        .only_child(NS_DS, "DigestMethod")?
        .and_then(|e| e.attr("Algorithm"))
        .unwrap_or_default();
    if !DIGEST_ALGORITHMS.contains(&digest) {
        return Err(weak(digest));
    }
    if let Some(transforms) = reference.only_child(NS_DS, "Transforms")? {
        for transform in transforms.elements() {
            let algorithm = transform.attr("Algorithm").unwrap_or_default();
            if !transform.is(NS_DS, "Transform")
                || !(algorithm == ENVELOPED || CANONICALIZATIONS.contains(&algorithm))
            {
                return Err(weak(algorithm));
            }
        }
    }
    let parent_id = parent
        .attr("ID")
        .ok_or_else(|| SamlError::Wrapping("the signed element has no ID".into()))?;
    let uri = reference.attr("URI").unwrap_or_default();
    if uri.strip_prefix('#') != Some(parent_id) {
        return Err(SamlError::Wrapping(
            "the signature does not reference the element that holds it".into(),
        ));
    }
    if let Some(key_info) = signature.only_child(NS_DS, "KeyInfo")? {
        for (element, _) in key_info.walk() {
            if element.is(NS_DS, "X509Certificate") {
                let compact: String = element
                    .text()
                    .chars()
                    .filter(|c| !c.is_ascii_whitespace())
                    .collect();
                let der = base64::engine::general_purpose::STANDARD
                    .decode(compact.as_bytes())
                    .map_err(|_| SamlError::UntrustedSignature)?;
                if !trusted.contains(&der) {
                    return Err(SamlError::UntrustedSignature);
                }
            }
        }
    }
    Ok(())
}

/// Every signature in `xml` verified by xmlsec against `certs`, with the allow-list;
/// returns the canonical bytes of the signed element (the response when it is signed).
fn xmlsec_verify(xml: &str, certs: &[CertificateDer]) -> Result<String, SamlError> {
    let allowed: Vec<AllowedSignatureAlgorithm> =
        SIGNATURE_ALGORITHMS.iter().map(|(_, a)| *a).collect();
    Crypto::reduce_xml_to_signed_with_allowed_algorithms(
        xml,
        certs,
        ReduceMode::PreDigest,
        Some(&allowed),
    )
    .map_err(|_| SamlError::InvalidSignature)
}

fn decrypt_assertion(encrypted: &Element, key: Option<&[u8]>) -> Result<String, SamlError> {
    let failed = |what: &str| SamlError::DecryptionFailed(what.to_owned());
    let key = key.ok_or_else(|| failed("no decryption key is configured for this source"))?;
    let key = openssl::pkey::PKey::private_key_from_pem(key)
        .or_else(|_| openssl::pkey::PKey::private_key_from_der(key))
        .map_err(|_| failed("the configured decryption key is not readable"))?;
    let data = encrypted
        .only_child(NS_XENC, "EncryptedData")?
        .ok_or_else(|| failed("no EncryptedData"))?;
    let data_method = data
        .only_child(NS_XENC, "EncryptionMethod")?
        .and_then(|e| e.attr("Algorithm"))
        .unwrap_or_default()
        .to_owned();
    let data_cipher = cipher_value(data)?;
    // The wrapped key: in the EncryptedData's KeyInfo, or beside the EncryptedData.
    let encrypted_key = data
        .only_child(NS_DS, "KeyInfo")?
        .and_then(|k| k.children_named(NS_XENC, "EncryptedKey").next())
        .or_else(|| encrypted.children_named(NS_XENC, "EncryptedKey").next())
        .ok_or_else(|| failed("no EncryptedKey"))?;
    let key_method = encrypted_key
        .only_child(NS_XENC, "EncryptionMethod")?
        .and_then(|e| e.attr("Algorithm"))
        .unwrap_or_default();
    if key_method != KEY_TRANSPORT_OAEP {
        return Err(failed("unsupported key transport (RSA-OAEP is required)"));
    }
    let wrapped = cipher_value(encrypted_key)?;
    let session_key =
        Crypto::decrypt_assertion_key_info(&CipherValue { value: wrapped }, key_method, &key)
            .map_err(|_| failed("the key could not be unwrapped"))?;
    if session_key.len() != 16 {
        return Err(failed("the unwrapped key does not fit the cipher"));
    }
    // samael slices the value without checking its length: check it here.
    let raw_len = base64::engine::general_purpose::STANDARD
        .decode(data_cipher.as_bytes())
        .map_err(|_| failed("the cipher value is not base64"))?
        .len();
    let plain = match data_method.as_str() {
        AES128_CBC => {
            if raw_len < 32 || raw_len % 16 != 0 {
                return Err(failed("the cipher value has a wrong length"));
            }
            let mut plain = Crypto::decrypt_assertion_value_info(
                &CipherValue { value: data_cipher },
                AES128_CBC,
                &session_key,
            )
            .map_err(|_| failed("the assertion could not be decrypted"))?;
            // XML Encryption padding: the last byte counts the padding bytes.
            let pad = usize::from(plain.last().copied().unwrap_or(0));
            if pad == 0 || pad > 16 || pad > plain.len() {
                return Err(failed("bad padding"));
            }
            plain.truncate(plain.len() - pad);
            plain
        }
        AES128_GCM => {
            if raw_len < 12 + 16 {
                return Err(failed("the cipher value has a wrong length"));
            }
            Crypto::decrypt_assertion_value_info(
                &CipherValue { value: data_cipher },
                AES128_GCM,
                &session_key,
            )
            .map_err(|_| failed("the assertion could not be decrypted"))?
        }
        _ => {
            return Err(failed(
                "unsupported data encryption (AES-128-CBC or AES-128-GCM)",
            ));
        }
    };
    String::from_utf8(plain).map_err(|_| failed("the decrypted assertion is not UTF-8"))
}

fn cipher_value(parent: &Element) -> Result<String, SamlError> {
    let value = parent
        .only_child(NS_XENC, "CipherData")?
        .map(|d| d.only_child(NS_XENC, "CipherValue"))
        .transpose()?
        .flatten()
        .ok_or_else(|| SamlError::DecryptionFailed("no CipherValue".into()))?;
    Ok(value
        .text()
        .chars()
        .filter(|c| !c.is_ascii_whitespace())
        .collect())
}

fn skew(expect: &Expectations) -> TimeDelta {
    TimeDelta::from_std(expect.clock_skew).unwrap_or(TimeDelta::seconds(60))
}

fn instant(value: Option<&str>, what: &str) -> Result<Option<DateTime<Utc>>, SamlError> {
    value
        .map(|v| {
            DateTime::parse_from_rfc3339(v.trim())
                .map(|t| t.with_timezone(&Utc))
                .map_err(|_| SamlError::MalformedXml(format!("{what} is not a valid instant")))
        })
        .transpose()
}

/// now within [not_before - skew, not_on_or_after + skew).
fn check_window(
    not_before: Option<DateTime<Utc>>,
    not_on_or_after: Option<DateTime<Utc>>,
    expect: &Expectations,
) -> Result<(), SamlError> {
    let skew = skew(expect);
    if let Some(nb) = not_before
        && expect.now + skew < nb
    {
        return Err(SamlError::NotYetValid);
    }
    if let Some(end) = not_on_or_after
        && expect.now >= end + skew
    {
        return Err(SamlError::Expired);
    }
    Ok(())
}

fn check_in_response_to(present: Option<&str>, expect: &Expectations) -> Result<(), SamlError> {
    let ok = match (expect.in_response_to, present) {
        (InResponseTo::Expected(id), Some(got)) => id == got,
        (InResponseTo::Expected(_), None) => true,
        (InResponseTo::IdpInitiatedOnly, got) => got.is_none(),
        (InResponseTo::Either(_), None) => true,
        (InResponseTo::Either(Some(id)), Some(got)) => id == got,
        (InResponseTo::Either(None), Some(_)) => false,
    };
    if ok {
        Ok(())
    } else {
        Err(SamlError::UnknownInResponseTo)
    }
}

fn issuer_is_idp(issuer: &Element, expect: &Expectations) -> Result<(), SamlError> {
    if issuer.has_comment() {
        return Err(SamlError::CommentInjection);
    }
    if issuer.text().trim() != expect.idp.entity_id {
        return Err(SamlError::WrongIssuer);
    }
    Ok(())
}

fn check_response(response: &Element, expect: &Expectations) -> Result<(), SamlError> {
    if response.attr("Version") != Some("2.0") {
        return Err(SamlError::MalformedXml(
            "the response is not SAML 2.0".into(),
        ));
    }
    if let Some(issuer) = response.only_child(NS_SAML, "Issuer")? {
        issuer_is_idp(issuer, expect)?;
    }
    if let Some(destination) = response.attr("Destination")
        && destination != expect.recipient
    {
        return Err(SamlError::WrongDestination);
    }
    let status = response
        .only_child(NS_SAMLP, "Status")?
        .and_then(|s| s.children_named(NS_SAMLP, "StatusCode").next())
        .and_then(|c| c.attr("Value"))
        .unwrap_or("missing");
    if status != STATUS_SUCCESS {
        let short = status.rsplit(':').next().unwrap_or(status);
        return Err(SamlError::IdpStatus(short.chars().take(64).collect()));
    }
    check_in_response_to(response.attr("InResponseTo"), expect)
}

fn read_assertion(
    assertion: &Element,
    response: &Element,
    expect: &Expectations,
) -> Result<VerifiedAssertion, SamlError> {
    if assertion.attr("Version") != Some("2.0") {
        return Err(SamlError::MalformedXml(
            "the assertion is not SAML 2.0".into(),
        ));
    }
    let assertion_id = assertion
        .attr("ID")
        .ok_or_else(|| SamlError::MalformedXml("the assertion has no ID".into()))?
        .to_owned();
    let issuer = assertion
        .only_child(NS_SAML, "Issuer")?
        .ok_or(SamlError::WrongIssuer)?;
    issuer_is_idp(issuer, expect)?;
    if let Some(issued) = instant(assertion.attr("IssueInstant"), "IssueInstant")?
        && issued > expect.now + skew(expect)
    {
        return Err(SamlError::NotYetValid);
    }

    // Subject: NameID and a bearer confirmation for us.
    let subject = assertion
        .only_child(NS_SAML, "Subject")?
        .ok_or_else(|| SamlError::MalformedXml("the assertion has no subject".into()))?;
    let name_id = subject
        .only_child(NS_SAML, "NameID")?
        .ok_or_else(|| SamlError::MalformedXml("the subject has no NameID".into()))?;
    let mut confirmed: Option<(DateTime<Utc>, Option<String>)> = None;
    let mut first_error: Option<SamlError> = None;
    for confirmation in subject.children_named(NS_SAML, "SubjectConfirmation") {
        if confirmation.attr("Method") != Some(BEARER) {
            continue;
        }
        match check_bearer(confirmation, expect) {
            Ok(found) => {
                confirmed = Some(found);
                break;
            }
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    let Some((confirmation_end, confirmation_irt)) = confirmed else {
        return Err(first_error.unwrap_or(SamlError::NoBearer));
    };
    let response_irt = response.attr("InResponseTo").map(str::to_owned);
    if let InResponseTo::Expected(_) = expect.in_response_to
        && response_irt.is_none()
        && confirmation_irt.is_none()
    {
        return Err(SamlError::UnknownInResponseTo);
    }

    // Conditions: validity window and audience.
    let conditions = assertion
        .only_child(NS_SAML, "Conditions")?
        .ok_or(SamlError::WrongAudience)?;
    let conditions_end = instant(conditions.attr("NotOnOrAfter"), "NotOnOrAfter")?;
    check_window(
        instant(conditions.attr("NotBefore"), "NotBefore")?,
        conditions_end,
        expect,
    )?;
    let restrictions: Vec<&Element> = conditions
        .children_named(NS_SAML, "AudienceRestriction")
        .collect();
    if restrictions.is_empty()
        || !restrictions.iter().all(|r| {
            r.children_named(NS_SAML, "Audience")
                .any(|a| a.text().trim() == expect.audience)
        })
    {
        return Err(SamlError::WrongAudience);
    }

    let authn = assertion.children_named(NS_SAML, "AuthnStatement").next();
    let authn_instant = instant(authn.and_then(|a| a.attr("AuthnInstant")), "AuthnInstant")?;
    let session_not_on_or_after = instant(
        authn.and_then(|a| a.attr("SessionNotOnOrAfter")),
        "SessionNotOnOrAfter",
    )?;
    if let Some(session_end) = session_not_on_or_after
        && expect.now >= session_end + skew(expect)
    {
        return Err(SamlError::Expired);
    }

    let mut attributes: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for statement in assertion.children_named(NS_SAML, "AttributeStatement") {
        for attribute in statement.children_named(NS_SAML, "Attribute") {
            let Some(name) = attribute.attr("Name") else {
                continue;
            };
            let values = attributes.entry(name.to_owned()).or_default();
            for value in attribute.children_named(NS_SAML, "AttributeValue") {
                values.push(value.text());
            }
        }
    }

    let end = match conditions_end {
        Some(c) => c.min(confirmation_end),
        None => confirmation_end,
    };
    Ok(VerifiedAssertion {
        assertion_id,
        issuer: expect.idp.entity_id.clone(),
        name_id: name_id.text().trim().to_owned(),
        name_id_format: name_id.attr("Format").map(str::to_owned),
        name_qualifier: name_id.attr("NameQualifier").map(str::to_owned),
        sp_name_qualifier: name_id.attr("SPNameQualifier").map(str::to_owned),
        attributes,
        not_on_or_after: end + skew(expect),
        session_not_on_or_after,
        in_response_to: confirmation_irt.or(response_irt),
        authn_instant,
    })
}

/// A bearer SubjectConfirmation: its data must name us as recipient, carry a
/// NotOnOrAfter and be within its window, and answer the right request.
fn check_bearer(
    confirmation: &Element,
    expect: &Expectations,
) -> Result<(DateTime<Utc>, Option<String>), SamlError> {
    let data = confirmation
        .only_child(NS_SAML, "SubjectConfirmationData")?
        .ok_or(SamlError::NoBearer)?;
    if data.attr("Recipient") != Some(expect.recipient) {
        return Err(SamlError::WrongRecipient);
    }
    let end = instant(data.attr("NotOnOrAfter"), "NotOnOrAfter")?.ok_or(SamlError::NoBearer)?;
    check_window(
        instant(data.attr("NotBefore"), "NotBefore")?,
        Some(end),
        expect,
    )?;
    let irt = data.attr("InResponseTo");
    check_in_response_to(irt, expect)?;
    Ok((end, irt.map(str::to_owned)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::idp::saml::xml_guard::parse_strict;
    use base64::engine::general_purpose::STANDARD;

    /// An EncryptedAssertion whose session key is properly wrapped for `key` but whose
    /// data cipher value is `data` (raw bytes) under `method`.
    fn encrypted(
        key: &openssl::pkey::PKey<openssl::pkey::Private>,
        method: &str,
        data: &[u8],
    ) -> Element {
        let rsa = key.rsa().unwrap();
        let mut wrapped = vec![0u8; rsa.size() as usize];
        let n = rsa
            .public_encrypt(&[7u8; 16], &mut wrapped, openssl::rsa::Padding::PKCS1_OAEP)
            .unwrap();
        let xml = format!(
            r#"<saml:EncryptedAssertion xmlns:saml="{NS_SAML}" xmlns:xenc="{NS_XENC}" xmlns:ds="{NS_DS}"><xenc:EncryptedData><xenc:EncryptionMethod Algorithm="{method}"/><ds:KeyInfo><xenc:EncryptedKey><xenc:EncryptionMethod Algorithm="{KEY_TRANSPORT_OAEP}"/><xenc:CipherData><xenc:CipherValue>{}</xenc:CipherValue></xenc:CipherData></xenc:EncryptedKey></ds:KeyInfo><xenc:CipherData><xenc:CipherValue>{}</xenc:CipherValue></xenc:CipherData></xenc:EncryptedData></saml:EncryptedAssertion>"#,
            STANDARD.encode(&wrapped[..n]),
            STANDARD.encode(data),
        );
        parse_strict(&xml).unwrap()
    }

    #[test]
    fn short_or_odd_cipher_values_are_refused_not_sliced() {
        // samael slices the cipher value without checking its length (a panic on a
        // value shorter than IV + tag): anyone holding the SP's public certificate
        // could send one. The verifier checks the length first.
        let key =
            openssl::pkey::PKey::from_rsa(openssl::rsa::Rsa::generate(2048).unwrap()).unwrap();
        let pem = key.private_key_to_pem_pkcs8().unwrap();
        for (method, data) in [
            (AES128_GCM, &b"short"[..]),
            (AES128_GCM, &[0u8; 27][..]),
            (AES128_CBC, &[0u8; 8][..]),
            (AES128_CBC, &[0u8; 33][..]),
        ] {
            let element = encrypted(&key, method, data);
            let err = decrypt_assertion(&element, Some(&pem)).unwrap_err();
            assert_eq!(err.code(), "decryption_failed", "{method} {}", data.len());
        }
        // Well-formed lengths but garbage: still a clean refusal.
        let element = encrypted(&key, AES128_GCM, &[1u8; 64]);
        assert_eq!(
            decrypt_assertion(&element, Some(&pem)).unwrap_err().code(),
            "decryption_failed"
        );
    }
}
