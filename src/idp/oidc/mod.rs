//! OpenID Connect identity sources: Rolegate as a relying party, built on
//! `openidconnect`. `mod.rs` holds a source's settings ([`OidcConfig`], with the client
//! secret sealed by [`seal_client_secret`]) and the errors; `discovery` finds and
//! checks the provider and builds the client; `flow` runs a sign-in; `claims` maps
//! the validated claims to an [`Identity`].
//!
//! A sign-in runs the authorization code flow with PKCE (S256), `state` and `nonce`:
//! [`OidcLogin::begin`] discovers the provider (cached per issuer in the shared cache,
//! so every replica sees it), remembers the pending login under its `state` for ten
//! minutes and returns the provider's authorization URL; [`OidcLogin::take_pending`]
//! consumes that record exactly once when the provider redirects back;
//! [`OidcLogin::complete`] redeems the code, validates the ID token (signature with
//! the provider's published keys and an asymmetric algorithm it advertises, issuer,
//! audience, `azp`, expiry, issue time, nonce, `at_hash`), optionally asks the
//! userinfo endpoint, and maps the claims to an [`Identity`].

use std::collections::{BTreeMap, BTreeSet};
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

mod claims;
mod discovery;
mod flow;

pub use claims::*;
use discovery::*;
pub use flow::*;

/// How long a started sign-in may take at the identity provider.
pub const LOGIN_TTL: Duration = Duration::from_secs(10 * 60);

/// How long a provider's discovery document and keys are reused.
const DISCOVERY_TTL: Duration = Duration::from_secs(15 * 60);

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
    /// How the mapping rules see this source's claims (`[identity_sources.mapping]`:
    /// groups claim, delimiter, prefix filter, GUID lower-casing, the groups cap and
    /// the default case sensitivity).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mapping: Option<crate::mapping::ClaimsHygiene>,
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
            mapping: None,
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
        self.validate_fields().map_err(|(_, error)| error)
    }

    /// [`validate`](Self::validate), naming the setting at fault as a JSON pointer
    /// into the `config` JSON (`/issuer`, `/claims/groups_delimiter`).
    pub fn validate_fields(&self) -> Result<(), (&'static str, OidcError)> {
        provider_url(&self.issuer, "issuer", ProviderUrlKind::Issuer)
            .map_err(|e| ("/issuer", e))?;
        if self.client_id.trim().is_empty() {
            return Err((
                "/client_id",
                OidcError::Misconfigured("client_id is empty".into()),
            ));
        }
        if self.claims.groups_delimiter.is_empty() {
            return Err((
                "/claims/groups_delimiter",
                OidcError::Misconfigured("claims.groups_delimiter is empty".into()),
            ));
        }
        for (what, pointer, uri) in [
            ("redirect_uri", "/redirect_uri", &self.redirect_uri),
            (
                "post_logout_redirect_uri",
                "/post_logout_redirect_uri",
                &self.post_logout_redirect_uri,
            ),
        ] {
            if let Some(uri) = uri
                && Url::parse(uri).is_err()
            {
                return Err((
                    pointer,
                    OidcError::Misconfigured(format!("{what} is not a URL")),
                ));
            }
        }
        crate::sts::portal::check_session_tags(&self.session_tags)
            .map_err(|e| ("/session_tags", OidcError::Misconfigured(e)))?;
        if let Some(mapping) = &self.mapping {
            mapping.check().map_err(|e| {
                (
                    "/mapping",
                    OidcError::Misconfigured(format!("mapping: {e}")),
                )
            })?;
        }
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

/// The shared provider HTTP client ([`crate::idp::provider_http`]).
fn http() -> Result<&'static reqwest::Client, OidcError> {
    super::provider_http().map_err(OidcError::Unavailable)
}

// ---------------------------------------------------------------------------
// Discovery
// ---------------------------------------------------------------------------

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
