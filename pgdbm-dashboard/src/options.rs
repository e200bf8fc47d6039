//! [`DashboardBuilder`]: what the page shows and how often the pool is sampled.

use std::sync::Arc;
use std::time::Duration;

use pgdbm::{Database, Module};

use crate::sampler::{Ring, Sampler};
use crate::{Dashboard, Inner, ModuleEntry};

/// An option of [`DashboardBuilder`] out of range; the message names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidOption {
    option: &'static str,
    message: String,
}

impl InvalidOption {
    /// The option's name, e.g. `"sample_interval"`.
    pub fn option(&self) -> &'static str {
        self.option
    }
}

impl std::fmt::Display for InvalidOption {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "dashboard option {}: {}", self.option, self.message)
    }
}

impl std::error::Error for InvalidOption {}

/// Builds a [`Dashboard`]; from [`Dashboard::builder`].
pub struct DashboardBuilder {
    db: Database,
    modules: Vec<ModuleEntry>,
    sample_interval: Duration,
    window: Duration,
    long_running_threshold: Duration,
    statements_shown: usize,
    query_timeout: Duration,
}

impl std::fmt::Debug for DashboardBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DashboardBuilder")
            .field("schema", &self.db.schema())
            .field("sample_interval", &self.sample_interval)
            .field("window", &self.window)
            .finish_non_exhaustive()
    }
}

/// At most this many samples are kept, whatever the window and interval.
const MAX_SAMPLES: usize = 100_000;

/// An unmonitored handle on `db`'s pool and schema: the page's own queries are not recorded.
fn unmonitored(db: &Database) -> Database {
    Database::new(db.pool().clone(), db.schema()).unwrap_or_else(|_| db.clone())
}

impl DashboardBuilder {
    pub(crate) fn new(db: &Database) -> Self {
        DashboardBuilder {
            db: db.clone(),
            modules: Vec::new(),
            sample_interval: Duration::from_secs(5),
            window: Duration::from_secs(15 * 60),
            long_running_threshold: Duration::from_secs(5),
            statements_shown: 10,
            query_timeout: Duration::from_secs(5),
        }
    }

    /// Shows `module`'s migration status: its files against the ledger of `db`'s schema (the
    /// handle the module was migrated with). Its schema's tables are listed too.
    pub fn module(mut self, db: &Database, module: &dyn Module) -> Self {
        self.modules.push(ModuleEntry {
            name: module.name().to_owned(),
            source: module.migrations(),
            db: unmonitored(db),
        });
        self
    }

    /// How often the pool is sampled for the chart. Default 5 s; at least 10 ms.
    pub fn sample_interval(mut self, interval: Duration) -> Self {
        self.sample_interval = interval;
        self
    }

    /// How far back the chart reaches (samples older than this are dropped). Default 15 min; at
    /// least one sample interval.
    pub fn window(mut self, window: Duration) -> Self {
        self.window = window;
        self
    }

    /// Statements running at least this long are listed as long-running. Default 5 s.
    pub fn long_running_threshold(mut self, threshold: Duration) -> Self {
        self.long_running_threshold = threshold;
        self
    }

    /// How many statements each "slowest" table lists. Default 10; at least 1.
    pub fn statements_shown(mut self, n: usize) -> Self {
        self.statements_shown = n;
        self
    }

    /// The bound on each query the page runs (each section, each plan's `statement_timeout`).
    /// Default 5 s; at least 1 ms.
    pub fn query_timeout(mut self, timeout: Duration) -> Self {
        self.query_timeout = timeout;
        self
    }

    /// The dashboard; starts sampling the pool when called inside a Tokio runtime (without
    /// one the chart shows only the reading taken when the page loads).
    ///
    /// # Errors
    ///
    /// [`InvalidOption`] naming an option out of range.
    pub fn build(self) -> Result<Dashboard, InvalidOption> {
        let invalid = |option, message: &str| InvalidOption {
            option,
            message: message.to_owned(),
        };
        if self.sample_interval < Duration::from_millis(10) {
            return Err(invalid("sample_interval", "must be at least 10 ms"));
        }
        if self.window < self.sample_interval {
            return Err(invalid("window", "must be at least one sample_interval"));
        }
        if self.statements_shown == 0 {
            return Err(invalid("statements_shown", "must be at least 1"));
        }
        if self.query_timeout < Duration::from_millis(1) {
            return Err(invalid("query_timeout", "must be at least 1 ms"));
        }
        let samples = self.window.as_secs_f64() / self.sample_interval.as_secs_f64();
        let capacity = (samples.ceil() as usize).clamp(2, MAX_SAMPLES);
        let ring = Arc::new(Ring::new(capacity));
        let sampler = Sampler::start(self.db.pool().clone(), ring.clone(), self.sample_interval);
        Ok(Dashboard {
            inner: Arc::new(Inner {
                db: unmonitored(&self.db),
                monitored: self.db,
                modules: self.modules,
                ring,
                sampler,
                window: self.window,
                long_running_threshold: self.long_running_threshold,
                statements_shown: self.statements_shown,
                query_timeout: self.query_timeout,
            }),
        })
    }
}
