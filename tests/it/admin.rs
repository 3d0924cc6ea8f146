//! The admin API over real HTTP on both backends: authentication (portal session
//! with CSRF, read/write API tokens, expiry on the injected clock, revocation),
//! the error body, tokens never shown or stored in plain, audit events and their
//! NDJSON export, ending a person's sessions, `rolegate admin bootstrap`, and the
//! OpenAPI document (valid, and every path it names is routed).

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use reqwest::{Method, StatusCode};
use rolegate::service::admin_access::AdminGroup;
use rolegate::web::AppState;
use serde_json::{Value, json};

use crate::admin_client::{API, Auth, call, person, session_of, with_admins};
use crate::both_backends;
use crate::helpers::{TestStore, app_state, rolegate_bin, spawn_state};
use crate::web_client::Browser;

/// The state with `directory:admins` as the admin group, and its server.
async fn admin_server(db: &TestStore) -> (AppState, String) {
    let state = with_admins(app_state(db.store.clone()).await);
    let base = spawn_state(state.clone());
    (state, base)
}

/// Creates a token as `auth`: (id, secret).
async fn create_token(
    base: &str,
    auth: Auth<'_>,
    name: &str,
    scope: &str,
    days: Option<i64>,
) -> (String, String) {
    let mut body = json!({ "name": name, "scope": scope });
    if let Some(days) = days {
        body["expires_in_days"] = json!(days);
    }
    let created = call(base, Method::POST, "/tokens", auth, Some(body)).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    let json = created.json();
    (
        json["id"].as_str().unwrap().to_owned(),
        json["secret"].as_str().unwrap().to_owned(),
    )
}

async fn admin_authentication_errors(db: TestStore) {
    let (state, base) = admin_server(&db).await;

    let anonymous = call(&base, Method::GET, "/whoami", Auth::None, None).await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    assert_eq!(anonymous.headers["cache-control"], "no-store");
    let body = anonymous.json();
    assert_eq!(body["error"]["code"], "UNAUTHENTICATED");
    assert!(body["error"]["message"].as_str().unwrap().len() > 10);
    assert_eq!(body.as_object().unwrap().len(), 1, "{body}");

    for bad in ["rgat_0011223344556677_nope", "not-a-token", ""] {
        let answer = call(&base, Method::GET, "/tokens", Auth::Token(bad), None).await;
        assert_eq!(
            answer.status,
            StatusCode::UNAUTHORIZED,
            "{bad}: {}",
            answer.text
        );
        assert_eq!(answer.code(), "UNAUTHENTICATED");
    }

    let (bob, bob_csrf) = session_of(&state, person("bob", &["developers"])).await;
    let refused = call(
        &base,
        Method::GET,
        "/whoami",
        Auth::session(&bob, &bob_csrf),
        None,
    )
    .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert_eq!(refused.code(), "NOT_AN_ADMIN");

    // The same group name from another identity source is not the admin group.
    let mut corp = person("mallory", &["admins"]);
    corp.source_id = "corp".into();
    let (mallory, _) = session_of(&state, corp).await;
    let refused = call(&base, Method::GET, "/whoami", Auth::cookie(&mallory), None).await;
    assert_eq!(refused.code(), "NOT_AN_ADMIN");

    // Unknown endpoints answer in the same shape; the document needs no credentials.
    let unknown = call(&base, Method::GET, "/no-such-thing", Auth::None, None).await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert_eq!(unknown.code(), "NOT_FOUND");
    let document = call(&base, Method::GET, "/openapi.json", Auth::None, None).await;
    assert_eq!(document.status, StatusCode::OK);
    assert_eq!(document.json()["openapi"], "3.1.0");

    // Failed authentications are audited.
    let failures = state
        .store
        .list_audit_filtered(
            &rolegate::store::AuditFilter {
                action: Some("admin:Authenticate".into()),
                ..Default::default()
            },
            100,
        )
        .await
        .unwrap();
    assert!(
        failures
            .iter()
            .any(|e| e.actor == "anonymous" && e.details["reason"] == "unknown token"),
        "{failures:?}"
    );
    assert!(
        failures.iter().any(|e| e.actor == "directory:bob"),
        "{failures:?}"
    );
}

