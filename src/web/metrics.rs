//! `/metrics` in the Prometheus text format, for whoever `[metrics]` allows: on the
//! main listener only with a bearer token (compared in constant time), else 404; on
//! a listener of its own (`[metrics] listen`), with the token if one is set.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};

use super::AppState;
use crate::metrics::Snapshot;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/metrics", web::get().to(main_listener));
}

/// The routes of `[metrics] listen`'s own listener.
pub fn listener_routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/metrics", web::get().to(own_listener));
}

async fn main_listener(state: web::Data<AppState>, request: HttpRequest) -> HttpResponse {
    if !state.metrics_access.on_main_listener() {
        return HttpResponse::NotFound().finish();
    }
    scrape(&state, &request)
}

async fn own_listener(state: web::Data<AppState>, request: HttpRequest) -> HttpResponse {
    scrape(&state, &request)
}

/// The metrics, if the request carries the token (when one is configured).
fn scrape(state: &AppState, request: &HttpRequest) -> HttpResponse {
    if let Some(token) = &state.metrics_access.token {
        let given = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or_default();
        if !crate::secrets::same_secret(given.trim(), token.expose()) {
            return HttpResponse::Unauthorized()
                .insert_header((header::WWW_AUTHENTICATE, "Bearer realm=\"metrics\""))
                .finish();
        }
    }
    let pool = state.store.pool_figures();
    let now = Snapshot {
        audit_backlog: state.audit.backlog(),
        pool_size: pool.size,
        pool_idle: pool.idle,
        pool_max: pool.max,
        audit_spooled: state.audit.spooled(),
        database_up: state.store.database_down().is_none(),
    };
    match state.metrics.render(now) {
        Ok(text) => HttpResponse::Ok()
            .insert_header((
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            ))
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .body(text),
        Err(error) => {
            tracing::error!(%error, "cannot render the metrics");
            HttpResponse::InternalServerError().finish()
        }
    }
}
