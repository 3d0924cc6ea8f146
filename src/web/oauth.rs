//! SSO-OIDC in the AWS shape (rest-json, unsigned): RegisterClient,
//! StartDeviceAuthorization and CreateToken, i.e. the OAuth 2.0 device authorization
//! grant (RFC 8628) as botocore, the AWS CLI and `rolegate login` speak it, plus the
//! portal page where a signed-in person approves or denies a device (`/device`).
//!
//! Client registrations are stateless: the client secret is a sealed blob naming the
//! client. Device codes, access and refresh tokens live in the cache under hashes of
//! their values, so whoever reads the cache cannot use what it finds there.

use std::time::Duration;

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use askama::Template;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use rand::Rng;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::json;

mod authorization_code;

use self::authorization_code::{AUTHORIZATION_CODE_GRANT, CodeExchange, short_client_id};
use super::AppState;
use super::audit::audit;
use super::aws_json::{BodyError, client_network, json_error, json_ok, read_body};
use super::page::{error_page, html, random_token, redirect, same};
use super::request_info;
use super::session::{PortalSession, ended_by_settings_change, session, signed_in_form};
use crate::cache::RateLimit;
use crate::cache::digest;
use crate::idp::identity::Identity;
use crate::store::Outcome;

/// Binds a sealed client secret to its purpose.
const CLIENT_SECRET_CONTEXT: &str = "rolegate:sso-oidc:client-registration:v1";
/// How long a client registration lasts (AWS uses about 90 days).
const REGISTRATION_SECONDS: i64 = 90 * 86_400;
/// How long a device code (and its user code) can be approved and exchanged.
const DEVICE_CODE_SECONDS: i64 = 600;
/// The minimum polling interval a client is told to keep.
const POLL_INTERVAL_SECONDS: i64 = 1;
/// Polls tolerated within one interval before SlowDown (see [`poll_allowed`]).
const POLL_BURST: u64 = 2;
/// The longest an access token lives (refresh tokens renew it until the session ends).
const ACCESS_TOKEN_SECONDS: i64 = 3600;
/// RFC 8628 §6.1: consonants only, so no words and no 0/O or 1/I confusion.
const USER_CODE_ALPHABET: &[u8; 20] = b"BCDFGHJKLMNPQRSTVWXZ";
/// Wrong user codes one person may enter per window before the page refuses.
const WRONG_CODE_LIMIT: usize = 5;
const WRONG_CODE_WINDOW: Duration = Duration::from_secs(15 * 60);
const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";
const REFRESH_GRANT: &str = "refresh_token";
const ERROR_TYPE_SUFFIX: &str =
    ":http://internal.amazon.com/coral/com.amazonaws.switchboard.portal/";
/// The largest request body accepted (botocore's are well under 1 KiB).
const BODY_LIMIT: usize = 64 * 1024;
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

pub fn routes(cfg: &mut web::ServiceConfig) {
    // The AWS CLI v2 resolves a start URL with HEAD (§2.3 of the wire notes): one
    // redirect to the AWS-shaped identifier. GET stays the portal's page.
    cfg.service(
        web::resource("/start")
            .guard(actix_web::guard::Head())
            .to(start_url_identifier),
    );
    for (path, handler) in [
        ("/client/register", web::post().to(register_client)),
        (
            "/device_authorization",
            web::post().to(start_device_authorization),
        ),
        ("/token", web::post().to(create_token)),
    ] {
        cfg.service(
            web::resource(path)
                .route(handler)
                .default_service(web::to(unknown_operation)),
        );
    }
    cfg.route("/device", web::get().to(device_page))
        .route("/device", web::post().to(device_decision))
        .route(
            "/authorize",
            web::get().to(authorization_code::authorize_page),
        )
        .route(
            "/authorize",
            web::post().to(authorization_code::authorize_decision),
        );
}

/// `HEAD /start`: `302` to `sso.aws_start_url`, the identifier the AWS CLI v2 then
/// sends as `startUrl` (it never requests it).
async fn start_url_identifier(state: web::Data<AppState>) -> HttpResponse {
    super::page::found(state.sso.aws_start_url.as_str())
}

/// Any other method on an SSO-OIDC path: a typed error, not a bare 405.
async fn unknown_operation() -> HttpResponse {
    OidcError::UnknownOperation.error_response()
}

// ---------------------------------------------------------------------------------
// Wire errors

