//! `/projects`: a tenant's projects, through its [`TenantAuth`] handle only.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use uuid::Uuid;

use super::Page;
use crate::auth::TenantAuth;
use crate::error::{ApiError, ApiJson};
use crate::projects::{self, NewProject, Project, ProjectPatch};
use crate::state::AppState;

fn project_id(text: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(text).map_err(|_| ApiError::bad_request("project id must be a UUID"))
}

fn not_found() -> ApiError {
    ApiError::not_found("no such project")
}

pub(super) async fn list(
    TenantAuth(tenant): TenantAuth,
    Query(page): Query<Page>,
) -> Result<Json<Vec<Project>>, ApiError> {
    let (limit, offset) = page.bounds(200);
    Ok(Json(projects::list(&tenant, limit, offset).await?))
}

pub(super) async fn create(
    State(state): State<AppState>,
    TenantAuth(tenant): TenantAuth,
    ApiJson(new): ApiJson<NewProject>,
) -> Result<(StatusCode, Json<Project>), ApiError> {
    let project = projects::create(state.registry(), &tenant, &new).await?;
    Ok((StatusCode::CREATED, Json(project)))
}

pub(super) async fn get(
    TenantAuth(tenant): TenantAuth,
    Path(id): Path<String>,
) -> Result<Json<Project>, ApiError> {
    let project = projects::get(&tenant, project_id(&id)?).await?;
    project.map(Json).ok_or_else(not_found)
}

pub(super) async fn update(
    TenantAuth(tenant): TenantAuth,
    Path(id): Path<String>,
    ApiJson(patch): ApiJson<ProjectPatch>,
) -> Result<Json<Project>, ApiError> {
    let project = projects::update(&tenant, project_id(&id)?, &patch).await?;
    project.map(Json).ok_or_else(not_found)
}

pub(super) async fn delete(
    TenantAuth(tenant): TenantAuth,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    if projects::delete(&tenant, project_id(&id)?).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(not_found())
    }
}
