//! Portal sign-in through a SAML identity source, and the set-up of such sources.
//!
//! A sign-in: [`SamlLogin::begin`] makes an AuthnRequest (signed when the source
//! says so), remembers its ID, the relay target and a hash of the browser-binding
//! cookie under an unguessable `RelayState` for ten minutes, and returns the IdP URL
//! to redirect to; [`SamlLogin::take_pending`] consumes that record exactly once when
//! the IdP posts back to the ACS; [`SamlLogin::complete`] verifies the response
//! ([`crate::idp::saml::verify_response`]: signature, issuer, audience, recipient,
//! destination, InResponseTo, times), claims the assertion ID once in the replay
//! cache until its NotOnOrAfter, and maps the assertion to an [`Identity`].
//! IdP-initiated responses (no `RelayState`) are accepted only when the source
//! allows them, and then must not answer any request.
//!
//! Set-up ([`prepare_source`]): the IdP metadata is imported from a URL, a file or
//! pasted XML (refused without a signing certificate), and the SP key and
//! certificate are generated (the key sealed with the master key) unless given.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::cache::{Cache, CacheError, digest};
use crate::clock::{Clock, Random};
use crate::idp::identity::Identity;
use crate::idp::saml::sp::{self, SamlConfig, SpEndpoints};
use crate::idp::saml::{self, Expectations, IdpMetadata, InResponseTo, SamlError};
use crate::service::sealing::SecretSealer;
use crate::store::{IdentitySource, IdentitySourceKind};

/// How long a started sign-in may take at the IdP.
pub const LOGIN_TTL: Duration = Duration::from_secs(10 * 60);
/// The most characters of a `SAMLResponse` looked at (AWS's cap on the STS too).
pub const MAX_RESPONSE_CHARS: usize = 100_000;
/// The longest `RelayState` the SAML bindings allow (80 bytes).
const MAX_RELAY_STATE: usize = 80;
/// The largest metadata document accepted.
const MAX_METADATA_BYTES: usize = 1024 * 1024;

/// A sign-in that went to the IdP and has not come back yet. Stored in the cache
/// under a hash of its `RelayState`, for [`LOGIN_TTL`], and consumed once.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PendingRequest {
    pub source_id: String,
    /// The AuthnRequest's ID: the response's InResponseTo must name it.
    pub request_id: String,
    /// Where to go after sign-in (a local path).
    pub return_to: String,
    /// SHA-256 of the browser-binding cookie the sign-in was started with.
    pub browser: String,
    /// The entityID and ACS the request named (the response must match them).
    pub endpoints: SpEndpoints,
    pub started_at: i64,
    /// An admin's test sign-in (the admin's audit actor): its ACS starts no session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_by: Option<String>,
}

fn pending_key(relay_state: &str) -> String {
    format!("saml-login:{}", digest(relay_state))
}

fn used_key(relay_state: &str) -> String {
    format!("saml-login-used:{}", digest(relay_state))
}

