//! The audit writer (group commit) on a real store, both backends: concurrent events
//! share transactions and keep each caller's order, an event is readable as soon as
//! its append returns, a full queue only makes callers wait, a failing database is
//! each caller's error, and an event the database refuses takes no other with it.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::Poll;

use async_trait::async_trait;
use rolegate::service::audit::{AuditError, AuditLog};
use rolegate::store::{
    AuditEvent, AuditFilter, AuditRecord, AuditStore, KeyedAuditEvent, Outcome, Store, StoreResult,
};
use serde_json::json;

use crate::both_backends;
use crate::helpers::{TestStore, raw_execute};

/// The real store, noting the size of every group the writer hands it: one group
/// is one statement, so one transaction.
struct GroupCounter {
    store: Arc<dyn Store>,
    groups: Mutex<Vec<usize>>,
}

#[async_trait]
impl AuditStore for GroupCounter {
    async fn append_audit_batch(&self, events: &[AuditEvent]) -> StoreResult<Vec<i64>> {
        self.groups.lock().unwrap().push(events.len());
        self.store.append_audit_batch(events).await
    }

    async fn append_audit_keyed(
        &self,
        events: &[KeyedAuditEvent],
        skip_written: bool,
    ) -> StoreResult<Vec<i64>> {
        self.groups.lock().unwrap().push(events.len());
        self.store.append_audit_keyed(events, skip_written).await
    }

    async fn list_audit(
        &self,
        limit: i64,
        before_id: Option<i64>,
    ) -> StoreResult<Vec<AuditRecord>> {
        self.store.list_audit(limit, before_id).await
    }

    async fn list_audit_filtered(
        &self,
        filter: &AuditFilter,
        limit: i64,
    ) -> StoreResult<Vec<AuditRecord>> {
        self.store.list_audit_filtered(filter, limit).await
    }
}

fn event(db: &TestStore, actor: &str, n: usize) -> AuditEvent {
    AuditEvent {
        at: db.store.clock().now(),
        actor: actor.to_owned(),
        action: "sts:AssumeRole".into(),
        target: "arn:aws:iam::111122223333:role/Load".into(),
        outcome: Outcome::Success,
        source_ip: Some("127.0.0.1".into()),
        user_agent: Some("audit-test".into()),
        details: json!({ "n": n }),
    }
}

/// `count` appends of `actor`'s events at once, each in a task of its own.
fn spawn_appends(
    log: &AuditLog,
    db: &TestStore,
    actor: &str,
    count: usize,
) -> Vec<tokio::task::JoinHandle<Result<i64, AuditError>>> {
    (0..count)
        .map(|n| {
            let log = log.clone();
            let event = event(db, actor, n);
            tokio::spawn(async move { log.append(event).await })
        })
        .collect()
}

/// The whole audit log, oldest first.
async fn whole_log(store: &dyn Store) -> Vec<AuditRecord> {
    let mut all = Vec::new();
    let mut before = None;
    loop {
        let page = store.list_audit(1000, before).await.unwrap();
        let Some(last) = page.last() else { break };
        before = Some(last.id);
        all.extend(page);
    }
    all.reverse();
    all
}

async fn concurrent_events_share_transactions_and_keep_order(db: TestStore) {
    const CALLERS: usize = 32;
    const EACH: usize = 25;
    let counter = Arc::new(GroupCounter {
        store: db.store.clone(),
        groups: Mutex::default(),
    });
    let log = AuditLog::start(counter.clone()).unwrap();
    let callers: Vec<_> = (0..CALLERS)
        .map(|caller| {
            let log = log.clone();
            let events: Vec<_> = (0..EACH)
                .map(|n| event(&db, &format!("caller{caller}"), n))
                .collect();
            tokio::spawn(async move {
                let mut ids = Vec::new();
                for event in events {
                    ids.push(log.append(event).await.unwrap());
                }
                ids
            })
        })
        .collect();
    for caller in callers {
        let ids = caller.await.unwrap();
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
    }

    let groups = counter.groups.lock().unwrap().clone();
    assert_eq!(groups.iter().sum::<usize>(), CALLERS * EACH);
    assert!(
        groups.len() < CALLERS * EACH,
        "every event had its own transaction: {groups:?}"
    );
    let log = whole_log(db.store.as_ref()).await;
    assert_eq!(log.len(), CALLERS * EACH);
    for caller in 0..CALLERS {
        let actor = format!("caller{caller}");
        let order: Vec<_> = log
            .iter()
            .filter(|record| record.actor == actor)
            .map(|record| record.details["n"].as_u64().unwrap() as usize)
            .collect();
        assert_eq!(order, (0..EACH).collect::<Vec<_>>(), "{actor}");
    }
}

async fn an_event_is_readable_once_appended(db: TestStore) {
    let log = AuditLog::start(db.store.clone()).unwrap();
    for n in 0..3 {
        let id = log.append(event(&db, "alice", n)).await.unwrap();
        let newest = db.store.list_audit(1, None).await.unwrap();
        assert_eq!(newest[0].id, id);
        assert_eq!(newest[0].details["n"], n);
    }
    // The store's bounds still apply.
    let mut long = event(&db, &"x".repeat(10_000), 3);
    long.user_agent = Some("y".repeat(10_000));
    log.append(long).await.unwrap();
    let newest = &db.store.list_audit(1, None).await.unwrap()[0];
    assert_eq!(
        newest.actor.chars().count(),
        rolegate::store::AUDIT_TEXT_LIMIT + 1
    );
    assert!(newest.actor.ends_with('…'));
}

