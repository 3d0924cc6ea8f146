//! The one audit writer: group commit. Requests hand their event to a background
//! task and wait for its acknowledgement; the task writes whatever events are
//! waiting (up to [`AUDIT_BATCH_LIMIT`]) in one transaction, then acknowledges each.
//! So concurrent requests share a commit, and a request's event is in the database
//! before its response leaves: a crash loses nothing a response admitted.

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use crate::cache::{Cache, RateLimit};
use crate::store::{AUDIT_BATCH_LIMIT, AuditEvent, AuditStore, Outcome, StoreError};

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
    written: oneshot::Sender<Result<i64, AuditError>>,
}

impl AuditLog {
    /// Starts the writer task on the current Tokio runtime.
    pub fn start(store: Arc<dyn AuditStore>) -> Result<Self, AuditError> {
        let runtime = tokio::runtime::Handle::try_current()?;
        let (queue, waiting) = mpsc::channel(QUEUE_CAPACITY);
        runtime.spawn(write_groups(store, waiting));
        Ok(Self {
            queue,
            anonymous_budget: None,
            metrics: None,
        })
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

    /// Appends `event` and returns its id once it is committed.
    pub async fn append(&self, event: AuditEvent) -> Result<i64, AuditError> {
        let (written, acknowledged) = oneshot::channel();
        self.queue
            .send(Pending { event, written })
            .await
            .map_err(|_| AuditError::Stopped)?;
        acknowledged.await.map_err(|_| AuditError::Stopped)?
    }

    /// [`append`](Self::append) for handlers: a failed write is logged, and the
    /// request goes on (its answer does not depend on the audit log).
    pub async fn record(&self, event: AuditEvent) {
        if let Err(error) = self.append(event).await {
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

/// The writer task: one group per turn, until every handle is gone.
async fn write_groups(store: Arc<dyn AuditStore>, mut waiting: mpsc::Receiver<Pending>) {
    let mut group = Vec::with_capacity(AUDIT_BATCH_LIMIT);
    while waiting.recv_many(&mut group, AUDIT_BATCH_LIMIT).await > 0 {
        write_group(store.as_ref(), std::mem::take(&mut group)).await;
    }
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
                let _ = written.send(Ok(id));
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
