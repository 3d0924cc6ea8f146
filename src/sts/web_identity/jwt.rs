//! Pure checks of a web identity token (a compact JWS), without I/O or a clock of
//! their own: the header is read without trusting it, the signature is verified with
//! the identity provider's published keys only, then the claims are checked against
//! the IAM OIDC provider and the time passed in.
//!
//! Refused outright, whatever keys the provider publishes: `alg: none`, HMAC
//! algorithms (a public key must never become an HMAC secret), EdDSA and anything
//! unknown, headers that carry or point to their own key (`jwk`, `jku`, `x5u`, `x5c`),
//! and `crit` extensions (none are understood).

use std::str::FromStr;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey};
use serde_json::{Map, Value};

use crate::sts::error::StsError;

/// Clock skew tolerated on `exp`, `nbf` and `iat`, in seconds.
pub const MAX_CLOCK_SKEW: i64 = 60;

/// The signature algorithms a web identity token may use.
pub const ALLOWED_ALGORITHMS: [Algorithm; 8] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
];

/// Header parameters that would let a token choose its own verification key.
const KEY_CARRYING_HEADERS: [&str; 4] = ["jwk", "jku", "x5u", "x5c"];

/// `InvalidIdentityToken` (400), the code AWS uses for every token that is refused.
pub fn invalid_token(message: impl Into<String>) -> StsError {
    StsError::new("InvalidIdentityToken", 400, message)
}

fn not_a_jwt() -> StsError {
    invalid_token(
        "The ID Token provided is not a valid JWT. (You may see this error if you sent an Access Token)",
    )
}

fn decode_part(part: &str) -> Result<Vec<u8>, StsError> {
    URL_SAFE_NO_PAD.decode(part).map_err(|_| not_a_jwt())
}

fn json_object(part: &str) -> Result<Map<String, Value>, StsError> {
    match serde_json::from_slice::<Value>(&decode_part(part)?) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(not_a_jwt()),
    }
}

/// A token whose structure and header were checked but whose signature was not yet.
#[derive(Debug, Clone)]
pub struct UnverifiedToken<'a> {
    /// `base64url(header) . base64url(payload)`: what the signature covers.
    signing_input: &'a str,
    signature: &'a str,
    pub algorithm: Algorithm,
    pub key_id: Option<String>,
    /// The `iss` claim (needed to find the keys; trusted only after verification).
    pub issuer: String,
    pub claims: Map<String, Value>,
}

impl<'a> UnverifiedToken<'a> {
    /// Splits and decodes `token` and checks its header. Nothing here is trusted yet.
    pub fn parse(token: &'a str) -> Result<Self, StsError> {
        let mut parts = token.split('.');
        let (Some(header), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(not_a_jwt());
        };
        let header_map = json_object(header)?;
        let algorithm = check_header(&header_map)?;
        let key_id = match header_map.get("kid") {
            None => None,
            Some(Value::String(kid)) => Some(kid.clone()),
            Some(_) => return Err(not_a_jwt()),
        };
        if signature.is_empty() {
            return Err(invalid_token("The web identity token has no signature."));
        }
        let claims = json_object(payload)?;
        let issuer = match claims.get("iss") {
            Some(Value::String(iss)) if !iss.is_empty() => iss.clone(),
            Some(_) => return Err(invalid_token("The iss claim must be a non-empty string.")),
            None => return Err(invalid_token("Missing a required claim: iss")),
        };
        Ok(Self {
            signing_input: &token[..header.len() + 1 + payload.len()],
            signature,
            algorithm,
            key_id,
            issuer,
            claims,
        })
    }
}