/// Why a SAML sign-in did not happen. `Display` is the reason for logs and the
/// audit log: it never contains the response or the assertion.
#[derive(Debug, thiserror::Error)]
pub enum SamlLoginError {
    #[error("unknown or disabled identity source {0:?}")]
    UnknownSource(String),
    #[error("identity source misconfigured: {0}")]
    Misconfigured(String),
    #[error("sign-in state unavailable: {0}")]
    Unavailable(String),
    #[error("no SAMLResponse in the post")]
    MissingResponse,
    #[error("the SAMLResponse is over {MAX_RESPONSE_CHARS} characters")]
    TooLarge,
    #[error("unknown, expired or forged RelayState")]
    UnknownRelayState,
    #[error("RelayState already used (replayed response)")]
    ReplayedRelayState,
    #[error("the sign-in was started for another identity source")]
    SourceMismatch,
    #[error("the sign-in was started in another browser")]
    BrowserMismatch,
    #[error("IdP-initiated sign-in is not allowed for this source")]
    IdpInitiatedNotAllowed,
    #[error("{0}")]
    Rejected(#[from] SamlError),
    #[error("attributes unusable: {0}")]
    Claims(String),
}

impl SamlLoginError {
    /// A short stable code for the audit log (the verifier's own codes for a
    /// rejected response).
    pub fn code(&self) -> &'static str {
        match self {
            Self::UnknownSource(_) => "unknown_source",
            Self::Misconfigured(_) => "misconfigured",
            Self::Unavailable(_) => "unavailable",
            Self::MissingResponse => "missing_response",
            Self::TooLarge => "too_large",
            Self::UnknownRelayState => "unknown_relay_state",
            Self::ReplayedRelayState => "replayed_relay_state",
            Self::SourceMismatch => "source_mismatch",
            Self::BrowserMismatch => "browser_mismatch",
            Self::IdpInitiatedNotAllowed => "idp_initiated_not_allowed",
            Self::Rejected(error) => error.code(),
            Self::Claims(_) => "unusable_claims",
        }
    }
}

fn unavailable(error: CacheError) -> SamlLoginError {
    SamlLoginError::Unavailable(error.to_string())
}

/// A verified sign-in.
#[derive(Debug, Clone)]
pub struct SignedIn {
    pub identity: Identity,
    /// The assertion's attributes as received (each a list of values).
    pub claims: Map<String, Value>,
    /// The IdP's entityID (the assertion's Issuer).
    pub issuer: String,
    pub assertion_id: String,
}

/// The service provider of every SAML source: the cache (pending sign-ins, the
/// replay cache), the clock, the random source and the sealer (SP keys).
pub struct SamlLogin {
    cache: Arc<dyn Cache>,
    clock: Clock,
    random: Random,
    sealer: SecretSealer,
}

impl SamlLogin {
    pub fn new(cache: Arc<dyn Cache>, clock: Clock, random: Random, sealer: SecretSealer) -> Self {
        Self {
            cache,
            clock,
            random,
            sealer,
        }
    }

    /// The settings of `source`, which must be a SAML source.
    pub fn settings(source: &IdentitySource) -> Result<SamlConfig, SamlLoginError> {
        if source.kind != IdentitySourceKind::Saml {
            return Err(SamlLoginError::UnknownSource(source.id.clone()));
        }
        SamlConfig::from_json(&source.config)
            .map_err(|e| SamlLoginError::Misconfigured(e.to_string()))
    }

    /// The IdP metadata a source stores.
    pub fn idp_of(config: &SamlConfig) -> Result<IdpMetadata, SamlLoginError> {
        saml::parse_idp_metadata(&config.idp_metadata)
            .map_err(|e| SamlLoginError::Misconfigured(format!("IdP metadata: {e}")))
    }

    /// The IdP's entityID of a SAML source, for audit events (None if unreadable).
    pub fn idp_entity_id(source: &IdentitySource) -> Option<String> {
        let config = Self::settings(source).ok()?;
        Self::idp_of(&config).ok().map(|idp| idp.entity_id)
    }

    /// The SP metadata document of `source` at the public origin `origin`.
    pub fn sp_metadata(source: &IdentitySource, origin: &str) -> Result<String, SamlLoginError> {
        let config = Self::settings(source)?;
        let endpoints = SpEndpoints::of(origin, &source.id, &config);
        sp::sp_metadata_xml(&endpoints, &config).map_err(SamlLoginError::Misconfigured)
    }

