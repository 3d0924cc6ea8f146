//! Sign-in against the built-in directory, on SQLite and PostgreSQL: argon2id
//! passwords, one answer for every kind of failure, and lock-out kept in the cache.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use rolegate::cache::{Cache, MemoryCache};
use rolegate::iam::{GroupName, UserName};
use rolegate::idp::directory::{
    DirectoryAuth, LockoutPolicy, SignInError, hash_password, verify_password,
};
use rolegate::store::{IdentitySourceKind, NewGroup, NewIdentitySource, NewUser, StoreError};
use serde_json::json;

use crate::both_backends;
use crate::cache::{redis_cache, remove_prefix, unique_prefix};
use crate::helpers::TestStore;

const SOURCE: &str = "corp";
/// The client network of the attempts (lock-outs are per name and network).
const NET: &str = "192.0.2.10";
const ALICE_PASSWORD: &str = "correct horse battery staple";

fn name(value: &str) -> UserName {
    UserName::parse(value).unwrap()
}

async fn raw_execute(db: &TestStore, sql: &str) {
    use sqlx::Connection;
    if db.url.starts_with("sqlite:") {
        let mut conn = sqlx::SqliteConnection::connect(&db.url).await.unwrap();
        sqlx::query(sql).execute(&mut conn).await.unwrap();
    } else {
        let mut conn = sqlx::PgConnection::connect(&db.url).await.unwrap();
        sqlx::query(sql).execute(&mut conn).await.unwrap();
    }
}

/// A directory `corp` with alice (password, two groups), bob (no password) and dave
/// (password, disabled).
async fn directory(db: &TestStore) {
    let store = &db.store;
    store
        .create_identity_source(&NewIdentitySource {
            id: SOURCE.into(),
            kind: IdentitySourceKind::Directory,
            display_name: "Corp directory".into(),
            config: json!({}),
            enabled: true,
        })
        .await
        .unwrap();
    for group in ["engineering", "admins"] {
        store
            .create_group(&NewGroup {
                identity_source_id: SOURCE.into(),
                name: GroupName::parse(group).unwrap(),
                description: String::new(),
            })
            .await
            .unwrap();
    }
    let hash = hash_password(ALICE_PASSWORD).unwrap();
    for (user, password_hash) in [
        ("alice", Some(hash.clone())),
        ("bob", None),
        ("dave", Some(hash)),
    ] {
        store
            .create_user(&NewUser {
                identity_source_id: SOURCE.into(),
                user_name: name(user),
                display_name: user.to_uppercase(),
                email: Some(format!("{user}@example.com")),
                password_hash,
            })
            .await
            .unwrap();
    }
    for group in ["engineering", "admins"] {
        store
            .add_user_to_group(SOURCE, &GroupName::parse(group).unwrap(), &name("alice"))
            .await
            .unwrap();
    }
    raw_execute(
        db,
        "UPDATE users SET disabled = TRUE WHERE user_name = 'dave'",
    )
    .await;
}

fn memory() -> Arc<dyn Cache> {
    Arc::new(MemoryCache::new(rolegate::clock::Clock::system()))
}

fn assert_invalid(result: Result<impl std::fmt::Debug, SignInError>) {
    match result {
        Err(SignInError::InvalidCredentials) => {}
        other => panic!("expected InvalidCredentials, got {other:?}"),
    }
}

fn assert_locked(result: Result<impl std::fmt::Debug, SignInError>) {
    match result {
        Err(SignInError::Locked { .. }) => {}
        other => panic!("expected Locked, got {other:?}"),
    }
}

