//! OpenID Connect identity sources: Rolegate as a relying party, built on
//! `openidconnect`.
//!
//! A sign-in runs the authorization code flow with PKCE (S256), `state` and `nonce`:
//! [`begin`] discovers the provider (cached per issuer in the shared cache, so every
//! replica sees it), remembers the pending login under its `state` for ten minutes and
//! returns the provider's authorization URL; [`take_pending`] consumes that record
//! exactly once when the provider redirects back; [`complete`] redeems the code,
//! validates the ID token (signature with the provider's published keys and an
//! asymmetric algorithm it advertises, issuer, audience, `azp`, expiry, issue time,
//! nonce, `at_hash`), optionally asks the userinfo endpoint, and maps the claims to a
//! [`Identity`].
//!
//! The source's settings are its `config` JSON ([`OidcConfig`]); the client secret in
//! it is sealed with the master key ([`seal_client_secret`]).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;
use std::time::Duration;

use crate::clock::Clock;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreClientAuthMethod, CoreGenderClaim, CoreIdToken,
    CoreIdTokenClaims, CoreIdTokenVerifier, CoreJsonWebKeySet, CoreJwsSigningAlgorithm,
};
use openidconnect::{
    AccessToken, AccessTokenHash, AdditionalClaims, AuthType, AuthorizationCode,
    ClaimsVerificationError, ClientId, ClientSecret, CsrfToken, EndpointMaybeSet, EndpointNotSet,
    EndpointSet, IssuerUrl, LogoutRequest, Nonce, OAuth2TokenResponse, PkceCodeChallenge,
    PkceCodeVerifier, PostLogoutRedirectUrl, ProviderMetadataWithLogout, RedirectUrl,
    RequestTokenError, Scope, SignatureVerificationError, UserInfoClaims,
};
use reqwest::Url;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::cache::{Cache, digest};
use crate::iam::{ProviderUrlKind, check_provider_url};
use crate::idp::identity::{Identity, bounded_claims};
use crate::secrets::Secret;
use crate::service::sealing::SecretSealer;
use crate::store::{IdentitySource, IdentitySourceKind};

/// How long a started sign-in may take at the identity provider.
pub const LOGIN_TTL: Duration = Duration::from_secs(10 * 60);
/// How long a provider's discovery document and keys are reused.
const DISCOVERY_TTL: Duration = Duration::from_secs(15 * 60);
/// Timeout of every request to a provider.
const HTTP_TIMEOUT: Duration = Duration::from_secs(10);
/// Clock difference tolerated between Rolegate and the provider.
const CLOCK_SKEW: chrono::TimeDelta = chrono::TimeDelta::seconds(60);
/// More groups than this are refused rather than kept (memory per session).
const MAX_GROUPS: usize = 10_000;
/// Longest user name, email or display name kept from the claims.
const MAX_NAME_LEN: usize = 256;

/// The settings of one OIDC identity source: its `config` JSON.
///
/// ```json
/// {
///   "issuer": "https://idp.example.com/realms/corp",
///   "client_id": "rolegate",
///   "client_secret": "v1:...sealed...",
///   "scopes": ["openid", "profile", "email", "groups"],
///   "claims": {"user_name": "preferred_username", "email": "email",
///              "display_name": "name", "groups": "groups", "groups_delimiter": ","},
///   "userinfo": false,
///   "token_endpoint_auth": "client_secret_basic",
///   "redirect_uri": "https://rolegate.example.com/signin/oidc/corp/callback",
///   "post_logout_redirect_uri": "https://rolegate.example.com/signin",
///   "trusted_audiences": [],
///   "session_tags": {"Department": "department", "Email": "email"}
/// }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OidcConfig {
    /// `https://` (plain `http://` only on loopback); must equal the discovered issuer.
    pub issuer: String,
    pub client_id: String,
    /// Sealed with the master key (see [`seal_client_secret`]); absent for a public
    /// client (PKCE only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
    /// Requested scopes; `openid` is always requested.
    #[serde(default = "default_scopes")]
    pub scopes: Vec<String>,
    #[serde(default)]
    pub claims: ClaimNames,
    /// Also read the userinfo endpoint (its claims complete the ID token's).
    #[serde(default)]
    pub userinfo: bool,
    /// How the client authenticates at the token endpoint; default: what the
    /// provider advertises, basic first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_endpoint_auth: Option<TokenEndpointAuth>,
    /// Default: `<this server>/signin/oidc/<source id>/callback` as requested.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirect_uri: Option<String>,
    /// Where the provider returns after RP-initiated logout; default
    /// `<this server>/signin`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub post_logout_redirect_uri: Option<String>,
    /// Further audiences an ID token may name besides `client_id` (then its `azp`
    /// must be `client_id`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub trusted_audiences: Vec<String>,
    /// Session tags from claims: tag key → claim name (dotted names find nested
    /// claims). String, number and boolean claims become tag values; a missing claim
    /// or a value IAM tags cannot hold leaves the tag out (logged).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub session_tags: BTreeMap<String, String>,
}