/// The header's algorithm, once the header is known not to choose its own key.
fn check_header(header: &Map<String, Value>) -> Result<Algorithm, StsError> {
    let Some(Value::String(alg)) = header.get("alg") else {
        return Err(not_a_jwt());
    };
    if alg.eq_ignore_ascii_case("none") {
        return Err(invalid_token(
            "The web identity token is unsigned (alg \"none\"); it must be signed with a key of the identity provider.",
        ));
    }
    if alg.to_ascii_uppercase().starts_with("HS") {
        return Err(invalid_token(format!(
            "The web identity token uses the HMAC algorithm {alg}; only signatures that verify with the identity provider's published public keys (RS*, PS*, ES256, ES384) are accepted."
        )));
    }
    let algorithm = Algorithm::from_str(alg)
        .ok()
        .filter(|a| ALLOWED_ALGORITHMS.contains(a))
        .ok_or_else(|| {
            invalid_token(format!(
                "The web identity token's signature algorithm {alg:?} is not supported; use RS256, RS384, RS512, PS256, PS384, PS512, ES256 or ES384."
            ))
        })?;
    if let Some(name) = KEY_CARRYING_HEADERS
        .iter()
        .find(|h| header.contains_key(**h))
    {
        return Err(invalid_token(format!(
            "The web identity token's header carries its own key ({name}); tokens are verified only with the keys the identity provider publishes in its JWKS."
        )));
    }
    if header.contains_key("crit") {
        return Err(invalid_token(
            "The web identity token has critical header parameters (crit), which are not supported.",
        ));
    }
    Ok(algorithm)
}

/// One public key of a provider's JWKS, usable for signatures.
struct VerificationKey {
    key_id: Option<String>,
    /// The JWK's own `alg`, when it names one.
    algorithm: Option<Algorithm>,
    family: AlgorithmFamily,
    /// EC keys: the algorithm their curve goes with.
    curve_algorithm: Option<Algorithm>,
    key: DecodingKey,
}

impl VerificationKey {
    fn fits(&self, algorithm: Algorithm) -> bool {
        self.family == algorithm.family()
            && self.algorithm.is_none_or(|a| a == algorithm)
            && self.curve_algorithm.is_none_or(|a| a == algorithm)
    }
}

/// The signature keys of one provider, as published in its JWKS. Symmetric keys,
/// encryption keys and key types this verifier does not accept are left out.
#[derive(Default)]
pub struct KeySet {
    keys: Vec<VerificationKey>,
}

impl std::fmt::Debug for KeySet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(
                self.keys
                    .iter()
                    .map(|k| k.key_id.as_deref().unwrap_or("(no kid)")),
            )
            .finish()
    }
}

/// Why a signature did not verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureError {
    /// No published key has the token's `kid` and fits its algorithm.
    NoMatchingKey,
    /// A matching key exists but the signature does not verify with it.
    Invalid,
}

fn string_field<'v>(jwk: &'v Map<String, Value>, name: &str) -> Option<&'v str> {
    jwk.get(name).and_then(Value::as_str)
}

fn parse_jwk(jwk: &Map<String, Value>) -> Option<VerificationKey> {
    if string_field(jwk, "use").is_some_and(|u| u != "sig") {
        return None;
    }
    if let Some(ops) = jwk.get("key_ops")
        && !ops
            .as_array()
            .is_some_and(|ops| ops.iter().any(|op| op.as_str() == Some("verify")))
    {
        return None;
    }
    let algorithm = match string_field(jwk, "alg") {
        None => None,
        Some(alg) => Some(
            Algorithm::from_str(alg)
                .ok()
                .filter(|a| ALLOWED_ALGORITHMS.contains(a))?,
        ),
    };
    let (family, curve_algorithm, key) = match string_field(jwk, "kty")? {
        "RSA" => {
            let key =
                DecodingKey::from_rsa_components(string_field(jwk, "n")?, string_field(jwk, "e")?)
                    .ok()?;
            (AlgorithmFamily::Rsa, None, key)
        }
        "EC" => {
            let curve = match string_field(jwk, "crv")? {
                "P-256" => Algorithm::ES256,
                "P-384" => Algorithm::ES384,
                _ => return None,
            };
            let key =
                DecodingKey::from_ec_components(string_field(jwk, "x")?, string_field(jwk, "y")?)
                    .ok()?;
            (AlgorithmFamily::Ec, Some(curve), key)
        }
        // "oct" (a shared secret) never verifies a web identity token; OKP (EdDSA)
        // and anything else is not accepted either.
        _ => return None,
    };
    Some(VerificationKey {
        key_id: string_field(jwk, "kid").map(str::to_owned),
        algorithm,
        family,
        curve_algorithm,
        key,
    })
}

