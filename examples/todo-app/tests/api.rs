//! Every route and status code of the service, through the router (`tower::ServiceExt::oneshot`)
//! on a database of its own per test, cloned from a template with the todo module migrated —
//! once on each driver.

mod common;

use std::time::Duration;

use axum::http::{StatusCode, header};
use pgdbm::Database;
use pgdbm::monitor::MonitorOptions;
use serde_json::Value;
use todo_app::todo::TodoModule;
use todo_app::{AppState, router};

use common::{app, create, on_both_drivers, send};

const MISSING: &str = "/todos/00000000-0000-4000-8000-000000000000";

async fn create_returns_201_with_the_todo(db: &Database) {
    let app = app(db);
    let todo = create(
        &app,
        r#"{"title": "  Learn pgdbm ", "description": "the todo app"}"#,
    )
    .await;
    assert_eq!(todo["title"], "Learn pgdbm", "titles are trimmed");
    assert_eq!(todo["description"], "the todo app");
    assert_eq!(todo["completed"], false);
    let id = todo["id"].as_str().unwrap();
    assert!(uuid::Uuid::parse_str(id).is_ok(), "{id}");
    assert_eq!(todo["created_at"], todo["updated_at"]);

    let reply = send(&app, "GET", &format!("/todos/{id}"), None).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.json, todo);

    let reply = send(
        &app,
        "POST",
        "/todos",
        Some(r#"{"title": "no description"}"#),
    )
    .await;
    assert_eq!(reply.status, StatusCode::CREATED);
    assert_eq!(reply.json["description"], Value::Null);
    let location = reply.headers[header::LOCATION].to_str().unwrap();
    assert_eq!(
        location,
        format!("/todos/{}", reply.json["id"].as_str().unwrap())
    );
}

