//! Portal sessions: started at sign-in, found by the cookie's opaque random id, ended
//! at sign-out, by a change of the person's sign-in settings, or by an admin. They
//! live in the cache (shared by replicas) under a hash of the id, so whoever can read
//! the cache cannot use what it finds there; a per-person index (a cache set of those
//! hashes) lets an admin list and end one person's sessions.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::cache::{Cache, CacheError, digest};
use crate::clock::{Clock, Random};
use crate::idp::identity::Identity;
use crate::service::sign_in_settings;

const SESSION_PREFIX: &str = "portal-session";

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error(transparent)]
    Cache(#[from] CacheError),
}

/// A signed-in person's portal session, as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PortalSession {
    pub identity: Identity,
    pub csrf: String,
    /// The ID token of an OIDC sign-in, for `id_token_hint` at RP-initiated logout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
    /// When the person signed in (Unix seconds): a terminal sign-in approved from
    /// this session ends when this session would. 0 in sessions stored before.
    #[serde(default)]
    pub signed_in_at: i64,
    /// Since when (Unix milliseconds) this session stands for the user's current
    /// sign-in settings: set at sign-in and renewed when this session turns a second
    /// factor on or off. A session older than the user's settings-change marker is
    /// over. 0 in sessions stored before.
    #[serde(default)]
    pub valid_from_ms: i64,
}

impl PortalSession {
    /// When the person signed in (Unix seconds), never later than `now`: a terminal
    /// sign-in approved from this session lives no longer than it. Sessions stored
    /// before the field existed count from `now`.
    pub fn sign_in_time(&self, now: i64) -> i64 {
        if self.signed_in_at > 0 {
            self.signed_in_at.min(now)
        } else {
            now
        }
    }
}

/// One live session of a person, as an admin sees it: never the id itself (a bearer
/// credential), only its hash, which names the session for [`PortalSessions::end_listed`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SessionSummary {
    pub handle: String,
    pub signed_in_at: i64,
    pub expires_at: i64,
}

/// A newly started session: the id for the cookie, and the session.
pub struct Started {
    pub id: String,
    pub session: PortalSession,
}

pub struct PortalSessions {
    cache: Arc<dyn Cache>,
    clock: Clock,
    random: Random,
    ttl: Duration,
}

fn key_of_handle(handle: &str) -> String {
    format!("{SESSION_PREFIX}:{handle}")
}

/// The cache set of a person's session handles.
fn index_key(source_id: &str, user_name: &str) -> String {
    format!(
        "portal-sessions-of:{source_id}:{}",
        user_name.to_lowercase()
    )
}

