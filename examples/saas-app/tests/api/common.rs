//! Driving the router and reading the database behind it.

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use pgdbm::prelude::*;
use saas_app::api_key::KeyHasher;
use saas_app::registry::Registry;
use saas_app::{AppConfig, AppState};
use serde_json::Value;
use tower::ServiceExt;

pub(crate) const ADMIN_KEY: &str = "admin-key-for-tests";

/// The app on the test database (a handle scoped to `control`), with cheap key hashing.
pub(crate) fn app(control: &Database) -> (Router, AppState) {
    let state = AppState::new(
        Registry::new(control.clone()),
        AppConfig {
            admin_key: Some(ADMIN_KEY.to_owned()),
            hasher: KeyHasher::low_cost(),
            ..AppConfig::default()
        },
    );
    (saas_app::router(state.clone()), state)
}

/// How a request presents its key.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Key<'a> {
    None,
    Bearer(&'a str),
    Header(&'a str),
}

/// One request; the status and the JSON body (`Null` when empty).
pub(crate) async fn call(
    app: &Router,
    method: &str,
    uri: &str,
    key: Key<'_>,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut req = Request::builder().method(method).uri(uri);
    req = match key {
        Key::None => req,
        Key::Bearer(k) => req.header("authorization", format!("Bearer {k}")),
        Key::Header(k) => req.header("x-api-key", k),
    };
    let req = match body {
        Some(body) => req
            .header("content-type", "application/json")
            .body(Body::from(body.to_string())),
        None => req.body(Body::empty()),
    }
    .expect("a valid request");
    let res = app.clone().oneshot(req).await.expect("infallible");
    let status = res.status();
    let bytes = res.into_body().collect().await.expect("a body").to_bytes();
    let json = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap_or_else(|e| {
            panic!(
                "{method} {uri}: not JSON ({e}): {}",
                String::from_utf8_lossy(&bytes)
            )
        })
    };
    (status, json)
}

/// Signs `slug` up; its API key.
pub(crate) async fn sign_up(app: &Router, slug: &str) -> String {
    sign_up_on(app, slug, "free").await
}

/// Signs `slug` up on `plan`; its API key.
pub(crate) async fn sign_up_on(app: &Router, slug: &str, plan: &str) -> String {
    let body = serde_json::json!({ "slug": slug, "name": format!("{slug} Inc."), "plan": plan });
    let (status, json) = call(app, "POST", "/tenants", Key::None, Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{json}");
    assert_eq!(json["tenant"]["status"], "active", "{json}");
    json["api_key"].as_str().expect("a key").to_owned()
}

/// Creates project `name` with `key`; its id.
pub(crate) async fn create_project(app: &Router, key: &str, name: &str) -> String {
    let body = serde_json::json!({ "name": name });
    let (status, json) = call(app, "POST", "/projects", Key::Bearer(key), Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{json}");
    json["id"].as_str().expect("an id").to_owned()
}

/// Whether schema `name` exists.
pub(crate) async fn schema_exists(db: &Database, name: &str) -> bool {
    db.fetch_value(
        "SELECT EXISTS (SELECT 1 FROM information_schema.schemata WHERE schema_name = $1)",
        params![name],
    )
    .await
    .expect("information_schema")
}

/// The registry rows of `slug` (0 or 1).
pub(crate) async fn registry_rows(db: &Database, slug: &str) -> i64 {
    db.fetch_value(
        "SELECT count(*) FROM {{tables.tenants}} WHERE slug = $1",
        params![slug],
    )
    .await
    .expect("registry")
}
