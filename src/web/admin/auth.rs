//! Who calls the admin API: [`AdminRead`] and [`AdminWrite`] extract the [`Admin`]
//! behind a request, from an admin API token (`Authorization: Bearer rgat_...`) or
//! the portal session (cookie `rg_session`, with the session's CSRF token in
//! `X-CSRF-Token` on writes). A session's person must be an admin (`[admin] groups`)
//! on every request. A token acts for the admin who created it, until it expires or
//! is revoked, even if that person stops being an admin. Failed authentications
//! are audited (`admin:Authenticate`).

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, web};
use serde_json::json;

use super::error::AdminError;
use crate::idp::identity::Identity;
use crate::secrets::same_secret;
use crate::service::admin_access::{AdminAccess, AdminAccessError, person_actor};
use crate::store::Outcome;
use crate::web::AppState;
use crate::web::audit::{audit, audit_anonymous};

pub use crate::store::AdminScope as Scope;

/// The header a portal session's writes carry its CSRF token in.
pub const CSRF_HEADER: &str = "X-CSRF-Token";
const AUTH_ACTION: &str = "admin:Authenticate";

/// How the admin authenticated.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", content = "token_id", rename_all = "lowercase")]
pub enum Via {
    Session,
    /// An API token, by id.
    Token(String),
}

/// An authenticated admin.
#[derive(Debug, Clone)]
pub struct Admin {
    /// The audit actor: `directory:alice`, or `token:<id> (<creator>)`.
    pub actor: String,
    /// The signed-in person (sessions only).
    pub identity: Option<Identity>,
    pub scope: Scope,
    pub via: Via,
}

impl Admin {
    /// Whether `identity` is an admin under the configured groups (for guards that
    /// ask whether a change would lock an admin out).
    pub fn is_admin_identity(access: &AdminAccess, identity: &Identity) -> bool {
        access.is_admin(identity)
    }
}

/// An admin with `read` or `write` scope (every GET).
pub struct AdminRead(pub Admin);

/// An admin with `write` scope; a session must send its CSRF token.
pub struct AdminWrite(pub Admin);

type Extracted<T> = Pin<Box<dyn Future<Output = Result<T, AdminError>>>>;

/// Both extractors: authenticate for a read (`false`) or a write (`true`).
macro_rules! admin_extractor {
    ($extractor:ident, $write:expr) => {
        impl FromRequest for $extractor {
            type Error = AdminError;
            type Future = Extracted<Self>;

            fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
                let request = request.clone();
                Box::pin(async move { authenticate(&request, $write).await.map($extractor) })
            }
        }
    };
}

admin_extractor!(AdminRead, false);
admin_extractor!(AdminWrite, true);

fn state_of(request: &HttpRequest) -> Result<web::Data<AppState>, AdminError> {
    request
        .app_data::<web::Data<AppState>>()
        .cloned()
        .ok_or_else(|| AdminError::internal("the admin API has no application state"))
}

/// What the request's path is, for the audit event's target.
fn target(request: &HttpRequest) -> String {
    format!("{} {}", request.method(), request.path())
}

async fn authenticate(request: &HttpRequest, write: bool) -> Result<Admin, AdminError> {
    let state = state_of(request)?;
    match request.headers().get(header::AUTHORIZATION) {
        Some(value) => by_token(&state, request, value, write).await,
        None => by_session(&state, request, write).await,
    }
}

async fn by_token(
    state: &AppState,
    request: &HttpRequest,
    value: &header::HeaderValue,
    write: bool,
) -> Result<Admin, AdminError> {
    let bearer = value
        .to_str()
        .ok()
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim);
    let Some(bearer) = bearer else {
        return Err(refused(
            state,
            request,
            "the Authorization header is not Bearer",
            None,
        )
        .await);
    };
    let token = match state.admin.authenticate(bearer).await {
        Ok(token) => token,
        Err(AdminAccessError::Rejected { reason, token_id }) => {
            return Err(refused(state, request, reason, token_id).await);
        }
        Err(error) => return Err(error.into()),
    };
    let actor = format!("token:{} ({})", token.id, token.created_by);
    if write && !token.scope.can_write() {
        return Err(denied(
            state,
            request,
            &actor,
            json!({ "reason": "read-scoped token used for a write", "token_id": token.id }),
            "INSUFFICIENT_SCOPE",
            "This API token has read scope; this request needs a write-scoped token.",
        )
        .await);
    }
    Ok(Admin {
        actor,
        identity: None,
        scope: token.scope,
        via: Via::Token(token.id),
    })
}

/// Audits an anonymous refusal (within the client network's budget): 401.
async fn refused(
    state: &AppState,
    request: &HttpRequest,
    reason: &str,
    token_id: Option<String>,
) -> AdminError {
    let mut details = json!({ "reason": reason });
    if let Some(id) = token_id {
        details["token_id"] = json!(id);
    }
    audit_anonymous(
        state,
        request,
        "anonymous",
        AUTH_ACTION,
        &target(request),
        Outcome::Failure,
        details,
    )
    .await;
    AdminError::unauthenticated()
}

/// Audits a known caller's refusal: 403 with `code` and `message`.
async fn denied(
    state: &AppState,
    request: &HttpRequest,
    actor: &str,
    details: serde_json::Value,
    code: &'static str,
    message: &'static str,
) -> AdminError {
    audit(
        state,
        request,
        actor,
        AUTH_ACTION,
        &target(request),
        Outcome::Denied,
        details,
    )
    .await;
    AdminError::forbidden(code, message)
}

async fn by_session(
    state: &AppState,
    request: &HttpRequest,
    write: bool,
) -> Result<Admin, AdminError> {
    let Some((_, session)) = crate::web::session::session(state, request).await else {
        return Err(refused(
            state,
            request,
            "no credentials (no session, no token)",
            None,
        )
        .await);
    };
    let identity = session.identity;
    let actor = person_actor(&identity);
    if !state.admin.is_admin(&identity) {
        return Err(denied(
            state,
            request,
            &actor,
            json!({ "reason": "not a member of an admin group", "groups": identity.groups }),
            "NOT_AN_ADMIN",
            "You are signed in, but not as a member of an admin group ([admin] groups).",
        )
        .await);
    }
    if write {
        let sent = request
            .headers()
            .get(CSRF_HEADER)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if !same_secret(sent, &session.csrf) {
            return Err(denied(
                state,
                request,
                &actor,
                json!({ "reason": "missing or wrong CSRF token" }),
                "CSRF_TOKEN_INVALID",
                "Changes made with a portal session need the session's CSRF token in the X-CSRF-Token header (GET /admin/api/v1/whoami returns it).",
            )
            .await);
        }
    }
    Ok(Admin {
        actor,
        identity: Some(identity),
        scope: Scope::Write,
        via: Via::Session,
    })
}

/// The CSRF token of the request's portal session, for `whoami`.
pub(crate) async fn session_csrf(request: &HttpRequest) -> Option<String> {
    let state = state_of(request).ok()?;
    crate::web::session::session(&state, request)
        .await
        .map(|(_, session)| session.csrf)
}
