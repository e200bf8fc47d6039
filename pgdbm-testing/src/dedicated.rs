//! A PostgreSQL server owned by one test: its own settings, TLS, `pg_hba.conf` and password, and
//! stop/start/restart — for tests that must not touch the shared server.

use std::sync::Arc;

use pgdbm::{DatabaseConfig, Result};

use crate::server::{Cluster, ClusterSpec, config_error, spawn_reaper};

/// A private PostgreSQL server for one test (or one test binary): `initdb` into a temporary
/// directory, listening on `localhost` at a free port and on a Unix socket in that directory.
///
/// Unlike [`TestServer::start_throwaway`](crate::TestServer::start_throwaway), which is shared
/// by the whole process, a dedicated server belongs to its owner, who may stop, start and
/// restart it, and configure it before it starts: extra `postgresql.conf` settings, TLS, the
/// client authentication rules and the superuser's password. It is stopped (immediate shutdown)
/// and its directory removed when dropped, and by a watcher process once the test process has
/// exited, should it never be dropped.
///
/// Administration goes through [`psql`](DedicatedServer::psql) over the Unix socket, where
/// `postgres` is always trusted (the first `pg_hba.conf` line is `local all all trust`).
///
/// ```no_run
/// # async fn demo() -> pgdbm::Result<()> {
/// use pgdbm_testing::DedicatedServer;
///
/// let server = DedicatedServer::builder()
///     .password("s3cret")
///     .setting("idle_in_transaction_session_timeout", "500")
///     .start()
///     .await?;
/// server.psql("CREATE ROLE app LOGIN PASSWORD 'app-pw'").await?;
/// let config = server.config(); // postgres:s3cret@localhost:<port>/postgres
/// # let _ = config;
/// server.restart().await?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct DedicatedServer {
    inner: Arc<Inner>,
    config: DatabaseConfig,
}

struct Inner {
    cluster: Cluster,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DedicatedServer")
            .field("dir", &self.cluster.dir)
            .field("port", &self.cluster.port)
            .finish()
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        let _ = self.cluster.pg_ctl_stop("immediate");
        self.cluster.remove();
    }
}

/// Settings of a [`DedicatedServer`] to start.
#[derive(Default)]
pub struct DedicatedServerBuilder {
    spec: ClusterSpec,
}

impl std::fmt::Debug for DedicatedServerBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DedicatedServerBuilder")
            .field("settings", &self.spec.settings)
            .field("hba", &self.spec.hba)
            .field("password", &self.spec.password.as_ref().map(|_| "***"))
            .finish_non_exhaustive()
    }
}

impl DedicatedServerBuilder {
    /// A `postgresql.conf` setting (the value is quoted for the file).
    pub fn setting(mut self, name: &str, value: &str) -> Self {
        self.spec.settings.push((name.to_owned(), value.to_owned()));
        self
    }

    /// The lines of `pg_hba.conf` after the first, which is always `local all all trust` (for
    /// [`psql`](DedicatedServer::psql)). Without this call: `trust` for every TCP connection,
    /// or `scram-sha-256` when a [password](Self::password) is set.
    pub fn hba<I, S>(mut self, lines: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.spec.hba = Some(lines.into_iter().map(Into::into).collect());
        self
    }

    /// The password of the superuser `postgres`; TCP connections then need it
    /// (`scram-sha-256`) unless [`hba`](Self::hba) says otherwise.
    pub fn password(mut self, password: &str) -> Self {
        self.spec.password = Some(password.to_owned());
        self
    }

    /// TLS on (`ssl = on`) with the server certificate and key of `certs`, and its CA as
    /// `ssl_ca_file`, so client certificates it signed are accepted (`hostssl … cert`).
    #[cfg(feature = "tls")]
    pub fn tls(mut self, certs: &crate::TestCerts) -> Self {
        let pem = |s: &str| s.as_bytes().to_vec();
        self.spec
            .files
            .push(("server.crt".into(), pem(&certs.server_cert_pem), false));
        self.spec
            .files
            .push(("server.key".into(), pem(&certs.server_key_pem), true));
        self.spec
            .files
            .push(("root.crt".into(), pem(&certs.ca_cert_pem), false));
        self = self
            .setting("ssl", "on")
            .setting("ssl_cert_file", "server.crt")
            .setting("ssl_key_file", "server.key")
            .setting("ssl_ca_file", "root.crt");
        self
    }

