//! Wiring: opens the store, builds the actix-web server, and the `dev` bootstrap.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use actix_web::{App, HttpServer, dev::Server, middleware, web};

use crate::config::{Config, LogFormat};
use crate::iam::Partition;
use crate::secrets::{Sealer, Secret};
use crate::seed::{self, SeedReport};
use crate::service::issuance::Sts;
use crate::store::{self, Store, StoreOptions};
use crate::web::{AppState, configure};

/// Builds the HTTP server on an already-bound listener (port 0 in tests).
pub fn build_server(
    listener: TcpListener,
    state: AppState,
    workers: usize,
) -> std::io::Result<Server> {
    // HSTS only where the operator said the public origin is https: sent over plain
    // http it would be ignored, and on a dev box it would pin localhost to https.
    let hsts = state
        .server
        .public_url
        .as_ref()
        .is_some_and(crate::web::PublicUrl::is_https);
    let random = state.random;
    let metrics = state.metrics.clone();
    let state = web::Data::new(state);
    let mut server = HttpServer::new(move || {
        let mut headers = middleware::DefaultHeaders::new()
            .add((
                "Content-Security-Policy",
                crate::web::page::CONTENT_SECURITY_POLICY,
            ))
            .add(("X-Frame-Options", "DENY"))
            .add(("X-Content-Type-Options", "nosniff"))
            .add(("Referrer-Policy", "no-referrer"));
        if hsts {
            headers = headers.add(("Strict-Transport-Security", "max-age=31536000"));
        }
        let metrics = metrics.clone();
        App::new()
            .app_data(state.clone())
            .app_data(web::PayloadConfig::new(256 * 1024))
            // Innermost: every answer counted by surface and timed.
            .wrap_fn(move |request, service| {
                use actix_web::dev::Service;
                let surface = crate::metrics::Surface::of(
                    request.method().as_str(),
                    request.path(),
                    request.query_string(),
                    request
                        .headers()
                        .contains_key(crate::web::SSO_BEARER_HEADER),
                );
                let watch = crate::clock::Stopwatch::start();
                let response = service.call(request);
                let metrics = metrics.clone();
                async move {
                    let response = response.await;
                    let status = response.as_ref().map_or(500, |r| r.status().as_u16());
                    metrics.observe_request(surface, status, watch.elapsed());
                    response
                }
            })
            // Path only: query strings can carry bearer material (presigned
            // signatures, web identity tokens) that must never reach logs. No path
            // rewriting either: SigV4 signs the path exactly as sent. The client
            // address as `server.trusted_proxies` says (not actix's `%{r}a`, which
            // believes forwarding headers from anyone).
            .wrap(
                middleware::Logger::new("%{client}xi %U %s %b %Dms %{x-amzn-RequestId}o")
                    .custom_request_replace("client", |request| {
                        crate::web::request_info::client_ip(request.request())
                            .map_or_else(|| "-".to_owned(), |ip| ip.to_string())
                    })
                    .exclude("/healthz"),
            )
            .wrap(headers)
            // Outermost (registered last): every request gets its id and a `tracing`
            // span around everything else, the access log line included; the id goes
            // back in `x-amzn-RequestId`.
            .wrap_fn(move |request, service| {
                use actix_web::HttpMessage;
                use actix_web::dev::Service;
                use tracing::Instrument;
                let id = crate::web::request_id::RequestId::new(&random);
                let span = tracing::info_span!(
                    "request",
                    id = %id,
                    method = %request.method(),
                    path = %request.path()
                );
                request.extensions_mut().insert(id.clone());
                let response = span.in_scope(|| service.call(request));
                async move {
                    let mut response = response.await?;
                    let name = actix_web::http::header::HeaderName::from_static("x-amzn-requestid");
                    if !response.headers().contains_key(&name)
                        && let Ok(value) =
                            actix_web::http::header::HeaderValue::from_str(id.as_str())
                    {
                        response.headers_mut().insert(name, value);
                    }
                    Ok(response)
                }
                .instrument(span)
            })
            .configure(configure)
    })
    .listen(listener)?;
    if workers > 0 {
        server = server.workers(workers);
    }
    Ok(server.run())
}

