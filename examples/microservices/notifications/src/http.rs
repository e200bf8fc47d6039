//! The notifications service's HTTP routes.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use pgdbm::Database;
use serde::Deserialize;
use uuid::Uuid;

use crate::Notification;

/// The routes, relative to where the host nests them (`/notifications`):
///
/// * `GET /?user_id=&limit=` → 200 with the user's latest notifications, newest first (`limit`
///   1–100, default 50); 400 without a valid `user_id`.
///
/// `db` is the module's handle. The [`Consumer`](crate::Consumer) runs next to the router,
/// not inside it.
pub fn router(db: Database) -> Router {
    Router::new()
        .route("/", get(list_notifications))
        .with_state(db)
}

/// `?user_id=&limit=`.
#[derive(Debug, Deserialize)]
struct ForUser {
    user_id: Uuid,
    limit: Option<i64>,
}

async fn list_notifications(
    State(db): State<Database>,
    Query(query): Query<ForUser>,
) -> Result<Json<Vec<Notification>>, DatabaseError> {
    let limit = query.limit.unwrap_or(50).clamp(1, 100);
    Ok(Json(crate::for_user(&db, query.user_id, limit).await?))
}

/// A database error as a response: 503 when the database is unreachable, else 500; the error
/// itself is logged, not sent.
struct DatabaseError(pgdbm::Error);

impl From<pgdbm::Error> for DatabaseError {
    fn from(e: pgdbm::Error) -> Self {
        DatabaseError(e)
    }
}

impl IntoResponse for DatabaseError {
    fn into_response(self) -> Response {
        tracing::error!(error = %self.0, "notifications: database error");
        let status = if self.0.is_connection_error() || self.0.is_pool_timeout() {
            StatusCode::SERVICE_UNAVAILABLE
        } else {
            StatusCode::INTERNAL_SERVER_ERROR
        };
        (
            status,
            Json(serde_json::json!({ "error": "database error" })),
        )
            .into_response()
    }
}
