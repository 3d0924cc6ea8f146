//! The SAML front door under attack: every bad-input case of the SAML issue, built
//! from responses the real IdP (simplesamlphp) produced and then altered, and from
//! PyPI pysaml2 acting as the IdP for the unsigned, partly signed and SHA-1 cases.
//! Each case asserts the specific `SamlError` code the verifier gives.
//!
//! Alterations that need a valid signature after the change (an IdP that gets a
//! field wrong, a SHA-1 signature by the trusted key) are re-signed with the xmlsec1
//! CLI, with the IdP's own key or with an untrusted one.

use std::process::{Command, Stdio};

use chrono::{DateTime, TimeDelta, Utc};
use regex::Regex;
use rolegate::idp::saml::{
    IdpMetadata, InResponseTo, SamlError, VerifiedAssertion, claim_assertion_once,
    parse_idp_metadata, verify_response,
};

use super::saml_peer::{
    KeyPair, SamlIdp, SamlSp, SamlUser, authn_request_url, decode_response, default_users,
    encode_response, expectations,
};

const RSA_SHA1: &str = "http://www.w3.org/2000/09/xmldsig#rsa-sha1";
const SHA1: &str = "http://www.w3.org/2000/09/xmldsig#sha1";

/// One SP entry per signing variant (the IdP signs per SP), all under rolegate.test.
fn sp(variant: &str) -> SamlSp {
    SamlSp::new(
        &format!("https://rolegate.test/saml/{variant}/metadata"),
        &format!("https://rolegate.test/saml/{variant}/acs"),
    )
}

/// The real IdP with the SP variants the attacks need, and its parsed metadata.
struct Lab {
    idp: SamlIdp,
    metadata: IdpMetadata,
    sp_keys: KeyPair,
}

impl Lab {
    async fn start() -> Option<Self> {
        Self::start_with(&default_users()).await
    }

    async fn start_with(users: &[SamlUser]) -> Option<Self> {
        let sp_keys = KeyPair::generate("rolegate-test-sp");
        let mut assertion_only = sp("assertion-only");
        assertion_only.sign_response = false;
        let mut response_only = sp("response-only");
        response_only.sign_assertion = false;
        let mut unsigned = sp("unsigned");
        unsigned.sign_response = false;
        unsigned.sign_assertion = false;
        let mut encrypted = sp("encrypted");
        encrypted.encryption_cert_pem = Some(sp_keys.cert_pem.clone());
        let mut encrypted_unsigned = sp("encrypted-unsigned");
        encrypted_unsigned.encryption_cert_pem = Some(sp_keys.cert_pem.clone());
        encrypted_unsigned.sign_response = false;
        encrypted_unsigned.sign_assertion = false;
        // Meant for another SP, but posted to our ACS (our Destination and Recipient).
        let other_audience = SamlSp::new("https://elsewhere.test/sp", &sp("both").acs_url);
        // Our entityID, but the IdP posts it to another ACS.
        let misrouted = SamlSp::new(
            &sp("misrouted").entity_id,
            "https://elsewhere.test/saml/acs",
        );
        let sps = [
            sp("both"),
            assertion_only,
            response_only,
            unsigned,
            encrypted,
            encrypted_unsigned,
            other_audience,
            misrouted,
        ];
        let idp = SamlIdp::start_with(&sps, users)?;
        let metadata = parse_idp_metadata(&idp.metadata_xml().await).unwrap();
        Some(Self {
            idp,
            metadata,
            sp_keys,
        })
    }

    /// A real IdP-initiated response for the SP entry `entity` (XML).
    async fn response_for(&self, entity: &str, user: &str, password: &str) -> String {
        decode_response(
            &self
                .idp
                .idp_initiated_response(entity, user, password)
                .await,
        )
    }

    /// A real response for the `variant` SP, signing in as alice (XML).
    async fn response(&self, variant: &str) -> String {
        self.response_for(&sp(variant).entity_id, "alice", "alice-pass")
            .await
    }

    /// Verifies `xml` (sent base64-encoded, as an ACS receives it) as the `variant` SP
    /// at `now`, IdP-initiated allowed only.
    fn verify_at(
        &self,
        variant: &str,
        xml: &str,
        now: DateTime<Utc>,
    ) -> Result<VerifiedAssertion, SamlError> {
        let sp = sp(variant);
        let mut expect = expectations(&self.metadata, &sp, InResponseTo::IdpInitiatedOnly, now);
        expect.decryption_key = Some(self.sp_keys.key_pem.as_bytes());
        verify_response(&encode_response(xml), &expect)
    }

    fn verify(&self, variant: &str, xml: &str) -> Result<VerifiedAssertion, SamlError> {
        self.verify_at(variant, xml, Utc::now())
    }

    /// A response from pysaml2 acting as this IdP (same entityID, signing with `key`).
    fn pysaml2(&self, variant: &str, options: serde_json::Value, key: &KeyPair) -> String {
        pysaml2_response(&self.idp.entity_id, &sp(variant), options, key)
    }
}

/// Asserts the refusal code of one attack case, naming the case.
#[track_caller]
fn refused(case: &str, result: Result<VerifiedAssertion, SamlError>, code: &str) {
    match result {
        Ok(verified) => panic!(
            "{case}: accepted (name_id {:?}), expected {code}",
            verified.name_id
        ),
        Err(e) => assert_eq!(e.code(), code, "{case}: {e}"),
    }
}