/// Every failure of the SSO-OIDC surface, rendered as AWS renders it: a JSON body with
/// `error` and `error_description` and the exception name in `x-amzn-ErrorType`.
#[derive(Debug, thiserror::Error)]
pub(super) enum OidcError {
    #[error("Authorization is still pending")]
    AuthorizationPending,
    #[error("Polling too fast: wait at least the interval between requests")]
    SlowDown,
    #[error("The device code is unknown or has expired; start the sign-in again")]
    ExpiredToken,
    #[error("{0}")]
    AccessDenied(&'static str),
    #[error("{0}")]
    InvalidGrant(&'static str),
    #[error("{0}")]
    InvalidClient(&'static str),
    #[error("{0}")]
    InvalidRequest(String),
    #[error("{0}")]
    InvalidScope(String),
    #[error("{0}")]
    UnsupportedGrantType(String),
    #[error("{0}")]
    InvalidClientMetadata(String),
    #[error("{0}")]
    InvalidRedirectUri(String),
    #[error("{0}")]
    UnauthorizedClient(&'static str),
    #[error("The request body is larger than {} KiB", BODY_LIMIT / 1024)]
    PayloadTooLarge,
    #[error("Too many requests from your network; try again in {0} seconds")]
    TooManyRequests(u64),
    #[error("This path only accepts POST")]
    UnknownOperation,
    #[error("An internal error occurred; please try again")]
    Internal,
}

impl OidcError {
    fn exception(&self) -> &'static str {
        match self {
            Self::AuthorizationPending => "AuthorizationPendingException",
            // botocore does not retry it (not a throttling code in either retry mode):
            // StartDeviceAuthorization fails with a clear message, and CreateToken
            // polling (CLI v2, rolegate login) backs off by 5 s and carries on.
            Self::SlowDown | Self::TooManyRequests(_) => "SlowDownException",
            Self::ExpiredToken => "ExpiredTokenException",
            Self::AccessDenied(_) => "AccessDeniedException",
            Self::InvalidGrant(_) => "InvalidGrantException",
            Self::InvalidClient(_) => "InvalidClientException",
            Self::InvalidRequest(_) => "InvalidRequestException",
            Self::InvalidScope(_) => "InvalidScopeException",
            Self::UnsupportedGrantType(_) => "UnsupportedGrantTypeException",
            Self::InvalidClientMetadata(_) => "InvalidClientMetadataException",
            Self::InvalidRedirectUri(_) => "InvalidRedirectUriException",
            Self::UnauthorizedClient(_) => "UnauthorizedClientException",
            Self::PayloadTooLarge => "InvalidRequestException",
            Self::UnknownOperation => "UnknownOperationException",
            Self::Internal => "InternalServerException",
        }
    }

    /// The answers of a device login still waiting for approval: neither audited nor
    /// counted as failures.
    fn is_polling(&self) -> bool {
        matches!(self, Self::AuthorizationPending | Self::SlowDown)
    }

    fn oauth_error(&self) -> &'static str {
        match self {
            Self::AuthorizationPending => "authorization_pending",
            Self::SlowDown | Self::TooManyRequests(_) => "slow_down",
            Self::ExpiredToken => "expired_token",
            Self::AccessDenied(_) => "access_denied",
            Self::InvalidGrant(_) => "invalid_grant",
            Self::InvalidClient(_) => "invalid_client",
            Self::InvalidRequest(_) | Self::PayloadTooLarge | Self::UnknownOperation => {
                "invalid_request"
            }
            Self::InvalidScope(_) => "invalid_scope",
            Self::UnsupportedGrantType(_) => "unsupported_grant_type",
            Self::InvalidClientMetadata(_) => "invalid_client_metadata",
            Self::InvalidRedirectUri(_) => "invalid_redirect_uri",
            Self::UnauthorizedClient(_) => "unauthorized_client",
            Self::Internal => "server_error",
        }
    }
}

impl ResponseError for OidcError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::InvalidClient(_) => StatusCode::UNAUTHORIZED,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::TooManyRequests(_) => StatusCode::TOO_MANY_REQUESTS,
            Self::UnknownOperation => StatusCode::METHOD_NOT_ALLOWED,
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::BAD_REQUEST,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let retry_after = match self {
            Self::TooManyRequests(seconds) => Some(*seconds),
            _ => None,
        };
        let mut response = json_error(
            self.status_code(),
            &format!("{}{ERROR_TYPE_SUFFIX}", self.exception()),
            &json!({
                "error": self.oauth_error(),
                "error_description": self.to_string(),
            }),
            retry_after,
        );
        if matches!(self, Self::UnknownOperation) {
            response
                .headers_mut()
                .insert(header::ALLOW, header::HeaderValue::from_static("POST"));
        }
        response
    }
}

fn internal(what: &str, error: impl std::fmt::Display) -> OidcError {
    tracing::error!(%error, "sso-oidc: {what}");
    OidcError::Internal
}

/// The JSON request body as `T`: bounded in size; unknown members are ignored (as
/// AWS does, so newer clients keep working).
async fn json_body<T: DeserializeOwned>(
    request: &HttpRequest,
    payload: web::Payload,
) -> Result<T, OidcError> {
    let body = read_body(request, payload, BODY_LIMIT)
        .await
        .map_err(|error| match error {
            BodyError::TooLarge => OidcError::PayloadTooLarge,
            BodyError::Broken(detail) => {
                OidcError::InvalidRequest(format!("The request body could not be read: {detail}"))
            }
        })?;
    serde_json::from_slice(&body).map_err(|e| {
        // serde names the member and the line, never the value sent.
        let what = match e.classify() {
            serde_json::error::Category::Data => "has a member of the wrong type",
            _ => "is not a JSON object",
        };
        OidcError::InvalidRequest(format!(
            "The request body {what} (line {}, column {})",
            e.line(),
            e.column()
        ))
    })
}

/// Counts one request of `network` against `limit`; refuses when it is over.
async fn rate_limited(state: &AppState, limit: &RateLimit, network: &str) -> Result<(), OidcError> {
    match limit.take(state.cache.as_ref(), network).await {
        Ok(None) => Ok(()),
        Ok(Some(retry_after)) => {
            tracing::warn!(%network, limit = limit.name, "sso-oidc: rate limit reached");
            Err(OidcError::TooManyRequests(retry_after))
        }
        Err(error) => Err(internal("rate limit", error)),
    }
}

/// A JSON array member that may also be absent or `null`.
fn list_or_null<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Vec<String>, D::Error> {
    Ok(Option::<Vec<String>>::deserialize(deserializer)?.unwrap_or_default())
}

fn required<'a>(value: &'a Option<String>, name: &str) -> Result<&'a str, OidcError> {
    match value.as_deref().map(str::trim) {
        Some(v) if !v.is_empty() && v.len() <= 4096 => Ok(v),
        Some(v) if !v.is_empty() => Err(OidcError::InvalidRequest(format!("{name} is too long"))),
        _ => Err(OidcError::InvalidRequest(format!("{name} is required"))),
    }
}

// ---------------------------------------------------------------------------------
// Cache keys and records

fn device_key(device_hash: &str) -> String {
    format!("sso-device:{device_hash}")
}

fn user_code_key(user_code: &str) -> String {
    format!("sso-user-code:{}", digest(user_code))
}

fn access_key(token: &str) -> String {
    format!("sso-access:{}", digest(token))
}

fn refresh_key(token: &str) -> String {
    format!("sso-refresh:{}", digest(token))
}

fn grant_key(grant_id: &str) -> String {
    format!("sso-grant:{grant_id}")
}

fn ttl(seconds: i64) -> Duration {
    Duration::from_secs(u64::try_from(seconds.max(1)).unwrap_or(1))
}

/// What a client secret seals: the registration itself.
#[derive(Debug, Serialize, Deserialize)]
struct Registration {
    client_id: String,
    client_name: String,
    #[serde(default)]
    scopes: Vec<String>,
    #[serde(default)]
    grant_types: Vec<String>,
    issued_at: i64,
    expires_at: i64,
}

