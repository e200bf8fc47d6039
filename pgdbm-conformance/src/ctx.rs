//! [`Ctx`], the context each check runs in, on pgdbm-testing's server and schema machinery.

use std::any::Any;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use pgdbm::driver::Driver;
use pgdbm::{Database, DatabaseConfig, DatabaseConfigBuilder, Result, SharedPool};
use pgdbm_testing::{PgBouncer, TestSchema, TestServer};

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
}

impl Default for Capabilities {
    fn default() -> Self {
        Capabilities {
            named_statement_cache: true,
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
    /// The configuration of the check's database on the server itself: `config` unless the
    /// check runs through PgBouncer ([`Ctx::through_pgbouncer`]).
    pub direct: DatabaseConfig,
    check: String,
    connector: Connector,
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
        Self::open::<D>(name, caps, false).await
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
        Self::open::<D>(name, caps, true).await
    }

    async fn open<D: Driver>(name: &str, caps: Capabilities, pooled: bool) -> Result<Self> {
        let guard = TestSchema::<D>::new(&[]).await?;
        let direct = guard
            .config()
            .to_builder()
            .without_schema()
            .min_connections(1)
            .max_connections(8);
        let config = if pooled {
            PgBouncer::shared::<D>().await?.route(&direct)
        } else {
            direct.clone().build()?
        };
        let direct = direct.build()?;
        let connector = connector::<D>();
        let pool = connector(config.clone()).await?;
        let schema = guard.schema_name().to_owned();
        let db = Database::new(pool.clone(), Some(&schema))?;
        let server: &'static TestServer = guard.server();
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
            direct,
            check: name.to_owned(),
            connector,
            cleanup,
            bouncer,
            _schema: Box::new(guard),
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