/// The listener of its own that `[metrics] listen` asks for: `/metrics` only.
pub fn build_metrics_server(listener: TcpListener, state: AppState) -> std::io::Result<Server> {
    let state = web::Data::new(state);
    Ok(HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .configure(crate::web::metrics_listener_routes)
    })
    .listen(listener)?
    .workers(1)
    .run())
}

/// The application state: the store and the STS service on top of it, with the
/// default settings (those of `config/default.toml`).
pub async fn app_state(store: Arc<dyn Store>, sealer: Sealer) -> Result<AppState, String> {
    app_state_with(store, sealer, chrono::Duration::minutes(5)).await
}

/// The application state with an explicit SigV4 clock-skew window.
pub async fn app_state_with(
    store: Arc<dyn Store>,
    sealer: Sealer,
    max_clock_skew: chrono::Duration,
) -> Result<AppState, String> {
    let cache: Arc<dyn crate::cache::Cache> =
        Arc::new(crate::cache::MemoryCache::new(store.clock().clone()));
    state_with_cache(store, sealer, max_clock_skew, cache).await
}

/// The application state over a given cache (Redis when several replicas serve).
pub async fn state_with_cache(
    store: Arc<dyn Store>,
    sealer: Sealer,
    max_clock_skew: chrono::Duration,
    cache: Arc<dyn crate::cache::Cache>,
) -> Result<AppState, String> {
    let metrics = Arc::new(
        crate::metrics::Metrics::new().map_err(|e| format!("cannot set up the metrics: {e}"))?,
    );
    let cache: Arc<dyn crate::cache::Cache> =
        Arc::new(crate::cache::Observed::new(cache, metrics.clone()));
    let secret_sealer = crate::service::sealing::SecretSealer::new(sealer.clone(), store.random());
    let second_factor = Arc::new(crate::service::second_factor::SecondFactor::new(
        cache.clone(),
        store.clone(),
        secret_sealer.clone(),
    ));
    let device = crate::service::device::DeviceService::new(
        cache.clone(),
        secret_sealer.clone(),
        store.clock().clone(),
        store.random(),
        crate::web::PortalSettings::default().session_ttl,
    );
    let sts = Sts::open(store.clone(), sealer)
        .await?
        .with_max_clock_skew(max_clock_skew);
    let directory = Arc::new(crate::idp::directory::DirectoryAuth::new(
        store.clone(),
        cache.clone(),
    ));
    let portal = crate::web::PortalSettings::default();
    let sessions = Arc::new(crate::service::sessions::PortalSessions::new(
        cache.clone(),
        store.clock().clone(),
        store.random(),
        portal.session_ttl,
    ));
    let sts = Arc::new(sts);
    let console = Arc::new(crate::service::console::ConsoleService::new(
        cache.clone(),
        store.clone(),
        sts.clone(),
        store.clock().clone(),
        store.random(),
    ));
    let oidc = Arc::new(crate::idp::oidc::OidcLogin::new(
        cache.clone(),
        store.clock().clone(),
        secret_sealer.clone(),
    ));
    let saml = Arc::new(crate::service::saml_login::SamlLogin::new(
        cache.clone(),
        store.clock().clone(),
        store.random(),
        secret_sealer.clone(),
    ));
    let audit = crate::service::audit::AuditLog::start(store.clone())
        .map_err(|e| e.to_string())?
        .with_anonymous_budget(cache.clone())
        .with_metrics(metrics.clone());
    let entitlements = sts.entitlement_service().clone();
    let rulesets = Arc::new(crate::service::rulesets::Rulesets::new(
        entitlements.clone(),
    ));
    let admin = Arc::new(crate::service::admin_access::AdminAccess::new(
        store.clone(),
        Vec::new(),
    ));
    Ok(AppState {
        admin,
        entitlements,
        rulesets,
        audit,
        oidc,
        saml,
        clock: store.clock().clone(),
        random: store.random(),
        sessions,
        second_factor,
        store,
        sts,
        sealer: secret_sealer,
        cache,
        directory,
        console,
        portal,
        server: crate::web::ServerSettings::default(),
        sso: crate::web::SsoSettings::default(),
        sts_settings: crate::web::StsSettings::default(),
        device,
        metrics,
        metrics_access: crate::metrics::MetricsAccess::default(),
    })
}

