//! `POST /v1/authorize`: internal services hand Rolegate the pieces of a SigV4-signed
//! request they received plus the action, resource and context they map it to;
//! Rolegate verifies the signature and session and evaluates the caller's policies.
//!
//! The calling service authenticates too: it signs its own call with SigV4 (service
//! name `rolegate`) using an IAM user's or role session's keys, and its policies must
//! allow `rolegate:Authorize` on the resource it asks about. So a storage service can
//! be limited to asking about `arn:aws:s3:::*`, with no new kind of credential.

use std::borrow::Cow;
use std::collections::BTreeMap;

use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::AppState;
use super::api_error::ApiError;
use super::sts_api::{header_pairs, signed_request};
use crate::policy::{Decision, Policy};
use crate::store::{AuditEvent, Outcome};
use crate::sts::assume::{Caller, is_reserved_context_key};
use crate::sts::error::StsError;
use crate::sts::sigv4;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/v1/authorize", web::post().to(authorize));
}

/// The action a service's credentials need to use this endpoint.
pub const AUTHORIZE_ACTION: &str = "rolegate:Authorize";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthorizeRequest {
    /// The request the service received, as it arrived.
    pub request: ReceivedRequest,
    /// The SigV4 signing name the service expects in the credential scope (e.g. `s3`).
    pub service: String,
    /// If set, the credential scope's region must equal it.
    #[serde(default)]
    pub region: Option<String>,
    pub action: String,
    pub resource: String,
    /// Extra condition keys (`aws:SourceIp`, `s3:prefix`, ...): a string or a list.
    #[serde(default)]
    pub context: BTreeMap<String, ContextValue>,
    /// S3-style services sign the path as sent; all others normalise it.
    #[serde(default = "default_true")]
    pub normalize_path: bool,
    /// The resource owner's resource-based policy (a bucket policy, a key
    /// policy, ...), as a JSON policy document or a string holding one. Needed
    /// for a cross-account request (the resource's account, from its ARN or
    /// `aws:ResourceAccount`, is not the caller's): both the caller's policies
    /// and this policy must allow. In the caller's own account it may grant too.
    #[serde(default)]
    pub resource_policy: Option<serde_json::Value>,
}

