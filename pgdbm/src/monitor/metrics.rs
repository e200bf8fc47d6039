//! OpenTelemetry's database client metrics through the `metrics` facade (feature
//! `metrics`, off by default): whatever recorder the application installs
//! (`metrics-exporter-prometheus`, an OpenTelemetry bridge…) receives them; without one they
//! cost the facade's no-op calls.
//!
//! | metric | kind, unit | attributes | recorded |
//! |---|---|---|---|
//! | `db.client.operation.duration` | histogram, s | `db.system.name`, `db.operation.name`, `db.collection.name`, `db.namespace`, `server.address`, `server.port`, and on failure `error.type`, `db.response.status_code` | after every statement of a [`Database`] or [`Transaction`](crate::Transaction), as the span's fields (see [the crate docs](crate#monitoring)) |
//! | `db.client.connection.wait_time` | histogram, s | `db.client.connection.pool.name` | every checkout of a pool built on [`PoolState`](crate::driver::PoolState) (both drivers), when it ends with a connection or an error |
//! | `db.client.connection.create_time` | histogram, s | `db.client.connection.pool.name` | every connect that succeeded, timed by [`PoolState::timed_connect`](crate::driver::PoolState::timed_connect): each connection the tokio-postgres driver opens; with the sqlx driver the connects pgdbm makes itself (the first one when the pool opens, a probe after a pool timeout), since sqlx opens its pooled connections with no hook before the connect |
//! | `db.client.connection.use_time` | histogram, s | `db.client.connection.pool.name` | every checked-out connection when it goes back to the pool (both drivers: a statement's own checkout and [`PoolProvider::acquire`](crate::driver::PoolProvider::acquire)), timed by [`InUse`](crate::driver::InUse) |
//! | `db.client.connection.count` | gauge | `db.client.connection.pool.name`, `db.client.connection.state` = `idle`/`used` | by [`record_pool`] / [`Database::record_pool_metrics`] |
//! | `db.client.connection.timeouts` | counter | `db.client.connection.pool.name` | likewise, from [`PoolStats::timed_out`] |
//! | `db.client.connection.max` | gauge | `db.client.connection.pool.name` | likewise |
//! | `db.client.connection.pending_requests` | gauge | `db.client.connection.pool.name` | likewise |
//!
//! The pool name is `server.address:server.port/database` (OpenTelemetry's suggestion when the
//! pool has no name of its own), the same for the checkout metrics and
//! [`Database::record_pool_metrics`]. Pool gauges are snapshots: call
//! [`Database::record_pool_metrics`] where the metrics are read (a `/metrics` handler) or on a
//! timer.
//!
//! ```no_run
//! # async fn demo(db: pgdbm::Database) -> pgdbm::Result<()> {
//! use pgdbm::prelude::*;
//! // With a recorder installed (e.g. metrics_exporter_prometheus::PrometheusBuilder):
//! pgdbm::monitor::metrics::describe();
//! db.execute("UPDATE {{tables.users}} SET seen = now()", &[]).await?;
//! db.record_pool_metrics(); // before rendering a scrape
//! # Ok(()) }
//! ```

use std::sync::Arc;
use std::time::Duration;

use ::metrics::{Label, Unit, counter, describe_counter, describe_gauge, describe_histogram};
use ::metrics::{gauge, histogram};

use super::hook::Hooks;
use super::span::{Described, error_type};
use crate::database::Database;
use crate::driver::PoolStats;
use crate::error::Error;

/// `db.client.operation.duration`.
pub const OPERATION_DURATION: &str = "db.client.operation.duration";
/// `db.client.connection.count`.
pub const CONNECTION_COUNT: &str = "db.client.connection.count";
/// `db.client.connection.max`.
pub const CONNECTION_MAX: &str = "db.client.connection.max";
/// `db.client.connection.pending_requests`.
pub const CONNECTION_PENDING_REQUESTS: &str = "db.client.connection.pending_requests";
/// `db.client.connection.timeouts`.
pub const CONNECTION_TIMEOUTS: &str = "db.client.connection.timeouts";
/// `db.client.connection.wait_time`.
pub const CONNECTION_WAIT_TIME: &str = "db.client.connection.wait_time";
/// `db.client.connection.create_time`.
pub const CONNECTION_CREATE_TIME: &str = "db.client.connection.create_time";
/// `db.client.connection.use_time`.
pub const CONNECTION_USE_TIME: &str = "db.client.connection.use_time";

const POOL_NAME: &str = "db.client.connection.pool.name";