    /// Starts a sign-in at `source` (a test sign-in of admin `test_by`, which may
    /// use a disabled source): remembers it under a new `RelayState` and returns the
    /// IdP URL to send the browser to. `browser` is the binding cookie's value.
    pub async fn begin(
        &self,
        source: &IdentitySource,
        origin: &str,
        return_to: &str,
        browser: &str,
        test_by: Option<String>,
    ) -> Result<String, SamlLoginError> {
        if !source.enabled && test_by.is_none() {
            return Err(SamlLoginError::UnknownSource(source.id.clone()));
        }
        let config = Self::settings(source)?;
        let idp = Self::idp_of(&config)?;
        let sso_url = idp.sso_redirect_url.clone().ok_or_else(|| {
            SamlLoginError::Misconfigured(
                "the IdP metadata names no single sign-on service with the HTTP-Redirect binding"
                    .into(),
            )
        })?;
        let endpoints = SpEndpoints::of(origin, &source.id, &config);
        // Signed when the source says so, or when the IdP's metadata asks for it.
        let key = if config.sign_authn_requests || idp.want_authn_requests_signed {
            Some(
                sp::open_sp_key(&self.sealer, &source.id, &config)
                    .map_err(SamlLoginError::Misconfigured)?,
            )
        } else {
            None
        };
        let request_id = sp::new_request_id(&self.random);
        let relay_state = self.random.token();
        let url = sp::authn_request_url(
            &sso_url,
            &endpoints,
            &request_id,
            self.clock.now(),
            &relay_state,
            key.as_ref().map(|k| k.expose()),
        )
        .map_err(SamlLoginError::Misconfigured)?;
        let pending = PendingRequest {
            source_id: source.id.clone(),
            request_id,
            return_to: return_to.to_owned(),
            browser: digest(browser),
            endpoints,
            started_at: self.clock.timestamp(),
            test_by,
        };
        let bytes =
            serde_json::to_vec(&pending).map_err(|e| SamlLoginError::Unavailable(e.to_string()))?;
        self.cache
            .put(&pending_key(&relay_state), &bytes, LOGIN_TTL)
            .await
            .map_err(unavailable)?;
        Ok(url)
    }

    /// Consumes the pending sign-in named by `relay_state`: the first call wins, a
    /// second (a re-posted response) gets [`SamlLoginError::ReplayedRelayState`], an
    /// unknown or expired one [`SamlLoginError::UnknownRelayState`].
    pub async fn take_pending(&self, relay_state: &str) -> Result<PendingRequest, SamlLoginError> {
        if relay_state.is_empty() || relay_state.len() > MAX_RELAY_STATE {
            return Err(SamlLoginError::UnknownRelayState);
        }
        let first = self
            .cache
            .put_if_absent(&used_key(relay_state), b"1", LOGIN_TTL)
            .await
            .map_err(unavailable)?;
        if !first {
            return Err(SamlLoginError::ReplayedRelayState);
        }
        let key = pending_key(relay_state);
        let Some(stored) = self.cache.get(&key).await.map_err(unavailable)? else {
            return Err(SamlLoginError::UnknownRelayState);
        };
        self.cache.delete(&key).await.map_err(unavailable)?;
        serde_json::from_slice(&stored).map_err(|_| SamlLoginError::UnknownRelayState)
    }

