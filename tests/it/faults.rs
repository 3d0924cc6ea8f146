//! Faults of the shared cache: a private Redis (never the machine's shared one on
//! 6379) stopped, hung with SIGSTOP and restarted under a running server. Stateless
//! STS keeps answering; `/readyz` says which dependency is down and why, quickly.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use rolegate::seed;

use crate::both_backends;
use crate::helpers::{TestStore, spawn_state, test_sealer};
use crate::sts_api::xml_value;

/// A `redis-server` of this test's own on a free loopback port (no persistence).
/// Dropping it resumes (if hung) and kills it.
pub struct PrivateRedis {
    child: Option<Child>,
    pub port: u16,
    password: Option<String>,
    paused: bool,
}

impl PrivateRedis {
    /// Starts one; with `password`, clients must authenticate.
    pub fn start(password: Option<&str>) -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut redis = Self {
            child: None,
            port,
            password: password.map(str::to_owned),
            paused: false,
        };
        redis.restart();
        redis
    }

    /// The URL clients use (with the password, if any).
    pub fn url(&self) -> String {
        match &self.password {
            Some(password) => format!("redis://:{password}@127.0.0.1:{}/0", self.port),
            None => format!("redis://127.0.0.1:{}/0", self.port),
        }
    }

    /// Starts the server (again) on its port and waits until it answers.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "already running");
        let mut command = Command::new("redis-server");
        command.args([
            "--port",
            &self.port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--daemonize",
            "no",
        ]);
        if let Some(password) = &self.password {
            command.args(["--requirepass", password]);
        }
        let child = command
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server is required for these tests");
        self.child = Some(child);
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "the private redis-server on port {} did not start",
            self.port
        );
    }

    /// Kills the server (as a crash would).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            self.signal("CONT");
            self.paused = false;
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Hangs the server: it keeps its socket but answers nothing (SIGSTOP).
    pub fn pause(&mut self) {
        self.signal("STOP");
        self.paused = true;
    }

    /// Lets a hung server go on (SIGCONT).
    pub fn resume(&mut self) {
        self.signal("CONT");
        self.paused = false;
    }

    fn signal(&self, name: &str) {
        if let Some(child) = &self.child {
            let status = Command::new("kill")
                .args([&format!("-{name}"), &child.id().to_string()])
                .status()
                .unwrap();
            assert!(status.success(), "kill -{name}");
        }
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        if self.paused {
            self.signal("CONT");
        }
        self.stop();
    }
}

/// A client that gives up after a few seconds: a hang fails the test instead of
/// stalling it.
pub fn impatient_client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(4))
        .build()
        .unwrap()
}

/// The demo data, the workload's keys, and a server whose cache is `redis`.
async fn server_on(db: &TestStore, redis: &PrivateRedis) -> (String, String, String) {
    let cache = rolegate::cache::open_cache(Some(&redis.url()), "faults", db.store.clock())
        .await
        .unwrap();
    let state = rolegate::app::state_with_cache(
        db.store.clone(),
        test_sealer(),
        chrono::Duration::minutes(5),
        cache,
    )
    .await
    .unwrap();
    let mut report = seed::seed_demo(state.store.as_ref()).await.unwrap();
    let (key, secret) = seed::seed_workload(state.store.as_ref(), &state.sts, &mut report, None)
        .await
        .unwrap()
        .expect("new keys");
    (spawn_state(state), key, secret)
}

/// A signed STS call that must answer within a few seconds.
async fn sts(base: &str, keys: crate::helpers::Keys<'_>, params: &[(&str, &str)]) -> (u16, String) {
    tokio::time::timeout(
        Duration::from_secs(4),
        crate::helpers::signed_sts_call(base, keys, params),
    )
    .await
    .unwrap_or_else(|_| panic!("no STS answer within 4 s to {params:?}"))
}

