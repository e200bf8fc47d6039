//! [`TestDatabase`]: a database of its own per test, cloned from a migrated template.

use std::collections::HashMap;
use std::marker::PhantomData;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pgdbm::driver::{Driver, PoolProvider, PooledConnection};
use pgdbm::prelude::*;
use pgdbm::{Database, DatabaseConfig, MigrationSource, Result, quote_identifier};
use tokio::sync::OnceCell;

use crate::admin::{self, MigrationSet, ModuleSpec, drop_database_sql, keep_from_env, with_lock};
use crate::server::TestServer;

/// How `CREATE DATABASE … TEMPLATE` copies the template (PostgreSQL 15 and later; ignored on
/// older servers).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum CloneStrategy {
    /// `FILE_COPY` when the server runs with `fsync = off` (a throwaway server does), else
    /// `WAL_LOG` (the default). Measured by `benches/provision.rs`: with `fsync` off, FILE_COPY
    /// is several times faster for small databases; with `fsync` on, its two checkpoints make it
    /// several times slower than WAL_LOG.
    #[default]
    Auto,
    /// `STRATEGY = FILE_COPY`: copies the files, with a checkpoint before and after.
    FileCopy,
    /// `STRATEGY = WAL_LOG`: copies block by block through the WAL (the server's own default).
    WalLog,
    /// No `STRATEGY` clause.
    ServerDefault,
}

/// A database of its own for one test, migrated, dropped (`WITH (FORCE)`) when this guard is
/// dropped — also when the test panics. Derefs to [`Database`] (an owned pool of driver `D`).
///
/// ```no_run
/// # async fn demo(users: &dyn pgdbm::Module) -> pgdbm::Result<()> {
/// use pgdbm::prelude::*;
/// use pgdbm_driver_tokio_postgres::TokioPostgres;
/// use pgdbm_testing::TestDatabase;
///
/// let db = TestDatabase::<TokioPostgres>::builder().module(users).schema("users").build().await?;
/// db.execute("INSERT INTO {{tables.users}} (email) VALUES ($1)", params!["a@b.c"]).await?;
/// # Ok(()) }
/// ```
pub struct TestDatabase<D: Driver> {
    db: Database,
    name: String,
    template: String,
    config: DatabaseConfig,
    server: &'static TestServer,
    keep: bool,
    built_template: bool,
    /// Each migrated module and the schema it is in.
    module_schemas: Vec<(String, Option<String>)>,
    _driver: PhantomData<fn() -> D>,
}

impl<D: Driver> std::fmt::Debug for TestDatabase<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestDatabase")
            .field("name", &self.name)
            .field("template", &self.template)
            .field("driver", &D::NAME)
            .field("keep", &self.keep)
            .finish()
    }
}

impl<D: Driver> std::ops::Deref for TestDatabase<D> {
    type Target = Database;
    fn deref(&self) -> &Database {
        &self.db
    }
}

impl<D: Driver> TestDatabase<D> {
    /// A builder: add modules or migration sources, pick a schema, then
    /// [`build`](TestDatabaseBuilder::build).
    pub fn builder() -> TestDatabaseBuilder<D> {
        TestDatabaseBuilder {
            set: MigrationSet::default(),
            keep: keep_from_env(),
            max_connections: 5,
            strategy: CloneStrategy::default(),
            error: None,
            _driver: PhantomData,
        }
    }

    /// A database with `modules` migrated (in dependency order, without a schema).
    ///
    /// # Errors
    ///
    /// As [`TestDatabaseBuilder::build`].
    pub async fn new(modules: &[&dyn Module]) -> Result<Self> {
        let mut b = Self::builder();
        for m in modules {
            b = b.module(*m);
        }
        b.build().await
    }

    /// The handle (also reachable through `Deref`).
    pub fn database(&self) -> &Database {
        &self.db
    }

    /// A handle on this database's pool scoped to the schema module `name` was migrated into
    /// (its own from [`module_in`](TestDatabaseBuilder::module_in), else the builder's
    /// [`schema`](TestDatabaseBuilder::schema)).
    ///
    /// # Errors
    ///
    /// [`Error::TestSetup`](pgdbm::Error::TestSetup) when no module of that name was migrated.
    pub fn module_db(&self, name: &str) -> Result<Database> {
        let (_, schema) = self
            .module_schemas
            .iter()
            .find(|(module, _)| module == name)
            .ok_or_else(|| {
                let known: Vec<&str> = self
                    .module_schemas
                    .iter()
                    .map(|(m, _)| m.as_str())
                    .collect();
                pgdbm::Error::test_setup(
                    "module_db",
                    format!("no module {name:?} in this test database (modules: {known:?})"),
                )
            })?;
        self.db.with_schema(schema.as_deref())
    }

