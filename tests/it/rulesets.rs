//! Mapping rules in the store: published versions and recent sign-ins, on SQLite and
//! PostgreSQL alike.

use rolegate::store::{NewRulesetVersion, RecentSignIn, StoreError};
use serde_json::json;

use crate::both_backends;
use crate::helpers::TestStore;

fn candidate(base: i64, rules: serde_json::Value) -> NewRulesetVersion {
    NewRulesetVersion {
        base,
        content_hash: format!("hash-{base}"),
        rules,
        published_by: "directory:alice".into(),
        restored_from: None,
        reason: None,
    }
}

async fn ruleset_versions_are_numbered_immutable_and_guarded(db: TestStore) {
    let store = &db.store;
    assert!(store.current_ruleset().await.unwrap().is_none());
    assert!(store.current_ruleset_head().await.unwrap().is_none());

    let first = store
        .publish_ruleset(&candidate(0, json!([{"id": "r-1"}])))
        .await
        .unwrap();
    assert_eq!(first.summary.version, 1);
    assert_eq!(first.rules, json!([{"id": "r-1"}]));

    // A change made against version 0 after version 1 is out: refused, not written.
    let stale = store
        .publish_ruleset(&candidate(0, json!([{"id": "lost"}])))
        .await;
    assert!(matches!(stale, Err(StoreError::Conflict(_))), "{stale:?}");

    db.hand.advance(std::time::Duration::from_secs(60));
    let second = store
        .publish_ruleset(&NewRulesetVersion {
            restored_from: Some(1),
            ..candidate(1, json!([{"id": "r-2"}]))
        })
        .await
        .unwrap();
    assert_eq!(second.summary.version, 2);
    assert!(second.summary.published_at > first.summary.published_at);

    let head = store.current_ruleset_head().await.unwrap().unwrap();
    assert_eq!((head.version, head.content_hash.as_str()), (2, "hash-1"));
    let listed = store.list_ruleset_versions().await.unwrap();
    assert_eq!(
        listed.iter().map(|v| v.version).collect::<Vec<_>>(),
        [2, 1],
        "newest first"
    );
    assert_eq!(listed[0].restored_from, Some(1));
    // Version 1 is unchanged by what came after.
    assert_eq!(
        store.get_ruleset_version(1).await.unwrap().rules,
        json!([{"id": "r-1"}])
    );
    assert!(matches!(
        store.get_ruleset_version(3).await,
        Err(StoreError::NotFound { .. })
    ));
}

async fn recent_sign_ins_keep_the_latest_per_person_within_retention(db: TestStore) {
    let store = &db.store;
    let sign_in = |subject: &str, groups: &[&str]| RecentSignIn {
        source_id: "corp".into(),
        subject: subject.into(),
        user_name: format!("user-{subject}"),
        identity: json!({ "groups": groups }),
        signed_in_at: store.clock().now(),
    };
    let day = chrono::Duration::days(1);
    store
        .record_sign_in(
            &sign_in("a", &["old"]),
            &["r-1".into()],
            store.clock().now() - day,
        )
        .await
        .unwrap();
    db.hand.advance(std::time::Duration::from_secs(3600));
    store
        .record_sign_in(
            &sign_in("a", &["new"]),
            &["r-1".into(), "r-2".into()],
            store.clock().now() - day,
        )
        .await
        .unwrap();
    store
        .record_sign_in(&sign_in("b", &[]), &[], store.clock().now() - day)
        .await
        .unwrap();
    // Each sign-in counted a hit for every rule that fired for it.
    let hits = store.rule_hits().await.unwrap();
    let counted: Vec<(&str, i64)> = hits.iter().map(|h| (h.rule_id.as_str(), h.hits)).collect();
    assert_eq!(counted, [("r-1", 2), ("r-2", 1)]);
    assert_eq!(hits[0].last_matched_at, store.clock().now());
    let recent = store.recent_sign_ins(10).await.unwrap();
    assert_eq!(recent.len(), 2, "one row per person");
    let a = recent.iter().find(|s| s.subject == "a").unwrap();
    assert_eq!(a.identity, json!({ "groups": ["new"] }));

    // Two days on, a new sign-in drops everyone older than the retention limit.
    db.hand
        .advance(std::time::Duration::from_secs(2 * 24 * 3600));
    store
        .record_sign_in(&sign_in("c", &[]), &[], store.clock().now() - day)
        .await
        .unwrap();
    let recent = store.recent_sign_ins(10).await.unwrap();
    assert_eq!(
        recent
            .iter()
            .map(|s| s.subject.as_str())
            .collect::<Vec<_>>(),
        ["c"]
    );
}

both_backends!(
    ruleset_versions_are_numbered_immutable_and_guarded,
    recent_sign_ins_keep_the_latest_per_person_within_retention,
);
