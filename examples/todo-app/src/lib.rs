//! A todo REST service on axum and pgdbm.
//!
//! One module, [`todo`](mod@todo), owns schema `todo`: its table, trigger function and index come from
//! migrations embedded in the crate and applied at start-up. Requests run on a monitored handle
//! (slow statements are logged), errors become JSON bodies with fitting statuses
//! ([`ApiError`]), `/health/ready` reports the pool, `/metrics` exports OpenTelemetry's
//! database metrics to Prometheus, `/_pgdbm` shows pgdbm's dashboard to operators holding the
//! [`DashboardToken`] ([`AppState::with_dashboard`]), and shutdown drains requests before the
//! pool closes.
//!
//! The binary (`src/main.rs`) is a thin layer over [`Settings::from_env`] and
//! [`run`]; tests build the same [`router`] on a database of their own:
//!
//! ```no_run
//! # async fn demo(db: pgdbm::Database) -> pgdbm::Result<()> {
//! use pgdbm::monitor::MonitorOptions;
//! use todo_app::{AppState, router, todo::TodoModule};
//!
//! db.migrate(&TodoModule).await?; // db is scoped to schema "todo"
//! let app = router(AppState::new(db, MonitorOptions::default()));
//! # let _ = app;
//! # Ok(()) }
//! ```

mod dashboard;
mod error;
mod extract;
mod metrics;
mod routes;
mod serve;
mod settings;
pub mod todo;

use std::time::Duration;

use pgdbm::Database;
use pgdbm::monitor::MonitorOptions;
use pgdbm_dashboard::{Dashboard, InvalidOption};

pub use dashboard::DashboardToken;
pub use error::ApiError;
pub use extract::{JsonBody, ListQuery, TodoId, parse_json};
pub use metrics::prometheus;
pub use routes::router;
pub use serve::{run, serve, shutdown_signal};
pub use settings::{ACQUIRE_TIMEOUT, Settings};

use todo::Todos;

/// What the handlers share: the module's queries on a monitored handle.
#[derive(Debug, Clone)]
pub struct AppState {
    db: Database,
    todos: Todos,
    ready_timeout: Duration,
    dashboard: Option<(Dashboard, DashboardToken)>,
}

impl AppState {
    /// The state on `db` (scoped to the schema the todo module was migrated into), through a
    /// monitored handle on the same pool that records every statement and logs those slower
    /// than `monitor`'s threshold at `warn`. Installs the process's Prometheus recorder
    /// ([`prometheus`]) if none is yet, so `/metrics` counts every statement from now on.
    pub fn new(db: Database, monitor: MonitorOptions) -> Self {
        prometheus();
        let db = db.monitored(monitor).with_module("todo");
        AppState {
            todos: Todos::new(db.clone()),
            db,
            ready_timeout: Duration::from_secs(2),
            dashboard: None,
        }
    }

    /// The same state with pgdbm's dashboard at `/_pgdbm` (see [`router`]), on this state's
    /// monitored handle with the todo module's migrations, behind `token`. Starts the
    /// dashboard's pool sampling (every 5 s, 15 minutes kept), which ends when the last router
    /// made from this state is dropped.
    ///
    /// # Errors
    ///
    /// None with the defaults used here; [`InvalidOption`] is the dashboard builder's.
    pub fn with_dashboard(mut self, token: DashboardToken) -> Result<Self, InvalidOption> {
        let dashboard = Dashboard::builder(&self.db)
            .module(&self.db, &todo::TodoModule)
            .build()?;
        self.dashboard = Some((dashboard, token));
        Ok(self)
    }

    /// The same state with another bound on the readiness round trip (default 2 s).
    pub fn with_ready_timeout(mut self, timeout: Duration) -> Self {
        self.ready_timeout = timeout;
        self
    }

    /// The monitored handle the requests run on.
    pub fn database(&self) -> &Database {
        &self.db
    }
}