fn default_scopes() -> Vec<String> {
    ["openid", "profile", "email"].map(str::to_owned).to_vec()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenEndpointAuth {
    ClientSecretBasic,
    ClientSecretPost,
}

/// Which claims carry what. A name with dots (`realm_access.roles`) also finds a
/// nested claim when no claim has that literal name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClaimNames {
    /// Falls back to the email, then `sub`.
    pub user_name: String,
    pub email: String,
    /// Falls back to the user name.
    pub display_name: String,
    /// An array of names, or one string split at `groups_delimiter`.
    pub groups: String,
    pub groups_delimiter: String,
}

impl Default for ClaimNames {
    fn default() -> Self {
        Self {
            user_name: "preferred_username".into(),
            email: "email".into(),
            display_name: "name".into(),
            groups: "groups".into(),
            groups_delimiter: ",".into(),
        }
    }
}

impl OidcConfig {
    /// Minimal settings; the rest at their defaults.
    pub fn new(issuer: impl Into<String>, client_id: impl Into<String>) -> Self {
        Self {
            issuer: issuer.into(),
            client_id: client_id.into(),
            client_secret: None,
            scopes: default_scopes(),
            claims: ClaimNames::default(),
            userinfo: false,
            token_endpoint_auth: None,
            redirect_uri: None,
            post_logout_redirect_uri: None,
            trusted_audiences: Vec::new(),
            session_tags: BTreeMap::new(),
        }
    }

    /// The settings of `source`, which must be an OIDC source.
    pub fn from_source(source: &IdentitySource) -> Result<Self, OidcError> {
        if source.kind != IdentitySourceKind::Oidc {
            return Err(OidcError::UnknownSource(source.id.clone()));
        }
        let config: Self = serde_json::from_value(source.config.clone())
            .map_err(|e| OidcError::Misconfigured(format!("invalid OIDC settings: {e}")))?;
        config.validate()?;
        Ok(config)
    }

    /// Checks what can be checked without asking the provider.
    pub fn validate(&self) -> Result<(), OidcError> {
        provider_url(&self.issuer, "issuer", ProviderUrlKind::Issuer)?;
        if self.client_id.trim().is_empty() {
            return Err(OidcError::Misconfigured("client_id is empty".into()));
        }
        if self.claims.groups_delimiter.is_empty() {
            return Err(OidcError::Misconfigured(
                "claims.groups_delimiter is empty".into(),
            ));
        }
        for (what, uri) in [
            ("redirect_uri", &self.redirect_uri),
            ("post_logout_redirect_uri", &self.post_logout_redirect_uri),
        ] {
            if let Some(uri) = uri
                && Url::parse(uri).is_err()
            {
                return Err(OidcError::Misconfigured(format!("{what} is not a URL")));
            }
        }
        crate::sts::portal::check_session_tags(&self.session_tags)
            .map_err(OidcError::Misconfigured)?;
        Ok(())
    }

    /// The JSON stored as the source's `config`.
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

/// What binds a sealed client secret to its source.
pub fn client_secret_context(source_id: &str) -> String {
    format!("oidc-client-secret:{source_id}")
}

/// Seals a client secret for the `client_secret` field of source `source_id`.
pub fn seal_client_secret(sealer: &SecretSealer, source_id: &str, secret: &str) -> String {
    sealer.seal_secret(secret, &client_secret_context(source_id))
}

/// Why an OIDC sign-in did not happen. `Display` is the reason for logs and the
/// audit log: it never contains tokens, codes or secrets.
#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    #[error("unknown or disabled identity source {0:?}")]
    UnknownSource(String),
    #[error("identity source misconfigured: {0}")]
    Misconfigured(String),
    #[error("identity provider unreachable or invalid: {0}")]
    Provider(String),
    #[error("sign-in state unavailable: {0}")]
    Unavailable(String),
    #[error("no state parameter in the callback")]
    MissingState,
    #[error("unknown, expired or forged state")]
    UnknownState,
    #[error("state already used (replayed callback)")]
    ReplayedState,
    #[error("the sign-in was started for another identity source")]
    SourceMismatch,
    #[error("the sign-in was started in another browser")]
    BrowserMismatch,
    #[error("the callback names another issuer: {0}")]
    IssuerMismatch(String),
    #[error("identity provider returned error {error}{}", description.as_deref().map(|d| format!(": {d}")).unwrap_or_default())]
    ProviderError {
        error: String,
        description: Option<String>,
    },
    #[error("no authorization code in the callback")]
    MissingCode,
    #[error("the token endpoint refused the code: {0}")]
    CodeRejected(String),
    #[error("no ID token in the token response")]
    MissingIdToken,
    #[error("ID token from the wrong issuer: {0}")]
    WrongIssuer(String),
    #[error("ID token for the wrong audience: {0}")]
    WrongAudience(String),
    #[error("ID token expired or not yet valid: {0}")]
    Expired(String),
    #[error("ID token nonce does not match the sign-in: {0}")]
    WrongNonce(String),
    #[error("ID token signature invalid: {0}")]
    BadSignature(String),
    #[error("ID token invalid: {0}")]
    InvalidToken(String),
    #[error("userinfo failed: {0}")]
    UserInfo(String),
    #[error("claims unusable: {0}")]
    Claims(String),
}

