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
