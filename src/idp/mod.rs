//! Identity sources: where people sign in. `directory` is Rolegate's own users and
//! groups; the federated sources (OIDC, SAML) sit alongside it.

pub mod directory;
pub mod identity;
pub mod oidc;
pub mod saml;
pub mod totp;

use std::sync::OnceLock;
use std::time::Duration;

/// How long Rolegate waits for a federated provider (discovery, keys, tokens,
/// metadata) to connect and to answer.
const PROVIDER_HTTP_TIMEOUT: Duration = Duration::from_secs(10);

/// The one HTTP client for federated providers (OIDC and SAML): no redirects (a
/// provider must not steer Rolegate elsewhere), short timeouts.
pub fn provider_http() -> Result<&'static reqwest::Client, String> {
    static CLIENT: OnceLock<Result<reqwest::Client, String>> = OnceLock::new();
    CLIENT
        .get_or_init(|| {
            reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .connect_timeout(PROVIDER_HTTP_TIMEOUT)
                .timeout(PROVIDER_HTTP_TIMEOUT)
                .build()
                .map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|e| format!("HTTP client: {e}"))
}
