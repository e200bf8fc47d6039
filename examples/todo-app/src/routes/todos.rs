//! The `/todos` handlers: create, list, get, partial update, delete.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use serde::Serialize;

use crate::AppState;
use crate::error::ApiError;
use crate::extract::{JsonBody, ListQuery, TodoId};
use crate::todo::{NewTodo, Todo, TodoChanges};

/// `POST /todos`: 201 with the todo and its `Location`.
pub(crate) async fn create(
    State(state): State<AppState>,
    JsonBody(new): JsonBody<NewTodo>,
) -> Result<impl IntoResponse, ApiError> {
    let (title, description) = new.validate()?;
    let todo = state.todos.create(&title, description.as_deref()).await?;
    let location = format!("/todos/{}", todo.id);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(todo),
    ))
}

/// One page of todos and the page actually served (`limit` after the cap).
#[derive(Debug, Serialize)]
pub(crate) struct Page {
    todos: Vec<Todo>,
    limit: u32,
    offset: u64,
}

/// `GET /todos?completed=&limit=&offset=`: 200 with a page, newest first.
pub(crate) async fn list(
    State(state): State<AppState>,
    ListQuery(filter): ListQuery,
) -> Result<Json<Page>, ApiError> {
    let todos = state.todos.list(filter).await?;
    Ok(Json(Page {
        todos,
        limit: filter.limit,
        offset: filter.offset,
    }))
}

/// `GET /todos/{id}`: 200 or 404.
pub(crate) async fn get(
    State(state): State<AppState>,
    TodoId(id): TodoId,
) -> Result<Json<Todo>, ApiError> {
    let todo = state.todos.get(id).await?;
    todo.map(Json).ok_or_else(ApiError::todo_not_found)
}

/// `PATCH /todos/{id}`: only the fields present change; 200 with the todo or 404.
pub(crate) async fn update(
    State(state): State<AppState>,
    TodoId(id): TodoId,
    JsonBody(changes): JsonBody<TodoChanges>,
) -> Result<Json<Todo>, ApiError> {
    let changes = changes.validate()?;
    let todo = state.todos.update(id, &changes).await?;
    todo.map(Json).ok_or_else(ApiError::todo_not_found)
}

/// `DELETE /todos/{id}`: 204 or 404.
pub(crate) async fn delete(
    State(state): State<AppState>,
    TodoId(id): TodoId,
) -> Result<StatusCode, ApiError> {
    if state.todos.delete(id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::todo_not_found())
    }
}
