//! `/admin`: across tenants, with the admin key.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use futures_util::StreamExt;
use pgdbm::prelude::*;
use serde::Serialize;

use super::Page;
use crate::auth::AdminAuth;
use crate::error::ApiError;
use crate::registry::{TenantRecord, TenantStatus};
use crate::state::AppState;
use crate::tenant::schema_name;

/// How many tenants' tables are counted at once (each count takes a connection).
const COUNT_CONCURRENCY: usize = 4;

/// A tenant with its project count.
#[derive(Debug, Serialize)]
pub(super) struct TenantSummary {
    #[serde(flatten)]
    tenant: TenantRecord,
    /// `null` while the tenant is still provisioning (or was just deleted).
    projects: Option<i64>,
}

/// A page of tenants with their project counts: one count per tenant schema, a few at a time,
/// each on a handle scoped to that tenant's schema.
pub(super) async fn tenants(
    _: AdminAuth,
    State(state): State<AppState>,
    Query(page): Query<Page>,
) -> Result<Json<Vec<TenantSummary>>, ApiError> {
    let (limit, offset) = page.bounds(1000);
    let tenants = state.registry().list(limit, offset).await?;
    let pool = state.registry().db().pool().clone();
    let counts = futures_util::stream::iter(tenants)
        .map(|tenant| {
            let pool = pool.clone();
            async move {
                if tenant.status == TenantStatus::Provisioning {
                    return Ok(TenantSummary {
                        tenant,
                        projects: None,
                    });
                }
                let db = Database::new(pool, Some(&schema_name(&tenant.slug)))?;
                let projects = match db
                    .fetch_value::<i64>("SELECT count(*) FROM {{tables.projects}}", &[])
                    .await
                {
                    Ok(n) => Some(n),
                    // Deleted since the page was read: its table is gone.
                    Err(e) if e.code() == Some("42P01") => None,
                    Err(e) => return Err(e),
                };
                Ok(TenantSummary { tenant, projects })
            }
        })
        .buffered(COUNT_CONCURRENCY)
        .collect::<Vec<_>>()
        .await;
    let summaries = counts.into_iter().collect::<pgdbm::Result<Vec<_>>>()?;
    Ok(Json(summaries))
}

fn no_such_tenant(slug: &str, wanted: &str) -> ApiError {
    ApiError::not_found(format!("no {wanted} tenant {slug:?}"))
}

pub(super) async fn suspend(
    _: AdminAuth,
    State(state): State<AppState>,
    Path(slug): Path<String>,
) -> Result<Json<TenantRecord>, ApiError> {
    let changed = state.suspend(&slug).await?;
    changed
        .map(Json)
        .ok_or_else(|| no_such_tenant(&slug, "active"))
}

pub(super) async fn resume(
    _: AdminAuth,
    State(state): State<AppState>,
    Path(slug): Path<String>,
) -> Result<Json<TenantRecord>, ApiError> {
    let changed = state.resume(&slug).await?;
    changed
        .map(Json)
        .ok_or_else(|| no_such_tenant(&slug, "suspended"))
}

pub(super) async fn delete(
    _: AdminAuth,
    State(state): State<AppState>,
    Path(slug): Path<String>,
) -> Result<StatusCode, ApiError> {
    match state.delete(&slug).await? {
        Some(_) => Ok(StatusCode::NO_CONTENT),
        None => Err(no_such_tenant(&slug, "active or suspended")),
    }
}
