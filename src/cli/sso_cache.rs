//! The AWS SSO token cache, `~/.aws/sso/cache/<key>.json`, in exactly the format
//! botocore and the AWS CLI v2 read and write (spec `aws-wire-protocols.md` §7.1), so
//! that a token from `rolegate login` is used and refreshed by unmodified AWS tools.
//!
//! * token file: key `sha1(session name)`, fields `startUrl`, `region`, `accessToken`,
//!   `expiresAt`, `clientId`, `clientSecret`, `registrationExpiresAt`, `refreshToken`;
//! * client registration (as CLI v2 caches it): key `sha1` of a Python `json.dumps`
//!   of `{"tool", "startUrl", "region", "scopes", "session_name"}` with sorted keys,
//!   fields `clientId`, `clientSecret`, `expiresAt`, `scopes`.
//!
//! Files are written atomically (temporary file in the directory, fsync, rename) with
//! mode 0600. Times are `%Y-%m-%dT%H:%M:%SZ` in UTC.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use chrono::{DateTime, NaiveDateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use sha1::{Digest, Sha1};

use super::sso_client::ClientRegistration;

/// The `sso-session` name used when none is given.
pub const DEFAULT_SESSION: &str = "rolegate";
/// botocore refreshes a token (and re-registers a client) this long before expiry.
pub const REFRESH_WINDOW: TimeDelta = TimeDelta::minutes(15);

const TIME_FORMAT: &str = "%Y-%m-%dT%H:%M:%SZ";

/// `~/.aws/sso/cache` below `home`.
pub fn cache_dir(home: &Path) -> PathBuf {
    home.join(".aws").join("sso").join("cache")
}

/// The user's home directory from `$HOME` (as botocore's `expanduser` finds it).
pub fn home_dir() -> Result<PathBuf, String> {
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
        .ok_or_else(|| "HOME is not set: cannot find ~/.aws".to_owned())
}

fn sha1_hex(data: &[u8]) -> String {
    hex::encode(Sha1::digest(data))
}

/// The token file's name for an `sso-session`: `sha1(name)` in hex.
pub fn token_key(session: &str) -> String {
    sha1_hex(session.as_bytes())
}

/// A string as Python's `json.dumps` writes it (`ensure_ascii=True`).
fn py_json_string(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if c.is_ascii() && !c.is_ascii_control() => out.push(c),
            c => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
        }
    }
    out.push('"');
    out
}

/// The registration file's name, as CLI v2 computes it: `sha1(json.dumps({"region",
/// "scopes", "session_name", "startUrl", "tool": "botocore"}, sort_keys=True))`.
pub fn registration_key(
    start_url: &str,
    region: &str,
    scopes: Option<&[&str]>,
    session_name: Option<&str>,
) -> String {
    let scopes = match scopes {
        Some(list) => format!(
            "[{}]",
            list.iter()
                .map(|s| py_json_string(s))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        None => "null".to_owned(),
    };
    let session = session_name.map_or_else(|| "null".to_owned(), py_json_string);
    let json = format!(
        "{{\"region\": {}, \"scopes\": {scopes}, \"session_name\": {session}, \"startUrl\": {}, \"tool\": \"botocore\"}}",
        py_json_string(region),
        py_json_string(start_url),
    );
    sha1_hex(json.as_bytes())
}

/// A time as the cache writes it.
pub fn format_time(at: DateTime<Utc>) -> String {
    at.format(TIME_FORMAT).to_string()
}

/// A cache time: RFC 3339 (`Z`, offsets, fractions), or CLI v2's `...UTC` suffix.
pub fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    let text = text.trim();
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Some(at.with_timezone(&Utc));
    }
    let naive = text
        .strip_suffix("UTC")
        .or_else(|| text.strip_suffix('Z'))
        .unwrap_or(text);
    NaiveDateTime::parse_from_str(naive, "%Y-%m-%dT%H:%M:%S%.f")
        .ok()
        .map(|n| n.and_utc())
}

/// A cached SSO token (`~/.aws/sso/cache/<sha1(session)>.json`). Fields other
/// than `accessToken` and `expiresAt` are optional when reading; unknown fields
/// written by other tools are kept when the file is rewritten.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CachedToken {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    pub access_token: String,
    pub expires_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registration_expires_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    #[serde(flatten)]
    pub other: serde_json::Map<String, serde_json::Value>,
}

/// What a cached token is good for at a given time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freshness {
    /// More than [`REFRESH_WINDOW`] left.
    Fresh,
    /// Still valid, but refresh it now if possible.
    ExpiringSoon,
    /// Expired (or its expiry is unreadable).
    Expired,
}