impl OidcError {
    /// A short stable code for the audit log.
    pub fn code(&self) -> &'static str {
        match self {
            OidcError::UnknownSource(_) => "unknown_source",
            OidcError::Misconfigured(_) => "misconfigured",
            OidcError::Provider(_) => "provider_unavailable",
            OidcError::Unavailable(_) => "unavailable",
            OidcError::MissingState => "missing_state",
            OidcError::UnknownState => "unknown_state",
            OidcError::ReplayedState => "replayed_state",
            OidcError::SourceMismatch => "source_mismatch",
            OidcError::BrowserMismatch => "browser_mismatch",
            OidcError::IssuerMismatch(_) => "issuer_mismatch",
            OidcError::ProviderError { .. } => "provider_error",
            OidcError::MissingCode => "missing_code",
            OidcError::CodeRejected(_) => "code_rejected",
            OidcError::MissingIdToken => "missing_id_token",
            OidcError::WrongIssuer(_) => "wrong_issuer",
            OidcError::WrongAudience(_) => "wrong_audience",
            OidcError::Expired(_) => "expired_token",
            OidcError::WrongNonce(_) => "wrong_nonce",
            OidcError::BadSignature(_) => "bad_signature",
            OidcError::InvalidToken(_) => "invalid_token",
            OidcError::UserInfo(_) => "userinfo_failed",
            OidcError::Claims(_) => "unusable_claims",
        }
    }
}

/// A provider URL of `kind` under the one set of rules
/// ([`crate::iam::check_provider_url`]), refused as a misconfiguration.
pub fn provider_url(value: &str, what: &str, kind: ProviderUrlKind) -> Result<Url, OidcError> {
    check_provider_url(value, kind)
        .map_err(|why| OidcError::Misconfigured(format!("the {what} {value:?} {why}")))
}

/// One HTTP client for every provider: no redirects (a provider must not steer
/// Rolegate elsewhere), short timeouts.
fn http() -> Result<&'static reqwest::Client, OidcError> {
    static CLIENT: OnceLock<Result<reqwest::Client, String>> = OnceLock::new();
    CLIENT
        .get_or_init(|| {
            reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .connect_timeout(HTTP_TIMEOUT)
                .timeout(HTTP_TIMEOUT)
                .build()
                .map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|e| OidcError::Unavailable(format!("HTTP client: {e}")))
}

// ---------------------------------------------------------------------------
// Discovery
// ---------------------------------------------------------------------------

#[derive(Serialize, Deserialize)]
struct Discovered {
    metadata: ProviderMetadataWithLogout,
    jwks: CoreJsonWebKeySet,
}

fn discovery_key(issuer: &str) -> String {
    format!("oidc-discovery:{}", digest(issuer))
}

/// The provider's discovery document and keys: from the cache unless `refresh`.
async fn discover(
    cache: &dyn Cache,
    config: &OidcConfig,
    refresh: bool,
) -> Result<ProviderMetadataWithLogout, OidcError> {
    let key = discovery_key(&config.issuer);
    if !refresh
        && let Ok(Some(bytes)) = cache.get(&key).await
        && let Ok(found) = serde_json::from_slice::<Discovered>(&bytes)
    {
        return Ok(found.metadata.set_jwks(found.jwks));
    }
    let issuer = IssuerUrl::new(config.issuer.clone())
        .map_err(|e| OidcError::Misconfigured(format!("issuer: {e}")))?;
    let metadata = ProviderMetadataWithLogout::discover_async(issuer, http()?)
        .await
        .map_err(|e| OidcError::Provider(format!("discovery failed: {}", error_chain(&e))))?;
    check_metadata(&metadata)?;
    let stored = Discovered {
        jwks: metadata.jwks().clone(),
        metadata: metadata.clone(),
    };
    if let Ok(bytes) = serde_json::to_vec(&stored)
        && let Err(error) = cache.put(&key, &bytes, DISCOVERY_TTL).await
    {
        tracing::warn!(%error, "cannot cache OIDC discovery document");
    }
    Ok(metadata)
}

/// Every endpoint Rolegate talks to or sends people to follows the issuer rule.
fn check_metadata(metadata: &ProviderMetadataWithLogout) -> Result<(), OidcError> {
    let provider = |e: OidcError| OidcError::Provider(e.to_string());
    provider_url(
        metadata.authorization_endpoint().as_str(),
        "authorization endpoint",
        ProviderUrlKind::Endpoint,
    )
    .map_err(provider)?;
    provider_url(
        metadata.jwks_uri().as_str(),
        "JWKS URI",
        ProviderUrlKind::Endpoint,
    )
    .map_err(provider)?;
    let Some(token) = metadata.token_endpoint() else {
        return Err(OidcError::Provider(
            "the provider has no token endpoint".into(),
        ));
    };
    provider_url(token.as_str(), "token endpoint", ProviderUrlKind::Endpoint).map_err(provider)?;
    if let Some(userinfo) = metadata.userinfo_endpoint() {
        provider_url(
            userinfo.as_str(),
            "userinfo endpoint",
            ProviderUrlKind::Endpoint,
        )
        .map_err(provider)?;
    }
    if let Some(end) = &metadata.additional_metadata().end_session_endpoint {
        provider_url(
            end.as_str(),
            "end session endpoint",
            ProviderUrlKind::Endpoint,
        )
        .map_err(provider)?;
    }
    Ok(())
}

/// An error and its sources on one line (no bodies: openidconnect keeps those apart).
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

// ---------------------------------------------------------------------------
// Starting a sign-in
// ---------------------------------------------------------------------------

