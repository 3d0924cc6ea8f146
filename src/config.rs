//! Typed configuration: the compiled-in `config/default.toml`, then an optional file,
//! then `ROLEGATE_<SECTION>__<KEY>` environment variables. Loading fails fast with a
//! message that names the offending key.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use crate::iam::Partition;
use crate::store::StoreOptions;

const DEFAULTS: &str = include_str!("../config/default.toml");

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub server: ServerConfig,
    pub database: DatabaseConfig,
    pub iam: IamConfig,
    pub log: LogConfig,
    pub secrets: SecretsConfig,
    pub sts: StsConfig,
    pub cache: CacheConfig,
    pub portal: PortalConfig,
    pub sso: SsoConfig,
    /// `[admin]`: who may use the admin API.
    #[serde(default)]
    pub admin: AdminConfig,
    /// `[[identity_sources]]`: sources created or updated at start-up.
    #[serde(default)]
    pub identity_sources: Vec<IdentitySourceEntry>,
    /// `[metrics]`: who may read `/metrics`.
    #[serde(default)]
    pub metrics: MetricsConfig,
    /// `[[saml_providers]]`: IAM SAML providers created or updated at start-up.
    #[serde(default)]
    pub saml_providers: Vec<SamlProviderEntry>,
    /// `[audit]`: where events the database cannot take wait for it.
    pub audit: AuditConfig,
}

/// One `[[saml_providers]]` entry: an IAM SAML provider (for AssumeRoleWithSAML)
/// that `serve` and `dev --config` create, or update to the file's metadata, every
/// time they start. A provider later removed from the configuration stays in the
/// database: delete it through the admin API.
///
/// ```toml
/// [[saml_providers]]
/// account_id = "123456789012"
/// name = "Corp"                          # arn:aws:iam::123456789012:saml-provider/Corp
/// metadata_file = "/etc/rolegate/corp-idp-metadata.xml"
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SamlProviderEntry {
    pub account_id: String,
    pub name: String,
    pub metadata_file: std::path::PathBuf,
}

impl SamlProviderEntry {
    fn check(&self) -> Result<(), String> {
        crate::iam::AccountId::parse(self.account_id.clone()).map_err(|e| e.to_string())?;
        crate::store::check_saml_provider_name(&self.name).map_err(|e| e.to_string())?;
        if self.metadata_file.as_os_str().is_empty() {
            return Err("metadata_file is empty".into());
        }
        Ok(())
    }
}

/// `[audit]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditConfig {
    /// The directory of this replica's audit spool (created if missing; `serve`
    /// refuses to start when it is not writable). Relative paths are from the
    /// working directory.
    pub spool_dir: std::path::PathBuf,
}

/// `[metrics]`: `/metrics` is served only when one of these is set.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    /// Bearer token a scraper must send (at least 16 characters); empty: none.
    #[serde(default)]
    pub token: crate::secrets::Secret,
    /// A listener of its own for `/metrics` (e.g. `127.0.0.1:9464`); empty: none.
    #[serde(default)]
    pub listen: String,
}

impl MetricsConfig {
    /// The validated settings.
    pub fn access(&self) -> Result<crate::metrics::MetricsAccess, ConfigError> {
        let token = match self.token.expose().trim() {
            "" => None,
            token if token.len() < 16 => {
                return Err(ConfigError(
                    "metrics.token must be at least 16 characters (e.g. `openssl rand -hex 24`)"
                        .into(),
                ));
            }
            token => Some(crate::secrets::Secret::new(token)),
        };
        let listen = match self.listen.trim() {
            "" => None,
            address => Some(address.parse().map_err(|_| {
                ConfigError(format!(
                    "metrics.listen: {address:?} is not an address and port such as 127.0.0.1:9464"
                ))
            })?),
        };
        Ok(crate::metrics::MetricsAccess { token, listen })
    }
}

