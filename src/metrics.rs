//! Operational metrics in the Prometheus text format: requests and latency per
//! surface, STS outcomes per operation, the audit writer's backlog and failures, the
//! database pool and cache errors. Counted in process by whoever sees the event; the
//! gauges that describe other components (audit queue, pool) are read at scrape time
//! and handed to [`Metrics::render`]. Served at `/metrics` only when `[metrics]` says
//! so (a bearer token, or a listen address of its own): see `web::metrics`.

use std::net::SocketAddr;
use std::time::Duration;

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts, Registry,
    TextEncoder,
};

use crate::secrets::Secret;

/// Which front door a request came through (a label with a fixed set of values).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Surface {
    /// The STS query API (`/`, `/sts`).
    Sts,
    /// Pages for people: sign-in, accounts, device approval, consoles.
    Portal,
    /// The AWS SSO portal API (`/federation/credentials`, `/assignment/*`, bearer logout).
    Sso,
    /// OAuth / SSO-OIDC (`/client/register`, `/device_authorization`, `/token`, `/authorize`).
    Oauth,
    /// The admin API and pages (`/admin...`).
    Admin,
    /// Health, metrics, static files and the rest.
    Other,
}

impl Surface {
    pub fn as_str(self) -> &'static str {
        match self {
            Surface::Sts => "sts",
            Surface::Portal => "portal",
            Surface::Sso => "sso",
            Surface::Oauth => "oauth",
            Surface::Admin => "admin",
            Surface::Other => "other",
        }
    }

    /// The surface of a request: by path, with the STS's `/` told from the portal's
    /// by method and `Action` (as the routes tell them), and the SSO API's bearer
    /// logout from the portal's form sign-out by its header.
    pub fn of(method: &str, path: &str, query: &str, sso_bearer: bool) -> Self {
        let has_action = query
            .split('&')
            .any(|pair| pair.split('=').next() == Some("Action"));
        match path {
            "/" if method == "POST" || has_action => Surface::Sts,
            "/sts" | "/sts/" => Surface::Sts,
            "/federation/credentials" => Surface::Sso,
            "/logout" if sso_bearer => Surface::Sso,
            "/client/register" | "/device_authorization" | "/token" | "/authorize" => {
                Surface::Oauth
            }
            "/healthz" | "/readyz" | "/metrics" | "/favicon.ico" | "/v1/authorize" => {
                Surface::Other
            }
            _ if path.starts_with("/assignment/") => Surface::Sso,
            _ if path == "/admin" || path.starts_with("/admin/") => Surface::Admin,
            _ if path.starts_with("/static/") => Surface::Other,
            _ => Surface::Portal,
        }
    }
}

/// `2xx`, `3xx`, `4xx` or `5xx`.
fn status_class(status: u16) -> &'static str {
    match status {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}

/// What the other components say at scrape time.
#[derive(Debug, Clone, Copy, Default)]
pub struct Snapshot {
    /// Audit events waiting for the writer.
    pub audit_backlog: usize,
    /// Open, idle and maximum database connections.
    pub pool_size: u32,
    pub pool_idle: u32,
    pub pool_max: u32,
    /// Audit events in this replica's spool, not yet in the database.
    pub audit_spooled: usize,
    /// Whether the database circuit lets calls through (false: marked down).
    pub database_up: bool,
}

/// The process's metrics (one per application state, shared by every worker).
pub struct Metrics {
    registry: Registry,
    http_requests: IntCounterVec,
    http_duration: HistogramVec,
    sts_requests: IntCounterVec,
    sts_issued: IntCounterVec,
    audit_backlog: IntGauge,
    audit_failures: IntCounter,
    pool_size: IntGauge,
    pool_idle: IntGauge,
    pool_max: IntGauge,
    audit_spooled: IntGauge,
    database_up: IntGauge,
    cache_errors: IntCounterVec,
}