async fn correct_password_signs_in_with_groups(db: TestStore) {
    directory(&db).await;
    let auth = DirectoryAuth::new(db.store.clone(), memory());
    let signed_in = auth
        .authenticate(SOURCE, "alice", ALICE_PASSWORD, NET, Utc::now())
        .await
        .unwrap();
    assert_eq!(signed_in.user.user_name.as_str(), "alice");
    assert_eq!(signed_in.user.email.as_deref(), Some("alice@example.com"));
    assert_eq!(signed_in.groups, ["admins", "engineering"]);
    assert_eq!(
        signed_in.user.password_hash, None,
        "the hash is not handed out"
    );
    let debug = format!("{signed_in:?}");
    assert!(
        !debug.contains("argon2") && !debug.contains(ALICE_PASSWORD),
        "{debug}"
    );

    // Names are case-insensitive, as in the store.
    let again = auth
        .authenticate(SOURCE, " ALICE ", ALICE_PASSWORD, NET, Utc::now())
        .await
        .unwrap();
    assert_eq!(again.user.id, signed_in.user.id);
}

async fn failures_all_look_the_same(db: TestStore) {
    directory(&db).await;
    let auth = DirectoryAuth::new(db.store.clone(), memory());
    let now = Utc::now();
    let attempts = [
        ("alice", "wrong password"), // wrong password
        ("alice", ""),               // empty password
        ("nobody", ALICE_PASSWORD),  // unknown user
        ("not a valid name!", "x"),  // a name no user can have
        ("bob", ""),                 // user without a password
        ("dave", ALICE_PASSWORD),    // disabled, right password
    ];
    let mut messages = Vec::new();
    for (user, password) in attempts {
        let error = auth
            .authenticate(SOURCE, user, password, NET, now)
            .await
            .unwrap_err();
        assert!(
            matches!(error, SignInError::InvalidCredentials),
            "{user}: {error:?}"
        );
        messages.push(error.to_string());
    }
    messages.dedup();
    assert_eq!(messages, ["the user name or password is incorrect"]);

    // The unknown user costs a password verification too (against a dummy hash).
    let mut wrong = Duration::MAX;
    let mut unknown = Duration::MAX;
    for _ in 0..2 {
        let started = Instant::now();
        let _ = auth.authenticate(SOURCE, "carol", "pw", NET, now).await;
        unknown = unknown.min(started.elapsed());
        let started = Instant::now();
        let _ = auth.authenticate(SOURCE, "alice", "pw", NET, now).await;
        wrong = wrong.min(started.elapsed());
    }
    assert!(
        unknown * 5 > wrong,
        "unknown {unknown:?} vs wrong password {wrong:?}"
    );
}

async fn disabled_user_is_refused(db: TestStore) {
    directory(&db).await;
    let auth = DirectoryAuth::new(db.store.clone(), memory());
    assert_invalid(
        auth.authenticate(SOURCE, "dave", ALICE_PASSWORD, NET, Utc::now())
            .await,
    );
    // Enabled again, the same password works.
    raw_execute(
        &db,
        "UPDATE users SET disabled = FALSE WHERE user_name = 'dave'",
    )
    .await;
    let dave = auth
        .authenticate(SOURCE, "dave", ALICE_PASSWORD, NET, Utc::now())
        .await
        .unwrap();
    assert!(dave.groups.is_empty());
}

async fn user_without_password_cannot_sign_in(db: TestStore) {
    directory(&db).await;
    let store = &db.store;
    let auth = DirectoryAuth::new(store.clone(), memory());
    for password in ["", "anything", ALICE_PASSWORD] {
        assert_invalid(
            auth.authenticate(SOURCE, "bob", password, NET, Utc::now())
                .await,
        );
    }
    // An administrator sets one; clearing it refuses sign-in again.
    let hash = hash_password("bob-password").unwrap();
    store
        .set_password_hash(SOURCE, &name("BOB"), Some(&hash))
        .await
        .unwrap();
    assert_eq!(
        store
            .get_user(SOURCE, &name("bob"))
            .await
            .unwrap()
            .password_hash,
        Some(hash)
    );
    auth.authenticate(SOURCE, "bob", "bob-password", NET, Utc::now())
        .await
        .unwrap();
    store
        .set_password_hash(SOURCE, &name("bob"), None)
        .await
        .unwrap();
    assert_invalid(
        auth.authenticate(SOURCE, "bob", "bob-password", NET, Utc::now())
            .await,
    );

    let missing = store
        .set_password_hash(SOURCE, &name("nobody"), None)
        .await
        .unwrap_err();
    assert!(
        matches!(missing, StoreError::NotFound { .. }),
        "{missing:?}"
    );
    let other_source = store
        .set_password_hash("elsewhere", &name("bob"), None)
        .await
        .unwrap_err();
    assert!(
        matches!(other_source, StoreError::NotFound { .. }),
        "{other_source:?}"
    );
}

