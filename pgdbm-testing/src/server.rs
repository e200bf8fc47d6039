//! Finding (or starting) the PostgreSQL server tests run against.

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use pgdbm::driver::{Driver, PoolProvider};
use pgdbm::prelude::*;
use pgdbm::{DatabaseConfig, Error, Result, RetryPolicy};
use tokio::sync::OnceCell;

/// How a [`TestServer`] was found.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ServerSource {
    /// `PGDBM_TEST_URL`.
    TestUrl,
    /// `DATABASE_URL`.
    DatabaseUrl,
    /// `TEST_DB_HOST` / `TEST_DB_PORT` / `TEST_DB_USER` / `TEST_DB_PASSWORD`.
    TestDbVariables,
    /// The local default: the libpq `PG*` variables, else `localhost:5432` as the current OS user.
    LocalDefault,
    /// A throwaway server started by this process in a temporary directory.
    Throwaway {
        /// The temporary directory (data directory in `data/`, Unix socket in the directory itself).
        dir: PathBuf,
        /// The PostgreSQL binaries used.
        bin_dir: PathBuf,
    },
}

impl fmt::Display for ServerSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServerSource::TestUrl => f.write_str("PGDBM_TEST_URL"),
            ServerSource::DatabaseUrl => f.write_str("DATABASE_URL"),
            ServerSource::TestDbVariables => f.write_str("TEST_DB_* variables"),
            ServerSource::LocalDefault => f.write_str("local default"),
            ServerSource::Throwaway { dir, .. } => {
                write!(f, "throwaway server in {}", dir.display())
            }
        }
    }
}

/// A PostgreSQL server to run tests against: its configuration (database `postgres`, the
/// maintenance database, unless the source named another) and where it came from.
#[derive(Debug, Clone)]
pub struct TestServer {
    /// Connection settings of the server.
    pub config: DatabaseConfig,
    /// How it was found.
    pub source: ServerSource,
}

static SHARED: OnceCell<TestServer> = OnceCell::const_new();
static THROWAWAY: OnceCell<TestServer> = OnceCell::const_new();

/// The configuration of the shared test server (see [`TestServer::shared`]), with a small pool
/// (1–8 connections).
///
/// # Errors
///
/// As [`TestServer::shared`].
pub async fn server_config<D: Driver>() -> Result<DatabaseConfig> {
    let server = TestServer::shared::<D>().await?;
    server
        .config
        .to_builder()
        .min_connections(1)
        .max_connections(8)
        .build()
}

impl TestServer {
    /// The server all tests of this process use, found once (probing with driver `D`) in this
    /// order: `PGDBM_TEST_URL` (when set, it must work: no fallback), `DATABASE_URL`, the
    /// `TEST_DB_HOST`/`TEST_DB_PORT`/`TEST_DB_USER`/`TEST_DB_PASSWORD` variables, the local
    /// default (`PG*` variables, else `localhost:5432` as the current OS user; one attempt with a
    /// 2 s timeout), and finally [a throwaway server](TestServer::start_throwaway).
    ///
    /// A candidate is taken when a connection succeeds and its role may create databases.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] listing every candidate tried and why it failed.
    pub async fn shared<D: Driver>() -> Result<&'static TestServer> {
        SHARED.get_or_try_init(discover::<D>).await
    }

    /// A throwaway server of this process, started on first call and shared by all later calls
    /// (and by [`TestServer::shared`] when discovery ends there): `initdb` into a temporary
    /// directory, `fsync`, `full_page_writes` and `synchronous_commit` off, listening on a Unix
    /// socket in that directory and a free TCP port on 127.0.0.1. Binaries come from `PATH`, then
    /// `pg_config --bindir`, then the highest `/usr/lib/postgresql/*/bin`. As root, the server
    /// runs as the `postgres` OS user (through `runuser`, else `su`).
    ///
    /// It is stopped and its directory removed after this process exits, by a small watcher
    /// process (`sh`, in its own process group) that polls the test process once a second and
    /// then sends the postmaster `SIGQUIT` (immediate shutdown) and deletes the directory: safe
    /// code cannot run anything at process exit, and statics are never dropped.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] when no PostgreSQL binaries are found, or `initdb`/`pg_ctl` fail (their
    /// output is included).
    pub async fn start_throwaway() -> Result<&'static TestServer> {
        THROWAWAY
            .get_or_try_init(|| async {
                tokio::task::spawn_blocking(start_throwaway_blocking)
                    .await
                    .map_err(|e| config_error(format!("throwaway server: {e}")))?
            })
            .await
    }

    /// The server's configuration for database `name` (same host, port, user, password).
    ///
    /// # Errors
    ///
    /// [`Error::Config`] for an invalid database name.
    pub fn config_for(&self, database: &str) -> Result<DatabaseConfig> {
        self.config.to_builder().database(database).build()
    }

    /// `true` when the server runs on this machine (a Unix socket, `localhost` or a loopback
    /// address), so process ids in database names can be checked.
    pub fn is_local(&self) -> bool {
        let host = self.config.host();
        host.starts_with('/') || host == "localhost" || host == "127.0.0.1" || host == "::1"
    }
}

