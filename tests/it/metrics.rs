//! `/metrics` scraped and parsed by Prometheus's own Python client parser
//! (`prometheus_client.parser`, from the project's .venv): the figures move with the
//! traffic, and nobody reads them without the configured token or listener.

use std::collections::HashMap;
use std::time::Duration;

use rolegate::metrics::MetricsAccess;
use rolegate::secrets::Secret;
use rolegate::seed;

use crate::both_backends;
use crate::helpers::{TestStore, app_state, signed_sts_call, spawn_state, venv_bin};

const TOKEN: &str = "metrics-token-for-tests-0123456789";

/// A sample's name and labels (sorted `k=v` pairs, comma-joined).
type Samples = HashMap<(String, String), f64>;

/// Parses `text` with `prometheus_client.parser.text_string_to_metric_families`.
fn parse(text: &str) -> Samples {
    use std::io::Write;
    let script = "import sys, json\n\
        from prometheus_client.parser import text_string_to_metric_families\n\
        out = []\n\
        for family in text_string_to_metric_families(sys.stdin.read()):\n\
        \x20   for s in family.samples:\n\
        \x20       out.append([s.name, ','.join(f'{k}={v}' for k, v in sorted(s.labels.items())), s.value])\n\
        print(json.dumps(out))\n";
    let mut child = std::process::Command::new(venv_bin("python"))
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "the Prometheus parser refused the body: {}\n{text}",
        String::from_utf8_lossy(&output.stderr)
    );
    let samples: Vec<(String, String, f64)> = serde_json::from_slice(&output.stdout).unwrap();
    samples
        .into_iter()
        .map(|(name, labels, value)| ((name, labels), value))
        .collect()
}

fn value(samples: &Samples, name: &str, labels: &str) -> f64 {
    samples
        .get(&(name.to_owned(), labels.to_owned()))
        .copied()
        .unwrap_or(0.0)
}

async fn get(url: &str, token: Option<&str>) -> (u16, String) {
    let mut request = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap()
        .get(url);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.text().await.unwrap())
}

async fn scrape(base: &str) -> Samples {
    let (status, body) = get(&format!("{base}/metrics"), Some(TOKEN)).await;
    assert_eq!(status, 200, "{body}");
    parse(&body)
}

