//! The orders service's HTTP routes.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use uuid::Uuid;

use crate::{NewOrder, OrderDetails, OrderError, Orders};

/// The routes, relative to where the host nests them (`/orders`):
///
/// * `POST /` `{"user_id", "items": [{"product_id", "quantity"}]}` → 201 with the order and
///   its items; 409 when a product is out of stock and 422 for an unknown user or product or
///   an invalid line (nothing is written then).
/// * `GET /{id}` → 200 with the order and its items, or 404.
pub fn router(orders: Orders) -> Router {
    Router::new()
        .route("/", post(place_order))
        .route("/{id}", get(get_order))
        .with_state(orders)
}

async fn place_order(
    State(orders): State<Orders>,
    Json(new): Json<NewOrder>,
) -> Result<(StatusCode, Json<OrderDetails>), OrderError> {
    let order = orders.place(&new).await?;
    Ok((StatusCode::CREATED, Json(order)))
}

async fn get_order(
    State(orders): State<Orders>,
    Path(id): Path<Uuid>,
) -> Result<Json<OrderDetails>, OrderError> {
    orders.find(id).await?.map(Json).ok_or(OrderError::NotFound)
}