/// A device authorization between StartDeviceAuthorization and its token exchange.
#[derive(Debug, Serialize, Deserialize)]
struct DeviceGrant {
    client_id: String,
    client_name: String,
    user_code: String,
    expires_at: i64,
    decision: Decision,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
// Held only while a grant is read from or written to the cache: boxing saves nothing.
#[allow(clippy::large_enum_variant)]
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

/// One device login: every access and refresh token it produces names it, and
/// deleting it (Logout) ends them all.
#[derive(Debug, Serialize, Deserialize)]
struct GrantRecord {
    client_id: String,
    user_name: String,
}

/// What an access or refresh token stands for.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct TokenRecord {
    pub(super) grant_id: String,
    pub(super) client_id: String,
    pub(super) identity: Identity,
    /// The absolute end of the login (approval + the portal session lifetime).
    pub(super) deadline: i64,
    pub(super) expires_at: i64,
    /// When the approving portal sign-in began (Unix seconds; 0 in tokens stored
    /// before): a change of the user's second factor after it ends the login.
    #[serde(default)]
    pub(super) signed_in_at: i64,
    /// Since when the approving session stood for the user's sign-in settings (Unix
    /// milliseconds; 0 if unknown), as [`PortalSession::valid_from_ms`].
    #[serde(default)]
    pub(super) valid_from_ms: i64,
}

async fn get_json<T: DeserializeOwned>(
    state: &AppState,
    key: &str,
) -> Result<Option<T>, OidcError> {
    match state.cache.get(key).await {
        Ok(Some(bytes)) => Ok(serde_json::from_slice(&bytes).ok()),
        Ok(None) => Ok(None),
        Err(error) => Err(internal("cache read", error)),
    }
}

async fn put_json(
    state: &AppState,
    key: &str,
    value: &impl Serialize,
    seconds: i64,
) -> Result<(), OidcError> {
    let bytes = serde_json::to_vec(value).map_err(|e| internal("encode", e))?;
    state
        .cache
        .put(key, &bytes, ttl(seconds))
        .await
        .map_err(|e| internal("cache write", e))
}

/// Stores `key` only if absent: true for the first caller (one-shot markers).
async fn first(state: &AppState, key: &str, seconds: i64) -> Result<bool, OidcError> {
    state
        .cache
        .put_if_absent(key, b"1", ttl(seconds))
        .await
        .map_err(|e| internal("cache write", e))
}

// ---------------------------------------------------------------------------------
// RegisterClient

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RegisterClientRequest {
    client_name: Option<String>,
    client_type: Option<String>,
    #[serde(default, deserialize_with = "list_or_null")]
    scopes: Vec<String>,
    #[serde(default, deserialize_with = "list_or_null")]
    grant_types: Vec<String>,
    /// Loopback URIs for the authorization code grant (any port at use time).
    #[serde(default, deserialize_with = "list_or_null")]
    redirect_uris: Vec<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RegisterClientResponse {
    client_id: String,
    client_secret: String,
    client_id_issued_at: i64,
    client_secret_expires_at: i64,
}

fn valid_scope(scope: &str) -> bool {
    (1..=128).contains(&scope.len())
        && scope
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ":_.-/".contains(c))
}

/// Characters that change how the rest of a line looks without being visible
/// themselves (bidirectional overrides, zero-width characters): a client name with
/// them could show the approval page one name and mean another.
fn invisible_or_reordering(c: char) -> bool {
    c.is_control()
        || matches!(c,
            '\u{00AD}' | '\u{034F}' | '\u{061C}' | '\u{115F}' | '\u{1160}' | '\u{17B4}'
            | '\u{17B5}' | '\u{180B}'..='\u{180F}' | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{206F}' | '\u{3164}'
            | '\u{FE00}'..='\u{FE0F}' | '\u{FEFF}' | '\u{FFA0}' | '\u{FFF0}'..='\u{FFFB}'
            | '\u{E0000}'..='\u{E0FFF}')
}

