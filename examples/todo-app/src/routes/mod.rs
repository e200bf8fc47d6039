//! The HTTP routes: [`router`] and the handlers, one file per resource.

mod health;
mod todos;

use axum::Router;
use axum::routing::get;

use crate::AppState;

/// The application's routes on `state`:
///
/// | route | answers |
/// |---|---|
/// | `POST /todos` | 201 with the todo; 400 malformed JSON, 415 not JSON, 422 missing/empty title |
/// | `GET /todos?completed=&limit=&offset=` | 200 `{"todos": […], "limit", "offset"}`, newest first; `limit` defaults to 20 and is capped at 100; 400 for a bad value |
/// | `GET /todos/{id}` | 200 or 404; 400 when `id` is not a UUID |
/// | `PATCH /todos/{id}` | 200 with the changed todo or 404; 400/415/422 as for `POST` |
/// | `DELETE /todos/{id}` | 204 or 404 |
/// | `GET /health` | 200 (liveness) |
/// | `GET /health/ready` | 200 with pool stats, or 503 when the database does not answer |
/// | `GET /metrics` | 200 with the database metrics in Prometheus' text format (`db_client_operation_duration`, `db_client_connection_*`) |
/// | `GET /_pgdbm`, `GET /_pgdbm/plan/{id}` | with [`AppState::with_dashboard`]: pgdbm's dashboard (HTML) for requests with the token, else 401; absent (404) otherwise |
///
/// Errors have a JSON body `{"error": "…"}`; any route answers 503 while the database is
/// unreachable.
pub fn router(state: AppState) -> Router {
    let dashboard = state
        .dashboard
        .as_ref()
        .map(|(dashboard, token)| crate::dashboard::guarded(dashboard, token));
    let routes = Router::new()
        .route("/todos", get(todos::list).post(todos::create))
        .route(
            "/todos/{id}",
            get(todos::get).patch(todos::update).delete(todos::delete),
        )
        .route("/health", get(health::live))
        .route("/health/ready", get(health::ready))
        .route("/metrics", get(crate::metrics::render))
        .with_state(state);
    match dashboard {
        Some(dashboard) => routes.nest("/_pgdbm", dashboard),
        None => routes,
    }
}
