//! [`ApiError`]: every failure a handler returns, as a status and a JSON body
//! `{"error": "…"}`. Database errors are mapped by what they mean (unavailable, a broken rule,
//! anything else) and logged; the body never carries SQL, parameter or row values.

use std::borrow::Cow;

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::todo::InvalidInput;

/// An error response: a status and a message safe to show to any client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    status: StatusCode,
    message: Cow<'static, str>,
}

impl ApiError {
    /// An error with this status and message.
    pub fn new(status: StatusCode, message: impl Into<Cow<'static, str>>) -> Self {
        ApiError {
            status,
            message: message.into(),
        }
    }

    /// 400: the request cannot be read (malformed JSON, a bad id or query).
    pub fn bad_request(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    /// 422: the request is well formed but a field breaks a rule.
    pub fn unprocessable(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, message)
    }

    /// 404: no todo with the id of the path.
    pub fn todo_not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "no todo with this id")
    }

    /// 503: the database cannot be reached now.
    pub fn unavailable() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "the database is unavailable",
        )
    }

    /// The response status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The message of the body.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.status, self.message)
    }
}

impl std::error::Error for ApiError {}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(json!({ "error": self.message }))).into_response()
    }
}

impl From<InvalidInput> for ApiError {
    fn from(invalid: InvalidInput) -> Self {
        ApiError::unprocessable(invalid.to_string())
    }
}

impl From<pgdbm::Error> for ApiError {
    /// No usable connection, a pool timeout, a closed pool or a statement timeout → 503; a
    /// broken `CHECK` or `NOT NULL` rule → 422; anything else → 500. pgdbm's errors never hold
    /// parameter values, so the full error goes to the log; the client gets a fixed message.
    fn from(err: pgdbm::Error) -> Self {
        use pgdbm::Error;
        if err.is_connection_error()
            || err.is_timeout()
            || matches!(err, Error::PoolTimeout { .. } | Error::PoolClosed)
        {
            tracing::warn!(error = %err, "database unavailable");
            ApiError::unavailable()
        } else if err.is_check_violation() || err.is_not_null_violation() {
            tracing::info!(error = %err, "rejected by a table rule");
            ApiError::unprocessable("the todo breaks a rule of the todos table")
        } else {
            tracing::error!(error = %err, "database error");
            ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
        }
    }
}