impl CachedToken {
    /// A token just granted at `now` with the registration used for it.
    pub fn new(
        start_url: &str,
        region: &str,
        access_token: String,
        expires_in: i64,
        refresh_token: Option<String>,
        client: &ClientRegistration,
        now: DateTime<Utc>,
    ) -> Self {
        Self {
            start_url: Some(start_url.to_owned()),
            region: Some(region.to_owned()),
            access_token,
            expires_at: format_time(now + TimeDelta::seconds(expires_in.max(0))),
            client_id: Some(client.client_id.clone()),
            client_secret: Some(client.client_secret.clone()),
            registration_expires_at: DateTime::from_timestamp(client.expires_at, 0)
                .map(format_time),
            refresh_token,
            other: serde_json::Map::new(),
        }
    }

    pub fn expires_at(&self) -> Option<DateTime<Utc>> {
        parse_time(&self.expires_at)
    }

    pub fn freshness(&self, now: DateTime<Utc>) -> Freshness {
        match self.expires_at() {
            Some(at) if at - now > REFRESH_WINDOW => Freshness::Fresh,
            Some(at) if at > now => Freshness::ExpiringSoon,
            _ => Freshness::Expired,
        }
    }

    /// The client and refresh token for a refresh, if the file has them and the
    /// registration is still valid at `now` (botocore's conditions).
    pub fn refresh_material(&self, now: DateTime<Utc>) -> Option<(&str, &str, &str)> {
        let registration_valid = self
            .registration_expires_at
            .as_deref()
            .and_then(parse_time)
            .is_some_and(|at| at > now);
        match (&self.client_id, &self.client_secret, &self.refresh_token) {
            (Some(id), Some(secret), Some(refresh)) if registration_valid => {
                Some((id, secret, refresh))
            }
            _ => None,
        }
    }

    /// Takes a refreshed grant: new access token and expiry; a rotated refresh
    /// token replaces the old one.
    pub fn apply_refresh(
        &mut self,
        access_token: String,
        expires_in: i64,
        refresh_token: Option<String>,
        now: DateTime<Utc>,
    ) {
        self.access_token = access_token;
        self.expires_at = format_time(now + TimeDelta::seconds(expires_in.max(0)));
        if let Some(refresh) = refresh_token {
            self.refresh_token = Some(refresh);
        }
    }
}

/// A cached client registration, as CLI v2 writes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CachedRegistration {
    pub client_id: String,
    pub client_secret: String,
    pub expires_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scopes: Option<Vec<String>>,
    #[serde(flatten)]
    pub other: serde_json::Map<String, serde_json::Value>,
}

impl CachedRegistration {
    pub fn new(client: &ClientRegistration, scopes: &[&str]) -> Self {
        Self {
            client_id: client.client_id.clone(),
            client_secret: client.client_secret.clone(),
            expires_at: DateTime::from_timestamp(client.expires_at, 0)
                .map(format_time)
                .unwrap_or_default(),
            scopes: Some(scopes.iter().map(|s| (*s).to_owned()).collect()),
            other: serde_json::Map::new(),
        }
    }

    /// The registration if it is a device-flow one valid for more than
    /// [`REFRESH_WINDOW`] after `now` (CLI v2 re-registers within that window).
    pub fn usable(&self, now: DateTime<Utc>) -> Option<ClientRegistration> {
        let expires = parse_time(&self.expires_at)?;
        // An authorization-code registration (with grantTypes) is not reused for the device flow.
        if expires - now <= REFRESH_WINDOW || self.other.contains_key("grantTypes") {
            return None;
        }
        Some(ClientRegistration {
            client_id: self.client_id.clone(),
            client_secret: self.client_secret.clone(),
            expires_at: expires.timestamp(),
        })
    }
}

/// The cache directory of one user: reads and writes token and registration files.
#[derive(Debug, Clone)]
pub struct SsoCache {
    dir: PathBuf,
}

impl SsoCache {
    pub fn new(dir: PathBuf) -> Self {
        Self { dir }
    }

    /// `~/.aws/sso/cache` of the user in `$HOME`.
    pub fn for_home() -> Result<Self, String> {
        Ok(Self::new(cache_dir(&home_dir()?)))
    }

    pub fn token_path(&self, session: &str) -> PathBuf {
        self.dir.join(format!("{}.json", token_key(session)))
    }

    pub fn registration_path(&self, start_url: &str, region: &str, session: &str) -> PathBuf {
        let key = registration_key(
            start_url,
            region,
            Some(&[super::sso_client::SSO_SCOPE]),
            Some(session),
        );
        self.dir.join(format!("{key}.json"))
    }

