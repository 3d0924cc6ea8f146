//! When a user's sign-in settings change (a second factor turned on or off), every
//! sign-in that stood for the old settings is over: the portal sessions and the
//! terminal sign-ins approved from them. One marker per user, in the cache, says
//! since when sign-ins count; portal sessions and the device service both read it.

use std::time::Duration;

use crate::cache::{Cache, CacheError};
use crate::idp::identity::Identity;

/// The cache key of the moment (Unix milliseconds) before which every sign-in of
/// this user is over.
fn valid_from_key(identity: &Identity) -> String {
    format!(
        "portal-sessions-valid-from:{}:{}",
        identity.source_id,
        identity.user_name.to_lowercase()
    )
}

/// Whether a sign-in of `identity` that began at `signed_in_at` (Unix seconds) and
/// stood for the user's sign-in settings since `valid_from_ms` (Unix milliseconds;
/// 0 if unknown) is over because those settings changed later. An unreadable marker
/// counts as a change (fail closed); a cache error is the caller's to refuse on.
pub async fn ended_by_settings_change(
    cache: &dyn Cache,
    identity: &Identity,
    signed_in_at: i64,
    valid_from_ms: i64,
) -> Result<bool, CacheError> {
    let Some(marker) = cache.get(&valid_from_key(identity)).await? else {
        return Ok(false);
    };
    let valid_from = std::str::from_utf8(&marker)
        .ok()
        .and_then(|text| text.parse::<i64>().ok())
        .unwrap_or(i64::MAX);
    let since = valid_from_ms.max(signed_in_at.saturating_mul(1000));
    Ok(since < valid_from)
}

/// Ends every sign-in of `identity` made before `now_ms` (Unix milliseconds). Sign-ins
/// last at most `sign_in_lifetime`; so does the marker.
pub async fn settings_changed(
    cache: &dyn Cache,
    identity: &Identity,
    now_ms: i64,
    sign_in_lifetime: Duration,
) -> Result<(), CacheError> {
    cache
        .put(
            &valid_from_key(identity),
            now_ms.to_string().as_bytes(),
            sign_in_lifetime,
        )
        .await
}