async fn register_client(
    state: web::Data<AppState>,
    http: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, OidcError> {
    rate_limited(&state, &REGISTER_LIMIT, &client_network(&http)).await?;
    let request: RegisterClientRequest = json_body(&http, payload).await?;
    let client_name = required(&request.client_name, "clientName")?;
    let client_type = required(&request.client_type, "clientType")?;
    if client_name.chars().count() > 128 || client_name.chars().any(invisible_or_reordering) {
        return Err(OidcError::InvalidClientMetadata(
            "clientName must be at most 128 visible characters".into(),
        ));
    }
    if client_type != "public" {
        return Err(OidcError::InvalidClientMetadata(
            "clientType must be \"public\"".into(),
        ));
    }
    if request.scopes.len() > 25 {
        return Err(OidcError::InvalidScope("at most 25 scopes".into()));
    }
    if let Some(bad) = request.scopes.iter().find(|s| !valid_scope(s)) {
        return Err(OidcError::InvalidScope(format!("invalid scope {bad:?}")));
    }
    if let Some(bad) = request
        .grant_types
        .iter()
        .find(|g| *g != DEVICE_GRANT && *g != REFRESH_GRANT && *g != AUTHORIZATION_CODE_GRANT)
    {
        return Err(OidcError::UnsupportedGrantType(format!(
            "grant type {:?} is not supported",
            bad.chars().take(64).collect::<String>()
        )));
    }
    authorization_code::check_redirect_uris(&request.grant_types, &request.redirect_uris)?;
    let now = state.clock.now().timestamp();
    let id_bytes: [u8; 18] = state.random.bytes();
    let short_id = format!("rgc-{}", URL_SAFE_NO_PAD.encode(id_bytes));
    let expires_at = now + REGISTRATION_SECONDS;
    let client_id = authorization_code::client_id_for(
        &state,
        &short_id,
        client_name,
        &request.scopes,
        &request.grant_types,
        &request.redirect_uris,
        expires_at,
    )?;
    let registration = Registration {
        client_id,
        client_name: client_name.to_owned(),
        scopes: request.scopes,
        grant_types: request.grant_types,
        issued_at: now,
        expires_at,
    };
    let sealed = serde_json::to_string(&registration).map_err(|e| internal("encode", e))?;
    let client_secret = state.sealer.seal_secret(&sealed, CLIENT_SECRET_CONTEXT);
    // Every later call carries the secret too, and refuses one over 4096 characters
    // (`required`): a registration whose secret would not fit is refused now, not
    // left unusable.
    if client_secret.len() > 4096 {
        return Err(OidcError::InvalidRedirectUri(
            "the redirectUris (with the client name and scopes) are too long in total".into(),
        ));
    }
    tracing::info!(client_id = %short_client_id(&registration.client_id), client_name = %registration.client_name, "sso-oidc client registered");
    Ok(json_ok(&RegisterClientResponse {
        client_id: registration.client_id,
        client_secret,
        client_id_issued_at: now,
        client_secret_expires_at: registration.expires_at,
    }))
}

/// Opens a client secret and checks that it belongs to `client_id` and is current.
fn verify_client(
    state: &AppState,
    client_id: &str,
    client_secret: &str,
    now: i64,
) -> Result<Registration, OidcError> {
    let invalid = || OidcError::InvalidClient("The client id or client secret is invalid");
    let opened = state
        .sealer
        .open_secret(client_secret, CLIENT_SECRET_CONTEXT)
        .map_err(|_| invalid())?;
    let registration: Registration =
        serde_json::from_str(opened.expose()).map_err(|_| invalid())?;
    if !same(&registration.client_id, client_id) {
        return Err(invalid());
    }
    if registration.expires_at <= now {
        return Err(OidcError::InvalidClient(
            "The client registration has expired; register the client again",
        ));
    }
    Ok(registration)
}

// ---------------------------------------------------------------------------------
// StartDeviceAuthorization

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct StartDeviceAuthorizationRequest {
    client_id: Option<String>,
    client_secret: Option<String>,
    start_url: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct StartDeviceAuthorizationResponse {
    device_code: String,
    user_code: String,
    verification_uri: String,
    verification_uri_complete: String,
    expires_in: i64,
    interval: i64,
}

fn new_user_code(random: &crate::clock::Random) -> String {
    let mut rng = random.rng();
    let mut code = String::with_capacity(9);
    for i in 0..8 {
        if i == 4 {
            code.push('-');
        }
        let index = rng.random_range(0..USER_CODE_ALPHABET.len());
        code.push(char::from(USER_CODE_ALPHABET[index]));
    }
    code
}

/// A user code as people type it (any case, spaces, with or without the dash) in
/// its canonical `XXXX-XXXX` form; None when it cannot be one.
pub(super) fn normalize_user_code(input: &str) -> Option<String> {
    if input.len() > 64 {
        return None;
    }
    let letters: Vec<char> = input
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .map(|c| c.to_ascii_uppercase())
        .collect();
    if letters.len() != 8
        || !letters
            .iter()
            .all(|c| c.is_ascii() && USER_CODE_ALPHABET.contains(&(*c as u8)))
    {
        return None;
    }
    let mut code: String = letters[..4].iter().collect();
    code.push('-');
    code.extend(&letters[4..]);
    Some(code)
}

async fn start_device_authorization(
    state: web::Data<AppState>,
    request: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, OidcError> {
    rate_limited(
        &state,
        &DEVICE_AUTHORIZATION_LIMIT,
        &client_network(&request),
    )
    .await?;
    let input: StartDeviceAuthorizationRequest = json_body(&request, payload).await?;
    let client_id = required(&input.client_id, "clientId")?;
    let client_secret = required(&input.client_secret, "clientSecret")?;
    required(&input.start_url, "startUrl")?;
    let now = state.clock.now().timestamp();
    let registration = verify_client(&state, client_id, client_secret, now)?;

    // Prefixed like every token here: a bare base64url value may start with `-`,
    // which command lines (`aws sso-oidc create-token --device-code ...`) take for a flag.
    let device_code = format!("rgdc-{}", random_token(&state.random));
    let device_hash = digest(&device_code);
    // A fresh user code, never one that is live for another device.
    let mut user_code = None;
    for _ in 0..8 {
        let candidate = new_user_code(&state.random);
        let key = user_code_key(&candidate);
        if state
            .cache
            .put_if_absent(&key, device_hash.as_bytes(), ttl(DEVICE_CODE_SECONDS))
            .await
            .map_err(|e| internal("cache write", e))?
        {
            user_code = Some(candidate);
            break;
        }
    }
    let Some(user_code) = user_code else {
        return Err(internal("user code", "no free user code after 8 tries"));
    };
    let grant = DeviceGrant {
        client_id: registration.client_id.clone(),
        client_name: registration.client_name.clone(),
        user_code: user_code.clone(),
        expires_at: now + DEVICE_CODE_SECONDS,
        decision: Decision::Pending,
    };
    put_json(
        &state,
        &device_key(&device_hash),
        &grant,
        DEVICE_CODE_SECONDS,
    )
    .await?;
    audit(
        &state,
        &request,
        &format!("client:{}", short_client_id(&registration.client_id)),
        "sso:StartDeviceAuthorization",
        &registration.client_name,
        Outcome::Success,
        json!({ "client_id": short_client_id(&registration.client_id) }),
    )
    .await;
    let verification_uri = format!("{}/device", request_info::public_origin(&request));
    Ok(json_ok(&StartDeviceAuthorizationResponse {
        device_code,
        verification_uri_complete: format!("{verification_uri}?user_code={user_code}"),
        user_code,
        verification_uri,
        expires_in: DEVICE_CODE_SECONDS,
        interval: POLL_INTERVAL_SECONDS,
    }))
}

// ---------------------------------------------------------------------------------
// CreateToken

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreateTokenRequest {
    client_id: Option<String>,
    client_secret: Option<String>,
    grant_type: Option<String>,
    device_code: Option<String>,
    refresh_token: Option<String>,
    code: Option<String>,
    redirect_uri: Option<String>,
    code_verifier: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CreateTokenResponse {
    access_token: String,
    token_type: &'static str,
    expires_in: i64,
    refresh_token: String,
}

async fn create_token(
    state: web::Data<AppState>,
    request: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, OidcError> {
    let network = client_network(&request);
    match TOKEN_FAILURE_LIMIT
        .exceeded(state.cache.as_ref(), &network)
        .await
    {
        Ok(None) => {}
        Ok(Some(retry_after)) => return Err(OidcError::TooManyRequests(retry_after)),
        Err(error) => return Err(internal("rate limit", error)),
    }
    let result = token_request(&state, &request, payload).await;
    if let Err(error) = &result
        && !error.is_polling()
        && !matches!(error, OidcError::Internal)
        && let Err(cache_error) = TOKEN_FAILURE_LIMIT
            .take(state.cache.as_ref(), &network)
            .await
    {
        tracing::warn!(error = %cache_error, "sso-oidc: cannot count a failed CreateToken");
    }
    result
}

async fn token_request(
    state: &AppState,
    request: &HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, OidcError> {
    let input: CreateTokenRequest = json_body(request, payload).await?;
    let client_id = required(&input.client_id, "clientId")?;
    let client_secret = required(&input.client_secret, "clientSecret")?;
    let grant_type = required(&input.grant_type, "grantType")?;
    // For the audit log: a bounded copy of what the caller sent.
    let grant_label: String = grant_type.chars().take(64).collect();
    let now = state.clock.now().timestamp();
    let registration = match verify_client(state, client_id, client_secret, now) {
        Ok(registration) => registration,
        Err(error) => {
            audit(
                state,
                request,
                &format!("client:{}", short_client_id(client_id)),
                "sso:CreateToken",
                &grant_label,
                Outcome::Failure,
                json!({ "reason": error.to_string() }),
            )
            .await;
            return Err(error);
        }
    };
    // Missing members are refusals too: audited like the others.
    let result = async {
        match grant_type {
            DEVICE_GRANT => {
                let device_code = required(&input.device_code, "deviceCode")?;
                exchange_device_code(state, &registration, device_code, now).await
            }
            REFRESH_GRANT => {
                let refresh_token = required(&input.refresh_token, "refreshToken")?;
                refresh(state, &registration, refresh_token, now).await
            }
            AUTHORIZATION_CODE_GRANT => {
                if !registration
                    .grant_types
                    .iter()
                    .any(|g| g == AUTHORIZATION_CODE_GRANT)
                {
                    return Err(OidcError::UnauthorizedClient(
                        "This client was not registered for the authorization_code grant",
                    ));
                }
                let exchange = CodeExchange {
                    code: required(&input.code, "code")?,
                    redirect_uri: required(&input.redirect_uri, "redirectUri")?,
                    code_verifier: required(&input.code_verifier, "codeVerifier")?,
                };
                authorization_code::exchange_code(state, &registration, &exchange, now).await
            }
            other => Err(OidcError::UnsupportedGrantType(format!(
                "grant type {:?} is not supported",
                other.chars().take(64).collect::<String>()
            ))),
        }
    }
    .await;
    match result {
        Ok((identity, response)) => {
            audit(
                state,
                request,
                &identity.user_name,
                "sso:CreateToken",
                &registration.client_name,
                Outcome::Success,
                json!({ "client_id": short_client_id(&registration.client_id), "grant_type": grant_label, "expires_in": response.expires_in }),
            )
            .await;
            Ok(json_ok(&response))
        }
        Err(error) => {
            // Polling is the normal state of a device login: not an audit event.
            if !error.is_polling() && !matches!(error, OidcError::Internal) {
                audit(
                    state,
                    request,
                    &format!("client:{}", short_client_id(&registration.client_id)),
                    "sso:CreateToken",
                    &registration.client_name,
                    if matches!(error, OidcError::AccessDenied(_)) {
                        Outcome::Denied
                    } else {
                        Outcome::Failure
                    },
                    json!({ "grant_type": grant_label, "error": error.exception(), "reason": error.to_string() }),
                )
                .await;
            }
            Err(error)
        }
    }
}

async fn exchange_device_code(
    state: &AppState,
    registration: &Registration,
    device_code: &str,
    now: i64,
) -> Result<(Identity, CreateTokenResponse), OidcError> {
    let device_hash = digest(device_code);
    let Some(grant) = get_json::<DeviceGrant>(state, &device_key(&device_hash)).await? else {
        return Err(OidcError::ExpiredToken);
    };
    if grant.expires_at <= now {
        return Err(OidcError::ExpiredToken);
    }
    if !same(&grant.client_id, &registration.client_id) {
        return Err(OidcError::InvalidClient(
            "The device code was issued to another client",
        ));
    }
    match grant.decision {
        Decision::Denied => Err(OidcError::AccessDenied(
            "The sign-in request was denied in the browser",
        )),
        Decision::Pending => {
            if poll_allowed(state, &device_hash).await? {
                Err(OidcError::AuthorizationPending)
            } else {
                Err(OidcError::SlowDown)
            }
        }
        Decision::Approved {
            identity,
            signed_in_at,
            valid_from_ms,
        } => {
            let used = format!("sso-device-used:{device_hash}");
            if !first(state, &used, grant.expires_at - now).await? {
                return Err(OidcError::InvalidGrant(
                    "The device code has already been exchanged for a token",
                ));
            }
            let (_, response) = begin_login(
                state,
                &registration.client_id,
                &Approval {
                    identity: &identity,
                    signed_in_at,
                    valid_from_ms,
                },
                now,
            )
            .await?;
            Ok((identity, response))
        }
    }
}

/// Who approved a terminal sign-in, and from which portal sign-in.
struct Approval<'a> {
    identity: &'a Identity,
    /// When the approving portal sign-in began (Unix seconds).
    signed_in_at: i64,
    /// See [`TokenRecord::valid_from_ms`].
    valid_from_ms: i64,
}

/// Starts a terminal login that a person approved (device code or authorization
/// code): a new grant that Logout ends, and its first access and refresh tokens.
/// Every grant type issues its first tokens here. Returns the grant's id (what
/// [`end_grant`] takes) with the tokens.
async fn begin_login(
    state: &AppState,
    client_id: &str,
    approval: &Approval<'_>,
    now: i64,
) -> Result<(String, CreateTokenResponse), OidcError> {
    let grant_id = hex::encode(state.random.bytes::<32>());
    let deadline =
        approval.signed_in_at + i64::try_from(state.portal.session_ttl.as_secs()).unwrap_or(0);
    put_json(
        state,
        &grant_key(&grant_id),
        &GrantRecord {
            client_id: client_id.to_owned(),
            user_name: approval.identity.user_name.clone(),
        },
        deadline - now,
    )
    .await?;
    let tokens = issue_tokens(
        state,
        &Login {
            grant_id: &grant_id,
            client_id,
            identity: approval.identity,
            deadline,
            signed_in_at: approval.signed_in_at,
            valid_from_ms: approval.valid_from_ms,
        },
        now,
    )
    .await?;
    Ok((grant_id, tokens))
}

/// Whether a poll of a pending device code keeps to the interval. Clients may send
/// a burst of [`POLL_BURST`] polls per interval (the AWS CLI v2 polls twice back to
/// back; AWS tolerates it); a client polling faster than that is told to slow down.
async fn poll_allowed(state: &AppState, device_hash: &str) -> Result<bool, OidcError> {
    let limit = RateLimit {
        name: "sso-device-poll",
        max: POLL_BURST,
        window: Duration::from_secs(POLL_INTERVAL_SECONDS.unsigned_abs()),
    };
    match limit.take(state.cache.as_ref(), device_hash).await {
        Ok(over) => Ok(over.is_none()),
        Err(error) => Err(internal("poll interval", error)),
    }
}

async fn refresh(
    state: &AppState,
    registration: &Registration,
    refresh_token: &str,
    now: i64,
) -> Result<(Identity, CreateTokenResponse), OidcError> {
    let invalid =
        || OidcError::InvalidGrant("The refresh token is invalid, expired or already used");
    let key = refresh_key(refresh_token);
    // Names the login of a rotated refresh token, for as long as that login could last.
    let used = format!("sso-refresh-used:{}", digest(refresh_token));
    let Some(record) = get_json::<TokenRecord>(state, &key).await? else {
        // A rotated refresh token presented again: two parties hold copies of it, so
        // the whole login ends (OAuth 2.0 Security BCP §4.14.2): the newer refresh
        // token and every access token of the grant.
        let grant_id = match state.cache.get(&used).await {
            Ok(value) => value.and_then(|v| String::from_utf8(v).ok()),
            Err(error) => return Err(internal("cache read", error)),
        };
        if let Some(grant_id) = grant_id {
            end_grant(state, &grant_id).await?;
            return Err(OidcError::InvalidGrant(REFRESH_REPLAYED));
        }
        return Err(invalid());
    };
    if !same(&record.client_id, &registration.client_id) {
        return Err(OidcError::InvalidClient(
            "The refresh token was issued to another client",
        ));
    }
    // Rotation: the first presenter wins, the old token never works again; a second
    // presenter ends the login for both.
    if !state
        .cache
        .put_if_absent(
            &used,
            record.grant_id.as_bytes(),
            ttl(record.deadline - now),
        )
        .await
        .map_err(|e| internal("cache write", e))?
    {
        end_grant(state, &record.grant_id).await?;
        return Err(OidcError::InvalidGrant(REFRESH_REPLAYED));
    }
    let _ = state.cache.delete(&key).await;
    if record.deadline <= now {
        return Err(OidcError::InvalidGrant(
            "The sign-in session has ended; sign in again",
        ));
    }
    // Ended as by Logout: by Logout itself, or by a second-factor change since.
    if !login_is_live(state, &record).await? {
        return Err(invalid());
    }
    let response = issue_tokens(
        state,
        &Login {
            grant_id: &record.grant_id,
            client_id: &record.client_id,
            identity: &record.identity,
            deadline: record.deadline,
            signed_in_at: record.signed_in_at,
            valid_from_ms: record.valid_from_ms,
        },
        now,
    )
    .await?;
    Ok((record.identity, response))
}

const REFRESH_REPLAYED: &str = "The refresh token was already used, so the sign-in it belongs to has been ended; sign in again";

/// Ends a login: Logout, and a replayed refresh token.
async fn end_grant(state: &AppState, grant_id: &str) -> Result<(), OidcError> {
    state
        .cache
        .delete(&grant_key(grant_id))
        .await
        .map_err(|e| internal("cache delete", e))
}

/// The device login that new tokens belong to.
struct Login<'a> {
    grant_id: &'a str,
    client_id: &'a str,
    identity: &'a Identity,
    deadline: i64,
    signed_in_at: i64,
    valid_from_ms: i64,
}

async fn issue_tokens(
    state: &AppState,
    login: &Login<'_>,
    now: i64,
) -> Result<CreateTokenResponse, OidcError> {
    let deadline = login.deadline;
    let remaining = deadline - now;
    if remaining <= 0 {
        return Err(OidcError::InvalidGrant(
            "The sign-in session has ended; sign in again",
        ));
    }
    let lifetime = remaining.min(ACCESS_TOKEN_SECONDS);
    let access_token = format!("rgat-{}", random_token(&state.random));
    let refresh_token = format!("rgrt-{}", random_token(&state.random));
    let record = TokenRecord {
        grant_id: login.grant_id.to_owned(),
        client_id: login.client_id.to_owned(),
        identity: login.identity.clone(),
        deadline,
        expires_at: now + lifetime,
        signed_in_at: login.signed_in_at,
        valid_from_ms: login.valid_from_ms,
    };
    put_json(state, &access_key(&access_token), &record, lifetime).await?;
    let refresh_record = TokenRecord {
        expires_at: deadline,
        ..record
    };
    put_json(
        state,
        &refresh_key(&refresh_token),
        &refresh_record,
        remaining,
    )
    .await?;
    Ok(CreateTokenResponse {
        access_token,
        token_type: "Bearer",
        expires_in: lifetime,
        refresh_token,
    })
}

// ---------------------------------------------------------------------------------
// Bearer tokens, for the SSO portal API

/// Whether the login that `grant_id` names is still on (Logout deletes it).
async fn grant_is_live(state: &AppState, grant_id: &str) -> Result<bool, OidcError> {
    Ok(get_json::<GrantRecord>(state, &grant_key(grant_id))
        .await?
        .is_some())
}

/// Whether the login behind a token is still on: not logged out, and not ended by a
/// change of the user's second factor since its portal sign-in (as that change ends
/// the user's other portal sessions).
async fn login_is_live(state: &AppState, record: &TokenRecord) -> Result<bool, OidcError> {
    if !grant_is_live(state, &record.grant_id).await? {
        return Ok(false);
    }
    let ended = ended_by_settings_change(
        state,
        &record.identity,
        record.signed_in_at,
        record.valid_from_ms,
    )
    .await
    .map_err(|e| internal("cache read", e))?;
    Ok(!ended)
}

/// The live login behind an access token, or None (unknown, expired, logged out).
pub(super) async fn bearer(
    state: &AppState,
    access_token: &str,
    now: i64,
) -> Result<Option<TokenRecord>, OidcError> {
    if access_token.is_empty() || access_token.len() > 512 {
        return Ok(None);
    }
    let Some(record) = get_json::<TokenRecord>(state, &access_key(access_token)).await? else {
        return Ok(None);
    };
    if record.expires_at <= now || record.deadline <= now {
        return Ok(None);
    }
    if !login_is_live(state, &record).await? {
        return Ok(None);
    }
    Ok(Some(record))
}

/// Ends a login: the access token and every refresh token of its grant.
pub(super) async fn revoke(
    state: &AppState,
    access_token: &str,
    record: &TokenRecord,
) -> Result<(), OidcError> {
    end_grant(state, &record.grant_id).await?;
    state
        .cache
        .delete(&access_key(access_token))
        .await
        .map_err(|e| internal("cache delete", e))
}

// ---------------------------------------------------------------------------------
// The approval page

struct DeviceResult<'a> {
    title: &'a str,
    message: String,
}

#[derive(Template)]
#[template(path = "device.html")]
struct DevicePage<'a> {
    display_name: &'a str,
    csrf: &'a str,
    user_code: &'a str,
    /// Set when the code names a pending request: then Approve and Deny are offered.
    client_name: Option<&'a str>,
    /// The registration id of that client, so that two clients of the same name
    /// can be told apart.
    client_id: &'a str,
    error: Option<&'a str>,
    result: Option<DeviceResult<'a>>,
}

fn render(status: StatusCode, page: DevicePage<'_>) -> HttpResponse {
    match page.render() {
        Ok(body) => html(status, body),
        Err(error) => {
            tracing::error!(%error, "cannot render device page");
            error_page(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Unavailable",
                "This page could not be shown.",
                "/start",
                "Your accounts",
            )
        }
    }
}

fn entry_page(
    session: &PortalSession,
    user_code: &str,
    status: StatusCode,
    error: Option<&str>,
) -> HttpResponse {
    render(
        status,
        DevicePage {
            display_name: &session.identity.display_name,
            csrf: &session.csrf,
            user_code,
            client_name: None,
            client_id: "",
            error,
            result: None,
        },
    )
}

fn result_page(session: &PortalSession, title: &str, message: String) -> HttpResponse {
    render(
        StatusCode::OK,
        DevicePage {
            display_name: &session.identity.display_name,
            csrf: &session.csrf,
            user_code: "",
            client_name: None,
            client_id: "",
            error: None,
            result: Some(DeviceResult { title, message }),
        },
    )
}

/// What a typed user code turned out to be.
enum Lookup {
    Pending {
        device_hash: String,
        grant: Box<DeviceGrant>,
        code: String,
    },
    AlreadyAnswered {
        approved: bool,
    },
    Malformed,
    Unknown,
    Limited,
    /// A link whose budget is spent: the code only fills in the form.
    NotLookedUp {
        code: String,
    },
}

/// Which of a person's attempt budgets a lookup spends. Only a form POST (the
/// person typed or confirmed a code) spends approval attempts: a GET can be any
/// site's link, and must not be able to block the person's approvals. Links get
/// their own budget; once it is spent, a link only fills in the form.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Budget {
    /// A POST of the form: a wrong code counts against approvals.
    Approve,
    /// A GET with `?user_code=`: counts only against link lookups.
    Link,
}

fn limiter_key(identity: &Identity, budget: Budget, slot: usize) -> String {
    let who = digest(&format!("{}|{}", identity.source_id, identity.user_name));
    match budget {
        Budget::Approve => format!("sso-device-wrong:{who}:{slot}"),
        Budget::Link => format!("sso-device-link:{who}:{slot}"),
    }
}

/// Finds the pending request a user code names. Every lookup takes one of the
/// person's few attempt slots of `budget` first (atomically, so parallel guesses
/// count too); a code that names a request gives its slot back.
async fn lookup(
    state: &AppState,
    request: &HttpRequest,
    session: &PortalSession,
    raw: &str,
    budget: Budget,
    now: i64,
) -> Result<Lookup, OidcError> {
    let Some(code) = normalize_user_code(raw) else {
        return Ok(Lookup::Malformed);
    };
    let mut slot = None;
    for i in 0..WRONG_CODE_LIMIT {
        let key = limiter_key(&session.identity, budget, i);
        if state
            .cache
            .put_if_absent(&key, b"1", WRONG_CODE_WINDOW)
            .await
            .map_err(|e| internal("cache write", e))?
        {
            slot = Some(key);
            break;
        }
    }
    let Some(slot) = slot else {
        if budget == Budget::Link {
            // Not a refusal: the link fills in the form, and the person's own
            // Continue (a POST) looks the code up.
            return Ok(Lookup::NotLookedUp { code });
        }
        audit(
            state,
            request,
            &session.identity.user_name,
            "sso:ApproveDevice",
            "device",
            Outcome::Denied,
            json!({ "reason": "too many wrong user codes" }),
        )
        .await;
        return Ok(Lookup::Limited);
    };
    let device_hash = match state.cache.get(&user_code_key(&code)).await {
        Ok(value) => value.and_then(|v| String::from_utf8(v).ok()),
        Err(error) => return Err(internal("cache read", error)),
    };
    let grant = match &device_hash {
        Some(hash) => get_json::<DeviceGrant>(state, &device_key(hash)).await?,
        None => None,
    };
    match (device_hash, grant) {
        (Some(device_hash), Some(grant))
            if grant.expires_at > now && same(&grant.user_code, &code) =>
        {
            let _ = state.cache.delete(&slot).await;
            Ok(match grant.decision {
                Decision::Pending => Lookup::Pending {
                    device_hash,
                    grant: Box::new(grant),
                    code,
                },
                Decision::Approved { .. } => Lookup::AlreadyAnswered { approved: true },
                Decision::Denied => Lookup::AlreadyAnswered { approved: false },
            })
        }
        _ => {
            audit(
                state,
                request,
                &session.identity.user_name,
                "sso:ApproveDevice",
                "device",
                Outcome::Failure,
                json!({ "reason": "unknown or expired user code" }),
            )
            .await;
            Ok(Lookup::Unknown)
        }
    }
}

/// The page for a lookup that found no pending request (None when it did).
fn lookup_refusal(session: &PortalSession, raw: &str, lookup: &Lookup) -> Option<HttpResponse> {
    let shown = raw.chars().take(16).collect::<String>();
    match lookup {
        Lookup::Pending { .. } => None,
        Lookup::NotLookedUp { code } => Some(entry_page(session, code, StatusCode::OK, None)),
        Lookup::Malformed => Some(entry_page(
            session,
            &shown,
            StatusCode::BAD_REQUEST,
            Some(
                "That is not a valid code. Codes look like BCDF-GHJK: eight letters, shown in your terminal.",
            ),
        )),
        Lookup::Unknown => Some(entry_page(
            session,
            &shown,
            StatusCode::NOT_FOUND,
            Some(
                "This code is unknown or has expired. Check the code in your terminal, or start the sign-in again there.",
            ),
        )),
        Lookup::AlreadyAnswered { approved } => Some(result_page(
            session,
            if *approved {
                "Device approved — return to your terminal"
            } else {
                "Request denied"
            },
            "This request has already been answered; nothing changed.".into(),
        )),
        Lookup::Limited => Some(error_page(
            StatusCode::TOO_MANY_REQUESTS,
            "Too many wrong codes",
            "You entered too many wrong device codes. For your security, device approval is paused for 15 minutes. Start the sign-in again in your terminal later.",
            "/start",
            "Your accounts",
        )),
    }
}

fn unavailable() -> HttpResponse {
    error_page(
        StatusCode::SERVICE_UNAVAILABLE,
        "Unavailable",
        "Device sign-in is unavailable right now. Please try again shortly.",
        "/device",
        "Try again",
    )
}

fn confirm_page<'a>(
    session: &'a PortalSession,
    code: &'a str,
    grant: &'a DeviceGrant,
) -> HttpResponse {
    render(
        StatusCode::OK,
        DevicePage {
            display_name: &session.identity.display_name,
            csrf: &session.csrf,
            user_code: code,
            client_name: Some(&grant.client_name),
            client_id: short_client_id(&grant.client_id),
            error: None,
            result: None,
        },
    )
}