pub(crate) fn config_error(message: String) -> Error {
    Error::test_setup("test server", message)
}

async fn discover<D: Driver>() -> Result<TestServer> {
    let mut tried: Vec<String> = Vec::new();

    if let Some(url) = non_empty_var("PGDBM_TEST_URL") {
        let config = DatabaseConfig::builder()
            .url(&url)
            .build()
            .map_err(|e| config_error(format!("PGDBM_TEST_URL: {e}")))?;
        return match probe::<D>(&config, Duration::from_secs(10)).await {
            Ok(()) => Ok(TestServer {
                config,
                source: ServerSource::TestUrl,
            }),
            Err(e) => Err(config_error(format!(
                "PGDBM_TEST_URL ({}) is set but cannot be used: {e}",
                config.masked_url()
            ))),
        };
    }

    let mut candidates: Vec<(ServerSource, Result<DatabaseConfig>)> = Vec::new();
    if let Some(url) = non_empty_var("DATABASE_URL") {
        candidates.push((
            ServerSource::DatabaseUrl,
            DatabaseConfig::builder().url(&url).build(),
        ));
    }
    if let Some(host) = non_empty_var("TEST_DB_HOST") {
        let mut b = DatabaseConfig::builder().host(host).database("postgres");
        if let Some(port) = non_empty_var("TEST_DB_PORT") {
            match port.parse::<u16>() {
                Ok(p) => b = b.port(p),
                Err(_) => tried.push(format!("TEST_DB_PORT: not a port number: {port:?}")),
            }
        }
        if let Some(user) = non_empty_var("TEST_DB_USER") {
            b = b.user(user);
        }
        if let Some(password) = non_empty_var("TEST_DB_PASSWORD") {
            b = b.password(password);
        }
        candidates.push((ServerSource::TestDbVariables, b.build()));
    }
    let mut local = DatabaseConfig::builder().env();
    if std::env::var_os("PGDATABASE").is_none() {
        local = local.database("postgres");
    }
    candidates.push((ServerSource::LocalDefault, local.build()));

    for (source, config) in candidates {
        let config = match config {
            Ok(c) => c,
            Err(e) => {
                tried.push(format!("{source}: {e}"));
                continue;
            }
        };
        match probe::<D>(&config, Duration::from_secs(2)).await {
            Ok(()) => return Ok(TestServer { config, source }),
            Err(e) => tried.push(format!("{source} ({}): {e}", config.masked_url())),
        }
    }

    match TestServer::start_throwaway().await {
        Ok(server) => match probe::<D>(&server.config, Duration::from_secs(10)).await {
            Ok(()) => Ok(server.clone()),
            Err(e) => {
                tried.push(format!("throwaway server: started, but {e}"));
                Err(nothing_works(&tried))
            }
        },
        Err(e) => {
            tried.push(format!("throwaway server: {e}"));
            Err(nothing_works(&tried))
        }
    }
}

fn nothing_works(tried: &[String]) -> Error {
    config_error(format!(
        "pgdbm-testing: no PostgreSQL server to test against. Tried:\n  - {}\n\
         Set PGDBM_TEST_URL (e.g. postgresql://postgres@localhost:5432/postgres), or install the \
         PostgreSQL server binaries (initdb, pg_ctl) so a throwaway server can be started.",
        tried.join("\n  - ")
    ))
}