    /// The session's token; `Ok(None)` when there is no file.
    pub fn load_token(&self, session: &str) -> Result<Option<CachedToken>, String> {
        read_json(&self.token_path(session))
    }

    pub fn save_token(&self, session: &str, token: &CachedToken) -> Result<PathBuf, String> {
        let path = self.token_path(session);
        write_json_atomic(&path, token)?;
        Ok(path)
    }

    /// Deletes the session's token file (not its client registration); false when
    /// there was none.
    pub fn remove_token(&self, session: &str) -> Result<bool, String> {
        let path = self.token_path(session);
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(format!("cannot delete {}: {e}", path.display())),
        }
    }

    /// A still-usable cached registration for this start URL, region and session.
    pub fn load_registration(
        &self,
        start_url: &str,
        region: &str,
        session: &str,
        now: DateTime<Utc>,
    ) -> Option<ClientRegistration> {
        let path = self.registration_path(start_url, region, session);
        // An unreadable registration file is not worth failing for: register anew.
        read_json::<CachedRegistration>(&path)
            .ok()
            .flatten()
            .and_then(|r| r.usable(now))
    }

    pub fn save_registration(
        &self,
        start_url: &str,
        region: &str,
        session: &str,
        client: &ClientRegistration,
    ) -> Result<(), String> {
        let path = self.registration_path(start_url, region, session);
        let record = CachedRegistration::new(client, &[super::sso_client::SSO_SCOPE]);
        write_json_atomic(&path, &record)
    }

    pub fn forget_registration(&self, start_url: &str, region: &str, session: &str) {
        let _ = std::fs::remove_file(self.registration_path(start_url, region, session));
    }
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<Option<T>, String> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| format!("{} is not a valid SSO cache file: {e}", path.display()))
}

fn write_json_atomic(path: &Path, value: &impl Serialize) -> Result<(), String> {
    let json = serde_json::to_vec(value).map_err(|e| e.to_string())?;
    write_private_atomic(path, &json)
}

