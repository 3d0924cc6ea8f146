//! The login portal over real HTTP: directory sign-in, entitlements from groups,
//! access keys that work with boto3, CSRF, redirects, sessions shared by replicas.

use rolegate::idp::directory::DIRECTORY_SOURCE_ID;
use rolegate::seed;

use crate::both_backends;
use crate::helpers::{TestStore, spawn_state, venv_bin};
use crate::web_client::{Browser, exported_keys, hidden, password_of, seeded};

async fn sign_in_see_roles_and_use_access_keys(db: TestStore) {
    let state = seeded(&db).await;
    let base = spawn_state(state);
    let mut alice = Browser::new(&base);

    let signin = alice.get("/signin").await;
    assert_eq!(signin.headers["x-frame-options"], "DENY");
    assert!(
        signin.headers["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("script-src 'self'")
    );
    assert!(!signin.body.contains("<script>"), "no inline script");

    let signed_in = alice.sign_in("alice", password_of("alice"), "/start").await;
    assert_eq!(signed_in.status, 303, "{}", signed_in.body);
    assert_eq!(signed_in.location.as_deref(), Some("/start"));
    let session_cookie = signed_in
        .set_cookies
        .iter()
        .find(|c| c.starts_with("rg_session="))
        .unwrap();
    assert!(
        session_cookie.contains("HttpOnly") && session_cookie.contains("SameSite=Lax"),
        "{session_cookie}"
    );

    let start = alice.get("/start").await;
    assert_eq!(start.status, 200);
    for role in ["Admin", "Developer", "ReadOnly"] {
        assert!(
            start
                .body
                .contains(&format!("id=\"role-{}-{role}\"", seed::DEMO_ACCOUNT_ID)),
            "{role} missing"
        );
    }
    assert!(
        !start.body.contains("DemoWorkload"),
        "roles without alice's groups are not shown"
    );

    let csrf = hidden(&start.body, "csrf");
    let keys = alice
        .post(
            "/start/credentials",
            &[
                ("csrf", &csrf),
                ("account", seed::DEMO_ACCOUNT_ID),
                ("role", "Developer"),
            ],
        )
        .await;
    assert_eq!(keys.status, 200, "{}", keys.body);
    assert_eq!(keys.headers["cache-control"], "no-store");
    let (key, secret, token) = exported_keys(&keys.body);
    assert!(key.starts_with("ASIA"));

    // The keys work with boto3 against Rolegate's STS.
    let out = std::process::Command::new(venv_bin("python"))
        .env_clear()
        .env("HOME", std::env::temp_dir())
        .env("AWS_ACCESS_KEY_ID", &key)
        .env("AWS_SECRET_ACCESS_KEY", &secret)
        .env("AWS_SESSION_TOKEN", &token)
        .env("AWS_ENDPOINT_URL_STS", &base)
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .arg("-c")
        .arg("import boto3; print(boto3.client('sts').get_caller_identity()['Arn'])")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!(
            "arn:aws:sts::{}:assumed-role/Developer/alice@example.com",
            seed::DEMO_ACCOUNT_ID
        )
    );

    // A role alice's groups do not grant, and a form without the session's token.
    let other = alice
        .post(
            "/start/credentials",
            &[
                ("csrf", &csrf),
                ("account", seed::DEMO_ACCOUNT_ID),
                ("role", "DemoWorkload"),
            ],
        )
        .await;
    assert_eq!(other.status, 403);
    assert!(other.body.contains("not entitled"), "{}", other.body);
    let forged = alice
        .post(
            "/start/credentials",
            &[
                ("csrf", "forged"),
                ("account", seed::DEMO_ACCOUNT_ID),
                ("role", "Developer"),
            ],
        )
        .await;
    assert_eq!(forged.status, 403);

    // Sign-out ends the session everywhere it is presented.
    let stolen = alice.cookie("rg_session").unwrap().to_owned();
    let out = alice.post("/logout", &[("csrf", &csrf)]).await;
    assert_eq!(out.location.as_deref(), Some("/signin"));
    let mut thief = Browser::new(&base);
    thief.set_cookie("rg_session", "/", &stolen);
    assert_eq!(
        thief.get("/start").await.location.as_deref(),
        Some("/signin?return_to=/start")
    );

    // Everything above is in the audit log, with no secrets.
    use rolegate::store::Outcome::*;
    crate::helpers::assert_audited(
        db.store.as_ref(),
        &[
            ("portal:SignIn", Success),
            ("portal:GetRoleCredentials", Success),
            ("portal:GetRoleCredentials", Denied),
            ("portal:SignOut", Success),
        ],
        &[&secret, password_of("alice")],
    )
    .await;
}

