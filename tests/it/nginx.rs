//! Rolegate behind the real nginx (Debian's package), configured by the shipped
//! `config/nginx.conf.example` with only its placeholders filled in: TLS with a
//! self-signed certificate (openssl), two `rolegate serve` replicas on one
//! PostgreSQL database and one Redis prefix. Through the proxy: STS AssumeRole by
//! boto3 (SigV4 over the Host header nginx passes on), the SSO portal API with its
//! underscore bearer header, portal sign-in with Secure cookies served by both
//! replicas, the client address from X-Forwarded-For only while the replicas trust
//! the proxy, and requests that keep succeeding when a replica is killed.

use std::net::{IpAddr, Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rolegate::seed;
use serde_json::{Value, json};

use crate::helpers::{
    TEST_MASTER_KEY, app_state, delete_redis_prefix, postgres_store, redis_prefix, rolegate_bin,
    sigv4_headers, venv_bin,
};
use crate::web_client::{Browser, hidden, password_of};

const ACCOUNT: &str = seed::DEMO_ACCOUNT_ID;
/// The address the test's own clients connect from: not nginx's 127.0.0.1, so the
/// audit log shows whose address Rolegate believed.
const CLIENT_IP: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);
const IDENTITY: [(&str, &str); 2] = [("Action", "GetCallerIdentity"), ("Version", "2011-06-15")];

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_until(what: &str, within: Duration, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !ready() {
        assert!(Instant::now() < deadline, "{what} within {within:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A child process killed (and reaped) when dropped.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A `rolegate serve` replica; its output goes to `log`.
struct Replica {
    _process: Process,
    port: u16,
    log: PathBuf,
}

fn start_replica(
    dir: &Path,
    name: &str,
    port: u16,
    db_url: &str,
    prefix: &str,
    trust_proxy: bool,
) -> Replica {
    let log = dir.join(format!("{name}.log"));
    let out = std::fs::File::create(&log).unwrap();
    let child = Command::new(rolegate_bin())
        .arg("serve")
        .env_remove("RUST_LOG")
        .env("ROLEGATE_DATABASE__URL", db_url)
        .env("ROLEGATE_SECRETS__MASTER_KEY", TEST_MASTER_KEY)
        .env("ROLEGATE_SERVER__LISTEN", format!("127.0.0.1:{port}"))
        .env("ROLEGATE_SERVER__WORKERS", "1")
        .env(
            "ROLEGATE_SERVER__TRUSTED_PROXIES",
            if trust_proxy { "127.0.0.1" } else { "" },
        )
        .env("ROLEGATE_CACHE__URL", "redis://127.0.0.1:6379/0")
        .env("ROLEGATE_CACHE__PREFIX", prefix)
        .env("ROLEGATE_LOG__FILTER", "info,sqlx=warn")
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .expect("spawn rolegate serve");
    let mut process = Process(child);
    let url = format!("http://127.0.0.1:{port}/healthz");
    wait_until(
        &format!("replica {name} answers {url}"),
        Duration::from_secs(30),
        || {
            assert!(
                process.0.try_wait().unwrap().is_none(),
                "replica {name} exited: {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        },
    );
    Replica {
        _process: process,
        port,
        log,
    }
}

impl Replica {
    /// Lines of its access log for `path` answered `status`.
    fn served(&self, path: &str, status: u16) -> Vec<String> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains(&format!(" {path} {status} ")))
            .map(str::to_owned)
            .collect()
    }
}

/// nginx running `config/nginx.conf.example` with its placeholders filled in.
fn start_nginx(dir: &Path, port: u16, replicas: [u16; 2]) -> Process {
    let nginx = ["/usr/sbin/nginx", "/usr/bin/nginx"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("nginx is missing: scripts/test.sh installs Debian's nginx");
    let example = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("config/nginx.conf.example"),
    )
    .unwrap();
    let d = dir.display().to_string();
    let conf = example
        .replace("@@RUN_DIR@@", &d)
        .replace("@@LOG_DIR@@", &d)
        .replace("@@LISTEN@@", &format!("127.0.0.1:{port}"))
        .replace("@@SERVER_NAME@@", "127.0.0.1")
        .replace("@@CERT@@", &format!("{d}/cert.pem"))
        .replace("@@KEY@@", &format!("{d}/key.pem"))
        .replace("@@REPLICA_1@@", &format!("127.0.0.1:{}", replicas[0]))
        .replace("@@REPLICA_2@@", &format!("127.0.0.1:{}", replicas[1]));
    let left: Vec<&str> = conf
        .lines()
        .filter(|l| !l.trim_start().starts_with('#') && l.contains("@@"))
        .collect();
    assert!(left.is_empty(), "placeholders left: {left:?}");
    let path = dir.join("nginx.conf");
    std::fs::write(&path, conf).unwrap();
    let child = Command::new(nginx)
        .arg("-p")
        .arg(dir)
        .arg("-c")
        .arg(&path)
        .arg("-e")
        .arg(dir.join("error.log"))
        .args(["-g", "daemon off;"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn nginx");
    let mut process = Process(child);
    wait_until("nginx listens", Duration::from_secs(10), || {
        assert!(
            process.0.try_wait().unwrap().is_none(),
            "nginx exited: {}",
            std::fs::read_to_string(dir.join("error.log")).unwrap_or_default()
        );
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    process
}

/// A throw-away certificate authority (`ca.pem`) and a certificate it signed for
/// 127.0.0.1 and localhost (`cert.pem`, `key.pem`), all in `dir`, by openssl.
fn make_certificate(dir: &Path) {
    let openssl = |args: &[&str]| {
        let out = Command::new("openssl")
            .current_dir(dir)
            .args(args)
            .output()
            .expect("openssl is missing: scripts/test.sh installs it");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "1",
        "-subj",
        "/CN=Rolegate test CA",
        "-keyout",
        "ca-key.pem",
        "-out",
        "ca.pem",
    ]);
    openssl(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=127.0.0.1",
        "-keyout",
        "key.pem",
        "-out",
        "cert.csr",
    ]);
    std::fs::write(
        dir.join("leaf.ext"),
        "basicConstraints=critical,CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\n\
         extendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n",
    )
    .unwrap();
    openssl(&[
        "x509",
        "-req",
        "-in",
        "cert.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca-key.pem",
        "-CAcreateserial",
        "-days",
        "1",
        "-extfile",
        "leaf.ext",
        "-out",
        "cert.pem",
    ]);
}

/// An https client that trusts the test certificate and connects from [`CLIENT_IP`].
fn client(dir: &Path) -> reqwest::Client {
    let pem = std::fs::read(dir.join("ca.pem")).unwrap();
    reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap())
        .local_address(IpAddr::V4(CLIENT_IP))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// A SigV4-signed STS call through the proxy, with `unsigned` headers besides
/// (nginx appends to X-Forwarded-For: signed, it would break the signature).
async fn sts_call(
    http: &reqwest::Client,
    base: &str,
    keys: (&str, &str),
    params: &[(&str, &str)],
    unsigned: &[(&str, &str)],
) -> (u16, String) {
    let body = serde_urlencoded::to_string(params).unwrap();
    let url = format!("{base}/");
    let host = base.trim_start_matches("https://");
    let content_type = "application/x-www-form-urlencoded; charset=utf-8";
    let headers = [("content-type", content_type), ("host", host)];
    let signature = sigv4_headers(
        "POST",
        &url,
        &headers,
        body.as_bytes(),
        (keys.0, keys.1, None),
        "sts",
        std::time::SystemTime::now(),
    );
    let mut request = http
        .post(&url)
        .header("content-type", content_type)
        .body(body);
    for (name, value) in unsigned {
        request = request.header(*name, *value);
    }
    for (name, value) in signature {
        request = request.header(name, value);
    }
    let response = request.send().await.expect("send through nginx");
    let status = response.status().as_u16();
    (status, response.text().await.unwrap())
}

fn assume_params(session: &str) -> Vec<(&'static str, String)> {
    vec![
        ("Action", "AssumeRole".to_owned()),
        ("Version", "2011-06-15".to_owned()),
        (
            "RoleArn",
            format!("arn:aws:iam::{ACCOUNT}:role/{}", seed::WORKLOAD_ROLE),
        ),
        ("RoleSessionName", session.to_owned()),
    ]
}

fn borrowed<'a>(params: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    params.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

/// The source address the audit log holds for the AssumeRole made with `user_agent`.
async fn audited_source_ip(store: &dyn rolegate::store::Store, user_agent: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let events = store.list_audit(200, None).await.unwrap();
        if let Some(event) = events
            .iter()
            .find(|e| e.action == "sts:AssumeRole" && e.user_agent.as_deref() == Some(user_agent))
        {
            return event.source_ip.clone().unwrap_or_default();
        }
        assert!(
            Instant::now() < deadline,
            "no AssumeRole audited for {user_agent}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn json_post(http: &reqwest::Client, url: &str, body: &Value) -> (u16, Value) {
    let response = http.post(url).json(body).send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// An SSO access token for `user` by the device grant, every step through nginx.
async fn sso_access_token(http: &reqwest::Client, base: &str, user: &str) -> String {
    let (status, registered) = json_post(
        http,
        &format!("{base}/client/register"),
        &json!({"clientName": "nginx-test", "clientType": "public", "scopes": ["sso:account:access"]}),
    )
    .await;
    assert_eq!(status, 200, "{registered}");
    let client =
        json!({"clientId": registered["clientId"], "clientSecret": registered["clientSecret"]});
    let mut start = client.clone();
    start["startUrl"] = json!("https://d-0000000000.awsapps.com/start");
    let (status, device) = json_post(http, &format!("{base}/device_authorization"), &start).await;
    assert_eq!(status, 200, "{device}");
    let mut browser = Browser::with_client(base, http.clone());
    let page = browser
        .sign_in_via(
            &format!("/device?user_code={}", device["userCode"].as_str().unwrap()),
            user,
        )
        .await;
    let approved = crate::sso::decide(&mut browser, &page, "approve").await;
    assert!(
        approved.body.contains("Device approved"),
        "{}",
        approved.body
    );
    let mut token = client;
    token["grantType"] = json!("urn:ietf:params:oauth:grant-type:device_code");
    token["deviceCode"] = device["deviceCode"].clone();
    let (status, tokens) = json_post(http, &format!("{base}/token"), &token).await;
    assert_eq!(status, 200, "{tokens}");
    tokens["accessToken"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_in_front_of_two_replicas() {
    let db = postgres_store().await;
    let prefix = redis_prefix();
    let dir = tempfile::tempdir().unwrap();
    let dir_path = dir.path().to_owned();
    // nginx's workers run as nobody when it starts as root: they must reach the
    // temporary directories.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&dir_path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    make_certificate(&dir_path);

    // The demo seed, written as `rolegate` would (same master key as the replicas).
    let state = app_state(db.store.clone()).await;
    let mut report = seed::seed_demo(state.store.as_ref()).await.unwrap();
    let (key_id, secret) = seed::seed_workload(state.store.as_ref(), &state.sts, &mut report, None)
        .await
        .unwrap()
        .expect("new keys");
    let keys = (key_id.as_str(), secret.as_str());

    let ports = [free_port(), free_port()];
    let replica_1 = start_replica(&dir_path, "replica-1", ports[0], &db.url, &prefix, true);
    let replica_2 = start_replica(&dir_path, "replica-2", ports[1], &db.url, &prefix, true);
    let nginx_port = free_port();
    let _nginx = start_nginx(&dir_path, nginx_port, ports);
    let base = format!("https://127.0.0.1:{nginx_port}");
    let http = client(&dir_path);

    // 1. boto3 AssumeRole through nginx, TLS checked against the test certificate.
    // SigV4 covers the Host header with its port: nginx must pass it on unchanged.
    let script = r#"
import json, os, sys, boto3
sts = boto3.client("sts", endpoint_url=sys.argv[1], region_name="us-east-1",
                   aws_access_key_id=sys.argv[2], aws_secret_access_key=sys.argv[3])
arns = [sts.assume_role(RoleArn=sys.argv[4], RoleSessionName=f"via-nginx-{i}")["AssumedRoleUser"]["Arn"]
        for i in range(4)]
print(json.dumps(arns))
"#;
    let role_arn = format!("arn:aws:iam::{ACCOUNT}:role/{}", seed::WORKLOAD_ROLE);
    let out = Command::new(venv_bin("python"))
        .args(["-c", script, &base, keys.0, keys.1, &role_arn])
        .env("AWS_CA_BUNDLE", dir_path.join("ca.pem"))
        .env_remove("AWS_PROFILE")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "boto3 through nginx: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let arns: Vec<String> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        arns[3],
        format!(
            "arn:aws:sts::{ACCOUNT}:assumed-role/{}/via-nginx-3",
            seed::WORKLOAD_ROLE
        )
    );
    // A request signed here (aws-sigv4) for the same Host passes too.
    let params = IDENTITY;
    let (status, body) = sts_call(&http, &base, keys, &params, &[]).await;
    assert_eq!(status, 200, "{body}");

    // 2. The client address: the replicas trust nginx (127.0.0.1), so the audit log
    // holds the address nginx saw (127.0.0.2), not one the client made up.
    let params = assume_params("xff-trusted");
    let (status, body) = sts_call(
        &http,
        &base,
        keys,
        &borrowed(&params),
        &[
            ("x-forwarded-for", "203.0.113.9"),
            ("user-agent", "nginx-test-trusted"),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        audited_source_ip(db.store.as_ref(), "nginx-test-trusted").await,
        CLIENT_IP.to_string()
    );

    // 3. The SSO portal API with the underscore bearer header.
    let access = sso_access_token(&http, &base, "alice").await;
    let credentials = http
        .get(format!(
            "{base}/federation/credentials?account_id={ACCOUNT}&role_name=Admin"
        ))
        .header("x-amz-sso_bearer_token", &access)
        .send()
        .await
        .unwrap();
    assert_eq!(credentials.status(), 200);
    let body: Value = credentials.json().await.unwrap();
    assert!(
        body["roleCredentials"]["sessionToken"]
            .as_str()
            .is_some_and(|t| !t.is_empty()),
        "{body}"
    );
    let without = http
        .get(format!(
            "{base}/federation/credentials?account_id={ACCOUNT}&role_name=Admin"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(without.status(), 401, "no bearer header, no credentials");

    // 4. Portal sign-in: the cookies are Secure (https told by X-Forwarded-Proto),
    // and the session holds on both replicas.
    let mut browser = Browser::with_client(&base, http.clone());
    let form = browser.get("/signin").await;
    assert_eq!(form.status, 200, "{}", form.body);
    let signed_in = browser
        .post(
            "/signin/directory",
            &[
                ("csrf", &hidden(&form.body, "csrf")),
                ("username", "alice"),
                ("password", password_of("alice")),
                ("return_to", "/start"),
            ],
        )
        .await;
    assert_eq!(signed_in.status, 303, "{}", signed_in.body);
    assert!(!signed_in.set_cookies.is_empty());
    for cookie in &signed_in.set_cookies {
        assert!(cookie.contains("; Secure"), "not Secure: {cookie}");
    }
    for _ in 0..6 {
        let start = browser.get("/start").await;
        assert_eq!(start.status, 200, "{}", start.body);
        assert!(start.body.contains("Sign out"), "{}", start.body);
    }
    for replica in [&replica_1, &replica_2] {
        let lines = replica.served("/start", 200);
        assert!(
            !lines.is_empty(),
            "replica on {} served no /start",
            replica.port
        );
        // Its access log shows the client, not nginx.
        assert!(lines.iter().all(|l| l.contains("127.0.0.2")), "{lines:?}");
    }

    // 5. Replica 1 killed: every request still succeeds through nginx.
    drop(replica_1);
    let params = IDENTITY;
    for _ in 0..6 {
        let (status, body) = sts_call(&http, &base, keys, &params, &[]).await;
        assert_eq!(status, 200, "{body}");
        let start = browser.get("/start").await;
        assert_eq!(start.status, 200, "{}", start.body);
    }

    // 6. Replicas that do not trust the proxy: X-Forwarded-For is ignored, and
    // the address they see is nginx's own.
    let replica_1 = start_replica(&dir_path, "replica-1b", ports[0], &db.url, &prefix, false);
    // nginx tries the restarted address again once its fail_timeout (10 s) is
    // over; until then replica 2 answers.
    let deadline = Instant::now() + Duration::from_secs(30);
    while replica_1.served("/", 200).is_empty() {
        assert!(
            Instant::now() < deadline,
            "nginx never sent a request to the restarted replica"
        );
        let (status, body) = sts_call(&http, &base, keys, &IDENTITY, &[]).await;
        assert_eq!(status, 200, "{body}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    drop(replica_2);
    let params = assume_params("xff-untrusted");
    let (status, body) = sts_call(
        &http,
        &base,
        keys,
        &borrowed(&params),
        &[
            ("x-forwarded-for", "203.0.113.9"),
            ("user-agent", "nginx-test-untrusted"),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        audited_source_ip(db.store.as_ref(), "nginx-test-untrusted").await,
        "127.0.0.1"
    );
    drop(replica_1);
    delete_redis_prefix(&prefix).await;
}
