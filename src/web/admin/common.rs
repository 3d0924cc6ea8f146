//! What every admin handler does the same way: names in paths that answer 404
//! when malformed, store "not found" turned into the handler's own 404 or 422, the
//! success audit of a change, list and creation answers, ending a person's
//! sign-ins, and the content ETags (`If-Match`) of entities without a version
//! counter.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse};
use serde::Serialize;
use serde_json::{Value, json};

use super::auth::Admin;
use super::error::AdminError;
use crate::iam::AccountId;
use crate::store::{Outcome, StoreError};
use crate::web::AppState;
use crate::web::audit::audit;

/// A name or id from the path: one that does not parse names nothing (404
/// `NOT_FOUND` with `missing`'s message), like one that parses but is not stored.
pub(super) fn named_in_path<T, E>(
    parsed: Result<T, E>,
    missing: impl FnOnce() -> String,
) -> Result<T, AdminError> {
    parsed.map_err(|_| AdminError::not_found("NOT_FOUND", missing()))
}

/// Store errors where "not found" is `missing` (a 404 naming the entity, or a 422
/// pointing at the field that named it); every other error as usual.
pub(super) fn when_not_found(
    missing: impl Fn() -> AdminError,
) -> impl Fn(StoreError) -> AdminError {
    move |error| match error {
        StoreError::NotFound { .. } => missing(),
        other => other.into(),
    }
}

/// Store errors where a conflict is 409 `CONFLICT` with `message` (given the
/// store's own); every other error as usual.
pub(super) fn when_conflict(
    message: impl Fn(String) -> String,
) -> impl Fn(StoreError) -> AdminError {
    move |error| match error {
        StoreError::Conflict(why) => AdminError::conflict("CONFLICT", message(why)),
        other => other.into(),
    }
}

/// Audits a change `admin` made successfully. The change is committed, so this
/// replica drops its cached IAM copies at once (the admin sees the change on the
/// next call); other replicas see it within `database.iam_cache_check_ms`.
pub(super) async fn audit_change(
    state: &AppState,
    request: &HttpRequest,
    admin: &Admin,
    action: &str,
    target: &str,
    details: Value,
) {
    state.sts.iam_cache().invalidate();
    audit(
        state,
        request,
        &admin.actor,
        action,
        target,
        Outcome::Success,
        details,
    )
    .await;
}

/// `{"<key>": [every item as shown]}`.
pub(super) fn listed<T, V: Serialize>(key: &str, items: &[T], view: impl Fn(&T) -> V) -> Value {
    json!({ key: items.iter().map(view).collect::<Vec<_>>() })
}

/// `{"account": <account>, "<key>": [every item as shown]}`.
pub(super) fn listed_in_account<T, V: Serialize>(
    account: &AccountId,
    key: &str,
    items: &[T],
    view: impl Fn(&T) -> V,
) -> Value {
    let mut body = listed(key, items, view);
    body["account"] = json!(account);
    body
}

/// Audits a creation with the entity `after` it and answers 201 with it and its
/// `Location` (`path` under the admin API).
pub(super) async fn created(
    state: &AppState,
    request: &HttpRequest,
    admin: &Admin,
    action: &str,
    target: &str,
    path: &str,
    after: Value,
) -> HttpResponse {
    audit_change(
        state,
        request,
        admin,
        action,
        target,
        json!({ "after": after }),
    )
    .await;
    HttpResponse::Created()
        .insert_header(("Location", format!("{}{path}", super::PREFIX)))
        .json(after)
}

/// Ends every portal session and terminal sign-in of a person: (portal, terminal).
pub(super) async fn end_sign_ins(
    state: &AppState,
    source: &str,
    user_name: &str,
) -> Result<(usize, usize), AdminError> {
    let portal = state
        .sessions
        .end_all_for_user(source, user_name)
        .await
        .map_err(AdminError::unavailable)?;
    let terminal = state
        .device
        .revoke_for_user(source, user_name, None)
        .await
        .map_err(AdminError::unavailable)?;
    Ok((portal, terminal))
}

/// The ETag of an entity without a version counter: a digest of everything stored
/// about it (a sealed secret included, so a new secret is a new version; a digest
/// reveals nothing of it).
pub(crate) fn content_etag(stored: &impl Serialize) -> String {
    let text = serde_json::to_string(stored).unwrap_or_default();
    format!("\"{}\"", crate::cache::digest(&text))
}

/// `response` with `etag` as its `ETag`.
pub(super) fn with_etag(mut response: HttpResponse, etag: &str) -> HttpResponse {
    if let Ok(value) = header::HeaderValue::from_str(etag) {
        response.headers_mut().insert(header::ETAG, value);
    }
    response
}

/// Optimistic concurrency for an entity whose current ETag is `current`: `true`
/// when `If-Match` names it (or is `*`), `false` without `If-Match` (the change
/// goes ahead unconditionally, as before ETags existed), 412 `PRECONDITION_FAILED`
/// when it names only other versions: someone saved `what` first.
pub(super) fn if_match(
    request: &HttpRequest,
    current: &str,
    what: &str,
) -> Result<bool, AdminError> {
    let Some(value) = request.headers().get(header::IF_MATCH) else {
        return Ok(false);
    };
    let named = value.to_str().unwrap_or_default();
    let matches = named.split(',').map(str::trim).any(|tag| {
        let tag = tag.strip_prefix("W/").unwrap_or(tag);
        tag == "*" || tag == current
    });
    if matches {
        Ok(true)
    } else {
        Err(AdminError::precondition_failed(format!(
            "{what} changed since you read it (it is at {current}); nothing was saved"
        )))
    }
}