impl PortalSessions {
    /// Sessions that last `ttl` from sign-in.
    pub fn new(cache: Arc<dyn Cache>, clock: Clock, random: Random, ttl: Duration) -> Self {
        Self {
            cache,
            clock,
            random,
            ttl,
        }
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    fn ttl_seconds(&self) -> i64 {
        i64::try_from(self.ttl.as_secs()).unwrap_or(i64::MAX)
    }

    /// Starts a session for `identity`. A session this browser had before
    /// (`replacing`) ends now, so its id (which may have leaked) stops working at once.
    pub async fn start(
        &self,
        identity: Identity,
        id_token: Option<String>,
        replacing: Option<&str>,
    ) -> Result<Started, SessionError> {
        if let Some(previous) = replacing {
            self.end(previous).await;
        }
        let now = self.clock.now();
        let session = PortalSession {
            identity,
            csrf: self.random.token(),
            id_token,
            signed_in_at: now.timestamp(),
            valid_from_ms: now.timestamp_millis(),
        };
        let id = self.random.token();
        self.store(&id, &session, self.ttl).await?;
        Ok(Started { id, session })
    }

    async fn store(
        &self,
        id: &str,
        session: &PortalSession,
        ttl: Duration,
    ) -> Result<(), SessionError> {
        let handle = digest(id);
        let stored = serde_json::to_vec(session).unwrap_or_default();
        self.cache
            .put(&key_of_handle(&handle), &stored, ttl)
            .await?;
        self.cache
            .set_add(
                &index_key(&session.identity.source_id, &session.identity.user_name),
                &handle,
                self.ttl,
            )
            .await?;
        Ok(())
    }

    /// The live session `id` names, if any (not ended by a change of the person's
    /// sign-in settings since). An unreadable cache reads as no session (fail closed),
    /// and says so in the log: the person is sent to sign in for that reason.
    pub async fn find(&self, id: &str) -> Option<PortalSession> {
        let unreadable = |error: CacheError| {
            tracing::warn!(%error, "portal session could not be read: treated as signed out");
        };
        let key = key_of_handle(&digest(id));
        let stored = self.cache.get(&key).await.map_err(unreadable).ok()??;
        let session: PortalSession = serde_json::from_slice(&stored).ok()?;
        if sign_in_settings::ended_by_settings_change(
            self.cache.as_ref(),
            &session.identity,
            session.signed_in_at,
            session.valid_from_ms,
        )
        .await
        .map_err(unreadable)
        .ok()?
        {
            let _ = self.cache.delete(&key).await;
            return None;
        }
        Some(session)
    }

    /// After the person's sign-in settings changed (a second factor turned on or
    /// off): ends every other portal session of theirs, on every replica, and every
    /// terminal sign-in approved until now (they ask
    /// [`sign_in_settings::ended_by_settings_change`]), and renews
    /// session `id` under a new id, returned. Its sign-in time, and so its end, stays.
    pub async fn end_others(
        &self,
        id: &str,
        mut session: PortalSession,
    ) -> Result<String, SessionError> {
        let now = self.clock.now();
        let now_ms = now.timestamp_millis();
        sign_in_settings::settings_changed(
            self.cache.as_ref(),
            &session.identity,
            now_ms,
            self.ttl,
        )
        .await?;
        session.valid_from_ms = now_ms;
        let ttl = self.ttl_seconds();
        let left = session
            .signed_in_at
            .saturating_add(ttl)
            .saturating_sub(now.timestamp())
            .clamp(1, ttl.max(1));
        let renewed = self.random.token();
        self.store(&renewed, &session, Duration::from_secs(left.unsigned_abs()))
            .await?;
        self.end(id).await;
        Ok(renewed)
    }

    /// Ends the session `id` on every replica (sign-out). Best effort: a session the
    /// cache cannot delete now still ends when it expires.
    pub async fn end(&self, id: &str) {
        let handle = digest(id);
        let key = key_of_handle(&handle);
        if let Ok(Some(stored)) = self.cache.get(&key).await
            && let Ok(session) = serde_json::from_slice::<PortalSession>(&stored)
        {
            let index = index_key(&session.identity.source_id, &session.identity.user_name);
            let _ = self.cache.set_remove(&index, &handle).await;
        }
        let _ = self.cache.delete(&key).await;
    }

    /// One person's live portal sessions, oldest sign-in first. Entries of sessions
    /// that ended are dropped from the index on the way.
    pub async fn list_for_user(
        &self,
        source_id: &str,
        user_name: &str,
    ) -> Result<Vec<SessionSummary>, SessionError> {
        let index = index_key(source_id, user_name);
        let mut live = Vec::new();
        for handle in self.cache.set_members(&index).await? {
            let session = match self.cache.get(&key_of_handle(&handle)).await? {
                Some(stored) => serde_json::from_slice::<PortalSession>(&stored).ok(),
                None => None,
            };
            let Some(session) = session.filter(|s| {
                s.identity.source_id == source_id
                    && s.identity.user_name.eq_ignore_ascii_case(user_name)
            }) else {
                self.cache.set_remove(&index, &handle).await?;
                continue;
            };
            live.push(SessionSummary {
                expires_at: session.signed_in_at.saturating_add(self.ttl_seconds()),
                signed_in_at: session.signed_in_at,
                handle,
            });
        }
        live.sort_by(|a, b| (a.signed_in_at, &a.handle).cmp(&(b.signed_in_at, &b.handle)));
        Ok(live)
    }

    /// Ends one listed session of the person; false when it was not theirs or is over.
    pub async fn end_listed(
        &self,
        source_id: &str,
        user_name: &str,
        handle: &str,
    ) -> Result<bool, SessionError> {
        let index = index_key(source_id, user_name);
        let listed = self.cache.set_members(&index).await?;
        if !listed.iter().any(|member| member == handle) {
            return Ok(false);
        }
        let existed = self.cache.get(&key_of_handle(handle)).await?.is_some();
        self.cache.delete(&key_of_handle(handle)).await?;
        self.cache.set_remove(&index, handle).await?;
        Ok(existed)
    }

    /// Gives every live portal session of the person `groups` (after an admin changed
    /// their directory groups), so group-based decisions such as admin access follow
    /// at once. Each session keeps its end. Returns how many were updated.
    pub async fn set_groups_for_user(
        &self,
        source_id: &str,
        user_name: &str,
        groups: &[String],
    ) -> Result<usize, SessionError> {
        let now = self.clock.now().timestamp();
        let ttl = self.ttl_seconds();
        let mut updated = 0;
        for live in self.list_for_user(source_id, user_name).await? {
            let key = key_of_handle(&live.handle);
            let Some(stored) = self.cache.get(&key).await? else {
                continue;
            };
            let Ok(mut session) = serde_json::from_slice::<PortalSession>(&stored) else {
                continue;
            };
            session.identity.groups = groups.to_vec();
            let left = session
                .signed_in_at
                .saturating_add(ttl)
                .saturating_sub(now)
                .clamp(1, ttl.max(1));
            let bytes = serde_json::to_vec(&session).unwrap_or_default();
            self.cache
                .put(&key, &bytes, Duration::from_secs(left.unsigned_abs()))
                .await?;
            updated += 1;
        }
        Ok(updated)
    }

    /// Ends every portal session of the person; returns how many were live.
    pub async fn end_all_for_user(
        &self,
        source_id: &str,
        user_name: &str,
    ) -> Result<usize, SessionError> {
        let live = self.list_for_user(source_id, user_name).await?;
        for session in &live {
            self.end_listed(source_id, user_name, &session.handle)
                .await?;
        }
        Ok(live.len())
    }
}