/// STS traffic moves the request, latency and STS counters; the pool and audit
/// gauges are there; without the token there is nothing to read.
async fn metrics_follow_sts_traffic(db: TestStore) {
    let state = app_state(db.store.clone()).await;
    let mut report = seed::seed_demo(state.store.as_ref()).await.unwrap();
    let (key, secret) = seed::seed_workload(state.store.as_ref(), &state.sts, &mut report, None)
        .await
        .unwrap()
        .expect("new keys");
    let unconfigured = spawn_state(state.clone());
    let base = spawn_state(state.with_metrics_access(MetricsAccess {
        token: Some(Secret::new(TOKEN)),
        listen: None,
    }));

    // Not configured: no such page. Configured: the token, and only the token.
    assert_eq!(
        get(&format!("{unconfigured}/metrics"), Some(TOKEN)).await.0,
        404
    );
    assert_eq!(get(&format!("{base}/metrics"), None).await.0, 401);
    assert_eq!(
        get(
            &format!("{base}/metrics"),
            Some("metrics-token-for-tests-012345678X")
        )
        .await
        .0,
        401
    );

    let before = scrape(&base).await;
    let role_arn = format!(
        "arn:aws:iam::{}:role/{}",
        seed::DEMO_ACCOUNT_ID,
        seed::WORKLOAD_ROLE
    );
    let assume = [
        ("Action", "AssumeRole"),
        ("Version", "2011-06-15"),
        ("RoleArn", role_arn.as_str()),
        ("RoleSessionName", "metrics"),
    ];
    let identity = [("Action", "GetCallerIdentity"), ("Version", "2011-06-15")];
    for _ in 0..2 {
        let (status, body) = signed_sts_call(&base, (&key, &secret, None), &assume).await;
        assert_eq!(status, 200, "{body}");
    }
    let (status, body) = signed_sts_call(&base, (&key, &secret, None), &identity).await;
    assert_eq!(status, 200, "{body}");
    let wrong = "0".repeat(secret.len());
    let (status, body) = signed_sts_call(&base, (&key, &wrong, None), &identity).await;
    assert_eq!(status, 403, "{body}");
    let after = scrape(&base).await;

    let moved =
        |name: &str, labels: &str| value(&after, name, labels) - value(&before, name, labels);
    assert_eq!(
        moved(
            "rolegate_sts_requests_total",
            "operation=AssumeRole,outcome=success"
        ),
        2.0
    );
    assert_eq!(
        moved(
            "rolegate_sts_credentials_issued_total",
            "operation=AssumeRole"
        ),
        2.0
    );
    assert_eq!(
        moved(
            "rolegate_sts_requests_total",
            "operation=GetCallerIdentity,outcome=success"
        ),
        1.0
    );
    assert_eq!(
        moved(
            "rolegate_sts_requests_total",
            "operation=GetCallerIdentity,outcome=denied"
        ),
        1.0
    );
    assert_eq!(
        moved("rolegate_http_requests_total", "class=2xx,surface=sts"),
        3.0
    );
    assert_eq!(
        moved("rolegate_http_requests_total", "class=4xx,surface=sts"),
        1.0
    );
    assert_eq!(
        moved(
            "rolegate_http_request_duration_seconds_count",
            "surface=sts"
        ),
        4.0
    );
    assert!(
        value(
            &after,
            "rolegate_http_request_duration_seconds_sum",
            "surface=sts"
        ) > 0.0,
        "latency is measured"
    );
    // The scrape before this one is counted too (surface "other", 2xx).
    assert!(moved("rolegate_http_requests_total", "class=2xx,surface=other") >= 1.0);
    assert_eq!(value(&after, "rolegate_db_pool_max_connections", ""), 10.0);
    assert!(value(&after, "rolegate_db_pool_connections", "") >= 1.0);
    assert!(after.contains_key(&("rolegate_audit_queue_length".to_owned(), String::new())));
    assert_eq!(
        value(&after, "rolegate_audit_write_failures_total", ""),
        0.0
    );
}

both_backends!(metrics_follow_sts_traffic);

/// `rolegate serve` with `[metrics] listen`: /metrics on that address only, and the
/// cache errors of a stopped Redis counted there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_exposes_metrics_on_its_own_listener() {
    let dir = tempfile::tempdir().unwrap();
    let database = format!("sqlite://{}", dir.path().join("rolegate.db").display());
    let mut redis = crate::faults::PrivateRedis::start(None);
    let cache = redis.url();
    let listen = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .to_string();
    let server = crate::helpers::start_binary(
        &["serve"],
        &[
            ("ROLEGATE_DATABASE__URL", &database),
            ("ROLEGATE_CACHE__URL", &cache),
            ("ROLEGATE_SERVER__LISTEN", "127.0.0.1:0"),
            ("ROLEGATE_METRICS__LISTEN", &listen),
            (
                "ROLEGATE_SECRETS__MASTER_KEY",
                crate::helpers::TEST_MASTER_KEY,
            ),
        ],
        Duration::from_secs(30),
    );
    assert!(
        server
            .stdout
            .iter()
            .any(|line| line == &format!("Metrics: http://{listen}/metrics")),
        "{:?}",
        server.stdout
    );
    assert_eq!(
        get(&format!("{}/metrics", server.base_url), None).await.0,
        404
    );

    // Redis goes away: the readiness check's PING fails, and is counted.
    redis.stop();
    let _ = get(&format!("{}/signin", server.base_url), None).await;
    let _ = get(&format!("{}/readyz", server.base_url), None).await;
    let (status, body) = get(&format!("http://{listen}/metrics"), None).await;
    assert_eq!(status, 200, "{body}");
    let samples = parse(&body);
    let errors: f64 = samples
        .iter()
        .filter(|((name, _), _)| name == "rolegate_cache_errors_total")
        .map(|(_, v)| v)
        .sum();
    assert!(errors >= 1.0, "cache errors counted: {body}");
    let portal: f64 = samples
        .iter()
        .filter(|((name, labels), _)| {
            name == "rolegate_http_requests_total" && labels.ends_with("surface=portal")
        })
        .map(|(_, v)| v)
        .sum();
    assert!(portal >= 1.0, "the sign-in page visit is counted: {body}");
}
