//! [`TestSchema`]: a fresh schema per test in one shared test database.

use std::marker::PhantomData;

use pgdbm::driver::{Driver, PoolProvider};
use pgdbm::prelude::*;
use pgdbm::{Database, DatabaseConfig, MigrationSource, Result, quote_identifier};
use tokio::sync::OnceCell;

use crate::admin::{self, MigrationSet, ModuleSpec, cleanup_blocking, keep_from_env, with_lock};
use crate::server::TestServer;

/// The database all [`TestSchema`]s live in (created on first use, never dropped).
pub const SHARED_DATABASE: &str = "pgdbm_testing_shared";

static SHARED_READY: OnceCell<()> = OnceCell::const_new();

/// A schema of its own for one test, `pgdbm_test_<pid>_<counter>_<random>`, in the shared
/// database [`SHARED_DATABASE`], with the given modules migrated into it. Dropped (`CASCADE`)
/// with this guard, also on panic. Cheaper to set up than a [`TestDatabase`](crate::TestDatabase)
/// when there are few migrations, but the migrations run for every test and objects outside the
/// schema (extensions, roles) are shared.
pub struct TestSchema<D: Driver> {
    db: Database,
    schema: String,
    config: DatabaseConfig,
    server: &'static TestServer,
    keep: bool,
    _driver: PhantomData<fn() -> D>,
}

impl<D: Driver> std::fmt::Debug for TestSchema<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestSchema")
            .field("schema", &self.schema)
            .field("driver", &D::NAME)
            .finish()
    }
}

impl<D: Driver> std::ops::Deref for TestSchema<D> {
    type Target = Database;
    fn deref(&self) -> &Database {
        &self.db
    }
}

impl<D: Driver> TestSchema<D> {
    /// A fresh schema with `modules` migrated into it.
    ///
    /// # Errors
    ///
    /// When no server can be found, the shared database or the schema cannot be created, or a
    /// migration fails.
    pub async fn new(modules: &[&dyn Module]) -> Result<Self> {
        let mut set = MigrationSet::default();
        for m in modules {
            set.add_module(*m);
        }
        Self::create(set, keep_from_env()).await
    }

    /// As [`TestSchema::new`] with a migration source as module `name`.
    ///
    /// # Errors
    ///
    /// As [`TestSchema::new`].
    pub async fn with_migrations(name: &str, source: MigrationSource) -> Result<Self> {
        let set = MigrationSet {
            modules: vec![ModuleSpec {
                name: name.to_owned(),
                depends_on: Vec::new(),
                source,
                schema: None,
            }],
            schema: None,
        };
        Self::create(set, keep_from_env()).await
    }

    async fn create(mut set: MigrationSet, keep: bool) -> Result<Self> {
        let server = TestServer::shared::<D>().await?;
        SHARED_READY
            .get_or_try_init(|| ensure_shared_database::<D>(server))
            .await?;
        let schema = admin::unique_name();
        set.schema = Some(schema.clone());
        let config: DatabaseConfig = server
            .config
            .to_builder()
            .database(SHARED_DATABASE)
            .schema(&schema)
            .min_connections(1)
            .max_connections(5)
            .build()?;
        let db = Database::connect::<D>(&config).await?;
        let guard = TestSchema {
            db,
            schema,
            config,
            server,
            keep,
            _driver: PhantomData,
        };
        guard.db.ensure_schema().await?;
        set.apply(&guard.db).await?;
        Ok(guard)
    }

    /// The handle, scoped to the schema (also reachable through `Deref`).
    pub fn database(&self) -> &Database {
        &self.db
    }

    /// The schema's name.
    pub fn schema_name(&self) -> &str {
        &self.schema
    }

    /// The configuration of the handle: the shared database [`SHARED_DATABASE`] on the test
    /// server, this schema, a pool of 1–5 connections. Open more pools on the schema from it.
    pub fn config(&self) -> &DatabaseConfig {
        &self.config
    }

    /// The server the schema lives on.
    pub fn server(&self) -> &'static TestServer {
        self.server
    }
}

impl<D: Driver> Drop for TestSchema<D> {
    fn drop(&mut self) {
        if self.keep {
            eprintln!(
                "pgdbm-testing: kept test schema {} in database {SHARED_DATABASE}",
                self.schema
            );
            return;
        }
        cleanup_blocking::<D>(
            self.server,
            SHARED_DATABASE.to_owned(),
            format!(
                "DROP SCHEMA IF EXISTS {} CASCADE",
                quote_identifier(&self.schema)
            ),
        );
    }
}

/// Creates [`SHARED_DATABASE`] when missing and drops schemas of dead processes in it.
async fn ensure_shared_database<D: Driver>(server: &'static TestServer) -> Result<()> {
    let (pool, conn) = admin::admin::<D>(server).await?;
    let result = with_lock(&conn, async {
        let exists: bool = conn
            .fetch_value(
                "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_database WHERE datname = $1)",
                pgdbm::params![SHARED_DATABASE],
            )
            .await?;
        if !exists {
            conn.batch_execute(&format!(
                "CREATE DATABASE {}",
                quote_identifier(SHARED_DATABASE)
            ))
            .await?;
        }
        Ok(())
    })
    .await;
    drop(conn);
    pool.close().await;
    result?;
    if server.is_local() {
        let shared = D::connect(&admin::admin_config(server, SHARED_DATABASE)?).await?;
        if let Ok(rows) = shared
            .fetch_all(
                "SELECT nspname::text FROM pg_catalog.pg_namespace WHERE nspname LIKE 'pgdbm\\_test\\_%'",
                &[],
            )
            .await
        {
            for row in rows {
                let Ok(name) = row.get::<String>(0) else { continue };
                if admin::is_stale(&name) {
                    let _ = shared
                        .batch_execute(&format!(
                            "DROP SCHEMA IF EXISTS {} CASCADE",
                            quote_identifier(&name)
                        ))
                        .await;
                }
            }
        }
        shared.close().await;
    }
    Ok(())
}