/// Writes `contents` to `path` atomically with mode 0600: a new temporary file in
/// the same directory (created 0700 if missing), fsync, then rename over `path`.
pub fn write_private_atomic(path: &Path, contents: &[u8]) -> Result<(), String> {
    let dir = path
        .parent()
        .ok_or_else(|| format!("{} has no directory", path.display()))?;
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder
        .create(dir)
        .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temporary = dir.join(format!(
        ".{name}.{}.{:08x}.tmp",
        std::process::id(),
        rand::RngCore::next_u32(&mut crate::clock::Random::system().rng())
    ));
    let written = (|| {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&temporary)?;
        file.write_all(contents)?;
        file.sync_all()?;
        std::fs::rename(&temporary, path)
    })();
    written.map_err(|e| {
        let _ = std::fs::remove_file(&temporary);
        format!("cannot write {}: {e}", path.display())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        parse_time(text).unwrap()
    }

    #[test]
    fn token_key_is_sha1_of_the_session_name() {
        assert_eq!(
            token_key("corp"),
            "ee0bfd2552fbd840c02cc48b6e823320543c450f"
        );
        // The legacy form (no sso-session) hashes the start URL the same way.
        assert_eq!(
            token_key("https://d-9067000000.awsapps.com/start"),
            "a574cfb52e1a87cd150b091145491e1f48cec919"
        );
    }

    #[test]
    fn registration_key_matches_cli_v2() {
        assert_eq!(
            registration_key(
                "https://d-9067000000.awsapps.com/start",
                "eu-central-1",
                Some(&["sso:account:access"]),
                Some("corp"),
            ),
            "e276ce86f36eb13b0a12778b46ff814ded40c95c"
        );
    }

    #[test]
    fn python_json_escapes_non_ascii() {
        assert_eq!(py_json_string("é\"😀"), "\"\\u00e9\\\"\\ud83d\\ude00\"");
    }

    #[test]
    fn token_file_is_botocores_format() {
        let client = ClientRegistration {
            client_id: "cid".into(),
            client_secret: "csecret".into(),
            expires_at: at("2027-02-21T18:56:41Z").timestamp(),
        };
        let token = CachedToken::new(
            "https://rolegate.example.com/start",
            "eu-central-1",
            "access".into(),
            28800,
            Some("refresh".into()),
            &client,
            at("2026-11-23T18:56:41Z"),
        );
        let json = serde_json::to_string(&token).unwrap();
        assert_eq!(
            json,
            concat!(
                r#"{"startUrl":"https://rolegate.example.com/start","region":"eu-central-1","#,
                r#""accessToken":"access","expiresAt":"2026-11-24T02:56:41Z","clientId":"cid","#,
                r#""clientSecret":"csecret","registrationExpiresAt":"2027-02-21T18:56:41Z","#,
                r#""refreshToken":"refresh"}"#
            )
        );
        let back: CachedToken = serde_json::from_str(&json).unwrap();
        assert_eq!(back, token);
    }

    #[test]
    fn files_from_other_tools_are_read_and_their_extra_fields_kept() {
        let text = r#"{"startUrl": "https://d-1.awsapps.com/start", "region": "eu-central-1",
            "accessToken": "a", "expiresAt": "2026-11-24T02:56:41UTC", "clientId": "c",
            "clientSecret": "s", "registrationExpiresAt": "2027-02-21T18:56:41.123+00:00",
            "refreshToken": "r", "somethingNew": 1}"#;
        let mut token: CachedToken = serde_json::from_str(text).unwrap();
        assert_eq!(token.expires_at(), Some(at("2026-11-24T02:56:41Z")));
        assert!(token.refresh_material(at("2026-11-24T02:50:00Z")).is_some());
        assert!(token.refresh_material(at("2027-03-01T00:00:00Z")).is_none());
        token.apply_refresh("a2".into(), 3600, None, at("2026-11-24T02:50:00Z"));
        assert_eq!(token.expires_at, "2026-11-24T03:50:00Z");
        assert_eq!(token.refresh_token.as_deref(), Some("r"));
        let json = serde_json::to_value(&token).unwrap();
        assert_eq!(json["somethingNew"], 1);
        // Just an access token and expiry is a valid (legacy, non-refreshable) file.
        let bare: CachedToken =
            serde_json::from_str(r#"{"accessToken": "a", "expiresAt": "2026-11-24T02:56:41Z"}"#)
                .unwrap();
        assert!(bare.refresh_material(at("2026-11-24T00:00:00Z")).is_none());
    }

    #[test]
    fn freshness_uses_the_fifteen_minute_window() {
        let token: CachedToken =
            serde_json::from_str(r#"{"accessToken": "a", "expiresAt": "2026-11-24T02:00:00Z"}"#)
                .unwrap();
        assert_eq!(
            token.freshness(at("2026-11-24T01:44:59Z")),
            Freshness::Fresh
        );
        assert_eq!(
            token.freshness(at("2026-11-24T01:50:00Z")),
            Freshness::ExpiringSoon
        );
        assert_eq!(
            token.freshness(at("2026-11-24T02:00:00Z")),
            Freshness::Expired
        );
        let garbled: CachedToken =
            serde_json::from_str(r#"{"accessToken": "a", "expiresAt": "tomorrow"}"#).unwrap();
        assert_eq!(
            garbled.freshness(at("2026-11-24T00:00:00Z")),
            Freshness::Expired
        );
    }

    #[test]
    fn registrations_are_reused_until_fifteen_minutes_before_expiry() {
        let client = ClientRegistration {
            client_id: "cid".into(),
            client_secret: "cs".into(),
            expires_at: at("2027-02-21T18:00:00Z").timestamp(),
        };
        let record = CachedRegistration::new(&client, &["sso:account:access"]);
        assert_eq!(
            serde_json::to_string(&record).unwrap(),
            r#"{"clientId":"cid","clientSecret":"cs","expiresAt":"2027-02-21T18:00:00Z","scopes":["sso:account:access"]}"#
        );
        assert_eq!(record.usable(at("2027-02-21T17:40:00Z")), Some(client));
        assert_eq!(record.usable(at("2027-02-21T17:50:00Z")), None);
    }

    #[test]
    fn atomic_writes_are_private_and_replace_the_file() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let cache = SsoCache::new(cache_dir(dir.path()));
        let token: CachedToken =
            serde_json::from_str(r#"{"accessToken": "a", "expiresAt": "2026-11-24T02:00:00Z"}"#)
                .unwrap();
        assert_eq!(cache.load_token("corp").unwrap(), None);
        let path = cache.save_token("corp", &token).unwrap();
        assert_eq!(
            path,
            dir.path()
                .join(".aws/sso/cache/ee0bfd2552fbd840c02cc48b6e823320543c450f.json")
        );
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let mut second = token.clone();
        second.access_token = "b".into();
        cache.save_token("corp", &second).unwrap();
        assert_eq!(cache.load_token("corp").unwrap(), Some(second));
        let leftovers: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(leftovers.len(), 1, "no temporary files left: {leftovers:?}");
        assert_eq!(cache.remove_token("corp"), Ok(true));
        assert_eq!(cache.load_token("corp").unwrap(), None);
        assert_eq!(cache.remove_token("corp"), Ok(false), "already gone");
    }
}
