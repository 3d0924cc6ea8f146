//! Time-based one-time passwords (RFC 6238) for the built-in directory's optional
//! second factor: HMAC-SHA-1, 6 digits, 30-second steps, one step of tolerance either
//! side, the parameters every authenticator app uses by default.
//!
//! Pure: no I/O and no clock. Callers pass the time in (Unix seconds) and get back the
//! time step a code matched, so they can refuse a code that was already used (replay
//! protection lives with the caller's cache).

use hmac::{Hmac, Mac};
use rand::RngCore;
use sha1::Sha1;
use subtle::ConstantTimeEq;

/// Seconds per time step (RFC 6238's X).
pub const STEP_SECONDS: i64 = 30;
/// Digits in a code.
pub const DIGITS: usize = 6;
/// Steps accepted either side of the current one (clock drift, typing time).
pub const SKEW_STEPS: i64 = 1;
/// Bytes in a generated secret: 160 bits, the HMAC-SHA-1 output size (RFC 4226 §4).
pub const SECRET_BYTES: usize = 20;
/// The issuer shown by authenticator apps.
pub const ISSUER: &str = "Rolegate";

/// A shared TOTP secret. Never printed: `Debug` shows only its length.
#[derive(Clone, PartialEq, Eq)]
pub struct TotpSecret(Vec<u8>);

impl std::fmt::Debug for TotpSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TotpSecret({} bytes)", self.0.len())
    }
}

impl TotpSecret {
    /// A fresh random 160-bit secret.
    pub fn generate(rng: &mut impl RngCore) -> Self {
        let mut bytes = vec![0u8; SECRET_BYTES];
        rng.fill_bytes(&mut bytes);
        Self(bytes)
    }

    /// Parses the base32 form (RFC 4648, as in `otpauth://` URIs): case, spaces and
    /// `=` padding are ignored. `None` for other characters or fewer than 128 bits
    /// (RFC 4226's minimum).
    pub fn from_base32(text: &str) -> Option<Self> {
        let bytes = base32_decode(text)?;
        (bytes.len() >= 16).then_some(Self(bytes))
    }

    /// The unpadded base32 form authenticator apps expect.
    pub fn to_base32(&self) -> String {
        base32_encode(&self.0)
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

/// The time step that `unix_time` falls in.
pub fn step_at(unix_time: i64) -> i64 {
    unix_time.div_euclid(STEP_SECONDS)
}

/// RFC 4226 HOTP: the `digits`-digit code for `counter` (dynamic truncation).
fn hotp(key: &[u8], counter: u64, digits: u32) -> u32 {
    // HMAC accepts keys of any length; this cannot fail.
    let Ok(mut mac) = Hmac::<Sha1>::new_from_slice(key) else {
        return 0;
    };
    mac.update(&counter.to_be_bytes());
    let hash = mac.finalize().into_bytes();
    let offset = usize::from(hash[hash.len() - 1] & 0x0f);
    let binary = u32::from_be_bytes([
        hash[offset] & 0x7f,
        hash[offset + 1],
        hash[offset + 2],
        hash[offset + 3],
    ]);
    binary % 10u32.pow(digits)
}

/// The code for time step `step`, zero-padded to [`DIGITS`].
pub fn code_for_step(secret: &TotpSecret, step: i64) -> String {
    // Steps before 1970 do not occur; clamp rather than wrap.
    let counter = u64::try_from(step).unwrap_or(0);
    format!(
        "{:0width$}",
        hotp(secret.as_bytes(), counter, DIGITS as u32),
        width = DIGITS
    )
}

/// The code an authenticator shows at `unix_time`.
pub fn code_at(secret: &TotpSecret, unix_time: i64) -> String {
    code_for_step(secret, step_at(unix_time))
}

/// Checks `code` at `unix_time`; returns the time step it matched (within
/// [`SKEW_STEPS`] of the current one), or `None`. Only exactly [`DIGITS`] ASCII digits
/// are considered (normalise user input with [`normalize_code`] first). Every
/// candidate step is compared in constant time, with no early exit.
pub fn verify(secret: &TotpSecret, code: &str, unix_time: i64) -> Option<i64> {
    if code.len() != DIGITS || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let now = step_at(unix_time);
    let mut matched = None;
    for step in (now - SKEW_STEPS)..=(now + SKEW_STEPS) {
        let expected = code_for_step(secret, step);
        if bool::from(expected.as_bytes().ct_eq(code.as_bytes())) && matched.is_none() {
            matched = Some(step);
        }
    }
    matched
}

/// What a person typed, without spaces or dashes ("123 456" → "123456").
pub fn normalize_code(input: &str) -> String {
    input
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .collect()
}

/// The last moment (Unix seconds) a code of `step` is still accepted: how long a
/// used code must be remembered to refuse its replay.
pub fn valid_until(step: i64) -> i64 {
    (step + SKEW_STEPS + 1) * STEP_SECONDS
}

/// The `otpauth://totp/...` URI (Google Authenticator's key-URI format) that
/// authenticator apps import: issuer-prefixed label, secret, issuer and the default
/// algorithm, digits and period spelled out.
pub fn otpauth_uri(account: &str, secret: &TotpSecret) -> String {
    use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
    let issuer = utf8_percent_encode(ISSUER, NON_ALPHANUMERIC);
    let account = utf8_percent_encode(account, NON_ALPHANUMERIC);
    format!(
        "otpauth://totp/{issuer}:{account}?secret={}&issuer={issuer}&algorithm=SHA1&digits={DIGITS}&period={STEP_SECONDS}",
        secret.to_base32()
    )
}

const BASE32_ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

fn base32_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(5) * 8);
    let mut buffer: u32 = 0;
    let mut bits = 0;
    for &byte in bytes {
        buffer = (buffer << 8) | u32::from(byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(
                BASE32_ALPHABET[((buffer >> bits) & 0x1f) as usize],
            ));
        }
    }
    if bits > 0 {
        out.push(char::from(
            BASE32_ALPHABET[((buffer << (5 - bits)) & 0x1f) as usize],
        ));
    }
    out
}