    /// This test's database name, `pgdbm_test_<pid>_<counter>_<random>`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The template it was cloned from, `pgdbm_tpl_<hash>`.
    pub fn template(&self) -> &str {
        &self.template
    }

    /// The configuration of this database (for opening more pools, e.g. with another driver).
    pub fn config(&self) -> &DatabaseConfig {
        &self.config
    }

    /// The server it lives on.
    pub fn server(&self) -> &'static TestServer {
        self.server
    }

    /// `true` when this call built (migrated) the template; `false` when the template already
    /// existed (built earlier in this process, by another process, or by an earlier run).
    pub fn built_template(&self) -> bool {
        self.built_template
    }
}

impl<D: Driver> Drop for TestDatabase<D> {
    fn drop(&mut self) {
        if self.keep {
            eprintln!(
                "pgdbm-testing: kept test database {} ({})",
                self.name,
                self.config.masked_url()
            );
            return;
        }
        if let Err(e) =
            admin::admin_execute_blocking::<D>(self.server, drop_database_sql(&self.name))
        {
            eprintln!(
                "pgdbm-testing: cannot drop test database {}: {e}",
                self.name
            );
        }
    }
}

/// Builds a [`TestDatabase`]; see [`TestDatabase::builder`].
pub struct TestDatabaseBuilder<D: Driver> {
    set: MigrationSet,
    keep: bool,
    max_connections: u32,
    strategy: CloneStrategy,
    error: Option<pgdbm::Error>,
    _driver: PhantomData<fn() -> D>,
}

impl<D: Driver> std::fmt::Debug for TestDatabaseBuilder<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestDatabaseBuilder")
            .field("modules", &self.set.modules.len())
            .field("schema", &self.set.schema)
            .field("keep", &self.keep)
            .finish()
    }
}

impl<D: Driver> TestDatabaseBuilder<D> {
    /// Migrates `module` (its dependencies must be added too; order does not matter).
    pub fn module(mut self, module: &dyn Module) -> Self {
        self.set.add_module(module);
        self
    }

    /// Migrates `module` into `schema` of its own, whatever [`schema`](Self::schema) says: one
    /// template, and so one test database, can hold several modules in several schemas. Reach
    /// each with [`TestDatabase::module_db`].
    ///
    /// ```no_run
    /// # async fn demo(users: &dyn pgdbm::Module, audit: &dyn pgdbm::Module) -> pgdbm::Result<()> {
    /// use pgdbm_driver_tokio_postgres::TokioPostgres;
    /// use pgdbm_testing::TestDatabase;
    ///
    /// let db = TestDatabase::<TokioPostgres>::builder()
    ///     .module_in(users, "users")
    ///     .module_in(audit, "audit")
    ///     .schema("users") // the schema of the handle itself
    ///     .build()
    ///     .await?;
    /// let audit_db = db.module_db(audit.name())?; // scoped to "audit"
    /// # Ok(()) }
    /// ```
    pub fn module_in(mut self, module: &dyn Module, schema: &str) -> Self {
        self.set.add_module_in(module, Some(schema));
        self
    }

    /// Migrates `source` as module `name`.
    pub fn migrations(mut self, name: &str, source: MigrationSource) -> Self {
        self.set.modules.push(ModuleSpec {
            name: name.to_owned(),
            depends_on: Vec::new(),
            source,
            schema: None,
        });
        self
    }

    /// Migrates the `*.sql` files of `dir` as module `name` (read now; an unreadable directory
    /// is reported by [`build`](Self::build)).
    pub fn migrations_dir(mut self, name: &str, dir: impl AsRef<Path>) -> Self {
        match MigrationSource::from_dir(dir) {
            Ok(source) => self.migrations(name, source),
            Err(e) => {
                self.error.get_or_insert(e);
                self
            }
        }
    }

    /// Migrates into `schema` (the modules not added with [`module_in`](Self::module_in)) and
    /// scopes the returned handle to it (default: no schema).
    pub fn schema(mut self, schema: &str) -> Self {
        self.set.schema = Some(schema.to_owned());
        self
    }

    /// Keeps the database after the test (its name is printed); default from `PGDBM_TEST_KEEP`.
    pub fn keep(mut self, keep: bool) -> Self {
        self.keep = keep;
        self
    }

    /// The pool size of the returned handle (default 5).
    pub fn max_connections(mut self, n: u32) -> Self {
        self.max_connections = n.max(1);
        self
    }

    /// How the template is copied (default [`CloneStrategy::Auto`]).
    pub fn clone_strategy(mut self, strategy: CloneStrategy) -> Self {
        self.strategy = strategy;
        self
    }