/// The settings to store for a `kind = "saml"` entry: the IdP metadata imported (from
/// its URL, or its file), the SP key pair read from its files or, at the first start,
/// generated (and kept from then on), the private key sealed with the master key.
async fn saml_source(
    state: &AppState,
    entry: &crate::config::IdentitySourceEntry,
) -> Result<serde_json::Value, String> {
    use crate::service::saml_login::{GivenKeys, MetadataFrom, prepare_source};
    let parsed = entry.saml_config()?;
    let read = |path: &Path, what: &str| {
        std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {what} {}: {e}", path.display()))
    };
    let from = match &parsed.metadata {
        crate::config::SamlMetadataFrom::Url(url) => MetadataFrom::Url(url.clone()),
        crate::config::SamlMetadataFrom::File(path) => {
            MetadataFrom::Xml(read(path, "idp_metadata_file")?)
        }
    };
    let given = match &parsed.key_pair {
        Some((certificate, key)) => Some(GivenKeys {
            certificate_pem: read(certificate, "sp_certificate_file")?,
            private_key_pem: Secret::new(read(key, "sp_private_key_file")?),
        }),
        None => None,
    };
    let stored = match state.store.get_identity_source(&entry.id).await {
        Ok(source) if source.kind == store::IdentitySourceKind::Saml => {
            crate::idp::saml::sp::SamlConfig::from_json(&source.config).ok()
        }
        Ok(source) => {
            return Err(format!(
                "the stored source {:?} is of kind {}; a source's kind cannot change (delete it first)",
                entry.id,
                source.kind.as_str()
            ));
        }
        Err(store::StoreError::NotFound { .. }) => None,
        Err(error) => return Err(error.to_string()),
    };
    let (config, _) = prepare_source(
        &state.sealer,
        state.clock.now(),
        &entry.id,
        parsed.config,
        from,
        given,
        stored.as_ref(),
    )
    .await
    .map_err(|e| e.to_string())?;
    Ok(config.to_json())
}

