//! Liveness (`GET /health`: the process answers) and readiness (`GET /health/ready`: the
//! database answers too, with the pool's state and the monitor's totals).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use pgdbm::monitor::{HealthOptions, HealthStatus};
use serde_json::{Value, json};

use crate::AppState;

/// `GET /health`: 200 while the process serves requests; touches no database.
pub(crate) async fn live() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// `GET /health/ready`: 200 when a round trip to the database succeeds within the readiness
/// timeout (`"degraded"` when the pool is nearly exhausted or sessions are blocked), else 503.
/// Reasons go to the log only: they may name hosts and other sessions' statements.
pub(crate) async fn ready(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    let mut options = HealthOptions::default();
    options.timeout = state.ready_timeout;
    let report = state.db.health_check_with(&options).await;
    let p = report.pool;
    let pool = json!({
        "size": p.size,
        "idle": p.idle,
        "in_use": p.in_use,
        "max_size": p.max_size,
        "waiting": p.waiting,
        "timed_out": p.timed_out,
    });
    let (status, label) = match report.status {
        HealthStatus::Healthy => (StatusCode::OK, "ready"),
        HealthStatus::Degraded => (StatusCode::OK, "degraded"),
        _ => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
    };
    if !report.reasons.is_empty() {
        tracing::warn!(status = label, reasons = ?report.reasons, "readiness");
    }
    let metrics = state.db.metrics();
    let body = json!({
        "status": label,
        "round_trip_ms": report.round_trip.map(|d| d.as_secs_f64() * 1000.0),
        "pool": pool,
        "queries": {
            "total": metrics.total_queries,
            "errors": metrics.total_errors,
            "slow": metrics.slow_queries,
        },
    });
    (status, Json(body))
}