async fn bad_sign_ins_and_redirects(db: TestStore) {
    let state = seeded(&db).await;
    let base = spawn_state(state);

    let mut mallory = Browser::new(&base);
    let wrong = mallory.sign_in("alice", "not-the-password", "/start").await;
    assert_eq!(wrong.status, 401);
    assert!(wrong.body.contains("incorrect"), "{}", wrong.body);
    assert!(mallory.cookie("rg_session").is_none());
    let unknown = mallory
        .sign_in("nobody", "whatever-password", "/start")
        .await;
    assert_eq!(
        unknown.status, 401,
        "unknown users look the same as wrong passwords"
    );

    // A form posted without the sign-in page's CSRF cookie (cross-site) is refused.
    let mut cross_site = Browser::new(&base);
    let refused = cross_site
        .post(
            "/signin/directory",
            &[
                ("csrf", "x"),
                ("username", "alice"),
                ("password", password_of("alice")),
            ],
        )
        .await;
    assert_eq!(refused.status, 403);

    // Only local return paths are followed.
    for (return_to, expected) in [
        ("/start", "/start"),
        ("https://evil.example/phish", "/start"),
        ("//evil.example", "/start"),
    ] {
        let mut user = Browser::new(&base);
        let page = user.sign_in("carol", password_of("carol"), return_to).await;
        assert_eq!(page.location.as_deref(), Some(expected), "{return_to}");
    }

    // carol (auditors) sees ReadOnly only.
    let mut carol = Browser::new(&base);
    carol.sign_in("carol", password_of("carol"), "/start").await;
    let start = carol.get("/start").await;
    assert!(start.body.contains("role-123456789012-ReadOnly"));
    assert!(!start.body.contains("role-123456789012-Admin"));

    // A tampered session cookie is no session.
    let mut forged = Browser::new(&base);
    forged.set_cookie(
        "rg_session",
        "/",
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    );
    assert_eq!(forged.get("/start").await.status, 303);

    let audit = db.store.list_audit(50, None).await.unwrap();
    assert!(audit.iter().any(|e| e.action == "portal:SignIn"
        && e.outcome == rolegate::store::Outcome::Failure
        && e.actor == "alice"));
}

/// Two Rolegate replicas sharing the database and Redis serve one user seamlessly:
/// sign in on one, continue on the other.
async fn replicas_share_sessions_through_redis(db: TestStore) {
    let prefix = crate::helpers::redis_prefix();
    let first = crate::helpers::redis_replica(db.store.clone(), &prefix).await;
    seed::seed_demo(first.store.as_ref()).await.unwrap();
    let second = crate::helpers::redis_replica(db.store.clone(), &prefix).await;
    let sessions = first.sessions.clone();
    let (a, b) = (spawn_state(first), spawn_state(second));

    let mut bob = Browser::new(&a);
    assert_eq!(
        bob.sign_in("bob", password_of("bob"), "/start")
            .await
            .status,
        303
    );
    let cookies = bob.cookies.clone();
    let mut on_b = Browser::new(&b);
    on_b.cookies = cookies;
    let start = on_b.get("/start").await;
    assert_eq!(start.status, 200, "the session made on A is valid on B");
    assert!(start.body.contains("role-123456789012-Developer"));
    let csrf = hidden(&start.body, "csrf");
    let keys = on_b
        .post(
            "/start/credentials",
            &[
                ("csrf", &csrf),
                ("account", "123456789012"),
                ("role", "Developer"),
            ],
        )
        .await;
    assert_eq!(keys.status, 200);
    // The per-person index is shared too: a second sign-in on B is listed on A.
    let mut elsewhere = Browser::new(&b);
    elsewhere.sign_in("bob", password_of("bob"), "/start").await;
    let listed = sessions
        .list_for_user(DIRECTORY_SOURCE_ID, "bob")
        .await
        .unwrap();
    assert_eq!(listed.len(), 2, "{listed:?}");
    // Sign out on B: A no longer accepts the session, and the index forgets it.
    on_b.post("/logout", &[("csrf", &csrf)]).await;
    assert_eq!(bob.get("/start").await.status, 303);
    let listed = sessions
        .list_for_user(DIRECTORY_SOURCE_ID, "bob")
        .await
        .unwrap();
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(
        sessions
            .end_all_for_user(DIRECTORY_SOURCE_ID, "BOB")
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        elsewhere.get("/start").await.status,
        303,
        "ended on every replica"
    );

    crate::helpers::delete_redis_prefix(&prefix).await;
}

