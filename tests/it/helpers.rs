//! Shared test fixtures: a fresh database per test on either backend, the real
//! server on port 0, and the real `rolegate` binary as a child process.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

use rolegate::clock::{Clock, ClockHand};
use rolegate::store::{self, Store, StoreOptions};

/// Admin connection to the PostgreSQL server the tests create databases on.
pub fn postgres_admin_url() -> String {
    std::env::var("ROLEGATE_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// A store on a fresh database, dropped with the value. Its clock (which the state
/// and server built on it share) is adjustable: tests that wait for something to
/// expire move it with `hand` instead of sleeping.
pub struct TestStore {
    pub store: Arc<dyn Store>,
    pub url: String,
    pub hand: ClockHand,
    _cleanup: Cleanup,
}

/// Store options with an adjustable clock, and its hand.
pub fn test_store_options() -> (StoreOptions, ClockHand) {
    let (clock, hand) = Clock::adjustable();
    (
        StoreOptions {
            clock,
            ..StoreOptions::default()
        },
        hand,
    )
}

enum Cleanup {
    Sqlite(#[allow(dead_code)] tempfile::TempDir),
    Postgres { name: String },
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Cleanup::Postgres { name } = self {
            drop_postgres_database(name);
        }
    }
}

fn unique_name(prefix: &str) -> String {
    let n: u64 = rand::random();
    format!("{prefix}_{}_{n:016x}", std::process::id())
}

/// A fresh, empty SQLite database file in a temporary directory.
pub async fn sqlite_store() -> TestStore {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", dir.path().join("rolegate.db").display());
    let (options, hand) = test_store_options();
    let store = store::open(&url, &options)
        .await
        .expect("open sqlite store");
    TestStore {
        store,
        url,
        hand,
        _cleanup: Cleanup::Sqlite(dir),
    }
}

/// Creates a uniquely named PostgreSQL database and returns its URL. The PostgreSQL
/// server is a hard requirement: these tests fail (never skip) when it is down.
pub async fn create_postgres_database() -> (String, String) {
    use sqlx::Connection;
    let admin = postgres_admin_url();
    let name = unique_name("rolegate_test");
    let mut conn = sqlx::PgConnection::connect(&admin).await.unwrap_or_else(|e| {
        panic!("PostgreSQL at {admin} is required for these tests (set ROLEGATE_TEST_POSTGRES_URL): {e}")
    });
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await
        .expect("create test database");
    let base = admin.rsplit_once('/').map_or(admin.as_str(), |(b, _)| b);
    (format!("{base}/{name}"), name)
}

fn drop_postgres_database(name: &str) {
    let name = name.to_owned();
    // Drop runs outside any runtime: use a private one on its own thread.
    let _ = std::thread::spawn(move || {
        let Ok(rt) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            return;
        };
        rt.block_on(async {
            use sqlx::Connection;
            if let Ok(mut conn) = sqlx::PgConnection::connect(&postgres_admin_url()).await {
                let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(&mut conn)
                    .await;
            }
        });
    })
    .join();
}

/// A fresh PostgreSQL database with the migrations applied.
pub async fn postgres_store() -> TestStore {
    let (url, name) = create_postgres_database().await;
    let cleanup = Cleanup::Postgres { name };
    let (options, hand) = test_store_options();
    let store = store::open(&url, &options)
        .await
        .expect("open postgres store");
    TestStore {
        store,
        url,
        hand,
        _cleanup: cleanup,
    }
}

/// Runs a test body once per backend: `both_backends!(name1, name2)` expects
/// `async fn name1(db: TestStore)` and makes tests `name1::sqlite` and `name1::postgres`.
#[macro_export]
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                // Multi-threaded: tests run blocking clients (aws, python) against the
                // server spawned on this same runtime.
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    super::$name($crate::helpers::sqlite_store().await).await
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    super::$name($crate::helpers::postgres_store().await).await
                }
            }
        )*
    };
}

/// A change written straight to the store (as another replica or the CLI would)
/// reaches the STS's cached IAM copies once they are checked again: moves the clock
/// past `database.iam_cache_check_ms` (the default one second).
pub fn past_iam_cache_check(hand: &ClockHand) {
    hand.advance(rolegate::store::IamCacheSettings::default().check_interval);
}

/// A fixed master key for tests (base64 of 32 bytes).
pub const TEST_MASTER_KEY: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";

pub fn test_sealer() -> rolegate::secrets::Sealer {
    rolegate::secrets::Sealer::from_base64(&rolegate::secrets::Secret::new(TEST_MASTER_KEY))
        .expect("test master key")
}

