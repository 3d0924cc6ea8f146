//! Secrets at rest and server-issued MACs under the master key, for everything
//! outside credential issuance (identity sources' client secrets, TOTP secrets,
//! registered clients, login CSRF tokens): the sealer with the random source its
//! nonces come from.

use base64::Engine;

use crate::clock::Random;
use crate::secrets::{SealError, Sealer, Secret};

#[derive(Clone)]
pub struct SecretSealer {
    sealer: Sealer,
    random: Random,
}

impl std::fmt::Debug for SecretSealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretSealer(***)")
    }
}

impl SecretSealer {
    pub fn new(sealer: Sealer, random: Random) -> Self {
        Self { sealer, random }
    }

    /// Seals `value` for storage; `context` binds it to its purpose and owner.
    pub fn seal_secret(&self, value: &str, context: &str) -> String {
        self.sealer
            .seal(value.as_bytes(), context, &mut self.random.rng())
    }

    /// Opens a value sealed by [`SecretSealer::seal_secret`] with the same `context`.
    pub fn open_secret(&self, sealed: &str, context: &str) -> Result<Secret, SealError> {
        let bytes = self.sealer.open(sealed, context)?;
        String::from_utf8(bytes)
            .map(Secret::new)
            .map_err(|_| SealError::Malformed)
    }

    /// The random source nonces come from (the application's one).
    pub fn random(&self) -> Random {
        self.random
    }

    /// [`Sealer::mac`], base64url.
    pub fn mac(&self, context: &str, data: &[u8]) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(self.sealer.mac(context, data))
    }
}
