//! The `impl Database` extensions for monitoring: making monitored handles and reading their
//! metrics. The per-statement hook they install is in `hook.rs`.

use std::sync::Arc;
use std::time::Duration;

use super::{Monitor, MonitorMetrics, MonitorOptions};
use crate::database::Database;

impl Database {
    /// Another handle on the same pool and schema (owned or shared alike, so
    /// [`close`](Database::close) behaves the same) that records every statement it runs — and
    /// every statement of the transactions it begins — on a new [`Monitor`].
    ///
    /// ```no_run
    /// # async fn demo(db: pgdbm::Database) -> pgdbm::Result<()> {
    /// use std::time::Duration;
    /// use pgdbm::prelude::*;
    /// use pgdbm::monitor::MonitorOptions;
    ///
    /// let db = db.monitored(MonitorOptions::default().slow_query_threshold(Duration::from_millis(200)));
    /// db.execute("UPDATE {{tables.users}} SET seen = now()", &[]).await?;
    /// let monitor = db.monitor().expect("monitored");
    /// assert_eq!(monitor.metrics().total_queries, 1);
    /// # Ok(()) }
    /// ```
    pub fn monitored(&self, options: MonitorOptions) -> Database {
        let monitor = Arc::new(Monitor::for_pool(options, self.pool().clone()));
        self.with_monitor(monitor)
    }

    /// Another handle on the same pool and schema that records on `monitor` (e.g. one monitor
    /// shared by the handles of several modules). Statements are aggregated by their text
    /// before template expansion, so the same template run on two schemas shares one aggregate;
    /// each [`QueryRecord`](super::QueryRecord) names its schema.
    pub fn with_monitor(&self, monitor: Arc<Monitor>) -> Database {
        let hooks = self.hooks().with_monitor(monitor);
        self.with_hooks(hooks)
    }

    /// The monitor of this handle, if it is monitored.
    pub fn monitor(&self) -> Option<&Arc<Monitor>> {
        self.hooks().monitor.as_ref()
    }

    /// The same handle with another slow-query threshold: statements run through the returned
    /// handle (and its transactions) count as slow from `threshold` on. The monitor is shared.
    /// A handle without monitor only keeps the value.
    ///
    /// ```no_run
    /// # async fn demo(db: pgdbm::Database) -> pgdbm::Result<()> {
    /// use std::time::Duration;
    /// use pgdbm::prelude::*;
    /// // This report is expected to take a while: only flag it above 30 s.
    /// db.with_slow_query_threshold(Duration::from_secs(30))
    ///     .execute("REFRESH MATERIALIZED VIEW {{tables.report}}", &[])
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub fn with_slow_query_threshold(&self, threshold: Duration) -> Database {
        let mut hooks = self.hooks().clone();
        hooks.threshold = threshold;
        self.with_hooks(hooks)
    }

    /// The pool's state and utilisation, with the monitor's totals when the handle is
    /// monitored (zero otherwise).
    pub fn metrics(&self) -> MonitorMetrics {
        let pool = Some(self.pool_stats());
        match self.monitor() {
            Some(m) => m.metrics_with(pool),
            None => MonitorMetrics {
                utilization: pool.as_ref().map_or(0.0, crate::PoolStats::utilization),
                pool,
                ..MonitorMetrics::default()
            },
        }
    }

    /// The database name, when the handle was opened from a config
    /// ([`Database::connect`]); `None` for handles on a pool given to it.
    pub fn database_name(&self) -> Option<&str> {
        self.hooks().peer.as_deref().map(|p| &*p.database)
    }

    /// Another handle on the same pool, schema, monitor and ownership whose statements (and
    /// those of its transactions) carry `module` as the module they belong to: as
    /// `pgdbm.module` on their spans and [`QueryRecord::module`](super::QueryRecord::module) on
    /// the monitor's records. Handles made from it keep the name.
    ///
    /// ```no_run
    /// # async fn demo(pool: pgdbm::SharedPool) -> pgdbm::Result<()> {
    /// use pgdbm::prelude::*;
    /// let billing = Database::new(pool, Some("billing"))?.with_module("billing");
    /// assert_eq!(billing.module(), Some("billing"));
    /// # Ok(()) }
    /// ```
    pub fn with_module(&self, module: &str) -> Database {
        let mut hooks = self.hooks().clone();
        hooks.module = Some(Arc::from(module));
        self.with_hooks(hooks)
    }

    /// The module this handle belongs to ([`with_module`](Database::with_module)), if any.
    pub fn module(&self) -> Option<&str> {
        self.hooks().module.as_deref()
    }
}
