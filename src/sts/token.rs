//! Stateless session tokens: the claims of a temporary session (who, which role, the
//! secret key, times, session policy, tags) sealed with AES-256-GCM under a key ring.
//!
//! Wire form: base64 of `version (1) | key id (u32 BE) | nonce (12) | ciphertext`,
//! with the first five bytes as associated data. Verifying a token needs no database
//! round trip; rotating keys adds a key id and keeps old ones until their tokens expire.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rand::RngCore;
use serde::{Deserialize, Serialize};

const VERSION: u8 = 1;
const HEADER_LEN: usize = 5;
const NONCE_LEN: usize = 12;
/// Generous bound that still stops absurd inputs before any decoding work.
const MAX_TOKEN_LEN: usize = 16 * 1024;

/// What kind of temporary principal a session is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SessionKind {
    /// An assumed-role session (`arn:...:sts::A:assumed-role/Role/Session`).
    #[serde(rename = "r")]
    AssumedRole,
    /// GetSessionToken for an IAM user: same principal, temporary keys.
    #[serde(rename = "u")]
    UserSession,
}

/// Everything a session token carries. Short serde names keep tokens small.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionClaims {
    #[serde(rename = "ak")]
    pub access_key_id: String,
    #[serde(rename = "sk")]
    pub secret_access_key: String,
    #[serde(rename = "k")]
    pub kind: SessionKind,
    #[serde(rename = "a")]
    pub account: String,
    /// The caller's ARN as GetCallerIdentity reports it.
    #[serde(rename = "p")]
    pub principal_arn: String,
    /// `AROA...:session` for roles, the user id for user sessions.
    #[serde(rename = "u")]
    pub principal_id: String,
    #[serde(rename = "r", default, skip_serializing_if = "Option::is_none")]
    pub role_arn: Option<String>,
    #[serde(rename = "n", default, skip_serializing_if = "Option::is_none")]
    pub session_name: Option<String>,
    /// Unix seconds.
    #[serde(rename = "iat")]
    pub issued_at: i64,
    /// Unix seconds.
    #[serde(rename = "exp")]
    pub expires_at: i64,
    #[serde(rename = "pol", default, skip_serializing_if = "Option::is_none")]
    pub session_policy: Option<String>,
    #[serde(rename = "pa", default, skip_serializing_if = "Vec::is_empty")]
    pub policy_arns: Vec<String>,
    #[serde(rename = "t", default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<(String, String)>,
    #[serde(rename = "tt", default, skip_serializing_if = "Vec::is_empty")]
    pub transitive_tag_keys: Vec<String>,
    #[serde(rename = "si", default, skip_serializing_if = "Option::is_none")]
    pub source_identity: Option<String>,
    /// The identity-source subject (e.g. an OIDC `iss|sub`), for audit and portal use.
    #[serde(rename = "sub", default, skip_serializing_if = "Option::is_none")]
    pub identity_subject: Option<String>,
    /// Issued by role chaining (assumed with role credentials): capped at one hour.
    #[serde(rename = "ch", default, skip_serializing_if = "std::ops::Not::not")]
    pub chained: bool,
}

impl std::fmt::Debug for SessionClaims {
    // The secret access key stays out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionClaims")
            .field("access_key_id", &self.access_key_id)
            .field("principal_arn", &self.principal_arn)
            .field("issued_at", &self.issued_at)
            .field("expires_at", &self.expires_at)
            .field("tags", &self.tags)
            .field("source_identity", &self.source_identity)
            .finish_non_exhaustive()
    }
}

/// Why a token was refused. Both map to AWS errors: `InvalidClientTokenId` and
/// `ExpiredToken`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("The security token included in the request is invalid.")]
    Invalid,
    #[error("The security token included in the request is expired")]
    Expired,
}

/// The session-token keys: one current key for sealing, all for opening.
#[derive(Clone)]
pub struct TokenKeyring {
    current: u32,
    keys: Vec<(u32, Aes256Gcm)>,
}

impl std::fmt::Debug for TokenKeyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ids: Vec<u32> = self.keys.iter().map(|(id, _)| *id).collect();
        f.debug_struct("TokenKeyring")
            .field("current", &self.current)
            .field("key_ids", &ids)
            .finish()
    }
}

impl TokenKeyring {
    /// `keys` are (key id, 32-byte key); `current` must be among them.
    pub fn new(current: u32, keys: &[(u32, [u8; 32])]) -> Option<Self> {
        if !keys.iter().any(|(id, _)| *id == current) {
            return None;
        }
        Some(Self {
            current,
            keys: keys
                .iter()
                .map(|(id, key)| (*id, Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(key))))
                .collect(),
        })
    }

    pub fn knows(&self, key_id: u32) -> bool {
        self.cipher(key_id).is_some()
    }

    pub fn current_key_id(&self) -> u32 {
        self.current
    }

    fn cipher(&self, key_id: u32) -> Option<&Aes256Gcm> {
        self.keys
            .iter()
            .find(|(id, _)| *id == key_id)
            .map(|(_, c)| c)
    }

    /// Seals claims into a session token with the current key.
    pub fn seal(&self, claims: &SessionClaims, rng: &mut impl RngCore) -> String {
        let mut header = [0u8; HEADER_LEN];
        header[0] = VERSION;
        header[1..].copy_from_slice(&self.current.to_be_bytes());
        let mut nonce = [0u8; NONCE_LEN];
        rng.fill_bytes(&mut nonce);
        // Serialising plain strings and integers cannot fail.
        let plaintext = serde_json::to_vec(claims).unwrap_or_default();
        let ciphertext = self
            .cipher(self.current)
            .and_then(|cipher| {
                cipher
                    .encrypt(
                        Nonce::from_slice(&nonce),
                        Payload {
                            msg: &plaintext,
                            aad: &header,
                        },
                    )
                    .ok()
            })
            .unwrap_or_default();
        let mut out = Vec::with_capacity(HEADER_LEN + NONCE_LEN + ciphertext.len());
        out.extend_from_slice(&header);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ciphertext);
        STANDARD.encode(out)
    }

    /// Opens a token and checks its expiry against `now` (Unix seconds).
    pub fn open(&self, token: &str, now: i64) -> Result<SessionClaims, TokenError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(TokenError::Invalid);
        }
        let bytes = STANDARD.decode(token).map_err(|_| TokenError::Invalid)?;
        if bytes.len() < HEADER_LEN + NONCE_LEN + 16 || bytes[0] != VERSION {
            return Err(TokenError::Invalid);
        }
        let (header, rest) = bytes.split_at(HEADER_LEN);
        let key_id = u32::from_be_bytes([header[1], header[2], header[3], header[4]]);
        let cipher = self.cipher(key_id).ok_or(TokenError::Invalid)?;
        let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
        let plaintext = cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: header,
                },
            )
            .map_err(|_| TokenError::Invalid)?;
        let claims: SessionClaims =
            serde_json::from_slice(&plaintext).map_err(|_| TokenError::Invalid)?;
        if now >= claims.expires_at {
            return Err(TokenError::Expired);
        }
        Ok(claims)
    }

    /// The key id a token was sealed with, without opening it (for key-ring refresh).
    pub fn key_id_of(token: &str) -> Option<u32> {
        let bytes = STANDARD.decode(token).ok()?;
        (bytes.len() > HEADER_LEN && bytes[0] == VERSION)
            .then(|| u32::from_be_bytes([bytes[1], bytes[2], bytes[3], bytes[4]]))
    }
}