fn register<C: prometheus::core::Collector + Clone + 'static>(
    registry: &Registry,
    collector: C,
) -> Result<C, prometheus::Error> {
    registry.register(Box::new(collector.clone()))?;
    Ok(collector)
}

impl Metrics {
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let r = &registry;
        Ok(Self {
            http_requests: register(
                r,
                IntCounterVec::new(
                    Opts::new(
                        "rolegate_http_requests_total",
                        "HTTP requests answered, by surface and status class.",
                    ),
                    &["surface", "class"],
                )?,
            )?,
            http_duration: register(
                r,
                HistogramVec::new(
                    HistogramOpts::new(
                        "rolegate_http_request_duration_seconds",
                        "Time to answer an HTTP request, by surface.",
                    )
                    .buckets(vec![
                        0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                        10.0,
                    ]),
                    &["surface"],
                )?,
            )?,
            sts_requests: register(
                r,
                IntCounterVec::new(
                    Opts::new(
                        "rolegate_sts_requests_total",
                        "STS calls by operation and outcome (success, denied: refused with 403, failure: any other error).",
                    ),
                    &["operation", "outcome"],
                )?,
            )?,
            sts_issued: register(
                r,
                IntCounterVec::new(
                    Opts::new(
                        "rolegate_sts_credentials_issued_total",
                        "Temporary credentials issued by the STS, by operation.",
                    ),
                    &["operation"],
                )?,
            )?,
            audit_backlog: register(
                r,
                IntGauge::new(
                    "rolegate_audit_queue_length",
                    "Audit events waiting for the audit writer.",
                )?,
            )?,
            audit_failures: register(
                r,
                IntCounter::new(
                    "rolegate_audit_write_failures_total",
                    "Audit events that could not be written.",
                )?,
            )?,
            pool_size: register(
                r,
                IntGauge::new(
                    "rolegate_db_pool_connections",
                    "Open database connections (idle and in use).",
                )?,
            )?,
            pool_idle: register(
                r,
                IntGauge::new(
                    "rolegate_db_pool_idle_connections",
                    "Idle database connections.",
                )?,
            )?,
            pool_max: register(
                r,
                IntGauge::new(
                    "rolegate_db_pool_max_connections",
                    "The most database connections the pool may open.",
                )?,
            )?,
            audit_spooled: register(
                r,
                IntGauge::new(
                    "rolegate_audit_spool_events",
                    "Audit events in this replica's spool (the database could not take them), not yet written to the database.",
                )?,
            )?,
            database_up: register(
                r,
                IntGauge::new(
                    "rolegate_database_up",
                    "1 while the database answers, 0 while it is marked down (calls that need it fail at once).",
                )?,
            )?,
            cache_errors: register(
                r,
                IntCounterVec::new(
                    Opts::new(
                        "rolegate_cache_errors_total",
                        "Failed calls to the shared cache (Redis), by operation.",
                    ),
                    &["operation"],
                )?,
            )?,
            registry,
        })
    }

    /// One answered HTTP request.
    pub fn observe_request(&self, surface: Surface, status: u16, elapsed: Duration) {
        self.http_requests
            .with_label_values(&[surface.as_str(), status_class(status)])
            .inc();
        self.http_duration
            .with_label_values(&[surface.as_str()])
            .observe(elapsed.as_secs_f64());
    }

    /// One STS call: `operation` is a known action's name (or `Unknown`), `outcome`
    /// `success`, `denied` or `failure`; `issued` when it issued credentials.
    pub fn sts_call(&self, operation: &str, outcome: &str, issued: bool) {
        self.sts_requests
            .with_label_values(&[operation, outcome])
            .inc();
        if issued {
            self.sts_issued.with_label_values(&[operation]).inc();
        }
    }

    /// An audit event that could not be written.
    pub fn audit_write_failed(&self) {
        self.audit_failures.inc();
    }

    /// A failed call to the shared cache.
    pub fn cache_error(&self, operation: &'static str) {
        self.cache_errors.with_label_values(&[operation]).inc();
    }

    /// Everything, in the Prometheus text exposition format.
    pub fn render(&self, now: Snapshot) -> Result<String, String> {
        self.audit_backlog
            .set(i64::try_from(now.audit_backlog).unwrap_or(i64::MAX));
        self.pool_size.set(i64::from(now.pool_size));
        self.pool_idle.set(i64::from(now.pool_idle));
        self.pool_max.set(i64::from(now.pool_max));
        self.audit_spooled
            .set(i64::try_from(now.audit_spooled).unwrap_or(i64::MAX));
        self.database_up.set(i64::from(now.database_up));
        let mut out = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut out)
            .map_err(|e| e.to_string())?;
        String::from_utf8(out).map_err(|e| e.to_string())
    }
}

