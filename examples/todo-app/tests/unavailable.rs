//! A database that goes away: readiness answers 503 (with the pool's state), the todo routes
//! answer 503 with a JSON error, liveness stays 200, and all is well again once the server is
//! back. On a server of the test's own (`DedicatedServer`), stopped and started, on both drivers.

mod common;

use std::time::{Duration, Instant};

use axum::Router;
use axum::http::StatusCode;
use pgdbm::Database;
use pgdbm::driver::Driver;
use pgdbm_driver_sqlx::SqlxDriver;
use pgdbm_driver_tokio_postgres::TokioPostgres;
use pgdbm_testing::DedicatedServer;
use todo_app::todo::{SCHEMA, TodoModule};

use common::{app, create, send};

/// Polls readiness until it is 200 (the pool reconnects by itself); panics after `limit`.
async fn wait_until_ready(app: &Router, limit: Duration) {
    let start = Instant::now();
    loop {
        let ready = send(app, "GET", "/health/ready", None).await;
        if ready.status == StatusCode::OK {
            return;
        }
        assert!(
            start.elapsed() < limit,
            "not ready after {limit:?}: {:?}",
            ready.json
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn stopped_server_answers_503<D: Driver>(server: &DedicatedServer) {
    // Short bounds: while the server is down, each request waits for a connection until the
    // acquire timeout, then answers 503.
    let config = server
        .config()
        .to_builder()
        .schema(SCHEMA)
        .max_connections(2)
        .acquire_timeout(Duration::from_millis(300))
        .connect_timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let db = Database::connect::<D>(&config).await.unwrap();
    db.migrate(&TodoModule).await.unwrap();
    let app = app(&db);
    let todo = create(&app, r#"{"title": "before the outage"}"#).await;
    let uri = format!("/todos/{}", todo["id"].as_str().unwrap());
    assert_eq!(
        send(&app, "GET", "/health/ready", None).await.status,
        StatusCode::OK
    );

    server.stop().await.unwrap();
    let ready = send(&app, "GET", "/health/ready", None).await;
    assert_eq!(
        ready.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{:?}",
        ready.json
    );
    assert_eq!(ready.json["status"], "unavailable");
    assert!(
        ready.json["pool"]["max_size"].as_u64().is_some(),
        "{:?}",
        ready.json
    );
    assert!(ready.json["round_trip_ms"].is_null());
    for (method, uri, body) in [
        ("GET", "/todos", None),
        ("GET", uri.as_str(), None),
        ("POST", "/todos", Some(r#"{"title": "during the outage"}"#)),
        ("PATCH", uri.as_str(), Some(r#"{"completed": true}"#)),
        ("DELETE", uri.as_str(), None),
    ] {
        let reply = send(&app, method, uri, body).await;
        assert_eq!(
            reply.status,
            StatusCode::SERVICE_UNAVAILABLE,
            "{method} {uri}"
        );
        assert_eq!(reply.error(), "the database is unavailable");
    }
    let live = send(&app, "GET", "/health", None).await;
    assert_eq!(
        live.status,
        StatusCode::OK,
        "liveness does not depend on the database"
    );

    server.start().await.unwrap();
    wait_until_ready(&app, Duration::from_secs(20)).await;
    let reply = send(&app, "GET", &uri, None).await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.json);
    db.close().await;
}

#[tokio::test]
async fn a_stopped_database_is_503_on_both_drivers() {
    let server = DedicatedServer::builder().start().await.unwrap();
    stopped_server_answers_503::<TokioPostgres>(&server).await;
    server.psql("DROP SCHEMA todo CASCADE").await.unwrap();
    stopped_server_answers_503::<SqlxDriver>(&server).await;
}
