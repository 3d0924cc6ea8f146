//! Client registration (RegisterClient) and client authentication. Registrations are
//! stateless: the client secret seals the whole registration, and an
//! authorization-code client's id seals what `/authorize` must show before any
//! secret is presented (its name and redirect URIs).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

use super::{DeviceError, DeviceService, same};

pub const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";
pub const REFRESH_GRANT: &str = "refresh_token";
pub const AUTHORIZATION_CODE_GRANT: &str = "authorization_code";
/// Binds a sealed client secret to its purpose.
const CLIENT_SECRET_CONTEXT: &str = "rolegate:sso-oidc:client-registration:v1";
/// Binds a sealed client id to its purpose.
const CLIENT_ID_CONTEXT: &str = "rolegate:sso-oidc:client-id:v1";
/// How long a client registration lasts (AWS uses about 90 days).
const REGISTRATION_SECONDS: i64 = 90 * 86_400;
/// The longest client id or secret: every call carries both, and the wire refuses
/// members over 4096 characters.
const CREDENTIAL_LIMIT: usize = 4096;
/// The longest redirect URI accepted.
const REDIRECT_URI_LIMIT: usize = 512;
/// Redirect URIs one client may register.
const REDIRECT_URI_COUNT: usize = 10;

/// What a client secret seals: the registration itself.
#[derive(Debug, Serialize, Deserialize)]
pub struct Registration {
    pub(super) client_id: String,
    pub(super) client_name: String,
    #[serde(default)]
    scopes: Vec<String>,
    #[serde(default)]
    grant_types: Vec<String>,
    issued_at: i64,
    expires_at: i64,
}

impl Registration {
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    pub fn client_name(&self) -> &str {
        &self.client_name
    }

    /// Refuses a grant type the client did not register for (only the
    /// authorization-code grant is registered for explicitly).
    pub fn require_authorization_code(&self) -> Result<(), DeviceError> {
        if self
            .grant_types
            .iter()
            .any(|g| g == AUTHORIZATION_CODE_GRANT)
        {
            Ok(())
        } else {
            Err(DeviceError::UnauthorizedClient(
                "This client was not registered for the authorization_code grant",
            ))
        }
    }
}

/// What `/authorize` must know of a client before it shows anything: sealed into the
/// client id (so it cannot be forged), opened on every use.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct PublicRegistration {
    /// The short id (`rgc-...`), shown to people.
    pub(super) id: String,
    pub(super) name: String,
    pub(super) redirect_uris: Vec<String>,
    #[serde(default)]
    pub(super) scopes: Vec<String>,
    expires_at: i64,
}

/// A RegisterClient request, its members present.
pub struct NewClient<'a> {
    pub name: &'a str,
    pub client_type: &'a str,
    pub scopes: Vec<String>,
    pub grant_types: Vec<String>,
    /// Loopback URIs for the authorization code grant (any port at use time).
    pub redirect_uris: Vec<String>,
}

/// A new registration: what the client keeps.
pub struct RegisteredClient {
    pub client_id: String,
    pub client_name: String,
    pub client_secret: String,
    pub issued_at: i64,
    pub expires_at: i64,
}

