//! A real PgBouncer in front of a test server, for the checks that pgdbm works behind a
//! transaction pooler.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use pgdbm::driver::Driver;
use pgdbm::{DatabaseConfig, Pooler, Result};
use tokio::sync::OnceCell;

use crate::server::{TestServer, as_server_user, config_error, free_port, is_root};

/// How many server connections PgBouncer keeps per database and user: small, so that
/// consecutive transactions of one client really land on different backends.
pub const PGBOUNCER_POOL_SIZE: u32 = 2;

/// A PgBouncer process (the `pgbouncer` binary of the system, e.g. Debian's package) in
/// transaction mode in front of a PostgreSQL server, listening on a free port of 127.0.0.1.
///
/// Its settings are the ones production uses and the ones that catch a client keeping state in a
/// server session: `pool_mode = transaction`, `default_pool_size = 2`, and
/// `ignore_startup_parameters` left empty, so a client that sends the startup parameter
/// `options` is refused (`unsupported startup parameter: options`). Clients authenticate with
/// `trust` (as the test server's user or `postgres`); PgBouncer connects on to the server as the
/// same user, for any database name (`* =` in `[databases]`).
///
/// Stopped (and its directory removed) when dropped, and by a watcher process after the test
/// process exits, for the shared instance that is never dropped.
///
/// ```no_run
/// # async fn demo() -> pgdbm::Result<()> {
/// use pgdbm_driver_tokio_postgres::TokioPostgres;
/// use pgdbm_testing::PgBouncer;
///
/// let bouncer = PgBouncer::shared::<TokioPostgres>().await?;
/// let config = bouncer.config(); // pooler = transaction, through PgBouncer
/// let db = pgdbm::Database::connect::<TokioPostgres>(&config).await?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct PgBouncer {
    child: Child,
    dir: PathBuf,
    port: u16,
    /// The server behind it.
    server: DatabaseConfig,
}

static SHARED: OnceCell<PgBouncer> = OnceCell::const_new();

impl PgBouncer {
    /// The PgBouncer of this test process, started on first use in front of
    /// [`TestServer::shared`].
    ///
    /// # Errors
    ///
    /// As [`PgBouncer::start`], and as [`TestServer::shared`].
    pub async fn shared<D: Driver>() -> Result<&'static PgBouncer> {
        SHARED
            .get_or_try_init(|| async {
                let server = TestServer::shared::<D>().await?;
                PgBouncer::start(&server.config).await
            })
            .await
    }

    /// Starts a PgBouncer of its own in front of the server `server` points at.
    ///
    /// # Errors
    ///
    /// [`Error::TestSetup`](pgdbm::Error::TestSetup) when `pgbouncer` is not installed (the
    /// message says which package to install), cannot write its files, or does not accept
    /// connections within 10 s (its log is included).
    pub async fn start(server: &DatabaseConfig) -> Result<PgBouncer> {
        let server = server.clone();
        tokio::task::spawn_blocking(move || start_blocking(server))
            .await
            .map_err(|e| config_error(format!("pgbouncer: {e}")))?
    }

    /// The port PgBouncer listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A configuration that reaches the server's database through PgBouncer, with
    /// `pooler = transaction`.
    pub fn config(&self) -> DatabaseConfig {
        self.config_for(self.server.database())
    }

    /// As [`config`](Self::config), for database `database`.
    ///
    /// # Panics
    ///
    /// Never for a database name the server config accepted; an invalid one panics, as this is
    /// test code.
    pub fn config_for(&self, database: &str) -> DatabaseConfig {
        self.route(&self.server.to_builder().database(database))
    }

    /// Sends `config` (a configuration of the server behind PgBouncer, e.g. a test database's)
    /// through PgBouncer: host and port replaced, `pooler = transaction`, TLS off, and the
    /// original server as the `direct_url` for what needs a session.
    ///
    /// # Panics
    ///
    /// When `config` does not rebuild (it was built, so it does).
    pub fn route(&self, config: &pgdbm::DatabaseConfigBuilder) -> DatabaseConfig {
        let direct = config
            .clone()
            .build()
            .expect("a built configuration rebuilds");
        let direct_url = direct_url(&direct);
        config
            .clone()
            .host("127.0.0.1")
            .port(self.port)
            .ssl_mode(pgdbm::SslMode::Disable)
            .pooler(Pooler::Transaction)
            .direct_url(direct_url)
            .build()
            .expect("a built configuration rebuilds through PgBouncer")
    }

    /// PgBouncer's log so far (for failing tests).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("pgbouncer.log")).unwrap_or_default()
    }
}

