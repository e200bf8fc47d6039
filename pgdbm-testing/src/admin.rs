//! Maintenance-database connections, names, the migration set and cleanup threads shared by
//! [`TestDatabase`](crate::TestDatabase) and [`TestSchema`](crate::TestSchema).

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};

use pgdbm::driver::{Driver, PoolProvider, PooledConnection};
use pgdbm::prelude::*;
use pgdbm::{DatabaseConfig, MigrationSource, Result, quote_identifier};
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
    name.strip_prefix(TEST_PREFIX)?
        .split('_')
        .next()?
        .parse()
        .ok()
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
    /// The module's own schema; `None`: the set's.
    pub(crate) schema: Option<String>,
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

/// What gets migrated into a test database: modules, each in its own schema or the set's (or
/// none).
#[derive(Debug, Clone, Default)]
pub(crate) struct MigrationSet {
    pub(crate) modules: Vec<ModuleSpec>,
    pub(crate) schema: Option<String>,
}

impl MigrationSet {
    pub(crate) fn add_module(&mut self, module: &dyn Module) {
        self.add_module_in(module, None);
    }

    /// Adds `module`, migrated into `schema` (`None`: the set's schema).
    pub(crate) fn add_module_in(&mut self, module: &dyn Module, schema: Option<&str>) {
        self.modules.push(ModuleSpec {
            name: module.name().to_owned(),
            depends_on: module.depends_on().into_iter().map(str::to_owned).collect(),
            source: module.migrations(),
            schema: schema.map(str::to_owned),
        });
    }

    /// The schema module `spec` is migrated into.
    pub(crate) fn schema_of<'a>(&'a self, spec: &'a ModuleSpec) -> Option<&'a str> {
        spec.schema.as_deref().or(self.schema.as_deref())
    }