#[derive(Deserialize)]
struct DeviceQuery {
    user_code: Option<String>,
}

async fn device_page(
    state: web::Data<AppState>,
    request: HttpRequest,
    query: web::Query<DeviceQuery>,
) -> HttpResponse {
    let raw = query.user_code.as_deref().unwrap_or("").trim();
    let Some((_, session)) = session(&state, &request).await else {
        let back = match normalize_user_code(raw) {
            Some(code) => format!("/device?user_code={code}"),
            None => "/device".to_owned(),
        };
        return redirect(&format!(
            "/signin?return_to={}",
            utf8_percent_encode(&back, NON_ALPHANUMERIC)
        ));
    };
    if raw.is_empty() {
        return entry_page(&session, "", StatusCode::OK, None);
    }
    let now = state.clock.now().timestamp();
    let found = match lookup(&state, &request, &session, raw, Budget::Link, now).await {
        Ok(found) => found,
        Err(_) => return unavailable(),
    };
    if let Some(refusal) = lookup_refusal(&session, raw, &found) {
        return refusal;
    }
    match &found {
        Lookup::Pending { grant, code, .. } => confirm_page(&session, code, grant),
        _ => unavailable(),
    }
}

#[derive(Deserialize)]
struct DeviceForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    user_code: String,
    #[serde(default)]
    decision: String,
    /// The code whose client the person saw when offered Approve.
    #[serde(default)]
    confirmed_code: String,
}

