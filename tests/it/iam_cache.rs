//! The STS's in-process copies of access keys, roles and policies (`IamCache`):
//! a change made anywhere (another replica's admin API, SQL typed by hand) stops
//! working on a replica that holds a copy within `database.iam_cache_check_ms`, on
//! that replica's clock, which the tests move instead of sleeping; the replica
//! that made the change through its admin API sees it at once. The database's
//! triggers move the IAM generation for every table the copies are read from.

use std::collections::BTreeSet;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use rolegate::iam::{AccountId, RoleName};
use rolegate::seed;
use rolegate::store::{self, IamCacheSettings};
use serde_json::json;

use crate::admin_client::{Api, with_admins};
use crate::both_backends;
use crate::helpers::{
    TestStore, app_state, postgres_store, raw_execute, signed_sts_call, spawn_state,
    test_store_options,
};

const ACCOUNT: &str = seed::DEMO_ACCOUNT_ID;

/// A bound much longer than any test step takes in real time, so that only moving
/// the clock crosses it; the copies' age limit longer still, so that only the
/// generation can explain a refusal.
const SLOW: IamCacheSettings = IamCacheSettings {
    ttl: Duration::from_secs(3_600),
    check_interval: Duration::from_secs(60),
};

const IDENTITY: [(&str, &str); 2] = [("Action", "GetCallerIdentity"), ("Version", "2011-06-15")];

fn assume_role() -> [(&'static str, String); 4] {
    [
        ("Action", "AssumeRole".to_owned()),
        ("Version", "2011-06-15".to_owned()),
        (
            "RoleArn",
            format!("arn:aws:iam::{ACCOUNT}:role/{}", seed::WORKLOAD_ROLE),
        ),
        ("RoleSessionName", "cache-test".to_owned()),
    ]
}

async fn call(base: &str, keys: (&str, &str), params: &[(&str, String)]) -> (u16, String) {
    let params: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
    signed_sts_call(base, (keys.0, keys.1, None), &params).await
}

async fn identity(base: &str, keys: (&str, &str)) -> (u16, String) {
    signed_sts_call(base, (keys.0, keys.1, None), &IDENTITY).await
}

/// Seeds the demo and its workload keys through `state`.
async fn seeded_keys(state: &rolegate::web::AppState) -> (String, String) {
    let mut report = seed::seed_demo(state.store.as_ref()).await.unwrap();
    seed::seed_workload(state.store.as_ref(), &state.sts, &mut report, None)
        .await
        .unwrap()
        .expect("new keys")
}

/// Two replicas on one PostgreSQL database, each with its own clock. Replica B
/// serves from its copies; replica A's admin API deactivates the key and changes
/// the role's trust policy. A refuses at once; B keeps its copies until its clock
/// passes the check interval, then refuses too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_on_one_replica_reaches_the_other_within_the_check_interval() {
    let db = postgres_store().await;
    let state_a = with_admins(app_state(db.store.clone()).await);
    let (key_id, secret) = seeded_keys(&state_a).await;
    let keys = (key_id.as_str(), secret.as_str());
    let api = Api::serve(state_a).await;

    let (options_b, hand_b) = test_store_options();
    let store_b = store::open(&db.url, &options_b).await.unwrap();
    let state_b = app_state(store_b).await;
    state_b.sts.iam_cache().configure(SLOW);
    let b = spawn_state(state_b.clone());

    // B reads the key, the user's policies and the role, and keeps them.
    let (status, body) = call(&b, keys, &assume_role()).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = identity(&b, keys).await;
    assert_eq!(status, 200, "{body}");
    assert!(state_b.sts.iam_cache().held() >= 3);

    // A's admin API: the role now trusts someone else.
    let role = format!("/accounts/{ACCOUNT}/roles/{}", seed::WORKLOAD_ROLE);
    let replaced = api
        .call(
            Method::PUT,
            &role,
            Some(
                json!({"trust_policy": {"Version": "2012-10-17", "Statement": [{
                "Effect": "Allow",
                "Principal": {"AWS": format!("arn:aws:iam::{ACCOUNT}:user/someone-else")},
                "Action": "sts:AssumeRole"}]}}),
            ),
        )
        .await;
    assert_eq!(replaced.status, StatusCode::OK, "{}", replaced.body);
    // A made the change: A refuses at once.
    let (status, body) = call(&api.base, keys, &assume_role()).await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("AccessDenied"), "{body}");
    // B still serves its copy of the old trust policy within the bound ...
    let (status, body) = call(&b, keys, &assume_role()).await;
    assert_eq!(status, 200, "B within the bound: {body}");
    // ... and refuses once its clock passes it.
    hand_b.advance(SLOW.check_interval);
    let (status, body) = call(&b, keys, &assume_role()).await;
    assert_eq!(status, 403, "B past the bound: {body}");
    assert!(body.contains("AccessDenied"), "{body}");

    // A's admin API deactivates the key.
    let key = format!(
        "/accounts/{ACCOUNT}/iam-users/{}/access-keys/{key_id}",
        seed::WORKLOAD_USER
    );
    let inactive = api
        .call(Method::PUT, &key, Some(json!({"status": "Inactive"})))
        .await;
    assert_eq!(inactive.status, StatusCode::OK, "{}", inactive.body);
    let (status, body) = identity(&api.base, keys).await;
    assert_eq!(status, 403, "A at once: {body}");
    assert!(body.contains("InvalidClientTokenId"), "{body}");
    let (status, body) = identity(&b, keys).await;
    assert_eq!(status, 200, "B within the bound: {body}");
    hand_b.advance(SLOW.check_interval);
    let (status, body) = identity(&b, keys).await;
    assert_eq!(status, 403, "B past the bound: {body}");
    assert!(body.contains("InvalidClientTokenId"), "{body}");

    // Deleted on A: B still refuses after the next look (no copy comes back).
    let deleted = api.call(Method::DELETE, &key, None).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{}", deleted.body);
    hand_b.advance(SLOW.check_interval);
    let (status, _) = identity(&b, keys).await;
    assert_eq!(status, 403);
}