/// A sign-in that went to the provider and has not come back yet. Stored in the
/// cache under a hash of its `state`, for [`LOGIN_TTL`], and consumed once.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PendingLogin {
    pub source_id: String,
    pub nonce: String,
    pub pkce_verifier: String,
    pub redirect_uri: String,
    /// Where to go after sign-in (a local path).
    pub return_to: String,
    /// SHA-256 of the browser-binding cookie the sign-in was started with.
    pub browser: String,
    pub started_at: i64,
}

fn pending_key(state: &str) -> String {
    format!("oidc-login:{}", digest(state))
}

fn used_key(state: &str) -> String {
    format!("oidc-login-used:{}", digest(state))
}

/// The relying party's client as built from discovery.
type Rp = CoreClient<
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// The client for one sign-in.
fn build_client(
    config: &OidcConfig,
    metadata: ProviderMetadataWithLogout,
    secret: Option<&Secret>,
    redirect_uri: &str,
) -> Result<Rp, OidcError> {
    let auth = match config.token_endpoint_auth {
        Some(TokenEndpointAuth::ClientSecretPost) => AuthType::RequestBody,
        Some(TokenEndpointAuth::ClientSecretBasic) => AuthType::BasicAuth,
        None => preferred_auth(&metadata),
    };
    let redirect = RedirectUrl::new(redirect_uri.to_owned())
        .map_err(|e| OidcError::Misconfigured(format!("redirect URI: {e}")))?;
    Ok(CoreClient::from_provider_metadata(
        metadata,
        ClientId::new(config.client_id.clone()),
        secret.map(|s| ClientSecret::new(s.expose().to_owned())),
    )
    .set_redirect_uri(redirect)
    .set_auth_type(auth))
}

fn preferred_auth(metadata: &ProviderMetadataWithLogout) -> AuthType {
    match metadata.token_endpoint_auth_methods_supported() {
        Some(methods)
            if !methods.contains(&CoreClientAuthMethod::ClientSecretBasic)
                && methods.contains(&CoreClientAuthMethod::ClientSecretPost) =>
        {
            AuthType::RequestBody
        }
        _ => AuthType::BasicAuth,
    }
}

fn client_secret(
    sealer: &SecretSealer,
    source_id: &str,
    config: &OidcConfig,
) -> Result<Option<Secret>, OidcError> {
    config
        .client_secret
        .as_deref()
        .map(|sealed| {
            sealer
                .open_secret(sealed, &client_secret_context(source_id))
                .map_err(|e| OidcError::Misconfigured(format!("client secret: {e}")))
        })
        .transpose()
}

/// Starts a sign-in at `source`: remembers it and returns the provider's
/// authorization URL to send the browser to. `default_redirect_uri` is used when
/// the source configures none; `browser` is the browser-binding cookie's value.
pub async fn begin(
    cache: &dyn Cache,
    clock: &Clock,
    sealer: &SecretSealer,
    source: &IdentitySource,
    default_redirect_uri: &str,
    return_to: &str,
    browser: &str,
) -> Result<String, OidcError> {
    if !source.enabled {
        return Err(OidcError::UnknownSource(source.id.clone()));
    }
    let config = OidcConfig::from_source(source)?;
    let secret = client_secret(sealer, &source.id, &config)?;
    let metadata = discover(cache, &config, false).await?;
    let redirect_uri = config
        .redirect_uri
        .clone()
        .unwrap_or_else(|| default_redirect_uri.to_owned());
    let client = build_client(&config, metadata, secret.as_ref(), &redirect_uri)?;
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let mut request = client.authorize_url(
        CoreAuthenticationFlow::AuthorizationCode,
        CsrfToken::new_random,
        Nonce::new_random,
    );
    for scope in config
        .scopes
        .iter()
        .filter(|s| *s != "openid" && !s.is_empty())
    {
        request = request.add_scope(Scope::new(scope.clone()));
    }
    let (url, state, nonce) = request.set_pkce_challenge(challenge).url();
    let pending = PendingLogin {
        source_id: source.id.clone(),
        nonce: nonce.secret().clone(),
        pkce_verifier: verifier.secret().clone(),
        redirect_uri,
        return_to: return_to.to_owned(),
        browser: digest(browser),
        started_at: clock.timestamp(),
    };
    let bytes = serde_json::to_vec(&pending).map_err(|e| OidcError::Unavailable(e.to_string()))?;
    cache
        .put(&pending_key(state.secret()), &bytes, LOGIN_TTL)
        .await
        .map_err(|e| OidcError::Unavailable(e.to_string()))?;
    Ok(url.to_string())
}

/// Consumes the pending sign-in named by `state`: the first call wins, a second
/// (a replayed callback) gets [`OidcError::ReplayedState`], an unknown or expired
/// state [`OidcError::UnknownState`].
pub async fn take_pending(cache: &dyn Cache, state: &str) -> Result<PendingLogin, OidcError> {
    if state.is_empty() {
        return Err(OidcError::MissingState);
    }
    if state.len() > 512 {
        return Err(OidcError::UnknownState);
    }
    let unavailable = |e: crate::cache::CacheError| OidcError::Unavailable(e.to_string());
    let first = cache
        .put_if_absent(&used_key(state), b"1", LOGIN_TTL)
        .await
        .map_err(unavailable)?;
    if !first {
        return Err(OidcError::ReplayedState);
    }
    let key = pending_key(state);
    let Some(stored) = cache.get(&key).await.map_err(unavailable)? else {
        return Err(OidcError::UnknownState);
    };
    cache.delete(&key).await.map_err(unavailable)?;
    serde_json::from_slice(&stored).map_err(|_| OidcError::UnknownState)
}