/// The application state over `store`, sealed with the test master key.
pub async fn app_state(store: Arc<dyn Store>) -> rolegate::web::AppState {
    rolegate::app::app_state(store, test_sealer())
        .await
        .expect("app state")
}

/// The real server on 127.0.0.1 port 0; returns its base URL.
pub async fn spawn_server(store: Arc<dyn Store>) -> String {
    spawn_state(app_state(store).await)
}

/// The real server for a prepared state on 127.0.0.1 port 0; returns its base URL.
pub fn spawn_state(state: rolegate::web::AppState) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = listener.local_addr().expect("local addr");
    let server = rolegate::app::build_server(listener, state, 1).expect("build server");
    tokio::spawn(server);
    format!("http://{address}")
}

/// Path of the compiled `rolegate` binary.
pub fn rolegate_bin() -> &'static str {
    env!("CARGO_BIN_EXE_rolegate")
}

/// A `rolegate` child process that is killed when dropped.
pub struct RunningBinary {
    pub child: Child,
    pub base_url: String,
    pub stdout: Vec<String>,
}

impl Drop for RunningBinary {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `rolegate ARGS` and waits for its `Ready: http://ADDR/` line; panics with
/// its output if it exits first or takes longer than `timeout`.
pub fn start_binary(args: &[&str], envs: &[(&str, &str)], timeout: Duration) -> RunningBinary {
    let mut command = Command::new(rolegate_bin());
    command
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .env_remove("RUST_LOG");
    for (k, v) in envs {
        command.env(k, v);
    }
    let mut child = command.spawn().expect("spawn rolegate");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut lines = Vec::new();
    let deadline = std::time::Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => {
                if let Some(rest) = line.strip_prefix("Ready: ") {
                    let url = rest
                        .split_whitespace()
                        .next()
                        .unwrap_or("")
                        .trim_end_matches('/');
                    let base_url = url.to_owned();
                    lines.push(line);
                    return RunningBinary {
                        child,
                        base_url,
                        stdout: lines,
                    };
                }
                lines.push(line);
            }
            Err(_) => {
                let _ = child.kill();
                let output = child.wait_with_output().expect("output");
                panic!(
                    "rolegate {args:?} did not become ready; stdout: {lines:#?}; stderr: {}",
                    String::from_utf8_lossy(&output.stderr)
                );
            }
        }
    }
}

/// Runs `rolegate ARGS` to completion: (exit code, stdout, stderr).
pub fn run_binary(args: &[&str], envs: &[(&str, &str)]) -> (i32, String, String) {
    let mut command = Command::new(rolegate_bin());
    command.args(args).env_remove("RUST_LOG");
    for (k, v) in envs {
        command.env(k, v);
    }
    let output = command.output().expect("run rolegate");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Path of a file in the shared corpora beside the checkout.
pub fn corpus(path: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/corpora")
        .join(path)
}

/// Access key id, secret and optional session token.
pub type Keys<'a> = (&'a str, &'a str, Option<&'a str>);

