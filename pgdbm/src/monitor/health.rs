//! Health and diagnostics: [`Database::health_check`], blocking and long-running queries
//! (`pg_stat_activity`, `pg_blocking_pids`), and table sizes of the handle's schema.

use std::time::{Duration, Instant, SystemTime};

use crate::database::Database;
use crate::driver::PoolStats;
use crate::error::{Result, truncate_sql};
use crate::executor::ExecutorExt;
use crate::row::Row;

/// Overall state from [`Database::health_check`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum HealthStatus {
    /// The server answers and nothing looks wrong.
    Healthy,
    /// The server answers, but see [`HealthReport::reasons`].
    Degraded,
    /// The server cannot be reached (or the pool is closed).
    Unhealthy,
}

/// Thresholds of [`Database::health_check_with`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct HealthOptions {
    /// How long the round trip (and each diagnostic query) may take. Default 5 s.
    pub timeout: Duration,
    /// Statements running longer than this make the report degraded. Default 60 s.
    pub long_running_threshold: Duration,
    /// Pool utilisation above this makes the report degraded. Default 0.9.
    pub max_utilization: f64,
}

impl Default for HealthOptions {
    fn default() -> Self {
        HealthOptions {
            timeout: Duration::from_secs(5),
            long_running_threshold: Duration::from_secs(60),
            max_utilization: 0.9,
        }
    }
}

/// A session waiting for a lock held by another ([`Database::find_blocking_queries`]).
/// Query texts are other sessions' SQL, cut to 200 characters.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct BlockingQuery {
    /// The waiting backend.
    pub blocked_pid: i32,
    /// Its statement.
    pub blocked_query: String,
    /// How long its statement has been running.
    pub blocked_for: Duration,
    /// The backend holding the lock.
    pub blocking_pid: i32,
    /// Its current (or last) statement.
    pub blocking_query: String,
    /// Its state (`active`, `idle in transaction`…).
    pub blocking_state: Option<String>,
}

/// A statement running longer than a threshold ([`Database::find_long_running_queries`]).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct LongRunningQuery {
    /// The backend.
    pub pid: i32,
    /// Its user.
    pub user: Option<String>,
    /// Its database.
    pub database: Option<String>,
    /// Its `application_name`.
    pub application_name: Option<String>,
    /// `active`, `idle in transaction`…
    pub state: String,
    /// What it waits for, if anything (`Lock`, `Timeout`…).
    pub wait_event_type: Option<String>,
    /// How long the statement has been running.
    pub duration: Duration,
    /// The statement, cut to 200 characters.
    pub query: String,
}

/// Size and maintenance state of one table ([`Database::table_sizes`]).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct TableSize {
    /// The table's schema.
    pub schema: String,
    /// The table name (without schema).
    pub table: String,
    /// `pg_total_relation_size`: table, indexes and TOAST, in bytes.
    pub total_bytes: i64,
    /// Live rows (`n_live_tup`, the statistics collector's estimate).
    pub live_rows: i64,
    /// Dead rows (`n_dead_tup`).
    pub dead_rows: i64,
    /// Last manual `VACUUM`.
    pub last_vacuum: Option<SystemTime>,
    /// Last autovacuum.
    pub last_autovacuum: Option<SystemTime>,
    /// Last manual `ANALYZE`.
    pub last_analyze: Option<SystemTime>,
    /// Last autoanalyze.
    pub last_autoanalyze: Option<SystemTime>,
}

/// The result of [`Database::health_check`]. Never an error: an unreachable server is an
/// [`Unhealthy`](HealthStatus::Unhealthy) report.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct HealthReport {
    /// Overall status.
    pub status: HealthStatus,
    /// Why the status is not healthy, one sentence each.
    pub reasons: Vec<String>,
    /// Time of the `SELECT` round trip (acquire included), when it succeeded.
    pub round_trip: Option<Duration>,
    /// `server_version`, when reachable.
    pub server_version: Option<String>,
    /// The pool's state.
    pub pool: PoolStats,
    /// Sessions waiting on locks, and who holds them.
    pub blocking: Vec<BlockingQuery>,
    /// Statements running longer than the threshold.
    pub long_running: Vec<LongRunningQuery>,
}