/// One `[[identity_sources]]` entry: an identity source that `serve` and `dev`
/// create, or update to match, every time they start (an upsert; applying the same
/// entry again changes nothing). A source later removed from the configuration stays
/// in the database as it was: disable or delete it there.
///
/// ```toml
/// [[identity_sources]]
/// id = "corp"                 # slug used in URLs: /signin/oidc/corp
/// kind = "oidc"               # "oidc" or "saml" (below)
/// display_name = "Corp SSO"   # the sign-in page's button
/// enabled = true              # default true
/// issuer = "https://idp.example.com/realms/corp"
/// client_id = "rolegate"
/// client_secret = "..."       # plain here (or ROLEGATE_IDENTITY_SOURCES__0__CLIENT_SECRET);
///                             # sealed with the master key when stored
/// scopes = ["openid", "profile", "email", "groups"]
/// claims = { user_name = "preferred_username", groups = "groups" }
/// session_tags = { Department = "department", Email = "email" }
/// ```
///
/// Every other key is a setting of the OIDC source as its `config` JSON has it
/// ([`crate::idp::oidc::OidcConfig`]): `userinfo`, `token_endpoint_auth`,
/// `redirect_uri`, `post_logout_redirect_uri`, `trusted_audiences`.
///
/// A SAML source ([`crate::idp::saml::sp::SamlConfig`]):
///
/// ```toml
/// [[identity_sources]]
/// id = "corp-saml"
/// kind = "saml"
/// display_name = "Corp SSO"
/// idp_metadata_url = "https://idp.example.com/metadata"  # or idp_metadata_file = "/path/idp.xml"
/// user_name_attribute = "NameID"      # defaults shown
/// email_attribute = "email"
/// display_name_attribute = "displayName"
/// groups_attribute = "groups"
/// clock_skew_seconds = 60
/// allow_idp_initiated = false
/// sign_authn_requests = false
/// # sp_entity_id = "..."              # default <public URL>/saml/<id>/metadata
/// # sp_certificate_file / sp_private_key_file (PEM): else generated at first start
/// ```
#[derive(Clone, Deserialize)]
pub struct IdentitySourceEntry {
    pub id: String,
    pub kind: String,
    pub display_name: String,
    #[serde(default = "enabled_by_default")]
    pub enabled: bool,
    /// Plain text here; sealed with the master key before it is stored.
    #[serde(default)]
    pub client_secret: Option<crate::secrets::Secret>,
    /// The remaining keys: the source's settings.
    #[serde(flatten)]
    pub settings: serde_json::Map<String, serde_json::Value>,
}

fn enabled_by_default() -> bool {
    true
}

impl std::fmt::Debug for IdentitySourceEntry {
    // The client secret stays out of logs (`Secret` prints as redacted).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdentitySourceEntry")
            .field("id", &self.id)
            .field("kind", &self.kind)
            .field("display_name", &self.display_name)
            .field("enabled", &self.enabled)
            .field("client_secret", &self.client_secret)
            .field("settings", &self.settings)
            .finish()
    }
}

impl IdentitySourceEntry {
    /// The OIDC settings this entry describes (without the client secret, which is
    /// sealed when stored), validated as far as possible without the provider.
    pub fn oidc_config(&self) -> Result<crate::idp::oidc::OidcConfig, String> {
        if self.kind != "oidc" {
            return Err(format!(
                "kind {:?} is not supported here; use \"oidc\" or \"saml\"",
                self.kind
            ));
        }
        if self.settings.contains_key("client_secret") {
            return Err("client_secret must be a string".into());
        }
        let config: crate::idp::oidc::OidcConfig =
            serde_json::from_value(serde_json::Value::Object(self.settings.clone()))
                .map_err(|e| e.to_string())?;
        config.validate().map_err(|e| e.to_string())?;
        Ok(config)
    }

