//! [`Ctx`], the context each check runs in, on pgdbm-testing's server and schema machinery.

use std::any::Any;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use pgdbm::driver::{Driver, NotificationConnector};
use pgdbm::{Database, DatabaseConfig, DatabaseConfigBuilder, Result, SharedPool};
use pgdbm_testing::{PgBouncer, TestDatabase, TestSchema, TestServer};

/// Opens a pool with the driver under test.
pub type Connector = Arc<
    dyn Fn(DatabaseConfig) -> Pin<Box<dyn Future<Output = Result<SharedPool>> + Send>>
        + Send
        + Sync,
>;

/// A [`Connector`] that opens pools with driver `D`.
pub fn connector<D: Driver>() -> Connector {
    Arc::new(|config: DatabaseConfig| {
        Box::pin(async move {
            let pool = D::connect(&config).await?;
            Ok(Arc::new(pool) as SharedPool)
        })
    })
}

/// Opens a [`Ctx`] in a database of its own (see [`Ctx::isolated`]).
type Isolate = fn(String, Capabilities) -> Pin<Box<dyn Future<Output = Result<Ctx>> + Send>>;

fn isolate<D: Driver>(
    name: String,
    caps: Capabilities,
) -> Pin<Box<dyn Future<Output = Result<Ctx>> + Send>> {
    Box::pin(Ctx::isolated_with::<D>(name, caps))
}

/// Where a context's schema lives: its configuration, the schema, the server, and the guard
/// that drops the schema (or the database) with the context.
struct Place {
    config: DatabaseConfig,
    schema: String,
    server: &'static TestServer,
    guard: Box<dyn Any + Send + Sync>,
}

/// Runs one statement on the check's database from `Drop` (see [`Ctx::cleanup_on_drop`]).
type Cleanup = Arc<dyn Fn(&str) + Send + Sync>;

/// Starts (once per test binary) the PgBouncer in front of the test server.
type BouncerStarter =
    Arc<dyn Fn() -> Pin<Box<dyn Future<Output = Result<&'static PgBouncer>> + Send>> + Send + Sync>;

/// What a driver can do, for checks that a driver may legitimately not support. A check that is
/// skipped because of a capability says so on standard error; nothing is skipped silently.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct Capabilities {
    /// The driver keeps prepared statements per connection, visible in `pg_prepared_statements`.
    pub named_statement_cache: bool,
    /// A checked-out connection whose statement was abandoned stays usable (the statement is
    /// cancelled on the server and the connection answers again), so a transaction can roll
    /// back to a savepoint and go on. Without it the driver closes such a connection (which
    /// ends its transaction).
    pub keeps_connection_after_cancel: bool,
    /// Checks this driver does not pass through a transaction pooler yet, each with the reason
    /// (on top of what no driver can do there, [`pooler_exclusion`](crate::pooler_exclusion)):
    /// declared, printed when the check is passed over, never skipped silently.
    pub pooler_gaps: &'static [(&'static str, &'static str)],
    /// The driver honours `max_queries` (recycles a connection after that many statements).
    /// Without it the driver refuses the setting with `Error::Config` naming `max_queries`.
    pub recycles_after_max_queries: bool,
    /// The driver runs autocommit statements multiplexed on shared connections when
    /// `multiplexing` is on. Without it the driver refuses the setting with `Error::Config`
    /// naming `multiplexing`.
    pub multiplexes: bool,
    /// A change applied to every configuration the checks' pools open with (e.g. multiplexing
    /// on), set with [`Capabilities::with_config`].
    pub config_change: Option<fn(DatabaseConfigBuilder) -> DatabaseConfigBuilder>,
    /// Checks that cannot apply under [`config_change`](Capabilities::config_change), each with
    /// the reason: printed when the check is passed over, never skipped silently.
    pub config_gaps: &'static [(&'static str, &'static str)],
}

