//! `/healthz` (the process is up) and `/readyz` (every dependency this replica needs
//! answers), for load balancers and orchestrators.

use actix_web::{HttpResponse, get, web};
use serde_json::json;

use super::AppState;
use crate::service::readiness::{self, CHECK_TIMEOUT, Check};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(healthz).service(readyz);
}

#[get("/healthz")]
async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok" }))
}

/// `{"status":"ready|unavailable","checks":{"database":{...},"cache":{...}}}`, 503
/// when a dependency is down; answers within [`CHECK_TIMEOUT`] plus a little.
#[get("/readyz")]
async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let report = readiness::check(state.store.as_ref(), state.cache.as_ref(), CHECK_TIMEOUT).await;
    let check = |check: &Check| match check.error() {
        Some(error) => json!({ "status": check.status(), "error": error }),
        None => json!({ "status": check.status() }),
    };
    let body = json!({
        "status": if report.is_ready() { "ready" } else { "unavailable" },
        "checks": { "database": check(&report.database), "cache": check(&report.cache) },
    });
    if report.is_ready() {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}
