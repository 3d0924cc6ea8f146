//! Readiness: whether each dependency this replica needs answers, checked at once and
//! each within a bound well under a second, so a load balancer learns of a dead or
//! hung database or cache quickly. A failed check says why in one line that names
//! where (`host:port`) and the underlying error, never a password.

use std::time::Duration;

use crate::cache::Cache;
use crate::store::Store;

/// How long each check may take in all (the database's includes its diagnosis).
pub const CHECK_TIMEOUT: Duration = Duration::from_millis(800);

/// One dependency's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check {
    Up,
    /// Not needed by this replica (the in-process cache has nothing to reach).
    None,
    /// Down, and why.
    Down(String),
}

impl Check {
    /// `up`, `down` or `none`.
    pub fn status(&self) -> &'static str {
        match self {
            Check::Up => "up",
            Check::None => "none",
            Check::Down(_) => "down",
        }
    }

    pub fn error(&self) -> Option<&str> {
        match self {
            Check::Down(why) => Some(why),
            _ => None,
        }
    }
}

/// Every dependency's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Readiness {
    pub database: Check,
    pub cache: Check,
}

impl Readiness {
    /// Ready when nothing this replica needs is down.
    pub fn is_ready(&self) -> bool {
        !matches!(self.database, Check::Down(_)) && !matches!(self.cache, Check::Down(_))
    }
}

/// Checks the database and the cache concurrently, each within `within`; a failure
/// is logged with its cause.
pub async fn check(store: &dyn Store, cache: &dyn Cache, within: Duration) -> Readiness {
    let (database, cache) = tokio::join!(check_database(store, within), check_cache(cache, within));
    for (name, check) in [("database", &database), ("cache", &cache)] {
        if let Some(why) = check.error() {
            tracing::warn!(dependency = name, error = %why, "readiness check failed");
        }
    }
    Readiness { database, cache }
}

async fn check_database(store: &dyn Store, within: Duration) -> Check {
    // Most of the budget for the pool; the rest to find out why it failed.
    let ping = within.mul_f64(0.6);
    match tokio::time::timeout(ping, store.ping()).await {
        Ok(Ok(())) => Check::Up,
        Ok(Err(crate::store::StoreError::Backend(
            error @ (sqlx::Error::Database(_) | sqlx::Error::Protocol(_)),
        ))) => Check::Down(format!("{}: {error}", store.target())),
        // The database circuit knows it is down, and why.
        Ok(Err(crate::store::StoreError::Unreachable { target, cause })) => {
            Check::Down(format!("{target}: {cause}"))
        }
        // Timed out (the pool waits for a connection it cannot open) or failed to
        // connect: one direct attempt names the root cause.
        Ok(Err(_)) | Err(_) => Check::Down(store.diagnose(within.saturating_sub(ping)).await),
    }
}

async fn check_cache(cache: &dyn Cache, within: Duration) -> Check {
    if !cache.is_shared() {
        return Check::None;
    }
    match tokio::time::timeout(within, cache.ping()).await {
        Ok(Ok(())) => Check::Up,
        Ok(Err(error)) => Check::Down(error.0),
        Err(_) => Check::Down(format!("{}: no answer within {within:?}", cache.location())),
    }
}
