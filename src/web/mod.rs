//! HTTP surfaces. Handlers are thin: they translate HTTP to calls into the cores and
//! the store, and results back to each surface's wire format.

mod assets;
mod authorize;
mod aws_json;
mod federation;
mod health;
mod mfa;
mod oauth;
mod oidc_login;
mod portal;
pub mod request_info;
mod sso_api;
mod sts_api;

use std::sync::Arc;

use actix_web::web;

use crate::cache::Cache;
use crate::idp::directory::DirectoryAuth;
use crate::store::Store;
use crate::sts::service::Sts;

pub use request_info::{PublicUrl, ServerSettings, TrustedProxies};

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub sts: Arc<Sts>,
    /// Ephemeral state shared by replicas: portal sessions, sign-in tokens, lock-outs.
    pub cache: Arc<dyn Cache>,
    pub directory: Arc<DirectoryAuth>,
    pub portal: PortalSettings,
    /// How clients reach this server: public URL and trusted proxies (`[server]`).
    pub server: ServerSettings,
}

/// Portal behaviour an operator tunes in `[portal]`.
#[derive(Debug, Clone)]
pub struct PortalSettings {
    /// How long a portal sign-in lasts (also the SSO access token's lifetime).
    pub session_ttl: std::time::Duration,
    /// How long after signing in a person may change their sign-in settings (turn
    /// a second factor on or off) without typing their password again.
    pub reauthenticate_within: std::time::Duration,
}

impl Default for PortalSettings {
    fn default() -> Self {
        // IAM Identity Center's default session duration.
        Self {
            session_ttl: std::time::Duration::from_secs(8 * 3600),
            reauthenticate_within: std::time::Duration::from_secs(5 * 60),
        }
    }
}

impl AppState {
    pub fn with_portal(mut self, portal: PortalSettings) -> Self {
        self.portal = portal;
        self
    }

    pub fn with_server(mut self, server: ServerSettings) -> Self {
        self.server = server;
        self
    }
}

/// Registers every route; used by the server and by in-process tests alike.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.configure(health::routes)
        .configure(assets::routes)
        .configure(sts_api::routes)
        .configure(authorize::routes)
        // Before the portal: `POST /logout` with a bearer header is the SSO API's.
        .configure(sso_api::routes)
        .configure(oauth::routes)
        .configure(portal::routes)
        .configure(mfa::routes)
        .configure(oidc_login::routes)
        .configure(federation::routes);
}
