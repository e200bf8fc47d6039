//! `GET /metrics`: pgdbm's OpenTelemetry database metrics (statement durations, the pool's
//! connections, waits and timeouts) in Prometheus' text format, through the `metrics` facade and
//! `metrics-exporter-prometheus`.
//!
//! The recorder is process-wide: [`prometheus`] installs it on first use (every [`AppState`]
//! does), and each scrape first publishes the pool's current state
//! ([`Database::record_pool_metrics`](pgdbm::Database::record_pool_metrics)).

use std::sync::OnceLock;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::AppState;

/// Histogram buckets in seconds for the duration metrics: OpenTelemetry's advice for
/// `db.client.operation.duration`.
const BUCKETS: &[f64] = &[0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0];

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// The process's Prometheus recorder, installed on the first call; `None` when another
/// `metrics` recorder was installed first (then `/metrics` answers 503).
pub fn prometheus() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("duration".into()), BUCKETS)
                .and_then(|b| b.set_buckets_for_metric(Matcher::Suffix("time".into()), BUCKETS));
            let installed = builder.and_then(|b| b.install_recorder());
            match installed {
                Ok(handle) => {
                    pgdbm::monitor::metrics::describe();
                    Some(handle)
                }
                Err(e) => {
                    tracing::warn!(error = %e, "no Prometheus recorder: /metrics is unavailable");
                    None
                }
            }
        })
        .as_ref()
}

/// `GET /metrics`: the metrics in Prometheus' text format (`text/plain; version=0.0.4`).
pub(crate) async fn render(State(state): State<AppState>) -> Response {
    let Some(handle) = prometheus() else {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    };
    state.database().record_pool_metrics();
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        handle.render(),
    )
        .into_response()
}