    /// Verifies `saml_response` (base64, as posted) for `source`: the answer to
    /// `pending` (SP-initiated), or, with none, an IdP-initiated response at the
    /// endpoints of `origin` (only if the source allows it). Claims the assertion ID
    /// once, then maps the assertion to an identity.
    pub async fn complete(
        &self,
        source: &IdentitySource,
        pending: Option<&PendingRequest>,
        origin: &str,
        saml_response: &str,
    ) -> Result<SignedIn, SamlLoginError> {
        if saml_response.chars().count() > MAX_RESPONSE_CHARS {
            return Err(SamlLoginError::TooLarge);
        }
        let config = Self::settings(source)?;
        let test = pending.is_some_and(|p| p.test_by.is_some());
        if !source.enabled && !test {
            return Err(SamlLoginError::UnknownSource(source.id.clone()));
        }
        let (endpoints, in_response_to) = match pending {
            Some(pending) => {
                if pending.source_id != source.id {
                    return Err(SamlLoginError::SourceMismatch);
                }
                (
                    pending.endpoints.clone(),
                    InResponseTo::Expected(&pending.request_id),
                )
            }
            None if config.allow_idp_initiated => (
                SpEndpoints::of(origin, &source.id, &config),
                InResponseTo::IdpInitiatedOnly,
            ),
            None => return Err(SamlLoginError::IdpInitiatedNotAllowed),
        };
        let idp = Self::idp_of(&config)?;
        let key = sp::open_sp_key(&self.sealer, &source.id, &config).ok();
        let expect = Expectations {
            idp: &idp,
            audience: &endpoints.entity_id,
            recipient: &endpoints.acs_url,
            in_response_to,
            now: self.clock.now(),
            clock_skew: config.clock_skew(),
            decryption_key: key.as_ref().map(|k| k.expose().as_bytes()),
        };
        let assertion = saml::verify_response(saml_response, &expect)?;
        saml::claim_assertion_once(
            self.cache.as_ref(),
            &assertion.issuer,
            &assertion.assertion_id,
            assertion.not_on_or_after,
            self.clock.now(),
        )
        .await?;
        let identity =
            sp::map_identity(&source.id, &assertion, &config).map_err(SamlLoginError::Claims)?;
        Ok(SignedIn {
            identity,
            claims: sp::claims_of(&assertion),
            issuer: assertion.issuer,
            assertion_id: assertion.assertion_id,
        })
    }
}

/// Whether `browser` (the binding cookie's value) is the one the sign-in started with.
pub fn same_browser(pending: &PendingRequest, browser: Option<&str>) -> bool {
    browser.is_some_and(|b| crate::secrets::same_secret(&digest(b), &pending.browser))
}

// ---------------------------------------------------------------------------
// Setting a source up
// ---------------------------------------------------------------------------

/// Where a source's IdP metadata comes from when it is (re)configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetadataFrom {
    /// Fetched from this URL (kept in `idp_metadata_url`).
    Url(String),
    /// Pasted, or read from a file by the caller.
    Xml(String),
    /// What the source already stores.
    Stored,
}

/// The SP key pair an operator gives (both PEM; the key in plain text).
pub struct GivenKeys {
    pub certificate_pem: String,
    pub private_key_pem: crate::secrets::Secret,
}

/// Why a source could not be set up: the setting at fault and a sentence.
pub type SetupError = sp::SettingError;

fn setup(pointer: &'static str, message: impl Into<String>) -> SetupError {
    sp::SettingError {
        pointer,
        message: message.into(),
    }
}

/// Fetches IdP metadata from `url` (https, or http on loopback; at most 1 MiB).
pub async fn fetch_metadata(url: &str) -> Result<String, String> {
    let checked = crate::iam::check_provider_url(url, crate::iam::ProviderUrlKind::Endpoint)
        .map_err(|why| format!("the metadata URL {url:?} {why}"))?;
    let mut response = crate::idp::provider_http()?
        .get(checked)
        .send()
        .await
        .map_err(|e| format!("cannot fetch the IdP metadata from {url}: {e}"))?;
    if !response.status().is_success() {
        return Err(format!(
            "the IdP metadata URL {url} answered HTTP {}",
            response.status().as_u16()
        ));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| format!("cannot read the IdP metadata from {url}: {e}"))?
    {
        body.extend_from_slice(&chunk);
        if body.len() > MAX_METADATA_BYTES {
            return Err(format!(
                "the IdP metadata at {url} is larger than {MAX_METADATA_BYTES} bytes"
            ));
        }
    }
    String::from_utf8(body).map_err(|_| format!("the IdP metadata at {url} is not UTF-8"))
}