async fn create_rejects_bad_bodies(db: &Database) {
    let app = app(db);
    for (body, status, message) in [
        ("{}", 422, "`title` is required"),
        (r#"{"title": null}"#, 422, "`title` is required"),
        (r#"{"title": ""}"#, 422, "`title` must not be empty"),
        (r#"{"title": "   "}"#, 422, "`title` must not be empty"),
        (r#"{"title": 42}"#, 422, "`title` has the wrong type"),
        (
            r#"{"title": "a", "s": "s3cr3t"}"#,
            422,
            "`s` is not a field of this body",
        ),
        (r#"["s3cr3t"]"#, 422, "the body must be a JSON object"),
        (r#"{"title": "a""#, 400, "malformed JSON"),
        ("not json", 400, "malformed JSON"),
        ("", 400, "malformed JSON"),
    ] {
        let reply = send(&app, "POST", "/todos", Some(body)).await;
        assert_eq!(reply.status.as_u16(), status, "{body}: {:?}", reply.json);
        assert!(
            reply.error().starts_with(message),
            "{body}: {}",
            reply.error()
        );
        assert!(!reply.error().contains("s3cr3t"), "{}", reply.error());
    }
    let long = format!(r#"{{"title": "{}"}}"#, "x".repeat(201));
    let reply = send(&app, "POST", "/todos", Some(&long)).await;
    assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);

    // Without a JSON content type.
    let request = axum::http::Request::post("/todos")
        .header(header::CONTENT_TYPE, "text/plain")
        .body(axum::body::Body::from(r#"{"title": "a"}"#))
        .unwrap();
    let reply = tower::ServiceExt::oneshot(app.clone(), request)
        .await
        .unwrap();
    assert_eq!(reply.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);

    let count: i64 = db
        .fetch_value("SELECT count(*) FROM {{tables.todos}}", &[])
        .await
        .unwrap();
    assert_eq!(count, 0, "no rejected body was stored");
}

fn titles(page: &Value) -> Vec<&str> {
    page["todos"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["title"].as_str().unwrap())
        .collect()
}

async fn list_filters_pages_and_caps(db: &Database) {
    let app = app(db);
    for title in ["one", "two", "three"] {
        create(&app, &format!(r#"{{"title": "{title}"}}"#)).await;
    }
    let two = send(&app, "GET", "/todos", None).await.json["todos"][1].clone();
    let id = two["id"].as_str().unwrap();
    let reply = send(
        &app,
        "PATCH",
        &format!("/todos/{id}"),
        Some(r#"{"completed": true}"#),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);

    let all = send(&app, "GET", "/todos", None).await;
    assert_eq!(all.status, StatusCode::OK);
    assert_eq!(titles(&all.json), ["three", "two", "one"], "newest first");
    assert_eq!(
        (all.json["limit"].as_u64(), all.json["offset"].as_u64()),
        (Some(20), Some(0))
    );
    let done = send(&app, "GET", "/todos?completed=true", None).await;
    assert_eq!(titles(&done.json), ["two"]);
    let open = send(&app, "GET", "/todos?completed=false", None).await;
    assert_eq!(titles(&open.json), ["three", "one"]);
    let page = send(&app, "GET", "/todos?limit=2", None).await;
    assert_eq!(titles(&page.json), ["three", "two"]);
    let page = send(&app, "GET", "/todos?limit=2&offset=2", None).await;
    assert_eq!(titles(&page.json), ["one"]);
    assert_eq!(page.json["offset"], 2);

    for query in ["limit=abc", "limit=-1", "offset=-5", "completed=maybe"] {
        let reply = send(&app, "GET", &format!("/todos?{query}"), None).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{query}");
        assert!(reply.error().starts_with("invalid query"), "{query}");
    }

    // The cap: 150 todos, a limit of 1000 gets 100 of them.
    db.execute(
        "INSERT INTO {{tables.todos}} (title) SELECT 'bulk ' || n FROM generate_series(1, 147) n",
        &[],
    )
    .await
    .unwrap();
    let capped = send(&app, "GET", "/todos?limit=1000", None).await;
    assert_eq!(capped.status, StatusCode::OK);
    assert_eq!(capped.json["todos"].as_array().unwrap().len(), 100);
    assert_eq!(capped.json["limit"], 100);
}

async fn get_patch_delete_answer_404_and_400(db: &Database) {
    let app = app(db);
    for method in ["GET", "DELETE"] {
        let reply = send(&app, method, MISSING, None).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{method}");
        assert_eq!(reply.error(), "no todo with this id");
        let reply = send(&app, method, "/todos/not-a-uuid", None).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{method}");
        assert_eq!(reply.error(), "the todo id must be a UUID");
    }
    let body = Some(r#"{"completed": true}"#);
    let reply = send(&app, "PATCH", MISSING, body).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_eq!(reply.error(), "no todo with this id");
    let reply = send(&app, "PATCH", "/todos/42", body).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.error(), "the todo id must be a UUID");
}

async fn patch_changes_only_what_is_sent(db: &Database) {
    let app = app(db);
    let todo = create(
        &app,
        r#"{"title": "write tests", "description": "all routes"}"#,
    )
    .await;
    let uri = format!("/todos/{}", todo["id"].as_str().unwrap());

    let done = send(&app, "PATCH", &uri, Some(r#"{"completed": true}"#)).await;
    assert_eq!(done.status, StatusCode::OK);
    assert_eq!(done.json["completed"], true);
    assert_eq!(done.json["title"], "write tests");
    assert_eq!(done.json["description"], "all routes");
    assert_eq!(done.json["created_at"], todo["created_at"]);
    let (before, after) = (
        timestamp(&todo["updated_at"]),
        timestamp(&done.json["updated_at"]),
    );
    assert!(
        after > before,
        "the trigger moved updated_at: {before} -> {after}"
    );

    let renamed = send(&app, "PATCH", &uri, Some(r#"{"title": " tests written "}"#)).await;
    assert_eq!(renamed.json["title"], "tests written");
    assert_eq!(renamed.json["completed"], true);
    let cleared = send(&app, "PATCH", &uri, Some(r#"{"description": null}"#)).await;
    assert_eq!(cleared.json["description"], Value::Null);
    assert_eq!(cleared.json["title"], "tests written");

    // Nothing to change: the todo as it is, updated_at untouched.
    let same = send(&app, "PATCH", &uri, Some("{}")).await;
    assert_eq!(same.status, StatusCode::OK);
    assert_eq!(same.json, cleared.json);

    for (body, status) in [
        (r#"{"title": ""}"#, 422),
        (r#"{"title": null}"#, 422),
        (r#"{"completed": null}"#, 422),
        (r#"{"completed": "yes"}"#, 422),
        (r#"{"done": true}"#, 422),
        (r#"{"completed": tru"#, 400),
    ] {
        let reply = send(&app, "PATCH", &uri, Some(body)).await;
        assert_eq!(reply.status.as_u16(), status, "{body}: {:?}", reply.json);
        reply.error();
    }
    let unchanged = send(&app, "GET", &uri, None).await;
    assert_eq!(
        unchanged.json, cleared.json,
        "rejected changes wrote nothing"
    );
}

fn timestamp(value: &Value) -> chrono::DateTime<chrono::Utc> {
    value.as_str().unwrap().parse().unwrap()
}

async fn delete_answers_204_then_404(db: &Database) {
    let app = app(db);
    let todo = create(&app, r#"{"title": "temporary"}"#).await;
    let uri = format!("/todos/{}", todo["id"].as_str().unwrap());
    let reply = send(&app, "DELETE", &uri, None).await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT);
    assert_eq!(reply.json, Value::Null);
    assert_eq!(
        send(&app, "GET", &uri, None).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        send(&app, "DELETE", &uri, None).await.status,
        StatusCode::NOT_FOUND
    );
}

async fn health_reports_liveness_and_readiness(db: &Database) {
    let app = app(db);
    let live = send(&app, "GET", "/health", None).await;
    assert_eq!(live.status, StatusCode::OK);
    assert_eq!(live.json["status"], "ok");
    create(&app, r#"{"title": "counted"}"#).await;
    let ready = send(&app, "GET", "/health/ready", None).await;
    assert_eq!(ready.status, StatusCode::OK, "{:?}", ready.json);
    assert_eq!(ready.json["status"], "ready");
    assert!(ready.json["pool"]["max_size"].as_u64().unwrap() > 0);
    assert!(ready.json["pool"]["size"].as_u64().unwrap() >= 1);
    assert!(ready.json["round_trip_ms"].as_f64().is_some());
    assert_eq!(
        ready.json["queries"]["total"], 1,
        "the insert, through the monitored handle"
    );
}

async fn statements_are_monitored(db: &Database) {
    // Every statement counts as slow from a zero threshold, so each is recorded as slow.
    let state = AppState::new(
        db.clone(),
        MonitorOptions::default().slow_query_threshold(Duration::ZERO),
    );
    let app = router(state.clone());
    create(&app, r#"{"title": "watched"}"#).await;
    assert_eq!(
        send(&app, "GET", "/todos", None).await.status,
        StatusCode::OK
    );
    let monitor = state.database().monitor().expect("a monitored handle");
    let metrics = monitor.metrics();
    assert_eq!(metrics.total_queries, 2);
    assert_eq!(metrics.slow_queries, 2);
    assert!(
        monitor.slow_queries()[0]
            .sql
            .contains("INSERT INTO {{tables.todos}}")
    );
}

on_both_drivers!(
    create_returns_201_with_the_todo,
    create_rejects_bad_bodies,
    list_filters_pages_and_caps,
    get_patch_delete_answer_404_and_400,
    patch_changes_only_what_is_sent,
    delete_answers_204_then_404,
    health_reports_liveness_and_readiness,
    statements_are_monitored,
);
