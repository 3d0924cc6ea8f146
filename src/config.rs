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
            .field("url", &crate::store::redact_url(&self.url))
            .field("prefix", &self.prefix)
            .finish()
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StsConfig {
    pub max_clock_skew_seconds: u32,
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
}

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseConfig {
    pub url: String,
    pub max_connections: u32,
    pub connect_timeout_seconds: u64,
}

impl std::fmt::Debug for DatabaseConfig {
    // The URL may carry a password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DatabaseConfig")
            .field("url", &crate::store::redact_url(&self.url))
            .field("max_connections", &self.max_connections)
            .field("connect_timeout_seconds", &self.connect_timeout_seconds)
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
            .filter(|(k, _)| k.starts_with("ROLEGATE_"))
            .collect();
        builder = builder.add_source(
            config::Environment::with_prefix("ROLEGATE")
                .prefix_separator("_")
                .separator("__")
                .try_parsing(true)
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
        let url = &self.database.url;
        if !(url.starts_with("sqlite:")
            || url.starts_with("postgres:")
            || url.starts_with("postgresql:"))
        {
            return Err(ConfigError(format!(
                "database.url {:?} must start with sqlite: or postgres:",
                crate::store::redact_url(url)
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
        }
    }
}
