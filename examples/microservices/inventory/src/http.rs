//! The inventory service's HTTP routes.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use pgdbm::Database;
use serde::Deserialize;
use uuid::Uuid;

use crate::{InventoryError, NewProduct, Product};

/// The routes, relative to where the host nests them (`/products`):
///
/// * `POST /` `{"sku", "name", "price_cents", "stock"}` → 201 with the product; 409 when the
///   sku is taken; 422 when a field is invalid.
/// * `GET /?limit=&offset=` → 200 with a page of products (`limit` 1–100, default 50).
/// * `GET /{id}` → 200 with the product, or 404.
/// * `POST /{id}/restock` `{"quantity"}` → 200 with the product, 404, or 422.
///
/// `db` is the module's handle: on a pool of its own or a shared one, scoped to its schema.
pub fn router(db: Database) -> Router {
    Router::new()
        .route("/", get(list_products).post(add_product))
        .route("/{id}", get(get_product))
        .route("/{id}/restock", post(restock))
        .with_state(db)
}

async fn add_product(
    State(db): State<Database>,
    Json(new): Json<NewProduct>,
) -> Result<(StatusCode, Json<Product>), InventoryError> {
    let product = crate::add_product(&db, &new).await?;
    Ok((StatusCode::CREATED, Json(product)))
}

async fn get_product(
    State(db): State<Database>,
    Path(id): Path<Uuid>,
) -> Result<Json<Product>, InventoryError> {
    crate::find(&db, id)
        .await?
        .map(Json)
        .ok_or(InventoryError::NotFound)
}

/// `?limit=&offset=` of a list.
#[derive(Debug, Deserialize)]
struct Page {
    limit: Option<i64>,
    offset: Option<i64>,
}

async fn list_products(
    State(db): State<Database>,
    Query(page): Query<Page>,
) -> Result<Json<Vec<Product>>, InventoryError> {
    let limit = page.limit.unwrap_or(50).clamp(1, 100);
    let offset = page.offset.unwrap_or(0).max(0);
    Ok(Json(crate::list(&db, limit, offset).await?))
}

/// The body of `POST /{id}/restock`.
#[derive(Debug, Deserialize)]
struct Restock {
    quantity: i32,
}

async fn restock(
    State(db): State<Database>,
    Path(id): Path<Uuid>,
    Json(body): Json<Restock>,
) -> Result<Json<Product>, InventoryError> {
    Ok(Json(crate::restock(&db, id, body.quantity).await?))
}
