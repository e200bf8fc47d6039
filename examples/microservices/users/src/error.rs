//! The users service's errors and the HTTP responses they become.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// What can go wrong in the users service.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UsersError {
    /// A field of the request is invalid (422).
    #[error("{field} {reason}")]
    Invalid {
        /// The field.
        field: &'static str,
        /// Why it is invalid.
        reason: &'static str,
    },
    /// Another user has this email address (409).
    #[error("a user with this email already exists")]
    EmailTaken,
    /// No user has this id (404).
    #[error("no such user")]
    NotFound,
    /// The database failed (503 when it is unreachable, else 500; details are logged only).
    #[error(transparent)]
    Database(#[from] pgdbm::Error),
}

impl IntoResponse for UsersError {
    fn into_response(self) -> Response {
        let status = match &self {
            UsersError::Invalid { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            UsersError::EmailTaken => StatusCode::CONFLICT,
            UsersError::NotFound => StatusCode::NOT_FOUND,
            UsersError::Database(e) => return database_error(e),
        };
        let body = Json(serde_json::json!({ "error": self.to_string() }));
        (status, body).into_response()
    }
}

/// 503 when the database cannot be reached, 500 otherwise; the error is logged, not sent.
fn database_error(e: &pgdbm::Error) -> Response {
    tracing::error!(error = %e, "users: database error");
    let status = if e.is_connection_error() || e.is_pool_timeout() {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::INTERNAL_SERVER_ERROR
    };
    let body = Json(serde_json::json!({ "error": "database error" }));
    (status, body).into_response()
}