impl KeySet {
    /// The usable keys of a JWKS document (`{"keys": [...]}`); `None` when the
    /// document is not a JWKS at all.
    pub fn from_jwks(document: &Value) -> Option<Self> {
        let keys = document.get("keys")?.as_array()?;
        Some(Self {
            keys: keys
                .iter()
                .filter_map(Value::as_object)
                .filter_map(parse_jwk)
                .collect(),
        })
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Verifies the token's signature with the published keys: the one with its `kid`,
    /// or, for a token without `kid`, each key that fits its algorithm.
    pub fn verify(&self, token: &UnverifiedToken<'_>) -> Result<(), SignatureError> {
        let Ok(signature) = URL_SAFE_NO_PAD.decode(token.signature) else {
            return Err(SignatureError::Invalid);
        };
        let mut candidates = self
            .keys
            .iter()
            .filter(|k| token.key_id.is_none() || k.key_id == token.key_id)
            .filter(|k| k.fits(token.algorithm))
            .peekable();
        if candidates.peek().is_none() {
            return Err(SignatureError::NoMatchingKey);
        }
        let encoded = URL_SAFE_NO_PAD.encode(&signature);
        for candidate in candidates {
            if jsonwebtoken::crypto::verify(
                &encoded,
                token.signing_input.as_bytes(),
                &candidate.key,
                token.algorithm,
            )
            .unwrap_or(false)
            {
                return Ok(());
            }
        }
        Err(SignatureError::Invalid)
    }
}

/// The claims of a verified token that AssumeRoleWithWebIdentity uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedClaims {
    pub issuer: String,
    pub subject: String,
    /// The audience that matched one of the provider's client ids.
    pub audience: String,
    /// Every value of `aud`.
    pub audiences: Vec<String>,
    pub authorized_party: Option<String>,
    pub amr: Vec<String>,
    pub expires_at: i64,
}

/// A string claim or an array of strings, as `aud` and `amr` may be.
fn string_or_array(value: &Value) -> Option<Vec<String>> {
    match value {
        Value::String(s) => Some(vec![s.clone()]),
        Value::Array(items) => items
            .iter()
            .map(|v| v.as_str().map(str::to_owned))
            .collect(),
        _ => None,
    }
}

/// A NumericDate claim (seconds, possibly fractional), if present.
fn numeric_date(claims: &Map<String, Value>, name: &str) -> Result<Option<i64>, StsError> {
    match claims.get(name) {
        None => Ok(None),
        Some(value) => value
            .as_i64()
            .or_else(|| {
                value
                    .as_f64()
                    .filter(|f| f.is_finite())
                    .map(|f| f.floor() as i64)
            })
            .map(Some)
            .ok_or_else(|| invalid_token(format!("The {name} claim must be a number of seconds."))),
    }
}

fn timestamp(seconds: i64) -> String {
    chrono::DateTime::from_timestamp(seconds, 0).map_or_else(
        || seconds.to_string(),
        |t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
    )
}