async fn admin_session_writes_need_csrf(db: TestStore) {
    let (state, base) = admin_server(&db).await;
    let (alice, csrf) = session_of(&state, person("alice", &["admins", "developers"])).await;

    let me = call(&base, Method::GET, "/whoami", Auth::cookie(&alice), None).await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.text);
    assert_eq!(me.headers["cache-control"], "no-store");
    let me = me.json();
    assert_eq!(me["actor"], "directory:alice");
    assert_eq!(me["via"], "session");
    assert_eq!(me["scope"], "write");
    assert_eq!(me["csrf_token"], csrf.as_str());

    let body = json!({ "name": "ci", "scope": "read" });
    let missing = call(
        &base,
        Method::POST,
        "/tokens",
        Auth::cookie(&alice),
        Some(body.clone()),
    )
    .await;
    assert_eq!(missing.status, StatusCode::FORBIDDEN);
    assert_eq!(missing.code(), "CSRF_TOKEN_INVALID");
    let wrong = call(
        &base,
        Method::POST,
        "/tokens",
        Auth::session(&alice, "forged"),
        Some(body.clone()),
    )
    .await;
    assert_eq!(wrong.code(), "CSRF_TOKEN_INVALID");
    let made = call(
        &base,
        Method::POST,
        "/tokens",
        Auth::session(&alice, &csrf),
        Some(body),
    )
    .await;
    assert_eq!(made.status, StatusCode::CREATED, "{}", made.text);

    // Bodies that are not JSON, or not the expected shape, or break a rule.
    let session = || Auth::session(&alice, &csrf);
    let bad_scope = call(
        &base,
        Method::POST,
        "/tokens",
        session(),
        Some(json!({ "name": "x", "scope": "admin" })),
    )
    .await;
    assert_eq!(
        (bad_scope.status, bad_scope.code()),
        (StatusCode::UNPROCESSABLE_ENTITY, "MALFORMED_JSON")
    );
    let too_long = call(
        &base,
        Method::POST,
        "/tokens",
        session(),
        Some(json!({ "name": "x", "scope": "read", "expires_in_days": 366 })),
    )
    .await;
    assert_eq!(too_long.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(too_long.json()["error"]["pointer"], "/expires_in_days");
    let not_json = reqwest::Client::new()
        .post(format!("{base}{API}/tokens"))
        .header("cookie", format!("rg_session={alice}"))
        .header("x-csrf-token", &csrf)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(not_json.status(), StatusCode::BAD_REQUEST);
    let error: Value = not_json.json().await.unwrap();
    assert_eq!(error["error"]["code"], "MALFORMED_JSON");
}

/// The stored rows of admin_tokens: (id, secret_sha256, every column as text).
async fn token_rows(db: &TestStore) -> Vec<(String, String, String)> {
    use sqlx::{Connection, Row};
    let sql = "SELECT id, secret_sha256, name || '|' || scope || '|' || created_by AS everything FROM admin_tokens";
    if db.url.starts_with("sqlite:") {
        let mut conn = sqlx::SqliteConnection::connect(&db.url).await.unwrap();
        sqlx::query(sql)
            .fetch_all(&mut conn)
            .await
            .unwrap()
            .into_iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect()
    } else {
        let mut conn = sqlx::PgConnection::connect(&db.url).await.unwrap();
        sqlx::query(sql)
            .fetch_all(&mut conn)
            .await
            .unwrap()
            .into_iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect()
    }
}

