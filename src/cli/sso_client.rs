//! The HTTP client of the command line: Rolegate's AWS SSO-OIDC API (RegisterClient,
//! StartDeviceAuthorization, CreateToken) and SSO portal API (ListAccounts,
//! ListAccountRoles, GetRoleCredentials, Logout), called exactly as the AWS CLI calls them
//! (spec `aws-wire-protocols.md` §5 and §6): JSON, unsigned, the portal's bearer in
//! `x-amz-sso_bearer_token`, errors typed by `x-amzn-ErrorType` (or `__type`).

use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize};

/// The scope every registration asks for (what `aws configure sso` writes).
pub const SSO_SCOPE: &str = "sso:account:access";
/// RFC 8628's grant type, as CreateToken expects it.
pub const DEVICE_CODE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

const BEARER_HEADER: &str = "x-amz-sso_bearer_token";
const ERROR_TYPE_HEADER: &str = "x-amzn-ErrorType";
/// Upper bound on pages followed for one listing (a server that never stops paging).
const MAX_PAGES: usize = 1000;

/// A failed call: the server could not be reached or understood, or it answered
/// with a typed error (`code` is the exception name, e.g. `AuthorizationPendingException`).
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("cannot reach Rolegate at {url}: {detail}")]
    Transport { url: String, detail: String },
    #[error("unexpected answer from {url}: {detail}")]
    Malformed { url: String, detail: String },
    #[error("{code}: {message}")]
    Service {
        status: u16,
        code: String,
        message: String,
    },
}

impl ApiError {
    /// A service error with this code, as the server would answer it (for tests).
    #[cfg(test)]
    pub(crate) fn service(code: &str) -> Self {
        ApiError::Service {
            status: 400,
            code: code.to_owned(),
            message: "m".to_owned(),
        }
    }

    /// The service's exception name, if the server answered with one.
    pub fn code(&self) -> Option<&str> {
        match self {
            ApiError::Service { code, .. } => Some(code),
            _ => None,
        }
    }
}

/// A registered OIDC client (RegisterClient's answer, or a cached registration).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientRegistration {
    pub client_id: String,
    pub client_secret: String,
    /// Epoch seconds after which the registration (and refresh with it) stops working.
    pub expires_at: i64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RegisterClientResponse {
    client_id: String,
    client_secret: String,
    client_secret_expires_at: i64,
}

/// StartDeviceAuthorization's answer.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeviceAuthorization {
    pub device_code: String,
    pub user_code: String,
    pub verification_uri: String,
    pub verification_uri_complete: String,
    /// Seconds until the device code expires.
    pub expires_in: i64,
    /// Seconds between polls; the CLI default is 5.
    #[serde(default)]
    pub interval: Option<u64>,
}

/// CreateToken's answer.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenGrant {
    pub access_token: String,
    /// Seconds until the access token expires.
    pub expires_in: i64,
    #[serde(default)]
    pub refresh_token: Option<String>,
}

/// One AWS account the token's owner may use (ListAccounts).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Account {
    pub account_id: String,
    #[serde(default)]
    pub account_name: Option<String>,
    #[serde(default)]
    pub email_address: Option<String>,
}

/// One role in an account (ListAccountRoles).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountRole {
    pub role_name: String,
    pub account_id: String,
}

/// Temporary credentials for a role (GetRoleCredentials).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RoleCredentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: String,
    /// Epoch milliseconds (a numeric string is accepted too, as botocore does).
    #[serde(deserialize_with = "epoch_millis")]
    pub expiration: i64,
}

fn epoch_millis<'de, D: Deserializer<'de>>(deserializer: D) -> Result<i64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Millis {
        Number(i64),
        Float(f64),
        Text(String),
    }
    match Millis::deserialize(deserializer)? {
        Millis::Number(n) => Ok(n),
        #[allow(clippy::cast_possible_truncation)]
        Millis::Float(f) if f.is_finite() => Ok(f as i64),
        Millis::Float(_) => Err(serde::de::Error::custom("expiration is not a number")),
        Millis::Text(text) => text
            .trim()
            .parse()
            .map_err(|_| serde::de::Error::custom("expiration is not epoch milliseconds")),
    }
}

#[derive(Deserialize)]
struct RoleCredentialsResponse {
    #[serde(rename = "roleCredentials")]
    role_credentials: RoleCredentials,
}

#[derive(Deserialize)]
struct AccountPage {
    #[serde(rename = "accountList", default)]
    account_list: Vec<Account>,
    #[serde(rename = "nextToken", default)]
    next_token: Option<String>,
}

