//! Driving routers over HTTP (`tower::ServiceExt::oneshot`) and waiting for effects.

use std::future::Future;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::{Value, json};
use tower::ServiceExt;
use uuid::Uuid;

/// Sends one request to `router` and returns the status and the JSON body (`Null` when empty,
/// a JSON string when the body is not JSON).
pub(crate) async fn call(
    router: &Router,
    method: &str,
    uri: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let request = Request::builder().method(method).uri(uri);
    let request = match body {
        Some(body) => request
            .header("content-type", "application/json")
            .body(Body::from(body.to_string())),
        None => request.body(Body::empty()),
    }
    .expect("a valid request");
    let response = router.clone().oneshot(request).await.expect("infallible");
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .expect("a readable body");
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
    };
    (status, body)
}

/// The id in a JSON body.
pub(crate) fn id(body: &Value) -> Uuid {
    body["id"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no id in {body}"))
}

/// Registers a user through `router` and returns its id.
pub(crate) async fn user(router: &Router, email: &str) -> Uuid {
    let (status, body) = call(
        router,
        "POST",
        "/users",
        Some(json!({"email": email, "name": "Ann"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    id(&body)
}

/// Adds a product through `router` and returns its id.
pub(crate) async fn product(router: &Router, sku: &str, price_cents: i64, stock: i32) -> Uuid {
    let new = json!({"sku": sku, "name": sku, "price_cents": price_cents, "stock": stock});
    let (status, body) = call(router, "POST", "/products", Some(new)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    id(&body)
}

/// The stock of a product, read through `router`.
pub(crate) async fn stock(router: &Router, product: Uuid) -> i64 {
    let (status, body) = call(router, "GET", &format!("/products/{product}"), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["stock"].as_i64().expect("stock")
}

/// Places an order of `(product, quantity)` lines through `router`.
pub(crate) async fn order(
    router: &Router,
    user: Uuid,
    lines: &[(Uuid, i32)],
) -> (StatusCode, Value) {
    let items: Vec<Value> = lines
        .iter()
        .map(|(p, q)| json!({"product_id": p, "quantity": q}))
        .collect();
    call(
        router,
        "POST",
        "/orders",
        Some(json!({"user_id": user, "items": items})),
    )
    .await
}

/// Polls `check` every 20 ms until it returns `true` or `bound` has passed; returns how long
/// it took, or `None`.
pub(crate) async fn within<F, Fut>(bound: Duration, mut check: F) -> Option<Duration>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let start = Instant::now();
    loop {
        if check().await {
            return Some(start.elapsed());
        }
        if start.elapsed() > bound {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
