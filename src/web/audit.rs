//! The audit writer of the web surfaces: one event per security-relevant request,
//! with the client's address and user agent, and a per-network budget for refusals
//! of anonymous requests.

use actix_web::HttpRequest;
use actix_web::http::header;
use serde_json::json;

use super::AppState;
use super::aws_json::client_network;
use super::request_info;
use crate::cache::RateLimit;
use crate::store::{AuditEvent, Outcome};

/// Refusals of anonymous requests that one client network may write to the audit
/// log per window; past it they are logged at debug level only, after one event
/// saying so, so an anonymous client cannot grow the database at will.
const ANONYMOUS_AUDIT: RateLimit = RateLimit {
    name: "audit-anonymous",
    max: 60,
    window: std::time::Duration::from_secs(15 * 60),
};

fn origin(request: &HttpRequest) -> (Option<String>, Option<String>) {
    (
        request_info::client_ip(request).map(|ip| ip.to_string()),
        request
            .headers()
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
    )
}

pub(crate) async fn audit(
    state: &AppState,
    request: &HttpRequest,
    actor: &str,
    action: &str,
    target: &str,
    outcome: Outcome,
    details: serde_json::Value,
) {
    let (source_ip, user_agent) = origin(request);
    let event = AuditEvent {
        at: state.clock.now(),
        actor: actor.to_owned(),
        action: action.to_owned(),
        target: target.to_owned(),
        outcome,
        source_ip,
        user_agent,
        details,
    };
    state.audit.record(event).await;
}

/// [`audit`] for a refusal of an anonymous request, within the client network's
/// [`ANONYMOUS_AUDIT`] budget.
pub(crate) async fn audit_anonymous(
    state: &AppState,
    request: &HttpRequest,
    actor: &str,
    action: &str,
    target: &str,
    outcome: Outcome,
    details: serde_json::Value,
) {
    let network = client_network(request);
    // Without the counter the event is written: losing it would be worse.
    let count: u64 = ANONYMOUS_AUDIT
        .count(state.cache.as_ref(), &network)
        .await
        .unwrap_or_default();
    if count <= ANONYMOUS_AUDIT.max {
        audit(state, request, actor, action, target, outcome, details).await;
    } else if count == ANONYMOUS_AUDIT.max + 1 {
        audit(
            state,
            request,
            "anonymous",
            "audit:Suppressed",
            &network,
            Outcome::Denied,
            json!({
                "reason": "too many refused anonymous requests from this network: further ones are not recorded until the window ends",
                "window_seconds": ANONYMOUS_AUDIT.window.as_secs(),
                "last_action": action,
            }),
        )
        .await;
    } else {
        tracing::debug!(%network, action, "anonymous refusal not audited (over budget)");
    }
}