async fn five_failures_lock_the_account_in_the_cache(db: TestStore) {
    directory(&db).await;
    let cache = memory();
    let auth = DirectoryAuth::new(db.store.clone(), cache.clone());
    assert_eq!(auth.policy(), &LockoutPolicy::default());
    let now = Utc::now();
    for _ in 0..4 {
        assert_invalid(auth.authenticate(SOURCE, "alice", "guess", NET, now).await);
    }
    // The fifth failure spends the free ones: the next attempt must wait 30 seconds.
    let until = match auth.authenticate(SOURCE, "Alice", "guess", NET, now).await {
        Err(SignInError::Locked { until }) => until,
        other => panic!("expected Locked, got {other:?}"),
    };
    assert_eq!(until, now + rolegate::idp::directory::FIRST_DELAY);
    // Now even the right password is refused, with its own error.
    let error = auth
        .authenticate(SOURCE, "alice", ALICE_PASSWORD, NET, now)
        .await
        .unwrap_err();
    assert!(matches!(error, SignInError::Locked { .. }), "{error:?}");
    assert!(error.to_string().contains("locked"), "{error}");

    // The lock lives in the cache: another instance (replica) over it sees it, one
    // over a different cache does not.
    let replica = DirectoryAuth::new(db.store.clone(), cache.clone());
    assert_locked(
        replica
            .authenticate(SOURCE, "alice", ALICE_PASSWORD, NET, now)
            .await,
    );
    DirectoryAuth::new(db.store.clone(), memory())
        .authenticate(SOURCE, "alice", ALICE_PASSWORD, NET, now)
        .await
        .unwrap();
    // Other users are not affected.
    assert_invalid(auth.authenticate(SOURCE, "dave", "guess", NET, now).await);

    // Unknown names lock the same way, so locking tells nothing about who exists.
    for _ in 0..4 {
        assert_invalid(auth.authenticate(SOURCE, "nobody", "guess", NET, now).await);
    }
    assert_locked(auth.authenticate(SOURCE, "nobody", "guess", NET, now).await);
}

async fn lock_expires_and_success_resets_the_count(db: TestStore) {
    directory(&db).await;
    let policy = LockoutPolicy {
        max_failures: 3,
        window: Duration::from_secs(60),
        lockout: Duration::from_millis(1500),
        ..LockoutPolicy::default()
    };
    let auth = DirectoryAuth::with_policy(db.store.clone(), memory(), policy);
    let now = Utc::now();

    // Two failures, a success, two failures: the success cleared the count.
    for _ in 0..2 {
        assert_invalid(auth.authenticate(SOURCE, "alice", "guess", NET, now).await);
    }
    auth.authenticate(SOURCE, "alice", ALICE_PASSWORD, NET, now)
        .await
        .unwrap();
    for _ in 0..2 {
        assert_invalid(auth.authenticate(SOURCE, "alice", "guess", NET, now).await);
    }
    // The third in a row locks; the lock ends after its time.
    assert_locked(auth.authenticate(SOURCE, "alice", "guess", NET, now).await);
    assert_locked(
        auth.authenticate(SOURCE, "alice", ALICE_PASSWORD, NET, now)
            .await,
    );
    // The wait is measured from the last failure's time: move the clock past it.
    let later = now + Duration::from_millis(1700);
    auth.authenticate(SOURCE, "alice", ALICE_PASSWORD, NET, later)
        .await
        .unwrap();

    // Failures older than the window do not count.
    let short_window = LockoutPolicy {
        max_failures: 2,
        window: Duration::from_millis(400),
        lockout: Duration::from_secs(60),
        ..LockoutPolicy::default()
    };
    // The failure counters live in the cache: its clock moves past the window.
    let (clock, hand) = rolegate::clock::Clock::adjustable();
    let cache: Arc<dyn Cache> = Arc::new(MemoryCache::new(clock.clone()));
    let auth = DirectoryAuth::with_policy(db.store.clone(), cache, short_window);
    assert_invalid(auth.authenticate(SOURCE, "alice", "guess", NET, now).await);
    hand.advance(Duration::from_millis(600));
    assert_invalid(auth.authenticate(SOURCE, "alice", "guess", NET, now).await);
    auth.authenticate(SOURCE, "alice", ALICE_PASSWORD, NET, clock.now())
        .await
        .unwrap();
}

