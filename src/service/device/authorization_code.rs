//! The authorization code grant with PKCE (RFC 6749 §4.1, RFC 7636) for native apps
//! on a loopback redirect (RFC 8252 §7.3), as the AWS CLI v2's default `aws sso
//! login` speaks it: RegisterClient with `grantTypes: ["authorization_code",
//! "refresh_token"]` and `redirectUris: ["http://127.0.0.1/oauth/callback"]`, the
//! browser at `/authorize`, then CreateToken with `grantType: "authorization_code"`.
//!
//! Codes live in the cache under their hash for [`CODE_SECONDS`], are single-use, and
//! are bound to the client, the redirect URI and the PKCE S256 challenge. Tokens come
//! from the same [`DeviceService::begin_sign_in`] as the device grant's.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::approval::Approver;
use super::client::{redirect_uri_registered, valid_scope};
use super::{DeviceError, DeviceService, Registration, Tokens, same};
use crate::cache::digest;
use crate::idp::identity::Identity;

/// How long an authorization code can be exchanged (RFC 6749 §4.1.2: at most 10 min).
const CODE_SECONDS: i64 = 120;
/// How long an exchanged code is remembered, so that presenting it again ends the
/// sign-in it started (RFC 6749 §4.1.2 allows codes up to 10 minutes).
const REPLAY_WATCH_SECONDS: i64 = 600;
/// The longest `state` carried back to the client.
const STATE_LIMIT: usize = 512;

/// RFC 7636 §4.1: 43 to 128 characters of `[A-Za-z0-9-._~]`.
fn valid_verifier(verifier: &str) -> bool {
    (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
}

/// An S256 challenge: base64url (no padding) of a SHA-256 digest.
fn valid_challenge(challenge: &str) -> bool {
    challenge.len() == 43
        && challenge
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// RFC 7636 §4.6: `BASE64URL(SHA256(verifier)) == challenge`, compared in constant time.
fn pkce_s256_matches(verifier: &str, challenge: &str) -> bool {
    valid_verifier(verifier)
        && same(
            &URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes())),
            challenge,
        )
}

/// The query of `/authorize` (and the hidden fields of its approval form).
#[derive(Debug, Default, Deserialize)]
pub struct AuthorizeParams {
    response_type: Option<String>,
    client_id: Option<String>,
    redirect_uri: Option<String>,
    state: Option<String>,
    code_challenge: Option<String>,
    code_challenge_method: Option<String>,
    /// AWS's name (space-separated); `scope` is RFC 6749's.
    scopes: Option<String>,
    scope: Option<String>,
}

/// An `/authorize` request that may be shown for approval.
pub struct AuthorizationRequest {
    /// The client id as sent (it carries the sealed registration).
    pub client_id: String,
    /// The short id (`rgc-...`), shown to people.
    pub short_client_id: String,
    pub client_name: String,
    pub redirect_uri: String,
    pub state: Option<String>,
    pub code_challenge: String,
    /// The requested scopes, space-separated.
    pub scopes: String,
}

impl AuthorizationRequest {
    /// The refusal that goes back to this (trusted) client's redirect URI.
    pub fn refusal(self, error: &'static str, description: &str) -> Refusal {
        Refusal::Redirect(Box::new(RedirectRefusal {
            client_name: self.client_name,
            client_id: self.short_client_id,
            redirect_uri: self.redirect_uri,
            state: self.state,
            error,
            description: description.to_owned(),
        }))
    }
}

/// Why a request is refused: on a page (the client or its redirect URI cannot be
/// trusted: never redirect there), or back at the client's redirect URI with an
/// RFC 6749 §4.1.2.1 error.
pub enum Refusal {
    Page { reason: &'static str },
    Redirect(Box<RedirectRefusal>),
}

/// An RFC 6749 §4.1.2.1 error for a trusted client's redirect URI.
pub struct RedirectRefusal {
    pub client_name: String,
    /// The short client id.
    pub client_id: String,
    pub redirect_uri: String,
    pub state: Option<String>,
    pub error: &'static str,
    pub description: String,
}

/// What an authorization code stands for, under the hash of the code.
#[derive(Debug, Serialize, Deserialize)]
struct CodeRecord {
    client_id: String,
    redirect_uri: String,
    code_challenge: String,
    identity: Identity,
    signed_in_at: i64,
    valid_from_ms: i64,
    expires_at: i64,
}

fn code_key(code_hash: &str) -> String {
    format!("sso-auth-code:{code_hash}")
}

/// What CreateToken's authorization-code grant presents.
pub struct CodeExchange<'a> {
    pub code: &'a str,
    pub redirect_uri: &'a str,
    pub code_verifier: &'a str,
}

