//! The directory's optional TOTP second factor over real HTTP, on both backends:
//! enrolment at /account/mfa, the code step of sign-in at /signin/totp, lock-out,
//! replay and single-use protection, turning it off, and the secret sealed at rest.
//!
//! Codes are computed by an independent RFC 6238 implementation (Python's standard
//! library, in the test virtualenv), not by Rolegate's own code.

use std::collections::HashSet;
use std::time::Duration;

use rolegate::iam::UserName;
use rolegate::seed::{self, DIRECTORY_SOURCE_ID};
use rolegate::store::{AuditRecord, Outcome, Store};

use crate::both_backends;
use crate::helpers::{TestStore, spawn_state, test_sealer, venv_bin};
use crate::web_client::{Browser, Page, hidden, password_of, seeded};

impl Browser {
    /// Posts `code` on the code step (reading its CSRF token first).
    async fn code(&mut self, code: &str) -> Page {
        let page = self.get("/signin/totp").await;
        assert_eq!(page.status, 200, "code step shown: {}", page.body);
        assert!(page.body.contains(r#"id="code""#), "{}", page.body);
        let csrf = hidden(&page.body, "csrf");
        self.post("/signin/totp", &[("csrf", &csrf), ("code", code)])
            .await
    }

    /// The CSRF token of the signed-in session (from /start).
    async fn session_csrf(&mut self) -> String {
        let start = self.get("/start").await;
        assert_eq!(start.status, 200, "signed in: {:?}", start.location);
        hidden(&start.body, "csrf")
    }

    /// Posts an account-page form with its code and the password.
    async fn post_with_password(
        &mut self,
        path: &str,
        csrf: &str,
        code: &str,
        password: &str,
    ) -> Page {
        self.post(
            path,
            &[("csrf", csrf), ("code", code), ("password", password)],
        )
        .await
    }

    async fn sign_out(&mut self) {
        let csrf = self.session_csrf().await;
        let out = self.post("/logout", &[("csrf", &csrf)]).await;
        assert_eq!(out.status, 303);
        assert_eq!(self.get("/start").await.status, 303, "signed out");
    }
}

/// The text of the element with `id` (`<tag id="...">TEXT</tag>`).
pub(crate) fn element_text(body: &str, id: &str) -> String {
    let marker = format!("id=\"{id}\">");
    let start = body
        .find(&marker)
        .unwrap_or_else(|| panic!("no #{id} in {body}"))
        + marker.len();
    body[start..start + body[start..].find('<').unwrap()].to_owned()
}

/// RFC 6238 (SHA-1, 6 digits, 30 s) in Python's standard library: the TOTP code of
/// each time step, for a base32 secret.
fn python_codes(secret: &str, steps: &[i64]) -> Vec<String> {
    const SCRIPT: &str = r#"
import base64, hashlib, hmac, struct, sys
secret = sys.argv[1]
key = base64.b32decode(secret + "=" * (-len(secret) % 8))
for step in sys.argv[2:]:
    digest = hmac.new(key, struct.pack(">Q", int(step)), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    number = struct.unpack(">I", digest[offset:offset + 4])[0] & 0x7FFFFFFF
    print("%06d" % (number % 1000000))
"#;
    let output = std::process::Command::new(venv_bin("python"))
        .arg("-c")
        .arg(SCRIPT)
        .arg(secret)
        .args(steps.iter().map(i64::to_string))
        .output()
        .expect("run python");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// The server's time (its clock is the test store's), in seconds.
fn unix_now(db: &TestStore) -> f64 {
    db.store.clock().timestamp_millis() as f64 / 1000.0
}

/// Moves the server's clock into the next time step, a little past its start.
fn next_step(db: &TestStore, now: f64) {
    db.hand
        .advance(Duration::from_secs_f64(30.0 - now % 30.0 + 0.2));
}

/// Picks a code of a time step the server accepts now (±1 step) and later than every
/// step this test has used (once a code is accepted, earlier steps are spent too),
/// away from step boundaries so the server sees the same window. Waits for the next
/// step when the whole window is used.
pub(crate) async fn fresh_code(secret: &str, used: &mut HashSet<i64>, db: &TestStore) -> String {
    loop {
        let now = unix_now(db);
        let into_step = now % 30.0;
        if into_step > 28.5 {
            next_step(db, now);
            continue;
        }
        let current = (now / 30.0).floor() as i64;
        let latest_used = used.iter().max().copied().unwrap_or(i64::MIN);
        if let Some(step) = [current - 1, current, current + 1]
            .into_iter()
            .find(|s| *s > latest_used)
        {
            used.insert(step);
            return python_codes(secret, &[step]).remove(0);
        }
        next_step(db, now);
    }
}

/// A six-digit code no step of the current window has.
fn wrong_code(secret: &str, db: &TestStore) -> String {
    let current = (unix_now(db) / 30.0).floor() as i64;
    let valid = python_codes(
        secret,
        &[current - 2, current - 1, current, current + 1, current + 2],
    );
    (0..)
        .map(|n: u32| format!("{:06}", (123_456 + n * 7919) % 1_000_000))
        .find(|c| !valid.contains(c))
        .unwrap()
}

/// Turns TOTP on for `user` straight in the store (sealed as Rolegate seals it);
/// returns the base32 secret.
async fn enable_in_store(store: &dyn Store, user: &str) -> String {
    let name = UserName::parse(user).unwrap();
    let record = store.get_user(DIRECTORY_SOURCE_ID, &name).await.unwrap();
    let secret = rolegate::idp::totp::TotpSecret::generate(&mut rand::rng()).to_base32();
    let sealed = test_sealer().seal(
        secret.as_bytes(),
        &format!("totp-secret:{}", record.id),
        &mut rand::rng(),
    );
    store
        .set_totp_secret(
            DIRECTORY_SOURCE_ID,
            &name,
            Some((&sealed, chrono::Utc::now())),
        )
        .await
        .unwrap();
    secret
}

async fn audit_of(store: &dyn Store, actor: &str, action: &str) -> Vec<AuditRecord> {
    store
        .list_audit(200, None)
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.actor == actor && r.action == action)
        .collect()
}

fn has_reason(records: &[AuditRecord], outcome: Outcome, reason: &str) -> bool {
    records
        .iter()
        .any(|r| r.outcome == outcome && r.details["reason"] == reason)
}

async fn enrol_then_sign_in_needs_the_code(db: TestStore) {
    let state = seeded(&db).await;
    let store = state.store.clone();
    let base = spawn_state(state);
    let mut alice = Browser::new(&base);
    let mut used = HashSet::new();

    // Before enrolment: the password alone signs in, and /start links to the page.
    let first = alice.sign_in("alice", password_of("alice"), "/start").await;
    assert_eq!(first.location.as_deref(), Some("/start"), "{}", first.body);
    let start = alice.get("/start").await;
    assert!(
        start.body.contains(r#"href="/account/mfa""#),
        "{}",
        start.body
    );

    let setup = alice.get("/account/mfa").await;
    assert_eq!(setup.status, 200, "{}", setup.body);
    let secret = element_text(&setup.body, "totp-secret");
    assert_eq!(secret.len(), 32, "160 bits in base32: {secret}");
    assert_eq!(
        element_text(&setup.body, "totp-uri").replace("&#38;", "&"),
        format!(
            "otpauth://totp/Rolegate:alice?secret={secret}&issuer=Rolegate&algorithm=SHA1&digits=6&period=30"
        )
    );
    assert_eq!(
        element_text(&alice.get("/account/mfa").await.body, "totp-secret"),
        secret,
        "the unconfirmed secret is kept while the setup is open"
    );
    // Rolegate's implementation agrees with the independent one.
    let parsed = rolegate::idp::totp::TotpSecret::from_base32(&secret).unwrap();
    let steps = [1, 59_000_000, 60_000_000];
    let expected = python_codes(&secret, &steps);
    for (step, code) in steps.iter().zip(&expected) {
        assert_eq!(&rolegate::idp::totp::code_for_step(&parsed, *step), code);
    }

    // Confirming needs the session's CSRF token and a right code.
    let csrf = hidden(&setup.body, "csrf");
    let forged = alice
        .post("/account/mfa", &[("csrf", "forged"), ("code", "000000")])
        .await;
    assert_eq!(forged.status, 403);
    let wrong = alice
        .post(
            "/account/mfa",
            &[("csrf", &csrf), ("code", &wrong_code(&secret, &db))],
        )
        .await;
    assert_eq!(wrong.status, 400);
    assert!(wrong.body.contains("not correct"), "{}", wrong.body);
    let name = UserName::parse("alice").unwrap();
    let row = store.get_user(DIRECTORY_SOURCE_ID, &name).await.unwrap();
    assert!(row.totp_secret.is_none() && row.totp_enabled_at.is_none());

    let code = fresh_code(&secret, &mut used, &db).await;
    let on = alice
        .post("/account/mfa", &[("csrf", &csrf), ("code", &code)])
        .await;
    assert_eq!(on.status, 303, "{}", on.body);
    assert_eq!(on.location.as_deref(), Some("/account/mfa"));
    let shown = alice.get("/account/mfa").await;
    assert!(shown.body.contains("<strong>on</strong>"), "{}", shown.body);
    assert!(
        !shown.body.contains(&secret),
        "the secret is shown only at setup"
    );
    assert!(has_reason(
        &audit_of(store.as_ref(), "alice", "portal:EnableMFADevice").await,
        Outcome::Failure,
        "wrong second factor"
    ));
    assert!(
        audit_of(store.as_ref(), "alice", "portal:EnableMFADevice")
            .await
            .iter()
            .any(|r| r.outcome == Outcome::Success)
    );

    // At rest the secret is sealed with the master key, bound to the user.
    let row = store.get_user(DIRECTORY_SOURCE_ID, &name).await.unwrap();
    let sealed = row.totp_secret.clone().expect("stored");
    assert!(row.totp_enabled_at.is_some());
    assert!(!sealed.contains(&secret) && !sealed.to_lowercase().contains(&secret.to_lowercase()));
    let opened = test_sealer()
        .open(&sealed, &format!("totp-secret:{}", row.id))
        .expect("sealed with the master key");
    assert_eq!(String::from_utf8(opened).unwrap(), secret);

    // Signed out, the password alone no longer signs in: a code is owed.
    alice.sign_out().await;
    let deep = format!(
        "/start#/account/{}/role/ReadOnly/console",
        seed::DEMO_ACCOUNT_ID
    );
    let pending = alice.sign_in("alice", password_of("alice"), &deep).await;
    assert_eq!(pending.status, 303, "{}", pending.body);
    assert_eq!(pending.location.as_deref(), Some("/signin/totp"));
    assert!(!pending.sets("rg_session"), "no session before the code");
    assert!(pending.sets("rg_mfa"));
    assert_eq!(alice.get("/start").await.status, 303, "not signed in yet");

    // A wrong code: refused, audited, and the same step can be retried.
    let wrong = alice.code(&wrong_code(&secret, &db)).await;
    assert_eq!(wrong.status, 401);
    assert!(wrong.body.contains("not correct"), "{}", wrong.body);
    assert!(!wrong.sets("rg_session"));
    let sign_ins = audit_of(store.as_ref(), "alice", "portal:SignIn").await;
    assert!(
        has_reason(&sign_ins, Outcome::Failure, "wrong second factor"),
        "{sign_ins:?}"
    );

    // The right code: signed in, and the deep link survives the extra step.
    let code = fresh_code(&secret, &mut used, &db).await;
    let done = alice.code(&format!("{} {}", &code[..3], &code[3..])).await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert_eq!(done.location.as_deref(), Some(deep.as_str()));
    assert!(done.sets("rg_session"));
    assert!(alice.cookie("rg_mfa").is_none(), "pending cookie cleared");
    assert_eq!(alice.get("/start").await.status, 200);

    // The same code again, in a new sign-in: refused as a replay.
    alice.sign_out().await;
    let again = alice.sign_in("alice", password_of("alice"), "/start").await;
    assert_eq!(again.location.as_deref(), Some("/signin/totp"));
    let replay = alice.code(&code).await;
    assert_eq!(replay.status, 401, "{}", replay.body);
    assert!(replay.body.contains("already used"), "{}", replay.body);
    assert!(has_reason(
        &audit_of(store.as_ref(), "alice", "portal:SignIn").await,
        Outcome::Failure,
        "second factor code already used"
    ));

    // An older code of the window after a newer one was accepted: spent too (RFC
    // 6238 §5.2), so a code read over someone's shoulder earlier is worthless.
    let current = loop {
        let now = unix_now(&db);
        let current = (now / 30.0).floor() as i64;
        // Both steps unused and the window steady for the next requests.
        if now % 30.0 < 25.0 && !used.contains(&current) && !used.contains(&(current + 1)) {
            break current;
        }
        next_step(&db, now);
    };
    used.extend([current, current + 1]);
    let [older, newer]: [String; 2] = python_codes(&secret, &[current, current + 1])
        .try_into()
        .unwrap();
    let again = alice.code(&newer).await;
    assert_eq!(again.status, 303, "{}", again.body);
    alice.sign_out().await;
    let next = alice.sign_in("alice", password_of("alice"), "/start").await;
    assert_eq!(next.location.as_deref(), Some("/signin/totp"));
    let stale = alice.code(&older).await;
    assert_eq!(stale.status, 401, "{}", stale.body);
    assert!(stale.body.contains("already used"), "{}", stale.body);
    assert!(!stale.sets("rg_session"));
}

async fn pending_state_is_single_use_and_bound_to_the_browser(db: TestStore) {
    let state = seeded(&db).await;
    let store = state.store.clone();
    let base = spawn_state(state);
    let secret = enable_in_store(store.as_ref(), "bob").await;
    let mut used = HashSet::new();

    let mut bob = Browser::new(&base);
    let pending = bob.sign_in("bob", password_of("bob"), "/start").await;
    assert_eq!(pending.location.as_deref(), Some("/signin/totp"));
    let step = bob.get("/signin/totp").await;
    let csrf = hidden(&step.body, "csrf");
    let pending_cookie = bob.cookie("rg_mfa").unwrap().to_owned();

    // Another browser (no pending cookie) cannot finish bob's sign-in.
    let mut other = Browser::new(&base);
    assert_eq!(
        other.get("/signin/totp").await.location.as_deref(),
        Some("/signin")
    );
    let code = fresh_code(&secret, &mut used, &db).await;
    let stolen = other
        .post("/signin/totp", &[("csrf", &csrf), ("code", &code)])
        .await;
    assert_eq!(stolen.status, 401);
    assert!(!stolen.sets("rg_session"));

    // The form's CSRF token is checked.
    let forged = bob
        .post("/signin/totp", &[("csrf", "forged"), ("code", &code)])
        .await;
    assert_eq!(forged.status, 403);
    assert!(!forged.sets("rg_session"));

    let done = bob
        .post("/signin/totp", &[("csrf", &csrf), ("code", &code)])
        .await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert_eq!(done.location.as_deref(), Some("/start"));

    // The pending state is gone: presenting its cookie again finishes nothing,
    // even with another valid, unused code.
    let mut replayer = Browser::new(&base);
    replayer.set_cookie("rg_mfa", "/", &pending_cookie);
    assert_eq!(
        replayer.get("/signin/totp").await.location.as_deref(),
        Some("/signin")
    );
    let another = fresh_code(&secret, &mut used, &db).await;
    let reused = replayer
        .post("/signin/totp", &[("csrf", &csrf), ("code", &another)])
        .await;
    assert_eq!(reused.status, 401, "{}", reused.body);
    assert!(!reused.sets("rg_session"));
    assert!(reused.body.contains("sign in again"), "{}", reused.body);
}

async fn wrong_codes_count_towards_lock_out(db: TestStore) {
    let state = seeded(&db).await;
    let store = state.store.clone();
    let base = spawn_state(state);
    let secret = enable_in_store(store.as_ref(), "carol").await;
    let mut carol = Browser::new(&base);

    // Two wrong passwords, then the right one: the counter is not reset before
    // the code, so a known password cannot buy unlimited code guesses.
    for _ in 0..2 {
        let page = carol.sign_in("carol", "not-the-password", "/start").await;
        assert_eq!(page.status, 401);
    }
    let pending = carol.sign_in("carol", password_of("carol"), "/start").await;
    assert_eq!(pending.location.as_deref(), Some("/signin/totp"));
    for _ in 0..2 {
        assert_eq!(carol.code(&wrong_code(&secret, &db)).await.status, 401);
    }
    let locked = carol.code(&wrong_code(&secret, &db)).await;
    assert_eq!(locked.status, 429, "fifth failure locks: {}", locked.body);
    assert!(
        locked.body.contains("Too many failed sign-ins"),
        "{}",
        locked.body
    );
    assert!(carol.cookie("rg_mfa").is_none(), "pending sign-in dropped");

    // Locked: neither the password nor a right code gets in now.
    let refused = carol.sign_in("carol", password_of("carol"), "/start").await;
    assert_eq!(refused.status, 429, "{}", refused.body);
    let records = audit_of(store.as_ref(), "carol", "portal:SignIn").await;
    assert_eq!(
        records
            .iter()
            .filter(
                |r| r.outcome == Outcome::Failure && r.details["reason"] == "wrong second factor"
            )
            .count(),
        3,
        "{records:?}"
    );
    assert!(
        records
            .iter()
            .any(|r| r.details["locked_until"].is_string()),
        "{records:?}"
    );
    assert!(!records.iter().any(|r| r.outcome == Outcome::Success));
}

async fn disabling_requires_a_current_code(db: TestStore) {
    let state = seeded(&db).await;
    let store = state.store.clone();
    let base = spawn_state(state);
    let secret = enable_in_store(store.as_ref(), "alice").await;
    let mut used = HashSet::new();
    let mut alice = Browser::new(&base);

    alice.sign_in("alice", password_of("alice"), "/start").await;
    let code = fresh_code(&secret, &mut used, &db).await;
    assert_eq!(alice.code(&code).await.status, 303);

    let page = alice.get("/account/mfa").await;
    assert!(page.body.contains("<strong>on</strong>"), "{}", page.body);
    assert!(page.body.contains(r#"id="code""#));
    assert!(!page.body.contains(r#"id="totp-secret""#));
    let csrf = hidden(&page.body, "csrf");

    let forged = alice
        .post(
            "/account/mfa/disable",
            &[("csrf", "forged"), ("code", "123456")],
        )
        .await;
    assert_eq!(forged.status, 403);
    let wrong = alice
        .post(
            "/account/mfa/disable",
            &[("csrf", &csrf), ("code", &wrong_code(&secret, &db))],
        )
        .await;
    assert_eq!(wrong.status, 400);
    assert!(wrong.body.contains("<strong>on</strong>"), "still on");
    let replayed = alice
        .post("/account/mfa/disable", &[("csrf", &csrf), ("code", &code)])
        .await;
    assert_eq!(replayed.status, 400, "the sign-in's code is spent");
    let name = UserName::parse("alice").unwrap();
    assert!(
        store
            .get_user(DIRECTORY_SOURCE_ID, &name)
            .await
            .unwrap()
            .totp_secret
            .is_some()
    );

    let code = fresh_code(&secret, &mut used, &db).await;
    let off = alice
        .post("/account/mfa/disable", &[("csrf", &csrf), ("code", &code)])
        .await;
    assert_eq!(off.status, 303, "{}", off.body);
    let row = store.get_user(DIRECTORY_SOURCE_ID, &name).await.unwrap();
    assert!(row.totp_secret.is_none() && row.totp_enabled_at.is_none());
    let after = alice.get("/account/mfa").await;
    assert!(
        after.body.contains("<strong>off</strong>"),
        "{}",
        after.body
    );
    let records = audit_of(store.as_ref(), "alice", "portal:DeactivateMFADevice").await;
    assert!(records.iter().any(|r| r.outcome == Outcome::Success));
    assert!(has_reason(
        &records,
        Outcome::Failure,
        "wrong second factor"
    ));

    // Off again: the password alone signs in.
    alice.sign_out().await;
    let back = alice.sign_in("alice", password_of("alice"), "/start").await;
    assert_eq!(back.location.as_deref(), Some("/start"));
    assert!(back.sets("rg_session"));
}

async fn users_without_totp_and_federated_users(db: TestStore) {
    let state = seeded(&db).await;
    let cache = state.cache.clone();
    let base = spawn_state(state);

    // A directory user without TOTP: password only, exactly as before.
    let mut bob = Browser::new(&base);
    let signed_in = bob.sign_in("bob", password_of("bob"), "/start").await;
    assert_eq!(signed_in.status, 303);
    assert_eq!(signed_in.location.as_deref(), Some("/start"));
    assert!(signed_in.sets("rg_session") && !signed_in.sets("rg_mfa"));
    // Without a pending sign-in there is no code step.
    assert_eq!(
        bob.get("/signin/totp").await.location.as_deref(),
        Some("/signin")
    );
    let posted = bob
        .post("/signin/totp", &[("csrf", "x"), ("code", "123456")])
        .await;
    assert_eq!(posted.status, 401);

    // Someone signed in through a federated source: their IdP handles second
    // factors. (The session is planted in the cache the way the portal stores it.)
    let id = "federated-session-id-for-the-totp-test";
    let key = format!(
        "portal-session:{}",
        hex::encode(<sha2::Sha256 as sha2::Digest>::digest(id.as_bytes()))
    );
    let session = serde_json::json!({
        "identity": {
            "source_id": "corp-oidc",
            "user_name": "dana@example.com",
            "display_name": "Dana",
            "email": "dana@example.com",
            "groups": []
        },
        "csrf": "csrf-of-the-federated-session"
    });
    cache
        .put(
            &key,
            &serde_json::to_vec(&session).unwrap(),
            Duration::from_secs(600),
        )
        .await
        .unwrap();
    let mut dana = Browser::new(&base);
    dana.set_cookie("rg_session", "/", id);
    let page = dana.get("/account/mfa").await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains(r#"id="mfa-federated""#), "{}", page.body);
    assert!(!page.body.contains(r#"id="totp-secret""#));
    let refused = dana
        .post(
            "/account/mfa",
            &[
                ("csrf", "csrf-of-the-federated-session"),
                ("code", "123456"),
            ],
        )
        .await;
    assert_eq!(refused.status, 400);
}

/// Turning the second factor on ends every other portal session of the user (one
/// opened with a stolen password must not outlive the new factor), and so does
/// turning it off; the session that made the change goes on, under a new id.
async fn turning_totp_on_or_off_ends_other_sessions(db: TestStore) {
    let state = seeded(&db).await;
    let base = spawn_state(state);
    let mut used = HashSet::new();
    let mut alice = Browser::new(&base);
    let mut elsewhere = Browser::new(&base);
    let mut bob = Browser::new(&base);
    for (browser, user) in [
        (&mut alice, "alice"),
        (&mut elsewhere, "alice"),
        (&mut bob, "bob"),
    ] {
        let page = browser.sign_in(user, password_of(user), "/start").await;
        assert_eq!(page.location.as_deref(), Some("/start"), "{}", page.body);
    }
    let old_cookie = alice.cookie("rg_session").unwrap().to_owned();

    let setup = alice.get("/account/mfa").await;
    let secret = element_text(&setup.body, "totp-secret");
    let csrf = hidden(&setup.body, "csrf");
    let code = fresh_code(&secret, &mut used, &db).await;
    let on = alice
        .post("/account/mfa", &[("csrf", &csrf), ("code", &code)])
        .await;
    assert_eq!(on.status, 303, "{}", on.body);
    assert!(on.sets("rg_session"), "the changing session gets a new id");
    assert_ne!(alice.cookie("rg_session").unwrap(), old_cookie);
    assert_eq!(
        alice.get("/start").await.status,
        200,
        "this session goes on"
    );
    let mut stale = Browser::new(&base);
    stale.set_cookie("rg_session", "/", &old_cookie);
    assert_eq!(stale.get("/start").await.status, 303, "the old id is over");
    assert_eq!(
        elsewhere.get("/start").await.status,
        303,
        "alice's other session ended when TOTP was turned on"
    );
    assert_eq!(
        bob.get("/start").await.status,
        200,
        "other users keep theirs"
    );

    // Signed in again with both factors, then turned off in the first browser.
    let pending = elsewhere
        .sign_in("alice", password_of("alice"), "/start")
        .await;
    assert_eq!(pending.location.as_deref(), Some("/signin/totp"));
    let code = fresh_code(&secret, &mut used, &db).await;
    assert_eq!(elsewhere.code(&code).await.status, 303);
    assert_eq!(elsewhere.get("/start").await.status, 200);
    let page = alice.get("/account/mfa").await;
    let csrf = hidden(&page.body, "csrf");
    let code = fresh_code(&secret, &mut used, &db).await;
    let off = alice
        .post("/account/mfa/disable", &[("csrf", &csrf), ("code", &code)])
        .await;
    assert_eq!(off.status, 303, "{}", off.body);
    assert!(off.sets("rg_session"));
    assert_eq!(alice.get("/start").await.status, 200);
    assert_eq!(
        elsewhere.get("/start").await.status,
        303,
        "alice's other session ended when TOTP was turned off"
    );
    assert_eq!(bob.get("/start").await.status, 200);

    // New sign-ins after the change are not affected by it.
    let again = elsewhere
        .sign_in("alice", password_of("alice"), "/start")
        .await;
    assert_eq!(again.location.as_deref(), Some("/start"));
    assert_eq!(elsewhere.get("/start").await.status, 200);
}

/// A cache that, when a code's time step is claimed (the code was right), first
/// locks the user as concurrent wrong guesses counted meanwhile would have (through
/// the directory's own failure counting, over the real cache).
struct LockWhileChecking {
    inner: std::sync::Arc<dyn rolegate::cache::Cache>,
    directory: rolegate::idp::directory::DirectoryAuth,
}

/// The client network of in-process test requests (no proxy in front).
const LOCAL_NETWORK: &str = "127.0.0.1";

#[async_trait::async_trait]
impl rolegate::cache::Cache for LockWhileChecking {
    async fn put(
        &self,
        key: &str,
        value: &[u8],
        ttl: Duration,
    ) -> Result<(), rolegate::cache::CacheError> {
        self.inner.put(key, value, ttl).await
    }
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, rolegate::cache::CacheError> {
        self.inner.get(key).await
    }
    async fn put_if_absent(
        &self,
        key: &str,
        value: &[u8],
        ttl: Duration,
    ) -> Result<bool, rolegate::cache::CacheError> {
        if key.starts_with("totp-used:") {
            let carol = UserName::parse("carol").unwrap();
            for _ in 0..self.directory.policy().max_failures {
                self.directory
                    .count_failure(
                        DIRECTORY_SOURCE_ID,
                        &carol,
                        LOCAL_NETWORK,
                        chrono::Utc::now(),
                    )
                    .await
                    .map_err(|e| rolegate::cache::CacheError(e.to_string()))?;
            }
        }
        self.inner.put_if_absent(key, value, ttl).await
    }
    async fn delete(&self, key: &str) -> Result<(), rolegate::cache::CacheError> {
        self.inner.delete(key).await
    }
    async fn incr(&self, key: &str, ttl: Duration) -> Result<u64, rolegate::cache::CacheError> {
        self.inner.incr(key, ttl).await
    }
    async fn set_add(
        &self,
        key: &str,
        member: &str,
        ttl: Duration,
    ) -> Result<(), rolegate::cache::CacheError> {
        self.inner.set_add(key, member, ttl).await
    }
    async fn set_members(&self, key: &str) -> Result<Vec<String>, rolegate::cache::CacheError> {
        self.inner.set_members(key).await
    }
    async fn set_remove(&self, key: &str, member: &str) -> Result<(), rolegate::cache::CacheError> {
        self.inner.set_remove(key, member).await
    }
}

/// Racing submissions all pass the lock check before any wrong one is counted: a
/// lock set while a right code is being checked still refuses it, at sign-in and
/// when turning the factor off.
async fn totp_lock_set_during_the_check_refuses_a_right_code(db: TestStore) {
    let mut state = seeded(&db).await;
    let store = state.store.clone();
    let inner = state.cache.clone();
    let secret = enable_in_store(store.as_ref(), "carol").await;
    let unlocked = state.second_factor.clone();
    // The code checks (the second-factor service) go through the locking cache.
    let locking: std::sync::Arc<dyn rolegate::cache::Cache> =
        std::sync::Arc::new(LockWhileChecking {
            inner: inner.clone(),
            directory: rolegate::idp::directory::DirectoryAuth::new(store.clone(), inner.clone()),
        });
    state.second_factor = std::sync::Arc::new(rolegate::service::second_factor::SecondFactor::new(
        locking,
        store.clone(),
        state.sealer.clone(),
    ));
    let directory = rolegate::idp::directory::DirectoryAuth::new(store.clone(), inner.clone());
    // The same cache behind a server that sets no lock: where carol signs in.
    let mut plain = state.clone();
    plain.second_factor = unlocked;
    let plain_base = spawn_state(plain);
    let base = spawn_state(state);
    let mut used = HashSet::new();

    let mut signed_in = Browser::new(&plain_base);
    signed_in
        .sign_in("carol", password_of("carol"), "/start")
        .await;
    let code = fresh_code(&secret, &mut used, &db).await;
    assert_eq!(signed_in.code(&code).await.status, 303);
    let mut carol = Browser::new(&base);
    carol.set_cookie("rg_session", "/", signed_in.cookie("rg_session").unwrap());
    let page = carol.get("/account/mfa").await;
    assert!(page.body.contains("<strong>on</strong>"), "{}", page.body);
    let csrf = hidden(&page.body, "csrf");
    let code = fresh_code(&secret, &mut used, &db).await;
    let off = carol
        .post("/account/mfa/disable", &[("csrf", &csrf), ("code", &code)])
        .await;
    assert_eq!(off.status, 429, "{}", off.body);
    let name = UserName::parse("carol").unwrap();
    let row = store.get_user(DIRECTORY_SOURCE_ID, &name).await.unwrap();
    assert!(row.totp_secret.is_some(), "still on");
    directory
        .complete_sign_in(DIRECTORY_SOURCE_ID, &name, LOCAL_NETWORK)
        .await
        .unwrap();

    let mut carol = Browser::new(&base);
    let pending = carol.sign_in("carol", password_of("carol"), "/start").await;
    assert_eq!(pending.location.as_deref(), Some("/signin/totp"));
    let code = fresh_code(&secret, &mut used, &db).await;
    let refused = carol.code(&code).await;
    assert_eq!(refused.status, 429, "{}", refused.body);
    assert!(!refused.sets("rg_session"), "no session while locked");
    assert!(carol.cookie("rg_mfa").is_none(), "pending sign-in dropped");
    assert_eq!(carol.get("/start").await.status, 303);
    assert!(
        audit_of(store.as_ref(), "carol", "portal:SignIn")
            .await
            .iter()
            .filter(|r| r.outcome == Outcome::Success)
            .count()
            == 1,
        "only the sign-in on the server without the injected lock"
    );
}

/// Finding 9 of the hardening probe: a stolen session could enrol the thief's
/// authenticator (or turn the owner's off) without knowing the password. Once the
/// sign-in is not recent (`reauthenticate_within`, here 0 s so that no sign-in is),
/// both forms ask for the password; a wrong one is refused, audited and counted like
/// a failed sign-in.
async fn changing_the_second_factor_needs_the_password_after_a_while(db: TestStore) {
    let state = seeded(&db)
        .await
        .with_portal(rolegate::web::PortalSettings {
            reauthenticate_within: Duration::ZERO,
            ..Default::default()
        });
    let store = state.store.clone();
    let base = spawn_state(state);
    let mut used = HashSet::new();
    let mut alice = Browser::new(&base);
    alice.sign_in("alice", password_of("alice"), "/start").await;

    let setup = alice.get("/account/mfa").await;
    assert!(
        setup.body.contains(r#"id="password""#),
        "asks for the password"
    );
    let secret = element_text(&setup.body, "totp-secret");
    let csrf = hidden(&setup.body, "csrf");
    let name = UserName::parse("alice").unwrap();

    let code = fresh_code(&secret, &mut used, &db).await;
    let without = alice
        .post("/account/mfa", &[("csrf", &csrf), ("code", &code)])
        .await;
    assert_eq!(without.status, 401, "{}", without.body);
    let wrong = alice
        .post_with_password("/account/mfa", &csrf, &code, "not-hers")
        .await;
    assert_eq!(wrong.status, 401);
    assert!(wrong.body.contains("password"), "{}", wrong.body);
    let row = store.get_user(DIRECTORY_SOURCE_ID, &name).await.unwrap();
    assert!(row.totp_secret.is_none(), "nothing enrolled");
    assert!(has_reason(
        &audit_of(store.as_ref(), "alice", "portal:EnableMFADevice").await,
        Outcome::Failure,
        "password confirmation failed"
    ));

    // The refused attempts never reached the code: it is still unused.
    let on = alice
        .post_with_password("/account/mfa", &csrf, &code, password_of("alice"))
        .await;
    assert_eq!(on.status, 303, "{}", on.body);
    assert!(
        store
            .get_user(DIRECTORY_SOURCE_ID, &name)
            .await
            .unwrap()
            .totp_secret
            .is_some()
    );

    // Turning it off asks the same.
    let page = alice.get("/account/mfa").await;
    let csrf = hidden(&page.body, "csrf");
    let code = fresh_code(&secret, &mut used, &db).await;
    let without = alice
        .post("/account/mfa/disable", &[("csrf", &csrf), ("code", &code)])
        .await;
    assert_eq!(without.status, 401);
    let off = alice
        .post_with_password("/account/mfa/disable", &csrf, &code, password_of("alice"))
        .await;
    assert_eq!(off.status, 303, "{}", off.body);
}

both_backends!(
    enrol_then_sign_in_needs_the_code,
    pending_state_is_single_use_and_bound_to_the_browser,
    wrong_codes_count_towards_lock_out,
    disabling_requires_a_current_code,
    users_without_totp_and_federated_users,
    turning_totp_on_or_off_ends_other_sessions,
    totp_lock_set_during_the_check_refuses_a_right_code,
    changing_the_second_factor_needs_the_password_after_a_while,
);

/// In Chromium: a deep link to a role's console, the password, a wrong code (an
/// error on the page), the right code, and the console the link asked for.
async fn second_factor_in_chromium(db: TestStore) {
    use crate::browser::{submit_sign_in, with_browser};
    use anyhow::{Context, ensure};
    use thirtyfour::prelude::*;

    let state = seeded(&db).await;
    let secret = enable_in_store(state.store.as_ref(), "alice").await;
    let base = spawn_state(state);
    with_browser("totp-chromium", |browser| async move {
        let outcome = async {
            let mut used = HashSet::new();
            browser
                .goto(&format!(
                    "{base}/start#/account/{}/role/ReadOnly/console",
                    seed::DEMO_ACCOUNT_ID
                ))
                .await?;
            browser.wait_for_path("/signin").await?;
            submit_sign_in(&browser, "alice", password_of("alice")).await?;
            browser.wait_for_path("/signin/totp").await?;
            let shots = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
            std::fs::create_dir_all(&shots)?;
            browser
                .driver()
                .screenshot(&shots.join("totp-code-step.png"))
                .await?;

            let code = browser.find("#code").await?;
            code.send_keys(&wrong_code(&secret, &db)).await?;
            let submit = browser.find("form[action='/signin/totp'] button").await?;
            browser.click_to_next_page(&submit).await?;
            let alert = browser.find("p.error[role=alert]").await?.text().await?;
            ensure!(alert.contains("not correct"), "error shown: {alert:?}");

            let right = fresh_code(&secret, &mut used, &db).await;
            browser.find("#code").await?.send_keys(&right).await?;
            browser
                .find("form[action='/signin/totp'] button")
                .await?
                .click()
                .await?;
            let arn = browser
                .find("#assumed-role-arn")
                .await
                .context("the deep link's console after the code")?
                .text()
                .await?;
            ensure!(
                arn.contains("assumed-role/ReadOnly/alice"),
                "deep link opened {arn}"
            );

            browser.goto(&format!("{base}/account/mfa")).await?;
            let status = browser.find("#mfa-status").await?.text().await?;
            browser
                .driver()
                .screenshot(&shots.join("totp-account-on.png"))
                .await?;
            ensure!(status.contains("is on"), "status {status:?}");
            ensure!(
                browser
                    .driver()
                    .find_all(By::Css("#totp-secret"))
                    .await?
                    .is_empty(),
                "no secret shown once enabled"
            );
            Ok(())
        }
        .await;
        (browser, outcome)
    })
    .await;
}

mod chromium {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn second_factor_in_chromium_sqlite() {
        super::second_factor_in_chromium(crate::helpers::sqlite_store().await).await
    }
}