/// Applies the configuration's `[[identity_sources]]`: each is created, or updated
/// to match, in the database (an upsert per source, in one transaction each). The
/// client secret is sealed with the master key; an already stored sealing of the same
/// secret is kept, so applying the same configuration again writes nothing. A source
/// removed from the configuration stays in the database as it was. Returns one line
/// per source for the start-up output; an error names the entry.
pub async fn apply_identity_sources(
    state: &AppState,
    entries: &[crate::config::IdentitySourceEntry],
) -> Result<Vec<String>, String> {
    use crate::idp::oidc::{client_secret_context, seal_client_secret};
    let mut lines = Vec::new();
    for entry in entries {
        let failed = |why: String| {
            format!(
                "identity source {:?} from the configuration: {why}",
                entry.id
            )
        };
        let (kind, config) = if entry.kind == "saml" {
            let config = saml_source(state, entry).await.map_err(failed)?;
            (store::IdentitySourceKind::Saml, config)
        } else {
            let mut config = entry.oidc_config().map_err(failed)?;
            if let Some(secret) = &entry.client_secret {
                let stored = match state.store.get_identity_source(&entry.id).await {
                    Ok(source) => source
                        .config
                        .get("client_secret")
                        .and_then(serde_json::Value::as_str)
                        .map(str::to_owned),
                    Err(store::StoreError::NotFound { .. }) => None,
                    Err(error) => return Err(failed(error.to_string())),
                };
                let context = client_secret_context(&entry.id);
                let kept = stored.filter(|sealed| {
                    state
                        .sealer
                        .open_secret(sealed, &context)
                        .is_ok_and(|open| open.expose() == secret.expose())
                });
                config.client_secret = Some(kept.unwrap_or_else(|| {
                    seal_client_secret(&state.sealer, &entry.id, secret.expose())
                }));
            }
            (store::IdentitySourceKind::Oidc, config.to_json())
        };
        let new = store::NewIdentitySource {
            id: entry.id.clone(),
            kind,
            display_name: entry.display_name.trim().to_owned(),
            config,
            enabled: entry.enabled,
        };
        let (_, done) = state
            .store
            .upsert_identity_source(&new)
            .await
            .map_err(|e| failed(e.to_string()))?;
        let verb = done.verb();
        lines.push(format!(
            "{verb} identity source {} ({}, {}){}",
            entry.id,
            new.kind.as_str(),
            new.display_name,
            if entry.enabled { "" } else { " disabled" }
        ));
    }
    Ok(lines)
}

/// Applies the configuration's `[[saml_providers]]`: each metadata file is read and
/// checked (an IdP entityID and at least one signing certificate), then the provider is
/// created, or its metadata replaced when the file changed. Returns the providers as
/// stored and one line each for the start-up output; an error names the entry.
pub async fn apply_saml_providers(
    state: &AppState,
    entries: &[crate::config::SamlProviderEntry],
) -> Result<(Vec<store::SamlProvider>, Vec<String>), String> {
    let mut providers = Vec::new();
    let mut lines = Vec::new();
    for entry in entries {
        let failed = |why: String| {
            format!(
                "SAML provider {:?} of account {} from the configuration: {why}",
                entry.name, entry.account_id
            )
        };
        let document = std::fs::read_to_string(&entry.metadata_file).map_err(|e| {
            failed(format!(
                "cannot read {}: {e}",
                entry.metadata_file.display()
            ))
        })?;
        crate::idp::saml::parse_idp_metadata(&document)
            .map_err(|e| failed(format!("{}: {e}", entry.metadata_file.display())))?;
        let account = crate::iam::AccountId::parse(entry.account_id.clone())
            .map_err(|e| failed(e.to_string()))?;
        let new = store::NewSamlProvider {
            account_id: account,
            name: entry.name.clone(),
            metadata_document: document,
        };
        let (provider, done) = state
            .store
            .upsert_saml_provider(&new)
            .await
            .map_err(|e| failed(e.to_string()))?;
        let verb = done.verb();
        lines.push(format!("{verb} SAML provider {}", provider.arn));
        providers.push(provider);
    }
    Ok((providers, lines))
}

/// Everything `rolegate dev` prepared before serving.
pub struct DevEnvironment {
    pub state: AppState,
    pub data_dir: PathBuf,
    pub database_path: PathBuf,
    pub seeded: SeedReport,
    /// Set when this start generated the master key.
    pub generated_master_key: Option<PathBuf>,
    /// New keys of the demo IAM user, to be written to the credentials file.
    pub new_workload_keys: Option<(String, String)>,
    /// Where the dev admin API token (write scope) is, and whether this start made it.
    pub admin_token_path: PathBuf,
    pub admin_token_created: bool,
}

