//! The orders service's errors and the HTTP responses they become.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use inventory_service::InventoryError;
use uuid::Uuid;

/// What can go wrong in the orders service.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OrderError {
    /// A field of the request is invalid (422).
    #[error("{field} {reason}")]
    Invalid {
        /// The field.
        field: &'static str,
        /// Why it is invalid.
        reason: &'static str,
    },
    /// The user placing the order does not exist (422).
    #[error("unknown user {0}")]
    UnknownUser(Uuid),
    /// No order has this id (404).
    #[error("no such order")]
    NotFound,
    /// The inventory refused a line: unknown product (422) or out of stock (409). The whole
    /// order was rolled back.
    #[error(transparent)]
    Inventory(#[from] InventoryError),
    /// The database failed (503 when it is unreachable, else 500; details are logged only).
    #[error(transparent)]
    Database(#[from] pgdbm::Error),
}

impl OrderError {
    pub(crate) fn invalid(field: &'static str, reason: &'static str) -> Self {
        OrderError::Invalid { field, reason }
    }

    /// The HTTP status this error answers with.
    pub fn status(&self) -> StatusCode {
        match self {
            OrderError::Invalid { .. } | OrderError::UnknownUser(_) => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            OrderError::NotFound => StatusCode::NOT_FOUND,
            OrderError::Inventory(e) => e.status(),
            OrderError::Database(e) if e.is_connection_error() || e.is_pool_timeout() => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            OrderError::Database(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for OrderError {
    fn into_response(self) -> Response {
        if let OrderError::Inventory(e @ InventoryError::Database(_)) = self {
            return e.into_response();
        }
        let message = match &self {
            OrderError::Database(e) => {
                tracing::error!(error = %e, "orders: database error");
                "database error".to_owned()
            }
            other => other.to_string(),
        };
        (self.status(), Json(serde_json::json!({ "error": message }))).into_response()
    }
}
