//! The dashboard's routes against a real database: status codes, every section, escaping, plans
//! of recorded statements only and without parameter values, the caller's auth layer, and the
//! sampling task ending with the dashboard.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use pgdbm::monitor::MonitorOptions;
use pgdbm::prelude::*;
use pgdbm::{Database, MigrationSource, Row};
use pgdbm_dashboard::Dashboard;
use pgdbm_testing::TestDatabase;
use tower::ServiceExt;

/// A module whose table's name is an attempt at script injection.
struct Shop;

impl Module for Shop {
    fn name(&self) -> &str {
        "shop"
    }
    fn migrations(&self) -> MigrationSource {
        MigrationSource::from_pairs([
            (
                "001_items.sql",
                "CREATE TABLE {{tables.items}} (id int PRIMARY KEY, name text NOT NULL);",
            ),
            (
                "002_evil.sql",
                "CREATE TABLE {{schema}}.\"<script>alert(1)</script>\" (id int);",
            ),
        ])
        .expect("valid migrations")
    }
}

/// `GET uri` through `app`: status and body.
async fn get(app: &Router, uri: &str) -> (StatusCode, String) {
    let response = app
        .clone()
        .oneshot(Request::get(uri).body(Body::empty()).expect("a request"))
        .await
        .expect("infallible");
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 22)
        .await
        .expect("a body");
    (status, String::from_utf8(bytes.to_vec()).expect("utf-8"))
}

/// The dashboard of `db` (monitored, module `shop` registered) mounted at `/_pgdbm`.
fn mounted(db: &Database, monitored: &Database) -> (Dashboard, Router) {
    let dashboard = Dashboard::builder(monitored)
        .module(db, &Shop)
        .sample_interval(Duration::from_millis(20))
        .window(Duration::from_secs(60))
        .long_running_threshold(Duration::from_millis(200))
        .build()
        .expect("valid options");
    let app = Router::new().nest("/_pgdbm", dashboard.router());
    (dashboard, app)
}

fn monitored(db: &Database) -> Database {
    db.monitored(
        MonitorOptions::default()
            .slow_query_threshold(Duration::from_millis(100))
            .record_params(true),
    )
    .with_module("shop")
}

/// The `href` of the first plan link after `marker` in `page`.
fn plan_link_after(page: &str, marker: &str) -> String {
    let at = page
        .find(marker)
        .unwrap_or_else(|| panic!("{marker} not in {page}"));
    let rest = &page[at..];
    let start = rest.find("href=\"/_pgdbm/plan/").expect("a plan link") + "href=\"".len();
    let end = start + rest[start..].find('"').expect("closing quote");
    rest[start..end].to_owned()
}

#[pgdbm_testing::test(module = Shop, schema = "shop")]
async fn overview_shows_every_section_escaped(db: TestDatabase) {
    let app_db = monitored(&db);
    app_db
        .execute(
            "INSERT INTO {{tables.items}} (id, name) VALUES ($1, $2)",
            params![1, "secret-value-4711"],
        )
        .await
        .expect("insert");
    let _: Option<Row> = app_db
        .fetch_optional("SELECT pg_sleep(0.15)", &[])
        .await
        .expect("sleep");
    let (dashboard, app) = mounted(&db, &app_db);
    tokio::time::sleep(Duration::from_millis(60)).await;
    assert!(dashboard.is_sampling());
    assert!(!dashboard.samples().is_empty());

    // axum 0.8 matches a nested "/" at the mount point itself only.
    assert_eq!(get(&app, "/_pgdbm/").await.0, StatusCode::NOT_FOUND);
    {
        let uri = "/_pgdbm";
        let (status, page) = get(&app, uri).await;
        assert_eq!(status, StatusCode::OK, "{uri}: {page}");
        for id in [
            "id=\"pool\"",
            "id=\"pool-chart\"",
            "id=\"statements\"",
            "id=\"by-total\"",
            "id=\"by-p95\"",
            "id=\"slow\"",
            "id=\"migrations\"",
            "id=\"activity\"",
            "id=\"tables\"",
            "id=\"replicas\"",
        ] {
            assert!(page.contains(id), "{id} missing from {page}");
        }
        assert!(page.contains("no replicas configured"));
        assert!(page.contains("data-module=\"shop\""), "{page}");
        assert!(page.contains("001_items.sql") && page.contains("002_evil.sql"));
        assert!(page.contains("2 applied"), "{page}");
        assert!(page.contains("SELECT pg_sleep(0.15)"), "{page}");
        assert!(page.contains("INSERT INTO {{tables.items}} (id, name) VALUES ($1, $2)"));
        // The table name is shown, escaped; no markup from the database reaches the page.
        assert!(
            page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
            "escaped table name missing: {page}"
        );
        assert!(!page.contains("<script"), "{page}");
        // Recorded parameters are never shown.
        assert!(!page.contains("secret-value-4711"), "{page}");
    }
}