    /// The SAML settings this entry describes ([`crate::idp::saml::sp::SamlConfig`]),
    /// with where its IdP metadata and SP key pair come from, validated as far as
    /// possible without the IdP and the master key.
    pub fn saml_config(&self) -> Result<SamlEntry, String> {
        if self.kind != "saml" {
            return Err(format!("kind {:?} is not \"saml\"", self.kind));
        }
        if self.client_secret.is_some() {
            return Err("client_secret is an OIDC setting; a SAML source has none".into());
        }
        let mut settings = self.settings.clone();
        let mut path = |key: &str| -> Result<Option<std::path::PathBuf>, String> {
            match settings.remove(key) {
                None => Ok(None),
                Some(serde_json::Value::String(p)) if !p.trim().is_empty() => {
                    Ok(Some(std::path::PathBuf::from(p.trim())))
                }
                Some(_) => Err(format!("{key} must be a file path")),
            }
        };
        let metadata_file = path("idp_metadata_file")?;
        let certificate_file = path("sp_certificate_file")?;
        let key_file = path("sp_private_key_file")?;
        for (key, instead) in [
            ("idp_metadata", "idp_metadata_url or idp_metadata_file"),
            ("sp_certificate", "sp_certificate_file"),
            ("sp_private_key", "sp_private_key_file"),
        ] {
            if settings.contains_key(key) {
                return Err(format!("{key} is not a configuration key; use {instead}"));
            }
        }
        let config: crate::idp::saml::sp::SamlConfig =
            serde_json::from_value(serde_json::Value::Object(settings))
                .map_err(|e| e.to_string())?;
        config.validate().map_err(|e| e.to_string())?;
        let metadata = match (&config.idp_metadata_url, metadata_file) {
            (Some(url), None) => SamlMetadataFrom::Url(url.clone()),
            (None, Some(file)) => SamlMetadataFrom::File(file),
            (Some(_), Some(_)) => {
                return Err("give idp_metadata_url or idp_metadata_file, not both".into());
            }
            (None, None) => {
                return Err("idp_metadata_url or idp_metadata_file is required".into());
            }
        };
        let key_pair = match (certificate_file, key_file) {
            (Some(certificate), Some(key)) => Some((certificate, key)),
            (None, None) => None,
            _ => {
                return Err(
                    "give sp_certificate_file and sp_private_key_file together, or neither (then a key pair is generated)"
                        .into(),
                );
            }
        };
        Ok(SamlEntry {
            config,
            metadata,
            key_pair,
        })
    }

    fn check(&self) -> Result<(), String> {
        if !source_id_ok(&self.id) {
            return Err(SOURCE_ID_RULE.into());
        }
        if self.id == crate::idp::directory::DIRECTORY_SOURCE_ID {
            return Err(format!(
                "id {:?} is the built-in directory's; choose another id",
                self.id
            ));
        }
        let name = self.display_name.trim();
        if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
            return Err("display_name must be 1 to 100 characters".into());
        }
        if self
            .client_secret
            .as_ref()
            .is_some_and(|s| s.expose().trim().is_empty())
        {
            return Err("client_secret is empty (leave it out for a public client)".into());
        }
        match self.kind.as_str() {
            "saml" => self.saml_config().map(|_| ()),
            _ => self.oidc_config().map(|_| ()),
        }
    }
}

/// A `kind = "saml"` entry: its settings, and where its IdP metadata and (optional)
/// SP key pair come from.
#[derive(Debug, Clone)]
pub struct SamlEntry {
    pub config: crate::idp::saml::sp::SamlConfig,
    pub metadata: SamlMetadataFrom,
    /// `sp_certificate_file` and `sp_private_key_file` (PEM), when given.
    pub key_pair: Option<(std::path::PathBuf, std::path::PathBuf)>,
}

/// `idp_metadata_url` or `idp_metadata_file`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SamlMetadataFrom {
    Url(String),
    File(std::path::PathBuf),
}

/// `[admin]`: the groups whose members are admins (admin API), each written with its
/// identity source: `groups = ["directory:admins", "corp:platform-admins"]`.
/// Membership is checked on every request against the signed-in identity.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminConfig {
    #[serde(default)]
    pub groups: Vec<String>,
}

