//! Fetching and caching identity providers' signing keys: `<issuer>/.well-known/
//! openid-configuration` → `jwks_uri` → JWKS, cached per issuer.
//!
//! Only issuers of IAM OIDC providers registered in some account reach this module,
//! so the set of hosts it talks to is the administrators' choice. Cache timing runs
//! on the `now` the caller passes (seconds), like the rest of the STS core.
//! - Keys are reused for `cache_ttl_seconds`; past that they are refetched, and kept
//!   for `stale_grace_seconds` more if the provider cannot be reached.
//! - A token whose `kid` is unknown triggers a refetch (key rotation), at most once
//!   per `refresh_interval_seconds` per issuer, so forged `kid`s cannot turn Rolegate
//!   into a request amplifier against the provider.
//! - After a failed fetch, requests for that issuer fail fast for
//!   `failure_backoff_seconds` instead of each waiting for a timeout.
//! - Fetches of one issuer are single-flight: concurrent requests wait for the one
//!   in progress.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use serde_json::Value;

use crate::iam::ProviderUrlKind;
use crate::sts::error::StsError;
use crate::sts::web_identity::jwt::{KeySet, SignatureError, UnverifiedToken, invalid_token};
use crate::sts::web_identity::provider_url;

/// Timings and limits of the key cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifierSettings {
    /// How long fetched keys are used before they are fetched again.
    pub cache_ttl_seconds: i64,
    /// Minimum time between refetches caused by an unknown `kid`.
    pub refresh_interval_seconds: i64,
    /// How long expired keys keep serving while the provider cannot be reached.
    pub stale_grace_seconds: i64,
    /// How long requests fail fast after a failed fetch.
    pub failure_backoff_seconds: i64,
    /// Connect plus response time allowed for one HTTP request to the provider.
    pub http_timeout: Duration,
    /// Largest discovery or JWKS document accepted, in bytes.
    pub max_document_bytes: usize,
}

impl Default for VerifierSettings {
    fn default() -> Self {
        Self {
            cache_ttl_seconds: 3_600,
            refresh_interval_seconds: 30,
            stale_grace_seconds: 86_400,
            failure_backoff_seconds: 5,
            http_timeout: Duration::from_secs(5),
            max_document_bytes: 256 * 1024,
        }
    }
}

/// `IDPCommunicationError` (400): the provider could not be reached. botocore retries it.
pub fn communication_error(issuer: &str) -> StsError {
    StsError::new(
        "IDPCommunicationError",
        400,
        format!(
            "Couldn't retrieve verification key from your identity provider {issuer}: the request to the provider failed. Try again later."
        ),
    )
}

fn unusable_keys() -> StsError {
    invalid_token(
        "Couldn't retrieve verification key from your identity provider, please reference AssumeRoleWithWebIdentity documentation for requirements",
    )
}

#[derive(Default)]
struct Slot {
    keys: Option<Arc<KeySet>>,
    fetched_at: i64,
    last_attempt: Option<i64>,
    last_failed: bool,
    /// When an unknown `kid` last caused a refetch (routine fetches do not count, so
    /// a rotation right after one is still picked up).
    last_unknown_key_refresh: Option<i64>,
}

/// Per-issuer JWKS cache.
pub struct JwksCache {
    settings: VerifierSettings,
    client: OnceLock<Result<reqwest::Client, String>>,
    slots: Mutex<HashMap<String, Arc<tokio::sync::Mutex<Slot>>>>,
}

impl std::fmt::Debug for JwksCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwksCache")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// Seconds between two instants of the caller's clock, either way round (a clock
/// that moves back must not make cached keys look fresh forever).
fn age(now: i64, then: i64) -> i64 {
    now.saturating_sub(then).saturating_abs()
}

impl JwksCache {
    pub fn new(settings: VerifierSettings) -> Self {
        Self {
            settings,
            client: OnceLock::new(),
            slots: Mutex::new(HashMap::new()),
        }
    }

    pub fn settings(&self) -> &VerifierSettings {
        &self.settings
    }