/// Checks the claims of a token whose signature verified: `iss` exactly, `aud` one of
/// `client_ids`, a `sub`, and `exp`/`nbf`/`iat` against `now` with
/// [`MAX_CLOCK_SKEW`].
pub fn validate_claims(
    claims: &Map<String, Value>,
    issuer: &str,
    client_ids: &[String],
    now: i64,
) -> Result<VerifiedClaims, StsError> {
    if claims.get("iss").and_then(Value::as_str) != Some(issuer) {
        return Err(invalid_token(
            "The token's iss claim does not match the identity provider.",
        ));
    }
    let audiences = match claims.get("aud") {
        None => return Err(invalid_token("Missing a required claim: aud")),
        Some(value) => string_or_array(value)
            .filter(|a| !a.is_empty())
            .ok_or_else(|| {
                invalid_token("The aud claim must be a string or an array of strings.")
            })?,
    };
    let audience = audiences
        .iter()
        .find(|a| client_ids.contains(a))
        .cloned()
        .ok_or_else(|| invalid_token("Incorrect token audience"))?;
    let subject = match claims.get("sub") {
        Some(Value::String(sub)) if !sub.is_empty() => sub.clone(),
        Some(_) => return Err(invalid_token("The sub claim must be a non-empty string.")),
        None => return Err(invalid_token("Missing a required claim: sub")),
    };
    let expires_at = numeric_date(claims, "exp")?
        .ok_or_else(|| invalid_token("Missing a required claim: exp"))?;
    if now > expires_at.saturating_add(MAX_CLOCK_SKEW) {
        return Err(StsError::new(
            "ExpiredTokenException",
            400,
            format!(
                "Token expired: current date/time {} must be before the expiration date/time {}",
                timestamp(now),
                timestamp(expires_at)
            ),
        ));
    }
    if let Some(not_before) = numeric_date(claims, "nbf")?
        && now.saturating_add(MAX_CLOCK_SKEW) < not_before
    {
        return Err(invalid_token(format!(
            "Token is not valid yet: current date/time {} is before its not-before date/time {}",
            timestamp(now),
            timestamp(not_before)
        )));
    }
    if let Some(issued_at) = numeric_date(claims, "iat")?
        && now.saturating_add(MAX_CLOCK_SKEW) < issued_at
    {
        return Err(invalid_token(format!(
            "Token was issued in the future: its iat {} is after the current date/time {}",
            timestamp(issued_at),
            timestamp(now)
        )));
    }
    Ok(VerifiedClaims {
        issuer: issuer.to_owned(),
        subject,
        audience,
        audiences,
        authorized_party: claims.get("azp").and_then(Value::as_str).map(str::to_owned),
        amr: claims
            .get("amr")
            .and_then(string_or_array)
            .unwrap_or_default(),
        expires_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn encode(value: &Value) -> String {
        URL_SAFE_NO_PAD.encode(value.to_string())
    }

    fn token(header: Value, claims: Value) -> String {
        format!("{}.{}.c2ln", encode(&header), encode(&claims))
    }

    fn claims() -> Value {
        json!({"iss": "https://idp.example.test", "sub": "user-1", "aud": "sts", "exp": 2_000, "iat": 1_000})
    }

    fn code(result: Result<impl std::fmt::Debug, StsError>) -> &'static str {
        result.expect_err("must be refused").code
    }

    #[test]
    fn header_checks_refuse_dangerous_tokens() {
        for header in [
            json!({"alg": "none"}),
            json!({"alg": "None"}),
            json!({"alg": "HS256"}),
            json!({"alg": "HS512"}),
            json!({"alg": "EdDSA"}),
            json!({"alg": "RS256", "jwk": {"kty": "RSA", "n": "AQAB", "e": "AQAB"}}),
            json!({"alg": "RS256", "jku": "https://evil.test/jwks"}),
            json!({"alg": "RS256", "x5u": "https://evil.test/cert"}),
            json!({"alg": "RS256", "x5c": ["MIIB"]}),
            json!({"alg": "RS256", "crit": ["exp"], "exp": 1}),
            json!({"alg": 5}),
        ] {
            let t = token(header.clone(), claims());
            assert_eq!(
                code(UnverifiedToken::parse(&t)),
                "InvalidIdentityToken",
                "{header}"
            );
        }
        let ok = token(json!({"alg": "RS256", "kid": "k1"}), claims());
        let parsed = UnverifiedToken::parse(&ok).unwrap();
        assert_eq!(parsed.algorithm, Algorithm::RS256);
        assert_eq!(parsed.key_id.as_deref(), Some("k1"));
        assert_eq!(parsed.issuer, "https://idp.example.test");
    }

    #[test]
    fn malformed_tokens_are_not_jwts() {
        for t in ["abcd", "a.b", "a.b.c.d.e", "!!.??.sig", "e30.e30.c2ln"] {
            let error = UnverifiedToken::parse(t).unwrap_err();
            assert_eq!(error.code, "InvalidIdentityToken", "{t}");
        }
        let unsigned = format!(
            "{}.{}.",
            encode(&json!({"alg": "RS256"})),
            encode(&claims())
        );
        assert_eq!(
            code(UnverifiedToken::parse(&unsigned)),
            "InvalidIdentityToken"
        );
        let no_iss = token(json!({"alg": "RS256"}), json!({"sub": "x"}));
        assert!(
            UnverifiedToken::parse(&no_iss)
                .unwrap_err()
                .message
                .contains("iss")
        );
    }

    #[test]
    fn claims_are_checked_against_provider_and_clock() {
        let c = |v: Value| v.as_object().cloned().unwrap();
        let ids = vec!["sts".to_owned()];
        let iss = "https://idp.example.test";
        let ok = validate_claims(&c(claims()), iss, &ids, 1_500).unwrap();
        assert_eq!(
            (ok.subject.as_str(), ok.audience.as_str()),
            ("user-1", "sts")
        );
        // Skew: 60 s after exp is still fine, 61 s is not.
        assert!(validate_claims(&c(claims()), iss, &ids, 2_060).is_ok());
        assert_eq!(
            code(validate_claims(&c(claims()), iss, &ids, 2_061)),
            "ExpiredTokenException"
        );
        assert_eq!(
            code(validate_claims(&c(claims()), "https://other", &ids, 1_500)),
            "InvalidIdentityToken"
        );
        let wrong_aud =
            validate_claims(&c(claims()), iss, &["other".to_owned()], 1_500).unwrap_err();
        assert_eq!(wrong_aud.message, "Incorrect token audience");
        let mut multi = c(claims());
        multi.insert("aud".into(), json!(["a", "sts"]));
        multi.insert("amr".into(), json!(["pwd", "mfa"]));
        let v = validate_claims(&multi, iss, &ids, 1_500).unwrap();
        assert_eq!(v.audiences, vec!["a", "sts"]);
        assert_eq!(v.amr, vec!["pwd", "mfa"]);
        let mut future = c(claims());
        future.insert("nbf".into(), json!(1_200));
        assert!(validate_claims(&future, iss, &ids, 1_140).is_ok());
        assert_eq!(
            code(validate_claims(&future, iss, &ids, 1_139)),
            "InvalidIdentityToken"
        );
        let mut issued_later = c(claims());
        issued_later.insert("iat".into(), json!(1_900.5));
        assert_eq!(
            code(validate_claims(&issued_later, iss, &ids, 1_800)),
            "InvalidIdentityToken"
        );
        for missing in ["sub", "aud", "exp"] {
            let mut m = c(claims());
            m.remove(missing);
            let e = validate_claims(&m, iss, &ids, 1_500).unwrap_err();
            assert!(e.message.contains(missing), "{missing}: {e}");
        }
    }

    #[test]
    fn key_sets_keep_only_signature_keys() {
        let jwks = json!({"keys": [
            {"kty": "oct", "k": "c2VjcmV0", "kid": "hmac"},
            {"kty": "RSA", "use": "enc", "kid": "enc", "n": "AQAB", "e": "AQAB"},
            {"kty": "RSA", "alg": "RSA-OAEP", "kid": "oaep", "n": "AQAB", "e": "AQAB"},
            {"kty": "OKP", "crv": "Ed25519", "x": "AQAB", "kid": "ed"},
            {"kty": "RSA", "kid": "sig", "n": "AQAB", "e": "AQAB"},
            "garbage"
        ]});
        let set = KeySet::from_jwks(&jwks).unwrap();
        assert_eq!(format!("{set:?}"), "[\"sig\"]");
        assert!(KeySet::from_jwks(&json!({"nope": []})).is_none());
        let t = token(json!({"alg": "RS256", "kid": "hmac"}), claims());
        let parsed = UnverifiedToken::parse(&t).unwrap();
        assert_eq!(set.verify(&parsed), Err(SignatureError::NoMatchingKey));
        let t = token(json!({"alg": "ES256", "kid": "sig"}), claims());
        let parsed = UnverifiedToken::parse(&t).unwrap();
        assert_eq!(set.verify(&parsed), Err(SignatureError::NoMatchingKey));
        let t = token(json!({"alg": "RS256", "kid": "sig"}), claims());
        let parsed = UnverifiedToken::parse(&t).unwrap();
        assert_eq!(set.verify(&parsed), Err(SignatureError::Invalid));
    }
}
