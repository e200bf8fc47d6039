//! Maintenance-database connections, names, the migration set and cleanup threads shared by
//! [`TestDatabase`](crate::TestDatabase) and [`TestSchema`](crate::TestSchema).

use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};

use pgdbm::prelude::*;
use pgdbm::{
    DatabaseConfig, Driver, MigrationSource, PoolProvider, PooledConnection, Result, quote_identifier,
};
use sha2::{Digest, Sha256};

use crate::server::TestServer;

/// Key of the advisory lock taken around template (and shared database) creation.
pub(crate) const LOCK_SQL: &str = "SELECT pg_advisory_lock(hashtext('pgdbm_testing_template'))";
pub(crate) const UNLOCK_SQL: &str = "SELECT pg_advisory_unlock(hashtext('pgdbm_testing_template'))";

/// Prefix of every per-test database and schema; `pgdbm_test_<pid>_<counter>_<random>`.
pub(crate) const TEST_PREFIX: &str = "pgdbm_test_";

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A fresh name `pgdbm_test_<pid>_<counter>_<random>`.
pub(crate) fn unique_name() -> String {
    format!(
        "{TEST_PREFIX}{}_{}_{:06x}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed),
        rand::random::<u32>() & 0xff_ffff
    )
}

/// The process id in a `pgdbm_test_<pid>_…` name.
pub(crate) fn pid_of(name: &str) -> Option<u32> {
    name.strip_prefix(TEST_PREFIX)?.split('_').next()?.parse().ok()
}

/// `true` when `name` belongs to a process that no longer runs on this machine. Only answers
/// where `/proc` exists (Linux); elsewhere nothing counts as stale.
pub(crate) fn is_stale(name: &str) -> bool {
    let Some(pid) = pid_of(name) else {
        return false;
    };
    pid != std::process::id()
        && Path::new("/proc/self").exists()
        && !Path::new("/proc").join(pid.to_string()).exists()
}

/// The server's configuration for `database`, for administrative work: one connection, no
/// statement or lock timeout (template builds may wait for each other).
pub(crate) fn admin_config(server: &TestServer, database: &str) -> Result<DatabaseConfig> {
    server
        .config
        .to_builder()
        .database(database)
        .without_schema()
        .min_connections(1)
        .max_connections(1)
        .statement_timeout(None)
        .lock_timeout(None)
        .build()
}

/// One connection to the maintenance database `postgres`, with the pool that owns it.
pub(crate) async fn admin<D: Driver>(server: &TestServer) -> Result<(D::Pool, PooledConnection)> {
    let pool = D::connect(&admin_config(server, "postgres")?).await?;
    let conn = pool.acquire().await?;
    Ok((pool, conn))
}

/// Runs `work` on `conn` under the template advisory lock, always unlocking.
pub(crate) async fn with_lock<T>(
    conn: &PooledConnection,
    work: impl Future<Output = Result<T>>,
) -> Result<T> {
    conn.execute(LOCK_SQL, &[]).await?;
    let result = work.await;
    let unlocked = conn.execute(UNLOCK_SQL, &[]).await;
    let value = result?;
    unlocked?;
    Ok(value)
}

/// One module's migrations, as plain data.
#[derive(Debug, Clone)]
pub(crate) struct ModuleSpec {
    pub(crate) name: String,
    pub(crate) depends_on: Vec<String>,
    pub(crate) source: MigrationSource,
}

impl Module for ModuleSpec {
    fn name(&self) -> &str {
        &self.name
    }
    fn migrations(&self) -> MigrationSource {
        self.source.clone()
    }
    fn depends_on(&self) -> Vec<&str> {
        self.depends_on.iter().map(String::as_str).collect()
    }
}

/// What gets migrated into a test database: modules, in a schema (or none).
#[derive(Debug, Clone, Default)]
pub(crate) struct MigrationSet {
    pub(crate) modules: Vec<ModuleSpec>,
    pub(crate) schema: Option<String>,
}

impl MigrationSet {
    pub(crate) fn add_module(&mut self, module: &dyn Module) {
        self.modules.push(ModuleSpec {
            name: module.name().to_owned(),
            depends_on: module.depends_on().into_iter().map(str::to_owned).collect(),
            source: module.migrations(),
        });
    }

    /// Hash of schema, module names, dependencies, migration names and checksums.
    pub(crate) fn fingerprint(&self) -> String {
        let mut h = Sha256::new();
        h.update(b"pgdbm-testing/1\0");
        h.update(self.schema.as_deref().unwrap_or("").as_bytes());
        for m in &self.modules {
            h.update(b"\0module\0");
            h.update(m.name.as_bytes());
            for d in &m.depends_on {
                h.update(b"\0dep\0");
                h.update(d.as_bytes());
            }
            for mig in m.source.migrations() {
                h.update(b"\0file\0");
                h.update(mig.name().as_bytes());
                h.update(b"\0");
                h.update(mig.checksum().as_bytes());
            }
        }
        let digest = h.finalize();
        digest.iter().take(8).map(|b| format!("{b:02x}")).collect()
    }

    /// Applies every module (in dependency order) through `db`.
    pub(crate) async fn apply(&self, db: &Database) -> Result<()> {
        if self.modules.is_empty() {
            if self.schema.is_some() {
                db.ensure_schema().await?;
            }
            return Ok(());
        }
        let refs: Vec<&dyn Module> = self.modules.iter().map(|m| m as &dyn Module).collect();
        db.migrate_all(&refs).await?;
        Ok(())
    }
}

/// Runs `sql` against `database` on a thread of its own with its own runtime: usable from
/// `Drop`, in async code and while unwinding alike.
pub(crate) fn cleanup_blocking<D: Driver>(server: &'static TestServer, database: String, sql: String) {
    let handle = std::thread::spawn(move || {
        let Ok(rt) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            return;
        };
        rt.block_on(async move {
            let result = async {
                let pool = D::connect(&admin_config(server, &database)?).await?;
                let r = pool.batch_execute(&sql).await;
                pool.close().await;
                r
            }
            .await;
            if let Err(e) = result {
                eprintln!("pgdbm-testing: cleanup `{sql}` failed: {e}");
            }
        });
    });
    let _ = handle.join();
}

/// `DROP DATABASE IF EXISTS … WITH (FORCE)`.
pub(crate) fn drop_database_sql(name: &str) -> String {
    format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", quote_identifier(name))
}

/// `true` when `PGDBM_TEST_KEEP` is set to something other than `0`/`false`/empty.
pub(crate) fn keep_from_env() -> bool {
    std::env::var("PGDBM_TEST_KEEP")
        .map(|v| !matches!(v.trim(), "" | "0" | "false" | "no"))
        .unwrap_or(false)
}