    fn slot(&self, issuer: &str) -> Arc<tokio::sync::Mutex<Slot>> {
        let mut slots = match self.slots.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        Arc::clone(slots.entry(issuer.to_owned()).or_default())
    }

    fn client(&self) -> Result<&reqwest::Client, StsError> {
        let timeout = self.settings.http_timeout;
        let client = self.client.get_or_init(|| {
            reqwest::Client::builder()
                .connect_timeout(timeout)
                .timeout(timeout)
                .redirect(reqwest::redirect::Policy::none())
                .user_agent(concat!("rolegate/", env!("CARGO_PKG_VERSION")))
                .build()
                .map_err(|e| e.to_string())
        });
        client.as_ref().map_err(|error| {
            tracing::error!(%error, "cannot build the HTTP client for identity providers");
            StsError::internal()
        })
    }

    /// The issuer's keys: cached ones while fresh, otherwise fetched.
    pub async fn keys(&self, issuer: &str, now: i64) -> Result<Arc<KeySet>, StsError> {
        let slot = self.slot(issuer);
        let mut slot = slot.lock().await;
        if let Some(keys) = &slot.keys
            && age(now, slot.fetched_at) < self.settings.cache_ttl_seconds
        {
            return Ok(Arc::clone(keys));
        }
        self.fetch_into(&mut slot, issuer, now).await
    }

    /// Refetches after a token named a key the cached set lacks. Returns the newer
    /// set, or `None` when a refetch happened too recently (the cached set stands).
    pub async fn refresh_for_unknown_key(
        &self,
        issuer: &str,
        now: i64,
        seen: &Arc<KeySet>,
    ) -> Result<Option<Arc<KeySet>>, StsError> {
        let slot = self.slot(issuer);
        let mut slot = slot.lock().await;
        if let Some(keys) = &slot.keys
            && !Arc::ptr_eq(keys, seen)
        {
            // Another request refreshed while this one waited.
            return Ok(Some(Arc::clone(keys)));
        }
        if slot
            .last_unknown_key_refresh
            .is_some_and(|last| age(now, last) < self.settings.refresh_interval_seconds)
        {
            return Ok(None);
        }
        slot.last_unknown_key_refresh = Some(now);
        tracing::info!(
            issuer,
            "web identity token names an unknown key: refetching the JWKS"
        );
        self.fetch_into(&mut slot, issuer, now).await.map(Some)
    }

    async fn fetch_into(
        &self,
        slot: &mut Slot,
        issuer: &str,
        now: i64,
    ) -> Result<Arc<KeySet>, StsError> {
        let stale = slot.keys.as_ref().filter(|_| {
            age(now, slot.fetched_at)
                < self
                    .settings
                    .cache_ttl_seconds
                    .saturating_add(self.settings.stale_grace_seconds)
        });
        if slot.last_failed
            && slot
                .last_attempt
                .is_some_and(|last| age(now, last) < self.settings.failure_backoff_seconds)
        {
            return stale.cloned().ok_or_else(|| communication_error(issuer));
        }
        slot.last_attempt = Some(now);
        match self.fetch(issuer).await {
            Ok(keys) => {
                let keys = Arc::new(keys);
                slot.keys = Some(Arc::clone(&keys));
                slot.fetched_at = now;
                slot.last_failed = false;
                Ok(keys)
            }
            Err(error) => {
                slot.last_failed = true;
                match stale {
                    Some(keys) if error.code == "IDPCommunicationError" => {
                        tracing::warn!(
                            issuer,
                            "identity provider unreachable: using its cached keys"
                        );
                        Ok(Arc::clone(keys))
                    }
                    _ => Err(error),
                }
            }
        }
    }