/// SigV4 headers for a request, computed by AWS's own `aws-sigv4` crate (an
/// independent signer, so Rolegate's verifier is not checked against itself).
pub fn sigv4_headers(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    (akid, secret, token): Keys<'_>,
    service: &str,
    time: std::time::SystemTime,
) -> Vec<(String, String)> {
    use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
    use aws_sigv4::sign::v4;
    let identity = aws_credential_types::Credentials::new(
        akid,
        secret,
        token.map(str::to_owned),
        None,
        "test",
    )
    .into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region("us-east-1")
        .name(service)
        .time(time)
        .settings(SigningSettings::default())
        .build()
        .expect("signing params")
        .into();
    let signable = SignableRequest::new(
        method,
        url,
        headers.iter().copied(),
        SignableBody::Bytes(body),
    )
    .expect("signable request");
    let (instructions, _) = sign(signable, &params).expect("sign").into_parts();
    instructions
        .headers()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// `host` as a client sends it for `base` (`http://127.0.0.1:PORT`).
pub fn host_of(base: &str) -> &str {
    base.trim_start_matches("http://")
}

/// A program of the project's .venv (awscli, boto3), which scripts/test.sh installs.
pub fn venv_bin(name: &str) -> std::path::PathBuf {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(".venv/bin")
        .join(name);
    assert!(
        path.exists(),
        "{} is missing: run scripts/test.sh, which installs awscli and boto3 into .venv",
        path.display()
    );
    path
}

/// A SigV4-signed STS query call (form POST to `/`), signed now.
pub async fn signed_sts_call(base: &str, keys: Keys<'_>, params: &[(&str, &str)]) -> (u16, String) {
    signed_sts_call_at(base, keys, params, std::time::SystemTime::now()).await
}

/// A SigV4-signed STS query call signed at `time`: (HTTP status, body).
pub async fn signed_sts_call_at(
    base: &str,
    keys: Keys<'_>,
    params: &[(&str, &str)],
    time: std::time::SystemTime,
) -> (u16, String) {
    let body = serde_urlencoded::to_string(params).expect("form");
    let url = format!("{base}/");
    let content_type = "application/x-www-form-urlencoded; charset=utf-8";
    let headers = [("content-type", content_type), ("host", host_of(base))];
    let signature = sigv4_headers("POST", &url, &headers, body.as_bytes(), keys, "sts", time);
    let mut request = reqwest::Client::new()
        .post(&url)
        .header("content-type", content_type)
        .body(body);
    for (name, value) in signature {
        request = request.header(name, value);
    }
    let response = request.send().await.expect("send");
    let status = response.status().as_u16();
    (status, response.text().await.expect("body"))
}

/// A fresh Redis key prefix for one test; remove its keys with [`delete_redis_prefix`].
pub fn redis_prefix() -> String {
    format!("rolegate-test-{:016x}", rand::random::<u64>())
}

/// What each replica of a deployment builds: the state over `store` with the local
/// Redis as its cache, under `prefix` (replicas sharing a prefix share state).
pub async fn redis_replica(store: Arc<dyn Store>, prefix: &str) -> rolegate::web::AppState {
    let cache =
        rolegate::cache::open_cache(Some("redis://127.0.0.1:6379/0"), prefix, store.clock())
            .await
            .expect("Redis at 127.0.0.1:6379 is required for these tests");
    rolegate::app::state_with_cache(store, test_sealer(), chrono::Duration::minutes(5), cache)
        .await
        .expect("app state")
}

/// Removes every key a test wrote under its Redis prefix.
pub async fn delete_redis_prefix(prefix: &str) {
    let mut redis = redis::Client::open("redis://127.0.0.1:6379/0")
        .expect("redis url")
        .get_multiplexed_async_connection()
        .await
        .expect("redis connection");
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}:*"))
        .query_async(&mut redis)
        .await
        .expect("KEYS");
    if !keys.is_empty() {
        let _: () = redis::cmd("DEL")
            .arg(keys)
            .query_async(&mut redis)
            .await
            .expect("DEL");
    }
}

/// Asserts that the audit log holds an event for each `(action, outcome)` and that
/// none of `secrets` appears anywhere in it.
pub async fn assert_audited(
    store: &dyn Store,
    expected: &[(&str, rolegate::store::Outcome)],
    secrets: &[&str],
) {
    let audit = store.list_audit(200, None).await.unwrap();
    let events: Vec<_> = audit
        .iter()
        .map(|e| (e.action.as_str(), e.outcome))
        .collect();
    for wanted in expected {
        assert!(events.contains(wanted), "{wanted:?} not in {events:?}");
    }
    let rendered = serde_json::to_string(&audit).unwrap();
    for (i, secret) in secrets.iter().enumerate() {
        assert!(
            !rendered.contains(secret),
            "secret #{i} reached the audit log"
        );
    }
}

/// Runs `sql` on the test database over a connection of its own (past the store).
pub async fn raw_execute(db: &TestStore, sql: &str) -> Result<(), sqlx::Error> {
    use sqlx::Connection;
    if db.url.starts_with("sqlite:") {
        let mut conn = sqlx::SqliteConnection::connect(&db.url).await?;
        sqlx::query(sql).execute(&mut conn).await.map(|_| ())
    } else {
        let mut conn = sqlx::PgConnection::connect(&db.url).await?;
        sqlx::query(sql).execute(&mut conn).await.map(|_| ())
    }
}

/// Publishes the current ruleset plus one rule: members of `group` (ignoring case)
/// signed in through `source` get `role` in `account`.
pub async fn grant_group(
    state: &rolegate::web::AppState,
    source: &str,
    group: &str,
    account: &str,
    role: &str,
) {
    let current = state.rulesets.current().await.expect("ruleset");
    let mut rules = current.rules.clone();
    rules.push(
        serde_json::from_value(serde_json::json!({
            "id": format!("test-{source}-{group}-{account}-{role}").to_lowercase(),
            "name": format!("{role} for {group}"),
            "effect": "grant",
            "source": [source],
            "when": {"claim": "groups", "op": "contains_any", "values": [group], "case": "insensitive"},
            "grant": [{"account": account, "role": role}],
        }))
        .expect("rule"),
    );
    state
        .rulesets
        .publish(current.version, &rules, "test", None, None)
        .await
        .expect("publish");
}