/// Who may read `/metrics` (`[metrics]`): nobody by default.
#[derive(Debug, Clone, Default)]
pub struct MetricsAccess {
    /// Required as `Authorization: Bearer <token>` wherever `/metrics` is served.
    pub token: Option<Secret>,
    /// A listener of its own for `/metrics`; then the main listener does not serve it.
    pub listen: Option<SocketAddr>,
}

impl MetricsAccess {
    /// Whether the main listener serves `/metrics` (only with a token and no
    /// listener of its own).
    pub fn on_main_listener(&self) -> bool {
        self.token.is_some() && self.listen.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_told_apart_by_surface() {
        for (method, path, query, bearer, surface) in [
            ("POST", "/", "", false, Surface::Sts),
            (
                "GET",
                "/",
                "Action=GetCallerIdentity&Version=2011-06-15",
                false,
                Surface::Sts,
            ),
            ("GET", "/", "", false, Surface::Portal),
            ("POST", "/sts", "", false, Surface::Sts),
            ("GET", "/start", "", false, Surface::Portal),
            (
                "GET",
                "/device",
                "user_code=ABCD-EFGH",
                false,
                Surface::Portal,
            ),
            ("POST", "/token", "", false, Surface::Oauth),
            ("POST", "/client/register", "", false, Surface::Oauth),
            ("GET", "/federation/credentials", "", false, Surface::Sso),
            ("GET", "/assignment/roles", "", false, Surface::Sso),
            ("POST", "/logout", "", true, Surface::Sso),
            ("POST", "/logout", "", false, Surface::Portal),
            ("GET", "/admin/api/v1/whoami", "", false, Surface::Admin),
            ("GET", "/administrator", "", false, Surface::Portal),
            ("GET", "/readyz", "", false, Surface::Other),
            ("GET", "/static/portal.css", "", false, Surface::Other),
        ] {
            assert_eq!(
                Surface::of(method, path, query, bearer),
                surface,
                "{method} {path}?{query}"
            );
        }
    }

    #[test]
    fn renders_the_text_format() {
        let metrics = Metrics::new().unwrap();
        metrics.observe_request(Surface::Sts, 200, Duration::from_millis(3));
        metrics.sts_call("AssumeRole", "success", true);
        metrics.cache_error("GET");
        let text = metrics
            .render(Snapshot {
                audit_backlog: 2,
                pool_size: 3,
                pool_idle: 1,
                pool_max: 10,
                audit_spooled: 4,
                database_up: true,
            })
            .unwrap();
        for line in [
            "rolegate_http_requests_total{class=\"2xx\",surface=\"sts\"} 1",
            "rolegate_sts_credentials_issued_total{operation=\"AssumeRole\"} 1",
            "rolegate_cache_errors_total{operation=\"GET\"} 1",
            "rolegate_audit_queue_length 2",
            "rolegate_db_pool_max_connections 10",
            "rolegate_audit_spool_events 4",
            "rolegate_database_up 1",
        ] {
            assert!(text.contains(line), "{line} in {text}");
        }
    }
}
