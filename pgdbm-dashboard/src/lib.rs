//! A read-only operator page for an application built on pgdbm: an axum [`Router`] the
//! application mounts (e.g. at `/_pgdbm`) behind its own authentication.
//!
//! One page shows
//!
//! - **pool utilisation** over the last minutes as an inline SVG chart, from samples a
//!   background task takes (every [`sample_interval`](DashboardBuilder::sample_interval), kept
//!   for [`window`](DashboardBuilder::window)); the task stops when the dashboard and every
//!   router made from it are dropped;
//! - the **slowest statements** by total time and by p95 from the handle's
//!   [`Monitor`](pgdbm::Monitor), and the recent slow ones with their module, each with its
//!   **plan on demand**: a generic plan (`EXPLAIN`, never `ANALYZE`), only of statements the
//!   monitor recorded, identified by a hash of their text;
//! - **migration status** per module (the modules given to
//!   [`module`](DashboardBuilder::module), else what the ledger of the handle's schema holds);
//! - **blocking** and **long-running** queries of the server;
//! - **table sizes** of the handle's schema and the modules' schemas;
//! - **replica lag** — pgdbm has no replicas yet, so the section says "no replicas configured".
//!
//! Every value is HTML-escaped (the page is built with [`maud`]). Parameter values are never
//! shown (the monitor's statement texts have placeholders, and its recorded parameters are not
//! rendered); string literals of other sessions' statements are hidden, as are those of any
//! statement mentioning a password; connection settings are not shown at all.
//!
//! # Authentication
//!
//! The router has none of its own: wrap it in your own `tower` layer before mounting it. Here
//! a bearer token, checked with [`axum::middleware::from_fn`]:
//!
//! ```no_run
//! use axum::Router;
//! use axum::extract::Request;
//! use axum::http::{StatusCode, header};
//! use axum::middleware::{self, Next};
//! use axum::response::{IntoResponse, Response};
//! use pgdbm::Database;
//! use pgdbm::monitor::MonitorOptions;
//! use pgdbm_dashboard::Dashboard;
//!
//! async fn operators_only(request: Request, next: Next) -> Response {
//!     let authorized = request
//!         .headers()
//!         .get(header::AUTHORIZATION)
//!         .and_then(|v| v.to_str().ok())
//!         .is_some_and(|v| v == "Bearer s3cret-from-your-config");
//!     if authorized {
//!         next.run(request).await
//!     } else {
//!         StatusCode::UNAUTHORIZED.into_response()
//!     }
//! }
//!
//! # async fn demo(db: Database, app_routes: Router) -> Result<(), Box<dyn std::error::Error>> {
//! let db = db.monitored(MonitorOptions::default()); // the handle your requests run on
//! let dashboard = Dashboard::builder(&db).build()?;
//! let app = app_routes.nest(
//!     "/_pgdbm",
//!     dashboard.router().layer(middleware::from_fn(operators_only)),
//! );
//! # let _ = app;
//! # Ok(()) }
//! ```
//!
//! The routes, relative to where the router is mounted:
//!
//! | route | answers |
//! |---|---|
//! | `GET /` | 200, the page (a section whose query failed says so; the rest still shows) |
//! | `GET /plan/{id}` | 200 with the plan (or why there is none), 404 for an id that is not a recorded statement's |
//!
//! Pages are sent with `Cache-Control: no-store` and a `Content-Security-Policy` that allows no
//! script.

mod chart;
mod format;
mod options;
mod pages;
mod plan;
mod redact;
mod routes;
mod sampler;
mod statement_id;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use pgdbm::{Database, MigrationSource};

pub use options::{DashboardBuilder, InvalidOption};
pub use sampler::PoolSample;

/// The dashboard of one [`Database`] handle: its pool, its monitor, its schema and the modules
/// registered with it. Cheap to clone; the sampling task runs until the last clone (and the last
/// router made from it) is dropped.
#[derive(Clone)]
pub struct Dashboard {
    inner: Arc<Inner>,
}

/// A module whose migration status the page shows.
struct ModuleEntry {
    name: String,
    source: MigrationSource,
    /// Unmonitored, on the module's schema.
    db: Database,
}

struct Inner {
    /// The handle as given: its monitor.
    monitored: Database,
    /// The same pool and schema without the monitor, for the page's own queries.
    db: Database,
    modules: Vec<ModuleEntry>,
    ring: Arc<sampler::Ring>,
    sampler: sampler::Sampler,
    window: Duration,
    long_running_threshold: Duration,
    statements_shown: usize,
    query_timeout: Duration,
}

impl std::fmt::Debug for Dashboard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let inner = &*self.inner;
        f.debug_struct("Dashboard")
            .field("schema", &inner.db.schema())
            .field(
                "modules",
                &inner.modules.iter().map(|m| &m.name).collect::<Vec<_>>(),
            )
            .field("window", &inner.window)
            .field("sampling", &inner.sampler.started())
            .finish_non_exhaustive()
    }
}

impl Dashboard {
    /// Options for the dashboard of `db`: give it the handle your requests run on (a
    /// [`monitored`](Database::monitored) one, or the statements section stays empty).
    pub fn builder(db: &Database) -> DashboardBuilder {
        DashboardBuilder::new(db)
    }

    /// The routes (see [the crate docs](crate)), to mount with [`Router::nest`] behind your
    /// authentication layer.
    pub fn router(&self) -> Router {
        routes::router(self.clone())
    }

    /// The pool samples kept now, oldest first.
    pub fn samples(&self) -> Vec<PoolSample> {
        self.inner.ring.snapshot()
    }

    /// Whether the sampling task runs (it does when the dashboard was built inside a Tokio
    /// runtime).
    pub fn is_sampling(&self) -> bool {
        self.inner.sampler.started()
    }
}
