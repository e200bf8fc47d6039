//! The HTTP routes; [`router`] puts them together.

mod admin;
mod projects;
mod tenants;

use axum::Router;
use axum::routing::{get, post};

use crate::state::AppState;

/// The application's routes on `state`:
///
/// | route | who | what |
/// |---|---|---|
/// | `GET /health` | anyone | `200 {"status": "ok"}` |
/// | `POST /tenants` | anyone | sign up: `201 {"tenant": …, "api_key": "sk_…"}`; `409` slug taken; `422` bad slug, name or plan |
/// | `GET /tenant` | tenant | the tenant's registry row |
/// | `GET /projects?limit=&offset=` | tenant | its projects |
/// | `POST /projects` | tenant | `201` project; `403 plan_limit` |
/// | `GET`/`PATCH`/`DELETE /projects/{id}` | tenant | `200`/`200`/`204`; `404` when the tenant has no such project; `400` for a non-UUID id |
/// | `GET /admin/tenants?limit=&offset=` | admin | tenants with their project counts |
/// | `POST /admin/tenants/{slug}/suspend`, `…/resume` | admin | `200` tenant; `404` |
/// | `DELETE /admin/tenants/{slug}` | admin | `204` (schema dropped); `404` |
///
/// Tenant routes take the key as `Authorization: Bearer <key>` or `X-Api-Key`; `401` without a
/// valid key, `403 suspended` for a suspended tenant. Admin routes take the admin key the same
/// way; `403` otherwise. Errors are `{"error": "...", "code": "..."}`.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/tenants", post(tenants::sign_up))
        .route("/tenant", get(tenants::me))
        .route("/projects", get(projects::list).post(projects::create))
        .route(
            "/projects/{id}",
            get(projects::get)
                .patch(projects::update)
                .delete(projects::delete),
        )
        .route("/admin/tenants", get(admin::tenants))
        .route("/admin/tenants/{slug}/suspend", post(admin::suspend))
        .route("/admin/tenants/{slug}/resume", post(admin::resume))
        .route(
            "/admin/tenants/{slug}",
            axum::routing::delete(admin::delete),
        )
        .with_state(state)
}

async fn health() -> axum::Json<serde_json::Value> {
    axum::Json(serde_json::json!({ "status": "ok" }))
}

/// `?limit=&offset=` of list routes.
#[derive(Debug, Clone, Copy, serde::Deserialize)]
struct Page {
    limit: Option<i64>,
    offset: Option<i64>,
}

impl Page {
    /// Limit (default 50, at most `max`) and offset (at least 0).
    fn bounds(self, max: i64) -> (i64, i64) {
        (
            self.limit.unwrap_or(50).clamp(1, max),
            self.offset.unwrap_or(0).max(0),
        )
    }
}
