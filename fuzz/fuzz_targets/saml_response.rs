//! The SAML front door: base64 -> size cap -> DTD refusal -> strict parse ->
//! structure (one assertion, signature placement, references, algorithms) -> xmlsec
//! signature check -> decryption -> conditions, with a fixed test IdP (its
//! certificate below; seeds are real simplesamlphp responses it signed), a fixed SP
//! decryption key and a fixed clock (when the seeds were issued).
//!
//! Input: first byte selects what the rest is: 0 the base64 `SAMLResponse` text as an
//! ACS or the STS receives it; 1 the response XML itself (base64-encoded by
//! `verify_response`'s caller path: `verify_response_xml`), so mutations work on
//! the XML; 2 IdP metadata XML. The second byte selects the SP and the
//! InResponseTo expectation.
#![no_main]

use std::sync::LazyLock;
use std::time::Duration;

use chrono::{DateTime, Utc};
use libfuzzer_sys::fuzz_target;
use rolegate::idp::saml::verify::verify_response_xml;
use rolegate::idp::saml::{Expectations, IdpMetadata, InResponseTo, parse_idp_metadata, verify_response};

/// The test IdP's signing certificate (simplesamlphp, generated for the seeds).
const IDP_CERT_PEM: &str = "-----BEGIN CERTIFICATE-----
MIICuDCCAaCgAwIBAgIIdJJgNkJl1BswDQYJKoZIhvcNAQELBQAwHDEaMBgGA1UE
AwwRcm9sZWdhdGUtdGVzdC1pZHAwHhcNMjYxMjA3MjIyODU1WhcNMjcwMTA2MjIy
ODU1WjAcMRowGAYDVQQDDBFyb2xlZ2F0ZS10ZXN0LWlkcDCCASIwDQYJKoZIhvcN
AQEBBQADggEPADCCAQoCggEBAJ+v8A+vXKwSevwVj31FpxGdls4qlO9RdRK1ZrXZ
LvAV1nT1UvnMbuVUDs8977Z1bqx26mzmflGcu7IFuo9YKLzK3R9VOF7TmCXKVEnb
9xFH9F495hCfiTS+hzPx1cT5YEwxoAhUv49DWp+pwrdfe7STTXx2Bl1NXUctZSGL
qqp2vTwVVmgVlEHMcN9+x62Qk2lzKeoZAtrKdWGNDqGOgLMDCSCDo9Zxy533mFeP
FfhaW+wYhnkx13gYqU5srU69QDqNjZTYHngAkL4PX+P/OwEgVGEaz8lwaiWwseJP
3xPB/KG82KQYyjpufejfBBfDjusU8bs81HU/IUjuwypG45MCAwEAATANBgkqhkiG
9w0BAQsFAAOCAQEAmXYJn54GKgFlOa+5HTsGGe5bJSYcjxrVmj3EEzI1kgZ9lzqV
TdqByjB/VTrrAkB8ySg80uLfJ3mGCZPBRF1OI9E+JARDfSKJsU0Bxd9a3/Wxvae7
q7oCyLyCxdE0DHLeOVtEeOJemVIukqNDMtviP5ySGZ6zYcS/StO7iXTkoJckcUJg
GkbNzDWqpaUDlxxOHu1yzH58YCqoaQTiW0WKMKg2yZ66VNCmWYmVMAgS4cnhR0Qm
H6O5I+0egwRn0H3wZ6bVTk88GCDdgC1NBPh3PkELoDeICy/wSPuKoDGw62Nvcsa/
Rpf4zpeaYppIkwIED0+21r3Q5dy3KpsPkjYX5A==
-----END CERTIFICATE-----";
const IDP_ENTITY_ID: &str = "http://127.0.0.1:34311/saml2/idp/metadata.php";
/// The SP's test decryption key (for the encrypted seed). Test material only.
const SP_KEY_PEM: &str = "-----BEGIN PRIVATE KEY-----
MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC1CMdv2B8THg7h
Ktlt9S/m2YeZ1H6LCvPXmOrCiet/rQnQ8F+GxhIZytbt7vqd+IaWLeQcwDNtTD0w
uWmYwWmQntyNtI+gv6V8py+Pab/4wckMzwki8iR+KkG5PkhsZC7475r3VxSMHTVC
8QicCMen0rHD4U44w1wG6cUUntkvZWRa7sV5EGSPS5E+fIU20YWA1OeddjpUswBc
tlBThBFAAq2qDK3MBtE8LA9CB0GlI18JIW029UtEZ6idInWENVI4nvX2I19K50/i
i9VhP4pAkXjfwo4bI107W72F4nv/8Le017ksn5Q+T+VRMqP7rN3L+jc7uuzMBJPN
Fv6fNw8hAgMBAAECggEAJ0GMV7suf9uCf/6l7/NdTAqLHkcnGpkJJ8z7ySwVolXA
PWvGVygPyEKFKUqrU0KPUrUIVFi0PiTsVuq51HtKXCcqrdrD02iDZtytEkTs8TD6
WxnxAgAufCJHJrd0BncR/X6dpLlgFgMGZ+nzAzzfKIvmatKqPuJUDBa4mwBYGa/d
3lCq7ta3TlMHawtmarp02g8SJPvtDjIyoJgoBaBrpsnJJYfuwL2EF6dR+bGVa0Tt
zxwMXAR5Ni3Btuf18BOqMeLGmXG1oYGyU3vXtPnWqNB2I6WpO67a8qbmPU6BKFZ6
MsvcUmIdOYmTIjLZa0BZ0Mu0oTvLM8z4IDBwGmKIXQKBgQDrbFRopGr1fCgf8HrB
+rNYTytMT1n9xuJn0rKLOAbRgoPu+xFA9ajwuB4VxqrAuqV44CnzMjI59d59WG5A
qPZ9A0n63U9fDvmDSR/hKS5vQiOGj+g7Zx/Il7E49aVs2xheUt5ab5aNWh26GBin
G0HMsTDoxF6VlZvJ6vpxGZZ+HQKBgQDE23sHCOt8wW4tiiP7EQyGppZuhF8Tjn/R
+cW4D2qeG1Sjd8N7fRJMWA6l0hH27FT6pUh+pHnottdjJQFc4M0GcHxRp4BrabNp
AZfQe5K1X+1x+p1aSQu+OWny73Sgz8fzi5N9h15WuxLoOpxI4mwC5wzQn0yEQSyO
U5In4brV1QKBgQCJAOsCVqS0JcPICo+18WqLes8swoURbbt2RiSHZlx5cmXLHqsE
zbG6HLvNWmcmb7g6ZuGi2NRn7JDFC0BmOq3vRIm6By7YmANWhqiZxPhz4N6BwZ+Z
akMR3k1RY4sYlUxSIBGsOYI40ne4Q6udG/yn3XokC5srm/wkfq2uQgDVdQKBgFF8
aJio4JFroCfJnss2a3DxVCO7N3/o5JAOTAG8n+2Ccq6XzJs5UnG3oZiSNE151lNK
R4/klXH2/YFUuBOyGiwoM825ADd2MYWt2yG5hSj+5FLh4nCU+/9p1Kly5VwLpkDx
7cNwXWSZW2I1oKuqzfsFmRBiYFH+iGsBvOY1UhlhAoGAHy95Fq4Ab0gkYyWqqyeI
75XzB8jEhHHIxwfxOZXt5t9/BHKXaY7/iO0sG+0QXKQMyGHbPUMImHv0z36bTDPe
w430aHraJm3aJFObKB6Ob4nUQXy4XiSvYqxhuQPqFy3C3e5a4IqSIHgrXYewBSDo
eYT69LNhwYO/RJRbDZcRZrg=
-----END PRIVATE KEY-----";
/// The AuthnRequest ID the SP-initiated seed answers.
const REQUEST_ID: &str = "_reqd9ff52e0c47ad2a44d8ddf63";
/// When the seeds were issued.
const NOW: &str = "2026-12-07T22:29:00Z";