#[derive(Deserialize)]
struct RolePage {
    #[serde(rename = "roleList", default)]
    role_list: Vec<AccountRole>,
    #[serde(rename = "nextToken", default)]
    next_token: Option<String>,
}

/// Checks and normalises the `--url` a user typed: `http(s)://host[:port][/prefix]`
/// without a trailing `/` (a pasted portal URL ending in `/start` is accepted too).
pub fn normalize_base_url(url: &str) -> Result<String, String> {
    let trimmed = url.trim().trim_end_matches('/');
    let parsed = reqwest::Url::parse(trimmed).map_err(|e| {
        format!("`{url}` is not a URL ({e}); expected e.g. https://rolegate.example.com")
    })?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        return Err(format!(
            "`{url}` is not an http(s) URL; expected e.g. https://rolegate.example.com"
        ));
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(format!(
            "`{url}` has a query or fragment; give Rolegate's base URL"
        ));
    }
    let base = trimmed.strip_suffix("/start").unwrap_or(trimmed);
    Ok(base.to_owned())
}

/// Whether `url` is an https URL on a host the AWS CLI v2 treats as AWS-owned (its
/// `resolve_start_url`): such a start URL is an identifier the CLI never contacts.
pub fn is_aws_owned_start_url(url: &str) -> bool {
    let Ok(parsed) = reqwest::Url::parse(url) else {
        return false;
    };
    let Some(host) = parsed.host_str() else {
        return false;
    };
    const SUFFIXES: [&str; 8] = [
        ".awsapps.com",
        ".awsapps.cn",
        ".app.aws",
        ".portal.amazonaws.com",
        ".portal.amazonaws.com.cn",
        ".app.amazonwebservices.com.cn",
        ".portal.amazonaws.eu",
        ".api.amazonwebservices.eu",
    ];
    const HOSTS: [&str; 4] = [
        "identitycenter.amazonaws.com",
        "identitycenter.amazonaws.com.cn",
        "identitycenter.amazonaws.eu",
        "identitycenter.us-gov.amazonaws.com",
    ];
    parsed.scheme() == "https"
        && parsed.username().is_empty()
        && (SUFFIXES
            .iter()
            .any(|s| host.len() > s.len() && host.ends_with(s))
            || HOSTS.contains(&host))
}

/// The start URL that identifies a Rolegate to the AWS tools (`sso_start_url`).
pub fn start_url(base: &str) -> String {
    format!("{base}/start")
}

/// The Rolegate base URL behind a start URL written by [`start_url`].
pub fn base_of_start_url(start_url: &str) -> String {
    let trimmed = start_url.trim_end_matches('/');
    trimmed.strip_suffix("/start").unwrap_or(trimmed).to_owned()
}

/// The exception name of an error answer: `x-amzn-ErrorType` up to its first `:`,
/// else the body's `__type` (after a `#` namespace) or `code`, else the OAuth
/// `error` value mapped to its exception, else the HTTP status.
pub fn error_code(header: Option<&str>, body: &serde_json::Value, status: u16) -> String {
    let clean = |s: &str| {
        let s = s.split(':').next().unwrap_or_default();
        s.rsplit('#').next().unwrap_or_default().trim().to_owned()
    };
    if let Some(code) = header.map(clean).filter(|c| !c.is_empty()) {
        return code;
    }
    for key in ["__type", "code"] {
        if let Some(code) = body.get(key).and_then(|v| v.as_str()).map(clean)
            && !code.is_empty()
        {
            return code;
        }
    }
    let oauth = match body.get("error").and_then(|v| v.as_str()) {
        Some("authorization_pending") => "AuthorizationPendingException",
        Some("slow_down") => "SlowDownException",
        Some("expired_token") => "ExpiredTokenException",
        Some("access_denied") => "AccessDeniedException",
        Some("invalid_grant") => "InvalidGrantException",
        Some("invalid_client") => "InvalidClientException",
        Some("invalid_request") => "InvalidRequestException",
        Some("invalid_scope") => "InvalidScopeException",
        Some("unauthorized_client") => "UnauthorizedClientException",
        Some("unsupported_grant_type") => "UnsupportedGrantTypeException",
        _ => "",
    };
    if oauth.is_empty() {
        status.to_string()
    } else {
        oauth.to_owned()
    }
}

fn error_message(body: &serde_json::Value, raw: &str) -> String {
    for key in ["error_description", "message", "Message", "error"] {
        if let Some(text) = body.get(key).and_then(|v| v.as_str())
            && !text.trim().is_empty()
        {
            return text.trim().to_owned();
        }
    }
    let raw = raw.trim();
    if raw.is_empty() {
        "no details given".to_owned()
    } else {
        raw.chars().take(200).collect()
    }
}

