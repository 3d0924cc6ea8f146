//! Behind a load balancer: `server.public_url` and `server.trusted_proxies` decide the
//! origin of the URLs Rolegate hands out, the client address it audits and rate-limits,
//! and whether its cookies are `Secure`. Forwarding headers from anyone else change
//! nothing.

use std::net::IpAddr;

use rolegate::seed;
use rolegate::web::request_info::forwarded_client;
use rolegate::web::{AppState, PublicUrl, ServerSettings, TrustedProxies};
use serde_json::{Value, json};

use crate::helpers::{TestStore, spawn_state, sqlite_store};
use crate::web_client::{self, Browser, hidden, password_of};

const PUBLIC: &str = "https://rolegate.example.com";

fn settings(public_url: Option<&str>, proxies: &[&str]) -> ServerSettings {
    ServerSettings {
        public_url: public_url.map(|u| PublicUrl::parse(u).unwrap()),
        trusted_proxies: TrustedProxies::parse(proxies).unwrap(),
    }
}

async fn serve(db: &TestStore, server: ServerSettings) -> String {
    let state: AppState = web_client::seeded(db).await.with_server(server);
    spawn_state(state)
}

/// POSTs JSON with extra headers: (status, body).
async fn post_json(base: &str, path: &str, body: &Value, headers: &[(&str, &str)]) -> (u16, Value) {
    let mut request = reqwest::Client::new()
        .post(format!("{base}{path}"))
        .json(body);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

async fn register(base: &str, name: &str, headers: &[(&str, &str)]) -> (u16, Value) {
    post_json(
        base,
        "/client/register",
        &json!({"clientName": name, "clientType": "public", "scopes": ["sso:account:access"]}),
        headers,
    )
    .await
}

/// RegisterClient then StartDeviceAuthorization, both with `headers`.
async fn start_device(base: &str, headers: &[(&str, &str)]) -> Value {
    let (status, client) = register(base, "proxy-test", &[]).await;
    assert_eq!(status, 200, "{client}");
    let (status, started) = post_json(
        base,
        "/device_authorization",
        &json!({
            "clientId": client["clientId"],
            "clientSecret": client["clientSecret"],
            "startUrl": "https://d-0000000000.awsapps.com/start",
        }),
        headers,
    )
    .await;
    assert_eq!(status, 200, "{started}");
    started
}

/// The source address of the newest StartDeviceAuthorization audit event.
async fn audited_source(db: &TestStore) -> Option<String> {
    db.store
        .list_audit(100, None)
        .await
        .unwrap()
        .into_iter()
        .find(|e| e.action == "sso:StartDeviceAuthorization")
        .expect("a StartDeviceAuthorization audit event")
        .source_ip
}

/// Registers clients until RegisterClient refuses (60 a minute per client address);
/// returns how many were accepted before it did.
async fn registrations_until_refused(base: &str, headers: &[(&str, &str)]) -> usize {
    for i in 0..=61 {
        let (status, body) = register(base, &format!("flood-{i}"), headers).await;
        if status != 200 {
            assert_eq!(status, 429, "{body}");
            assert_eq!(body["error"], "slow_down", "{body}");
            return i;
        }
    }
    panic!("RegisterClient was never rate-limited");
}

const HOSTILE: &[(&str, &str)] = &[
    ("host", "evil.example"),
    ("x-forwarded-host", "evil.example"),
    ("x-forwarded-proto", "http"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_public_url_wins_over_hostile_host_headers() {
    let db = sqlite_store().await;
    // Even from a trusted proxy: the configured URL is the answer.
    let base = serve(
        &db,
        settings(Some("https://rolegate.example.com/"), &["127.0.0.1"]),
    )
    .await;
    let started = start_device(&base, HOSTILE).await;
    assert_eq!(started["verificationUri"], format!("{PUBLIC}/device"));
    let user_code = started["userCode"].as_str().unwrap();
    assert_eq!(
        started["verificationUriComplete"],
        format!("{PUBLIC}/device?user_code={user_code}")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_forwarded_host_and_proto_count_only_from_trusted_proxies() {
    let db = sqlite_store().await;
    let forwarded = &[
        ("x-forwarded-host", "rolegate.example.com"),
        ("x-forwarded-proto", "https"),
    ];
    // No trusted proxy: the request's own Host, as before.
    let base = serve(&db, ServerSettings::default()).await;
    let started = start_device(&base, forwarded).await;
    assert_eq!(started["verificationUri"], format!("{base}/device"));
    // (Without a public URL the request's Host is the origin: set one in production.)
    let started = start_device(&base, &[("host", "rolegate.example.com")]).await;
    assert_eq!(
        started["verificationUri"],
        "http://rolegate.example.com/device"
    );

    // 127.0.0.1 trusted: its X-Forwarded-Host/Proto are the origin (the last value
    // when a proxy appended); a malformed host is ignored.
    let base = serve(&db, settings(None, &["127.0.0.1"])).await;
    let started = start_device(&base, forwarded).await;
    assert_eq!(started["verificationUri"], format!("{PUBLIC}/device"));
    let appended = &[
        ("x-forwarded-host", "evil.example, Rolegate.Example.com"),
        ("x-forwarded-proto", "http, https"),
    ];
    let started = start_device(&base, appended).await;
    assert_eq!(started["verificationUri"], format!("{PUBLIC}/device"));
    let malformed = &[
        ("x-forwarded-host", "evil.example/x?"),
        ("x-forwarded-proto", "gopher"),
    ];
    let started = start_device(&base, malformed).await;
    assert_eq!(started["verificationUri"], format!("{base}/device"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_untrusted_forwarded_for_changes_neither_audit_nor_rate_limit() {
    let db = sqlite_store().await;
    let base = serve(&db, ServerSettings::default()).await;
    start_device(&base, &[("x-forwarded-for", "203.0.113.9")]).await;
    assert_eq!(audited_source(&db).await.as_deref(), Some("127.0.0.1"));

    // A fresh X-Forwarded-For per call does not make a fresh counter. (One
    // registration above already counted against 127.0.0.1.)
    let mut accepted = 0;
    for i in 0..=61 {
        let xff = format!("198.51.100.{i}");
        let (status, _) = register(&base, "flood", &[("x-forwarded-for", &xff)]).await;
        if status != 200 {
            assert_eq!(status, 429);
            break;
        }
        accepted += 1;
    }
    assert_eq!(accepted, 59, "one limit for every claimed address");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_trusted_forwarded_for_is_the_audited_and_counted_client() {
    let db = sqlite_store().await;
    let base = serve(&db, settings(None, &["127.0.0.1"])).await;
    // The left-most entry is whatever the client claimed; the right-most untrusted
    // one is what the proxy saw.
    start_device(&base, &[("x-forwarded-for", "6.6.6.6, 203.0.113.9")]).await;
    assert_eq!(audited_source(&db).await.as_deref(), Some("203.0.113.9"));
    start_device(
        &base,
        &[
            ("x-forwarded-for", "203.0.113.10"),
            ("x-forwarded-for", "127.0.0.1"),
        ],
    )
    .await;
    assert_eq!(
        audited_source(&db).await.as_deref(),
        Some("203.0.113.10"),
        "several headers are one list; trusted hops are skipped"
    );

    // Each client behind the proxy has its own counter.
    let first = &[("x-forwarded-for", "198.51.100.1")];
    assert_eq!(registrations_until_refused(&base, first).await, 60);
    // Claiming another address to the left does not escape it.
    let (status, _) = register(
        &base,
        "spoof",
        &[("x-forwarded-for", "1.2.3.4, 198.51.100.1")],
    )
    .await;
    assert_eq!(status, 429);
    let (status, body) = register(&base, "other", &[("x-forwarded-for", "198.51.100.2")]).await;
    assert_eq!(status, 200, "{body}");
    // The proxy's own calls (no header) count as 127.0.0.1: still free here, the
    // two start_device registrations aside.
    let (status, body) = register(&base, "proxy", &[]).await;
    assert_eq!(status, 200, "{body}");
}

/// The `Set-Cookie` of `name` in `GET /signin` sent with `headers`.
async fn csrf_cookie(base: &str, headers: &[(&str, &str)]) -> String {
    let mut request = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(format!("{base}/signin"));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        // Over https it is `__Host-rg_csrf`, which only this origin can set.
        .find(|c| {
            c.starts_with("rg_csrf=") || (c.starts_with("__Host-rg_csrf=") && c.contains("Secure"))
        })
        .expect("the sign-in form sets its CSRF cookie")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_cookies_are_secure_when_the_public_origin_is_https() {
    let db = sqlite_store().await;
    let https = &[("x-forwarded-proto", "https")];

    // Default: plain http, and an untrusted X-Forwarded-Proto changes nothing.
    let base = serve(&db, ServerSettings::default()).await;
    assert!(!csrf_cookie(&base, &[]).await.contains("Secure"));
    assert!(!csrf_cookie(&base, https).await.contains("Secure"));

    // From a trusted proxy, X-Forwarded-Proto: https makes them Secure.
    let base = serve(&db, settings(None, &["127.0.0.1"])).await;
    assert!(csrf_cookie(&base, https).await.contains("Secure"));
    assert!(!csrf_cookie(&base, &[]).await.contains("Secure"));

    // An https public URL: Secure whatever the request says; an http one: never.
    let base = serve(&db, settings(Some(PUBLIC), &[])).await;
    assert!(
        csrf_cookie(&base, &[("x-forwarded-proto", "http")])
            .await
            .contains("Secure")
    );
    let mut alice = Browser::new(&base);
    let signed_in = alice.sign_in("alice", password_of("alice"), "/start").await;
    assert_eq!(signed_in.status, 303, "{}", signed_in.body);
    let session = signed_in
        .set_cookies
        .iter()
        .find(|c| c.starts_with("rg_session="))
        .unwrap();
    assert!(session.contains("Secure"), "{session}");
    let base = serve(
        &db,
        settings(Some("http://rolegate.internal:8080"), &["127.0.0.1"]),
    )
    .await;
    assert!(!csrf_cookie(&base, https).await.contains("Secure"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_access_keys_page_names_the_public_url() {
    let db = sqlite_store().await;
    let base = serve(&db, settings(Some(PUBLIC), &[])).await;
    let mut alice = Browser::new(&base);
    let signed_in = alice.sign_in("alice", password_of("alice"), "/start").await;
    assert_eq!(signed_in.status, 303, "{}", signed_in.body);
    let start = alice.get("/start").await;
    let keys = alice
        .post(
            "/start/credentials",
            &[
                ("csrf", &hidden(&start.body, "csrf")),
                ("account", seed::DEMO_ACCOUNT_ID),
                ("role", "Developer"),
            ],
        )
        .await;
    assert_eq!(keys.status, 200, "{}", keys.body);
    assert!(
        keys.body
            .contains(&format!("rolegate login --url {PUBLIC} ")),
        "{}",
        keys.body
    );
    assert!(!keys.body.contains(&base), "{}", keys.body);
}

#[test]
fn proxy_forwarded_for_is_walked_from_the_right() {
    let ip = |s: &str| s.parse::<IpAddr>().unwrap();
    let proxies = TrustedProxies::parse(&["10.0.0.0/8", "2001:db8:ffff::/48"]).unwrap();
    let peer = ip("10.0.0.2");
    let walk = |entries: &[&str]| forwarded_client(peer, entries, &proxies);
    // client, then two proxies of ours: the client.
    assert_eq!(
        walk(&["203.0.113.5", "10.1.1.1", "10.2.2.2"]),
        ip("203.0.113.5")
    );
    // Whatever the client put in front is not believed.
    assert_eq!(
        walk(&["1.1.1.1", "203.0.113.5", "10.1.1.1"]),
        ip("203.0.113.5")
    );
    // Only proxies of ours: the left-most (the first hop).
    assert_eq!(walk(&["10.3.3.3", "10.1.1.1"]), ip("10.3.3.3"));
    // Nothing forwarded: the proxy itself.
    assert_eq!(walk(&[]), peer);
    assert_eq!(walk(&[" ", ""]), peer);
    // Something that is not an address: stop at the last hop we trust.
    assert_eq!(
        walk(&["203.0.113.5", "unknown", "10.1.1.1"]),
        ip("10.1.1.1")
    );
    assert_eq!(walk(&["203.0.113.5", "unknown"]), peer);
    // IPv6, with ports and brackets; IPv4-mapped IPv6 as IPv4.
    assert_eq!(
        walk(&["2001:db8:1::5", "2001:db8:ffff::1"]),
        ip("2001:db8:1::5")
    );
    assert_eq!(walk(&["[2001:db8:1::5]:51000"]), ip("2001:db8:1::5"));
    assert_eq!(walk(&["203.0.113.5:51000"]), ip("203.0.113.5"));
    assert_eq!(
        walk(&["::ffff:203.0.113.5", "::ffff:10.1.1.1"]),
        ip("203.0.113.5")
    );
}