    /// Initialises and starts the server (about a second).
    ///
    /// # Errors
    ///
    /// [`Error::Config`](pgdbm::Error::Config) when no PostgreSQL binaries are found, or when
    /// `initdb` or `pg_ctl` fail (their output and the server log are included).
    pub async fn start(self) -> Result<DedicatedServer> {
        let spec = self.spec;
        let password = spec.password.clone();
        let cluster = blocking(move || {
            let cluster = Cluster::init(&spec)?;
            if let Err(e) = cluster.pg_ctl_start() {
                cluster.remove();
                return Err(e);
            }
            Ok(cluster)
        })
        .await?;
        let inner = Arc::new(Inner { cluster });
        spawn_reaper(&inner.cluster.dir_str(), &inner.cluster.data_str())?;
        let mut config = DatabaseConfig::builder()
            .host("localhost")
            .port(inner.cluster.port)
            .user("postgres")
            .database("postgres");
        if let Some(pw) = password {
            config = config.password(pw);
        }
        Ok(DedicatedServer {
            config: config.build()?,
            inner,
        })
    }
}

async fn blocking<T, F>(f: F) -> Result<T>
where
    F: FnOnce() -> Result<T> + Send + 'static,
    T: Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| config_error(format!("dedicated server: {e}")))?
}

impl DedicatedServer {
    /// Settings for a new server.
    pub fn builder() -> DedicatedServerBuilder {
        DedicatedServerBuilder::default()
    }

    /// How to reach it over TCP: host `localhost`, its port, user `postgres` (with the
    /// password, if one was set), database `postgres`; the other fields are pgdbm's defaults.
    pub fn config(&self) -> &DatabaseConfig {
        &self.config
    }

    /// How to reach it over its Unix socket (always trusted), as `postgres`.
    ///
    /// # Errors
    ///
    /// Never in practice; the builder's validation error.
    pub fn socket_config(&self) -> Result<DatabaseConfig> {
        self.config
            .to_builder()
            .host(self.inner.cluster.dir_str())
            .build()
    }

    /// Its TCP port.
    pub fn port(&self) -> u16 {
        self.inner.cluster.port
    }

    /// Stops it (`pg_ctl stop -m fast`: sessions are ended, the server shuts down cleanly).
    ///
    /// # Errors
    ///
    /// [`Error::Config`](pgdbm::Error::Config) with `pg_ctl`'s output when it fails (e.g.
    /// the server is not running).
    pub async fn stop(&self) -> Result<()> {
        let inner = self.inner.clone();
        blocking(move || inner.cluster.pg_ctl_stop("fast")).await
    }

    /// Starts it again after [`stop`](Self::stop), on the same port, waiting until it accepts
    /// connections.
    ///
    /// # Errors
    ///
    /// [`Error::Config`](pgdbm::Error::Config) with `pg_ctl`'s output and the server log.
    pub async fn start(&self) -> Result<()> {
        let inner = self.inner.clone();
        blocking(move || inner.cluster.pg_ctl_start()).await
    }

    /// [`stop`](Self::stop), then [`start`](Self::start).
    ///
    /// # Errors
    ///
    /// As those two.
    pub async fn restart(&self) -> Result<()> {
        self.stop().await?;
        self.start().await
    }

    /// Runs `sql` (one or more statements) with `psql` as `postgres` over the Unix socket and
    /// returns its output, unaligned, without headers (`-A -t`), trimmed.
    ///
    /// # Errors
    ///
    /// [`Error::Config`](pgdbm::Error::Config) with `psql`'s error output when a statement
    /// fails.
    pub async fn psql(&self, sql: &str) -> Result<String> {
        let inner = self.inner.clone();
        let sql = sql.to_owned();
        blocking(move || inner.cluster.psql(&sql)).await
    }

    /// The server log so far, for diagnostics.
    pub fn log(&self) -> String {
        self.inner.cluster.log()
    }
}
