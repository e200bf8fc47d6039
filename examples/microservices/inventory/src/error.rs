//! The inventory service's errors and the HTTP responses they become.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use uuid::Uuid;

/// What can go wrong in the inventory service.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InventoryError {
    /// A field of the request is invalid (422).
    #[error("{field} {reason}")]
    Invalid {
        /// The field.
        field: &'static str,
        /// Why it is invalid.
        reason: &'static str,
    },
    /// Another product has this sku (409).
    #[error("a product with this sku already exists")]
    SkuTaken,
    /// The product of the request's path does not exist (404).
    #[error("no such product")]
    NotFound,
    /// A product named in the request's body does not exist (422).
    #[error("unknown product {0}")]
    UnknownProduct(Uuid),
    /// Not enough stock (409); nothing was taken.
    #[error("product {product_id}: {requested} requested, {available} in stock")]
    OutOfStock {
        /// The product.
        product_id: Uuid,
        /// Units asked for.
        requested: i32,
        /// Units in stock.
        available: i32,
    },
    /// The database failed (503 when it is unreachable, else 500; details are logged only).
    #[error(transparent)]
    Database(#[from] pgdbm::Error),
}

impl InventoryError {
    /// The HTTP status this error answers with.
    pub fn status(&self) -> StatusCode {
        match self {
            InventoryError::Invalid { .. } | InventoryError::UnknownProduct(_) => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            InventoryError::SkuTaken | InventoryError::OutOfStock { .. } => StatusCode::CONFLICT,
            InventoryError::NotFound => StatusCode::NOT_FOUND,
            InventoryError::Database(e) if e.is_connection_error() || e.is_pool_timeout() => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            InventoryError::Database(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for InventoryError {
    fn into_response(self) -> Response {
        let message = match &self {
            InventoryError::Database(e) => {
                tracing::error!(error = %e, "inventory: database error");
                "database error".to_owned()
            }
            other => other.to_string(),
        };
        (self.status(), Json(serde_json::json!({ "error": message }))).into_response()
    }
}
