//! Monitoring: a [`Monitor`] records every statement run through a monitored handle (see
//! [`Database::monitored`](crate::Database::monitored) and [`Monitored`]): a bounded history,
//! slow queries, errors, per-statement aggregates keyed by the template text, and pool metrics.
//!
//! Also here: [`mask_value`] (how recorded parameters look), [`Explain`] plans
//! ([`Database::explain`](crate::Database::explain)), and health and diagnostics
//! ([`HealthReport`], [`BlockingQuery`], [`LongRunningQuery`], [`TableSize`]). The `tracing`
//! spans every statement runs in are described in [the crate docs](crate#monitoring).

mod explain;
mod handle;
mod health;
mod hook;
#[cfg(feature = "metrics")]
pub mod metrics;
mod params;
mod span;
mod stats;
mod wrapper;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

pub use explain::{Explain, explain_on};
pub use health::{
    BlockingQuery, HealthOptions, HealthReport, HealthStatus, LongRunningQuery, TableSize,
};
pub use hook::Operation;
pub(crate) use hook::{Hooks, observe, observe_copy, observe_stream};
pub use params::mask_value;
pub(crate) use span::{Peer, query_span, record_error, transaction_span};
pub use stats::StatementStats;
pub use wrapper::Monitored;

use crate::driver::{PoolStats, SharedPool};
use crate::error::{Error, ErrorKind};
use crate::value::Params;
use stats::Aggregate;

/// What a [`Monitor`] keeps and when a query counts as slow.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct MonitorOptions {
    /// Statements taking at least this long are slow: kept in
    /// [`Monitor::slow_queries`] and logged at `warn`. Default 1 s.
    pub slow_query_threshold: Duration,
    /// How many recent statements [`Monitor::history`] keeps (also the bound of the slow and
    /// error lists). Default 1000.
    pub history_size: usize,
    /// Record parameters (masked, see [`mask_value`]) in [`QueryRecord::params`]. Default off.
    pub record_params: bool,
    /// How many distinct statement texts get aggregates; later ones are only counted in the
    /// totals. Default 1000.
    pub max_statements: usize,
}

impl Default for MonitorOptions {
    fn default() -> Self {
        MonitorOptions {
            slow_query_threshold: Duration::from_secs(1),
            history_size: 1000,
            record_params: false,
            max_statements: 1000,
        }
    }
}

impl MonitorOptions {
    /// Sets [`slow_query_threshold`](MonitorOptions::slow_query_threshold).
    pub fn slow_query_threshold(mut self, threshold: Duration) -> Self {
        self.slow_query_threshold = threshold;
        self
    }

    /// Sets [`history_size`](MonitorOptions::history_size).
    pub fn history_size(mut self, size: usize) -> Self {
        self.history_size = size;
        self
    }

    /// Sets [`record_params`](MonitorOptions::record_params).
    pub fn record_params(mut self, on: bool) -> Self {
        self.record_params = on;
        self
    }

    /// Sets [`max_statements`](MonitorOptions::max_statements).
    pub fn max_statements(mut self, n: usize) -> Self {
        self.max_statements = n;
        self
    }
}

/// A failed statement, as recorded: never parameter values.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct QueryError {
    /// The error's variant, e.g. `"database"`, `"pool_closed"`, `"pool_timeout"`, `"encode"`.
    pub variant: &'static str,
    /// The SQLSTATE class of a server error.
    pub kind: Option<ErrorKind>,
    /// The SQLSTATE of a server error.
    pub code: Option<String>,
    /// The error's message (its `Display`).
    pub message: String,
}

impl QueryError {
    fn from_error(e: &Error) -> Self {
        QueryError {
            variant: variant_name(e),
            kind: e.kind(),
            code: e.code().map(str::to_owned),
            message: e.to_string(),
        }
    }
}

fn variant_name(e: &Error) -> &'static str {
    match e {
        Error::Database(_) => "database",
        Error::Query { .. } => "query",
        Error::ConnectionLost { .. } => "connection_lost",
        Error::RowNotFound { .. } => "row_not_found",
        Error::ColumnNotFound { .. } => "column_not_found",
        Error::Decode { .. } => "decode",
        Error::Encode { .. } => "encode",
        Error::ParameterCount { .. } => "parameter_count",
        Error::UnsupportedType { .. } => "unsupported_type",
        Error::PoolTimeout { .. } => "pool_timeout",
        Error::PoolClosed => "pool_closed",
        Error::Timeout { .. } => "timeout",
        Error::Connect { .. } => "connect",
        Error::Template { .. } => "template",
        Error::Identifier { .. } => "identifier",
        Error::Transaction(_) => "transaction",
        _ => "other",
    }
}