fn transport_detail(error: &reqwest::Error) -> String {
    let mut detail = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        detail.push_str(": ");
        detail.push_str(&cause.to_string());
        source = cause.source();
    }
    detail
}

/// Rolegate's SSO-OIDC and SSO portal APIs at one base URL.
#[derive(Debug, Clone)]
pub struct SsoClient {
    http: reqwest::Client,
    base: String,
}

impl SsoClient {
    /// A client for the Rolegate at `base` (as returned by [`normalize_base_url`]).
    pub fn new(base: &str) -> Result<Self, String> {
        let http = reqwest::Client::builder()
            .user_agent(concat!("rolegate-cli/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| format!("cannot set up the HTTP client: {e}"))?;
        Ok(Self {
            http,
            base: base.trim_end_matches('/').to_owned(),
        })
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    /// The AWS-shaped start URL this Rolegate's `HEAD /start` redirects to (what the
    /// AWS CLI v2 resolves its start URL to); None if it names none.
    pub async fn aws_start_url(&self) -> Option<String> {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(30))
            .build()
            .ok()?;
        let response = http.head(self.url("/start")).send().await.ok()?;
        if !response.status().is_redirection() {
            return None;
        }
        let location = response.headers().get(reqwest::header::LOCATION)?;
        let location = location.to_str().ok()?.to_owned();
        is_aws_owned_start_url(&location).then_some(location)
    }

    /// RegisterClient: a public client for the device flow with [`SSO_SCOPE`].
    pub async fn register_client(&self, client_name: &str) -> Result<ClientRegistration, ApiError> {
        let body = serde_json::json!({
            "clientName": client_name,
            "clientType": "public",
            "scopes": [SSO_SCOPE],
        });
        let answer: RegisterClientResponse = self.post_json("/client/register", &body).await?;
        Ok(ClientRegistration {
            client_id: answer.client_id,
            client_secret: answer.client_secret,
            expires_at: answer.client_secret_expires_at,
        })
    }

    /// StartDeviceAuthorization for `start_url`.
    pub async fn start_device_authorization(
        &self,
        client: &ClientRegistration,
        start_url: &str,
    ) -> Result<DeviceAuthorization, ApiError> {
        let body = serde_json::json!({
            "clientId": client.client_id,
            "clientSecret": client.client_secret,
            "startUrl": start_url,
        });
        self.post_json("/device_authorization", &body).await
    }

    /// CreateToken with the device-code grant (one poll).
    pub async fn create_token_for_device(
        &self,
        client: &ClientRegistration,
        device_code: &str,
    ) -> Result<TokenGrant, ApiError> {
        let body = serde_json::json!({
            "grantType": DEVICE_CODE_GRANT,
            "clientId": client.client_id,
            "clientSecret": client.client_secret,
            "deviceCode": device_code,
        });
        self.post_json("/token", &body).await
    }

    /// CreateToken with the refresh-token grant (what botocore sends: no scope).
    pub async fn refresh_token(
        &self,
        client_id: &str,
        client_secret: &str,
        refresh_token: &str,
    ) -> Result<TokenGrant, ApiError> {
        let body = serde_json::json!({
            "grantType": "refresh_token",
            "clientId": client_id,
            "clientSecret": client_secret,
            "refreshToken": refresh_token,
        });
        self.post_json("/token", &body).await
    }

    /// ListAccounts, every page.
    pub async fn list_accounts(&self, access_token: &str) -> Result<Vec<Account>, ApiError> {
        let mut accounts = Vec::new();
        let mut next: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let mut query = Vec::new();
            if let Some(token) = &next {
                query.push(("next_token", token.as_str()));
            }
            let page: AccountPage = self
                .get_portal("/assignment/accounts", &query, access_token)
                .await?;
            accounts.extend(page.account_list);
            next = page.next_token.filter(|t| !t.is_empty());
            if next.is_none() {
                return Ok(accounts);
            }
        }
        Err(self.too_many_pages("/assignment/accounts"))
    }

    /// ListAccountRoles for one account, every page.
    pub async fn list_account_roles(
        &self,
        access_token: &str,
        account_id: &str,
    ) -> Result<Vec<AccountRole>, ApiError> {
        let mut roles = Vec::new();
        let mut next: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let mut query = vec![("account_id", account_id)];
            if let Some(token) = &next {
                query.push(("next_token", token.as_str()));
            }
            let page: RolePage = self
                .get_portal("/assignment/roles", &query, access_token)
                .await?;
            roles.extend(page.role_list);
            next = page.next_token.filter(|t| !t.is_empty());
            if next.is_none() {
                return Ok(roles);
            }
        }
        Err(self.too_many_pages("/assignment/roles"))
    }

