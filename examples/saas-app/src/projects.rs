//! A tenant's projects: every query runs on the tenant's handle, so `{{tables.projects}}` is
//! always that tenant's own table.

use chrono::{DateTime, Utc};
use pgdbm::prelude::*;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::ApiError;
use crate::registry::{Registry, TenantStatus};
use crate::tenant::Tenant;

/// A project.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, FromRow)]
pub struct Project {
    /// Its id (a UUID: ids never repeat across tenants).
    pub id: Uuid,
    /// Its name.
    pub name: String,
    /// Its description.
    pub description: Option<String>,
    /// `active` or `archived`.
    pub status: String,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

/// The columns of a [`Project`].
macro_rules! columns {
    () => {
        "id, name, description, status, created_at, updated_at"
    };
}

/// A new project.
#[derive(Debug, Clone, Deserialize)]
pub struct NewProject {
    /// Its name (not empty).
    pub name: String,
    /// Its description.
    pub description: Option<String>,
}

/// A partial update: absent fields stay as they are.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ProjectPatch {
    /// A new name (not empty).
    pub name: Option<String>,
    /// A new description.
    pub description: Option<String>,
    /// `active` or `archived`.
    pub status: Option<String>,
}

fn check_name(name: &str) -> Result<(), ApiError> {
    if name.trim().is_empty() {
        return Err(ApiError::invalid("name must not be empty"));
    }
    Ok(())
}

fn check_status(status: Option<&str>) -> Result<(), ApiError> {
    match status {
        None | Some("active" | "archived") => Ok(()),
        Some(other) => Err(ApiError::invalid(format!(
            "status must be \"active\" or \"archived\", not {other:?}"
        ))),
    }
}

/// Creates a project within the tenant's plan limit.
///
/// The limit holds under concurrency: the transaction locks the tenant's registry row
/// (`FOR UPDATE`) before counting, so creates of one tenant take turns between the count and
/// the insert, and a suspension committed meanwhile is seen. Creates of different tenants do
/// not wait for each other.
///
/// # Errors
///
/// `422` for an empty name, `403 plan_limit` at the limit, `403 suspended`, `500` for database
/// errors.
pub async fn create(
    registry: &Registry,
    tenant: &Tenant,
    new: &NewProject,
) -> Result<Project, ApiError> {
    check_name(&new.name)?;
    registry
        .db()
        .transaction(|tx| async move {
            let row = tx
                .fetch_optional(
                    "SELECT t.status, p.max_projects
                     FROM {{tables.tenants}} t JOIN {{tables.plans}} p ON p.name = t.plan
                     WHERE t.id = $1
                     FOR UPDATE OF t",
                    params![tenant.id()],
                )
                .await?
                .ok_or_else(|| ApiError::unauthorized("tenant no longer exists"))?;
            if row.get::<TenantStatus>("status")? != TenantStatus::Active {
                return Err(ApiError::forbidden("suspended", "tenant is suspended"));
            }
            let max: i32 = row.get("max_projects")?;
            // The tenant's table, inside the registry's transaction: same connection, same lock.
            let projects = tenant.db().in_transaction(&tx);
            let count: i64 = projects
                .fetch_value("SELECT count(*) FROM {{tables.projects}}", &[])
                .await?;
            if count >= i64::from(max) {
                return Err(ApiError::forbidden(
                    "plan_limit",
                    format!("plan {} allows {max} projects", tenant.plan()),
                ));
            }
            const SQL: &str = concat!(
                "INSERT INTO {{tables.projects}} (name, description) VALUES ($1, $2) RETURNING ",
                columns!()
            );
            Ok(projects
                .fetch_one_as(SQL, params![new.name.trim(), new.description.as_deref()])
                .await?)
        })
        .await
}

/// A page of the tenant's projects, oldest first.
///
/// # Errors
///
/// Database errors.
pub async fn list(tenant: &Tenant, limit: i64, offset: i64) -> pgdbm::Result<Vec<Project>> {
    const SQL: &str = concat!(
        "SELECT ",
        columns!(),
        " FROM {{tables.projects}} ORDER BY created_at, id LIMIT $1 OFFSET $2"
    );
    tenant.db().fetch_all_as(SQL, params![limit, offset]).await
}

/// The tenant's project `id`, or `None`.
///
/// # Errors
///
/// Database errors.
pub async fn get(tenant: &Tenant, id: Uuid) -> pgdbm::Result<Option<Project>> {
    const SQL: &str = concat!(
        "SELECT ",
        columns!(),
        " FROM {{tables.projects}} WHERE id = $1"
    );
    tenant.db().fetch_optional_as(SQL, params![id]).await
}

/// Applies `patch` to the tenant's project `id`; `None` when it has no such project.
///
/// # Errors
///
/// `422` for an empty name or an unknown status, `500` for database errors.
pub async fn update(
    tenant: &Tenant,
    id: Uuid,
    patch: &ProjectPatch,
) -> Result<Option<Project>, ApiError> {
    if let Some(name) = &patch.name {
        check_name(name)?;
    }
    check_status(patch.status.as_deref())?;
    const SQL: &str = concat!(
        "UPDATE {{tables.projects}} SET
             name = COALESCE($2, name),
             description = COALESCE($3, description),
             status = COALESCE($4, status)
         WHERE id = $1 RETURNING ",
        columns!()
    );
    let name = patch.name.as_deref().map(str::trim);
    Ok(tenant
        .db()
        .fetch_optional_as(
            SQL,
            params![
                id,
                name,
                patch.description.as_deref(),
                patch.status.as_deref()
            ],
        )
        .await?)
}

/// Deletes the tenant's project `id`; whether there was one.
///
/// # Errors
///
/// Database errors.
pub async fn delete(tenant: &Tenant, id: Uuid) -> pgdbm::Result<bool> {
    let n = tenant
        .db()
        .execute("DELETE FROM {{tables.projects}} WHERE id = $1", params![id])
        .await?;
    Ok(n > 0)
}