const BLOCKING_SQL: &str = "SELECT blocked.pid, left(blocked.query, 201), \
     EXTRACT(EPOCH FROM (clock_timestamp() - blocked.query_start))::float8, \
     blocker.pid, left(blocker.query, 201), blocker.state \
     FROM pg_catalog.pg_stat_activity blocked \
     CROSS JOIN LATERAL unnest(pg_catalog.pg_blocking_pids(blocked.pid)) AS b(pid) \
     JOIN pg_catalog.pg_stat_activity blocker ON blocker.pid = b.pid \
     WHERE blocked.pid <> pg_catalog.pg_backend_pid() \
     ORDER BY 3 DESC NULLS LAST";

const LONG_RUNNING_SQL: &str = "SELECT pid, usename::text, datname::text, application_name, state, \
     wait_event_type, EXTRACT(EPOCH FROM (clock_timestamp() - query_start))::float8, left(query, 201) \
     FROM pg_catalog.pg_stat_activity \
     WHERE state IS NOT NULL AND state <> 'idle' AND pid <> pg_catalog.pg_backend_pid() \
     AND query_start IS NOT NULL AND clock_timestamp() - query_start > make_interval(secs => $1) \
     ORDER BY 7 DESC";

/// With `$1` a schema: its tables. With `$1` NULL: the tables of every user schema (not
/// `pg_catalog`, `information_schema`, nor any `pg_*` schema: TOAST and temporary ones). A
/// table dropped while this runs has no size (`pg_total_relation_size` is NULL): 0.
const TABLE_SIZES_SQL: &str = "SELECT n.nspname::text, c.relname::text, \
     COALESCE(pg_catalog.pg_total_relation_size(c.oid), 0)::int8, \
     COALESCE(s.n_live_tup, 0)::int8, COALESCE(s.n_dead_tup, 0)::int8, \
     EXTRACT(EPOCH FROM s.last_vacuum)::float8, EXTRACT(EPOCH FROM s.last_autovacuum)::float8, \
     EXTRACT(EPOCH FROM s.last_analyze)::float8, EXTRACT(EPOCH FROM s.last_autoanalyze)::float8 \
     FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
     LEFT JOIN pg_catalog.pg_stat_user_tables s ON s.relid = c.oid \
     WHERE c.relkind IN ('r', 'p', 'm') AND CASE WHEN $1::text IS NULL \
       THEN n.nspname !~ '^pg_' AND n.nspname <> 'information_schema' \
       ELSE n.nspname = $1::text END \
     ORDER BY 3 DESC, 1, 2";

fn secs(v: Option<f64>) -> Duration {
    v.filter(|s| s.is_finite() && *s > 0.0)
        .map_or(Duration::ZERO, Duration::from_secs_f64)
}

fn epoch(v: Option<f64>) -> Option<SystemTime> {
    let v = v.filter(|s| s.is_finite())?;
    if v >= 0.0 {
        SystemTime::UNIX_EPOCH.checked_add(Duration::from_secs_f64(v))
    } else {
        SystemTime::UNIX_EPOCH.checked_sub(Duration::from_secs_f64(-v))
    }
}

fn text(row: &Row, i: usize) -> Result<String> {
    Ok(truncate_sql(
        &row.get::<Option<String>>(i)?.unwrap_or_default(),
    ))
}

/// Derives the status from what a health check found; `reachable` is whether the round trip
/// succeeded and `diagnostic_errors` are failures of the activity queries.
pub(crate) fn derive_status(
    reachable: Option<&str>,
    pool: &PoolStats,
    blocking: usize,
    long_running: usize,
    diagnostic_errors: Vec<String>,
    options: &HealthOptions,
) -> (HealthStatus, Vec<String>) {
    if let Some(error) = reachable {
        return (
            HealthStatus::Unhealthy,
            vec![format!("round trip failed: {error}")],
        );
    }
    let mut reasons = diagnostic_errors;
    if pool.utilization() > options.max_utilization {
        reasons.push(format!(
            "pool utilisation {:.0}% (in use {} of {})",
            pool.utilization() * 100.0,
            pool.in_use,
            pool.max_size
        ));
    }
    if pool.waiting > 0 {
        reasons.push(format!("{} task(s) waiting for a connection", pool.waiting));
    }
    if blocking > 0 {
        reasons.push(format!("{blocking} session(s) waiting on locks"));
    }
    if long_running > 0 {
        reasons.push(format!(
            "{long_running} statement(s) running longer than {:?}",
            options.long_running_threshold
        ));
    }
    let status = if reasons.is_empty() {
        HealthStatus::Healthy
    } else {
        HealthStatus::Degraded
    };
    (status, reasons)
}

