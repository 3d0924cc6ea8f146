//! The end of an admin's test sign-in, whatever the source's protocol: what the
//! source sent is kept once for that admin (only they can read it: the result page
//! checks), the completion is audited, no session starts, and the browser goes to
//! the result page.

use actix_web::{HttpRequest, HttpResponse};
use serde_json::{Map, Value, json};

use super::AppState;
use super::audit::audit;
use super::page::{path_segment, redirect};
use crate::idp::identity::Identity;
use crate::service::sign_in_test::{self, TEST_ACTION, TestResult};
use crate::store::Outcome;

/// Keeps the result for `admin` and answers the redirect to its page; the error is
/// the cache's, for the caller's own "unavailable" error.
pub(crate) async fn complete(
    state: &AppState,
    request: &HttpRequest,
    admin: &str,
    source_id: &str,
    method: &str,
    identity: Identity,
    claims: Map<String, Value>,
) -> Result<HttpResponse, String> {
    let result = TestResult {
        source_id: source_id.to_owned(),
        admin: admin.to_owned(),
        identity,
        claims,
        at: state.clock.timestamp(),
    };
    let reference = sign_in_test::keep(state.cache.as_ref(), &state.random, &result)
        .await
        .map_err(|e| e.to_string())?;
    audit(
        state,
        request,
        admin,
        TEST_ACTION,
        source_id,
        Outcome::Success,
        json!({
            "stage": "completed",
            "method": method,
            "subject": result.identity.subject,
            "user_name": result.identity.user_name,
            "groups": result.identity.groups,
            "claims": result.claims.keys().collect::<Vec<_>>(),
        }),
    )
    .await;
    Ok(redirect(&format!(
        "/admin/identity-sources/{}/test-result?result={}",
        path_segment(source_id),
        path_segment(&reference)
    )))
}
