//! Device authorization and SSO tokens: the OAuth 2.0 device authorization grant
//! (RFC 8628) and the authorization code grant with PKCE as AWS SSO-OIDC speaks
//! them, a person's approval of a user code, and the access and refresh tokens of
//! the terminal sign-ins they start. Each sign-in is a token family: refresh tokens
//! rotate, a replayed one ends the family, Logout ends it, and a per-user index lets
//! an administrator list and revoke one person's families.
//!
//! Client registrations are stateless: the client secret is a sealed blob naming the
//! client. Device codes, authorization codes, access and refresh tokens live in the
//! cache under hashes of their values, so whoever reads the cache cannot use what
//! it finds there.

mod approval;
mod authorization_code;
mod client;
mod tokens;
mod user_code;

use std::sync::Arc;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

pub use approval::{Approver, Budget, Decided, Lookup, PendingDevice};
pub use authorization_code::{
    AuthorizationRequest, AuthorizeParams, CodeExchange, RedirectRefusal, Refusal,
};
pub use client::{
    AUTHORIZATION_CODE_GRANT, DEVICE_GRANT, NewClient, REFRESH_GRANT, RegisteredClient,
    Registration, short_client_id, unsupported_grant_type,
};
pub use tokens::{TerminalSignIn, TokenRecord, Tokens};
pub use user_code::{InvalidUserCode, UserCode};

use crate::cache::{Cache, CacheError, RateLimit, digest};
use crate::clock::{Clock, Random};
use crate::idp::identity::Identity;
use crate::service::sealing::SecretSealer;

/// How long a device code (and its user code) can be approved and exchanged.
const DEVICE_CODE_SECONDS: i64 = 600;
/// The minimum polling interval a client is told to keep.
const POLL_INTERVAL_SECONDS: i64 = 1;
/// Polls tolerated within one interval before SlowDown (see [`DeviceService::poll_allowed`]).
const POLL_BURST: u64 = 2;
/// Anonymous callers: registrations per network and minute. Registrations are
/// stateless, but each costs a sealing; clients cache theirs for 90 days.
const REGISTER_LIMIT: RateLimit = RateLimit {
    name: "sso-register",
    max: 60,
    window: Duration::from_secs(60),
};
/// Device authorizations per network and minute: each one holds cache entries for
/// ten minutes, so this bounds what an anonymous caller can make the cache hold.
const DEVICE_AUTHORIZATION_LIMIT: RateLimit = RateLimit {
    name: "sso-device-authorization",
    max: 60,
    window: Duration::from_secs(60),
};
/// Failed CreateToken calls (bad client, unknown device code or refresh token) per
/// network and minute; each is an audit record. Polling (pending, slow down) is free.
const TOKEN_FAILURE_LIMIT: RateLimit = RateLimit {
    name: "sso-token-failures",
    max: 60,
    window: Duration::from_secs(60),
};