/// `max_failures = 0` turns the lock-out off: failures never slow anyone down (and
/// counting them must not overflow the slot arithmetic).
async fn no_lock_out_when_turned_off(db: TestStore) {
    directory(&db).await;
    let policy = LockoutPolicy {
        max_failures: 0,
        network_max_failures: 0,
        ..LockoutPolicy::default()
    };
    let auth = DirectoryAuth::with_policy(db.store.clone(), memory(), policy);
    let now = Utc::now();
    for _ in 0..8 {
        assert_invalid(auth.authenticate(SOURCE, "alice", "guess", NET, now).await);
    }
    auth.authenticate(SOURCE, "alice", ALICE_PASSWORD, NET, now)
        .await
        .unwrap();
}

/// Past the free failures each attempt waits twice as long as the one before (30 s,
/// 1 min, 2 min, ...), measured from the last failure; a right password after the
/// wait signs in and clears the count.
async fn delays_double_after_the_free_failures(db: TestStore) {
    directory(&db).await;
    let auth = DirectoryAuth::new(db.store.clone(), memory());
    let start = Utc::now();
    for _ in 0..4 {
        assert_invalid(
            auth.authenticate(SOURCE, "alice", "guess", NET, start)
                .await,
        );
    }
    let mut at = start;
    for wait in [30, 60, 120, 240] {
        let until = match auth.authenticate(SOURCE, "alice", "guess", NET, at).await {
            Err(SignInError::Locked { until }) => until,
            other => panic!("expected Locked, got {other:?}"),
        };
        assert_eq!(until, at + Duration::from_secs(wait));
        // Too early: refused without counting.
        assert_locked(
            auth.authenticate(
                SOURCE,
                "alice",
                ALICE_PASSWORD,
                NET,
                until - Duration::from_secs(1),
            )
            .await,
        );
        at = until;
    }
    auth.authenticate(SOURCE, "alice", ALICE_PASSWORD, NET, at)
        .await
        .unwrap();
    assert_invalid(auth.authenticate(SOURCE, "alice", "guess", NET, at).await);
}

async fn lock_is_shared_by_replicas_through_redis(db: TestStore) {
    directory(&db).await;
    let prefix = unique_prefix();
    let replica_a = DirectoryAuth::new(db.store.clone(), Arc::new(redis_cache(&prefix).await));
    let replica_b = DirectoryAuth::new(db.store.clone(), Arc::new(redis_cache(&prefix).await));
    let now = Utc::now();

    // Concurrent guesses on both replicas are all counted: none slips past the limit.
    let replicas = Arc::new([replica_a, replica_b]);
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let replicas = replicas.clone();
            tokio::spawn(async move {
                replicas[i % 2]
                    .authenticate(SOURCE, "alice", &format!("guess-{i}"), NET, now)
                    .await
                    .map(|_| ())
            })
        })
        .collect();
    let mut locked = 0;
    for task in tasks {
        match task.await.unwrap() {
            Err(SignInError::InvalidCredentials) => {}
            Err(SignInError::Locked { .. }) => locked += 1,
            other => panic!("{other:?}"),
        }
    }
    assert!(locked >= 1, "the fifth failure locks");
    for replica in replicas.iter() {
        assert_locked(
            replica
                .authenticate(SOURCE, "alice", ALICE_PASSWORD, NET, now)
                .await,
        );
    }
    remove_prefix(&prefix).await;
}