impl Capabilities {
    /// Declares the checks this driver does not pass through a transaction pooler yet (see
    /// [`Capabilities::pooler_gaps`]).
    pub fn with_pooler_gaps(mut self, gaps: &'static [(&'static str, &'static str)]) -> Self {
        self.pooler_gaps = gaps;
        self
    }

    /// Why `check` does not run through a transaction pooler for this driver, if it does not.
    pub fn pooler_gap(&self, check: &str) -> Option<&'static str> {
        crate::pooler_exclusion(check).or_else(|| {
            self.pooler_gaps
                .iter()
                .find(|(name, _)| *name == check)
                .map(|(_, reason)| *reason)
        })
    }

    /// The driver closes a checked-out connection whose statement was abandoned instead of
    /// cancelling the statement on it (see [`Capabilities::keeps_connection_after_cancel`]).
    pub fn closes_cancelled_connections(mut self) -> Self {
        self.keeps_connection_after_cancel = false;
        self
    }

    /// The driver refuses `max_queries` (see [`Capabilities::recycles_after_max_queries`]).
    pub fn refuses_max_queries(mut self) -> Self {
        self.recycles_after_max_queries = false;
        self
    }
}

impl Capabilities {
    /// Runs every check with pools opened with `change` applied to their configuration,
    /// declaring the checks that cannot apply then (with the reason each is passed over).
    pub fn with_config(
        mut self,
        change: fn(DatabaseConfigBuilder) -> DatabaseConfigBuilder,
        gaps: &'static [(&'static str, &'static str)],
    ) -> Self {
        self.config_change = Some(change);
        self.config_gaps = gaps;
        self
    }

    /// Why `check` does not run under [`config_change`](Capabilities::config_change), if it
    /// does not.
    pub fn config_gap(&self, check: &str) -> Option<&'static str> {
        self.config_gaps
            .iter()
            .find(|(name, _)| *name == check)
            .map(|(_, reason)| *reason)
    }

    /// The driver refuses `multiplexing` (see [`Capabilities::multiplexes`]).
    pub fn refuses_multiplexing(mut self) -> Self {
        self.multiplexes = false;
        self
    }
}

impl Default for Capabilities {
    fn default() -> Self {
        Capabilities {
            named_statement_cache: true,
            keeps_connection_after_cancel: true,
            pooler_gaps: &[],
            recycles_after_max_queries: true,
            multiplexes: true,
            config_change: None,
            config_gaps: &[],
        }
    }
}

/// The context each check runs in: a fresh schema of its own (a [`TestSchema`] of
/// pgdbm-testing, in its shared database on the server [`TestServer::shared`] finds or starts),
/// dropped with the context, also when the check panics.
pub struct Ctx {
    /// The configuration of the check's database (no schema set; a pool of 1–8 connections).
    pub config: DatabaseConfig,
    /// The shared pool opened by the driver under test.
    pub pool: SharedPool,
    /// A handle on `pool` scoped to this check's own schema (created already).
    pub db: Database,
    /// This check's schema.
    pub schema: String,
    /// The driver's capabilities.
    pub caps: Capabilities,
    /// Opens listener connections with the driver under test, from a config (no pool):
    /// `Listener::with_connector((ctx.notifications)(&config)?, schema)`.
    pub notifications: fn(&DatabaseConfig) -> Result<Arc<dyn NotificationConnector>>,
    /// The configuration of the check's database on the server itself: `config` unless the
    /// check runs through PgBouncer ([`Ctx::through_pgbouncer`]).
    pub direct: DatabaseConfig,
    check: String,
    connector: Connector,
    isolate: Isolate,
    cleanup: Cleanup,
    bouncer: BouncerStarter,
    /// The [`TestSchema`] guard (of the driver under test): drops the schema when dropped.
    _schema: Box<dyn Any + Send + Sync>,
}

