//! Wiring: opens the store, builds the actix-web server, and the `dev` bootstrap.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use actix_web::{App, HttpServer, dev::Server, middleware, web};

use crate::config::{Config, LogFormat};
use crate::iam::Partition;
use crate::seed::{self, SeedReport};
use crate::store::{self, Store, StoreOptions};
use crate::web::{AppState, configure};

/// Builds the HTTP server on an already-bound listener (port 0 in tests).
pub fn build_server(
    listener: TcpListener,
    store: Arc<dyn Store>,
    workers: usize,
) -> std::io::Result<Server> {
    let state = web::Data::new(AppState { store });
    let mut server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .wrap(middleware::Logger::new("%a \"%r\" %s %b %Dms").exclude("/healthz"))
            .wrap(middleware::NormalizePath::trim())
            .configure(configure)
    })
    .listen(listener)?;
    if workers > 0 {
        server = server.workers(workers);
    }
    Ok(server.run())
}

/// Everything `rolegate dev` prepared before serving.
pub struct DevEnvironment {
    pub store: Arc<dyn Store>,
    pub database_path: PathBuf,
    pub seeded: SeedReport,
}

/// Why `rolegate dev` could not start; each says what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum DevError {
    #[error("data directory {path} is not writable: {source}")]
    DataDir {
        path: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] store::StoreError),
}

/// Prepares the embedded environment: data dir, SQLite file, migrations, demo seed.
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

    let database_path = data_dir.join("rolegate.db");
    let url = format!("sqlite://{}", database_path.display());
    let options = StoreOptions {
        partition: Partition::default(),
        ..StoreOptions::default()
    };
    let store = store::open(&url, &options).await?;
    let seeded = seed::seed_demo(store.as_ref()).await?;
    Ok(DevEnvironment {
        store,
        database_path,
        seeded,
    })
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
                store::redact_url(&config.database.url)
            )
        })
}