async fn a_full_queue_only_makes_callers_wait(db: TestStore) {
    // Far more at once than the queue holds (4 groups' worth).
    const EVENTS: usize = 20 * rolegate::store::AUDIT_BATCH_LIMIT;
    let log = AuditLog::start(db.store.clone()).unwrap();
    for append in spawn_appends(&log, &db, "crowd", EVENTS) {
        append.await.unwrap().unwrap();
    }
    assert_eq!(whole_log(db.store.as_ref()).await.len(), EVENTS);
}

async fn a_failed_database_is_the_callers_error(db: TestStore) {
    let log = AuditLog::start(db.store.clone()).unwrap();
    raw_execute(&db, "ALTER TABLE audit_events RENAME TO audit_events_away")
        .await
        .unwrap();
    let error = log.append(event(&db, "alice", 0)).await.unwrap_err();
    assert!(matches!(error, AuditError::Store(_)), "{error:?}");
    // A whole group fails the same way, each caller hearing of it.
    for append in spawn_appends(&log, &db, "bob", 10) {
        let result = append.await.unwrap();
        assert!(matches!(result, Err(AuditError::Store(_))), "{result:?}");
    }

    // The writer outlives the failure.
    raw_execute(&db, "ALTER TABLE audit_events_away RENAME TO audit_events")
        .await
        .unwrap();
    let id = log.append(event(&db, "carol", 0)).await.unwrap();
    let log = whole_log(db.store.as_ref()).await;
    assert_eq!(log.len(), 1);
    assert_eq!((log[0].id, log[0].actor.as_str()), (id, "carol"));
}

/// Starts one append per event without letting the writer run (on a current-thread
/// runtime it runs only when the test awaits something pending): they all wait in
/// the queue when the writer next looks.
async fn queue_all(
    log: &AuditLog,
    events: Vec<AuditEvent>,
) -> Vec<Pin<Box<impl Future<Output = Result<i64, AuditError>> + '_>>> {
    let mut appends = Vec::new();
    for event in events {
        let mut append = Box::pin(log.append(event));
        std::future::poll_fn(|cx| {
            assert!(append.as_mut().poll(cx).is_pending(), "written at once");
            Poll::Ready(())
        })
        .await;
        appends.push(append);
    }
    appends
}

async fn waiting_events_are_one_transaction(db: TestStore) {
    let counter = Arc::new(GroupCounter {
        store: db.store.clone(),
        groups: Mutex::default(),
    });
    let log = AuditLog::start(counter.clone()).unwrap();
    let events = (0..40).map(|n| event(&db, "queued", n)).collect();
    let mut ids = Vec::new();
    for append in queue_all(&log, events).await {
        ids.push(append.await.unwrap());
    }
    assert_eq!(*counter.groups.lock().unwrap(), [40]);
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
    let written = whole_log(db.store.as_ref()).await;
    let order: Vec<_> = written
        .iter()
        .map(|record| record.details["n"].clone())
        .collect();
    assert_eq!(order, (0..40).map(|n| json!(n)).collect::<Vec<_>>());
}

async fn an_unwritable_event_fails_alone(db: TestStore) {
    // PostgreSQL refuses NUL in text (SQLite keeps it): the group it is in is then
    // written event by event, and only its own caller hears of it.
    let counter = Arc::new(GroupCounter {
        store: db.store.clone(),
        groups: Mutex::default(),
    });
    let log = AuditLog::start(counter.clone()).unwrap();
    let events = (0..40)
        .map(|n| event(&db, if n == 20 { "nul\0actor" } else { "fine" }, n))
        .collect();
    let mut refused = Vec::new();
    for (n, append) in queue_all(&log, events).await.into_iter().enumerate() {
        if append.await.is_err() {
            refused.push(n);
        }
    }
    let postgres = db.url.starts_with("postgres");
    let written = whole_log(db.store.as_ref()).await;
    if postgres {
        assert_eq!(refused, [20]);
        assert_eq!(written.len(), 39);
        let mut groups = vec![40];
        groups.extend([1; 40]);
        assert_eq!(*counter.groups.lock().unwrap(), groups);
    } else {
        assert_eq!(refused, [] as [usize; 0]);
        assert_eq!(written.len(), 40);
    }
}

/// `both_backends!` on a current-thread runtime, where the writer task runs only
/// when the test waits.
macro_rules! both_backends_one_thread {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "current_thread")]
                async fn sqlite() {
                    super::$name($crate::helpers::sqlite_store().await).await
                }
                #[tokio::test(flavor = "current_thread")]
                async fn postgres() {
                    super::$name($crate::helpers::postgres_store().await).await
                }
            }
        )*
    };
}

both_backends_one_thread!(
    waiting_events_are_one_transaction,
    an_unwritable_event_fails_alone
);

both_backends!(
    concurrent_events_share_transactions_and_keep_order,
    an_event_is_readable_once_appended,
    a_full_queue_only_makes_callers_wait,
    a_failed_database_is_the_callers_error,
);

/// The writer lives on the runtime that started it: when that runtime stops, the
/// writer is gone and callers elsewhere are told so (no panic, no hang).
#[test]
fn a_stopped_runtime_stops_the_writer_cleanly() {
    let runtime = || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    };
    let callers = runtime();
    let db = callers.block_on(crate::helpers::sqlite_store());
    assert!(matches!(
        AuditLog::start(db.store.clone()),
        Err(AuditError::NoRuntime(_))
    ));
    let writers = runtime();
    let log = {
        let _inside = writers.enter();
        AuditLog::start(db.store.clone()).unwrap()
    };
    writers
        .block_on(log.append(event(&db, "before", 0)))
        .unwrap();
    drop(writers);
    let error = callers
        .block_on(log.append(event(&db, "after", 0)))
        .unwrap_err();
    assert!(matches!(error, AuditError::Stopped), "{error:?}");
}