impl std::fmt::Debug for Ctx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ctx")
            .field("check", &self.check)
            .field("schema", &self.schema)
            .field("driver", &self.pool.driver_name())
            .finish()
    }
}

impl Ctx {
    /// Opens a context for check `name` with driver `D`.
    ///
    /// # Errors
    ///
    /// When no server can be found or the schema cannot be created.
    pub async fn new<D: Driver>(name: &str) -> Result<Self> {
        Self::with_capabilities::<D>(name, Capabilities::default()).await
    }

    /// As [`Ctx::new`], declaring what the driver cannot do. This is what
    /// [`conformance_tests!`](crate::conformance_tests) calls.
    ///
    /// # Errors
    ///
    /// When no server can be found or the schema cannot be created.
    pub async fn with_capabilities<D: Driver>(name: &str, caps: Capabilities) -> Result<Self> {
        Self::in_schema::<D>(name, caps, false).await
    }

    /// As [`Ctx::with_capabilities`], with the check's pool (and `config`) going through the
    /// test binary's PgBouncer in transaction mode ([`PgBouncer::shared`], routed with
    /// [`PgBouncer::route`]: `pooler = transaction`, the server as `direct_url`). What
    /// [`pooler_tests!`](crate::pooler_tests) calls.
    ///
    /// # Errors
    ///
    /// When no server can be found, PgBouncer cannot start, or the schema cannot be created.
    pub async fn through_pgbouncer<D: Driver>(name: &str, caps: Capabilities) -> Result<Self> {
        Self::in_schema::<D>(name, caps, true).await
    }

    async fn in_schema<D: Driver>(name: &str, caps: Capabilities, pooled: bool) -> Result<Self> {
        let guard = TestSchema::<D>::new(&[]).await?;
        let place = Place {
            config: guard.config().clone(),
            schema: guard.schema_name().to_owned(),
            server: guard.server(),
            guard: Box::new(guard),
        };
        Self::open::<D>(name, caps, place, pooled).await
    }

    /// A context like this one (same check, driver and capabilities) in a database of its own,
    /// dropped with it: for checks that must not wait on other checks' transactions, such as
    /// `CREATE INDEX CONCURRENTLY`, which waits for every older snapshot *in its database*.
    /// (Always on the server directly, also for a check run through PgBouncer.)
    ///
    /// # Errors
    ///
    /// When the database or its schema cannot be created.
    pub async fn isolated(&self) -> Result<Self> {
        (self.isolate)(self.check.clone(), self.caps).await
    }

    async fn isolated_with<D: Driver>(name: String, caps: Capabilities) -> Result<Ctx> {
        let schema = "isolated".to_owned();
        let database = TestDatabase::<D>::builder().schema(&schema).build().await?;
        database.database().ensure_schema().await?;
        let place = Place {
            config: database.config().clone(),
            schema,
            server: database.server(),
            guard: Box::new(database),
        };
        Self::open::<D>(&name, caps, place, false).await
    }

    async fn open<D: Driver>(
        name: &str,
        caps: Capabilities,
        place: Place,
        pooled: bool,
    ) -> Result<Self> {
        let Place {
            config,
            schema,
            server,
            guard,
        } = place;
        let direct = config
            .to_builder()
            .without_schema()
            .min_connections(1)
            .max_connections(8);
        let direct = match caps.config_change {
            Some(change) => change(direct),
            None => direct,
        };
        let config = if pooled {
            PgBouncer::shared::<D>().await?.route(&direct)
        } else {
            direct.clone().build()?
        };
        let direct = direct.build()?;
        let connector = connector::<D>();
        let pool = connector(config.clone()).await?;
        let db = Database::new(pool.clone(), Some(&schema))?;
        let database = config.database().to_owned();
        let cleanup: Cleanup =
            Arc::new(move |sql: &str| server.execute_blocking::<D>(&database, sql));
        let bouncer: BouncerStarter = Arc::new(|| Box::pin(PgBouncer::shared::<D>()));
        Ok(Ctx {
            config,
            pool,
            db,
            schema,
            caps,
            notifications: D::notification_connector,
            direct,
            check: name.to_owned(),
            connector,
            isolate: isolate::<D>,
            cleanup,
            bouncer,
            _schema: guard,
        })
    }

