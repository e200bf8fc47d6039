//! `GET /metrics` through the router: after requests, the Prometheus text has pgdbm's
//! OpenTelemetry database metrics — statement durations per operation and table with the right
//! count, the pool's connection gauges, its timeouts, checkout waits, connection use times and
//! connect times — once on each driver.

mod common;

use axum::Router;
use axum::http::StatusCode;
use pgdbm::Database;
use pgdbm::driver::Driver;
use pgdbm_testing::TestDatabase;
use todo_app::todo::TodoModule;
use tower::ServiceExt;

use common::{app, create, on_both_drivers};

/// `GET /metrics`: status and body text.
async fn scrape(app: &Router) -> (StatusCode, String, String) {
    let request = axum::http::Request::get("/metrics")
        .body(axum::body::Body::empty())
        .expect("a valid request");
    let response = app.clone().oneshot(request).await.expect("infallible");
    let status = response.status();
    let content_type = response.headers()[axum::http::header::CONTENT_TYPE]
        .to_str()
        .expect("ascii")
        .to_owned();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 24)
        .await
        .expect("a readable body");
    (
        status,
        content_type,
        String::from_utf8(bytes.to_vec()).expect("utf-8"),
    )
}

/// The value of the sample `name{…}` whose labels include every one of `labels`.
fn sample(body: &str, name: &str, labels: &[&str]) -> Option<f64> {
    body.lines()
        .filter(|line| !line.starts_with('#'))
        .find(|line| {
            line.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
                && labels.iter().all(|l| line.contains(l))
        })
        .map(|line| {
            let value = line.rsplit(' ').next().expect("a value");
            value.parse().unwrap_or_else(|e| panic!("{line}: {e}"))
        })
}

async fn metrics_are_exported<D: Driver>(test_db: &TestDatabase<D>) {
    let db: &Database = test_db;
    let app = app(db);
    // A pool opened once the recorder is installed (by `app`): its first connect is timed.
    let second = Database::connect::<D>(test_db.config())
        .await
        .expect("a second pool");
    second.close().await;
    let database = db.database_name().expect("opened from a config");
    let namespace = format!("db_namespace=\"{database}.todo\"");
    let pool = format!("/{database}\"");
    for title in ["one", "two", "three"] {
        create(&app, &format!(r#"{{"title": "{title}"}}"#)).await;
    }
    let (status, content_type, body) = scrape(&app).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(content_type.starts_with("text/plain"), "{content_type}");

    for name in [
        "db_client_operation_duration",
        "db_client_connection_count",
        "db_client_connection_max",
        "db_client_connection_pending_requests",
        "db_client_connection_timeouts",
        "db_client_connection_wait_time",
        "db_client_connection_use_time",
        "db_client_connection_create_time",
    ] {
        assert!(
            body.lines()
                .any(|l| l.starts_with(&format!("# TYPE {name} "))),
            "{name} missing from:\n{body}"
        );
    }
    // Three inserts into todo.todos on this database: one histogram sample each.
    let inserts = sample(
        &body,
        "db_client_operation_duration_count",
        &[
            "db_operation_name=\"INSERT\"",
            "db_collection_name=\"todos\"",
            "db_system_name=\"postgresql\"",
            &namespace,
        ],
    );
    assert_eq!(inserts, Some(3.0), "{body}");
    assert!(
        sample(
            &body,
            "db_client_operation_duration_bucket",
            &[&namespace, "le=\"+Inf\""]
        )
        .is_some(),
        "{body}"
    );
    // The pool: open connections by state (sqlx counts one still being opened, or handed back
    // on a task of its own, as used), the configured maximum, no one waiting.
    let used = sample(
        &body,
        "db_client_connection_count",
        &[&pool, "db_client_connection_state=\"used\""],
    )
    .expect("used");
    let idle = sample(
        &body,
        "db_client_connection_count",
        &[&pool, "db_client_connection_state=\"idle\""],
    )
    .expect("idle");
    assert!(idle + used >= 1.0, "{body}");
    let max = sample(&body, "db_client_connection_max", &[&pool]).expect("max");
    assert_eq!(max, f64::from(db.pool_stats().max_size));
    assert!(idle + used <= max, "{body}");
    assert_eq!(
        sample(&body, "db_client_connection_pending_requests", &[&pool]),
        Some(0.0)
    );
    assert_eq!(
        sample(&body, "db_client_connection_timeouts", &[&pool]),
        Some(0.0)
    );
    let waits = sample(&body, "db_client_connection_wait_time_count", &[&pool]).expect("waits");
    assert!(waits >= 3.0, "a checkout per statement at least: {body}");
    // Each of those checkouts went back to the pool: its time in use.
    let uses = sample(&body, "db_client_connection_use_time_count", &[&pool]).expect("uses");
    assert!(uses >= 3.0, "a use per statement at least: {body}");
    assert!(
        sample(
            &body,
            "db_client_connection_use_time_bucket",
            &[&pool, "le=\"+Inf\""]
        )
        .is_some(),
        "{body}"
    );
    // The second pool's first connection at least.
    let creates =
        sample(&body, "db_client_connection_create_time_count", &[&pool]).expect("creates");
    assert!(creates >= 1.0, "the second pool's connect: {body}");
}

on_both_drivers!(metrics_are_exported);
