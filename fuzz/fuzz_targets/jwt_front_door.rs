//! The web identity token front door, before and around signature verification:
//! the input is the `WebIdentityToken` parameter. AssumeRoleWithWebIdentity's
//! parameter checks, the unverified header/claims decoding (`alg`, `kid`, `iss`,
//! key-carrying headers), the issuer URL rules, a signature check against a fixed
//! EC P-256 key set (hostile `kid`/`alg`/signature bytes), then the claim checks
//! (`aud`, `sub`, `exp`/`nbf`/`iat` at edge times) and the trust-policy context.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use rolegate::iam::ProviderUrlKind;
use rolegate::sts::web_identity::jwt::{KeySet, UnverifiedToken, validate_claims};
use rolegate::sts::web_identity::{WebIdentityParams, provider_url, trust_context, validate};

static KEYS: LazyLock<Option<KeySet>> = LazyLock::new(|| {
    KeySet::from_jwks(&serde_json::json!({"keys": [{
        "kty": "EC", "crv": "P-256", "kid": "k1", "alg": "ES256", "use": "sig",
        "x": "Q2rpJvUwK8gR98-Z3oW0KkfAESjM0xLVNtS5cpgscWg",
        "y": "Zhnsmw4JUHTrHp5jb-qH9aiUexh6Wr6fRKehT8x3ReI"
    }]}))
});

fuzz_target!(|data: &[u8]| {
    let Ok(raw) = std::str::from_utf8(data) else {
        return;
    };
    let params = WebIdentityParams {
        role_arn: "arn:aws:iam::111122223333:role/ci".into(),
        role_session_name: "fuzz".into(),
        web_identity_token: raw.to_owned(),
        ..WebIdentityParams::default()
    };
    let Ok((_, token, _)) = validate(&params) else {
        return;
    };
    let Ok(token) = UnverifiedToken::parse(token) else {
        return;
    };
    let _ = provider_url(&token.issuer, "issuer", ProviderUrlKind::Issuer);
    if let Some(keys) = KEYS.as_ref() {
        let _ = keys.verify(&token);
    }
    let client_ids = ["sts.amazonaws.com".to_owned(), "rolegate".to_owned()];
    for now in [0, 1_767_225_600, i64::MAX, i64::MIN] {
        if let Ok(claims) = validate_claims(&token.claims, &token.issuer, &client_ids, now) {
            let _ = trust_context(
                "arn:aws:iam::111122223333:oidc-provider/idp.example.com",
                "idp.example.com",
                &claims,
                "fuzz",
                Some("192.0.2.10"),
                now,
            );
        }
    }
});