/// Whether `browser` (the binding cookie's value) is the one the sign-in started with.
pub fn same_browser(pending: &PendingLogin, browser: Option<&str>) -> bool {
    browser.is_some_and(|b| {
        let presented = digest(b);
        presented.len() == pending.browser.len()
            && bool::from(subtle::ConstantTimeEq::ct_eq(
                presented.as_bytes(),
                pending.browser.as_bytes(),
            ))
    })
}

// ---------------------------------------------------------------------------
// Completing a sign-in
// ---------------------------------------------------------------------------

/// The claims beyond the standard ones (groups and whatever the source maps).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct OtherClaims {
    #[serde(flatten)]
    claims: Map<String, Value>,
}

impl AdditionalClaims for OtherClaims {}

/// A validated sign-in.
#[derive(Debug, Clone)]
pub struct SignedIn {
    pub identity: Identity,
    /// The raw ID token, kept for `id_token_hint` at RP-initiated logout.
    pub id_token: String,
    /// The validated claims (ID token, then userinfo), for diagnostics and mapping.
    pub claims: Map<String, Value>,
}

/// Redeems `code` for the sign-in `pending` at `source` and validates the answer.
pub async fn complete(
    cache: &dyn Cache,
    clock: &Clock,
    sealer: &SecretSealer,
    source: &IdentitySource,
    pending: &PendingLogin,
    code: &str,
) -> Result<SignedIn, OidcError> {
    if !source.enabled {
        return Err(OidcError::UnknownSource(source.id.clone()));
    }
    if pending.source_id != source.id {
        return Err(OidcError::SourceMismatch);
    }
    let config = OidcConfig::from_source(source)?;
    let secret = client_secret(sealer, &source.id, &config)?;
    let mut metadata = discover(cache, &config, false).await?;
    let client = build_client(
        &config,
        metadata.clone(),
        secret.as_ref(),
        &pending.redirect_uri,
    )?;
    let http = http()?;
    let response = client
        .exchange_code(AuthorizationCode::new(code.to_owned()))
        .map_err(|e| OidcError::Provider(e.to_string()))?
        .set_pkce_verifier(PkceCodeVerifier::new(pending.pkce_verifier.clone()))
        .request_async(http)
        .await
        .map_err(|e| match e {
            RequestTokenError::ServerResponse(answer) => OidcError::CodeRejected(format!(
                "{}{}",
                answer.error().as_ref(),
                answer
                    .error_description()
                    .map(|d| format!(": {}", clip(d)))
                    .unwrap_or_default()
            )),
            // The body may hold tokens: never include it.
            RequestTokenError::Parse(error, _) => {
                OidcError::InvalidToken(format!("unreadable token response at {}", error.path()))
            }
            RequestTokenError::Request(error) => {
                OidcError::Provider(format!("token request failed: {}", error_chain(&error)))
            }
            RequestTokenError::Other(reason) => OidcError::Provider(reason),
        })?;
    let id_token = response
        .extra_fields()
        .id_token()
        .ok_or(OidcError::MissingIdToken)?;
    let nonce = Nonce::new(pending.nonce.clone());
    let access_token = response.access_token();
    let claims = match verify(
        &config,
        &metadata,
        id_token,
        &nonce,
        access_token,
        clock.now(),
    ) {
        // The provider may have rotated its keys since discovery: look again, once.
        Err(OidcError::BadSignature(reason)) if reason == NO_MATCHING_KEY => {
            metadata = discover(cache, &config, true).await?;
            verify(
                &config,
                &metadata,
                id_token,
                &nonce,
                access_token,
                clock.now(),
            )?
        }
        other => other?,
    };
    let raw = id_token.to_string();
    let mut all = verified_payload(&raw)?;
    if config.userinfo && metadata.userinfo_endpoint().is_some() {
        let client = build_client(&config, metadata, secret.as_ref(), &pending.redirect_uri)?;
        let request = client
            .user_info(access_token.clone(), Some(claims.subject().clone()))
            .map_err(|e| OidcError::UserInfo(e.to_string()))?;
        let info: UserInfoClaims<OtherClaims, CoreGenderClaim> = request
            .request_async(http)
            .await
            .map_err(|e| OidcError::UserInfo(error_chain(&e)))?;
        if let Ok(Value::Object(extra)) = serde_json::to_value(&info) {
            for (name, value) in extra {
                // The ID token's own claims (iss, aud, nonce...) stay as validated.
                if !matches!(
                    name.as_str(),
                    "iss" | "aud" | "sub" | "exp" | "iat" | "nonce" | "azp"
                ) {
                    all.insert(name, value);
                }
            }
        }
    }
    let mut identity = map_identity(&source.id, &all, &config.claims)?;
    identity.attributes =
        claim_attributes(&source.id, &identity.user_name, &all, &config.session_tags);
    Ok(SignedIn {
        identity,
        id_token: raw,
        claims: all,
    })
}

fn clip(text: &str) -> String {
    text.chars().take(200).collect()
}