/// Asserts a case is accepted, returning what was verified.
#[track_caller]
fn accepted(case: &str, result: Result<VerifiedAssertion, SamlError>) -> VerifiedAssertion {
    result.unwrap_or_else(|e| panic!("{case}: refused with {} ({e})", e.code()))
}

// ---------------------------------------------------------------------------
// XML surgery on simplesamlphp's serialisation (prefixes samlp:, saml:, ds:)
// ---------------------------------------------------------------------------

/// The (first) `<saml:Assertion ...>...</saml:Assertion>` of `xml`.
fn assertion_of(xml: &str) -> &str {
    let start = xml.find("<saml:Assertion").expect("an assertion");
    let end = xml[start..]
        .find("</saml:Assertion>")
        .expect("assertion end")
        + start;
    &xml[start..end + "</saml:Assertion>".len()]
}

/// The first `<ds:Signature ...>...</ds:Signature>` in `xml`.
fn signature_of(xml: &str) -> &str {
    let start = xml.find("<ds:Signature").expect("a signature");
    let end = xml[start..].find("</ds:Signature>").expect("signature end") + start;
    &xml[start..end + "</ds:Signature>".len()]
}

/// The Response's own signature (the one before `<samlp:Status`).
fn response_signature_of(xml: &str) -> &str {
    let status = xml.find("<samlp:Status").expect("status");
    let sig = signature_of(xml);
    assert!(xml.find(sig).unwrap() < status, "the response is signed");
    sig
}