fn base32_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 5 / 8);
    let mut buffer: u32 = 0;
    let mut bits = 0;
    for c in text.chars() {
        if c.is_whitespace() || c == '=' {
            continue;
        }
        let upper = c.to_ascii_uppercase();
        let value = BASE32_ALPHABET
            .iter()
            .position(|&a| char::from(a) == upper)?;
        buffer = (buffer << 5) | value as u32;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push(((buffer >> bits) & 0xff) as u8);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 Appendix B's SHA-1 key: the ASCII string "12345678901234567890".
    fn rfc_secret() -> TotpSecret {
        TotpSecret(b"12345678901234567890".to_vec())
    }

    #[test]
    fn rfc6238_appendix_b_sha1_vectors() {
        // (time, 8-digit TOTP) from RFC 6238 Appendix B, SHA-1 rows.
        let vectors: [(i64, u32); 6] = [
            (59, 94_287_082),
            (1_111_111_109, 7_081_804),
            (1_111_111_111, 14_050_471),
            (1_234_567_890, 89_005_924),
            (2_000_000_000, 69_279_037),
            (20_000_000_000, 65_353_130),
        ];
        let secret = rfc_secret();
        for (time, expected) in vectors {
            let counter = u64::try_from(step_at(time)).unwrap();
            assert_eq!(hotp(secret.as_bytes(), counter, 8), expected, "T={time}");
            // Six digits are the low six of the same truncation.
            assert_eq!(
                code_at(&secret, time),
                format!("{:06}", expected % 1_000_000),
                "T={time}"
            );
        }
    }

    #[test]
    fn rfc4226_appendix_d_hotp_vectors() {
        let expected = [
            "755224", "287082", "359152", "969429", "338314", "254676", "287922", "162583",
            "399871", "520489",
        ];
        for (counter, code) in expected.iter().enumerate() {
            assert_eq!(code_for_step(&rfc_secret(), counter as i64), *code);
        }
    }

    #[test]
    fn verify_accepts_one_step_either_side_and_reports_the_step() {
        let secret = rfc_secret();
        let now = 1_234_567_890;
        let step = step_at(now);
        assert_eq!(verify(&secret, &code_at(&secret, now), now), Some(step));
        assert_eq!(
            verify(&secret, &code_at(&secret, now - 30), now),
            Some(step - 1)
        );
        assert_eq!(
            verify(&secret, &code_at(&secret, now + 30), now),
            Some(step + 1)
        );
        assert_eq!(verify(&secret, &code_at(&secret, now - 60), now), None);
        assert_eq!(verify(&secret, &code_at(&secret, now + 60), now), None);
    }

    #[test]
    fn verify_refuses_malformed_codes() {
        let secret = rfc_secret();
        let now = 59;
        let good = code_at(&secret, now);
        assert_eq!(verify(&secret, &good, now), Some(1));
        for bad in ["", "28708", "2870821", "28708a", " 287082", "２８７０８２"] {
            assert_eq!(verify(&secret, bad, now), None, "{bad:?}");
        }
        assert_eq!(normalize_code(" 287 082\n"), "287082");
        assert_eq!(normalize_code("287-082"), "287082");
    }

    #[test]
    fn base32_round_trips_and_matches_rfc4648() {
        // RFC 4648 §10 test vectors (unpadded).
        for (plain, encoded) in [
            ("", ""),
            ("f", "MY"),
            ("fo", "MZXQ"),
            ("foo", "MZXW6"),
            ("foob", "MZXW6YQ"),
            ("fooba", "MZXW6YTB"),
            ("foobar", "MZXW6YTBOI"),
        ] {
            assert_eq!(base32_encode(plain.as_bytes()), encoded);
            assert_eq!(base32_decode(encoded).unwrap(), plain.as_bytes());
        }
        assert_eq!(
            base32_decode("mzxw 6ytb oi======").unwrap(),
            b"foobar".to_vec()
        );
        assert!(base32_decode("MZXW1").is_none());
        let secret = TotpSecret::generate(&mut crate::clock::Random::system().rng());
        let text = secret.to_base32();
        assert_eq!(text.len(), 32, "160 bits are 32 base32 characters");
        assert_eq!(TotpSecret::from_base32(&text), Some(secret));
        assert!(TotpSecret::from_base32("MZXW6YTBOI").is_none(), "too short");
    }

    #[test]
    fn otpauth_uri_has_label_secret_and_issuer() {
        let secret = rfc_secret();
        let uri = otpauth_uri("alice", &secret);
        assert_eq!(
            uri,
            format!(
                "otpauth://totp/Rolegate:alice?secret={}&issuer=Rolegate&algorithm=SHA1&digits=6&period=30",
                secret.to_base32()
            )
        );
        assert!(otpauth_uri("a b@c", &secret).starts_with("otpauth://totp/Rolegate:a%20b%40c?"));
    }

    #[test]
    fn a_used_code_is_remembered_until_it_expires() {
        let step = step_at(1_000_000_000);
        // Accepted while the current step is step-1, step or step+1.
        assert_eq!(valid_until(step), (step + 2) * STEP_SECONDS);
        assert_eq!(step_at(valid_until(step) - 1), step + 1);
    }

    #[test]
    fn debug_hides_the_secret() {
        assert_eq!(format!("{:?}", rfc_secret()), "TotpSecret(20 bytes)");
    }
}
