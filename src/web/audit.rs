//! The audit events of the web surfaces: one per security-relevant request, with the
//! client's address and user agent, handed to the one writer
//! ([`crate::service::audit::AuditLog`]).

use actix_web::HttpRequest;
use actix_web::http::header;

use super::AppState;
use super::aws_json::client_network;
use super::request_info;
use crate::store::{AuditEvent, Outcome};

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

/// The event of `request`, stamped now, with its client's address and user agent.
fn event_of(
    state: &AppState,
    request: &HttpRequest,
    actor: &str,
    action: &str,
    target: &str,
    outcome: Outcome,
    details: serde_json::Value,
) -> AuditEvent {
    let (source_ip, user_agent) = origin(request);
    AuditEvent {
        at: state.clock.now(),
        actor: actor.to_owned(),
        action: action.to_owned(),
        target: target.to_owned(),
        outcome,
        source_ip,
        user_agent,
        details,
    }
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
    let event = event_of(state, request, actor, action, target, outcome, details);
    state.audit.record(event).await;
}

/// [`audit`] for a refusal of an anonymous request, within the client network's
/// budget ([`crate::service::audit::ANONYMOUS_AUDIT`]).
pub(crate) async fn audit_anonymous(
    state: &AppState,
    request: &HttpRequest,
    actor: &str,
    action: &str,
    target: &str,
    outcome: Outcome,
    details: serde_json::Value,
) {
    let event = event_of(state, request, actor, action, target, outcome, details);
    state
        .audit
        .record_anonymous(event, &client_network(request))
        .await;
}