pub(super) fn valid_scope(scope: &str) -> bool {
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

/// A loopback redirect URI (RFC 8252 §7.3): `http`, host `127.0.0.1`, `[::1]` or
/// `localhost`, any port, no user info or fragment. Returns (host, path and query).
fn loopback(uri: &str) -> Option<(String, String)> {
    if uri.len() > REDIRECT_URI_LIMIT || uri.chars().any(|c| c.is_control() || c == ' ') {
        return None;
    }
    let url = reqwest::Url::parse(uri).ok()?;
    if url.scheme() != "http"
        || !url.username().is_empty()
        || url.password().is_some()
        || url.fragment().is_some()
    {
        return None;
    }
    // The parser normalises the host (`127.1` is `127.0.0.1`, names are lower case).
    let host = url.host_str()?;
    if !matches!(host, "127.0.0.1" | "[::1]" | "localhost") {
        return None;
    }
    let host = host.to_owned();
    let rest = match url.query() {
        Some(query) => format!("{}?{query}", url.path()),
        None => url.path().to_owned(),
    };
    Some((host, rest))
}

/// Whether `presented` is one of the `registered` loopback URIs, any port (RFC 8252
/// §7.3: the client picks a free port when it runs): same host, path and query.
pub(super) fn redirect_uri_registered(registered: &[String], presented: &str) -> bool {
    let Some(presented) = loopback(presented) else {
        return false;
    };
    registered
        .iter()
        .filter_map(|uri| loopback(uri))
        .any(|uri| uri == presented)
}

/// Checks RegisterClient's `redirectUris` for a client of `grant_types`: an
/// authorization-code client needs at least one, and every one must be loopback.
fn check_redirect_uris(
    grant_types: &[String],
    redirect_uris: &[String],
) -> Result<(), DeviceError> {
    let wants_code = grant_types.iter().any(|g| g == AUTHORIZATION_CODE_GRANT);
    if !wants_code && redirect_uris.is_empty() {
        return Ok(());
    }
    if wants_code && redirect_uris.is_empty() {
        return Err(DeviceError::InvalidRedirectUri(
            "the authorization_code grant needs redirectUris".into(),
        ));
    }
    if redirect_uris.len() > REDIRECT_URI_COUNT {
        return Err(DeviceError::InvalidRedirectUri(format!(
            "at most {REDIRECT_URI_COUNT} redirectUris"
        )));
    }
    if let Some(bad) = redirect_uris.iter().find(|uri| loopback(uri).is_none()) {
        return Err(DeviceError::InvalidRedirectUri(format!(
            "redirect URI {:?} is not a loopback URI (http://127.0.0.1, http://[::1] or http://localhost, RFC 8252 §7.3)",
            bad.chars().take(128).collect::<String>()
        )));
    }
    Ok(())
}

/// A grant type named in a request, bounded for the error message.
pub fn unsupported_grant_type(grant_type: &str) -> DeviceError {
    DeviceError::UnsupportedGrantType(format!(
        "grant type {:?} is not supported",
        grant_type.chars().take(64).collect::<String>()
    ))
}

fn too_long_in_total() -> DeviceError {
    DeviceError::InvalidRedirectUri(
        "the redirectUris (with the client name and scopes) are too long in total".into(),
    )
}

/// The short form of a client id, for pages and the audit log.
pub fn short_client_id(client_id: &str) -> &str {
    let short = client_id.split('.').next().unwrap_or(client_id);
    let end = short.char_indices().nth(64).map_or(short.len(), |(i, _)| i);
    &short[..end]
}

impl DeviceService {
    /// RegisterClient: checks the request and seals the registration into the client
    /// secret (and, for an authorization-code client, its public part into the id).
    pub fn register_client(&self, request: NewClient<'_>) -> Result<RegisteredClient, DeviceError> {
        let name = request.name;
        if name.chars().count() > 128 || name.chars().any(invisible_or_reordering) {
            return Err(DeviceError::InvalidClientMetadata(
                "clientName must be at most 128 visible characters".into(),
            ));
        }
        if request.client_type != "public" {
            return Err(DeviceError::InvalidClientMetadata(
                "clientType must be \"public\"".into(),
            ));
        }
        if request.scopes.len() > 25 {
            return Err(DeviceError::InvalidScope("at most 25 scopes".into()));
        }
        if let Some(bad) = request.scopes.iter().find(|s| !valid_scope(s)) {
            return Err(DeviceError::InvalidScope(format!("invalid scope {bad:?}")));
        }
        if let Some(bad) = request.grant_types.iter().find(|g| {
            ![DEVICE_GRANT, REFRESH_GRANT, AUTHORIZATION_CODE_GRANT].contains(&g.as_str())
        }) {
            return Err(unsupported_grant_type(bad));
        }
        check_redirect_uris(&request.grant_types, &request.redirect_uris)?;
        let now = self.now();
        let short_id = format!("rgc-{}", URL_SAFE_NO_PAD.encode(self.random.bytes::<18>()));
        let expires_at = now + REGISTRATION_SECONDS;
        let client_id = self.client_id_for(&short_id, &request, expires_at)?;
        let registration = Registration {
            client_id,
            client_name: name.to_owned(),
            scopes: request.scopes,
            grant_types: request.grant_types,
            issued_at: now,
            expires_at,
        };
        let sealed = serde_json::to_string(&registration)
            .map_err(|e| DeviceError::unavailable("encode", e))?;
        let client_secret = self.seal(&sealed, CLIENT_SECRET_CONTEXT);
        // A registration whose secret would not fit later calls is refused now, not
        // left unusable.
        if client_secret.len() > CREDENTIAL_LIMIT {
            return Err(too_long_in_total());
        }
        tracing::info!(client_id = %short_client_id(&registration.client_id), client_name = %registration.client_name, "sso-oidc client registered");
        Ok(RegisteredClient {
            client_id: registration.client_id,
            client_name: registration.client_name,
            client_secret,
            issued_at: now,
            expires_at,
        })
    }

    /// The client id of a new registration: the short id alone for device clients,
    /// `<short id>.<sealed public registration>` for authorization-code clients.
    fn client_id_for(
        &self,
        short_id: &str,
        request: &NewClient<'_>,
        expires_at: i64,
    ) -> Result<String, DeviceError> {
        if !request
            .grant_types
            .iter()
            .any(|g| g == AUTHORIZATION_CODE_GRANT)
        {
            return Ok(short_id.to_owned());
        }
        let public = PublicRegistration {
            id: short_id.to_owned(),
            name: request.name.to_owned(),
            redirect_uris: request.redirect_uris.clone(),
            scopes: request.scopes.clone(),
            expires_at,
        };
        let text =
            serde_json::to_string(&public).map_err(|e| DeviceError::unavailable("encode", e))?;
        let sealed = self.seal(&text, CLIENT_ID_CONTEXT);
        let client_id = format!("{short_id}.{}", URL_SAFE_NO_PAD.encode(sealed));
        if client_id.len() > CREDENTIAL_LIMIT {
            return Err(too_long_in_total());
        }
        Ok(client_id)
    }

    fn seal(&self, value: &str, context: &str) -> String {
        self.sealer.seal_secret(value, context)
    }

    fn open(&self, sealed: &str, context: &str) -> Option<String> {
        let secret = self.sealer.open_secret(sealed, context).ok()?;
        Some(secret.expose().to_owned())
    }

    /// Opens a client secret and checks that it belongs to `client_id` and is current.
    pub fn verify_client(
        &self,
        client_id: &str,
        client_secret: &str,
    ) -> Result<Registration, DeviceError> {
        let invalid = || DeviceError::InvalidClient("The client id or client secret is invalid");
        let opened = self
            .open(client_secret, CLIENT_SECRET_CONTEXT)
            .ok_or_else(invalid)?;
        let registration: Registration = serde_json::from_str(&opened).map_err(|_| invalid())?;
        if !same(&registration.client_id, client_id) {
            return Err(invalid());
        }
        if registration.expires_at <= self.now() {
            return Err(DeviceError::InvalidClient(
                "The client registration has expired; register the client again",
            ));
        }
        Ok(registration)
    }

    /// The registration an authorization-code client id carries, if it is one of ours
    /// and current.
    pub(super) fn open_client_id(&self, client_id: &str) -> Option<PublicRegistration> {
        let (short, sealed) = client_id.split_once('.')?;
        let sealed = String::from_utf8(URL_SAFE_NO_PAD.decode(sealed).ok()?).ok()?;
        let opened = self.open(&sealed, CLIENT_ID_CONTEXT)?;
        let public: PublicRegistration = serde_json::from_str(&opened).ok()?;
        (same(&public.id, short) && public.expires_at > self.now()).then_some(public)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_redirect_uris_match_on_any_port() {
        let registered = vec!["http://127.0.0.1/oauth/callback".to_owned()];
        assert!(redirect_uri_registered(
            &registered,
            "http://127.0.0.1:44295/oauth/callback"
        ));
        assert!(redirect_uri_registered(
            &registered,
            "http://127.0.0.1/oauth/callback"
        ));
        for bad in [
            "http://127.0.0.1:44295/other",
            "https://127.0.0.1:44295/oauth/callback",
            "http://127.0.0.2:44295/oauth/callback",
            "http://evil.example/oauth/callback",
            "http://127.0.0.1.evil.example/oauth/callback",
            "http://user@127.0.0.1:1/oauth/callback",
            "http://127.0.0.1:1/oauth/callback#x",
            "http://localhost:1/oauth/callback",
        ] {
            assert!(!redirect_uri_registered(&registered, bad), "{bad}");
        }
        let v6 = vec![
            "http://[::1]/cb".to_owned(),
            "http://localhost/cb".to_owned(),
        ];
        assert!(redirect_uri_registered(&v6, "http://[::1]:8080/cb"));
        assert!(redirect_uri_registered(&v6, "http://LOCALHOST:8080/cb"));
        assert!(check_redirect_uris(&["authorization_code".into()], &[]).is_err());
        assert!(
            check_redirect_uris(
                &["authorization_code".into()],
                &["https://app.example/cb".into()]
            )
            .is_err()
        );
        assert!(check_redirect_uris(&["authorization_code".into()], &registered).is_ok());
    }
}