/// Completes the settings of SAML source `source_id` for storing: imports the IdP
/// metadata (`from`; refused without a signing certificate), and sets the SP key
/// pair: `given` (checked to match, then sealed), else the one `stored` holds, else
/// a new one made now. Returns the settings and the IdP's entityID.
pub async fn prepare_source(
    sealer: &SecretSealer,
    now: chrono::DateTime<chrono::Utc>,
    source_id: &str,
    mut config: SamlConfig,
    from: MetadataFrom,
    given: Option<GivenKeys>,
    stored: Option<&SamlConfig>,
) -> Result<(SamlConfig, IdpMetadata), SetupError> {
    config.sp_certificate = None;
    config.sp_private_key = None;
    config.validate()?;
    let xml = match from {
        MetadataFrom::Xml(xml) => xml,
        MetadataFrom::Url(url) => {
            config.idp_metadata_url = Some(url.clone());
            config.validate()?;
            match fetch_metadata(&url).await {
                Ok(xml) => xml,
                // Unreachable now: keep what was imported before, if anything.
                Err(why) => match stored.filter(|s| !s.idp_metadata.is_empty()) {
                    Some(stored) => {
                        tracing::warn!(source = source_id, reason = %why, "IdP metadata not refreshed; keeping the stored copy");
                        stored.idp_metadata.clone()
                    }
                    None => return Err(setup("/idp_metadata_url", why)),
                },
            }
        }
        MetadataFrom::Stored => stored
            .map(|s| s.idp_metadata.clone())
            .filter(|xml| !xml.is_empty())
            .ok_or_else(|| {
                setup(
                    "/idp_metadata",
                    "no IdP metadata: give idp_metadata_url or the metadata XML",
                )
            })?,
    };
    let pointer = if config.idp_metadata_url.is_some() {
        "/idp_metadata_url"
    } else {
        "/idp_metadata"
    };
    let idp = saml::parse_idp_metadata(&xml)
        .map_err(|e| setup(pointer, format!("IdP metadata refused: {e}")))?;
    if idp.signing_certs.is_empty() {
        return Err(setup(
            pointer,
            "IdP metadata refused: it has no signing certificate",
        ));
    }
    if idp.sso_redirect_url.is_none() && !config.allow_idp_initiated {
        return Err(setup(
            pointer,
            "IdP metadata refused: it has no single sign-on service with the HTTP-Redirect binding, so sign-in could only start at the IdP (allow_idp_initiated is off)",
        ));
    }
    config.idp_metadata = xml;
    match given {
        Some(keys) => {
            sp::check_key_pair(&keys.certificate_pem, keys.private_key_pem.expose())
                .map_err(|why| setup("/sp_private_key", why))?;
            let context = sp::sp_key_context(source_id);
            // The same key sealed before is kept: applying the same configuration
            // again changes nothing.
            let kept = stored
                .filter(|s| s.sp_certificate.as_deref() == Some(keys.certificate_pem.as_str()))
                .and_then(|s| s.sp_private_key.clone())
                .filter(|sealed| {
                    sealer
                        .open_secret(sealed, &context)
                        .is_ok_and(|open| open.expose() == keys.private_key_pem.expose())
                });
            config.sp_private_key = Some(kept.unwrap_or_else(|| {
                sp::seal_sp_key(sealer, source_id, keys.private_key_pem.expose())
            }));
            config.sp_certificate = Some(keys.certificate_pem);
        }
        None => match stored.filter(|s| s.sp_certificate.is_some() && s.sp_private_key.is_some()) {
            Some(stored) => {
                config.sp_certificate = stored.sp_certificate.clone();
                config.sp_private_key = stored.sp_private_key.clone();
            }
            None => {
                let keys = sp::generate_sp_keys(source_id, now).map_err(|why| setup("", why))?;
                config.sp_private_key = Some(sp::seal_sp_key(
                    sealer,
                    source_id,
                    keys.private_key_pem.expose(),
                ));
                config.sp_certificate = Some(keys.certificate_pem);
            }
        },
    }
    config.validate()?;
    Ok((config, idp))
}