/// A write that bypasses Rolegate altogether (SQL by hand) still moves the
/// generation, in both directions, and the default bound is one second.
async fn iam_cache_sees_writes_made_past_rolegate(db: TestStore) {
    assert_eq!(
        IamCacheSettings::default(),
        IamCacheSettings {
            ttl: Duration::from_secs(30),
            check_interval: Duration::from_millis(1_000),
        }
    );
    let state = app_state(db.store.clone()).await;
    let (key_id, secret) = seeded_keys(&state).await;
    let keys = (key_id.as_str(), secret.as_str());
    state.sts.iam_cache().configure(SLOW);
    let base = spawn_state(state.clone());

    let before = db.store.iam_generation().await.unwrap();
    let (status, body) = identity(&base, keys).await;
    assert_eq!(status, 200, "{body}");

    let set_status = |status: &str| {
        format!("UPDATE access_keys SET status = '{status}' WHERE access_key_id = '{key_id}'")
    };
    raw_execute(&db, &set_status("Inactive")).await.unwrap();
    assert!(db.store.iam_generation().await.unwrap() > before);
    let (status, _) = identity(&base, keys).await;
    assert_eq!(status, 200, "the copy is served within the bound");
    db.hand.advance(SLOW.check_interval);
    let (status, body) = identity(&base, keys).await;
    assert_eq!(status, 403, "{body}");

    raw_execute(&db, &set_status("Active")).await.unwrap();
    db.hand.advance(SLOW.check_interval);
    let (status, body) = identity(&base, keys).await;
    assert_eq!(status, 200, "{body}");

    // A role's sessions revoked by hand: a chained AssumeRole from a session of it
    // reads the role's permissions through the cache too.
    let account = AccountId::parse(ACCOUNT).unwrap();
    let role = RoleName::parse(seed::WORKLOAD_ROLE).unwrap();
    let generation = db.store.iam_generation().await.unwrap();
    db.store
        .revoke_role_sessions(&account, &role, db.store.clock().now())
        .await
        .unwrap();
    assert!(db.store.iam_generation().await.unwrap() > generation);

    // Caching off: every read goes to the store.
    state.sts.iam_cache().configure(IamCacheSettings {
        ttl: Duration::ZERO,
        check_interval: Duration::ZERO,
    });
    raw_execute(&db, &set_status("Inactive")).await.unwrap();
    let (status, _) = identity(&base, keys).await;
    assert_eq!(status, 403);
    assert_eq!(state.sts.iam_cache().held(), 0);
}

