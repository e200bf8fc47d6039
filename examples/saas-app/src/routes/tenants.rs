//! `POST /tenants` (sign-up) and `GET /tenant`.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;

use crate::auth::TenantAuth;
use crate::error::{ApiError, ApiJson};
use crate::lifecycle::{SignUp, SignedUp, SignupError, sign_up as run_sign_up};
use crate::registry::TenantRecord;
use crate::state::AppState;

impl From<SignupError> for ApiError {
    fn from(err: SignupError) -> Self {
        match err {
            SignupError::Invalid(message) => ApiError::invalid(message),
            SignupError::SlugTaken(_) | SignupError::SchemaExists(_) => {
                ApiError::conflict(err.to_string())
            }
            SignupError::Database(e) => e.into(),
            SignupError::Hashing(_) | SignupError::Task(_) | SignupError::Abandoned => {
                tracing::error!(error = %err, "sign-up failed");
                ApiError::internal()
            }
        }
    }
}

pub(super) async fn sign_up(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<SignUp>,
) -> Result<(StatusCode, Json<SignedUp>), ApiError> {
    let done = run_sign_up(state.registry(), state.hasher(), req).await?;
    Ok((StatusCode::CREATED, Json(done)))
}

pub(super) async fn me(
    State(state): State<AppState>,
    TenantAuth(tenant): TenantAuth,
) -> Result<Json<TenantRecord>, ApiError> {
    state
        .registry()
        .by_slug(tenant.slug())
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::unauthorized("tenant no longer exists"))
}