const NO_MATCHING_KEY: &str = "no matching key in the provider's key set";

/// Validates the ID token: signature (with the provider's keys and an asymmetric
/// algorithm it advertises), issuer, audience and `azp`, expiry and issue time,
/// nonce, `at_hash`.
fn verify(
    config: &OidcConfig,
    metadata: &ProviderMetadataWithLogout,
    id_token: &CoreIdToken,
    nonce: &Nonce,
    access_token: &AccessToken,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<CoreIdTokenClaims, OidcError> {
    let trusted: BTreeSet<String> = config.trusted_audiences.iter().cloned().collect();
    let verifier = CoreIdTokenVerifier::new_public_client(
        ClientId::new(config.client_id.clone()),
        metadata.issuer().clone(),
        metadata.jwks().clone(),
    )
    .set_allowed_algs(asymmetric_algs(
        metadata.id_token_signing_alg_values_supported(),
    ))
    .set_other_audience_verifier_fn(move |aud| trusted.contains(aud.as_str()))
    .set_time_fn(move || now - CLOCK_SKEW)
    .set_issue_time_verifier_fn(move |iat| {
        if iat > now + CLOCK_SKEW {
            Err(format!("issued in the future ({iat})"))
        } else {
            Ok(())
        }
    });
    let claims = id_token.claims(&verifier, nonce).map_err(claims_error)?;
    match claims.authorized_party() {
        Some(azp) if azp.as_str() != config.client_id => {
            return Err(OidcError::WrongAudience(format!(
                "azp is {:?}, not this client",
                azp.as_str()
            )));
        }
        None if claims.audiences().len() > 1 => {
            return Err(OidcError::WrongAudience(
                "several audiences but no azp claim".into(),
            ));
        }
        _ => {}
    }
    if let Some(expected) = claims.access_token_hash() {
        let alg = id_token
            .signing_alg()
            .map_err(|e| OidcError::BadSignature(e.to_string()))?;
        let key = id_token
            .signing_key(&verifier)
            .map_err(|e| OidcError::BadSignature(e.to_string()))?;
        let actual = AccessTokenHash::from_token(access_token, alg, key)
            .map_err(|e| OidcError::InvalidToken(format!("at_hash: {e}")))?;
        if actual != *expected {
            return Err(OidcError::InvalidToken(
                "at_hash does not match the access token".into(),
            ));
        }
    }
    Ok(claims.clone())
}

/// RS/PS/ES/EdDSA only: never `none`, never HMAC with the client secret.
fn asymmetric_algs(advertised: &[CoreJwsSigningAlgorithm]) -> Vec<CoreJwsSigningAlgorithm> {
    use CoreJwsSigningAlgorithm as A;
    let allowed = [
        A::RsaSsaPkcs1V15Sha256,
        A::RsaSsaPkcs1V15Sha384,
        A::RsaSsaPkcs1V15Sha512,
        A::RsaSsaPssSha256,
        A::RsaSsaPssSha384,
        A::RsaSsaPssSha512,
        A::EcdsaP256Sha256,
        A::EcdsaP384Sha384,
        A::EdDsa,
    ];
    let picked: Vec<_> = advertised
        .iter()
        .filter(|alg| allowed.contains(alg))
        .cloned()
        .collect();
    if picked.is_empty() {
        allowed.to_vec()
    } else {
        picked
    }
}

fn claims_error(error: ClaimsVerificationError) -> OidcError {
    match error {
        ClaimsVerificationError::InvalidIssuer(why) => OidcError::WrongIssuer(why),
        ClaimsVerificationError::InvalidAudience(why) => OidcError::WrongAudience(why),
        ClaimsVerificationError::Expired(why) => OidcError::Expired(why),
        ClaimsVerificationError::InvalidNonce(why) => OidcError::WrongNonce(why),
        ClaimsVerificationError::SignatureVerification(inner) => {
            OidcError::BadSignature(match inner {
                SignatureVerificationError::NoSignature => "unsigned token (alg none)".into(),
                SignatureVerificationError::NoMatchingKey => NO_MATCHING_KEY.into(),
                other => other.to_string(),
            })
        }
        other => OidcError::InvalidToken(other.to_string()),
    }
}

/// The payload of an ID token whose signature has been verified.
fn verified_payload(raw: &str) -> Result<Map<String, Value>, OidcError> {
    let payload = raw
        .split('.')
        .nth(1)
        .ok_or_else(|| OidcError::InvalidToken("not a JWS".into()))?;
    let bytes = URL_SAFE_NO_PAD
        .decode(payload)
        .map_err(|_| OidcError::InvalidToken("payload is not base64url".into()))?;
    match serde_json::from_slice(&bytes) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(OidcError::InvalidToken(
            "payload is not a JSON object".into(),
        )),
    }
}

// ---------------------------------------------------------------------------
// Claim mapping
// ---------------------------------------------------------------------------

/// A claim by name; a dotted name also finds a nested claim.
fn claim<'a>(claims: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    if name.is_empty() {
        return None;
    }
    if let Some(value) = claims.get(name) {
        return Some(value);
    }
    let mut parts = name.split('.');
    let mut value = claims.get(parts.next()?)?;
    for part in parts {
        value = value.as_object()?.get(part)?;
    }
    Some(value)
}