/// What the admin API will show and do: one person's live portal sessions (by a
/// handle, never the cookie's id), ending one of them or all, and nobody else's.
async fn a_persons_sessions_are_listed_and_ended(db: TestStore) {
    let state = seeded(&db).await;
    let sessions = state.sessions.clone();
    let base = spawn_state(state);
    let mut laptop = Browser::new(&base);
    let mut phone = Browser::new(&base);
    let mut alice = Browser::new(&base);
    laptop.sign_in("bob", password_of("bob"), "/start").await;
    db.hand.advance(std::time::Duration::from_secs(60));
    phone.sign_in("bob", password_of("bob"), "/start").await;
    alice.sign_in("alice", password_of("alice"), "/start").await;

    let listed = sessions
        .list_for_user(DIRECTORY_SOURCE_ID, "bob")
        .await
        .unwrap();
    assert_eq!(listed.len(), 2, "{listed:?}");
    assert!(
        listed[0].signed_in_at < listed[1].signed_in_at,
        "oldest first"
    );
    assert_eq!(
        listed[0].expires_at - listed[0].signed_in_at,
        8 * 3600,
        "the portal session lifetime"
    );
    for (_, _, value) in laptop.cookies.iter().chain(&phone.cookies) {
        assert!(
            listed.iter().all(|s| s.handle != *value),
            "never the id itself"
        );
    }

    // Ending the laptop's session (the older one) leaves the phone signed in.
    assert!(
        sessions
            .end_listed(DIRECTORY_SOURCE_ID, "bob", &listed[0].handle)
            .await
            .unwrap()
    );
    assert_eq!(laptop.get("/start").await.status, 303, "signed out");
    assert_eq!(phone.get("/start").await.status, 200);
    // A handle is only ever ended through its owner's list.
    assert!(
        !sessions
            .end_listed(DIRECTORY_SOURCE_ID, "alice", &listed[1].handle)
            .await
            .unwrap()
    );
    assert_eq!(phone.get("/start").await.status, 200);

    assert_eq!(
        sessions
            .end_all_for_user(DIRECTORY_SOURCE_ID, "bob")
            .await
            .unwrap(),
        1
    );
    assert_eq!(phone.get("/start").await.status, 303);
    assert!(
        sessions
            .list_for_user(DIRECTORY_SOURCE_ID, "bob")
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        alice.get("/start").await.status,
        200,
        "other people keep theirs"
    );
    assert_eq!(
        sessions
            .list_for_user(DIRECTORY_SOURCE_ID, "alice")
            .await
            .unwrap()
            .len(),
        1
    );
}

both_backends!(
    sign_in_see_roles_and_use_access_keys,
    bad_sign_ins_and_redirects,
    replicas_share_sessions_through_redis,
    a_persons_sessions_are_listed_and_ended
);

/// Two `rolegate serve` processes sharing PostgreSQL and Redis: sign in on one,
/// continue on the other, sign out on the second and the first forgets you too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_share_postgres_and_redis() {
    let db = crate::helpers::postgres_store().await;
    // What an administrator would have set up: the demo account, roles and users.
    seed::seed_demo(db.store.as_ref()).await.unwrap();
    let prefix = format!("rolegate-test-{:016x}", rand::random::<u64>());
    let env = [
        ("ROLEGATE_DATABASE__URL", db.url.as_str()),
        ("ROLEGATE_CACHE__URL", "redis://127.0.0.1:6379/0"),
        ("ROLEGATE_CACHE__PREFIX", prefix.as_str()),
        (
            "ROLEGATE_SECRETS__MASTER_KEY",
            crate::helpers::TEST_MASTER_KEY,
        ),
        ("ROLEGATE_SERVER__LISTEN", "127.0.0.1:0"),
    ];
    let timeout = std::time::Duration::from_secs(30);
    let a = crate::helpers::start_binary(&["serve"], &env, timeout);
    let b = crate::helpers::start_binary(&["serve"], &env, timeout);

    let mut on_a = Browser::new(&a.base_url);
    let signed_in = on_a.sign_in("alice", password_of("alice"), "/start").await;
    assert_eq!(signed_in.status, 303, "{}", signed_in.body);
    let mut on_b = Browser::new(&b.base_url);
    on_b.cookies = on_a.cookies.clone();
    let start = on_b.get("/start").await;
    assert_eq!(start.status, 200, "process B accepts process A's session");
    let csrf = hidden(&start.body, "csrf");
    let keys = on_b
        .post(
            "/start/credentials",
            &[
                ("csrf", &csrf),
                ("account", seed::DEMO_ACCOUNT_ID),
                ("role", "Developer"),
            ],
        )
        .await;
    assert_eq!(keys.status, 200, "{}", keys.body);
    // Credentials minted by B work on A: both share the session-token key ring.
    let (key, secret, token) = exported_keys(&keys.body);
    let (status, body) = crate::helpers::signed_sts_call(
        &a.base_url,
        (&key, &secret, Some(&token)),
        &[("Action", "GetCallerIdentity"), ("Version", "2011-06-15")],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains("assumed-role/Developer/alice@example.com"),
        "{body}"
    );

    on_b.post("/logout", &[("csrf", &csrf)]).await;
    assert_eq!(
        on_a.get("/start").await.status,
        303,
        "signed out everywhere"
    );

    crate::helpers::delete_redis_prefix(&prefix).await;
}