fn attr_of<'a>(element: &'a str, name: &str) -> &'a str {
    let re = Regex::new(&format!(r#"\s{name}="([^"]*)""#)).unwrap();
    re.captures(element)
        .and_then(|c| c.get(1))
        .map(|m| m.as_str())
        .expect("attribute")
}

/// `assertion` with another ID (so two copies do not share one).
fn with_new_id(assertion: &str, id: &str) -> String {
    let old = attr_of(assertion, "ID");
    assertion.replacen(&format!("ID=\"{old}\""), &format!("ID=\"{id}\""), 1)
}

/// An evil copy of the assertion: another NameID, its signature removed, a new ID.
fn evil_assertion(assertion: &str) -> String {
    let unsigned = assertion.replacen(signature_of(assertion), "", 1);
    with_new_id(&unsigned, "_evil").replace(">alice</saml:NameID>", ">admin</saml:NameID>")
}

/// Re-signs `xml` with `key` through the xmlsec1 CLI: the assertion's signature (if
/// any) first, then the response's; `algorithms` replaces (signature, digest) method
/// URIs. The KeyInfo certificate becomes `key`'s.
fn xmlsec1_resign(xml: &str, key: &KeyPair, algorithms: Option<(&str, &str)>) -> String {
    let blank_digest = Regex::new(r"<ds:DigestValue>[^<]*</ds:DigestValue>").unwrap();
    let blank_value = Regex::new(r"<ds:SignatureValue>[^<]*</ds:SignatureValue>").unwrap();
    let cert = Regex::new(r"<ds:X509Certificate>[^<]*</ds:X509Certificate>").unwrap();
    let body: String = key
        .cert_pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    let mut template = blank_digest
        .replace_all(xml, "<ds:DigestValue></ds:DigestValue>")
        .into_owned();
    template = blank_value
        .replace_all(&template, "<ds:SignatureValue></ds:SignatureValue>")
        .into_owned();
    template = cert
        .replace_all(
            &template,
            format!("<ds:X509Certificate>{body}</ds:X509Certificate>"),
        )
        .into_owned();
    if let Some((signature, digest)) = algorithms {
        template = template
            .replace(
                "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
                signature,
            )
            .replace("http://www.w3.org/2001/04/xmlenc#sha256", digest);
    }
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("key.pem");
    let cert_file = dir.path().join("cert.pem");
    std::fs::write(&key_file, &key.key_pem).unwrap();
    std::fs::write(&cert_file, &key.cert_pem).unwrap();
    let assertion_signed = assertion_of(&template).contains("<ds:Signature");
    let response_signed = template.find("<ds:Signature").is_some_and(|at| {
        template
            .find("<samlp:Status")
            .is_some_and(|status| at < status)
    });
    let assertion_sig =
        "/*[local-name()='Response']/*[local-name()='Assertion']/*[local-name()='Signature']";
    let response_sig = "/*[local-name()='Response']/*[local-name()='Signature']";
    let mut current = template;
    for (present, xpath) in [
        (assertion_signed, assertion_sig),
        (response_signed, response_sig),
    ] {
        if !present {
            continue;
        }
        let input = dir.path().join("in.xml");
        let output = dir.path().join("out.xml");
        std::fs::write(&input, &current).unwrap();
        let run = Command::new("xmlsec1")
            .arg("--sign")
            .arg("--privkey-pem")
            .arg(format!("{},{}", key_file.display(), cert_file.display()))
            .args([
                "--id-attr:ID",
                "urn:oasis:names:tc:SAML:2.0:assertion:Assertion",
            ])
            .args([
                "--id-attr:ID",
                "urn:oasis:names:tc:SAML:2.0:protocol:Response",
            ])
            .args(["--node-xpath", xpath])
            .arg("--output")
            .arg(&output)
            .arg(&input)
            .stdin(Stdio::null())
            .output()
            .expect("xmlsec1 (Debian package xmlsec1) is required");
        assert!(
            run.status.success(),
            "xmlsec1 --sign failed: {}",
            String::from_utf8_lossy(&run.stderr)
        );
        current = std::fs::read_to_string(&output).unwrap();
    }
    current
}

/// A response from pysaml2 (tests/peers/saml/pysaml2_idp.py) for `sp`, as the IdP
/// `entity_id` signing with `key`; `options` adds sign_response, sign_assertion,
/// sign_alg, digest_alg, in_response_to. Returns the XML.
fn pysaml2_response(
    entity_id: &str,
    sp: &SamlSp,
    options: serde_json::Value,
    key: &KeyPair,
) -> String {
    let python = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers/saml/pysaml2_idp.py");
    let probe = Command::new(&python)
        .args(["-c", "import saml2"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !probe {
        panic!(
            "pysaml2 is required (scripts/test.sh installs tests/peers/requirements.txt into .venv)"
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("key.pem");
    let cert_file = dir.path().join("cert.pem");
    std::fs::write(&key_file, &key.key_pem).unwrap();
    std::fs::write(&cert_file, &key.cert_pem).unwrap();
    let mut request = serde_json::json!({
        "entity_id": entity_id,
        "key_file": key_file,
        "cert_file": cert_file,
        "sp_entity_id": sp.entity_id,
        "acs_url": sp.acs_url,
        "name_id": "carol",
        "attributes": {"groups": ["developers", "admins"]},
    });
    for (k, v) in options.as_object().unwrap() {
        request[k] = v.clone();
    }
    let mut child = Command::new(&python)
        .arg(&script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(request.to_string().as_bytes())
            .unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "pysaml2 IdP failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    decode_response(&String::from_utf8(out.stdout).unwrap())
}

fn instant_attr(xml: &str, element: &str, attr: &str) -> DateTime<Utc> {
    let start = xml.find(&format!("<{element} ")).expect("element");
    let tag_end = xml[start..].find('>').unwrap() + start;
    attr_of(&xml[start..tag_end], attr).parse().unwrap()
}

// ---------------------------------------------------------------------------
// Signatures: unsigned, partly signed, untrusted, altered, SHA-1
// ---------------------------------------------------------------------------

#[tokio::test]
async fn unsigned_and_partly_signed_responses() {
    let Some(lab) = Lab::start().await else {
        return;
    };
    let both = lab.response("both").await;
    accepted("signed response and assertion", lab.verify("both", &both));

    // simplesamlphp told not to sign at all.
    let unsigned = lab.response("unsigned").await;
    refused(
        "unsigned (simplesamlphp)",
        lab.verify("unsigned", &unsigned),
        "unsigned",
    );
    // Both signatures stripped from a signed response.
    let stripped = both.replacen(response_signature_of(&both), "", 1).replacen(
        signature_of(assertion_of(&both)),
        "",
        1,
    );
    refused(
        "signatures stripped",
        lab.verify("both", &stripped),
        "unsigned",
    );

    // pysaml2 as the IdP: unsigned, assertion-only, response-only.
    let key = &lab.idp.keys;
    let none = lab.pysaml2("both", serde_json::json!({}), key);
    refused("unsigned (pysaml2)", lab.verify("both", &none), "unsigned");
    let assertion_only = lab.pysaml2("both", serde_json::json!({"sign_assertion": true}), key);
    let verified = accepted(
        "assertion-only signed (pysaml2)",
        lab.verify("both", &assertion_only),
    );
    assert_eq!(verified.name_id, "carol");
    let response_only = lab.pysaml2("both", serde_json::json!({"sign_response": true}), key);
    accepted(
        "response-only signed (pysaml2)",
        lab.verify("both", &response_only),
    );
    // simplesamlphp's partly signed responses are accepted too.
    accepted(
        "assertion-only signed (simplesamlphp)",
        lab.verify("assertion-only", &lab.response("assertion-only").await),
    );
    accepted(
        "response-only signed (simplesamlphp)",
        lab.verify("response-only", &lab.response("response-only").await),
    );

    // Partly signed, then altered where the signature covers it.
    let tampered = assertion_only.replace(">carol</ns1:NameID>", ">admin</ns1:NameID>");
    assert_ne!(tampered, assertion_only);
    refused(
        "assertion-only signed, NameID altered",
        lab.verify("both", &tampered),
        "invalid_signature",
    );
    let tampered = response_only.replace(">carol</ns1:NameID>", ">admin</ns1:NameID>");
    refused(
        "response-only signed, NameID altered",
        lab.verify("both", &tampered),
        "invalid_signature",
    );
    // An assertion-only signed response whose (unsigned) Response wraps a swapped,
    // unsigned assertion: the assertion used must be the signed one.
    let rs_only = lab.response("response-only").await;
    let altered = rs_only.replace(">developers<", ">admins<");
    refused(
        "response signed, attribute altered",
        lab.verify("response-only", &altered),
        "invalid_signature",
    );

    // Encrypted, but nothing signed: anyone can encrypt to the SP's public key.
    let enc_unsigned = lab.response("encrypted-unsigned").await;
    assert!(enc_unsigned.contains("EncryptedAssertion"));
    refused(
        "encrypted, unsigned",
        lab.verify("encrypted-unsigned", &enc_unsigned),
        "unsigned",
    );
    accepted(
        "encrypted and signed",
        lab.verify("encrypted", &lab.response("encrypted").await),
    );
}

#[tokio::test]
async fn untrusted_keys_altered_content_and_sha1() {
    let Some(lab) = Lab::start().await else {
        return;
    };
    let both = lab.response("both").await;
    let rogue = KeyPair::generate("rogue-idp");

    // An untrusted key (its own certificate in KeyInfo): pysaml2 and a re-signed
    // simplesamlphp response.
    let py = lab.pysaml2(
        "both",
        serde_json::json!({"sign_response": true, "sign_assertion": true}),
        &rogue,
    );
    refused(
        "pysaml2 signing with an untrusted key",
        lab.verify("both", &py),
        "untrusted_signature",
    );
    let resigned = xmlsec1_resign(&both.replace(">alice<", ">admin<"), &rogue, None);
    refused(
        "re-signed with an untrusted key",
        lab.verify("both", &resigned),
        "untrusted_signature",
    );
    // The untrusted signature presented with the trusted certificate in KeyInfo.
    let trusted_body: String = lab
        .idp
        .keys
        .cert_pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    let rogue_body: String = rogue
        .cert_pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    let disguised = resigned.replace(&rogue_body, &trusted_body);
    refused(
        "untrusted key behind the trusted certificate",
        lab.verify("both", &disguised),
        "invalid_signature",
    );
    // The same re-signing with the IdP's own key is accepted (the re-signing is sound).
    let resigned_ok = xmlsec1_resign(&both, &lab.idp.keys, None);
    accepted(
        "re-signed with the IdP key",
        lab.verify("both", &resigned_ok),
    );

    // Altered signed content.
    refused(
        "NameID altered",
        lab.verify(
            "both",
            &both.replace(">alice</saml:NameID>", ">admin</saml:NameID>"),
        ),
        "invalid_signature",
    );
    refused(
        "group added",
        lab.verify("both", &both.replacen(">admins<", ">root<", 1)),
        "invalid_signature",
    );

    // SHA-1: pysaml2 with its SHA-1 signing, and a re-signed response, both by the
    // trusted key; a SHA-256 signature over a SHA-1 digest.
    let sha1 = lab.pysaml2(
        "both",
        serde_json::json!({"sign_response": true, "sign_assertion": true, "sign_alg": RSA_SHA1, "digest_alg": SHA1}),
        &lab.idp.keys,
    );
    assert!(sha1.contains(RSA_SHA1));
    refused(
        "rsa-sha1 (pysaml2)",
        lab.verify("both", &sha1),
        "weak_algorithm",
    );
    let sha1_resigned = xmlsec1_resign(&both, &lab.idp.keys, Some((RSA_SHA1, SHA1)));
    refused(
        "rsa-sha1 (re-signed)",
        lab.verify("both", &sha1_resigned),
        "weak_algorithm",
    );
    let sha1_digest = xmlsec1_resign(
        &both,
        &lab.idp.keys,
        Some(("http://www.w3.org/2001/04/xmldsig-more#rsa-sha256", SHA1)),
    );
    refused(
        "sha1 digest under rsa-sha256",
        lab.verify("both", &sha1_digest),
        "weak_algorithm",
    );
}

// ---------------------------------------------------------------------------
// Signature wrapping: XSW1..XSW8 and the published shapes
// ---------------------------------------------------------------------------

#[tokio::test]
async fn signature_wrapping_xsw1_to_xsw8_and_published_shapes() {
    let Some(lab) = Lab::start().await else {
        return;
    };
    let both = lab.response("both").await;
    let response_signed = lab.response("response-only").await;
    let assertion_signed = lab.response("assertion-only").await;

    // --- Response signed (XSW1, XSW2): the original response is kept inside or
    // beside the signature of an evil response.
    {
        let xml = &response_signed;
        let sig = response_signature_of(xml);
        let original_id = attr_of(xml, "ID");
        let evil_response = xml
            .replacen(&format!("ID=\"{original_id}\""), "ID=\"_evil_response\"", 1)
            .replace(">alice</saml:NameID>", ">admin</saml:NameID>");
        // XSW1: the original response as the last child of the (moved) signature.
        let original_unsigned = xml.replacen(sig, "", 1);
        let original_body = original_unsigned
            .trim_start_matches(|c| c != '<')
            .to_owned();
        let sig_with_original = sig.replacen(
            "</ds:Signature>",
            &format!("{original_body}</ds:Signature>"),
            1,
        );
        let xsw1 = evil_response.replacen(sig, &sig_with_original, 1);
        refused(
            "XSW1",
            lab.verify("response-only", &xsw1),
            "multiple_assertions",
        );
        // XSW2: the original response before the signature (detached).
        let xsw2 = evil_response.replacen(sig, &format!("{original_body}{sig}"), 1);
        refused(
            "XSW2",
            lab.verify("response-only", &xsw2),
            "multiple_assertions",
        );
        // A single evil assertion in a response whose signature now dangles.
        refused(
            "response ID changed (dangling reference)",
            lab.verify("response-only", &evil_response),
            "wrapping",
        );
    }

    // --- Assertion signed (XSW3..XSW8).
    {
        let xml = &assertion_signed;
        let original = assertion_of(xml);
        let evil = evil_assertion(original);
        // XSW3: an evil assertion before the signed one.
        let xsw3 = xml.replacen(original, &format!("{evil}{original}"), 1);
        refused(
            "XSW3",
            lab.verify("assertion-only", &xsw3),
            "multiple_assertions",
        );
        // XSW4: the signed assertion inside the evil one.
        let xsw4 = xml.replacen(
            original,
            &evil.replacen(
                "</saml:Assertion>",
                &format!("{original}</saml:Assertion>"),
                1,
            ),
            1,
        );
        refused(
            "XSW4",
            lab.verify("assertion-only", &xsw4),
            "multiple_assertions",
        );
        // XSW5: the signature moved into the evil assertion; the original appended.
        let sig = signature_of(original);
        let evil_with_sig = evil.replacen("</saml:Issuer>", &format!("</saml:Issuer>{sig}"), 1);
        let unsigned_original = original.replacen(sig, "", 1);
        let xsw5 = xml.replacen(original, &evil_with_sig, 1).replacen(
            "</samlp:Response>",
            &format!("{unsigned_original}</samlp:Response>"),
            1,
        );
        refused(
            "XSW5",
            lab.verify("assertion-only", &xsw5),
            "multiple_assertions",
        );
        // XSW6: the original assertion inside the signature of the evil assertion.
        let sig_holding_original =
            sig.replacen("</ds:Signature>", &format!("{original}</ds:Signature>"), 1);
        let xsw6 = xml.replacen(
            original,
            &evil.replacen(
                "</saml:Issuer>",
                &format!("</saml:Issuer>{sig_holding_original}"),
                1,
            ),
            1,
        );
        refused(
            "XSW6",
            lab.verify("assertion-only", &xsw6),
            "multiple_assertions",
        );
        // XSW7: the signed assertion in an Extensions element, the evil one in place.
        let xsw7 = xml.replacen(
            original,
            &format!("<samlp:Extensions>{original}</samlp:Extensions>{evil}"),
            1,
        );
        refused(
            "XSW7",
            lab.verify("assertion-only", &xsw7),
            "multiple_assertions",
        );
        // XSW8: the signature carries an Object with the original (unsigned) assertion.
        let sig_with_object = sig.replacen(
            "</ds:Signature>",
            &format!("<ds:Object>{unsigned_original}</ds:Object></ds:Signature>"),
            1,
        );
        let xsw8 = xml.replacen(
            original,
            &evil.replacen(
                "</saml:Issuer>",
                &format!("</saml:Issuer>{sig_with_object}"),
                1,
            ),
            1,
        );
        refused(
            "XSW8",
            lab.verify("assertion-only", &xsw8),
            "multiple_assertions",
        );

        // The signed assertion moved into Extensions, alone (no second assertion).
        let moved = xml.replacen(
            original,
            &format!("<samlp:Extensions>{original}</samlp:Extensions>"),
            1,
        );
        refused(
            "signed assertion moved into Extensions",
            lab.verify("assertion-only", &moved),
            "wrapping",
        );
        // ... or into a ds:Object of the (unsigned) response.
        let in_object = xml.replacen(
            original,
            &format!("<ds:Signature xmlns:ds=\"http://www.w3.org/2000/09/xmldsig#\"><ds:Object>{original}</ds:Object></ds:Signature>"),
            1,
        );
        refused(
            "signed assertion inside ds:Object",
            lab.verify("assertion-only", &in_object),
            "wrapping",
        );
        // Concealed signature: the assertion's signature moved deeper (into Subject).
        let concealed = xml.replacen(
            original,
            &original.replacen(sig, "", 1).replacen(
                "<saml:Subject>",
                &format!("<saml:Subject>{sig}"),
                1,
            ),
            1,
        );
        refused(
            "concealed signature (inside Subject)",
            lab.verify("assertion-only", &concealed),
            "wrapping",
        );
        // Doubled signature: two signatures on the assertion.
        let doubled = xml.replacen(sig, &format!("{sig}{sig}"), 1);
        refused(
            "doubled signature",
            lab.verify("assertion-only", &doubled),
            "wrapping",
        );
        // A signature that signs the whole document (empty URI) instead of its parent.
        let whole_doc = xml.replacen(
            &format!("URI=\"#{}\"", attr_of(original, "ID")),
            "URI=\"\"",
            1,
        );
        refused(
            "reference to the whole document",
            lab.verify("assertion-only", &whole_doc),
            "wrapping",
        );
        // Two elements sharing the assertion's ID.
        let dup_id = xml.replacen(
            "<samlp:Status>",
            &format!("<samlp:Status ID=\"{}\">", attr_of(original, "ID")),
            1,
        );
        refused(
            "duplicate ID",
            lab.verify("assertion-only", &dup_id),
            "wrapping",
        );
    }

    // --- Both signed: a second (unsigned) assertion anywhere is refused.
    {
        let xml = &both;
        let original = assertion_of(xml);
        let evil = evil_assertion(original);
        let two = xml.replacen("</samlp:Response>", &format!("{evil}</samlp:Response>"), 1);
        refused(
            "two assertions",
            lab.verify("both", &two),
            "multiple_assertions",
        );
        let in_extensions = xml.replacen(
            "<samlp:Status>",
            &format!("<samlp:Extensions>{evil}</samlp:Extensions><samlp:Status>"),
            1,
        );
        refused(
            "assertion inside Extensions",
            lab.verify("both", &in_extensions),
            "multiple_assertions",
        );
        let in_object = xml.replacen(
            "</ds:Signature>",
            &format!("<ds:Object>{evil}</ds:Object></ds:Signature>"),
            1,
        );
        refused(
            "assertion inside ds:Object",
            lab.verify("both", &in_object),
            "multiple_assertions",
        );
        let deep = xml.replacen(
            "</saml:AttributeValue>",
            &format!("{evil}</saml:AttributeValue>"),
            1,
        );
        refused(
            "assertion inside an attribute value",
            lab.verify("both", &deep),
            "multiple_assertions",
        );
        // An assertion in a foreign namespace does not count, nor is it used.
        let foreign = xml.replacen(
            "<samlp:Status>",
            &format!(
                "<samlp:Extensions>{}</samlp:Extensions><samlp:Status>",
                evil.replace("<saml:", "<x:")
                    .replace("</saml:", "</x:")
                    .replacen(
                        "<x:Assertion",
                        "<x:Assertion xmlns:x=\"urn:example:not-saml\"",
                        1
                    )
            ),
            1,
        );
        // Added under a signed response: the response signature covers Extensions.
        refused(
            "foreign assertion added under a signed response",
            lab.verify("both", &foreign),
            "invalid_signature",
        );
    }
}

// ---------------------------------------------------------------------------
// Comment injection
// ---------------------------------------------------------------------------

#[tokio::test]
async fn comment_injection_in_name_id_and_attribute_values() {
    let mut users = default_users();
    users.push(SamlUser::new(
        "mallory",
        "mallory-pass",
        &[
            ("uid", &["admin@corp.example.evil.test"]),
            ("groups", &["admins.evil.test"]),
        ],
    ));
    let Some(lab) = Lab::start_with(&users).await else {
        return;
    };
    let entity = sp("both").entity_id;
    let xml = lab.response_for(&entity, "mallory", "mallory-pass").await;
    // Untouched: the full values.
    let verified = accepted("no comment", lab.verify("both", &xml));
    assert_eq!(verified.name_id, "admin@corp.example.evil.test");
    assert_eq!(
        verified.attributes["groups"],
        vec!["admins.evil.test".to_owned()]
    );
    // A comment in the NameID keeps the signature valid (canonicalization drops
    // comments) and would cut the value for a parser that stops at it.
    let name_id = xml.replace(
        ">admin@corp.example.evil.test</saml:NameID>",
        ">admin@corp.example<!---->.evil.test</saml:NameID>",
    );
    assert_ne!(name_id, xml);
    refused(
        "comment in NameID",
        lab.verify("both", &name_id),
        "comment_injection",
    );
    let attribute = xml.replace(">admins.evil.test<", ">admins<!-- -->.evil.test<");
    assert_ne!(attribute, xml);
    refused(
        "comment in an attribute value",
        lab.verify("both", &attribute),
        "comment_injection",
    );
    // The same in an assertion-only signed response.
    let xml = lab
        .response_for(&sp("assertion-only").entity_id, "mallory", "mallory-pass")
        .await;
    let name_id = xml.replace(
        ">admin@corp.example.evil.test</saml:NameID>",
        ">admin@corp.example<!---->.evil.test</saml:NameID>",
    );
    refused(
        "comment in NameID (assertion signed)",
        lab.verify("assertion-only", &name_id),
        "comment_injection",
    );
}

// ---------------------------------------------------------------------------
// Audience, recipient, destination, issuer
// ---------------------------------------------------------------------------

#[tokio::test]
async fn wrong_audience_recipient_destination_and_issuer() {
    let Some(lab) = Lab::start().await else {
        return;
    };
    // Meant for another SP, posted to our ACS.
    let other = lab
        .response_for("https://elsewhere.test/sp", "alice", "alice-pass")
        .await;
    refused(
        "wrong audience",
        lab.verify("both", &other),
        "wrong_audience",
    );
    // Our entity, but the IdP addressed it to another ACS.
    let misrouted = lab.response("misrouted").await;
    refused(
        "wrong destination",
        lab.verify("misrouted", &misrouted),
        "wrong_destination",
    );
    // Signed for another SP's ACS (assertion-only signed), the unsigned Destination
    // rewritten to ours: the signed Recipient still names the other ACS.
    let foreign = lab.response("assertion-only").await;
    let rewritten = foreign.replacen(
        &format!("Destination=\"{}\"", sp("assertion-only").acs_url),
        &format!("Destination=\"{}\"", sp("both").acs_url),
        1,
    );
    assert_ne!(rewritten, foreign);
    refused(
        "wrong recipient",
        lab.verify("both", &rewritten),
        "wrong_recipient",
    );
    // The IdP's key, but another entityID as issuer (pysaml2).
    let py = pysaml2_response(
        "https://impostor.idp.test",
        &sp("both"),
        serde_json::json!({"sign_response": true, "sign_assertion": true}),
        &lab.idp.keys,
    );
    refused("wrong issuer", lab.verify("both", &py), "wrong_issuer");
    // The same response from the right entityID is accepted.
    let py = lab.pysaml2(
        "both",
        serde_json::json!({"sign_response": true, "sign_assertion": true}),
        &lab.idp.keys,
    );
    accepted("pysaml2 as the IdP", lab.verify("both", &py));
    // The IdP (re-signing with its key) sends a wrong Recipient with no Destination.
    let both = lab.response("both").await;
    let no_destination = both.replacen(&format!(" Destination=\"{}\"", sp("both").acs_url), "", 1);
    let wrong_recipient = no_destination.replacen(
        &format!("Recipient=\"{}\"", sp("both").acs_url),
        "Recipient=\"https://elsewhere.test/acs\"",
        1,
    );
    let resigned = xmlsec1_resign(&wrong_recipient, &lab.idp.keys, None);
    refused(
        "wrong recipient, re-signed",
        lab.verify("both", &resigned),
        "wrong_recipient",
    );
    let resigned = xmlsec1_resign(&no_destination, &lab.idp.keys, None);
    accepted(
        "no Destination (optional), right Recipient",
        lab.verify("both", &resigned),
    );
}

// ---------------------------------------------------------------------------
// Time: expired / not yet valid beyond the skew, accepted within it
// ---------------------------------------------------------------------------

#[tokio::test]
async fn validity_windows_with_skew_on_both_bounds() {
    let Some(lab) = Lab::start().await else {
        return;
    };
    let xml = lab.response("both").await;
    let assertion = assertion_of(&xml);
    let not_on_or_after = instant_attr(assertion, "saml:Conditions", "NotOnOrAfter");
    let issued = instant_attr(assertion, "saml:Assertion", "IssueInstant");
    let s = TimeDelta::seconds;
    // The lab's skew is 60 s.
    accepted("now", lab.verify_at("both", &xml, issued));
    accepted(
        "59 s after NotOnOrAfter",
        lab.verify_at("both", &xml, not_on_or_after + s(59)),
    );
    refused(
        "61 s after NotOnOrAfter",
        lab.verify_at("both", &xml, not_on_or_after + s(61)),
        "expired",
    );
    refused(
        "an hour later",
        lab.verify_at("both", &xml, not_on_or_after + s(3600)),
        "expired",
    );
    accepted(
        "59 s before it was issued",
        lab.verify_at("both", &xml, issued - s(59)),
    );
    refused(
        "61 s before it was issued",
        lab.verify_at("both", &xml, issued - s(61)),
        "not_yet_valid",
    );
    refused(
        "a day early",
        lab.verify_at("both", &xml, issued - s(86_400)),
        "not_yet_valid",
    );
    // The bearer confirmation's own window counts too: its NotOnOrAfter moved earlier
    // by the IdP (re-signed with its key) expires the assertion.
    let confirmation_end = instant_attr(assertion, "saml:SubjectConfirmationData", "NotOnOrAfter");
    let earlier = (confirmation_end - s(240))
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    let shortened = xml.replacen(
        &format!(
            "NotOnOrAfter=\"{}\" Recipient",
            confirmation_end.format("%Y-%m-%dT%H:%M:%SZ")
        ),
        &format!("NotOnOrAfter=\"{earlier}\" Recipient"),
        1,
    );
    assert_ne!(shortened, xml);
    let shortened = xmlsec1_resign(&shortened, &lab.idp.keys, None);
    refused(
        "subject confirmation expired",
        lab.verify_at("both", &shortened, confirmation_end - s(100)),
        "expired",
    );
    let verified = accepted(
        "before the confirmation ends",
        lab.verify_at("both", &shortened, issued),
    );
    assert_eq!(verified.not_on_or_after, confirmation_end - s(240) + s(60));
}

// ---------------------------------------------------------------------------
// InResponseTo and replay
// ---------------------------------------------------------------------------

#[tokio::test]
async fn unknown_in_response_to_and_replayed_assertions() {
    let Some(lab) = Lab::start().await else {
        return;
    };
    let sp_both = sp("both");
    let (url, request_id) = authn_request_url(&lab.idp.sso_url(), &sp_both, "");
    let posted = lab
        .idp
        .response_for_request(&url, "alice", "alice-pass")
        .await;
    let now = Utc::now();
    let expect = |irt| expectations(&lab.metadata, &sp_both, irt, now);
    let verified = accepted(
        "the request we sent",
        verify_response(
            &posted.saml_response,
            &expect(InResponseTo::Expected(&request_id)),
        ),
    );
    accepted(
        "either, with our request",
        verify_response(
            &posted.saml_response,
            &expect(InResponseTo::Either(Some(&request_id))),
        ),
    );
    refused(
        "unknown InResponseTo",
        verify_response(
            &posted.saml_response,
            &expect(InResponseTo::Expected("_not_sent")),
        ),
        "unknown_in_response_to",
    );
    refused(
        "answer to a request while only IdP-initiated is allowed",
        verify_response(
            &posted.saml_response,
            &expect(InResponseTo::IdpInitiatedOnly),
        ),
        "unknown_in_response_to",
    );
    refused(
        "answer to a request when none is pending",
        verify_response(&posted.saml_response, &expect(InResponseTo::Either(None))),
        "unknown_in_response_to",
    );
    let unsolicited = lab.response("both").await;
    refused(
        "unsolicited response where a request was sent",
        verify_response(
            &encode_response(&unsolicited),
            &expect(InResponseTo::Expected(&request_id)),
        ),
        "unknown_in_response_to",
    );

    // Replay: the first use claims the assertion ID until it expires, on both caches.
    let memory = rolegate::cache::MemoryCache::new(rolegate::clock::Clock::system());
    let prefix = super::cache::unique_prefix();
    let redis = super::cache::redis_cache(&prefix).await;
    for (name, cache) in [
        ("memory", &memory as &dyn rolegate::cache::Cache),
        ("redis", &redis as &dyn rolegate::cache::Cache),
    ] {
        claim_assertion_once(
            cache,
            &verified.issuer,
            &verified.assertion_id,
            verified.not_on_or_after,
            now,
        )
        .await
        .unwrap_or_else(|e| panic!("{name}: first use refused: {e}"));
        let again = claim_assertion_once(
            cache,
            &verified.issuer,
            &verified.assertion_id,
            verified.not_on_or_after,
            now,
        )
        .await;
        assert_eq!(
            again.map_err(|e| e.code()),
            Err("replayed"),
            "{name}: replayed assertion"
        );
    }
    // On Redis the claim lives until the assertion expires (plus skew), not longer.
    let mut conn = redis::Client::open(super::cache::redis_url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}:*"))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(keys.len(), 1, "one replay key: {keys:?}");
    let ttl: i64 = redis::cmd("TTL")
        .arg(&keys[0])
        .query_async(&mut conn)
        .await
        .unwrap();
    let expected = (verified.not_on_or_after - now).num_seconds();
    assert!(
        ttl > 0 && ttl <= expected + 1 && ttl >= expected - 5,
        "ttl {ttl}, expected about {expected}"
    );
    let _: () = redis::cmd("DEL")
        .arg(&keys[0])
        .query_async(&mut conn)
        .await
        .unwrap();
}

// ---------------------------------------------------------------------------
// Parser attacks and encoding
// ---------------------------------------------------------------------------

#[tokio::test]
async fn xxe_billion_laughs_malformed_base64_and_size_cap() {
    let Some(lab) = Lab::start().await else {
        return;
    };
    let xml = lab.response("both").await;
    let body = xml.trim_start_matches(|c| c != '<');
    let body = body
        .strip_prefix("<?xml version=\"1.0\"?>")
        .unwrap_or(body)
        .trim_start();
    // XXE: an external entity in the NameID.
    let xxe = format!(
        "<?xml version=\"1.0\"?>\n<!DOCTYPE samlp:Response [<!ENTITY xxe SYSTEM \"file:///etc/passwd\">]>\n{}",
        body.replacen(">alice</saml:NameID>", ">&xxe;</saml:NameID>", 1)
    );
    refused("XXE", lab.verify("both", &xxe), "dtd_forbidden");
    // XXE through a parameter entity, no reference in the body.
    let param =
        format!("<!DOCTYPE r [<!ENTITY % p SYSTEM \"http://127.0.0.1:1/x.dtd\"> %p;]>{body}");
    refused(
        "XXE (parameter entity)",
        lab.verify("both", &param),
        "dtd_forbidden",
    );
    // Billion laughs.
    let mut laughs = String::from("<!DOCTYPE samlp:Response [<!ENTITY lol \"lol\">");
    for i in 1..10 {
        let prev = if i == 1 {
            "lol".to_owned()
        } else {
            format!("lol{}", i - 1)
        };
        laughs.push_str(&format!(
            "<!ENTITY lol{i} \"{}\">",
            format!("&{prev};").repeat(10)
        ));
    }
    laughs.push_str("]>");
    let bomb = format!("{laughs}{}", body.replacen(">alice<", ">&lol9;<", 1));
    refused("billion laughs", lab.verify("both", &bomb), "dtd_forbidden");
    // An entity reference without any DTD (undeclared entity).
    refused(
        "undeclared entity",
        lab.verify("both", &body.replacen(">alice<", ">&ent;<", 1)),
        "dtd_forbidden",
    );

    // Malformed base64 and non-XML.
    let sp_both = sp("both");
    let expect = expectations(
        &lab.metadata,
        &sp_both,
        InResponseTo::IdpInitiatedOnly,
        Utc::now(),
    );
    refused(
        "malformed base64",
        verify_response("PHNhbWxwOl*!!", &expect),
        "malformed_base64",
    );
    let b64 = encode_response(&xml);
    refused(
        "truncated base64",
        verify_response(&b64[..b64.len() - 3], &expect),
        "malformed_base64",
    );
    refused("empty", verify_response("", &expect), "malformed_base64");
    refused(
        "not XML",
        verify_response(&encode_response("hello"), &expect),
        "malformed_xml",
    );
    refused(
        "not UTF-8 (Latin-1 declared)",
        verify_response(
            &encode_response(&format!(
                "<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>{body}"
            )),
            &expect,
        ),
        "malformed_xml",
    );
    // Line-wrapped base64 (as some IdPs send it) is fine.
    let wrapped: String = b64
        .as_bytes()
        .chunks(76)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect::<Vec<_>>()
        .join("\r\n");
    accepted("line-wrapped base64", verify_response(&wrapped, &expect));

    // The cap: 100,000 characters as received, checked before decoding.
    assert!(b64.len() < 100_000);
    let padded_to = |n: usize| format!("{b64}{}", "\n".repeat(n - b64.len()));
    accepted(
        "exactly 100,000 characters",
        verify_response(&padded_to(100_000), &expect),
    );
    refused(
        "100,001 characters",
        verify_response(&padded_to(100_001), &expect),
        "too_large",
    );
    refused(
        "a megabyte of base64",
        verify_response(&"A".repeat(1_000_000), &expect),
        "too_large",
    );
}