    /// Finds the server ([`TestServer::shared`]), makes sure the template
    /// `pgdbm_tpl_<hash>` exists (migrating it once, under an advisory lock, on first use by any
    /// process), clones it and connects to the clone with driver `D`. The first call of a
    /// process also drops test databases left behind by killed runs (local servers only).
    ///
    /// # Errors
    ///
    /// [`Error::Config`](pgdbm::Error::Config) when no server can be found or a migrations
    /// directory cannot be read, [`Error::Identifier`](pgdbm::Error::Identifier) for a bad
    /// schema, migration errors from building the template, connect and server errors.
    pub async fn build(self) -> Result<TestDatabase<D>> {
        if let Some(e) = self.error {
            return Err(e);
        }
        if let Some(schema) = &self.set.schema {
            pgdbm::validate_identifier("schema", schema)?;
        }
        for spec in &self.set.modules {
            if let Some(schema) = &spec.schema {
                pgdbm::validate_identifier("schema", schema)?;
            }
        }
        let module_schemas: Vec<(String, Option<String>)> = self
            .set
            .modules
            .iter()
            .map(|m| (m.name.clone(), self.set.schema_of(m).map(str::to_owned)))
            .collect();
        let server = TestServer::shared::<D>().await?;
        let template = format!("pgdbm_tpl_{}", self.set.fingerprint());
        let mut built_template = false;
        let known = template_known(&template)
            && SERVER_INFO.get().is_some()
            && (SWEPT.initialized() || !server.is_local());
        if !known {
            // First use of this template in this process: sweep, build or find the template.
            let (admin_pool, conn) = admin::admin::<D>(server).await?;
            let result = async {
                sweep_stale_databases(server, &conn).await;
                server_info(&conn).await?;
                ensure_template::<D>(server, &conn, &template, &self.set).await
            }
            .await;
            drop(conn);
            admin_pool.close().await;
            built_template = result?;
        }
        let info = SERVER_INFO.get().copied().unwrap_or_default();
        let file_copy = match self.strategy {
            CloneStrategy::Auto => info.fsync_off,
            CloneStrategy::FileCopy => true,
            _ => false,
        };
        let strategy = match (self.strategy, info.version >= 150_000) {
            (CloneStrategy::ServerDefault, _) | (_, false) => "",
            _ if file_copy => " STRATEGY = FILE_COPY",
            _ => " STRATEGY = WAL_LOG",
        };
        let name = admin::admin_clone::<D>(server, &template, strategy).await?;

        let mut config = server
            .config
            .to_builder()
            .database(&name)
            .max_connections(self.max_connections)
            .min_connections(1);
        config = match &self.set.schema {
            Some(s) => config.schema(s),
            None => config.without_schema(),
        };
        // From here on the guard owns the database: an error below drops it again.
        let config = match config.build() {
            Ok(c) => c,
            Err(e) => {
                let _ = admin::admin_execute::<D>(server, drop_database_sql(&name)).await;
                return Err(e);
            }
        };
        let db = match Database::connect::<D>(&config).await {
            Ok(db) => db,
            Err(e) => {
                let _ = admin::admin_execute::<D>(server, drop_database_sql(&name)).await;
                return Err(e);
            }
        };
        Ok(TestDatabase {
            db,
            name,
            template,
            config,
            server,
            keep: self.keep,
            built_template,
            module_schemas,
            _driver: PhantomData,
        })
    }
}

/// Per process: template names already known to exist, and whether this process built them.
type TemplateCells = Mutex<HashMap<String, Arc<OnceCell<bool>>>>;
static TEMPLATES: std::sync::OnceLock<TemplateCells> = std::sync::OnceLock::new();
static SERVER_INFO: std::sync::OnceLock<ServerInfo> = std::sync::OnceLock::new();

#[derive(Debug, Clone, Copy, Default)]
struct ServerInfo {
    version: i64,
    fsync_off: bool,
}

fn template_known(template: &str) -> bool {
    TEMPLATES
        .get()
        .and_then(|cells| {
            let cells = cells.lock().unwrap_or_else(|e| e.into_inner());
            cells.get(template).map(|c| c.initialized())
        })
        .unwrap_or(false)
}
static SWEPT: OnceCell<()> = OnceCell::const_new();

async fn server_info(conn: &PooledConnection) -> Result<ServerInfo> {
    if let Some(info) = SERVER_INFO.get() {
        return Ok(*info);
    }
    let version: String = conn.fetch_value("SHOW server_version_num", &[]).await?;
    let fsync: String = conn.fetch_value("SHOW fsync", &[]).await?;
    let info = ServerInfo {
        version: version.trim().parse::<i64>().unwrap_or(0),
        fsync_off: fsync.trim() == "off",
    };
    Ok(*SERVER_INFO.get_or_init(|| info))
}