impl Drop for PgBouncer {
    fn drop(&mut self) {
        // PgBouncer itself may run under `runuser`, which a SIGKILL would not pass on.
        if let Ok(pid) = std::fs::read_to_string(self.dir.join("pgbouncer.pid")) {
            let _ = Command::new("kill")
                .arg(pid.trim())
                .stderr(Stdio::null())
                .status();
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `host=… port=… ` for the direct connection to `config`'s server (the rest is inherited).
fn direct_url(config: &DatabaseConfig) -> String {
    format!(
        "host='{}' port={}",
        config.host().replace('\\', "\\\\").replace('\'', "\\'"),
        config.port()
    )
}

fn find_pgbouncer() -> Result<PathBuf> {
    let mut candidates: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|path| {
            std::env::split_paths(&path)
                .map(|d| d.join("pgbouncer"))
                .collect()
        })
        .unwrap_or_default();
    candidates.push(PathBuf::from("/usr/sbin/pgbouncer"));
    candidates.push(PathBuf::from("/usr/bin/pgbouncer"));
    candidates.into_iter().find(|p| p.is_file()).ok_or_else(|| {
        config_error(
            "pgbouncer: not installed (install the `pgbouncer` package, e.g. \
             `apt-get install pgbouncer`)"
                .to_owned(),
        )
    })
}

fn write(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text)
        .map_err(|e| config_error(format!("pgbouncer: {}: {e}", path.display())))
}

fn start_blocking(server: DatabaseConfig) -> Result<PgBouncer> {
    let binary = find_pgbouncer()?;
    let root = is_root();
    let dir = tempfile::Builder::new()
        .prefix("pgdbm-pgbouncer-")
        .tempdir()
        .map_err(|e| config_error(format!("pgbouncer: temporary directory: {e}")))?
        .keep();
    if root {
        // PgBouncer refuses to run as root: it runs as `postgres`, which must write here.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777))
            .map_err(|e| config_error(format!("pgbouncer: {}: {e}", dir.display())))?;
    }
    let port = free_port()?;
    // A Unix socket directory or a host name; PgBouncer takes both as `host=`.
    let backend = format!("host={} port={}", server.host(), server.port());
    let mut users: Vec<&str> = vec![server.user(), "postgres"];
    users.dedup();
    let userlist: String = users
        .iter()
        .map(|u| format!("\"{}\" \"\"\n", u.replace('"', "\"\"")))
        .collect();
    write(&dir.join("userlist.txt"), &userlist)?;
    let ini = format!(
        "[databases]\n\
         * = {backend}\n\
         [pgbouncer]\n\
         listen_addr = 127.0.0.1\n\
         listen_port = {port}\n\
         unix_socket_dir =\n\
         auth_type = trust\n\
         auth_file = {dir}/userlist.txt\n\
         pool_mode = transaction\n\
         default_pool_size = {PGBOUNCER_POOL_SIZE}\n\
         max_client_conn = 500\n\
         ignore_startup_parameters =\n\
         server_tls_sslmode = disable\n\
         logfile = {dir}/pgbouncer.log\n\
         pidfile = {dir}/pgbouncer.pid\n\
         log_connections = 0\n\
         log_disconnections = 0\n",
        dir = dir.display()
    );
    write(&dir.join("pgbouncer.ini"), &ini)?;
    let ini_path = dir.join("pgbouncer.ini");
    let mut command = as_server_user(root, &binary, &[&ini_path.to_string_lossy()]);
    let child = command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| config_error(format!("pgbouncer: cannot start {}: {e}", binary.display())))?;
    spawn_watcher(child.id(), &dir)?;
    let bouncer = PgBouncer {
        child,
        dir,
        port,
        server,
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            return Err(config_error(format!(
                "pgbouncer: not accepting connections on 127.0.0.1:{port} after 10 s; log:\n{}",
                bouncer.log()
            )));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(bouncer)
}

/// Stops PgBouncer (`pid`, or the process its pid file names) and removes `dir` once this
/// process has exited: the shared instance lives in a static, which is never dropped.
fn spawn_watcher(pid: u32, dir: &Path) -> Result<()> {
    use std::os::unix::process::CommandExt;
    let script = "while kill -0 \"$1\" 2>/dev/null; do sleep 1; done; \
        kill \"$2\" 2>/dev/null; pb=$(cat \"$3/pgbouncer.pid\" 2>/dev/null); \
        [ -n \"$pb\" ] && kill \"$pb\" 2>/dev/null; sleep 1; rm -rf \"$3\"";
    Command::new("sh")
        .args(["-c", script, "pgdbm-testing-pgbouncer-watcher"])
        .arg(std::process::id().to_string())
        .arg(pid.to_string())
        .arg(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .map(drop)
        .map_err(|e| config_error(format!("pgbouncer: cannot start its watcher: {e}")))
}