/// One statement run through a monitored handle.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct QueryRecord {
    /// The SQL as written, before template expansion (the aggregate key).
    pub sql: Arc<str>,
    /// The schema of the handle that ran it.
    pub schema: Option<Arc<str>>,
    /// The module of the handle that ran it
    /// ([`Database::with_module`](crate::Database::with_module)).
    pub module: Option<Arc<str>>,
    /// Which call ran it.
    pub operation: Operation,
    /// When it started.
    pub started_at: SystemTime,
    /// How long it took (template expansion, acquiring a connection and reading rows included).
    pub duration: Duration,
    /// Rows affected (`execute`, COPY) or returned (`fetch_*`); `None` for scripts and errors.
    pub rows: Option<u64>,
    /// The error, when it failed.
    pub error: Option<QueryError>,
    /// Masked parameters, only with [`MonitorOptions::record_params`].
    pub params: Option<Vec<String>>,
    /// At or above the slow threshold in force for the call.
    pub slow: bool,
}

/// Totals and the pool snapshot, from [`Monitor::metrics`] or
/// [`Database::metrics`](crate::Database::metrics).
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct MonitorMetrics {
    /// The pool's state, when the monitor knows the pool.
    pub pool: Option<PoolStats>,
    /// `in_use / max_size` of the pool (0 when unknown).
    pub utilization: f64,
    /// Statements recorded since the start or the last [`Monitor::reset`].
    pub total_queries: u64,
    /// Of which failed.
    pub total_errors: u64,
    /// Of which slow.
    pub slow_queries: u64,
    /// Summed duration.
    pub total_time: Duration,
    /// Records in the history now.
    pub history_len: usize,
    /// Distinct statement texts with aggregates.
    pub statements: usize,
}

/// Records statements; shared by all handles made from one monitored handle (and their
/// transactions). Cheap to query while in use: every method takes a short lock.
pub struct Monitor {
    options: MonitorOptions,
    pool: Option<SharedPool>,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    history: VecDeque<QueryRecord>,
    slow: VecDeque<QueryRecord>,
    errors: VecDeque<QueryRecord>,
    /// Per statement text: the key again (so one lookup yields a shareable copy) and the
    /// aggregate.
    statements: std::collections::HashMap<Arc<str>, (Arc<str>, Aggregate)>,
    total_queries: u64,
    total_errors: u64,
    slow_count: u64,
    total_time: Duration,
    rng: u64,
    /// Schema and module names seen, shared by the records (a handful per monitor).
    names: Vec<Arc<str>>,
}

impl State {
    /// A shared copy of a schema or module name.
    fn intern(&mut self, name: Option<&str>) -> Option<Arc<str>> {
        let name = name?;
        if let Some(s) = self.names.iter().find(|s| ***s == *name) {
            return Some(s.clone());
        }
        let s: Arc<str> = Arc::from(name);
        if self.names.len() < 64 {
            self.names.push(s.clone());
        }
        Some(s)
    }
}

impl std::fmt::Debug for Monitor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Monitor")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

fn push_bounded(list: &mut VecDeque<QueryRecord>, bound: usize, record: QueryRecord) {
    if bound == 0 {
        return;
    }
    if list.len() >= bound {
        list.pop_front();
    }
    list.push_back(record);
}

impl Monitor {
    /// A monitor that knows no pool ([`metrics`](Monitor::metrics) then has `pool: None`); use it
    /// with [`Monitored`] or [`Database::with_monitor`](crate::Database::with_monitor).
    pub fn new(options: MonitorOptions) -> Self {
        Self::build(options, None)
    }

    /// A monitor that reports `pool`'s state in [`metrics`](Monitor::metrics).
    pub fn for_pool(options: MonitorOptions, pool: SharedPool) -> Self {
        Self::build(options, Some(pool))
    }

    fn build(options: MonitorOptions, pool: Option<SharedPool>) -> Self {
        Monitor {
            options,
            pool,
            state: Mutex::new(State {
                rng: 0x9E37_79B9_7F4A_7C15,
                ..State::default()
            }),
        }
    }