    /// Hash of schema, module names, dependencies, migration names and checksums.
    pub(crate) fn fingerprint(&self) -> String {
        let mut h = Sha256::new();
        h.update(b"pgdbm-testing/1\0");
        h.update(self.schema.as_deref().unwrap_or("").as_bytes());
        for m in &self.modules {
            h.update(b"\0module\0");
            h.update(m.name.as_bytes());
            if let Some(schema) = &m.schema {
                // Only when set, so that the templates of single-schema sets keep their names.
                h.update(b"\0schema\0");
                h.update(schema.as_bytes());
            }
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

    /// Applies every module (in dependency order, across schemas) through `db`'s pool, each
    /// into its own schema or `db`'s (which is the set's).
    pub(crate) async fn apply(&self, db: &Database) -> Result<()> {
        if self.schema.is_some() {
            db.ensure_schema().await?;
        }
        let refs: Vec<&dyn Module> = self.modules.iter().map(|m| m as &dyn Module).collect();
        for module in pgdbm::order_modules(&refs)? {
            let spec = self
                .modules
                .iter()
                .find(|m| m.name == module.name())
                .expect("ordered from this set");
            match &spec.schema {
                Some(schema) => db.with_schema(Some(schema))?.migrate(module).await?,
                None => db.migrate(module).await?,
            };
        }
        Ok(())
    }
}

/// Runs `sql` against `database` on a thread of its own with its own runtime: usable from
/// `Drop`, in async code and while unwinding alike.
pub(crate) fn cleanup_blocking<D: Driver>(
    server: &'static TestServer,
    database: String,
    sql: String,
) {
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

impl TestServer {
    /// Runs `sql` against `database` of this server with driver `D` on a thread of its own with
    /// its own runtime, as an administrator (one connection, no statement timeout), and waits
    /// for it: for cleanup in `Drop`, which works in async code and while a failing test unwinds
    /// alike. A failure is printed to standard error, not returned.
    pub fn execute_blocking<D: Driver>(&'static self, database: &str, sql: &str) {
        cleanup_blocking::<D>(self, database.to_owned(), sql.to_owned());
    }
}

/// `DROP DATABASE IF EXISTS … WITH (FORCE)`.
pub(crate) fn drop_database_sql(name: &str) -> String {
    format!(
        "DROP DATABASE IF EXISTS {} WITH (FORCE)",
        quote_identifier(name)
    )
}

/// `true` when `PGDBM_TEST_KEEP` is set to something other than `0`/`false`/empty.
pub(crate) fn keep_from_env() -> bool {
    std::env::var("PGDBM_TEST_KEEP")
        .map(|v| !matches!(v.trim(), "" | "0" | "false" | "no"))
        .unwrap_or(false)
}

/// Work for the admin thread, and where its result goes.
enum Job {
    /// Run one statement.
    Sql {
        sql: String,
        reply: Box<dyn FnOnce(Result<()>) + Send>,
    },
    /// Hand out a clone of `template` (a spare made earlier, or a new one), then make a spare.
    Clone {
        template: String,
        strategy: &'static str,
        spare: bool,
        reply: Box<dyn FnOnce(Result<String>) + Send>,
    },
}

type Provisioners =
    std::sync::Mutex<HashMap<&'static str, tokio::sync::mpsc::UnboundedSender<Job>>>;
static PROVISIONERS: std::sync::OnceLock<Provisioners> = std::sync::OnceLock::new();

/// Runs `sql` on the admin pool, (re)connecting as needed; retried once on a new connection
/// (the server may have closed the old one).
async fn admin_run<D: Driver>(
    server: &'static TestServer,
    pool: &mut Option<D::Pool>,
    sql: &str,
) -> Result<()> {
    let mut result = Err(pgdbm::Error::PoolClosed);
    for _ in 0..2 {
        if pool.is_none() {
            match D::connect(&admin_config(server, "postgres")?).await {
                Ok(p) => *pool = Some(p),
                Err(e) => {
                    result = Err(e);
                    continue;
                }
            }
        }
        if let Some(p) = pool.as_ref() {
            result = p.batch_execute(sql).await;
            if result.is_ok() {
                return result;
            }
            if let Some(p) = pool.take() {
                p.close().await;
            }
        }
    }
    result
}

fn clone_sql(name: &str, template: &str, strategy: &str) -> String {
    format!(
        "CREATE DATABASE {} TEMPLATE {}{strategy}",
        quote_identifier(name),
        quote_identifier(template)
    )
}

/// Starts, once per process, a watcher that drops this process's test databases left on the
/// server (the spare clones, or any a killed test could not drop) once the process has exited:
/// nothing of a run stays behind. It needs `psql`; without it, the next run's sweep drops them.
fn spawn_spare_reaper(server: &TestServer) {
    use std::os::unix::process::CommandExt;
    use std::process::{Command, Stdio};
    static STARTED: std::sync::OnceLock<()> = std::sync::OnceLock::new();
    STARTED.get_or_init(|| {
        let Some(psql) = find_psql() else {
            return;
        };
        let sql = format!(
            "SELECT format('DROP DATABASE IF EXISTS %I WITH (FORCE)', datname) FROM pg_database \
             WHERE datname LIKE 'pgdbm\\_test\\_{}\\_%' \\gexec",
            std::process::id()
        );
        let script = "while kill -0 \"$1\" 2>/dev/null; do sleep 1; done; \
            printf '%s\\n' \"$2\" | \"$3\" -X -q >/dev/null 2>&1";
        let config = &server.config;
        let mut cmd = Command::new("sh");
        cmd.args(["-c", script, "pgdbm-testing-spares"])
            .arg(std::process::id().to_string())
            .arg(sql)
            .arg(psql)
            // Connection settings travel in the environment, never on the command line.
            .env("PGHOST", config.host())
            .env("PGPORT", config.port().to_string())
            .env("PGUSER", config.user())
            .env("PGDATABASE", "postgres")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            // Its own process group: a Ctrl-C to the test run must not kill it first.
            .process_group(0);
        match config.password() {
            Some(password) => cmd.env("PGPASSWORD", password),
            None => cmd.env_remove("PGPASSWORD"),
        };
        if let Err(e) = cmd.spawn() {
            eprintln!("pgdbm-testing: cannot start the watcher for spare databases: {e}");
        }
    });
}

/// `psql` on `PATH` or next to the server binaries.
fn find_psql() -> Option<std::path::PathBuf> {
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|dir| dir.join("psql"))
        .find(|p| p.is_file());
    on_path.or_else(|| {
        crate::server::find_postgres_binaries()
            .ok()
            .map(|dir| dir.join("psql"))
            .filter(|p| p.is_file())
    })
}

/// The admin thread of driver `D`: one thread with its own runtime and one connection to the
/// maintenance database, kept for the whole process, that runs `CREATE DATABASE`/`DROP
/// DATABASE` statements. Tests each have their own runtime, so they cannot share a connection;
/// this thread saves every test a connection setup. On local servers it also keeps one spare
/// clone per template ready, made right after handing one out, so that a test waits only for
/// its own connection; spares left at exit are dropped by a watcher process
/// ([`spawn_spare_reaper`]), or else by the next run's sweep.
fn provisioner<D: Driver>(server: &'static TestServer) -> tokio::sync::mpsc::UnboundedSender<Job> {
    let mut map = PROVISIONERS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    map.entry(D::NAME)
        .or_insert_with(|| {
            let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Job>();
            let spawned = std::thread::Builder::new()
                .name("pgdbm-testing-admin".to_owned())
                .spawn(move || {
                    let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                    else {
                        return;
                    };
                    rt.block_on(async move {
                        let mut pool: Option<D::Pool> = None;
                        let mut spares: HashMap<(String, &'static str), String> = HashMap::new();
                        while let Some(job) = rx.recv().await {
                            match job {
                                Job::Sql { sql, reply } => {
                                    reply(admin_run::<D>(server, &mut pool, &sql).await);
                                }
                                Job::Clone {
                                    template,
                                    strategy,
                                    spare,
                                    reply,
                                } => {
                                    let key = (template, strategy);
                                    match spares.remove(&key) {
                                        Some(name) => reply(Ok(name)),
                                        None => {
                                            let name = unique_name();
                                            let sql = clone_sql(&name, &key.0, strategy);
                                            let r = admin_run::<D>(server, &mut pool, &sql).await;
                                            reply(r.map(|()| name));
                                        }
                                    }
                                    if spare {
                                        spawn_spare_reaper(server);
                                        let name = unique_name();
                                        let sql = clone_sql(&name, &key.0, strategy);
                                        if admin_run::<D>(server, &mut pool, &sql).await.is_ok() {
                                            spares.insert(key, name);
                                        }
                                    }
                                }
                            }
                        }
                    });
                });
            if let Err(e) = spawned {
                eprintln!("pgdbm-testing: cannot start the admin thread: {e}");
            }
            tx
        })
        .clone()
}

/// A new database cloned from `template` (see [`provisioner`]); its name.
pub(crate) async fn admin_clone<D: Driver>(
    server: &'static TestServer,
    template: &str,
    strategy: &'static str,
) -> Result<String> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let job = Job::Clone {
        template: template.to_owned(),
        strategy,
        spare: server.is_local(),
        reply: Box::new(move |r| {
            let _ = tx.send(r);
        }),
    };
    if provisioner::<D>(server).send(job).is_err() {
        return Err(pgdbm::Error::PoolClosed);
    }
    rx.await.unwrap_or(Err(pgdbm::Error::PoolClosed))
}

/// Runs `sql` on the maintenance database through the admin thread, waiting asynchronously.
pub(crate) async fn admin_execute<D: Driver>(
    server: &'static TestServer,
    sql: String,
) -> Result<()> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let job = Job::Sql {
        sql,
        reply: Box::new(move |r| {
            let _ = tx.send(r);
        }),
    };
    if provisioner::<D>(server).send(job).is_err() {
        return Err(pgdbm::Error::PoolClosed);
    }
    rx.await.unwrap_or(Err(pgdbm::Error::PoolClosed))
}

/// As [`admin_execute`], blocking the calling thread (for `Drop`).
pub(crate) fn admin_execute_blocking<D: Driver>(
    server: &'static TestServer,
    sql: String,
) -> Result<()> {
    let (tx, rx) = std::sync::mpsc::channel();
    let job = Job::Sql {
        sql,
        reply: Box::new(move |r| {
            let _ = tx.send(r);
        }),
    };
    if provisioner::<D>(server).send(job).is_err() {
        return Err(pgdbm::Error::PoolClosed);
    }
    rx.recv().unwrap_or(Err(pgdbm::Error::PoolClosed))
}
