//! Extractors that authenticate a request: [`TenantAuth`] (a tenant's key) and [`AdminAuth`]
//! (the admin key). A key comes as `Authorization: Bearer <key>` or `X-Api-Key: <key>`.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;

use crate::error::ApiError;
use crate::state::AppState;
use crate::tenant::Tenant;

/// The key a request presents, if any.
fn presented_key(parts: &Parts) -> Result<&str, ApiError> {
    let header = |name| {
        parts
            .headers
            .get(name)
            .map(|v| {
                v.to_str()
                    .map_err(|_| ApiError::unauthorized("malformed API key"))
            })
            .transpose()
    };
    if let Some(value) = header(AUTHORIZATION.as_str())? {
        return value
            .strip_prefix("Bearer ")
            .map(str::trim)
            .ok_or_else(|| ApiError::unauthorized("Authorization must be `Bearer <key>`"));
    }
    header("x-api-key")?
        .map(str::trim)
        .ok_or_else(|| ApiError::unauthorized("missing API key"))
}

/// The active tenant a request's key belongs to. Its handle is scoped to the tenant's schema:
/// handlers can reach no other tenant's tables through it.
#[derive(Debug, Clone)]
pub struct TenantAuth(pub Arc<Tenant>);

impl FromRequestParts<AppState> for TenantAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let key = presented_key(parts)?;
        state.resolve(key).await.map(TenantAuth)
    }
}

/// A request made with the admin key.
#[derive(Debug, Clone, Copy)]
pub struct AdminAuth;

impl FromRequestParts<AppState> for AdminAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let key = presented_key(parts)?;
        if state.is_admin_key(key) {
            Ok(AdminAuth)
        } else {
            Err(ApiError::forbidden("forbidden", "admin key required"))
        }
    }
}