/// Describes every metric (unit and help text) to the installed recorder; call it once after
/// installing one (exporters such as Prometheus show the descriptions).
pub fn describe() {
    describe_histogram!(
        OPERATION_DURATION,
        Unit::Seconds,
        "Duration of database client operations."
    );
    describe_gauge!(
        CONNECTION_COUNT,
        Unit::Count,
        "The number of connections that are currently in the state described by the state attribute."
    );
    describe_gauge!(
        CONNECTION_MAX,
        Unit::Count,
        "The maximum number of open connections allowed."
    );
    describe_gauge!(
        CONNECTION_PENDING_REQUESTS,
        Unit::Count,
        "The number of current pending requests for an open connection."
    );
    describe_counter!(
        CONNECTION_TIMEOUTS,
        Unit::Count,
        "The number of connection timeouts that have occurred trying to obtain a connection from the pool."
    );
    describe_histogram!(
        CONNECTION_WAIT_TIME,
        Unit::Seconds,
        "The time it took to obtain an open connection from the pool."
    );
    describe_histogram!(
        CONNECTION_CREATE_TIME,
        Unit::Seconds,
        "The time it took to create a new connection."
    );
    describe_histogram!(
        CONNECTION_USE_TIME,
        Unit::Seconds,
        "The time between borrowing a connection and returning it to the pool."
    );
}

/// Publishes `stats` of the pool called `pool_name`: `db.client.connection.count` (`idle` and
/// `used`), `.max`, `.pending_requests` and `.timeouts` (the pool's own count, set as the
/// counter's value).
pub fn record_pool(pool_name: &str, stats: &PoolStats) {
    let name = pool_name.to_owned();
    for (state, value) in [("idle", stats.idle), ("used", stats.in_use)] {
        gauge!(CONNECTION_COUNT, POOL_NAME => name.clone(), "db.client.connection.state" => state)
            .set(f64::from(value));
    }
    gauge!(CONNECTION_MAX, POOL_NAME => name.clone()).set(f64::from(stats.max_size));
    gauge!(CONNECTION_PENDING_REQUESTS, POOL_NAME => name.clone()).set(f64::from(stats.waiting));
    counter!(CONNECTION_TIMEOUTS, POOL_NAME => name).absolute(stats.timed_out);
}

/// One checkout of the pool `pool_name` that ended (with a connection or an error) after
/// `waited`.
pub(crate) fn checkout(pool_name: &Arc<str>, waited: Duration) {
    histogram!(CONNECTION_WAIT_TIME, POOL_NAME => Arc::clone(pool_name))
        .record(waited.as_secs_f64());
}

/// A new connection of the pool `pool_name`, opened in `took`.
pub(crate) fn connection_created(pool_name: &Arc<str>, took: Duration) {
    histogram!(CONNECTION_CREATE_TIME, POOL_NAME => Arc::clone(pool_name))
        .record(took.as_secs_f64());
}

/// A connection of the pool `pool_name` went back after `used` checked out.
pub(crate) fn connection_used(pool_name: &Arc<str>, used: Duration) {
    histogram!(CONNECTION_USE_TIME, POOL_NAME => Arc::clone(pool_name)).record(used.as_secs_f64());
}

/// One finished statement of a handle with `hooks`: `db.client.operation.duration`.
pub(crate) fn operation(
    hooks: &Hooks,
    schema: Option<&str>,
    sql: &str,
    duration: Duration,
    error: Option<&Error>,
) {
    let described = Described::of(sql);
    let mut labels = Vec::with_capacity(8);
    labels.push(Label::from_static_parts("db.system.name", "postgresql"));
    if !described.operation.is_empty() {
        labels.push(Label::new("db.operation.name", described.operation.clone()));
    }
    if let Some(collection) = described.collection() {
        labels.push(Label::new("db.collection.name", collection.to_owned()));
    }
    if let Some(peer) = hooks.peer.as_deref() {
        let namespace = match schema {
            Some(schema) => format!("{}.{schema}", peer.database),
            None => peer.database.to_string(),
        };
        labels.push(Label::new("db.namespace", namespace));
        labels.push(Label::new("server.address", peer.address.to_string()));
        labels.push(Label::new("server.port", peer.port.to_string()));
    }
    if let Some(e) = error {
        labels.push(Label::new("error.type", error_type(e).to_owned()));
        if let Some(code) = e.code() {
            labels.push(Label::new("db.response.status_code", code.to_owned()));
        }
    }
    histogram!(OPERATION_DURATION, labels).record(duration.as_secs_f64());
}

impl Database {
    /// Publishes this handle's pool state as OpenTelemetry's connection metrics (see
    /// [`monitor::metrics`](crate::monitor::metrics)), under the pool name
    /// `address:port/database` of a handle opened with [`Database::connect`], `"pgdbm"` for one
    /// built on a pool given to it. Feature `metrics`.
    pub fn record_pool_metrics(&self) {
        let name = self.hooks().peer.as_deref().map(|p| p.pool_name());
        record_pool(name.as_deref().unwrap_or("pgdbm"), &self.pool_stats());
    }
}