async fn admin_tokens_scope_expiry_and_revocation(db: TestStore) {
    let (state, base) = admin_server(&db).await;
    let (alice, csrf) = session_of(&state, person("alice", &["admins"])).await;
    let session = || Auth::session(&alice, &csrf);

    let (read_id, read) = create_token(&base, session(), "reader", "read", None).await;
    let (write_id, write) = create_token(&base, session(), "writer", "write", None).await;
    let (short_id, short) = create_token(&base, session(), "short", "write", Some(1)).await;
    assert!(read.starts_with("rgat_") && write.starts_with("rgat_"));

    // A read token reads, and may not write.
    let me = call(&base, Method::GET, "/whoami", Auth::Token(&read), None)
        .await
        .json();
    assert_eq!(me["actor"], format!("token:{read_id} (directory:alice)"));
    assert_eq!(
        (me["via"].as_str(), me["scope"].as_str()),
        (Some("token"), Some("read"))
    );
    let listed = call(&base, Method::GET, "/tokens", Auth::Token(&read), None).await;
    assert_eq!(listed.status, StatusCode::OK);
    let refused = call(
        &base,
        Method::POST,
        "/tokens",
        Auth::Token(&read),
        Some(json!({ "name": "x", "scope": "read" })),
    )
    .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert_eq!(refused.code(), "INSUFFICIENT_SCOPE");
    let refused = call(
        &base,
        Method::DELETE,
        &format!("/tokens/{short_id}"),
        Auth::Token(&read),
        None,
    )
    .await;
    assert_eq!(refused.code(), "INSUFFICIENT_SCOPE");

    // A write token writes without any CSRF header (it is not a cookie).
    let (_, made_by_token) =
        create_token(&base, Auth::Token(&write), "chained", "read", None).await;
    assert!(made_by_token.starts_with("rgat_"));

    // Secrets are never listed, and stored only as their SHA-256.
    let listed = call(&base, Method::GET, "/tokens", Auth::Token(&write), None).await;
    for secret in [&read, &write, &short, &made_by_token] {
        // The secret follows the hex id's underscore; it may hold underscores itself.
        let secret_part = secret
            .strip_prefix("rgat_")
            .unwrap()
            .split_once('_')
            .unwrap()
            .1;
        assert!(
            !listed.text.contains(secret_part),
            "GET /tokens shows a secret"
        );
    }
    let tokens = listed.json()["tokens"].as_array().unwrap().clone();
    assert_eq!(tokens.len(), 4);
    assert!(
        tokens
            .iter()
            .all(|t| t.get("secret").is_none() && t.get("secret_sha256").is_none())
    );
    assert!(
        tokens
            .iter()
            .any(|t| t["id"] == read_id.as_str() && t["last_used_at"].is_string())
    );
    let rows = token_rows(&db).await;
    assert_eq!(rows.len(), 4);
    for (id, hash, everything) in &rows {
        let secret = [&read, &write, &short, &made_by_token]
            .into_iter()
            .find(|s| {
                format!(
                    "at-{}",
                    s.trim_start_matches("rgat_").split_once('_').unwrap().0
                ) == *id
            })
            .unwrap();
        let secret_part = secret
            .trim_start_matches("rgat_")
            .split_once('_')
            .unwrap()
            .1;
        assert_eq!(hash, &rolegate::cache::digest(secret_part));
        assert!(!hash.contains(secret_part) && !everything.contains(secret_part));
    }

    // Revoked: refused at once.
    let revoked = call(
        &base,
        Method::DELETE,
        &format!("/tokens/{read_id}"),
        Auth::Token(&write),
        None,
    )
    .await;
    assert_eq!(revoked.status, StatusCode::NO_CONTENT, "{}", revoked.text);
    let refused = call(&base, Method::GET, "/whoami", Auth::Token(&read), None).await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    let missing = call(
        &base,
        Method::DELETE,
        "/tokens/at-0000000000000000",
        Auth::Token(&write),
        None,
    )
    .await;
    assert_eq!(
        (missing.status, missing.code()),
        (StatusCode::NOT_FOUND, "NOT_FOUND")
    );

    // Expired: refused once the clock passes its end (no sleeping).
    assert_eq!(
        call(&base, Method::GET, "/whoami", Auth::Token(&short), None)
            .await
            .status,
        StatusCode::OK
    );
    db.hand.advance(Duration::from_secs(86_400 + 60));
    let expired = call(&base, Method::GET, "/whoami", Auth::Token(&short), None).await;
    assert_eq!(expired.status, StatusCode::UNAUTHORIZED);
    assert_eq!(expired.code(), "UNAUTHENTICATED");
    // The 90-day token still works, and acts for alice though her session is over.
    let me = call(&base, Method::GET, "/whoami", Auth::Token(&write), None).await;
    assert_eq!(me.status, StatusCode::OK);
    let statuses: Vec<(String, String)> =
        call(&base, Method::GET, "/tokens", Auth::Token(&write), None)
            .await
            .json()["tokens"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| {
                (
                    t["id"].as_str().unwrap().to_owned(),
                    t["status"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
    assert!(
        statuses.contains(&(read_id, "revoked".into())),
        "{statuses:?}"
    );
    assert!(
        statuses.contains(&(short_id, "expired".into())),
        "{statuses:?}"
    );
    assert!(
        statuses.contains(&(write_id, "active".into())),
        "{statuses:?}"
    );
}

async fn admin_audit_events_and_export(db: TestStore) {
    let (state, base) = admin_server(&db).await;
    let (alice, csrf) = session_of(&state, person("alice", &["admins"])).await;
    let session = || Auth::session(&alice, &csrf);
    let (id, secret) = create_token(&base, session(), "auditor", "read", Some(30)).await;
    let revoked = call(
        &base,
        Method::DELETE,
        &format!("/tokens/{id}"),
        session(),
        None,
    )
    .await;
    assert_eq!(revoked.status, StatusCode::NO_CONTENT);

    let created = call(
        &base,
        Method::GET,
        "/audit-events?action=admin:CreateToken&actor=directory:alice",
        session(),
        None,
    )
    .await;
    assert_eq!(created.status, StatusCode::OK, "{}", created.text);
    let events = created.json()["events"].as_array().unwrap().clone();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["target"], id.as_str());
    assert_eq!(events[0]["outcome"], "success");
    assert_eq!(events[0]["details"]["name"], "auditor");
    assert_eq!(events[0]["details"]["scope"], "read");
    assert!(events[0]["details"]["expires_at"].is_string());
    let revokes = call(
        &base,
        Method::GET,
        "/audit-events?action=admin:RevokeToken",
        session(),
        None,
    )
    .await
    .json();
    assert_eq!(revokes["events"][0]["actor"], "directory:alice");
    assert_eq!(revokes["events"][0]["details"]["token_id"], id.as_str());

    // Time and outcome filters, paging, and refusals of bad parameters.
    let future = (state.clock.now() + chrono::Duration::hours(1))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let none = call(
        &base,
        Method::GET,
        &format!("/audit-events?since={future}"),
        session(),
        None,
    )
    .await
    .json();
    assert_eq!(none["events"].as_array().unwrap().len(), 0);
    let until = call(
        &base,
        Method::GET,
        &format!("/audit-events?until={future}&outcome=success&limit=1"),
        session(),
        None,
    )
    .await
    .json();
    assert_eq!(until["events"].as_array().unwrap().len(), 1);
    let next = until["next_before"].as_i64().unwrap();
    let page2 = call(
        &base,
        Method::GET,
        &format!("/audit-events?before={next}&limit=1"),
        session(),
        None,
    )
    .await
    .json();
    assert!(page2["events"][0]["id"].as_i64().unwrap() < next);
    let bad = call(
        &base,
        Method::GET,
        "/audit-events?since=yesterday",
        session(),
        None,
    )
    .await;
    assert_eq!(
        (bad.status, bad.code()),
        (StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_ERROR")
    );
    let bad = call(
        &base,
        Method::GET,
        "/audit-events?outcome=maybe",
        session(),
        None,
    )
    .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);

    // The export: NDJSON, one event per line, never the secret.
    let export = call(
        &base,
        Method::GET,
        "/audit-events/export?actor=directory:alice",
        session(),
        None,
    )
    .await;
    assert_eq!(export.status, StatusCode::OK);
    assert_eq!(export.headers["content-type"], "application/x-ndjson");
    let lines: Vec<Value> = export
        .text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "{}", export.text);
    assert_eq!(lines[0]["action"], "admin:RevokeToken");
    assert_eq!(lines[1]["action"], "admin:CreateToken");
    let everything = call(&base, Method::GET, "/audit-events/export", session(), None).await;
    // The secret follows the hex id's underscore; it may hold underscores itself.
    let secret_part = secret
        .strip_prefix("rgat_")
        .unwrap()
        .split_once('_')
        .unwrap()
        .1;
    assert!(
        !everything.text.contains(secret_part),
        "a secret reached the audit log"
    );
}

async fn admin_people_sessions_list_and_revoke(db: TestStore) {
    let (state, base) = admin_server(&db).await;
    let (alice, csrf) = session_of(&state, person("alice", &["admins"])).await;
    // dave is an admin too, so his cookie's working can be seen on the admin API.
    let (dave1, _) = session_of(&state, person("dave", &["admins"])).await;
    let (dave2, _) = session_of(&state, person("Dave", &["admins"])).await;
    for dave in [&dave1, &dave2] {
        let me = call(&base, Method::GET, "/whoami", Auth::cookie(dave), None).await;
        assert_eq!(me.status, StatusCode::OK);
    }

    let listed = call(
        &base,
        Method::GET,
        "/people/directory/dave/sessions",
        Auth::cookie(&alice),
        None,
    )
    .await;
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.text);
    let listed = listed.json();
    assert_eq!(
        listed["portal_sessions"].as_array().unwrap().len(),
        2,
        "{listed}"
    );
    assert_eq!(listed["terminal_sign_ins"].as_array().unwrap().len(), 0);
    // Handles only, never the session ids (bearer credentials).
    assert!(!listed.to_string().contains(&dave1));

    let refused = call(
        &base,
        Method::DELETE,
        "/people/directory/dave/sessions",
        Auth::cookie(&alice),
        None,
    )
    .await;
    assert_eq!(refused.code(), "CSRF_TOKEN_INVALID");
    let ended = call(
        &base,
        Method::DELETE,
        "/people/directory/dave/sessions",
        Auth::session(&alice, &csrf),
        None,
    )
    .await;
    assert_eq!(ended.status, StatusCode::OK, "{}", ended.text);
    assert_eq!(ended.json()["portal_sessions_ended"], 2);
    for dave in [&dave1, &dave2] {
        let me = call(&base, Method::GET, "/whoami", Auth::cookie(dave), None).await;
        assert_eq!(
            me.status,
            StatusCode::UNAUTHORIZED,
            "the cookie still works"
        );
    }
    let mut browser = Browser::new(&base);
    browser.set_cookie("rg_session", "/", &dave1);
    let start = browser.get("/start").await;
    assert_ne!(start.status, 200, "the portal still takes the cookie");
    // alice's own session goes on.
    assert_eq!(
        call(&base, Method::GET, "/whoami", Auth::cookie(&alice), None)
            .await
            .status,
        StatusCode::OK
    );
    let audited = call(
        &base,
        Method::GET,
        "/audit-events?action=admin:RevokeSessions",
        Auth::cookie(&alice),
        None,
    )
    .await
    .json();
    assert_eq!(audited["events"][0]["actor"], "directory:alice");
    assert_eq!(audited["events"][0]["target"], "directory:dave");
}

/// `rolegate admin bootstrap` against `db` with `groups` as `[admin] groups`.
fn bootstrap(db: &TestStore, groups: &str, args: &[&str], stdin: &str) -> (i32, String, String) {
    let mut child = Command::new(rolegate_bin())
        .args(["admin", "bootstrap"])
        .args(args)
        .env_remove("RUST_LOG")
        .env("ROLEGATE_DATABASE__URL", &db.url)
        .env("ROLEGATE_ADMIN__GROUPS", groups)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

async fn admin_bootstrap_cli_is_idempotent(db: TestStore) {
    let groups = "corp:platform-admins,directory:platform-admins";
    let password = "a-long-bootstrap-password";
    let args = ["--user", "root", "--password-stdin", "--token", "first"];
    let (code, stdout, stderr) = bootstrap(&db, groups, &args, &format!("{password}\n"));
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(stderr.contains("created directory user root"), "{stderr}");
    let first = stdout.trim().to_owned();
    assert!(first.starts_with("rgat_"), "{stdout}");

    let (code, stdout, stderr) = bootstrap(&db, groups, &args, "another-password-here\n");
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(stderr.contains("already exists: left alone"), "{stderr}");
    let second = stdout.trim().to_owned();
    assert!(second.starts_with("rgat_") && second != first);

    // A user with no directory: admin group to join is refused, clearly.
    let (code, _, stderr) = bootstrap(
        &db,
        "corp:platform-admins",
        &["--user", "x", "--password-stdin"],
        "whatever-password\n",
    );
    assert_ne!(code, 0);
    assert!(stderr.contains("no directory: entry"), "{stderr}");

    let state = app_state(db.store.clone())
        .await
        .with_admin_groups(AdminGroup::parse_all(&["directory:platform-admins".into()]).unwrap());
    let base = spawn_state(state);
    for token in [&first, &second] {
        let me = call(&base, Method::GET, "/whoami", Auth::Token(token), None).await;
        assert_eq!(me.status, StatusCode::OK, "{}", me.text);
        assert!(
            me.json()["actor"]
                .as_str()
                .unwrap()
                .ends_with("(directory:root)")
        );
    }
    // The first password stayed: root signs in with it and is an admin.
    let mut browser = Browser::new(&base);
    let signed_in = browser.sign_in("root", password, "/start").await;
    assert_eq!(signed_in.status, 303, "{}", signed_in.body);
    let cookie = browser.cookie("rg_session").unwrap().to_owned();
    let me = call(&base, Method::GET, "/whoami", Auth::cookie(&cookie), None).await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.text);
    assert_eq!(me.json()["actor"], "directory:root");
}

/// Whether a program of .venv is there: required in CI, skipped (with a reason) elsewhere.
fn venv_program(name: &str) -> Option<std::path::PathBuf> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(".venv/bin")
        .join(name);
    if path.exists() {
        return Some(path);
    }
    let ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
    assert!(
        !ci,
        "{} is missing (required in CI): run scripts/test.sh",
        path.display()
    );
    eprintln!(
        "skipped: {} is missing (scripts/test.sh installs it)",
        path.display()
    );
    None
}