#[pgdbm_testing::test(module = Shop, schema = "shop")]
async fn plans_only_of_recorded_statements(db: TestDatabase) {
    let app_db = monitored(&db);
    let _: Option<Row> = app_db
        .fetch_optional(
            "SELECT name FROM {{tables.items}} WHERE name = $1",
            params!["secret-value-4711"],
        )
        .await
        .expect("select");
    app_db
        .execute(
            "INSERT INTO {{tables.items}} (id, name) VALUES ($1, $2)",
            params![7, "secret-value-4712"],
        )
        .await
        .expect("insert");
    app_db
        .batch_execute("CREATE TEMP TABLE scratch (id int)")
        .await
        .expect("ddl");
    let (_dashboard, app) = mounted(&db, &app_db);
    let (_, page) = get(&app, "/_pgdbm").await;

    // A SELECT: a generic plan on the module's table, its parameter as $1, no value.
    let link = plan_link_after(&page, "SELECT name FROM {{tables.items}}");
    let (status, plan) = get(&app, &link).await;
    assert_eq!(status, StatusCode::OK, "{plan}");
    assert!(plan.contains("id=\"plan-summary\""), "{plan}");
    assert!(plan.contains("Seq Scan on items"), "{plan}");
    assert!(plan.contains("$1"), "{plan}");
    assert!(!plan.contains("secret-value"), "{plan}");
    assert!(!plan.contains("Actual"), "never ANALYZE: {plan}");

    // An INSERT is planned, not run.
    let link = plan_link_after(&page, "INSERT INTO {{tables.items}}");
    let (status, plan) = get(&app, &link).await;
    assert_eq!(status, StatusCode::OK, "{plan}");
    assert!(plan.contains("ModifyTable"), "{plan}");
    let rows: i64 = db
        .fetch_value("SELECT count(*) FROM shop.items", &[])
        .await
        .expect("count");
    assert_eq!(rows, 1);

    // A statement without a plan says why.
    let link = plan_link_after(&page, "CREATE TEMP TABLE scratch");
    let (status, plan) = get(&app, &link).await;
    assert_eq!(status, StatusCode::OK, "{plan}");
    assert!(plan.contains("id=\"plan-error\""), "{plan}");

    // Nothing is left prepared on the pool's connections.
    for _ in 0..4 {
        let left: i64 = db
            .fetch_value(
                "SELECT count(*) FROM pg_prepared_statements WHERE name LIKE 'pgdbm_dashboard%'",
                &[],
            )
            .await
            .expect("count");
        assert_eq!(left, 0);
    }

    // Unknown and malformed ids.
    for uri in [
        "/_pgdbm/plan/0123456789abcdef",
        "/_pgdbm/plan/%3Cscript%3E",
        "/_pgdbm/plan/",
    ] {
        let (status, body) = get(&app, uri).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{uri}: {body}");
        assert!(!body.contains("<script"), "{body}");
    }
    // Read-only: nothing answers a write.
    let response = app
        .clone()
        .oneshot(
            Request::post("/_pgdbm")
                .body(Body::empty())
                .expect("a request"),
        )
        .await
        .expect("infallible");
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
}

#[pgdbm_testing::test(module = Shop, schema = "shop")]
async fn blocking_and_long_running_queries_hide_literals(db: TestDatabase) {
    let (_dashboard, app) = mounted(&db, &monitored(&db));
    // One session holds a lock; another waits for it with a literal in its text.
    let holder = db.begin().await.expect("begin");
    holder
        // Writers wait; readers (the page's own size queries) do not.
        .execute("LOCK TABLE {{tables.items}} IN EXCLUSIVE MODE", &[])
        .await
        .expect("lock");
    let waiter_db = (*db).clone();
    let waiter = tokio::spawn(async move {
        waiter_db
            .execute(
                "UPDATE {{tables.items}} SET name = 'literal-secret-99' WHERE id = 0",
                &[],
            )
            .await
    });
    let mut page = String::new();
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        page = get(&app, "/_pgdbm").await.1;
        if page.contains("id=\"blocking\"") && page.contains("id=\"long-running\"") {
            break;
        }
    }
    holder.rollback().await.expect("rollback");
    waiter.await.expect("joined").expect("the waiter's update");
    assert!(page.contains("id=\"blocking\""), "{page}");
    assert!(page.contains("id=\"long-running\""), "{page}");
    assert!(page.contains("SET name = '…' WHERE id = 0"), "{page}");
    assert!(!page.contains("literal-secret-99"), "{page}");
}