async fn readyz(base: &str) -> (u16, serde_json::Value) {
    let response = impatient_client()
        .get(format!("{base}/readyz"))
        .send()
        .await
        .expect("/readyz answers within 4 s");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

/// GetCallerIdentity with a role session and AssumeRole with an IAM user's keys need
/// no cache: both answer 200 while Redis is down or hung, and /readyz names the fault.
async fn sts_survives_redis_faults(db: TestStore) {
    let password = "redis-secret-do-not-show";
    let mut redis = PrivateRedis::start(Some(password));
    let (base, key, secret) = server_on(&db, &redis).await;
    let user = (key.as_str(), secret.as_str(), None);
    let role_arn = format!(
        "arn:aws:iam::{}:role/{}",
        seed::DEMO_ACCOUNT_ID,
        seed::WORKLOAD_ROLE
    );
    let assume = [
        ("Action", "AssumeRole"),
        ("Version", "2011-06-15"),
        ("RoleArn", role_arn.as_str()),
        ("RoleSessionName", "faults"),
    ];
    let identity = [("Action", "GetCallerIdentity"), ("Version", "2011-06-15")];

    let (status, body) = sts(&base, user, &assume).await;
    assert_eq!(status, 200, "{body}");
    let session_key = xml_value(&body, "AccessKeyId").unwrap().to_owned();
    let session_secret = xml_value(&body, "SecretAccessKey").unwrap().to_owned();
    let session_token = xml_value(&body, "SessionToken").unwrap().to_owned();
    let session = (
        session_key.as_str(),
        session_secret.as_str(),
        Some(session_token.as_str()),
    );
    let (status, ready) = readyz(&base).await;
    assert_eq!(status, 200, "{ready}");
    assert_eq!(ready["status"], "ready");
    assert_eq!(ready["checks"]["database"]["status"], "up", "{ready}");
    assert_eq!(ready["checks"]["cache"]["status"], "up", "{ready}");

    let check_sts = |fault: &'static str| {
        let (base, assume, identity) = (base.clone(), assume, identity);
        async move {
            let (status, body) = sts(&base, session, &identity).await;
            assert_eq!(
                status, 200,
                "role-session GetCallerIdentity, Redis {fault}: {body}"
            );
            assert!(body.contains("assumed-role/"), "{body}");
            let (status, body) = sts(&base, user, &assume).await;
            assert_eq!(status, 200, "AssumeRole, Redis {fault}: {body}");
        }
    };
    let port = redis.port;
    let check_down = |ready: &serde_json::Value, says: &str| {
        assert_eq!(ready["status"], "unavailable", "{ready}");
        assert_eq!(ready["checks"]["database"]["status"], "up", "{ready}");
        assert_eq!(ready["checks"]["cache"]["status"], "down", "{ready}");
        let error = ready["checks"]["cache"]["error"].as_str().unwrap();
        assert!(
            error.contains(&format!("127.0.0.1:{port}")),
            "names where: {error}"
        );
        assert!(
            error.to_lowercase().contains(says),
            "says why ({says}): {error}"
        );
        assert!(
            !ready.to_string().contains(password),
            "no password: {ready}"
        );
    };

    // Stopped (killed): the open connection breaks, new ones are refused.
    redis.stop();
    check_sts("stopped").await;
    let mut refused = false;
    for _ in 0..20 {
        let (status, ready) = readyz(&base).await;
        assert_eq!(status, 503, "{ready}");
        let error = ready["checks"]["cache"]["error"]
            .as_str()
            .unwrap_or_default();
        if error.to_lowercase().contains("refused") {
            check_down(&ready, "refused");
            refused = true;
            break;
        }
        check_down(&ready, "");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(refused, "/readyz names the refused connection");
    check_sts("stopped").await;

    // Back: the cache reconnects on its own.
    redis.restart();
    let mut recovered = false;
    for _ in 0..50 {
        if readyz(&base).await.0 == 200 {
            recovered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(recovered, "/readyz is ready again after Redis restarts");
    check_sts("restarted").await;

    // Hung (SIGSTOP): connections open but nothing answers.
    redis.pause();
    check_sts("hung").await;
    // Paths that do need the cache are refused within about a second (the command
    // timeout), not after the 5 s connect timeout: an SSO bearer lookup.
    let started = std::time::Instant::now();
    let response = impatient_client()
        .get(format!("{base}/assignment/accounts"))
        .header("x-amz-sso_bearer_token", "no-such-token")
        .send()
        .await
        .expect("the SSO API answers within 4 s while Redis hangs");
    let took = started.elapsed();
    assert!(response.status().is_server_error(), "{}", response.status());
    assert!(took < Duration::from_millis(2500), "answered in {took:?}");
    let (status, ready) = readyz(&base).await;
    assert_eq!(status, 503, "{ready}");
    check_down(&ready, "no answer within");
    check_sts("hung").await;
    redis.resume();
    let mut recovered = false;
    for _ in 0..50 {
        if readyz(&base).await.0 == 200 {
            recovered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(recovered, "/readyz is ready again after Redis resumes");
    check_sts("resumed").await;
}

both_backends!(sts_survives_redis_faults);

/// A replica without a shared cache has nothing to reach: `none`, and ready.
#[tokio::test]
async fn readiness_without_a_shared_cache() {
    let db = crate::helpers::sqlite_store().await;
    let base = crate::helpers::spawn_server(db.store.clone()).await;
    let (status, ready) = readyz(&base).await;
    assert_eq!(status, 200, "{ready}");
    assert_eq!(
        ready,
        serde_json::json!({
            "status": "ready",
            "checks": { "database": { "status": "up" }, "cache": { "status": "none" } }
        })
    );
}

/// A loopback port nothing listens on.
fn closed_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `serve` against a database or a cache that refuses connections exits at once
/// with the root cause: where (host:port) and why, and never the password.
#[test]
fn serve_names_an_unreachable_dependency_and_exits() {
    let secret = "hunter2-not-for-logs";
    let port = closed_port();
    let database = format!("postgres://rolegate:{secret}@127.0.0.1:{port}/rolegate");
    let (code, stdout, stderr) = crate::helpers::run_binary(
        &["serve"],
        &[
            ("ROLEGATE_DATABASE__URL", &database),
            (
                "ROLEGATE_SECRETS__MASTER_KEY",
                crate::helpers::TEST_MASTER_KEY,
            ),
            ("ROLEGATE_SERVER__LISTEN", "127.0.0.1:0"),
        ],
    );
    assert_ne!(code, 0, "{stdout}");
    assert!(stderr.contains(&format!("127.0.0.1:{port}")), "{stderr}");
    assert!(
        stderr.to_lowercase().contains("connection refused"),
        "{stderr}"
    );
    assert!(!format!("{stdout}{stderr}").contains(secret), "{stderr}");
    assert!(!stderr.contains("pool timed out"), "{stderr}");

    let dir = tempfile::tempdir().unwrap();
    let database = format!("sqlite://{}", dir.path().join("rolegate.db").display());
    let port = closed_port();
    let cache = format!("redis://:{secret}@127.0.0.1:{port}/0");
    let (code, stdout, stderr) = crate::helpers::run_binary(
        &["serve"],
        &[
            ("ROLEGATE_DATABASE__URL", &database),
            ("ROLEGATE_CACHE__URL", &cache),
            (
                "ROLEGATE_SECRETS__MASTER_KEY",
                crate::helpers::TEST_MASTER_KEY,
            ),
            ("ROLEGATE_SERVER__LISTEN", "127.0.0.1:0"),
        ],
    );
    assert_ne!(code, 0, "{stdout}");
    assert!(stderr.contains(&format!("127.0.0.1:{port}")), "{stderr}");
    assert!(
        stderr.to_lowercase().contains("connection refused"),
        "{stderr}"
    );
    assert!(!format!("{stdout}{stderr}").contains(secret), "{stderr}");
}
