//! Helpers of the router tests: one request through the router with `oneshot`, the answer's
//! status, headers and JSON body.

#![allow(dead_code, unreachable_pub)] // each test binary uses its own part

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode, header};
use pgdbm::Database;
use pgdbm::monitor::MonitorOptions;
use serde_json::Value;
use todo_app::{AppState, router};
use tower::ServiceExt;

/// A response: status, headers and the body as JSON (`Value::Null` when empty).
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub json: Value,
}

impl Reply {
    /// The `error` message of an error body; panics when the body has none.
    pub fn error(&self) -> &str {
        self.json["error"]
            .as_str()
            .unwrap_or_else(|| panic!("no JSON error body: {:?}", self.json))
    }
}

/// The app on `db` (scoped to schema `todo`, migrated).
pub fn app(db: &Database) -> Router {
    router(AppState::new(db.clone(), MonitorOptions::default()))
}

/// Sends `method uri` with `body` as `application/json` (when given) through `app`.
pub async fn send(app: &Router, method: &str, uri: &str, body: Option<&str>) -> Reply {
    let mut request = Request::builder().method(method).uri(uri);
    let body = match body {
        Some(text) => {
            request = request.header(header::CONTENT_TYPE, "application/json");
            Body::from(text.to_owned())
        }
        None => Body::empty(),
    };
    let response = app
        .clone()
        .oneshot(request.body(body).expect("a valid request"))
        .await
        .expect("the router is infallible");
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .expect("a readable body");
    let json = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|e| panic!("{method} {uri}: body is not JSON ({e}): {bytes:?}"))
    };
    Reply {
        status,
        headers,
        json,
    }
}

/// `POST /todos` with `body`, expecting 201; the created todo.
pub async fn create(app: &Router, body: &str) -> Value {
    let reply = send(app, "POST", "/todos", Some(body)).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.json);
    reply.json
}

/// Each scenario once per driver, on a database of its own cloned from the migrated template.
#[allow(unused_macros)] // not every test binary uses it
macro_rules! on_both_drivers {
    ($($scenario:ident),* $(,)?) => {
        mod tokio_postgres {
            use pgdbm_testing::TestDatabase;
            use super::*;
            $(
                #[pgdbm_testing::test(module = TodoModule, schema = "todo")]
                async fn $scenario(db: TestDatabase) {
                    super::$scenario(&db).await;
                }
            )*
        }
        mod sqlx {
            use pgdbm_testing::TestDatabase;
            use super::*;
            $(
                #[pgdbm_testing::test(module = TodoModule, schema = "todo", driver = Sqlx)]
                async fn $scenario(db: TestDatabase) {
                    super::$scenario(&db).await;
                }
            )*
        }
    };
}
#[allow(unused_imports)]
pub(crate) use on_both_drivers;
