//! HTTP surfaces. Handlers are thin: they translate HTTP to calls into the cores and
//! the store, and results back to each surface's wire format.

pub mod admin;
mod admin_ui;
mod api_error;
mod assets;
mod audit;
mod authorize;
mod aws_json;
mod federation;
mod health;
mod metrics;
mod mfa;
mod oauth;
mod oidc_login;
pub(crate) mod page;
mod portal;
pub mod request_id;
pub mod request_info;
mod saml_login;
mod session;
mod sso_api;
pub(crate) mod sts_api;
mod test_sign_in;

use std::sync::Arc;

use actix_web::{HttpRequest, web};

use crate::cache::Cache;
use crate::idp::directory::DirectoryAuth;
use crate::service::issuance::Sts;
use crate::store::Store;

pub use metrics::listener_routes as metrics_listener_routes;
pub use request_info::{PublicUrl, ServerSettings, TrustedProxies};
pub(crate) use sso_api::BEARER_HEADER as SSO_BEARER_HEADER;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    /// The one clock and random source (the store's, shared by everything below).
    pub clock: crate::clock::Clock,
    pub random: crate::clock::Random,
    pub store: Arc<dyn Store>,
    pub sts: Arc<Sts>,
    /// Who is granted which role: the published mapping rules (the one instance
    /// `sts` asks too) and the recent sign-ins.
    pub entitlements: Arc<crate::service::entitlements::Entitlements>,
    /// Publishing mapping rules, dry runs, impact and the access views.
    pub rulesets: Arc<crate::service::rulesets::Rulesets>,
    /// Seals secrets at rest and MACs server-issued values under the master key.
    pub sealer: crate::service::sealing::SecretSealer,
    /// Ephemeral state shared by replicas: portal sessions, sign-in tokens, lock-outs.
    pub cache: Arc<dyn Cache>,
    pub directory: Arc<DirectoryAuth>,
    /// The relying party of the OIDC identity sources.
    pub oidc: Arc<crate::idp::oidc::OidcLogin>,
    /// The service provider of the SAML identity sources.
    pub saml: Arc<crate::service::saml_login::SamlLogin>,
    /// Portal sessions (their lifetime is `portal.session_ttl`).
    pub sessions: Arc<crate::service::sessions::PortalSessions>,
    /// The directory's TOTP second factor: pending sign-ins, code checks, enrolment.
    pub second_factor: Arc<crate::service::second_factor::SecondFactor>,
    /// Console sign-in tokens and console sessions.
    pub console: Arc<crate::service::console::ConsoleService>,
    /// The one audit writer: every audit event of every surface goes through it.
    pub audit: crate::service::audit::AuditLog,
    pub portal: PortalSettings,
    /// How clients reach this server: public URL and trusted proxies (`[server]`).
    pub server: ServerSettings,
    /// How the AWS tools identify this server (`[sso]`).
    pub sso: SsoSettings,
    /// STS settings beyond the issuance service's (`[sts]`).
    pub sts_settings: StsSettings,
    /// Device authorization and SSO tokens (`oauth`, `sso_api`).
    pub device: crate::service::device::DeviceService,
    /// Who is an admin (`[admin] groups`) and the admin API tokens.
    pub admin: Arc<crate::service::admin_access::AdminAccess>,
    /// Operational metrics, and who may read them (`[metrics]`).
    pub metrics: Arc<crate::metrics::Metrics>,
    pub metrics_access: crate::metrics::MetricsAccess,
}

/// The identity the AWS tools know this server by (`[sso]`).
#[derive(Debug, Clone)]
pub struct SsoSettings {
    /// The AWS-shaped start URL (`https://<name>.awsapps.com/start`) that `HEAD
    /// <public URL>/start` redirects to. The AWS CLI v2 (2.35.13 and later) accepts
    /// only an https start URL on an AWS-owned host, or one that redirects to one; it
    /// never contacts that host, it only sends the URL as `startUrl` / `issuerUrl`.
    pub aws_start_url: String,
}

/// The default `sso.aws_start_url`: an Identity Center directory id that no AWS
/// organisation has (ids are `d-` and ten hexadecimal digits, allotted by AWS).
pub const DEFAULT_AWS_START_URL: &str = "https://d-0000000000.awsapps.com/start";

impl Default for SsoSettings {
    fn default() -> Self {
        Self {
            aws_start_url: DEFAULT_AWS_START_URL.to_owned(),
        }
    }
}

/// STS settings an operator tunes in `[sts]`.
#[derive(Debug, Clone, Default)]
pub struct StsSettings {
    /// The audience (and recipient) AssumeRoleWithSAML assertions must name: this
    /// STS's SAML endpoint, as `https://signin.aws.amazon.com/saml` is AWS's. `None`:
    /// `<public URL>/saml`.
    pub saml_audience: Option<String>,
}

impl StsSettings {
    /// The SAML audience for a request: the configured one, else `/saml` on the
    /// origin clients reach this server at.
    pub fn saml_audience(&self, server: &ServerSettings, request: &HttpRequest) -> String {
        match &self.saml_audience {
            Some(audience) => audience.clone(),
            None => format!("{}/saml", server.public_origin(request)),
        }
    }
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
        self.sessions = Arc::new(crate::service::sessions::PortalSessions::new(
            self.cache.clone(),
            self.clock.clone(),
            self.random,
            portal.session_ttl,
        ));
        // A terminal sign-in lasts as long as the portal sign-in that approved it.
        self.device = self.device.with_sign_in_lifetime(portal.session_ttl);
        self.portal = portal;
        self
    }

    pub fn with_server(mut self, server: ServerSettings) -> Self {
        self.server = server;
        self
    }

    /// Who may read `/metrics` (`[metrics]`).
    pub fn with_metrics_access(mut self, access: crate::metrics::MetricsAccess) -> Self {
        self.metrics_access = access;
        self
    }

    pub fn with_sts_settings(mut self, settings: StsSettings) -> Self {
        self.sts_settings = settings;
        self
    }

    /// Audit events the database cannot take go to `spool` (`[audit] spool_dir`)
    /// and are written when it answers again.
    pub fn with_audit_spool(
        mut self,
        spool: crate::service::audit_spool::AuditSpool,
    ) -> Result<Self, String> {
        self.audit = self
            .audit
            .restarted_with_spool(self.store.clone(), spool)
            .map_err(|e| e.to_string())?;
        Ok(self)
    }

    pub fn with_sso(mut self, sso: SsoSettings) -> Self {
        self.sso = sso;
        self
    }

    /// Makes the members of `groups` admins (`[admin] groups`).
    pub fn with_admin_groups(
        mut self,
        groups: Vec<crate::service::admin_access::AdminGroup>,
    ) -> Self {
        self.admin = Arc::new(crate::service::admin_access::AdminAccess::new(
            self.store.clone(),
            groups,
        ));
        self
    }
}

/// Registers every route; used by the server and by in-process tests alike.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.configure(health::routes)
        .configure(metrics::routes)
        .configure(assets::routes)
        .configure(sts_api::routes)
        .configure(authorize::routes)
        // Before the portal: `POST /logout` with a bearer header is the SSO API's.
        .configure(sso_api::routes)
        .configure(oauth::routes)
        .configure(portal::routes)
        .configure(mfa::routes)
        .configure(oidc_login::routes)
        .configure(saml_login::routes)
        .configure(federation::routes)
        .configure(admin::routes)
        .configure(admin_ui::routes);
}