impl Database {
    /// Checks the server and the pool with [`HealthOptions::default`]; see
    /// [`health_check_with`](Database::health_check_with).
    pub async fn health_check(&self) -> HealthReport {
        self.health_check_with(&HealthOptions::default()).await
    }

    /// A round trip (`SELECT current_setting('server_version')`, acquire included), the pool's
    /// state, sessions waiting on locks and statements running longer than the threshold.
    /// Unhealthy when the round trip fails or times out (also on a closed pool), degraded when
    /// the pool is over `max_utilization` or has waiters, a session is blocked, a statement runs
    /// too long, or a diagnostic query failed. Activity covers the whole server, not only this
    /// handle's sessions. Runs on the pool directly: not recorded by a monitor.
    ///
    /// Behind a transaction pooler it is also degraded when the server runs autocommit
    /// statements without a `statement_timeout` (pgdbm can set it only inside the transactions it
    /// opens); the reason says what to configure (`ALTER ROLE … SET statement_timeout`,
    /// PgBouncer's `query_timeout`).
    pub async fn health_check_with(&self, options: &HealthOptions) -> HealthReport {
        let start = Instant::now();
        let pool = self.pool();
        let probe = pool.fetch_value::<String>("SELECT current_setting('server_version')", &[]);
        let probe = tokio::time::timeout(options.timeout, probe).await;
        let round_trip = start.elapsed();
        let (version, failure) = match probe {
            Ok(Ok(v)) => (Some(v), None),
            Ok(Err(e)) => (None, Some(e.to_string())),
            Err(_) => (
                None,
                Some(format!("no answer within {:?}", options.timeout)),
            ),
        };
        let mut blocking = Vec::new();
        let mut long_running = Vec::new();
        let mut errors = Vec::new();
        if failure.is_none() {
            match tokio::time::timeout(options.timeout, self.find_blocking_queries()).await {
                Ok(Ok(b)) => blocking = b,
                Ok(Err(e)) => errors.push(format!("finding blocking queries failed: {e}")),
                Err(_) => errors.push("finding blocking queries timed out".into()),
            }
            if let Some(warning) = pool.pooler().guardrail_warning() {
                // Behind a transaction pooler an autocommit statement runs with the server's
                // own statement_timeout (role, database or server default): degraded when
                // there is none.
                let server =
                    pool.fetch_value::<String>("SELECT current_setting('statement_timeout')", &[]);
                match tokio::time::timeout(options.timeout, server).await {
                    Ok(Ok(value)) if value == "0" => errors.push(warning),
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => errors.push(format!("reading statement_timeout failed: {e}")),
                    Err(_) => errors.push("reading statement_timeout timed out".into()),
                }
                // An abandoned statement gets no cancel request behind a transaction pooler (a
                // late one could hit another client's statement): its connection is closed, and
                // the server stops the statement only if it checks for a vanished client.
                let check = pool.fetch_value::<Option<String>>(
                    "SELECT current_setting('client_connection_check_interval', true)",
                    &[],
                );
                match tokio::time::timeout(options.timeout, check).await {
                    Ok(Ok(Some(value))) if value == "0" => errors.push(
                        "behind a transaction pooler an abandoned statement (a timeout, a dropped \
                         future) is stopped on the server only when the server notices its \
                         client is gone: set client_connection_check_interval for the role or \
                         the database (ALTER ROLE … SET client_connection_check_interval = '1s')"
                            .into(),
                    ),
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => errors.push(format!(
                        "reading client_connection_check_interval failed: {e}"
                    )),
                    Err(_) => {
                        errors.push("reading client_connection_check_interval timed out".into())
                    }
                }
            }
            let long = self.find_long_running_queries(options.long_running_threshold);
            match tokio::time::timeout(options.timeout, long).await {
                Ok(Ok(l)) => long_running = l,
                Ok(Err(e)) => errors.push(format!("finding long-running queries failed: {e}")),
                Err(_) => errors.push("finding long-running queries timed out".into()),
            }
        }
        let stats = pool.stats();
        let (status, reasons) = derive_status(
            failure.as_deref(),
            &stats,
            blocking.len(),
            long_running.len(),
            errors,
            options,
        );
        HealthReport {
            status,
            reasons,
            round_trip: failure.is_none().then_some(round_trip),
            server_version: version,
            pool: stats,
            blocking,
            long_running,
        }
    }

