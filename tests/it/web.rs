//! Health and readiness over real HTTP, on both backends.

use crate::both_backends;
use crate::helpers::{TestStore, spawn_server};

async fn health_and_readiness(db: TestStore) {
    let base = spawn_server(db.store.clone()).await;
    let client = reqwest::Client::new();
    let health = client.get(format!("{base}/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    assert_eq!(
        health.json::<serde_json::Value>().await.unwrap()["status"],
        "ok"
    );
    let ready = client.get(format!("{base}/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    assert_eq!(
        ready.json::<serde_json::Value>().await.unwrap()["status"],
        "ready"
    );
    let missing = client
        .get(format!("{base}/no-such-page"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
}

both_backends!(health_and_readiness);

/// Browsers fetch `/favicon.ico` on their own; it is the icon the pages link, not a 404.
#[tokio::test]
async fn site_icon_is_served_where_browsers_look() {
    let db = crate::helpers::sqlite_store().await;
    let base = spawn_server(db.store.clone()).await;
    let client = reqwest::Client::new();
    for path in ["/favicon.ico", "/static/favicon.svg"] {
        let icon = client.get(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(icon.status(), 200, "{path}");
        assert_eq!(icon.headers()["content-type"], "image/svg+xml", "{path}");
        assert!(icon.text().await.unwrap().starts_with("<svg"), "{path}");
    }
    let signin = client.get(format!("{base}/signin")).send().await.unwrap();
    assert!(
        signin
            .text()
            .await
            .unwrap()
            .contains(r#"<link rel="icon" href="/static/favicon.svg""#)
    );
}

/// When the database goes away, /readyz says so (and /healthz still answers).
#[tokio::test]
async fn readiness_fails_when_postgres_database_is_gone() {
    let (url, name) = crate::helpers::create_postgres_database().await;
    let options = rolegate::store::StoreOptions {
        connect_timeout: std::time::Duration::from_secs(2),
        ..Default::default()
    };
    let store = rolegate::store::open(&url, &options).await.unwrap();
    let base = spawn_server(store).await;
    let client = reqwest::Client::new();
    assert_eq!(
        client
            .get(format!("{base}/readyz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    use sqlx::Connection;
    let mut admin = sqlx::PgConnection::connect(&crate::helpers::postgres_admin_url())
        .await
        .unwrap();
    sqlx::query(&format!("DROP DATABASE {name} WITH (FORCE)"))
        .execute(&mut admin)
        .await
        .unwrap();

    let ready = client.get(format!("{base}/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 503);
    let body: serde_json::Value = ready.json().await.unwrap();
    assert_eq!(body["status"], "unavailable");
    assert_eq!(body["checks"]["database"]["status"], "down", "{body}");
    assert_eq!(body["checks"]["cache"]["status"], "none", "{body}");
    // The root cause, where it is: the server's address and PostgreSQL's own words.
    let error = body["checks"]["database"]["error"].as_str().unwrap();
    assert!(error.contains("127.0.0.1:5432"), "{error}");
    assert!(error.contains("does not exist"), "{error}");
    assert_eq!(
        client
            .get(format!("{base}/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}

/// Every answer carries its request's id in `x-amzn-RequestId`, a fresh one each
/// time; AWS-shaped bodies repeat the same id (an STS error's `<RequestId>`), so a
/// client's report and the server's log of one request name the same id.
#[tokio::test]
async fn every_answer_names_its_request_id() {
    let db = crate::helpers::sqlite_store().await;
    let base = spawn_server(db.store.clone()).await;
    let client = reqwest::Client::new();
    let id_of = |response: &reqwest::Response| {
        response
            .headers()
            .get("x-amzn-requestid")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
            .unwrap_or_default()
    };
    let first = client.get(format!("{base}/signin")).send().await.unwrap();
    let second = client.get(format!("{base}/signin")).send().await.unwrap();
    let (a, b) = (id_of(&first), id_of(&second));
    assert_eq!(a.len(), 36, "{a:?}");
    assert_ne!(a, b);

    let sts = client
        .post(format!("{base}/"))
        .form(&[("Action", "GetCallerIdentity"), ("Version", "2011-06-15")])
        .send()
        .await
        .unwrap();
    assert_eq!(sts.status(), 403);
    let header = id_of(&sts);
    let body = sts.text().await.unwrap();
    assert!(
        body.contains(&format!("<RequestId>{header}</RequestId>")),
        "{header}: {body}"
    );
}