async fn device_decision(
    state: web::Data<AppState>,
    request: HttpRequest,
    form: web::Form<DeviceForm>,
) -> HttpResponse {
    let form = form.into_inner();
    let session =
        match signed_in_form(&state, &request, &form.csrf, "sso:ApproveDevice", "device").await {
            Ok(session) => session,
            Err(refusal) => return refusal,
        };
    let approve = match form.decision.as_str() {
        "approve" => Some(true),
        "deny" => Some(false),
        "" | "continue" => None,
        _ => {
            return entry_page(
                &session,
                "",
                StatusCode::BAD_REQUEST,
                Some("Choose Approve or Deny."),
            );
        }
    };
    let raw = form.user_code.trim();
    if raw.is_empty() {
        return entry_page(
            &session,
            "",
            StatusCode::BAD_REQUEST,
            Some("Enter the code shown in your terminal."),
        );
    }
    let now = state.clock.now().timestamp();
    let found = match lookup(&state, &request, &session, raw, Budget::Approve, now).await {
        Ok(found) => found,
        Err(_) => return unavailable(),
    };
    if let Some(refusal) = lookup_refusal(&session, raw, &found) {
        return refusal;
    }
    let Lookup::Pending {
        device_hash,
        mut grant,
        code,
    } = found
    else {
        return unavailable();
    };
    let Some(approve) = approve else {
        return confirm_page(&session, &code, &grant);
    };
    // Approve only what was shown: an edited code gets its own confirmation first.
    if approve && normalize_user_code(&form.confirmed_code).as_deref() != Some(code.as_str()) {
        return confirm_page(&session, &code, &grant);
    }
    let remaining = grant.expires_at - now;
    let decided = format!("sso-device-decided:{device_hash}");
    match first(&state, &decided, remaining).await {
        Ok(true) => {}
        Ok(false) => {
            return result_page(
                &session,
                "Request already answered",
                "This request has already been approved or denied; nothing changed.".into(),
            );
        }
        Err(_) => return unavailable(),
    }
    grant.decision = if approve {
        Decision::Approved {
            identity: session.identity.clone(),
            // Tokens live no longer than the portal sign-in that approved them.
            signed_in_at: session.sign_in_time(now),
            valid_from_ms: session.valid_from_ms,
        }
    } else {
        Decision::Denied
    };
    if put_json(&state, &device_key(&device_hash), &grant, remaining)
        .await
        .is_err()
    {
        let _ = state.cache.delete(&decided).await;
        return unavailable();
    }
    audit(
        &state,
        &request,
        &session.identity.user_name,
        "sso:ApproveDevice",
        &grant.client_name,
        if approve {
            Outcome::Success
        } else {
            Outcome::Denied
        },
        json!({ "client_id": short_client_id(&grant.client_id), "decision": if approve { "approve" } else { "deny" } }),
    )
    .await;
    if approve {
        result_page(
            &session,
            "Device approved — return to your terminal",
            format!(
                "{} is now signed in as you and can get credentials for your roles. You can close this window.",
                grant.client_name
            ),
        )
    } else {
        result_page(
            &session,
            "Request denied",
            format!(
                "{} was not given access. If you did not start this sign-in yourself, tell your administrator.",
                grant.client_name
            ),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_codes_use_the_rfc_8628_alphabet_and_normalise() {
        for _ in 0..100 {
            let code = new_user_code(&crate::clock::Random::system());
            assert_eq!(code.len(), 9);
            assert_eq!(normalize_user_code(&code).as_deref(), Some(code.as_str()));
        }
        assert_eq!(
            normalize_user_code(" bcdf ghjk ").as_deref(),
            Some("BCDF-GHJK")
        );
        assert_eq!(
            normalize_user_code("bcdfghjk").as_deref(),
            Some("BCDF-GHJK")
        );
        assert_eq!(normalize_user_code("BCDF-GHJ"), None);
        assert_eq!(normalize_user_code("ABCD-EFGH"), None, "vowels never occur");
        assert_eq!(normalize_user_code("BCDF-GHJK-L"), None);
        assert_eq!(normalize_user_code("ＢCDF-GHJK"), None);
    }
}