async fn admin_openapi_document_is_valid(db: TestStore) {
    let (_, base) = admin_server(&db).await;
    let served = call(&base, Method::GET, "/openapi.json", Auth::None, None).await;
    assert_eq!(served.status, StatusCode::OK);
    assert!(
        served.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let Some(python) = venv_program("python") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("openapi.json");
    std::fs::write(&file, &served.text).unwrap();
    let output = Command::new(python)
        .args(["-m", "openapi_spec_validator"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "openapi-spec-validator: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

async fn admin_openapi_document_matches_router(db: TestStore) {
    let (state, base) = admin_server(&db).await;
    let (alice, csrf) = session_of(&state, person("alice", &["admins"])).await;
    let session = || Auth::session(&alice, &csrf);
    let (_, write) = create_token(&base, session(), "probe", "write", None).await;
    // A token of its own for DELETE /tokens/{id}, so the probe's stays.
    let (token_id, _) = create_token(&base, session(), "victim", "read", None).await;
    let document: Value = serde_json::from_str(rolegate::web::admin::OPENAPI).unwrap();
    let paths = document["paths"].as_object().unwrap();
    assert!(paths.len() >= 7);
    let mut checked = 0;
    for (path, item) in paths {
        let concrete = path
            .replace("{id}", &token_id)
            .replace("{source}", "directory")
            .replace("{user_name}", "bob")
            .replace("{n}", "1")
            .replace("{account}", "123456789012")
            .replace("{role}", "Developer")
            .replace("{subject}", "bob")
            .replace("{user}", "bob")
            .replace("{group}", "developers")
            .replace("{policy_id}", "ANPANOSUCHPOLICY0000")
            .replace("{version_id}", "v1")
            .replace("{key_id}", "AKIANOSUCHKEY0000000")
            .replace("{provider_id}", "AOPANOSUCHPROVIDER00");
        for method in item.as_object().unwrap().keys() {
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let body = (method == Method::POST || method == Method::PUT || method == Method::PATCH)
                .then(|| json!({}));
            let answer = call(&base, method.clone(), &concrete, Auth::Token(&write), body).await;
            // A documented entity may not exist (404 from its handler); only the
            // router's fallback says the endpoint itself is unknown.
            let unrouted = answer.status == StatusCode::NOT_FOUND
                && answer.text.contains("No admin API endpoint");
            assert!(
                !unrouted && answer.status != StatusCode::METHOD_NOT_ALLOWED,
                "{method} {path} is documented but answers {}: {}",
                answer.status,
                answer.text
            );
            checked += 1;
        }
    }
    assert!(checked >= 20, "{checked}");
}

both_backends!(
    admin_authentication_errors,
    admin_session_writes_need_csrf,
    admin_tokens_scope_expiry_and_revocation,
    admin_audit_events_and_export,
    admin_people_sessions_list_and_revoke,
    admin_bootstrap_cli_is_idempotent,
    admin_openapi_document_is_valid,
    admin_openapi_document_matches_router,
);

/// `rolegate dev`: alice is an admin, and a write-scoped token waits in
/// `<data-dir>/admin-token` (mode 0600), kept across restarts while it works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_dev_makes_alice_an_admin_and_writes_a_token() {
    use crate::helpers::start_binary;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let args = [
        "dev",
        "--listen",
        "127.0.0.1:0",
        "--data-dir",
        data.to_str().unwrap(),
    ];
    let first = start_binary(&args, &[], Duration::from_secs(60));
    let out = first.stdout.join("\n");
    let file = data.join("admin-token");
    assert!(out.contains(&file.display().to_string()), "{out}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let token = std::fs::read_to_string(&file).unwrap().trim().to_owned();
    let me = call(
        &first.base_url,
        Method::GET,
        "/whoami",
        Auth::Token(&token),
        None,
    )
    .await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.text);
    assert_eq!(me.json()["scope"], "write");
    let mut browser = Browser::new(&first.base_url);
    let signed_in = browser
        .sign_in("alice", crate::web_client::password_of("alice"), "/start")
        .await;
    assert_eq!(signed_in.status, 303);
    let cookie = browser.cookie("rg_session").unwrap().to_owned();
    let me = call(
        &first.base_url,
        Method::GET,
        "/whoami",
        Auth::cookie(&cookie),
        None,
    )
    .await;
    assert_eq!(me.json()["actor"], "directory:alice");
    drop(first);

    let second = start_binary(&args, &[], Duration::from_secs(60));
    assert_eq!(
        std::fs::read_to_string(&file).unwrap().trim(),
        token,
        "kept"
    );
    let me = call(
        &second.base_url,
        Method::GET,
        "/whoami",
        Auth::Token(&token),
        None,
    )
    .await;
    assert_eq!(me.status, StatusCode::OK);
}