/// The caller's auth: a bearer token.
async fn bearer(request: Request, next: Next) -> Response {
    let ok = request
        .headers()
        .get(header::AUTHORIZATION)
        .is_some_and(|v| v == "Bearer let-me-in");
    if ok {
        next.run(request).await
    } else {
        StatusCode::UNAUTHORIZED.into_response()
    }
}

#[pgdbm_testing::test(module = Shop, schema = "shop")]
async fn the_callers_auth_layer_guards_every_route(db: TestDatabase) {
    let dashboard = Dashboard::builder(&monitored(&db))
        .build()
        .expect("options");
    let app = Router::new().nest(
        "/_pgdbm",
        dashboard.router().layer(middleware::from_fn(bearer)),
    );
    for uri in ["/_pgdbm", "/_pgdbm/plan/0123456789abcdef"] {
        for auth in [None, Some("Bearer wrong"), Some("Basic bGV0LW1lLWlu")] {
            let mut request = Request::get(uri);
            if let Some(value) = auth {
                request = request.header(header::AUTHORIZATION, value);
            }
            let response = app
                .clone()
                .oneshot(request.body(Body::empty()).expect("a request"))
                .await
                .expect("infallible");
            assert_eq!(
                response.status(),
                StatusCode::UNAUTHORIZED,
                "{uri} {auth:?}"
            );
        }
    }
    let response = app
        .clone()
        .oneshot(
            Request::get("/_pgdbm")
                .header(header::AUTHORIZATION, "Bearer let-me-in")
                .body(Body::empty())
                .expect("a request"),
        )
        .await
        .expect("infallible");
    assert_eq!(response.status(), StatusCode::OK);
    let headers = response.headers();
    assert!(
        headers[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert_eq!(headers[header::CACHE_CONTROL], "no-store");
    assert!(headers.contains_key(header::CONTENT_SECURITY_POLICY));
}

#[pgdbm_testing::test(module = Shop, schema = "shop")]
async fn the_sampler_ends_with_the_dashboard(db: TestDatabase) {
    let pool = db.pool().clone();
    let before = Arc::strong_count(&pool);
    let (dashboard, app) = mounted(&db, &monitored(&db));
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(dashboard.samples().len() >= 2, "{:?}", dashboard.samples());
    assert!(Arc::strong_count(&pool) > before);
    drop(app);
    drop(dashboard);
    let mut after = usize::MAX;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(20)).await;
        after = Arc::strong_count(&pool);
        if after == before {
            break;
        }
    }
    assert_eq!(after, before, "the sampling task still holds the pool");
}

#[pgdbm_testing::test(module = Shop, schema = "shop")]
async fn options_out_of_range_are_named(db: TestDatabase) {
    let e = Dashboard::builder(&db)
        .sample_interval(Duration::ZERO)
        .build()
        .expect_err("zero interval");
    assert_eq!(e.option(), "sample_interval");
    assert!(e.to_string().contains("sample_interval"), "{e}");
    let e = Dashboard::builder(&db)
        .window(Duration::from_millis(1))
        .build()
        .expect_err("window");
    assert_eq!(e.option(), "window");
    let e = Dashboard::builder(&db)
        .statements_shown(0)
        .build()
        .expect_err("statements_shown");
    assert_eq!(e.option(), "statements_shown");
    // A handle without a monitor: the page says how to get statements.
    let dashboard = Dashboard::builder(&db).build().expect("defaults");
    let (status, page) = get(&dashboard.router(), "/").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("This handle has no monitor"), "{page}");
    assert!(
        page.contains("href=\"/#statements\""),
        "links without a mount point: {page}"
    );
    assert!(page.contains("href=\"/\""), "{page}");
}