fn text_claim(claims: &Map<String, Value>, name: &str) -> Option<String> {
    let value = claim(claims, name)?.as_str()?.trim();
    if value.is_empty() || value.chars().any(char::is_control) {
        return None;
    }
    Some(value.chars().take(MAX_NAME_LEN).collect())
}

/// Group names from an array (of strings) or one delimited string.
pub fn groups_from(value: Option<&Value>, delimiter: &str) -> Result<Vec<String>, OidcError> {
    let raw: Vec<String> = match value {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(s)) => s.split(delimiter).map(str::to_owned).collect(),
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|item| match item {
                Value::String(s) => Some(s.clone()),
                Value::Number(n) => Some(n.to_string()),
                _ => None,
            })
            .collect(),
        Some(_) => {
            return Err(OidcError::Claims(
                "the groups claim is neither an array nor a string".into(),
            ));
        }
    };
    let mut seen = BTreeSet::new();
    let mut groups = Vec::new();
    for group in raw {
        let group = group.trim();
        if group.is_empty() || group.chars().any(char::is_control) {
            continue;
        }
        if seen.insert(group.to_lowercase()) {
            groups.push(group.to_owned());
        }
    }
    if groups.len() > MAX_GROUPS {
        return Err(OidcError::Claims(format!(
            "{} groups; at most {MAX_GROUPS} are accepted",
            groups.len()
        )));
    }
    Ok(groups)
}

/// Maps validated claims to a portal identity with the source's claim names.
pub fn map_identity(
    source_id: &str,
    claims: &Map<String, Value>,
    names: &ClaimNames,
) -> Result<Identity, OidcError> {
    let subject =
        text_claim(claims, "sub").ok_or_else(|| OidcError::Claims("no sub claim".into()))?;
    // An address the provider says it has not verified is not an identity.
    let verified = claims
        .get("email_verified")
        .and_then(Value::as_bool)
        .unwrap_or(true);
    let email = text_claim(claims, &names.email).filter(|_| verified);
    let user_name = text_claim(claims, &names.user_name)
        .or_else(|| email.clone())
        .unwrap_or_else(|| subject.clone());
    let display_name = text_claim(claims, &names.display_name).unwrap_or_else(|| user_name.clone());
    let groups = groups_from(claim(claims, &names.groups), &names.groups_delimiter)?;
    let other_claims = claims
        .iter()
        .filter(|(name, _)| !TOKEN_CLAIMS.contains(&name.as_str()))
        .map(|(name, value)| (name.clone(), value.clone()));
    Ok(Identity {
        source_id: source_id.to_owned(),
        subject,
        user_name,
        display_name,
        email,
        groups,
        attributes: BTreeMap::new(),
        claims: bounded_claims(source_id, other_claims),
    })
}

/// Claims about the token rather than the person: not kept in the identity.
const TOKEN_CLAIMS: &[&str] = &[
    "iss",
    "sub",
    "aud",
    "exp",
    "iat",
    "nbf",
    "nonce",
    "at_hash",
    "c_hash",
    "azp",
    "auth_time",
    "jti",
    "sid",
];