    /// Sessions of the server waiting for a lock, each paired with a session holding it
    /// (`pg_blocking_pids`), longest wait first. Excludes this query's own session.
    ///
    /// # Errors
    ///
    /// Pool and query errors.
    pub async fn find_blocking_queries(&self) -> Result<Vec<BlockingQuery>> {
        let rows = self.pool().fetch_all(BLOCKING_SQL, &[]).await?;
        rows.iter()
            .map(|r| {
                Ok(BlockingQuery {
                    blocked_pid: r.get(0)?,
                    blocked_query: text(r, 1)?,
                    blocked_for: secs(r.get(2)?),
                    blocking_pid: r.get(3)?,
                    blocking_query: text(r, 4)?,
                    blocking_state: r.get(5)?,
                })
            })
            .collect()
    }

    /// Statements of the server (not idle) that started more than `threshold` ago, longest
    /// first. Excludes this query's own session.
    ///
    /// # Errors
    ///
    /// Pool and query errors.
    pub async fn find_long_running_queries(
        &self,
        threshold: Duration,
    ) -> Result<Vec<LongRunningQuery>> {
        let rows = self
            .pool()
            .fetch_all(LONG_RUNNING_SQL, crate::params![threshold.as_secs_f64()])
            .await?;
        rows.iter()
            .map(|r| {
                Ok(LongRunningQuery {
                    pid: r.get(0)?,
                    user: r.get(1)?,
                    database: r.get(2)?,
                    application_name: r.get(3)?,
                    state: r.get::<Option<String>>(4)?.unwrap_or_default(),
                    wait_event_type: r.get(5)?,
                    duration: secs(r.get(6)?),
                    query: text(r, 7)?,
                })
            })
            .collect()
    }

    /// Tables (and materialized views) of this handle's schema — of every user schema when the
    /// handle has none (all but `pg_catalog`, `information_schema` and the `pg_*` TOAST and
    /// temporary schemas, as pgdbm for Python's `analyze_table_sizes`) — largest first, then by
    /// schema and name, with their row counts and last vacuum/analyze times from
    /// `pg_stat_user_tables` (statistics the server updates with a short delay).
    ///
    /// # Errors
    ///
    /// Pool and query errors.
    pub async fn table_sizes(&self) -> Result<Vec<TableSize>> {
        let rows = self
            .pool()
            .fetch_all(TABLE_SIZES_SQL, crate::params![self.schema()])
            .await?;
        rows.iter()
            .map(|r| {
                Ok(TableSize {
                    schema: r.get(0)?,
                    table: r.get(1)?,
                    total_bytes: r.get(2)?,
                    live_rows: r.get(3)?,
                    dead_rows: r.get(4)?,
                    last_vacuum: epoch(r.get(5)?),
                    last_autovacuum: epoch(r.get(6)?),
                    last_analyze: epoch(r.get(7)?),
                    last_autoanalyze: epoch(r.get(8)?),
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_derivation() {
        let o = HealthOptions::default();
        let idle = PoolStats::new(2, 2, 10);
        assert_eq!(
            derive_status(None, &idle, 0, 0, vec![], &o).0,
            HealthStatus::Healthy
        );
        let (s, r) = derive_status(Some("connection refused"), &idle, 0, 0, vec![], &o);
        assert_eq!(s, HealthStatus::Unhealthy);
        assert!(r[0].contains("connection refused"));
        let busy = PoolStats::new(10, 0, 10);
        let (s, r) = derive_status(None, &busy, 0, 0, vec![], &o);
        assert_eq!(s, HealthStatus::Degraded);
        assert!(r[0].contains("utilisation 100%"), "{r:?}");
        let waiting = PoolStats::new(2, 2, 10).with_waiting(3);
        assert_eq!(
            derive_status(None, &waiting, 0, 0, vec![], &o).0,
            HealthStatus::Degraded
        );
        assert_eq!(
            derive_status(None, &idle, 1, 0, vec![], &o).0,
            HealthStatus::Degraded
        );
        assert_eq!(
            derive_status(None, &idle, 0, 2, vec![], &o).0,
            HealthStatus::Degraded
        );
        let errs = vec!["finding blocking queries failed".to_owned()];
        assert_eq!(
            derive_status(None, &idle, 0, 0, errs, &o).0,
            HealthStatus::Degraded
        );
    }

    #[test]
    fn conversions() {
        assert_eq!(secs(None), Duration::ZERO);
        assert_eq!(secs(Some(-1.0)), Duration::ZERO);
        assert_eq!(secs(Some(1.5)), Duration::from_millis(1500));
        assert_eq!(epoch(Some(0.0)), Some(SystemTime::UNIX_EPOCH));
        assert_eq!(epoch(None), None);
    }
}