/// Why `rolegate dev` could not start; each says what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum DevError {
    #[error("data directory {path} is not writable: {source}")]
    DataDir {
        path: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    MasterKey(String),
    #[error(transparent)]
    Store(#[from] store::StoreError),
    #[error("{0}")]
    Sts(String),
    #[error("{0}")]
    AuditSpool(String),
}

const MASTER_KEY_FILE: &str = "master.key";
const AWS_CONFIG_FILE: &str = "aws-config";
const AWS_CREDENTIALS_FILE: &str = "aws-credentials";
const ADMIN_TOKEN_FILE: &str = "admin-token";
/// `dev`'s `[audit] spool_dir`, inside its data directory.
const AUDIT_SPOOL_DIR: &str = "audit-spool";
const DEV_PROFILE: &str = "rolegate-dev";
const DEV_REGION: &str = "us-east-1";

fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)?.write_all(contents.as_bytes())
}

/// Reads the dev master key, generating it on first start.
fn dev_master_key(data_dir: &Path) -> Result<(Sealer, Option<PathBuf>), DevError> {
    let path = data_dir.join(MASTER_KEY_FILE);
    let unreadable =
        |e: std::io::Error| DevError::MasterKey(format!("cannot use {}: {e}", path.display()));
    let (key, generated) = if path.exists() {
        (
            Secret::new(std::fs::read_to_string(&path).map_err(unreadable)?),
            None,
        )
    } else {
        let key = Sealer::generate_master_key(&mut crate::clock::Random::system().rng());
        write_private(&path, key.expose()).map_err(unreadable)?;
        (key, Some(path.clone()))
    };
    let sealer = Sealer::from_base64(&key)
        .map_err(|e| DevError::MasterKey(format!("{}: {e}", path.display())))?;
    Ok((sealer, generated))
}

/// The access key id of an existing dev credentials file, if any.
fn existing_dev_key(data_dir: &Path) -> Option<String> {
    let text = std::fs::read_to_string(data_dir.join(AWS_CREDENTIALS_FILE)).ok()?;
    text.lines()
        .find_map(|line| line.trim().strip_prefix("aws_access_key_id"))
        .map(|rest| rest.trim_start_matches([' ', '=']).trim().to_owned())
}

/// Prepares the embedded environment: data dir, master key, SQLite file, migrations,
/// demo seed and the demo workload's keys.
pub async fn prepare_dev(data_dir: &Path) -> Result<DevEnvironment, DevError> {
    let data_dir_error = |source| DevError::DataDir {
        path: data_dir.display().to_string(),
        source,
    };
    std::fs::create_dir_all(data_dir).map_err(data_dir_error)?;
    // Prove we can write before SQLite reports it less clearly.
    let probe = data_dir.join(".write-test");
    std::fs::write(&probe, b"ok").map_err(data_dir_error)?;
    let _ = std::fs::remove_file(&probe);
    let (sealer, generated_master_key) = dev_master_key(data_dir)?;

    let database_path = data_dir.join("rolegate.db");
    let url = format!("sqlite://{}", database_path.display());
    let options = StoreOptions {
        partition: Partition::default(),
        ..StoreOptions::default()
    };
    let store = store::open(&url, &options).await?;
    let mut seeded = seed::seed_demo(store.as_ref()).await?;
    let spool = crate::service::audit_spool::AuditSpool::open(
        &data_dir.join(AUDIT_SPOOL_DIR),
        store.random(),
    )
    .map_err(|e| DevError::AuditSpool(e.to_string()))?;
    let state = app_state(store, sealer)
        .await
        .map_err(DevError::Sts)?
        .with_admin_groups(seed::dev_admin_groups())
        .with_audit_spool(spool)
        .map_err(DevError::AuditSpool)?;
    let kept = existing_dev_key(data_dir);
    let new_workload_keys = seed::seed_workload(
        state.store.as_ref(),
        &state.sts,
        &mut seeded,
        kept.as_deref(),
    )
    .await?;
    let admin_token_path = data_dir.join(ADMIN_TOKEN_FILE);
    let admin_token_created = dev_admin_token(&state, &admin_token_path).await?;
    Ok(DevEnvironment {
        state,
        data_dir: data_dir.to_path_buf(),
        database_path,
        seeded,
        generated_master_key,
        new_workload_keys,
        admin_token_path,
        admin_token_created,
    })
}

