//! The users service's HTTP routes.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use pgdbm::Database;
use serde::Deserialize;
use uuid::Uuid;

use crate::{NewUser, User, UsersError};

/// The routes, relative to where the host nests them (`/users`):
///
/// * `POST /` `{"email", "name"}` → 201 with the user; 409 when the email is taken; 422 when
///   a field is invalid.
/// * `GET /?limit=&offset=` → 200 with a page of users (`limit` 1–100, default 50).
/// * `GET /{id}` → 200 with the user, or 404.
///
/// `db` is the module's handle: on a pool of its own or a shared one, scoped to its schema.
pub fn router(db: Database) -> Router {
    Router::new()
        .route("/", get(list_users).post(create_user))
        .route("/{id}", get(get_user))
        .with_state(db)
}

async fn create_user(
    State(db): State<Database>,
    Json(new): Json<NewUser>,
) -> Result<(StatusCode, Json<User>), UsersError> {
    let user = crate::create(&db, &new).await?;
    Ok((StatusCode::CREATED, Json(user)))
}

async fn get_user(
    State(db): State<Database>,
    Path(id): Path<Uuid>,
) -> Result<Json<User>, UsersError> {
    crate::find(&db, id)
        .await?
        .map(Json)
        .ok_or(UsersError::NotFound)
}

/// `?limit=&offset=` of a list.
#[derive(Debug, Deserialize)]
struct Page {
    limit: Option<i64>,
    offset: Option<i64>,
}

async fn list_users(
    State(db): State<Database>,
    Query(page): Query<Page>,
) -> Result<Json<Vec<User>>, UsersError> {
    let limit = page.limit.unwrap_or(50).clamp(1, 100);
    let offset = page.offset.unwrap_or(0).max(0);
    Ok(Json(crate::list(&db, limit, offset).await?))
}