impl AdminConfig {
    /// The validated `groups`.
    pub fn groups(&self) -> Result<Vec<crate::service::admin_access::AdminGroup>, ConfigError> {
        crate::service::admin_access::AdminGroup::parse_all(&self.groups)
            .map_err(|why| ConfigError(format!("admin.groups: {why}")))
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortalConfig {
    pub session_ttl_seconds: u64,
}

impl PortalConfig {
    pub fn settings(&self) -> crate::web::PortalSettings {
        crate::web::PortalSettings {
            session_ttl: Duration::from_secs(self.session_ttl_seconds),
            ..crate::web::PortalSettings::default()
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SsoConfig {
    pub aws_start_url: String,
}

impl SsoConfig {
    pub fn settings(&self) -> crate::web::SsoSettings {
        crate::web::SsoSettings {
            aws_start_url: self.aws_start_url.trim().to_owned(),
        }
    }
}

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CacheConfig {
    pub url: String,
    pub prefix: String,
}

impl std::fmt::Debug for CacheConfig {
    // The URL may carry a password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CacheConfig")
            .field("url", &crate::secrets::redact_url(&self.url))
            .field("prefix", &self.prefix)
            .finish()
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StsConfig {
    pub max_clock_skew_seconds: u32,
    /// The audience AssumeRoleWithSAML assertions must name; empty: `<public URL>/saml`.
    #[serde(default)]
    pub saml_audience: String,
}

impl StsConfig {
    /// The validated `[sts]` settings the web layer needs.
    pub fn settings(&self) -> Result<crate::web::StsSettings, ConfigError> {
        let saml_audience = match self.saml_audience.trim() {
            "" => None,
            audience => {
                let url = reqwest::Url::parse(audience).map_err(|e| {
                    ConfigError(format!("sts.saml_audience {audience:?} is not a URL: {e}"))
                })?;
                if !matches!(url.scheme(), "https" | "http") {
                    return Err(ConfigError(format!(
                        "sts.saml_audience {audience:?} must be an http or https URL"
                    )));
                }
                Some(audience.to_owned())
            }
        };
        Ok(crate::web::StsSettings { saml_audience })
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretsConfig {
    /// Empty when not configured; `serve` refuses to start without it.
    pub master_key: crate::secrets::Secret,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    pub workers: usize,
    /// The origin clients reach Rolegate at (`https://rolegate.example.com`); empty:
    /// derived from each request's `Host`.
    pub public_url: String,
    /// Proxies (IP addresses or CIDR networks) whose `X-Forwarded-*` headers are
    /// believed.
    pub trusted_proxies: Vec<String>,
}

impl ServerConfig {
    /// The validated `public_url` and `trusted_proxies`.
    pub fn settings(&self) -> Result<crate::web::ServerSettings, ConfigError> {
        let public_url = match self.public_url.trim() {
            "" => None,
            url => Some(
                crate::web::PublicUrl::parse(url)
                    .map_err(|why| ConfigError(format!("server.public_url: {why}")))?,
            ),
        };
        let trusted_proxies = crate::web::TrustedProxies::parse(&self.trusted_proxies)
            .map_err(|why| ConfigError(format!("server.trusted_proxies: {why}")))?;
        Ok(crate::web::ServerSettings {
            public_url,
            trusted_proxies,
        })
    }
}

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseConfig {
    pub url: String,
    pub max_connections: u32,
    pub connect_timeout_seconds: u64,
    /// How long this replica may serve its copy of an access key, role or policy
    /// (0: no copies).
    pub iam_cache_ttl_seconds: u64,
    /// How often the copies are checked against the database's IAM generation: the
    /// bound within which a change reaches every replica.
    pub iam_cache_check_ms: u64,
}

impl DatabaseConfig {
    pub fn iam_cache(&self) -> crate::store::IamCacheSettings {
        crate::store::IamCacheSettings {
            ttl: Duration::from_secs(self.iam_cache_ttl_seconds),
            check_interval: Duration::from_millis(self.iam_cache_check_ms),
        }
    }
}

impl std::fmt::Debug for DatabaseConfig {
    // The URL may carry a password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DatabaseConfig")
            .field("url", &crate::secrets::redact_url(&self.url))
            .field("max_connections", &self.max_connections)
            .field("connect_timeout_seconds", &self.connect_timeout_seconds)
            .field("iam_cache_ttl_seconds", &self.iam_cache_ttl_seconds)
            .field("iam_cache_check_ms", &self.iam_cache_check_ms)
            .finish()
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IamConfig {
    pub partition: Partition,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    pub filter: String,
    pub format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// `ROLEGATE_IDENTITY_SOURCES__0__CLIENT_SECRET` addresses the first
/// `[[identity_sources]]` entry: the config crate spells that index `[0]`.
fn indexed_env_key(key: &str) -> String {
    const LIST: &str = "ROLEGATE_IDENTITY_SOURCES__";
    let Some(rest) = key.strip_prefix(LIST) else {
        return key.to_owned();
    };
    match rest.split_once("__") {
        Some((index, field)) if !index.is_empty() && index.bytes().all(|b| b.is_ascii_digit()) => {
            format!("ROLEGATE_IDENTITY_SOURCES[{index}]__{field}")
        }
        _ => key.to_owned(),
    }
}

#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {0}")]
pub struct ConfigError(String);

impl Config {
    /// The defaults, then `file` if given, then `ROLEGATE_*` variables from `env`.
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let mut builder = config::Config::builder()
            .add_source(config::File::from_str(DEFAULTS, config::FileFormat::Toml));
        if let Some(path) = file {
            if !path.is_file() {
                return Err(ConfigError(format!(
                    "config file {} does not exist or is not a file",
                    path.display()
                )));
            }
            builder = builder.add_source(
                config::File::from(path)
                    .format(config::FileFormat::Toml)
                    .required(true),
            );
        }
        let vars: std::collections::HashMap<String, String> = env
            .into_iter()
            // Only the `ROLEGATE_<SECTION>__<KEY>` shape is configuration; other
            // ROLEGATE_* variables (scripts' ROLEGATE_BIN, the tests'
            // ROLEGATE_TEST_POSTGRES_URL) belong to someone else.
            .filter(|(k, _)| k.starts_with("ROLEGATE_") && k.contains("__"))
            .map(|(k, v)| (indexed_env_key(&k), v))
            .collect();
        builder = builder.add_source(
            config::Environment::with_prefix("ROLEGATE")
                .prefix_separator("_")
                .separator("__")
                .try_parsing(true)
                // ROLEGATE_SERVER__TRUSTED_PROXIES=10.0.0.0/8,192.0.2.7: a list.
                .list_separator(",")
                .with_list_parse_key("server.trusted_proxies")
                .with_list_parse_key("admin.groups")
                .source(Some(vars)),
        );
        let config: Config = builder
            .build()
            .and_then(|c| c.try_deserialize())
            .map_err(|e| ConfigError(e.to_string()))?;
        config.check()?;
        Ok(config)
    }

    fn check(&self) -> Result<(), ConfigError> {
        self.server.settings()?;
        self.sts.settings()?;
        self.admin.groups()?;
        let mut providers = std::collections::BTreeSet::new();
        for (i, entry) in self.saml_providers.iter().enumerate() {
            entry.check().map_err(|why| {
                ConfigError(format!("saml_providers[{i}] {:?}: {why}", entry.name))
            })?;
            if !providers.insert((entry.account_id.as_str(), entry.name.as_str())) {
                return Err(ConfigError(format!(
                    "saml_providers[{i}] {:?}: account {} has this provider in an earlier entry",
                    entry.name, entry.account_id
                )));
            }
        }
        let mut ids = std::collections::BTreeSet::new();
        for (i, entry) in self.identity_sources.iter().enumerate() {
            entry.check().map_err(|why| {
                ConfigError(format!("identity_sources[{i}] {:?}: {why}", entry.id))
            })?;
            if !ids.insert(entry.id.as_str()) {
                return Err(ConfigError(format!(
                    "identity_sources[{i}] {:?}: the id is used by an earlier entry",
                    entry.id
                )));
            }
        }
        let url = &self.database.url;
        if !(url.starts_with("sqlite:")
            || url.starts_with("postgres:")
            || url.starts_with("postgresql:"))
        {
            return Err(ConfigError(format!(
                "database.url {:?} must start with sqlite: or postgres:",
                crate::secrets::redact_url(url)
            )));
        }
        if !(1..=3600).contains(&self.sts.max_clock_skew_seconds) {
            return Err(ConfigError(
                "sts.max_clock_skew_seconds must be between 1 and 3600".into(),
            ));
        }
        // Identity Center allows 15 minutes to 90 days.
        if !(900..=90 * 86_400).contains(&self.portal.session_ttl_seconds) {
            return Err(ConfigError(
                "portal.session_ttl_seconds must be between 900 (15 minutes) and 7776000 (90 days)"
                    .into(),
            ));
        }
        if !crate::cli::sso_client::is_aws_owned_start_url(self.sso.aws_start_url.trim()) {
            return Err(ConfigError(format!(
                "sso.aws_start_url {:?} must be an https URL on an AWS-owned host, e.g. \
                 https://d-0000000000.awsapps.com/start (the AWS CLI v2 accepts no other; it is \
                 never contacted)",
                self.sso.aws_start_url
            )));
        }
        if self.audit.spool_dir.as_os_str().is_empty() {
            return Err(ConfigError(
                "audit.spool_dir must name a directory (events the database cannot take wait there)"
                    .into(),
            ));
        }
        if self.database.max_connections == 0 {
            return Err(ConfigError(
                "database.max_connections must be at least 1".into(),
            ));
        }
        if self.database.connect_timeout_seconds == 0 {
            return Err(ConfigError(
                "database.connect_timeout_seconds must be at least 1".into(),
            ));
        }
        if self.database.iam_cache_ttl_seconds > 3_600 {
            return Err(ConfigError(
                "database.iam_cache_ttl_seconds must be at most 3600 (an hour)".into(),
            ));
        }
        if self.database.iam_cache_check_ms > 60_000 {
            return Err(ConfigError(
                "database.iam_cache_check_ms must be at most 60000 (a minute): it is how long a revoked key may keep working".into(),
            ));
        }
        Ok(())
    }

    /// The master-key sealer; `serve` needs a configured key.
    pub fn sealer(&self) -> Result<crate::secrets::Sealer, ConfigError> {
        if self.secrets.master_key.expose().trim().is_empty() {
            return Err(ConfigError(
                "secrets.master_key is not set: generate one with `openssl rand -base64 32` and set ROLEGATE_SECRETS__MASTER_KEY (every replica needs the same key)".into(),
            ));
        }
        crate::secrets::Sealer::from_base64(&self.secrets.master_key)
            .map_err(|e| ConfigError(format!("secrets.master_key: {e}")))
    }

    pub fn store_options(&self) -> StoreOptions {
        StoreOptions {
            max_connections: self.database.max_connections,
            connect_timeout: Duration::from_secs(self.database.connect_timeout_seconds),
            partition: self.iam.partition.clone(),
            ..StoreOptions::default()
        }
    }
}

/// What an identity source id may be (it appears in URLs, cookies' paths and audit
/// events): said to whoever chose one that is not.
pub const SOURCE_ID_RULE: &str = "id must be 1 to 64 lower-case letters, digits or '-'";

/// Whether `id` may name an identity source ([`SOURCE_ID_RULE`]), in the
/// configuration file and through the admin API alike.
pub fn source_id_ok(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}