/// Returns `true` when this call built the template. Only the first caller of the process for a
/// template name reports `true`; later ones wait for it and report `false`.
async fn ensure_template<D: Driver>(
    server: &'static TestServer,
    conn: &PooledConnection,
    template: &str,
    set: &MigrationSet,
) -> Result<bool> {
    let cell = {
        let mut cells = TEMPLATES
            .get_or_init(Default::default)
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        cells.entry(template.to_owned()).or_default().clone()
    };
    let mut first = false;
    cell.get_or_try_init(|| {
        first = true;
        build_template::<D>(server, conn, template, set)
    })
    .await?;
    Ok(first && *cell.get().unwrap_or(&false))
}

async fn build_template<D: Driver>(
    server: &'static TestServer,
    conn: &PooledConnection,
    template: &str,
    set: &MigrationSet,
) -> Result<bool> {
    let exists =
        "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_database WHERE datname = $1 AND datistemplate)";
    if conn
        .fetch_value::<bool>(exists, pgdbm::params![template])
        .await?
    {
        return Ok(false);
    }
    with_lock(conn, async {
        if conn
            .fetch_value::<bool>(exists, pgdbm::params![template])
            .await?
        {
            return Ok(false);
        }
        let quoted = quote_identifier(template);
        // A half-built template of a crashed run is not marked as a template yet: drop it.
        conn.batch_execute(&drop_database_sql(template)).await?;
        conn.batch_execute(&format!("CREATE DATABASE {quoted}"))
            .await?;
        let migrated = async {
            let mut b = server
                .config
                .to_builder()
                .database(template)
                .max_connections(2)
                .min_connections(1);
            b = match &set.schema {
                Some(s) => b.schema(s),
                None => b.without_schema(),
            };
            let db = Database::connect::<D>(&b.build()?).await?;
            let r = set.apply(&db).await;
            db.close().await;
            r
        }
        .await;
        if let Err(e) = migrated {
            let _ = conn.batch_execute(&drop_database_sql(template)).await;
            return Err(e);
        }
        // Let the migration's backends go away before the template is marked (and cloned).
        wait_until_unused(conn, template).await?;
        conn.batch_execute(&format!(
            "ALTER DATABASE {quoted} WITH IS_TEMPLATE true ALLOW_CONNECTIONS false"
        ))
        .await?;
        Ok(true)
    })
    .await
}

async fn wait_until_unused(conn: &PooledConnection, database: &str) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let n: i64 = conn
            .fetch_value(
                "SELECT count(*) FROM pg_catalog.pg_stat_activity WHERE datname = $1",
                pgdbm::params![database],
            )
            .await?;
        if n == 0 || Instant::now() > deadline {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Drops `pgdbm_test_<pid>_…` databases whose process is gone (once per process, local
/// servers only). Failures are ignored: sweeping is best effort.
async fn sweep_stale_databases(server: &TestServer, conn: &PooledConnection) {
    if !server.is_local() {
        return;
    }
    SWEPT
        .get_or_init(|| async {
            let Ok(rows) = conn
                .fetch_all(
                    "SELECT datname::text FROM pg_catalog.pg_database WHERE datname LIKE 'pgdbm\\_test\\_%'",
                    &[],
                )
                .await
            else {
                return;
            };
            for row in rows {
                let Ok(name) = row.get::<String>(0) else { continue };
                if admin::is_stale(&name) {
                    let _ = conn.batch_execute(&drop_database_sql(&name)).await;
                }
            }
        })
        .await;
}

/// Drops every template `pgdbm_tpl_*` on the test server (e.g. after many migration changes:
/// each change of a migration set makes a new template). Returns their names.
///
/// # Errors
///
/// When the server cannot be found or a template cannot be dropped (e.g. it is being cloned).
pub async fn drop_templates<D: Driver>() -> Result<Vec<String>> {
    let server = TestServer::shared::<D>().await?;
    let (pool, conn) = admin::admin::<D>(server).await?;
    let result = with_lock(&conn, async {
        let rows = conn
            .fetch_all(
                "SELECT datname::text FROM pg_catalog.pg_database WHERE datname LIKE 'pgdbm\\_tpl\\_%'",
                &[],
            )
            .await?;
        let mut names = Vec::new();
        for row in rows {
            let name: String = row.get(0)?;
            conn.batch_execute(&format!(
                "ALTER DATABASE {} WITH IS_TEMPLATE false",
                quote_identifier(&name)
            ))
            .await?;
            conn.batch_execute(&drop_database_sql(&name)).await?;
            names.push(name);
        }
        Ok(names)
    })
    .await;
    drop(conn);
    pool.close().await;
    if let Ok(names) = &result {
        if let Some(cells) = TEMPLATES.get() {
            let mut cells = cells.lock().unwrap_or_else(|e| e.into_inner());
            for n in names {
                cells.remove(n);
            }
        }
    }
    result
}