fn default_true() -> bool {
    true
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReceivedRequest {
    pub method: String,
    /// Path as sent on the wire (percent-encoded), without the query.
    pub path: String,
    #[serde(default)]
    pub query: String,
    /// Header name/value pairs in the order received.
    pub headers: Vec<(String, String)>,
    /// Hex SHA-256 of the body, or `UNSIGNED-PAYLOAD`; default: the empty body's hash.
    #[serde(default)]
    pub payload_sha256: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum ContextValue {
    One(String),
    Many(Vec<String>),
}

#[derive(Debug, Serialize)]
pub struct AuthorizeResponse {
    /// `Allowed`, `ImplicitDeny`, `ExplicitDeny`, or `Unauthenticated` when the
    /// request's signature or credentials are not valid.
    pub decision: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub principal_arn: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    pub session_tags: BTreeMap<String, String>,
    pub reason: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deciding_statement: Option<serde_json::Value>,
    /// For `Unauthenticated`: the AWS error the service should return to its client.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<serde_json::Value>,
    /// For denials: the details, sealed, for the service to pass to its client, who
    /// reads them with STS DecodeAuthorizationMessage (if allowed to), as with AWS.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub encoded_message: Option<String>,
}

async fn authorize(
    state: web::Data<AppState>,
    http: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let now = state.clock.now();
    // 1. The calling service.
    let headers = header_pairs(&http);
    let signed = signed_request(&http, &headers, &body);
    let options = state.sts.verify_options("rolegate");
    let service = state.sts.authenticate(&signed, now, &options).await?;
    let input: AuthorizeRequest = serde_json::from_slice(&body).map_err(|error| {
        ApiError::bad_request(
            "InvalidRequest",
            format!("invalid authorize request: {error}"),
        )
    })?;
    if let Some(key) = input.context.keys().find(|k| is_reserved_context_key(k)) {
        return Err(ApiError::bad_request(
            "InvalidRequest",
            format!(
                "context key {key} is set by Rolegate from the verified session and cannot be supplied"
            ),
        ));
    }
    if let Err(error) = may_authorize(&state, &service, &input.resource, now.timestamp()).await {
        audit(
            &state,
            &http,
            &service.arn,
            &input,
            Outcome::Denied,
            json!({ "code": error.code, "reason": error.message, "caller": "service" }),
        )
        .await;
        return Err(error.into());
    }

    let resource_policy = match input.resource_policy.as_ref().map(resource_policy_text) {
        None => None,
        Some(text) => match crate::policy::parse_supplied_resource_policy(&text) {
            Ok(policy) => policy,
            Err(message) => {
                let message = format!("resource_policy: {message}");
                return Err(ApiError::bad_request("MalformedPolicyDocument", message));
            }
        },
    };

    // 2. The request the service received.
    let received: Vec<(&str, &str)> = input
        .request
        .headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let payload = input
        .request
        .payload_sha256
        .clone()
        .unwrap_or_else(|| sigv4::hash_payload(b""));
    let end_user_request = sigv4::SignedRequest {
        method: &input.request.method,
        path: &input.request.path,
        query: &input.request.query,
        headers: &received,
        payload_sha256: Cow::Owned(payload),
    };
    let options = sigv4::VerifyOptions {
        region: input.region.clone(),
        normalize_path: input.normalize_path,
        double_encode_path: input.normalize_path,
        ..state.sts.verify_options(&input.service)
    };
    let caller = match state
        .sts
        .authenticate(&end_user_request, now, &options)
        .await
    {
        Ok(caller) => caller,
        Err(error) => {
            audit(
                &state,
                &http,
                &service.arn,
                &input,
                Outcome::Denied,
                json!({ "code": error.code, "reason": error.message }),
            )
            .await;
            return Ok(HttpResponse::Ok().json(AuthorizeResponse {
                decision: "Unauthenticated".into(),
                principal_arn: None,
                account: None,
                user_id: None,
                session_tags: BTreeMap::new(),
                reason: error.message.clone(),
                deciding_statement: None,
                error: Some(json!({ "code": error.code, "message": error.message, "http_status": error.status })),
                encoded_message: None,
            }));
        }
    };

    // 3. The decision.
    let response = match decide(
        &state,
        &caller,
        &input,
        resource_policy.as_ref(),
        now.timestamp(),
    )
    .await
    {
        Ok(response) => response,
        Err(error) if error.status >= 500 => return Err(error.into()),
        Err(error) => deny_response(&caller, &error),
    };
    let mut response = response;
    if response.decision != Decision::Allowed.as_str() {
        response.encoded_message = Some(state.sts.encode_authorization_message(&json!({
            "allowed": false,
            "explicitDeny": response.decision == Decision::ExplicitDeny.as_str(),
            "reason": response.reason,
            "matchedStatement": response.deciding_statement,
            "context": {
                "principal": { "arn": response.principal_arn, "id": response.user_id },
                "action": input.action,
                "resource": input.resource,
            },
        })));
        audit(&state, &http, &caller.arn, &input, Outcome::Denied, json!({ "decision": response.decision, "reason": response.reason, "service": service.arn })).await;
    }
    Ok(HttpResponse::Ok().json(response))
}

/// Whether the calling service may ask about `resource`.
async fn may_authorize(
    state: &AppState,
    service: &Caller,
    resource: &str,
    now: i64,
) -> Result<(), StsError> {
    let policies = state.sts.caller_policies(service).await?;
    let context = service.context(now, None);
    if policies
        .decide(service, AUTHORIZE_ACTION, resource, &context)
        .is_allowed()
    {
        Ok(())
    } else {
        Err(StsError::not_authorized(
            &service.arn,
            AUTHORIZE_ACTION,
            resource,
        ))
    }
}

/// The `resource_policy` field: a policy document as JSON, or a string holding one.
/// The `resource_policy` member as policy text: a JSON string holding the document,
/// or the document itself.
fn resource_policy_text(value: &serde_json::Value) -> Cow<'_, str> {
    match value {
        serde_json::Value::String(text) => Cow::Borrowed(text.as_str()),
        other => Cow::Owned(other.to_string()),
    }
}

async fn decide(
    state: &AppState,
    caller: &Caller,
    input: &AuthorizeRequest,
    resource_policy: Option<&Policy>,
    now: i64,
) -> Result<AuthorizeResponse, StsError> {
    let policies = state.sts.caller_policies(caller).await?;
    let extra: Vec<(&str, Vec<String>)> = input
        .context
        .iter()
        .map(|(key, value)| match value {
            ContextValue::One(v) => (key.as_str(), vec![v.clone()]),
            ContextValue::Many(vs) => (key.as_str(), vs.clone()),
        })
        .collect();
    let context = caller.context_with(now, extra.iter().map(|(k, v)| (*k, v.as_slice())));
    let verdict = policies.authorize(
        caller,
        &input.action,
        &input.resource,
        &context,
        resource_policy,
    );
    let deciding_statement = verdict.deciding.as_ref().map(|(source, index, sid)| {
        json!({ "source": source.to_string(), "statement": index + 1, "sid": sid })
    });
    Ok(AuthorizeResponse {
        decision: verdict.decision.as_str().to_owned(),
        principal_arn: Some(caller.arn.clone()),
        account: Some(caller.account.clone()),
        user_id: Some(caller.user_id.clone()),
        session_tags: caller.principal_tags.iter().cloned().collect(),
        reason: verdict.reason,
        deciding_statement,
        error: None,
        encoded_message: None,
    })
}

/// A verified caller whose session cannot be used (e.g. revoked): an explicit deny.
fn deny_response(caller: &Caller, error: &StsError) -> AuthorizeResponse {
    AuthorizeResponse {
        decision: Decision::ExplicitDeny.as_str().to_owned(),
        principal_arn: Some(caller.arn.clone()),
        account: Some(caller.account.clone()),
        user_id: Some(caller.user_id.clone()),
        session_tags: caller.principal_tags.iter().cloned().collect(),
        reason: error.message.clone(),
        deciding_statement: None,
        error: Some(
            json!({ "code": error.code, "message": error.message, "http_status": error.status }),
        ),
        encoded_message: None,
    }
}

/// Audits a decision; the source is the calling service (the checked request's own
/// client is in its context, `aws:SourceIp`).
async fn audit(
    state: &AppState,
    http: &HttpRequest,
    actor: &str,
    input: &AuthorizeRequest,
    outcome: Outcome,
    details: serde_json::Value,
) {
    let event = AuditEvent {
        at: state.clock.now(),
        actor: actor.to_owned(),
        action: format!("authorize:{}", input.action),
        target: input.resource.clone(),
        outcome,
        source_ip: super::request_info::client_ip(http).map(|ip| ip.to_string()),
        user_agent: http
            .headers()
            .get(actix_web::http::header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        details,
    };
    state.audit.record(event).await;
}
