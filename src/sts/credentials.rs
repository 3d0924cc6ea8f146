//! Access key ids and secret access keys shaped like AWS's, and credentials as STS
//! returns them.

use chrono::{DateTime, Utc};
use rand::Rng;

const BASE32_UPPER: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
const SECRET_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Credentials as STS returns them.
#[derive(Clone, PartialEq, Eq)]
pub struct IssuedCredentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: String,
    pub expiration: DateTime<Utc>,
}

impl std::fmt::Debug for IssuedCredentials {
    // The secret and the token are bearer credentials: never in logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedCredentials")
            .field("access_key_id", &self.access_key_id)
            .field("expiration", &self.expiration)
            .finish_non_exhaustive()
    }
}

/// A role session as STS returns it.
#[derive(Debug, Clone)]
pub struct AssumedRole {
    pub credentials: IssuedCredentials,
    pub assumed_role_arn: String,
    pub assumed_role_id: String,
    /// Percentage of the packed-policy allowance used, as AWS reports it.
    pub packed_policy_size: u32,
    pub source_identity: Option<String>,
}

/// Whether an access key id belongs to temporary (`ASIA`) or long-term (`AKIA`) keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    Temporary,
    LongTerm,
}

impl KeyKind {
    fn prefix(self) -> &'static str {
        match self {
            KeyKind::Temporary => "ASIA",
            KeyKind::LongTerm => "AKIA",
        }
    }

    /// Classifies an access key id by its prefix.
    pub fn of(access_key_id: &str) -> Option<Self> {
        if access_key_id.starts_with("ASIA") {
            Some(KeyKind::Temporary)
        } else if access_key_id.starts_with("AKIA") {
            Some(KeyKind::LongTerm)
        } else {
            None
        }
    }
}

/// `ASIA`/`AKIA` followed by 16 upper-case base32 characters, as AWS issues them.
/// Like AWS's, the id encodes its account (the first 8 characters hold the 12-digit
/// account id in 40 bits), so GetAccessKeyInfo needs no lookup; the other 8 are random.
pub fn new_access_key_id(kind: KeyKind, account: &str, rng: &mut impl Rng) -> String {
    let mut id = String::with_capacity(20);
    id.push_str(kind.prefix());
    let number: u64 = account.parse().unwrap_or(0);
    for i in (0..8).rev() {
        id.push(BASE32_UPPER[((number >> (i * 5)) & 31) as usize] as char);
    }
    for _ in 0..8 {
        id.push(BASE32_UPPER[rng.random_range(0..BASE32_UPPER.len())] as char);
    }
    id
}

/// The account an access key id was issued for (see [`new_access_key_id`]).
pub fn account_of_access_key_id(id: &str) -> Option<String> {
    if !is_well_formed_access_key_id(id) {
        return None;
    }
    let mut number: u64 = 0;
    for b in id.bytes().skip(4).take(8) {
        let digit = BASE32_UPPER.iter().position(|c| *c == b)? as u64;
        number = (number << 5) | digit;
    }
    (number <= 999_999_999_999).then(|| format!("{number:012}"))
}

/// A random 40-character secret access key (240 bits of entropy).
pub fn new_secret_access_key(rng: &mut impl Rng) -> String {
    (0..40)
        .map(|_| SECRET_ALPHABET[rng.random_range(0..SECRET_ALPHABET.len())] as char)
        .collect()
}

/// Whether a string looks like an access key id at all (cheap pre-check before lookups).
pub fn is_well_formed_access_key_id(id: &str) -> bool {
    id.len() == 20
        && KeyKind::of(id).is_some()
        && id.bytes().skip(4).all(|b| BASE32_UPPER.contains(&b))
}