    async fn fetch(&self, issuer: &str) -> Result<KeySet, StsError> {
        let discovery_url = format!(
            "{}/.well-known/openid-configuration",
            issuer.trim_end_matches('/')
        );
        let discovery = self.get_json(issuer, &discovery_url).await?;
        if discovery.get("issuer").and_then(Value::as_str) != Some(issuer) {
            tracing::warn!(issuer, "the discovery document names another issuer");
            return Err(invalid_token(format!(
                "The discovery document of {issuer} does not name it as its issuer."
            )));
        }
        let jwks_uri = discovery
            .get("jwks_uri")
            .and_then(Value::as_str)
            .ok_or_else(unusable_keys)?;
        let jwks_url = provider_url(jwks_uri, "jwks_uri", ProviderUrlKind::Endpoint)?;
        let document = self.get_json(issuer, jwks_url.as_str()).await?;
        let keys = KeySet::from_jwks(&document).ok_or_else(unusable_keys)?;
        if keys.is_empty() {
            tracing::warn!(issuer, "the provider's JWKS has no usable signature keys");
            return Err(unusable_keys());
        }
        tracing::debug!(issuer, keys = keys.len(), "fetched identity provider keys");
        Ok(keys)
    }

    /// GETs a JSON document of at most `max_document_bytes`. Connection failures,
    /// timeouts and 5xx are communication errors; other statuses and bodies that
    /// are not JSON mean the provider does not publish usable keys.
    async fn get_json(&self, issuer: &str, url: &str) -> Result<Value, StsError> {
        let unreachable = |error: &dyn std::fmt::Display| {
            tracing::warn!(issuer, url, %error, "identity provider request failed");
            communication_error(issuer)
        };
        let mut response = self
            .client()?
            .get(url)
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| unreachable(&e))?;
        let status = response.status();
        if status.is_server_error() {
            return Err(unreachable(&status));
        }
        if !status.is_success() {
            tracing::warn!(issuer, url, %status, "identity provider refused a key request");
            return Err(unusable_keys());
        }
        let limit = self.settings.max_document_bytes;
        if response.content_length().is_some_and(|n| n > limit as u64) {
            tracing::warn!(issuer, url, "identity provider document too large");
            return Err(unusable_keys());
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| unreachable(&e))? {
            if body.len() + chunk.len() > limit {
                tracing::warn!(issuer, url, "identity provider document too large");
                return Err(unusable_keys());
            }
            body.extend_from_slice(&chunk);
        }
        serde_json::from_slice(&body).map_err(|error| {
            tracing::warn!(issuer, url, %error, "identity provider document is not JSON");
            unusable_keys()
        })
    }
}

/// Validates web identity tokens; holds the per-issuer JWKS cache.
#[derive(Debug)]
pub struct WebIdentityVerifier {
    jwks: JwksCache,
}

impl Default for WebIdentityVerifier {
    fn default() -> Self {
        Self::new()
    }
}

impl WebIdentityVerifier {
    pub fn new() -> Self {
        Self::with_settings(VerifierSettings::default())
    }

    pub fn with_settings(settings: VerifierSettings) -> Self {
        Self {
            jwks: JwksCache::new(settings),
        }
    }

    pub fn settings(&self) -> &VerifierSettings {
        self.jwks.settings()
    }

    /// Verifies the token's signature with the issuer's published keys, refetching
    /// them once (rate limited) when the token names a key the cache does not have.
    pub async fn verify_signature(
        &self,
        token: &UnverifiedToken<'_>,
        now: i64,
    ) -> Result<(), StsError> {
        let issuer = token.issuer.as_str();
        let keys = self.jwks.keys(issuer, now).await?;
        let first = keys.verify(token);
        let retry = match first {
            Ok(()) => return Ok(()),
            Err(SignatureError::NoMatchingKey) => true,
            // Without a kid any key may have signed it: a rotation looks the same.
            Err(SignatureError::Invalid) => token.key_id.is_none(),
        };
        let outcome = if retry {
            match self
                .jwks
                .refresh_for_unknown_key(issuer, now, &keys)
                .await?
            {
                Some(fresh) => fresh.verify(token),
                None => first,
            }
        } else {
            first
        };
        outcome.map_err(|error| {
            tracing::info!(issuer, kid = ?token.key_id, ?error, "web identity token signature refused");
            match error {
                SignatureError::NoMatchingKey => invalid_token(format!(
                    "The web identity token is signed with a key ({}) that the identity provider does not publish.",
                    token.key_id.as_deref().unwrap_or("no kid")
                )),
                SignatureError::Invalid => invalid_token("The web identity token's signature is not valid."),
            }
        })
    }
}