/// A user whose groups grant no role sees a page that says so and what to do.
async fn user_without_entitlements_is_told_why(db: TestStore) {
    let state = seeded(&db).await;
    let hash = rolegate::idp::directory::hash_password("dave-has-no-groups").unwrap();
    state
        .store
        .create_user(&rolegate::store::NewUser {
            identity_source_id: seed::DIRECTORY_SOURCE_ID.into(),
            user_name: rolegate::iam::UserName::parse("dave").unwrap(),
            display_name: "Dave Nogroup".into(),
            email: Some("dave@example.com".into()),
            password_hash: Some(hash),
        })
        .await
        .unwrap();
    let base = spawn_state(state);
    let mut dave = Browser::new(&base);
    assert_eq!(
        dave.sign_in("dave", "dave-has-no-groups", "/start")
            .await
            .status,
        303
    );
    let start = dave.get("/start").await;
    assert_eq!(start.status, 200);
    assert!(
        start
            .body
            .contains("No roles are granted to you (you are in no groups)"),
        "{}",
        start.body
    );
    assert!(
        start.body.contains("Ask an administrator"),
        "{}",
        start.body
    );
    let csrf = hidden(&start.body, "csrf");
    let refused = dave
        .post(
            "/start/credentials",
            &[
                ("csrf", &csrf),
                ("account", seed::DEMO_ACCOUNT_ID),
                ("role", "ReadOnly"),
            ],
        )
        .await;
    assert_eq!(refused.status, 403);
    let audit = db.store.list_audit(20, None).await.unwrap();
    assert!(audit.iter().any(|e| e.actor == "dave"
        && e.action == "portal:GetRoleCredentials"
        && e.outcome == rolegate::store::Outcome::Denied));
}

both_backends!(user_without_entitlements_is_told_why);

/// A portal sign-in ends after the configured lifetime (`portal.session_ttl_seconds`):
/// the accounts page sends the person back to sign in.
#[tokio::test]
async fn portal_sessions_end_after_the_configured_lifetime() {
    let db = crate::helpers::sqlite_store().await;
    let state = seeded(&db)
        .await
        .with_portal(rolegate::web::PortalSettings {
            session_ttl: std::time::Duration::from_secs(2),
            ..Default::default()
        });
    let base = spawn_state(state);
    let mut browser = Browser::new(&base);
    let signed_in = browser.sign_in("bob", password_of("bob"), "/start").await;
    assert_eq!(signed_in.status, 303);
    assert_eq!(browser.get("/start").await.status, 200);
    db.hand.advance(std::time::Duration::from_millis(2500));
    let expired = browser.get("/start").await;
    assert_eq!(expired.status, 303);
    assert!(
        expired
            .location
            .as_deref()
            .unwrap_or_default()
            .starts_with("/signin"),
        "{:?}",
        expired.location
    );
}

/// A server nobody can sign in to yet (no federated source, no directory user) says
/// how to bootstrap the first admin instead of showing a form that cannot succeed;
/// once the directory has a user, the form is back.
async fn an_empty_server_explains_how_to_bootstrap(db: TestStore) {
    let state = crate::helpers::app_state(db.store.clone()).await;
    let base = spawn_state(state.clone());
    let empty = reqwest::get(format!("{base}/signin")).await.unwrap();
    assert_eq!(empty.status(), 200);
    let body = empty.text().await.unwrap();
    assert!(body.contains("id=\"bootstrap-help\""), "{body}");
    assert!(body.contains("rolegate admin bootstrap"));
    assert!(!body.contains("action=\"/signin/directory\""));

    seed::seed_demo(state.store.as_ref()).await.unwrap();
    let body = reqwest::get(format!("{base}/signin"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(body.contains("action=\"/signin/directory\""));
    assert!(!body.contains("bootstrap-help"));
}

both_backends!(an_empty_server_explains_how_to_bootstrap);