    /// The options this monitor was made with.
    pub fn options(&self) -> &MonitorOptions {
        &self.options
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records one finished statement. `threshold` is the slow threshold in force for the call.
    pub(crate) fn record(&self, call: Call<'_>, result: std::result::Result<Option<u64>, &Error>) {
        let slow = call.duration >= call.threshold;
        let params = if self.options.record_params {
            Some(params::mask_params(call.params))
        } else {
            None
        };
        let error = result.as_ref().err().map(|e| QueryError::from_error(e));
        let rows = result.ok().flatten();
        if slow {
            let masked = params.as_ref().map(|p| p.join(", "));
            tracing::warn!(
                target: "pgdbm::monitor",
                duration_ms = call.duration.as_secs_f64() * 1000.0,
                threshold_ms = call.threshold.as_secs_f64() * 1000.0,
                db.query.text = %crate::error::truncate_sql(call.sql),
                pgdbm.schema = call.schema,
                pgdbm.module = call.module,
                params = masked,
                "slow query"
            );
        }
        let started_at = SystemTime::now()
            .checked_sub(call.duration)
            .unwrap_or(SystemTime::UNIX_EPOCH);
        let failed = error.is_some();
        let mut state = self.lock();
        let state = &mut *state;
        state.total_queries += 1;
        state.total_time += call.duration;
        state.total_errors += u64::from(failed);
        state.slow_count += u64::from(slow);
        state.rng ^= state.rng << 13;
        state.rng ^= state.rng >> 7;
        state.rng ^= state.rng << 17;
        let rng = state.rng;
        let key = if let Some((key, agg)) = state.statements.get_mut(call.sql) {
            agg.add(call.duration, failed, rng);
            key.clone()
        } else {
            let key: Arc<str> = Arc::from(call.sql);
            if state.statements.len() < self.options.max_statements {
                let mut agg = Aggregate::default();
                agg.add(call.duration, failed, rng);
                state.statements.insert(key.clone(), (key.clone(), agg));
            }
            key
        };
        let record = QueryRecord {
            sql: key,
            schema: state.intern(call.schema),
            module: state.intern(call.module),
            operation: call.operation,
            started_at,
            duration: call.duration,
            rows,
            error,
            params,
            slow,
        };
        let bound = self.options.history_size;
        if slow {
            push_bounded(&mut state.slow, bound, record.clone());
        }
        if failed {
            push_bounded(&mut state.errors, bound, record.clone());
        }
        push_bounded(&mut state.history, bound, record);
    }

    /// The most recent statements, oldest first (at most
    /// [`history_size`](MonitorOptions::history_size)).
    pub fn history(&self) -> Vec<QueryRecord> {
        self.lock().history.iter().cloned().collect()
    }

    /// The most recent slow statements, oldest first (bounded like the history).
    pub fn slow_queries(&self) -> Vec<QueryRecord> {
        self.lock().slow.iter().cloned().collect()
    }

    /// The most recent failed statements, oldest first (bounded like the history).
    pub fn errors(&self) -> Vec<QueryRecord> {
        self.lock().errors.iter().cloned().collect()
    }

    /// Aggregates per statement text, by total time spent, largest first.
    pub fn statements(&self) -> Vec<StatementStats> {
        let state = self.lock();
        let mut all: Vec<StatementStats> = state
            .statements
            .values()
            .map(|(sql, agg)| agg.snapshot(sql.clone()))
            .collect();
        drop(state);
        all.sort_by(|a, b| b.total.cmp(&a.total).then_with(|| a.sql.cmp(&b.sql)));
        all
    }

    /// The `n` statements with the most total time.
    pub fn slowest(&self, n: usize) -> Vec<StatementStats> {
        let mut all = self.statements();
        all.truncate(n);
        all
    }

    /// The aggregate of one statement text (as written, before template expansion).
    pub fn statement(&self, sql: &str) -> Option<StatementStats> {
        let state = self.lock();
        state
            .statements
            .get(sql)
            .map(|(k, agg)| agg.snapshot(k.clone()))
    }

    /// Totals, and the pool's state when the monitor knows its pool.
    pub fn metrics(&self) -> MonitorMetrics {
        let pool = self.pool.as_ref().map(|p| p.stats());
        self.metrics_with(pool)
    }

    pub(crate) fn metrics_with(&self, pool: Option<PoolStats>) -> MonitorMetrics {
        let state = self.lock();
        MonitorMetrics {
            utilization: pool.as_ref().map_or(0.0, PoolStats::utilization),
            pool,
            total_queries: state.total_queries,
            total_errors: state.total_errors,
            slow_queries: state.slow_count,
            total_time: state.total_time,
            history_len: state.history.len(),
            statements: state.statements.len(),
        }
    }

    /// Forgets everything recorded so far.
    pub fn reset(&self) {
        let mut state = self.lock();
        let rng = state.rng;
        *state = State {
            rng,
            ..State::default()
        };
    }
}

/// What [`Monitor::record`] needs to know about a call.
pub(crate) struct Call<'a> {
    pub(crate) sql: &'a str,
    pub(crate) schema: Option<&'a str>,
    pub(crate) module: Option<&'a str>,
    pub(crate) operation: Operation,
    pub(crate) params: Params<'a>,
    pub(crate) duration: Duration,
    pub(crate) threshold: Duration,
}