static IDP: LazyLock<IdpMetadata> = LazyLock::new(|| {
    let der = openssl_free_der(IDP_CERT_PEM);
    IdpMetadata {
        entity_id: IDP_ENTITY_ID.to_owned(),
        signing_certs: vec![der],
        sso_redirect_url: None,
        sso_post_url: None,
        slo_redirect_url: None,
        want_authn_requests_signed: false,
    }
});

/// PEM certificate -> DER, without another dependency.
fn openssl_free_der(pem: &str) -> Vec<u8> {
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    rolegate::idp::saml::metadata::certificate_der(&body).unwrap_or_default()
}

const SPS: [&str; 4] = ["sp", "enc", "asonly", "rsonly"];

fuzz_target!(|data: &[u8]| {
    let [mode, selector, rest @ ..] = data else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    if mode % 3 == 2 {
        let _ = parse_idp_metadata(text);
        return;
    }
    let sp = SPS[usize::from(selector % 4)];
    let audience = format!("https://{sp}.fuzz.test/saml/metadata");
    let recipient = format!("https://{sp}.fuzz.test/saml/acs");
    let in_response_to = match (selector / 4) % 4 {
        0 => InResponseTo::IdpInitiatedOnly,
        1 => InResponseTo::Expected(REQUEST_ID),
        2 => InResponseTo::Either(Some(REQUEST_ID)),
        _ => InResponseTo::Either(None),
    };
    let now: DateTime<Utc> = NOW.parse().unwrap_or_default();
    let expect = Expectations {
        idp: &IDP,
        audience: &audience,
        recipient: &recipient,
        in_response_to,
        now,
        clock_skew: Duration::from_secs(60),
        decryption_key: Some(SP_KEY_PEM.as_bytes()),
    };
    let result = if mode % 3 == 0 {
        verify_response(text, &expect)
    } else {
        verify_response_xml(text, &expect)
    };
    // Whatever the outcome, it has a code and a message.
    if let Err(e) = result {
        assert!(!e.code().is_empty());
        let _ = e.to_string();
    }
});
