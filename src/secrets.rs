//! Secrets at rest: values sealed with AES-256-GCM under the deployment's master key,
//! and a `Secret` wrapper that never prints its contents.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rand::RngCore;

/// A string that must never reach logs: Debug and Display print `***`.
#[derive(Clone, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    #[error(
        "the master key must be 32 bytes, base64-encoded (generate one with `openssl rand -base64 32`)"
    )]
    BadMasterKey,
    #[error("sealed value is malformed")]
    Malformed,
    #[error("sealed value failed authentication (wrong master key or tampered data)")]
    Tampered,
}

fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    use hmac::{Hmac, Mac};
    // HMAC takes keys of any length.
    let Ok(mut mac) = <Hmac<sha2::Sha256> as Mac>::new_from_slice(key) else {
        return [0; 32];
    };
    mac.update(message);
    mac.finalize().into_bytes().into()
}

/// Hides the password of a URL with user info (a database or Redis URL), and a
/// `password=` query parameter (PostgreSQL accepts one), so it can be printed.
pub fn redact_url(url: &str) -> String {
    let (address, query) = match url.split_once('?') {
        Some((address, query)) => (address, Some(query)),
        None => (url, None),
    };
    let address = match (address.find("://"), address.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &address[scheme_end + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => {
                    format!("{}{user}:***{}", &address[..scheme_end + 3], &address[at..])
                }
                None => address.to_owned(),
            }
        }
        _ => address.to_owned(),
    };
    match query {
        None => address,
        Some(query) => {
            let query: Vec<String> = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((name, _)) if name.eq_ignore_ascii_case("password") => {
                        format!("{name}=***")
                    }
                    _ => pair.to_owned(),
                })
                .collect();
            format!("{address}?{}", query.join("&"))
        }
    }
}

const SEALED_PREFIX: &str = "v1:";
const NONCE_LEN: usize = 12;

/// Seals and opens values under the master key. `context` binds a sealed value to
/// its purpose (e.g. "iam-access-key:AKIA..."), so one cannot be swapped for another.
#[derive(Clone)]
pub struct Sealer {
    cipher: Aes256Gcm,
    /// A key of its own for [`Sealer::mac`], derived from the master key so that no
    /// second secret has to be configured.
    mac_key: [u8; 32],
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer(***)")
    }
}

impl Sealer {
    pub fn from_key_bytes(key: &[u8; 32]) -> Self {
        let mac_key = hmac_sha256(key, b"rolegate/mac-key/v1");
        Self {
            cipher: Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(key)),
            mac_key,
        }
    }

    /// A keyed MAC of `data` for `context` (HMAC-SHA256 under a key derived from the
    /// master key): what a server-issued value is signed with when it need not be
    /// secret, only unforgeable (login CSRF tokens).
    pub fn mac(&self, context: &str, data: &[u8]) -> [u8; 32] {
        let mut message = Vec::with_capacity(context.len() + 1 + data.len());
        message.extend_from_slice(context.as_bytes());
        message.push(0);
        message.extend_from_slice(data);
        hmac_sha256(&self.mac_key, &message)
    }

    /// From the base64 form used in configuration.
    pub fn from_base64(master_key: &Secret) -> Result<Self, SealError> {
        let bytes = STANDARD
            .decode(master_key.expose().trim())
            .map_err(|_| SealError::BadMasterKey)?;
        let key: [u8; 32] = bytes.try_into().map_err(|_| SealError::BadMasterKey)?;
        Ok(Self::from_key_bytes(&key))
    }

    /// A fresh random master key in its base64 configuration form.
    pub fn generate_master_key(rng: &mut impl RngCore) -> Secret {
        let mut key = [0u8; 32];
        rng.fill_bytes(&mut key);
        Secret(STANDARD.encode(key))
    }

    pub fn seal(&self, plaintext: &[u8], context: &str, rng: &mut impl RngCore) -> String {
        let mut nonce = [0u8; NONCE_LEN];
        rng.fill_bytes(&mut nonce);
        let sealed = self
            .cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad: context.as_bytes(),
                },
            )
            // AES-GCM encryption only fails for inputs over 64 GiB.
            .unwrap_or_default();
        let mut out = Vec::with_capacity(NONCE_LEN + sealed.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        format!("{SEALED_PREFIX}{}", STANDARD.encode(out))
    }

    pub fn open(&self, sealed: &str, context: &str) -> Result<Vec<u8>, SealError> {
        let body = sealed
            .strip_prefix(SEALED_PREFIX)
            .ok_or(SealError::Malformed)?;
        let bytes = STANDARD.decode(body).map_err(|_| SealError::Malformed)?;
        if bytes.len() < NONCE_LEN + 16 {
            return Err(SealError::Malformed);
        }
        let (nonce, ciphertext) = bytes.split_at(NONCE_LEN);
        self.cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: context.as_bytes(),
                },
            )
            .map_err(|_| SealError::Tampered)
    }
}

/// Whether two secrets (tokens, CSRF values, keys) are equal, in time that does not
/// depend on where they differ.
pub fn same_secret(a: &str, b: &str) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn urls_lose_their_passwords_and_keep_where_they_point() {
        for (given, shown) in [
            (
                "postgres://app:s3cret@db.internal:5432/rolegate",
                "postgres://app:***@db.internal:5432/rolegate",
            ),
            (
                "postgres://app@db:5432/rolegate?sslmode=require&password=s3cret",
                "postgres://app@db:5432/rolegate?sslmode=require&password=***",
            ),
            ("redis://:s3cret@cache:6379/0", "redis://:***@cache:6379/0"),
            ("redis://cache:6379", "redis://cache:6379"),
            ("sqlite://data/rolegate.db", "sqlite://data/rolegate.db"),
        ] {
            assert_eq!(redact_url(given), shown);
        }
    }
}