fn non_empty_var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// One connection attempt within `timeout`; the role must be allowed to create databases.
async fn probe<D: Driver>(config: &DatabaseConfig, timeout: Duration) -> Result<()> {
    let config = config
        .to_builder()
        .min_connections(1)
        .max_connections(1)
        .connect_timeout(timeout)
        .acquire_timeout(timeout)
        .retry(RetryPolicy::no_retry())
        .build()?;
    let attempt = async {
        let pool = D::connect(&config).await?;
        let can_create = pool
            .fetch_value::<bool>(
                "SELECT rolsuper OR rolcreatedb FROM pg_catalog.pg_roles WHERE rolname = current_user",
                &[],
            )
            .await;
        pool.close().await;
        if can_create? {
            Ok(())
        } else {
            Err(config_error(format!(
                "role {:?} may not create databases (needs CREATEDB)",
                config.user()
            )))
        }
    };
    match tokio::time::timeout(timeout + Duration::from_secs(1), attempt).await {
        Ok(r) => r,
        Err(_) => Err(config_error(format!("no answer within {timeout:?}"))),
    }
}

// ---------------------------------------------------------------------------------------------
// The throwaway server.

/// Where `initdb` and `pg_ctl` are: `PATH`, `pg_config --bindir`, `/usr/lib/postgresql/*/bin`.
///
/// # Errors
///
/// [`Error::Config`] naming the places looked at.
pub fn find_postgres_binaries() -> Result<PathBuf> {
    let has_both = |dir: &Path| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file();
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            if has_both(&dir) {
                // Resolve symlinks (e.g. /usr/local/bin/initdb → /usr/lib/postgresql/15/bin).
                let real = std::fs::canonicalize(dir.join("initdb"))
                    .ok()
                    .and_then(|p| p.parent().map(Path::to_path_buf))
                    .filter(|d| has_both(d));
                return Ok(real.unwrap_or(dir));
            }
        }
    }
    if let Ok(out) = Command::new("pg_config")
        .arg("--bindir")
        .stderr(Stdio::null())
        .output()
    {
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if out.status.success() && has_both(&dir) {
            return Ok(dir);
        }
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            has_both(&bin).then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, dir)| dir).ok_or_else(|| {
        config_error(
            "no PostgreSQL binaries (initdb, pg_ctl) on PATH, via `pg_config --bindir`, or in \
             /usr/lib/postgresql/*/bin"
                .to_owned(),
        )
    })
}

pub(crate) fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// A command that runs `program args…` as the `postgres` OS user when we are root.
pub(crate) fn as_server_user(root: bool, program: &Path, args: &[&str]) -> Command {
    if !root {
        let mut c = Command::new(program);
        c.args(args);
        return c;
    }
    if Path::new("/usr/sbin/runuser").exists() || Path::new("/sbin/runuser").exists() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program).args(args);
        c
    } else {
        let mut line = shell_quote(&program.to_string_lossy());
        for a in args {
            line.push(' ');
            line.push_str(&shell_quote(a));
        }
        let mut c = Command::new("su");
        c.args(["postgres", "-s", "/bin/sh", "-c", &line]);
        c
    }
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

fn run(mut cmd: Command, what: &str) -> Result<()> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| config_error(format!("throwaway server: cannot run {what}: {e}")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(config_error(format!(
            "throwaway server: {what} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim(),
            String::from_utf8_lossy(&out.stdout).trim()
        )))
    }
}

pub(crate) fn free_port() -> Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")
        .map_err(|e| config_error(format!("no free port: {e}")))?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| config_error(format!("no free port: {e}")))
}

fn start_throwaway_blocking() -> Result<TestServer> {
    let started = Instant::now();
    let cluster = Cluster::init(&ClusterSpec::default())?;
    if let Err(e) = cluster.pg_ctl_start() {
        cluster.remove();
        return Err(e);
    }
    spawn_reaper(&cluster.dir_str(), &cluster.data_str())?;
    let config = DatabaseConfig::builder()
        .host(cluster.dir_str())
        .port(cluster.port)
        .user("postgres")
        .database("postgres")
        .build()?;
    if std::env::var_os("PGDBM_TEST_VERBOSE").is_some() {
        eprintln!(
            "pgdbm-testing: throwaway server in {} (port {}) started in {:?}",
            cluster.dir.display(),
            cluster.port,
            started.elapsed()
        );
    }
    Ok(TestServer {
        config,
        source: ServerSource::Throwaway {
            dir: cluster.dir,
            bin_dir: cluster.bin_dir,
        },
    })
}