/// A claim as a session-tag value: strings, numbers and booleans.
fn claim_text(claims: &Map<String, Value>, name: &str) -> Option<String> {
    match claim(claims, name)? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// The session-tag attributes of a sign-in, by the source's `session_tags`
/// (tag key → claim name); skipped tags are logged.
pub fn claim_attributes(
    source_id: &str,
    user_name: &str,
    claims: &Map<String, Value>,
    session_tags: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    let (tags, skipped) =
        crate::sts::portal::select_attributes(session_tags, |name| claim_text(claims, name));
    crate::sts::portal::log_skipped_tags(source_id, user_name, &skipped);
    tags
}

// ---------------------------------------------------------------------------
// RP-initiated logout
// ---------------------------------------------------------------------------

/// The provider's end-session URL for a session signed in with `id_token`, when the
/// provider advertises one: `id_token_hint`, `client_id` and
/// `post_logout_redirect_uri` (the source's, else `default_post_logout`).
pub async fn logout_url(
    cache: &dyn Cache,
    source: &IdentitySource,
    id_token: &str,
    default_post_logout: &str,
) -> Result<Option<String>, OidcError> {
    let config = OidcConfig::from_source(source)?;
    let metadata = discover(cache, &config, false).await?;
    let Some(end) = metadata.additional_metadata().end_session_endpoint.clone() else {
        return Ok(None);
    };
    let hint: CoreIdToken = id_token
        .parse()
        .map_err(|_| OidcError::InvalidToken("stored ID token unreadable".into()))?;
    let post_logout = config
        .post_logout_redirect_uri
        .clone()
        .unwrap_or_else(|| default_post_logout.to_owned());
    let post_logout = PostLogoutRedirectUrl::new(post_logout)
        .map_err(|e| OidcError::Misconfigured(format!("post_logout_redirect_uri: {e}")))?;
    let url = LogoutRequest::from(end)
        .set_id_token_hint(&hint)
        .set_client_id(ClientId::new(config.client_id.clone()))
        .set_post_logout_redirect_uri(post_logout)
        .http_get_url();
    Ok(Some(url.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(value: Value) -> Map<String, Value> {
        value.as_object().unwrap().clone()
    }

    #[test]
    fn provider_urls_need_https_except_on_loopback() {
        for ok in [
            "https://idp.example.com",
            "http://127.0.0.1:8080",
            "http://localhost:9000/realms/x",
            "http://[::1]:1",
        ] {
            assert!(
                provider_url(ok, "issuer", ProviderUrlKind::Issuer).is_ok(),
                "{ok}"
            );
        }
        for bad in [
            "http://idp.example.com",
            "ftp://127.0.0.1",
            "https://user:pw@idp.example.com",
            "https://idp.example.com/#f",
            "not a url",
        ] {
            assert!(
                provider_url(bad, "issuer", ProviderUrlKind::Issuer).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn config_defaults_and_round_trip() {
        let config: OidcConfig = serde_json::from_value(json!({
            "issuer": "https://idp.example.com",
            "client_id": "rolegate"
        }))
        .unwrap();
        assert_eq!(
            config,
            OidcConfig::new("https://idp.example.com", "rolegate")
        );
        assert_eq!(config.claims.user_name, "preferred_username");
        assert_eq!(config.scopes, ["openid", "profile", "email"]);
        let back: OidcConfig = serde_json::from_value(config.to_json()).unwrap();
        assert_eq!(back, config);
        assert!(
            serde_json::from_value::<OidcConfig>(json!({
                "issuer": "https://idp.example.com", "client_id": "x", "clientsecret": "typo"
            }))
            .is_err()
        );
    }

    #[test]
    fn groups_as_array_or_delimited_string() {
        assert_eq!(
            groups_from(Some(&json!(["a", " b ", "", "A", 7, {"x": 1}])), ",").unwrap(),
            ["a", "b", "7"]
        );
        assert_eq!(
            groups_from(Some(&json!("x; y;;z")), ";").unwrap(),
            ["x", "y", "z"]
        );
        assert_eq!(groups_from(Some(&json!("x y")), " ").unwrap(), ["x", "y"]);
        assert!(groups_from(None, ",").unwrap().is_empty());
        assert!(groups_from(Some(&json!(true)), ",").is_err());
        let many: Vec<String> = (0..5000).map(|i| format!("group-{i}")).collect();
        assert_eq!(groups_from(Some(&json!(many)), ",").unwrap().len(), 5000);
    }

    #[test]
    fn user_name_falls_back_to_email_then_sub() {
        let names = ClaimNames::default();
        let full = map(
            json!({"sub": "s1", "preferred_username": "alice", "email": "a@x.io", "name": "Alice A", "groups": ["dev"]}),
        );
        let id = map_identity("corp", &full, &names).unwrap();
        assert_eq!(
            (id.user_name.as_str(), id.display_name.as_str()),
            ("alice", "Alice A")
        );
        assert_eq!(id.email.as_deref(), Some("a@x.io"));
        assert_eq!(id.groups, ["dev"]);
        let email_only = map(json!({"sub": "s1", "email": "a@x.io"}));
        assert_eq!(
            map_identity("corp", &email_only, &names).unwrap().user_name,
            "a@x.io"
        );
        let unverified = map(json!({"sub": "s1", "email": "a@x.io", "email_verified": false}));
        let id = map_identity("corp", &unverified, &names).unwrap();
        assert_eq!((id.user_name.as_str(), id.email), ("s1", None));
        assert!(map_identity("corp", &map(json!({"email": "a@x.io"})), &names).is_err());
    }

    #[test]
    fn nested_claim_names() {
        let names = ClaimNames {
            groups: "realm_access.roles".into(),
            ..ClaimNames::default()
        };
        let claims = map(json!({"sub": "s", "realm_access": {"roles": ["admin"]}}));
        assert_eq!(
            map_identity("kc", &claims, &names).unwrap().groups,
            ["admin"]
        );
    }

    #[test]
    fn session_tags_from_claims() {
        let config: OidcConfig = serde_json::from_value(json!({
            "issuer": "https://idp.example.com", "client_id": "x",
            "session_tags": {"Department": "department", "Level": "org.level", "Admin": "admin",
                             "Groups": "groups", "Gone": "missing"}
        }))
        .unwrap();
        config.validate().unwrap();
        let claims = map(json!({"sub": "s", "department": "R&D", "org": {"level": 7},
                                "admin": true, "groups": ["a"]}));
        let tags = claim_attributes("corp", "s", &claims, &config.session_tags);
        assert_eq!(tags.get("Level").map(String::as_str), Some("7"));
        assert_eq!(tags.get("Admin").map(String::as_str), Some("true"));
        assert!(
            !tags.contains_key("Department"),
            "& is not allowed in tag values"
        );
        assert!(!tags.contains_key("Groups") && !tags.contains_key("Gone"));
        let mut bad = config.clone();
        bad.session_tags.insert("aws:Reserved".into(), "x".into());
        assert!(bad.validate().is_err());
        let back: OidcConfig = serde_json::from_value(config.to_json()).unwrap();
        assert_eq!(back, config);
    }

    #[test]
    fn only_asymmetric_algorithms() {
        use CoreJwsSigningAlgorithm as A;
        assert_eq!(
            asymmetric_algs(&[A::HmacSha256, A::None, A::RsaSsaPkcs1V15Sha256]),
            [A::RsaSsaPkcs1V15Sha256]
        );
        assert!(!asymmetric_algs(&[A::None]).contains(&A::None));
    }
}