    /// GetRoleCredentials.
    pub async fn get_role_credentials(
        &self,
        access_token: &str,
        account_id: &str,
        role_name: &str,
    ) -> Result<RoleCredentials, ApiError> {
        let query = [("role_name", role_name), ("account_id", account_id)];
        let answer: RoleCredentialsResponse = self
            .get_portal("/federation/credentials", &query, access_token)
            .await?;
        Ok(answer.role_credentials)
    }

    /// Logout: ends the sign-in behind `access_token` (its access and refresh tokens).
    pub async fn logout(&self, access_token: &str) -> Result<(), ApiError> {
        let url = self.url("/logout");
        let request = self.http.post(&url).header(BEARER_HEADER, access_token);
        self.send_raw(&url, request).await.map(|_| ())
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn too_many_pages(&self, path: &str) -> ApiError {
        ApiError::Malformed {
            url: self.url(path),
            detail: format!("more than {MAX_PAGES} pages"),
        }
    }

    async fn post_json<T: DeserializeOwned>(
        &self,
        path: &str,
        body: &impl Serialize,
    ) -> Result<T, ApiError> {
        let url = self.url(path);
        let request = self.http.post(&url).json(body);
        self.send(&url, request).await
    }

    async fn get_portal<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, &str)],
        access_token: &str,
    ) -> Result<T, ApiError> {
        let url = self.url(path);
        let request = self
            .http
            .get(&url)
            .query(query)
            .header(BEARER_HEADER, access_token);
        self.send(&url, request).await
    }

    async fn send<T: DeserializeOwned>(
        &self,
        url: &str,
        request: reqwest::RequestBuilder,
    ) -> Result<T, ApiError> {
        let (status, text) = self.send_raw(url, request).await?;
        serde_json::from_str(&text).map_err(|e| ApiError::Malformed {
            url: url.to_owned(),
            detail: format!("HTTP {status}, {e}"),
        })
    }

    /// Sends `request`: a success's status and body, or the typed error.
    async fn send_raw(
        &self,
        url: &str,
        request: reqwest::RequestBuilder,
    ) -> Result<(reqwest::StatusCode, String), ApiError> {
        let transport = |e: reqwest::Error| ApiError::Transport {
            url: url.to_owned(),
            detail: transport_detail(&e),
        };
        let response = request.send().await.map_err(transport)?;
        let status = response.status();
        let error_type = response
            .headers()
            .get(ERROR_TYPE_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let text = response.text().await.map_err(transport)?;
        if status.is_success() {
            return Ok((status, text));
        }
        let body: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        Err(ApiError::Service {
            status: status.as_u16(),
            code: error_code(error_type.as_deref(), &body, status.as_u16()),
            message: error_message(&body, &text),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn error_code_prefers_the_header_then_the_body() {
        let header = "AuthorizationPendingException:http://internal.amazon.com/coral/com.amazonaws.switchboard.portal/";
        assert_eq!(
            error_code(Some(header), &json!({}), 400),
            "AuthorizationPendingException"
        );
        assert_eq!(
            error_code(
                None,
                &json!({"__type": "com.amazon#SlowDownException"}),
                400
            ),
            "SlowDownException"
        );
        assert_eq!(
            error_code(None, &json!({"error": "expired_token"}), 400),
            "ExpiredTokenException"
        );
        assert_eq!(error_code(None, &json!({}), 502), "502");
    }

    #[test]
    fn base_urls_are_normalised() {
        assert_eq!(
            normalize_base_url("http://127.0.0.1:8080/").unwrap(),
            "http://127.0.0.1:8080"
        );
        assert_eq!(
            normalize_base_url("https://sso.example.com/rolegate/start").unwrap(),
            "https://sso.example.com/rolegate"
        );
        assert!(normalize_base_url("127.0.0.1:8080").is_err());
        assert!(normalize_base_url("ftp://example.com").is_err());
        assert_eq!(
            base_of_start_url(&start_url("https://sso.example.com/rg")),
            "https://sso.example.com/rg"
        );
    }

    #[test]
    fn role_credentials_accept_numeric_string_expirations() {
        let parsed: RoleCredentials = serde_json::from_value(json!({
            "accessKeyId": "ASIA1", "secretAccessKey": "s", "sessionToken": "t",
            "expiration": "1795463516618"
        }))
        .unwrap();
        assert_eq!(parsed.expiration, 1_795_463_516_618);
    }
}