/// What to put into a new cluster besides the defaults.
#[derive(Default)]
pub(crate) struct ClusterSpec {
    /// Password of the superuser `postgres` (set by `initdb --pwfile`).
    pub(crate) password: Option<String>,
    /// Extra `postgresql.conf` lines (name, value), after the defaults.
    pub(crate) settings: Vec<(String, String)>,
    /// Lines of `pg_hba.conf` after the first (`local all all trust`); `None` = the default.
    pub(crate) hba: Option<Vec<String>>,
    /// Files to copy into the data directory: (file name, contents, private key?).
    pub(crate) files: Vec<(String, Vec<u8>, bool)>,
}

/// An initialised data directory in a temporary directory, with its port chosen.
pub(crate) struct Cluster {
    pub(crate) dir: PathBuf,
    pub(crate) bin_dir: PathBuf,
    pub(crate) port: u16,
    root: bool,
}

impl Cluster {
    pub(crate) fn dir_str(&self) -> String {
        self.dir.to_string_lossy().into_owned()
    }

    pub(crate) fn data_str(&self) -> String {
        self.dir.join("data").to_string_lossy().into_owned()
    }

    fn log_path(&self) -> PathBuf {
        self.dir.join("server.log")
    }

    /// The server log so far (empty when there is none).
    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// Removes the directory (the server must be stopped).
    pub(crate) fn remove(&self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }

    /// `initdb` into a new temporary directory and writes the configuration: listening on
    /// `localhost` at a free port and on a Unix socket in the directory, durability off.
    pub(crate) fn init(spec: &ClusterSpec) -> Result<Cluster> {
        let bin_dir = find_postgres_binaries()?;
        let root = is_root();
        let dir = tempfile::Builder::new()
            .prefix("pgdbm-test-")
            .tempdir()
            .map_err(|e| config_error(format!("throwaway server: temporary directory: {e}")))?
            .keep();
        let cluster = Cluster {
            dir,
            bin_dir,
            port: 0,
            root,
        };
        match cluster.init_inner(spec) {
            Ok(port) => Ok(Cluster { port, ..cluster }),
            Err(e) => {
                cluster.remove();
                Err(e)
            }
        }
    }