async fn only_enabled_directories_sign_in(db: TestStore) {
    directory(&db).await;
    let store = &db.store;
    for (id, kind, enabled) in [
        ("corp-sso", IdentitySourceKind::Oidc, true),
        ("old-dir", IdentitySourceKind::Directory, false),
    ] {
        store
            .create_identity_source(&NewIdentitySource {
                id: id.into(),
                kind,
                display_name: id.into(),
                config: json!({}),
                enabled,
            })
            .await
            .unwrap();
    }
    let auth = DirectoryAuth::new(store.clone(), memory());
    for source in ["corp-sso", "old-dir", "missing"] {
        let error = auth
            .authenticate(source, "alice", ALICE_PASSWORD, NET, Utc::now())
            .await
            .unwrap_err();
        assert!(
            matches!(error, SignInError::UnknownSource(ref s) if s == source),
            "{error:?}"
        );
    }
}

async fn demo_users_sign_in_with_the_printed_passwords(db: TestStore) {
    use rolegate::seed::{DEMO_SIGN_INS, DIRECTORY_SOURCE_ID, seed_demo};
    seed_demo(db.store.as_ref()).await.unwrap();
    let hashes = |store: Arc<dyn rolegate::store::Store>| async move {
        let mut hashes = Vec::new();
        for (user, _) in DEMO_SIGN_INS {
            let user = store
                .get_user(DIRECTORY_SOURCE_ID, &name(user))
                .await
                .unwrap();
            hashes.push(user.password_hash.unwrap());
        }
        hashes
    };
    let first = hashes(db.store.clone()).await;
    assert!(
        first.iter().all(|h| h.starts_with("$argon2id$")),
        "{first:?}"
    );

    // A restart keeps the users and their hashes as they are.
    let again = seed_demo(db.store.as_ref()).await.unwrap();
    assert_eq!(again.created, 0);
    assert_eq!(hashes(db.store.clone()).await, first);

    let auth = DirectoryAuth::new(db.store.clone(), memory());
    for (user, password) in DEMO_SIGN_INS {
        let signed_in = auth
            .authenticate(DIRECTORY_SOURCE_ID, user, password, NET, Utc::now())
            .await
            .unwrap();
        assert!(!signed_in.groups.is_empty(), "{user}");
    }
    let alice = auth
        .authenticate(
            DIRECTORY_SOURCE_ID,
            "alice",
            DEMO_SIGN_INS[0].1,
            NET,
            Utc::now(),
        )
        .await
        .unwrap();
    assert_eq!(alice.groups, ["admins", "developers"]);
}

both_backends!(
    correct_password_signs_in_with_groups,
    failures_all_look_the_same,
    disabled_user_is_refused,
    user_without_password_cannot_sign_in,
    five_failures_lock_the_account_in_the_cache,
    lock_expires_and_success_resets_the_count,
    lock_is_shared_by_replicas_through_redis,
    no_lock_out_when_turned_off,
    delays_double_after_the_free_failures,
    only_enabled_directories_sign_in,
    demo_users_sign_in_with_the_printed_passwords,
);

#[test]
fn hashes_are_salted_argon2id_phc_strings() {
    let first = hash_password("s3cret").unwrap();
    let second = hash_password("s3cret").unwrap();
    assert!(
        first.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "{first}"
    );
    assert_ne!(first, second, "a fresh salt each time");
    assert!(verify_password(&first, "s3cret"));
    assert!(verify_password(&second, "s3cret"));
    assert!(!verify_password(&first, "s3cret "));
    assert!(!verify_password(&first, ""));
    assert!(!verify_password("not a phc string", "s3cret"));
    assert!(!verify_password("", ""));
    assert!(hash_password("").is_err());
    assert!(hash_password(&"x".repeat(2000)).is_err());
}