/// Why a device-authorization or token flow did not go through. The messages are
/// what the client is told (`error_description`), except [`DeviceError::Unavailable`],
/// whose cause is for the log only.
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    #[error("Authorization is still pending")]
    AuthorizationPending,
    #[error("Polling too fast: wait at least the interval between requests")]
    SlowDown,
    #[error("The device code is unknown or has expired; start the sign-in again")]
    ExpiredDeviceCode,
    #[error("{0}")]
    AccessDenied(&'static str),
    #[error("{0}")]
    InvalidGrant(&'static str),
    #[error("{0}")]
    InvalidClient(&'static str),
    #[error("{0}")]
    UnauthorizedClient(&'static str),
    #[error("{0}")]
    InvalidScope(String),
    #[error("{0}")]
    UnsupportedGrantType(String),
    #[error("{0}")]
    InvalidClientMetadata(String),
    #[error("{0}")]
    InvalidRedirectUri(String),
    #[error("Too many requests from your network; try again in {0} seconds")]
    TooManyRequests(u64),
    #[error("{what}: {cause}")]
    Unavailable { what: &'static str, cause: String },
}

impl DeviceError {
    /// The answers of a device login still waiting for approval: neither audited nor
    /// counted as failures.
    pub fn is_polling(&self) -> bool {
        matches!(self, Self::AuthorizationPending | Self::SlowDown)
    }

    fn unavailable(what: &'static str, cause: impl std::fmt::Display) -> Self {
        Self::Unavailable {
            what,
            cause: cause.to_string(),
        }
    }
}

impl From<CacheError> for DeviceError {
    fn from(error: CacheError) -> Self {
        Self::unavailable("cache", error)
    }
}

/// What CreateToken presents, by grant type.
pub enum TokenGrant<'a> {
    DeviceCode(&'a str),
    RefreshToken(&'a str),
    AuthorizationCode(CodeExchange<'a>),
}

/// A device authorization just started: what the client shows and polls with.
pub struct DeviceAuthorization {
    pub device_code: String,
    pub user_code: UserCode,
    pub expires_in: i64,
    pub interval: i64,
}

/// A device authorization between StartDeviceAuthorization and its token exchange.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct DeviceGrant {
    client_id: String,
    client_name: String,
    user_code: String,
    expires_at: i64,
    decision: Decision,
}

// Held only while a grant is read from or written to the cache: boxing saves nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
enum Decision {
    Pending,
    /// `signed_in_at`: when the approving portal sign-in began; tokens end with it.
    /// `valid_from_ms`: since when that session stood for the user's sign-in settings
    /// (0 in approvals stored before); tokens end when those settings change.
    Approved {
        identity: Identity,
        signed_in_at: i64,
        #[serde(default)]
        valid_from_ms: i64,
    },
    Denied,
}

fn device_key(device_hash: &str) -> String {
    format!("sso-device:{device_hash}")
}

fn user_code_key(user_code: &UserCode) -> String {
    format!("sso-user-code:{}", digest(user_code.as_str()))
}

fn ttl(seconds: i64) -> Duration {
    Duration::from_secs(u64::try_from(seconds.max(1)).unwrap_or(1))
}

use crate::secrets::same_secret as same;

/// The device grant and SSO token service: one per server, shared by every request.
#[derive(Clone)]
pub struct DeviceService {
    cache: Arc<dyn Cache>,
    sealer: SecretSealer,
    clock: Clock,
    random: Random,
    /// How long a terminal sign-in lasts from the portal sign-in that approved it
    /// (the portal session lifetime, `portal.session_ttl_seconds`).
    sign_in_lifetime: Duration,
}

impl DeviceService {
    pub fn new(
        cache: Arc<dyn Cache>,
        sealer: SecretSealer,
        clock: Clock,
        random: Random,
        sign_in_lifetime: Duration,
    ) -> Self {
        Self {
            cache,
            sealer,
            clock,
            random,
            sign_in_lifetime,
        }
    }

    pub fn with_sign_in_lifetime(mut self, sign_in_lifetime: Duration) -> Self {
        self.sign_in_lifetime = sign_in_lifetime;
        self
    }

    fn now(&self) -> i64 {
        self.clock.timestamp()
    }

    /// A new bearer value: `prefix` and 32 random bytes in base64url. Prefixed, since
    /// a bare base64url value may start with `-`, which command lines (`aws sso-oidc
    /// create-token --device-code ...`) take for a flag.
    fn new_token(&self, prefix: &str) -> String {
        format!("{prefix}{}", self.random.token())
    }

    async fn get_json<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, DeviceError> {
        Ok(self
            .cache
            .get(key)
            .await?
            .and_then(|bytes| serde_json::from_slice(&bytes).ok()))
    }

    async fn put_json(
        &self,
        key: &str,
        value: &impl Serialize,
        seconds: i64,
    ) -> Result<(), DeviceError> {
        let bytes = serde_json::to_vec(value).map_err(|e| DeviceError::unavailable("encode", e))?;
        Ok(self.cache.put(key, &bytes, ttl(seconds)).await?)
    }

    /// Stores `key` only if absent: true for the first caller (one-shot markers).
    async fn first(&self, key: &str, value: &str, seconds: i64) -> Result<bool, DeviceError> {
        Ok(self
            .cache
            .put_if_absent(key, value.as_bytes(), ttl(seconds))
            .await?)
    }

    /// A string stored under `key`, if any.
    async fn get_text(&self, key: &str) -> Result<Option<String>, DeviceError> {
        Ok(self
            .cache
            .get(key)
            .await?
            .and_then(|value| String::from_utf8(value).ok()))
    }

    /// Counts one request of `network` against `limit`; refuses when it is over.
    async fn admit(&self, limit: &RateLimit, network: &str) -> Result<(), DeviceError> {
        match limit.take(self.cache.as_ref(), network).await? {
            None => Ok(()),
            Some(retry_after) => {
                tracing::warn!(%network, limit = limit.name, "sso-oidc: rate limit reached");
                Err(DeviceError::TooManyRequests(retry_after))
            }
        }
    }

    /// Counts an anonymous RegisterClient call of `network`.
    pub async fn admit_registration(&self, network: &str) -> Result<(), DeviceError> {
        self.admit(&REGISTER_LIMIT, network).await
    }

    /// Counts an anonymous StartDeviceAuthorization call of `network`.
    pub async fn admit_device_authorization(&self, network: &str) -> Result<(), DeviceError> {
        self.admit(&DEVICE_AUTHORIZATION_LIMIT, network).await
    }

    /// Refuses CreateToken for a network over its budget of failed calls (without
    /// counting this one: only failures count, see [`Self::count_token_failure`]).
    pub async fn admit_token_request(&self, network: &str) -> Result<(), DeviceError> {
        match TOKEN_FAILURE_LIMIT
            .exceeded(self.cache.as_ref(), network)
            .await?
        {
            None => Ok(()),
            Some(retry_after) => Err(DeviceError::TooManyRequests(retry_after)),
        }
    }

    /// Counts a failed CreateToken call of `network`.
    pub async fn count_token_failure(&self, network: &str) {
        if let Err(error) = TOKEN_FAILURE_LIMIT.take(self.cache.as_ref(), network).await {
            tracing::warn!(%error, "sso-oidc: cannot count a failed CreateToken");
        }
    }

    /// StartDeviceAuthorization for a verified client: a device code to poll with and
    /// a fresh user code (never one that is live for another device) to approve.
    pub async fn start_device_authorization(
        &self,
        registration: &Registration,
    ) -> Result<DeviceAuthorization, DeviceError> {
        let now = self.now();
        let device_code = self.new_token("rgdc-");
        let device_hash = digest(&device_code);
        let mut user_code = None;
        for _ in 0..8 {
            let candidate = UserCode::generate(&mut self.random.rng());
            if self
                .first(
                    &user_code_key(&candidate),
                    &device_hash,
                    DEVICE_CODE_SECONDS,
                )
                .await?
            {
                user_code = Some(candidate);
                break;
            }
        }
        let Some(user_code) = user_code else {
            return Err(DeviceError::unavailable(
                "user code",
                "no free user code after 8 tries",
            ));
        };
        let grant = DeviceGrant {
            client_id: registration.client_id.clone(),
            client_name: registration.client_name.clone(),
            user_code: user_code.to_string(),
            expires_at: now + DEVICE_CODE_SECONDS,
            decision: Decision::Pending,
        };
        self.put_json(&device_key(&device_hash), &grant, DEVICE_CODE_SECONDS)
            .await?;
        Ok(DeviceAuthorization {
            device_code,
            user_code,
            expires_in: DEVICE_CODE_SECONDS,
            interval: POLL_INTERVAL_SECONDS,
        })
    }

    /// CreateToken for a verified client: the first tokens of a device or
    /// authorization-code sign-in, or renewed ones for a refresh token. Returns who
    /// the tokens stand for.
    pub async fn create_token(
        &self,
        registration: &Registration,
        grant: TokenGrant<'_>,
    ) -> Result<(Identity, Tokens), DeviceError> {
        match grant {
            TokenGrant::DeviceCode(device_code) => {
                self.redeem_device_code(registration, device_code).await
            }
            TokenGrant::RefreshToken(refresh_token) => {
                self.refresh(registration, refresh_token).await
            }
            TokenGrant::AuthorizationCode(exchange) => {
                self.redeem_code(registration, &exchange).await
            }
        }
    }

    /// A poll of a device code: pending (or too fast), denied, or, once approved, the
    /// sign-in's first tokens (once only).
    async fn redeem_device_code(
        &self,
        registration: &Registration,
        device_code: &str,
    ) -> Result<(Identity, Tokens), DeviceError> {
        let now = self.now();
        let device_hash = digest(device_code);
        let Some(grant) = self
            .get_json::<DeviceGrant>(&device_key(&device_hash))
            .await?
        else {
            return Err(DeviceError::ExpiredDeviceCode);
        };
        if grant.expires_at <= now {
            return Err(DeviceError::ExpiredDeviceCode);
        }
        if !same(&grant.client_id, &registration.client_id) {
            return Err(DeviceError::InvalidClient(
                "The device code was issued to another client",
            ));
        }
        match grant.decision {
            Decision::Denied => Err(DeviceError::AccessDenied(
                "The sign-in request was denied in the browser",
            )),
            Decision::Pending => Err(if self.poll_allowed(&device_hash).await? {
                DeviceError::AuthorizationPending
            } else {
                DeviceError::SlowDown
            }),
            Decision::Approved {
                identity,
                signed_in_at,
                valid_from_ms,
            } => {
                let used = format!("sso-device-used:{device_hash}");
                if !self.first(&used, "1", grant.expires_at - now).await? {
                    return Err(DeviceError::InvalidGrant(
                        "The device code has already been exchanged for a token",
                    ));
                }
                let approver = Approver {
                    identity,
                    signed_in_at,
                    valid_from_ms,
                };
                let (_, tokens) = self.begin_sign_in(registration, &approver).await?;
                Ok((approver.identity, tokens))
            }
        }
    }

    /// Whether a poll of a pending device code keeps to the interval. Clients may send
    /// a burst of [`POLL_BURST`] polls per interval (the AWS CLI v2 polls twice back to
    /// back; AWS tolerates it); a client polling faster than that is told to slow down.
    async fn poll_allowed(&self, device_hash: &str) -> Result<bool, DeviceError> {
        let limit = RateLimit {
            name: "sso-device-poll",
            max: POLL_BURST,
            window: Duration::from_secs(POLL_INTERVAL_SECONDS.unsigned_abs()),
        };
        Ok(limit
            .take(self.cache.as_ref(), device_hash)
            .await?
            .is_none())
    }
}