    fn init_inner(&self, spec: &ClusterSpec) -> Result<u16> {
        let dir_s = self.dir_str();
        let data_s = self.data_str();
        if self.root {
            run(
                {
                    let mut c = Command::new("chown");
                    c.args(["postgres:", &dir_s]);
                    c
                },
                "chown postgres (running as root: the server runs as the `postgres` OS user)",
            )
            .map_err(|e| {
                config_error(format!(
                    "{e}. Running as root, PostgreSQL must run as another OS user: create a \
                     `postgres` user, or run the tests as a normal user, or set PGDBM_TEST_URL"
                ))
            })?;
        }
        let mut args = vec![
            "-D".to_owned(),
            data_s.clone(),
            "-U".to_owned(),
            "postgres".to_owned(),
            "--auth=trust".to_owned(),
            "--encoding=UTF8".to_owned(),
            "--locale=C".to_owned(),
            "--no-sync".to_owned(),
            "--no-instructions".to_owned(),
        ];
        if let Some(password) = &spec.password {
            let pwfile = self.dir.join("pwfile");
            self.write_file(&pwfile, password.as_bytes(), true)?;
            args.push(format!("--pwfile={}", pwfile.display()));
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let initdb = run(
            as_server_user(self.root, &self.bin_dir.join("initdb"), &args),
            "initdb",
        );
        let _ = std::fs::remove_file(self.dir.join("pwfile"));
        initdb?;

        let data = self.dir.join("data");
        for (name, contents, private) in &spec.files {
            self.write_file(&data.join(name), contents, *private)?;
        }
        let port = free_port()?;
        let mut conf = format!(
            "\n# pgdbm-testing\nlisten_addresses = 'localhost'\nport = {port}\n\
             unix_socket_directories = '{dir_s}'\nfsync = off\nfull_page_writes = off\n\
             synchronous_commit = off\nmax_connections = 200\nshared_buffers = 64MB\n"
        );
        for (name, value) in &spec.settings {
            conf.push_str(&format!("{name} = '{}'\n", value.replace('\'', "''")));
        }
        append(&data.join("postgresql.conf"), &conf)?;
        if let Some(lines) = &spec.hba {
            let mut hba = String::from("local all all trust\n");
            for line in lines {
                hba.push_str(line);
                hba.push('\n');
            }
            std::fs::write(data.join("pg_hba.conf"), hba)
                .map_err(|e| config_error(format!("throwaway server: pg_hba.conf: {e}")))?;
        } else if spec.password.is_some() {
            let hba = "local all all trust\n\
                       host all all 127.0.0.1/32 scram-sha-256\n\
                       host all all ::1/128 scram-sha-256\n";
            std::fs::write(data.join("pg_hba.conf"), hba)
                .map_err(|e| config_error(format!("throwaway server: pg_hba.conf: {e}")))?;
        }
        Ok(port)
    }

    /// Writes a file the server can read (owned by `postgres` when we are root; mode 0600 when
    /// `private`).
    fn write_file(&self, path: &Path, contents: &[u8], private: bool) -> Result<()> {
        use std::os::unix::fs::PermissionsExt;
        let fail = |e: std::io::Error| {
            config_error(format!("throwaway server: writing {}: {e}", path.display()))
        };
        std::fs::write(path, contents).map_err(fail)?;
        let mode = if private { 0o600 } else { 0o644 };
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(fail)?;
        if self.root {
            let mut c = Command::new("chown");
            c.arg("postgres:").arg(path);
            run(c, "chown postgres")?;
        }
        Ok(())
    }

    /// `pg_ctl start`, waiting until the server accepts connections.
    pub(crate) fn pg_ctl_start(&self) -> Result<()> {
        let data_s = self.data_str();
        let log = self.log_path().to_string_lossy().into_owned();
        run(
            as_server_user(
                self.root,
                &self.bin_dir.join("pg_ctl"),
                &["-D", &data_s, "-l", &log, "-w", "-t", "30", "start"],
            ),
            "pg_ctl start",
        )
        .map_err(|e| config_error(format!("{e}\nserver log:\n{}", self.log())))
    }

    /// `pg_ctl stop` in `mode` (`fast`, `immediate`), waiting until the server is down.
    pub(crate) fn pg_ctl_stop(&self, mode: &str) -> Result<()> {
        let data_s = self.data_str();
        run(
            as_server_user(
                self.root,
                &self.bin_dir.join("pg_ctl"),
                &["-D", &data_s, "-m", mode, "-w", "-t", "30", "stop"],
            ),
            "pg_ctl stop",
        )
    }

    /// Runs `sql` with `psql` over the Unix socket as `postgres`; returns its unaligned output.
    pub(crate) fn psql(&self, sql: &str) -> Result<String> {
        let dir_s = self.dir_str();
        let port = self.port.to_string();
        let out = as_server_user(
            self.root,
            &self.bin_dir.join("psql"),
            &[
                "-X",
                "-q",
                "-A",
                "-t",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                &dir_s,
                "-p",
                &port,
                "-U",
                "postgres",
                "-d",
                "postgres",
                "-c",
                sql,
            ],
        )
        .stdin(Stdio::null())
        .output()
        .map_err(|e| config_error(format!("cannot run psql: {e}")))?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
        } else {
            Err(config_error(format!(
                "psql failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            )))
        }
    }
}

fn append(path: &Path, text: &str) -> Result<()> {
    use std::io::Write;
    std::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .map_err(|e| config_error(format!("throwaway server: {}: {e}", path.display())))
}

/// Starts the watcher that stops the server and removes its directory once this process exits.
pub(crate) fn spawn_reaper(dir: &str, data: &str) -> Result<()> {
    use std::os::unix::process::CommandExt;
    let script = "while kill -0 \"$1\" 2>/dev/null; do sleep 1; done; \
        pm=$(head -n 1 \"$3/postmaster.pid\" 2>/dev/null); \
        if [ -n \"$pm\" ]; then kill -QUIT \"$pm\" 2>/dev/null; \
          i=0; while kill -0 \"$pm\" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done; fi; \
        rm -rf \"$2\"";
    Command::new("sh")
        .args(["-c", script, "pgdbm-testing-reaper"])
        .arg(std::process::id().to_string())
        .args([dir, data])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        // Its own process group: a Ctrl-C to the test run must not kill the watcher first.
        .process_group(0)
        .spawn()
        .map(drop)
        .map_err(|e| config_error(format!("throwaway server: cannot start its watcher: {e}")))
}