    /// Opens another pool with the driver under test.
    ///
    /// # Errors
    ///
    /// The driver's connect error.
    pub async fn connect(&self, config: DatabaseConfig) -> Result<SharedPool> {
        (self.connector)(config).await
    }

    /// The PgBouncer of this test binary (started on first use), in front of the test server.
    ///
    /// # Errors
    ///
    /// When `pgbouncer` is not installed or does not start.
    pub async fn pgbouncer(&self) -> Result<&'static PgBouncer> {
        (self.bouncer)().await
    }

    /// The check's database through PgBouncer in transaction mode, with changes applied.
    ///
    /// # Errors
    ///
    /// As [`Ctx::pgbouncer`]; the builder's validation error.
    pub async fn pooled_config_with(
        &self,
        change: impl FnOnce(DatabaseConfigBuilder) -> DatabaseConfigBuilder,
    ) -> Result<DatabaseConfig> {
        let bouncer = self.pgbouncer().await?;
        let routed = bouncer.route(&change(self.direct.to_builder()));
        Ok(routed)
    }

    /// The test configuration with changes applied.
    ///
    /// # Errors
    ///
    /// The builder's validation error.
    pub fn config_with(
        &self,
        change: impl FnOnce(DatabaseConfigBuilder) -> DatabaseConfigBuilder,
    ) -> Result<DatabaseConfig> {
        change(self.config.to_builder()).build()
    }

    /// Another schema in the check's database, `<schema>_<suffix>`, created now, with a handle on
    /// the check's pool scoped to it. The schema is dropped (`CASCADE`) when the returned guard
    /// drops, also when the check panics.
    ///
    /// # Errors
    ///
    /// An invalid suffix ([`pgdbm::Error::Identifier`]); the server's error creating the schema.
    pub(crate) async fn other_schema(&self, suffix: &str) -> Result<(Database, CleanupOnDrop)> {
        let name = format!("{}_{suffix}", self.schema);
        let db = Database::new(self.pool.clone(), Some(&name))?;
        // Armed before the schema exists, so a failure half way leaves nothing behind.
        let guard = self.cleanup_on_drop(format!(
            "DROP SCHEMA IF EXISTS {} CASCADE",
            pgdbm::quote_identifier(&name)
        ));
        db.ensure_schema().await?;
        Ok((db, guard))
    }

    /// A guard that runs `sql` on the check's database when dropped, on a thread of its own
    /// (pgdbm-testing's [`TestServer::execute_blocking`]), also while a failing check unwinds.
    pub(crate) fn cleanup_on_drop(&self, sql: String) -> CleanupOnDrop {
        CleanupOnDrop {
            cleanup: self.cleanup.clone(),
            sql,
        }
    }
}

/// A statement that cannot be committed or cleaned up otherwise runs when the guard drops (also
/// when the check panics): e.g. `DROP DATABASE` for a database a check made.
pub(crate) struct CleanupOnDrop {
    cleanup: Cleanup,
    sql: String,
}

impl Drop for CleanupOnDrop {
    fn drop(&mut self) {
        (self.cleanup)(&self.sql);
    }
}

/// Asserts that `result` is an error matching `pattern`, printing the error otherwise.
#[macro_export]
#[doc(hidden)]
macro_rules! assert_err {
    ($result:expr, $pattern:pat) => {
        match $result {
            Err(e @ $pattern) => e,
            Err(other) => panic!("expected {}, got error: {other:?}", stringify!($pattern)),
            Ok(_) => panic!("expected {}, got Ok", stringify!($pattern)),
        }
    };
}