impl DeviceService {
    /// Checks an `/authorize` request: the client (its id carries its registration),
    /// its redirect URI, then the rest, which a trusted client hears back about.
    pub fn check_authorization(
        &self,
        params: &AuthorizeParams,
    ) -> Result<AuthorizationRequest, Refusal> {
        let page = |reason| Err(Refusal::Page { reason });
        let Some(client_id) = params.client_id.as_deref().filter(|c| c.len() <= 4096) else {
            return page("missing client_id");
        };
        let Some(registration) = self.open_client_id(client_id) else {
            return page("unknown or expired client");
        };
        let Some(redirect_uri) = params.redirect_uri.as_deref() else {
            return page("missing redirect_uri");
        };
        if !redirect_uri_registered(&registration.redirect_uris, redirect_uri) {
            return page("redirect_uri is not a loopback URI registered by the client");
        }
        let client_state = params.state.clone().filter(|s| !s.is_empty());
        let mut request = AuthorizationRequest {
            client_id: client_id.to_owned(),
            short_client_id: registration.id,
            client_name: registration.name,
            redirect_uri: redirect_uri.to_owned(),
            state: client_state.clone().filter(|s| s.len() <= STATE_LIMIT),
            code_challenge: String::new(),
            scopes: String::new(),
        };
        if client_state.is_some_and(|s| s.len() > STATE_LIMIT) {
            return Err(request.refusal("invalid_request", "state is too long"));
        }
        match params.response_type.as_deref() {
            Some("code") => {}
            None => return Err(request.refusal("invalid_request", "response_type is required")),
            Some(_) => {
                return Err(request.refusal(
                    "unsupported_response_type",
                    "only response_type=code is supported",
                ));
            }
        }
        if params.code_challenge_method.as_deref() != Some("S256") {
            return Err(request.refusal(
                "invalid_request",
                "PKCE is required with code_challenge_method=S256",
            ));
        }
        let Some(challenge) = params
            .code_challenge
            .as_deref()
            .filter(|c| valid_challenge(c))
        else {
            return Err(request.refusal(
                "invalid_request",
                "code_challenge must be the base64url SHA-256 of the code verifier",
            ));
        };
        let scopes = params
            .scopes
            .as_deref()
            .or(params.scope.as_deref())
            .unwrap_or("");
        let requested: Vec<&str> = scopes.split_whitespace().collect();
        if requested.len() > 25
            || requested.iter().any(|s| {
                !valid_scope(s)
                    || (!registration.scopes.is_empty()
                        && !registration.scopes.iter().any(|r| r == s))
            })
        {
            return Err(request.refusal(
                "invalid_scope",
                "a requested scope is not registered for this client",
            ));
        }
        request.code_challenge = challenge.to_owned();
        request.scopes = requested.join(" ");
        Ok(request)
    }

    /// A new single-use code for an approved request.
    pub async fn issue_code(
        &self,
        request: &AuthorizationRequest,
        approver: Approver,
    ) -> Result<String, DeviceError> {
        let code = self.new_token("rgac-");
        let record = CodeRecord {
            client_id: request.client_id.clone(),
            redirect_uri: request.redirect_uri.clone(),
            code_challenge: request.code_challenge.clone(),
            identity: approver.identity,
            signed_in_at: approver.signed_in_at,
            valid_from_ms: approver.valid_from_ms,
            expires_at: self.now() + CODE_SECONDS,
        };
        self.put_json(&code_key(&digest(&code)), &record, CODE_SECONDS)
            .await?;
        Ok(code)
    }

    /// CreateToken, `grantType: "authorization_code"`: the code's first presentation
    /// spends it whatever follows (a wrong verifier or client cannot try again), and
    /// only the client it was issued to, with the same redirect URI and the verifier of
    /// its challenge, gets tokens. A code presented again after it was exchanged ends
    /// the sign-in it started (RFC 6749 §4.1.2): whoever holds a copy must not keep it.
    pub(super) async fn redeem_code(
        &self,
        registration: &Registration,
        input: &CodeExchange<'_>,
    ) -> Result<(Identity, Tokens), DeviceError> {
        let invalid = || {
            DeviceError::InvalidGrant("The authorization code is invalid, expired or already used")
        };
        let hash = digest(input.code);
        let issued = format!("sso-auth-code-grant:{hash}");
        let Some(record) = self.get_json::<CodeRecord>(&code_key(&hash)).await? else {
            if let Some(grant_id) = self.get_text(&issued).await? {
                self.end_family(&grant_id).await?;
                return Err(DeviceError::InvalidGrant(
                    "The authorization code was already used, so the sign-in it started has been ended",
                ));
            }
            return Err(invalid());
        };
        if !self
            .first(&format!("sso-auth-code-used:{hash}"), "1", CODE_SECONDS)
            .await?
        {
            return Err(invalid());
        }
        let _ = self.cache.delete(&code_key(&hash)).await;
        if record.expires_at <= self.now() {
            return Err(invalid());
        }
        if !same(&record.client_id, &registration.client_id) {
            return Err(DeviceError::InvalidGrant(
                "The authorization code was issued to another client",
            ));
        }
        if !same(&record.redirect_uri, input.redirect_uri) {
            return Err(DeviceError::InvalidGrant(
                "redirectUri is not the one the authorization code was issued for",
            ));
        }
        if !pkce_s256_matches(input.code_verifier, &record.code_challenge) {
            return Err(DeviceError::InvalidGrant(
                "codeVerifier does not match the code challenge",
            ));
        }
        let approver = Approver {
            identity: record.identity,
            signed_in_at: record.signed_in_at,
            valid_from_ms: record.valid_from_ms,
        };
        let (grant_id, tokens) = self.begin_sign_in(registration, &approver).await?;
        self.cache
            .put(
                &issued,
                grant_id.as_bytes(),
                super::ttl(REPLAY_WATCH_SECONDS),
            )
            .await?;
        Ok((approver.identity, tokens))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_s256_is_rfc_7636_appendix_b() {
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        assert!(pkce_s256_matches(verifier, challenge));
        assert!(!pkce_s256_matches(
            verifier,
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cN"
        ));
        assert!(!pkce_s256_matches("short", challenge));
        assert!(valid_challenge(challenge));
        assert!(!valid_challenge("too-short"));
        assert!(!valid_challenge(&"a".repeat(44)));
        assert!(!valid_challenge(
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw+cM"
        ));
    }
}
