//! The one audit writer: group commit. Requests hand their event to a background
//! task and wait for its acknowledgement; the task writes whatever events are
//! waiting (up to [`AUDIT_BATCH_LIMIT`]) in one transaction, then acknowledges each.
//! So concurrent requests share a commit, and a request's event is in the database
//! before its response leaves: a crash loses nothing a response admitted.
//!
//! With a spool ([`AuditLog::start_with_spool`]) nothing is lost while the database
//! is down either: events it cannot take are appended to the replica's spool file
//! (fsynced before the caller is acknowledged) and replayed in order, by key, when
//! it answers again. While the spool holds events, new ones join it behind them, so
//! the log keeps each replica's order.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use super::audit_spool::AuditSpool;
use crate::cache::{Cache, RateLimit};
use crate::clock::Stopwatch;
use crate::store::{
    AUDIT_BATCH_LIMIT, AuditEvent, AuditStore, KeyedAuditEvent, Outcome, StoreError,
};

/// While the spool holds events, how often the writer tries to replay them.
const REPLAY_EVERY: Duration = Duration::from_millis(500);
/// Groups replayed per turn at most, so new events do not wait behind a long
/// backlog for long.
const REPLAY_GROUPS_PER_TURN: usize = 8;

/// Events waiting for the writer; past this, callers wait for room (the writer
/// never waits for a caller, so a full queue only slows them down).
const QUEUE_CAPACITY: usize = 4 * AUDIT_BATCH_LIMIT;

#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// The database refused or failed the write; shared by every event of a group
    /// that failed for a reason other than its own contents.
    #[error("cannot write the audit event: {0}")]
    Store(Arc<StoreError>),
    /// The writer task is gone (its runtime is shutting down).
    #[error("the audit writer has stopped")]
    Stopped,
    #[error("the audit writer needs a Tokio runtime: {0}")]
    NoRuntime(#[from] tokio::runtime::TryCurrentError),
    /// The database could not take the event, so it is in the spool (durably) and
    /// will be written when the database answers: it has no id yet.
    #[error("the database is unavailable: the audit event is spooled and written when it returns")]
    Spooled,
    /// Neither the database nor the spool could take the event: it is lost.
    #[error("cannot spool the audit event: {0}")]
    Spool(Arc<std::io::Error>),
}

/// Where an event went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    /// In the database, with this id.
    Stored(i64),
    /// In the spool, written to the database when it answers again.
    Spooled,
}

/// The handle requests write through (cheap to clone; the task stops when the last
/// handle is dropped or its runtime stops).
#[derive(Clone)]
pub struct AuditLog {
    queue: mpsc::Sender<Pending>,
    /// Where refusals of anonymous requests are counted per client network.
    anonymous_budget: Option<Arc<dyn Cache>>,
    /// Where failed writes are counted.
    metrics: Option<Arc<crate::metrics::Metrics>>,
    /// Events in the spool not yet in the database (none without a spool).
    spooled: Arc<AtomicUsize>,
}

/// Refusals of anonymous requests that one client network may write to the audit
/// log per window; past it they are logged at debug level only, after one event
/// saying so, so an anonymous client cannot grow the database at will.
pub const ANONYMOUS_AUDIT: RateLimit = RateLimit {
    name: "audit-anonymous",
    max: 60,
    window: std::time::Duration::from_secs(15 * 60),
};

struct Pending {
    event: AuditEvent,
    written: oneshot::Sender<Result<Written, AuditError>>,
}

impl AuditLog {
    /// Starts the writer task on the current Tokio runtime, without a spool: an
    /// event the database cannot take is the caller's error.
    pub fn start(store: Arc<dyn AuditStore>) -> Result<Self, AuditError> {
        Self::spawn(store, None)
    }

    /// Starts the writer task with `spool` for what the database cannot take.
    pub fn start_with_spool(
        store: Arc<dyn AuditStore>,
        spool: AuditSpool,
    ) -> Result<Self, AuditError> {
        Self::spawn(store, Some(spool))
    }

    fn spawn(store: Arc<dyn AuditStore>, spool: Option<AuditSpool>) -> Result<Self, AuditError> {
        let runtime = tokio::runtime::Handle::try_current()?;
        let (queue, waiting) = mpsc::channel(QUEUE_CAPACITY);
        let spooled = spool
            .as_ref()
            .map_or_else(Arc::default, AuditSpool::backlog_gauge);
        runtime.spawn(write_groups(store, waiting, spool));
        Ok(Self {
            queue,
            anonymous_budget: None,
            metrics: None,
            spooled,
        })
    }

    /// This log with the same settings over a new writer with `spool`.
    pub fn restarted_with_spool(
        &self,
        store: Arc<dyn AuditStore>,
        spool: AuditSpool,
    ) -> Result<Self, AuditError> {
        let mut log = Self::start_with_spool(store, spool)?;
        log.anonymous_budget = self.anonymous_budget.clone();
        log.metrics = self.metrics.clone();
        Ok(log)
    }