/// Keeps the dev admin API token in `path` while it works; otherwise issues a new
/// write-scoped one and writes it there (mode 0600). True when it made one.
async fn dev_admin_token(state: &AppState, path: &Path) -> Result<bool, DevError> {
    if let Ok(kept) = std::fs::read_to_string(path)
        && state.admin.authenticate(kept.trim()).await.is_ok()
    {
        return Ok(false);
    }
    let issued = state
        .admin
        .issue(
            "rolegate dev",
            store::AdminScope::Write,
            Some(crate::service::admin_access::MAX_EXPIRES_IN_DAYS),
            "cli:dev",
        )
        .await
        .map_err(|e| DevError::Sts(format!("cannot create the dev admin API token: {e}")))?;
    write_private(path, &format!("{}\n", issued.secret)).map_err(|source| DevError::DataDir {
        path: path.display().to_string(),
        source,
    })?;
    Ok(true)
}

impl DevEnvironment {
    /// Writes `aws-config` (profiles and Rolegate's endpoints) and, with new keys,
    /// `aws-credentials`; returns the two export lines to print.
    pub fn write_aws_files(&self, address: SocketAddr) -> std::io::Result<[String; 2]> {
        let config_path = self.data_dir.join(AWS_CONFIG_FILE);
        let credentials_path = self.data_dir.join(AWS_CREDENTIALS_FILE);
        let endpoint = format!("http://{address}");
        let role_arn = crate::iam::RoleArn::new(
            self.state.store.partition(),
            crate::iam::AccountId::parse(seed::DEMO_ACCOUNT_ID).map_err(std::io::Error::other)?,
            crate::iam::IamPath::root(),
            crate::iam::RoleName::parse(seed::WORKLOAD_ROLE).map_err(std::io::Error::other)?,
        );
        let config = format!(
            "# Written by `rolegate dev`: AWS CLI / SDK profiles for this Rolegate.\n\
             [profile {DEV_PROFILE}]\nregion = {DEV_REGION}\nservices = {DEV_PROFILE}\ncli_follow_urlparam = false\n\n\
             [profile {DEV_PROFILE}-role]\nregion = {DEV_REGION}\nrole_arn = {role_arn}\nsource_profile = {DEV_PROFILE}\n\
             role_session_name = {DEV_PROFILE}\nservices = {DEV_PROFILE}\ncli_follow_urlparam = false\n\n\
             [services {DEV_PROFILE}]\nsts =\n  endpoint_url = {endpoint}\nsso =\n  endpoint_url = {endpoint}\n\
             sso_oidc =\n  endpoint_url = {endpoint}\n"
        );
        write_private(&config_path, &config)?;
        if let Some((access_key_id, secret)) = &self.new_workload_keys {
            let credentials = format!(
                "# Written by `rolegate dev`: keys of IAM user {}.\n[{DEV_PROFILE}]\naws_access_key_id = {access_key_id}\naws_secret_access_key = {secret}\n",
                seed::WORKLOAD_USER
            );
            write_private(&credentials_path, &credentials)?;
        }
        Ok([
            format!(
                "export AWS_CONFIG_FILE={}",
                absolute(&config_path).display()
            ),
            format!(
                "export AWS_SHARED_CREDENTIALS_FILE={}",
                absolute(&credentials_path).display()
            ),
        ])
    }
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

/// Installs the global tracing subscriber as the config asks.
pub fn init_logging(filter: &str, format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(filter))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

/// Opens the configured store (applying migrations) for `serve` and `migrate`.
pub async fn open_configured_store(config: &Config) -> Result<Arc<dyn Store>, String> {
    store::open(&config.database.url, &config.store_options())
        .await
        .map_err(|error| {
            format!(
                "cannot use database {}: {error}",
                crate::secrets::redact_url(&config.database.url)
            )
        })
}