/// Every table is either one the copies are read from (and moves the generation by
/// trigger) or named here as one they are not: a new table must choose.
async fn iam_generation_triggers_cover_the_cached_tables(db: TestStore) {
    const CACHED: &[&str] = &[
        "access_keys",
        "accounts",
        "iam_user_inline_policies",
        "iam_user_policy_attachments",
        "iam_users",
        "managed_policies",
        "oidc_providers",
        "policy_versions",
        "role_inline_policies",
        "role_policy_attachments",
        "roles",
    ];
    const NOT_CACHED: &[&str] = &[
        "_sqlx_migrations",
        "admin_tokens",
        "audit_events",
        "group_members",
        "iam_generation",
        "identity_sources",
        "mapping_rule_hits",
        "recent_sign_ins",
        "ruleset_versions",
        "saml_providers",
        "token_keys",
        "user_groups",
        "users",
    ];
    let (tables, triggered) = schema(&db).await;
    let known: BTreeSet<String> = CACHED
        .iter()
        .chain(NOT_CACHED)
        .map(|t| (*t).to_owned())
        .collect();
    let unknown: Vec<_> = tables.difference(&known).collect();
    assert!(
        unknown.is_empty(),
        "tables {unknown:?}: add an IAM generation trigger (a migration) if STS reads them through the cache, or list them in NOT_CACHED"
    );
    let cached: BTreeSet<String> = CACHED.iter().map(|t| (*t).to_owned()).collect();
    assert_eq!(triggered, cached);
}

/// (every table, tables with an IAM generation trigger).
async fn schema(db: &TestStore) -> (BTreeSet<String>, BTreeSet<String>) {
    use sqlx::Connection;
    if db.url.starts_with("sqlite:") {
        let mut conn = sqlx::SqliteConnection::connect(&db.url).await.unwrap();
        let tables: Vec<String> = sqlx::query_scalar(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name <> 'sqlite_sequence'",
        )
        .fetch_all(&mut conn)
        .await
        .unwrap();
        let triggered: Vec<String> = sqlx::query_scalar(
            "SELECT tbl_name FROM sqlite_master WHERE type = 'trigger' AND name LIKE '%iam_generation%'",
        )
        .fetch_all(&mut conn)
        .await
        .unwrap();
        // Each table needs all three (insert, update, delete).
        for table in &triggered {
            let count = triggered.iter().filter(|t| *t == table).count();
            assert_eq!(count, 3, "{table} has {count} of 3 triggers");
        }
        (
            tables.into_iter().collect(),
            triggered.into_iter().collect(),
        )
    } else {
        let mut conn = sqlx::PgConnection::connect(&db.url).await.unwrap();
        let tables: Vec<String> = sqlx::query_scalar(
            "SELECT table_name::text FROM information_schema.tables WHERE table_schema = 'public'",
        )
        .fetch_all(&mut conn)
        .await
        .unwrap();
        let triggered: Vec<String> = sqlx::query_scalar(
            "SELECT c.relname::text FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid \
             WHERE t.tgname LIKE '%iam_generation' AND NOT t.tgisinternal \
             AND (t.tgtype & 4) <> 0 AND (t.tgtype & 8) <> 0 AND (t.tgtype & 16) <> 0",
        )
        .fetch_all(&mut conn)
        .await
        .unwrap();
        (
            tables.into_iter().collect(),
            triggered.into_iter().collect(),
        )
    }
}

both_backends!(
    iam_cache_sees_writes_made_past_rolegate,
    iam_generation_triggers_cover_the_cached_tables
);