    /// Events in the spool, not yet in the database.
    pub fn spooled(&self) -> usize {
        self.spooled.load(Ordering::Relaxed)
    }

    /// Counts refusals of anonymous requests in `cache` (see [`ANONYMOUS_AUDIT`]).
    pub fn with_anonymous_budget(mut self, cache: Arc<dyn Cache>) -> Self {
        self.anonymous_budget = Some(cache);
        self
    }

    /// Counts failed writes in `metrics`.
    pub fn with_metrics(mut self, metrics: Arc<crate::metrics::Metrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// Events waiting for the writer (not yet taken into a group).
    pub fn backlog(&self) -> usize {
        self.queue.max_capacity() - self.queue.capacity()
    }

    /// Appends `event` and returns its id once it is committed
    /// ([`AuditError::Spooled`] when it went to the spool instead).
    pub async fn append(&self, event: AuditEvent) -> Result<i64, AuditError> {
        match self.append_durably(event).await? {
            Written::Stored(id) => Ok(id),
            Written::Spooled => Err(AuditError::Spooled),
        }
    }

    /// Appends `event`: returns once it is committed, or durably spooled.
    pub async fn append_durably(&self, event: AuditEvent) -> Result<Written, AuditError> {
        let (written, acknowledged) = oneshot::channel();
        self.queue
            .send(Pending { event, written })
            .await
            .map_err(|_| AuditError::Stopped)?;
        acknowledged.await.map_err(|_| AuditError::Stopped)?
    }

    /// [`append_durably`](Self::append_durably) for handlers: a failed write is
    /// logged, and the request goes on (its answer does not depend on the audit log).
    pub async fn record(&self, event: AuditEvent) {
        if let Err(error) = self.append_durably(event).await {
            if let Some(metrics) = &self.metrics {
                metrics.audit_write_failed();
            }
            tracing::error!(%error, "cannot write audit event");
        }
    }

    /// [`record`](Self::record) for a refusal of an anonymous request from client
    /// network `network`, within the network's [`ANONYMOUS_AUDIT`] budget: the first
    /// event past it says that further ones go unrecorded until the window ends.
    pub async fn record_anonymous(&self, mut event: AuditEvent, network: &str) {
        // Without the counter the event is written: losing it would be worse.
        let count = match &self.anonymous_budget {
            Some(cache) => ANONYMOUS_AUDIT
                .count(cache.as_ref(), network)
                .await
                .unwrap_or_default(),
            None => 0,
        };
        if count <= ANONYMOUS_AUDIT.max {
            self.record(event).await;
        } else if count == ANONYMOUS_AUDIT.max + 1 {
            event.details = serde_json::json!({
                "reason": "too many refused anonymous requests from this network: further ones are not recorded until the window ends",
                "window_seconds": ANONYMOUS_AUDIT.window.as_secs(),
                "last_action": event.action,
            });
            event.actor = "anonymous".to_owned();
            event.action = "audit:Suppressed".to_owned();
            event.target = network.to_owned();
            event.outcome = Outcome::Denied;
            self.record(event).await;
        } else {
            tracing::debug!(%network, action = %event.action, "anonymous refusal not audited (over budget)");
        }
    }
}

/// The writer task: one group per turn, until every handle is gone; while the spool
/// holds events, a replay every [`REPLAY_EVERY`] too.
async fn write_groups(
    store: Arc<dyn AuditStore>,
    mut waiting: mpsc::Receiver<Pending>,
    mut spool: Option<AuditSpool>,
) {
    let mut group = Vec::with_capacity(AUDIT_BATCH_LIMIT);
    let mut since_replay = Stopwatch::start();
    loop {
        let backlog = spool.as_ref().is_some_and(|spool| spool.backlog() > 0);
        let closed = if backlog {
            matches!(
                tokio::time::timeout(
                    REPLAY_EVERY,
                    waiting.recv_many(&mut group, AUDIT_BATCH_LIMIT)
                )
                .await,
                Ok(0)
            )
        } else {
            waiting.recv_many(&mut group, AUDIT_BATCH_LIMIT).await == 0
        };
        if closed {
            break;
        }
        let taken = std::mem::take(&mut group);
        let arrived = !taken.is_empty();
        match spool.as_mut() {
            None => write_group(store.as_ref(), taken).await,
            Some(spool) => {
                if arrived {
                    write_or_spool(store.as_ref(), spool, taken).await;
                }
                if spool.backlog() > 0 && (!arrived || since_replay.elapsed() >= REPLAY_EVERY) {
                    replay(store.as_ref(), spool).await;
                    since_replay = Stopwatch::start();
                }
            }
        }
    }
}

/// Whether the database refused the statement because of what it holds (an event
/// it can never take), rather than because it could not be reached.
fn refused(error: &StoreError) -> bool {
    matches!(error, StoreError::Backend(sqlx::Error::Database(_))) && !error.is_unavailable()
}

async fn write_group(store: &dyn AuditStore, group: Vec<Pending>) {
    let (events, written): (Vec<_>, Vec<_>) = group
        .into_iter()
        .map(|pending| (pending.event, pending.written))
        .unzip();
    match store.append_audit_batch(&events).await {
        Ok(ids) => {
            for (written, id) in written.into_iter().zip(ids) {
                // The caller may have gone (client disconnected): the event stays.
                let _ = written.send(Ok(Written::Stored(id)));
            }
        }
        // The database refused the statement: maybe one event's contents, so each
        // is tried alone and only what cannot be written fails, as it would alone.
        Err(StoreError::Backend(sqlx::Error::Database(error))) if events.len() > 1 => {
            tracing::warn!(%error, events = events.len(), "audit group refused; writing its events one by one");
            for (event, written) in events.iter().zip(written) {
                let result = store
                    .append_audit(event)
                    .await
                    .map(Written::Stored)
                    .map_err(|error| AuditError::Store(Arc::new(error)));
                let _ = written.send(result);
            }
        }
        Err(error) => {
            let error = Arc::new(error);
            for written in written {
                let _ = written.send(Err(AuditError::Store(error.clone())));
            }
        }
    }
}

/// A group with a spool: written to the database when the spool is empty and the
/// database takes it; otherwise (and behind any spooled events) spooled.
async fn write_or_spool(store: &dyn AuditStore, spool: &mut AuditSpool, group: Vec<Pending>) {
    let (events, written): (Vec<_>, Vec<_>) = group
        .into_iter()
        .map(|pending| {
            (
                KeyedAuditEvent {
                    key: spool.key(),
                    event: pending.event,
                },
                pending.written,
            )
        })
        .unzip();
    if spool.backlog() == 0 {
        match store.append_audit_keyed(&events, false).await {
            Ok(ids) => {
                for (written, id) in written.into_iter().zip(ids) {
                    let _ = written.send(Ok(Written::Stored(id)));
                }
                return;
            }
            Err(error) if refused(&error) => {
                tracing::warn!(%error, events = events.len(), "audit group refused; writing its events one by one");
                for (event, written) in events.into_iter().zip(written) {
                    let result = match store
                        .append_audit_keyed(std::slice::from_ref(&event), false)
                        .await
                    {
                        Ok(ids) => Ok(Written::Stored(ids.first().copied().unwrap_or_default())),
                        Err(error) if refused(&error) => Err(AuditError::Store(Arc::new(error))),
                        Err(_) => spool_events(spool, std::slice::from_ref(&event))
                            .map_err(AuditError::Spool),
                    };
                    let _ = written.send(result);
                }
                return;
            }
            Err(error) => {
                tracing::warn!(%error, events = events.len(), spool = %spool.path().display(), "the database cannot take audit events: spooling them");
            }
        }
    }
    let result = spool_events(spool, &events);
    for written in written {
        let _ = written.send(match &result {
            Ok(done) => Ok(*done),
            Err(error) => Err(AuditError::Spool(error.clone())),
        });
    }
}

fn spool_events(
    spool: &mut AuditSpool,
    events: &[KeyedAuditEvent],
) -> Result<Written, Arc<std::io::Error>> {
    spool.append(events).map(|()| Written::Spooled).map_err(|error| {
        tracing::error!(%error, spool = %spool.path().display(), events = events.len(), "cannot spool audit events: they are lost");
        Arc::new(error)
    })
}

/// Writes spooled events to the database in spool order (a few groups per turn),
/// skipping any already there; stops at the first group the database cannot take.
async fn replay(store: &dyn AuditStore, spool: &mut AuditSpool) {
    for _ in 0..REPLAY_GROUPS_PER_TURN {
        let (events, end) = match spool.next_batch(AUDIT_BATCH_LIMIT) {
            Ok(next) => next,
            Err(error) => {
                tracing::error!(%error, spool = %spool.path().display(), "cannot read the audit spool");
                return;
            }
        };
        let done = match store.append_audit_keyed(&events, true).await {
            Ok(_) => events.len(),
            Err(error) if refused(&error) => {
                // One event the database will never take must not block the rest.
                for event in &events {
                    match store
                        .append_audit_keyed(std::slice::from_ref(event), true)
                        .await
                    {
                        Ok(_) => {}
                        Err(error) if refused(&error) => {
                            tracing::error!(%error, key = %event.key, action = %event.event.action, "the database refuses a spooled audit event: dropped");
                        }
                        Err(error) => {
                            tracing::debug!(%error, "audit spool replay waits for the database");
                            return;
                        }
                    }
                }
                events.len()
            }
            Err(error) => {
                tracing::debug!(%error, "audit spool replay waits for the database");
                return;
            }
        };
        if let Err(error) = spool.written(end, done) {
            tracing::error!(%error, spool = %spool.path().display(), "cannot truncate the audit spool (its events are skipped by key when replayed again)");
            return;
        }
        if done > 0 {
            tracing::info!(
                events = done,
                left = spool.backlog(),
                "spooled audit events written to the database"
            );
        }
        if spool.backlog() == 0 {
            return;
        }
    }
}
