//! The bb8 connection manager, the pool and the [`Driver`] implementation.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use bb8::{ManageConnection, RunError};
use pgdbm::connect::{
    CheckoutGate, ConnectTarget, LastConnectError, TlsError, connect_with_retry, escape_option,
};
use pgdbm::{
    BoxError, DatabaseConfig, Driver, Error, Executor, Params, PoolProvider, PoolStats,
    PooledConnection, Result, Row,
};

#[cfg(feature = "tls")]
use crate::tls::MakeRustls as Tls;
#[cfg(not(feature = "tls"))]
use tokio_postgres::NoTls as Tls;

use crate::conn::{PgConn, TokioPostgresConnection};
use crate::error::db_error;

/// The driver marker: `Database::connect::<TokioPostgres>(&config)`.
#[derive(Debug, Clone, Copy, Default)]
pub struct TokioPostgres;

impl Driver for TokioPostgres {
    type Pool = TokioPostgresPool;
    const NAME: &'static str = "tokio-postgres";

    async fn connect(config: &DatabaseConfig) -> Result<TokioPostgresPool> {
        TokioPostgresPool::connect(config).await
    }
}

/// State shared by the manager and the pool.
#[derive(Debug)]
struct Shared {
    /// Closed flag and waiting checkouts.
    gate: CheckoutGate,
    last_connect_error: LastConnectError,
    target: ConnectTarget,
    /// Connections made outside bb8 (the first one, handed to it with `add`), and those of them
    /// closed at once: bb8 counts neither.
    made_outside: AtomicU64,
    closed_outside: AtomicU64,
}

/// bb8's connection manager: opens tokio-postgres connections with the configured settings.
pub(crate) struct Manager {
    pg: tokio_postgres::Config,
    tls: Tls,
    /// For `prefer`/`allow`: the same settings without TLS, tried when the TLS handshake fails
    /// (libpq does the same).
    plain: Option<tokio_postgres::Config>,
    init_commands: Vec<String>,
    cache_capacity: usize,
    /// Bounds a whole connect attempt: TCP, TLS, startup, authentication and init commands
    /// (tokio-postgres' own `connect_timeout` covers the TCP connect only).
    connect_timeout: Duration,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Manager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Manager")
            .field("target", &self.shared.target)
            .finish_non_exhaustive()
    }
}

fn pg_config(config: &DatabaseConfig) -> Result<tokio_postgres::Config> {
    let mut pg = tokio_postgres::Config::new();
    if is_unix_socket(config.host()) {
        pg.host_path(config.host());
    } else {
        pg.host(config.host());
    }
    pg.port(config.port())
        .dbname(config.database())
        .user(config.user())
        .application_name(config.application_name())
        .connect_timeout(config.connect_timeout());
    if let Some(password) = config.password() {
        pg.password(password);
    }
    pg.ssl_mode(ssl_mode(config)?);
    let options: Vec<String> = config
        .startup_settings()
        .into_iter()
        .filter(|(k, _)| k != "application_name")
        .map(|(k, v)| format!("-c {}={}", k, escape_option(&v)))
        .collect();
    pg.options(options.join(" "));
    Ok(pg)
}

/// tokio-postgres' TLS mode for the configuration (see `tls.rs` for the certificate checks).
#[cfg(feature = "tls")]
fn ssl_mode(config: &DatabaseConfig) -> Result<tokio_postgres::config::SslMode> {
    Ok(crate::tls::ssl_mode(config.ssl().mode, config.host()))
}

/// Without the `tls` feature: `prefer` falls back to plain connections, what needs TLS is refused.
#[cfg(not(feature = "tls"))]
fn ssl_mode(config: &DatabaseConfig) -> Result<tokio_postgres::config::SslMode> {
    use pgdbm::SslMode;
    use tokio_postgres::config::SslMode as PgSslMode;
    Ok(match config.ssl().mode {
        _ if is_unix_socket(config.host()) => PgSslMode::Disable,
        SslMode::Disable => PgSslMode::Disable,
        SslMode::Allow | SslMode::Prefer => PgSslMode::Prefer,
        mode => {
            return Err(Error::config(
                "ssl_mode",
                format!(
                    "ssl_mode {mode} needs TLS, which this build of pgdbm-driver-tokio-postgres \
                     lacks (enable its `tls` feature)"
                ),
            ));
        }
    })
}

/// `true` when `host` is a Unix-socket directory.
pub(crate) fn is_unix_socket(host: &str) -> bool {
    host.starts_with('/')
}

/// The TLS connector of a pool, built once.
#[cfg(feature = "tls")]
fn tls(config: &DatabaseConfig) -> Result<Tls> {
    Tls::new(config.ssl(), config.host())
}

#[cfg(not(feature = "tls"))]
fn tls(_config: &DatabaseConfig) -> Result<Tls> {
    Ok(Tls)
}

/// `pg` without TLS, when a failed handshake is to be followed by a plain attempt (`prefer`).
fn plain_fallback(pg: &tokio_postgres::Config) -> Option<tokio_postgres::Config> {
    use tokio_postgres::config::SslMode as PgSslMode;
    (cfg!(feature = "tls") && pg.get_ssl_mode() == PgSslMode::Prefer).then(|| {
        let mut plain = pg.clone();
        plain.ssl_mode(PgSslMode::Disable);
        plain
    })
}

/// `true` when the TLS handshake failed after the server agreed to TLS.
fn handshake_failed(err: &tokio_postgres::Error) -> bool {
    #[cfg(feature = "tls")]
    return crate::tls::handshake_failed(err);
    #[cfg(not(feature = "tls"))]
    {
        let _ = err;
        false
    }
}

impl Manager {
    /// One connect attempt, bounded as a whole by the connect timeout (as libpq's
    /// `connect_timeout`), so a server that accepts and never answers cannot hang it.
    async fn open(&self) -> std::result::Result<PgConn, BoxError> {
        match tokio::time::timeout(self.connect_timeout, self.establish()).await {
            Ok(result) => result,
            Err(_) => Err(format!(
                "connect timed out after {:?} (TCP, TLS, startup and authentication)",
                self.connect_timeout
            )
            .into()),
        }
    }

    /// One connect attempt, with the init commands run on the new connection.
    #[cfg_attr(not(feature = "tls"), allow(clippy::clone_on_copy))] // `NoTls` is `Copy`
    async fn establish(&self) -> std::result::Result<PgConn, BoxError> {
        let (client, connection) = match self.pg.connect(self.tls.clone()).await {
            Ok(pair) => pair,
            Err(e) => match &self.plain {
                Some(plain) if handshake_failed(&e) => {
                    tracing::debug!(
                        error = %connect_cause(e),
                        "pgdbm: TLS handshake failed, connecting without TLS (ssl_mode prefer)"
                    );
                    plain
                        .connect(self.tls.clone())
                        .await
                        .map_err(connect_cause)?
                }
                _ => return Err(connect_cause(e)),
            },
        };
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "pgdbm: connection closed with an error");
            }
        });
        for sql in &self.init_commands {
            client
                .batch_execute(sql)
                .await
                .map_err(|e| Box::new(crate::error::map(e, sql)) as BoxError)?;
        }
        Ok(PgConn::new(client, self.cache_capacity))
    }
}

/// The cause of a failed connect: the server's own error when it sent one (an authentication
/// failure says so), a [`TlsError`] when TLS failed for good (a refused certificate, a server
/// without TLS where it is required), the driver's error otherwise.
fn connect_cause(err: tokio_postgres::Error) -> BoxError {
    if let Some(db) = err.as_db_error() {
        return Box::new(Error::from(db_error(db)));
    }
    if let Some(source) = std::error::Error::source(&err) {
        if let Some(tls) = source.downcast_ref::<TlsError>() {
            return Box::new(tls.clone());
        }
        // tokio-postgres' own words when the server asks for a password the config lacks:
        // a configuration error, which retrying cannot fix.
        if source.to_string() == "password missing" {
            return Box::new(Error::config(
                "password",
                "the server asks for a password and none is configured",
            ));
        }
        // tokio-postgres' own words when the server answers the TLS request with "no".
        if source.to_string() == "server does not support TLS" {
            return Box::new(TlsError::new(
                "the server does not support TLS, and ssl_mode (require, verify-ca or \
                 verify-full) requires it",
            ));
        }
    }
    Box::new(err)
}

impl ManageConnection for Manager {
    type Connection = PgConn;
    type Error = Error;

    async fn connect(&self) -> Result<PgConn> {
        if self.shared.gate.is_closed() {
            return Err(Error::PoolClosed);
        }
        match self.open().await {
            Ok(conn) => {
                self.shared.last_connect_error.record(None);
                Ok(conn)
            }
            Err(cause) => {
                self.shared
                    .last_connect_error
                    .record(Some(cause.to_string()));
                Err(self.shared.target.error(1, cause))
            }
        }
    }

    /// Run at every checkout (`test_on_check_out`), so it must stay free: no round trip, only
    /// whether the connection's task has seen the socket close (a backend ended by
    /// `pg_terminate_backend`, a server restart). Such a connection is dropped and the next idle
    /// one (or a new one) is handed out instead, so the caller's statement does not fail on it.
    async fn is_valid(&self, conn: &mut PgConn) -> Result<()> {
        if conn.is_broken() {
            return Err(Error::connection_lost(
                "",
                "the pooled connection was closed while idle",
                None,
            ));
        }
        Ok(())
    }

    fn has_broken(&self, conn: &mut PgConn) -> bool {
        self.shared.gate.is_closed() || conn.is_broken()
    }
}

/// How often bb8 closes idle connections past `idle_timeout` or `max_lifetime`: bb8's default
/// (30 s) would keep a connection up to 30 s past a shorter limit, so half the shorter limit,
/// between 10 ms and 30 s.
fn reaper_rate(config: &DatabaseConfig) -> Duration {
    [config.idle_timeout(), config.max_lifetime()]
        .into_iter()
        .flatten()
        .map(|limit| limit / 2)
        .min()
        .unwrap_or(Duration::from_secs(30))
        .clamp(Duration::from_millis(10), Duration::from_secs(30))
}

/// A bb8 pool of tokio-postgres connections, each with its own prepared-statement cache.
///
/// Open it with [`TokioPostgresPool::connect`] (or `Database::connect::<TokioPostgres>`) and
/// share it as `Arc<dyn PoolProvider>` among schema-scoped [`pgdbm::Database`] handles.
pub struct TokioPostgresPool {
    pool: bb8::Pool<Manager>,
    shared: Arc<Shared>,
    acquire_timeout: Duration,
    max_size: u32,
}

impl std::fmt::Debug for TokioPostgresPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokioPostgresPool")
            .field("target", &self.shared.target)
            .field("stats", &self.stats())
            .finish()
    }
}

impl TokioPostgresPool {
    /// Opens the pool: one connection is made right away (with the configured retries and
    /// backoff), the rest of `min_connections` in the background.
    ///
    /// # Errors
    ///
    /// [`Error::Connect`] naming host, port, database and attempts made, whose source is the real
    /// cause (an authentication failure or a refused server certificate is not retried and says
    /// so); [`Error::Config`] for settings this driver cannot honour, and for TLS files
    /// (`ssl_ca_file`, `ssl_cert_file`, `ssl_key_file`) that cannot be read or hold no usable
    /// PEM certificate or key (the error names the field and the path).
    pub async fn connect(config: &DatabaseConfig) -> Result<Self> {
        let shared = Arc::new(Shared {
            gate: CheckoutGate::new(),
            last_connect_error: LastConnectError::default(),
            target: ConnectTarget::new(config),
            made_outside: AtomicU64::new(0),
            closed_outside: AtomicU64::new(0),
        });
        let pg = pg_config(config)?;
        let manager = Manager {
            plain: plain_fallback(&pg),
            pg,
            tls: tls(config)?,
            init_commands: config.init_commands().to_vec(),
            cache_capacity: config.statement_cache_capacity(),
            connect_timeout: config.connect_timeout(),
            shared: shared.clone(),
        };
        let first = connect_with_retry(config, || manager.open()).await?;
        let pool = bb8::Pool::builder()
            .max_size(config.max_connections())
            .min_idle(Some(config.min_connections()))
            .connection_timeout(config.acquire_timeout())
            .idle_timeout(config.idle_timeout())
            .max_lifetime(config.max_lifetime())
            // `is_valid` is a flag check, not a round trip.
            .test_on_check_out(true)
            .reaper_rate(reaper_rate(config))
            .retry_connection(false)
            .build_unchecked(manager);
        shared.made_outside.fetch_add(1, Ordering::Relaxed);
        if pool.add(first).is_err() {
            shared.closed_outside.fetch_add(1, Ordering::Relaxed);
            tracing::debug!("pgdbm: pool full before the first connection was added");
        }
        Ok(TokioPostgresPool {
            pool,
            shared,
            acquire_timeout: config.acquire_timeout(),
            max_size: config.max_connections(),
        })
    }

    async fn get(&self) -> Result<bb8::PooledConnection<'_, Manager>> {
        let get = async { self.pool.get().await.map_err(|e| self.run_error(e)) };
        self.shared.gate.checkout(get).await
    }

    fn run_error(&self, err: RunError<Error>) -> Error {
        match err {
            RunError::User(e) => e,
            RunError::TimedOut => {
                if self.shared.gate.is_closed() {
                    return Error::PoolClosed;
                }
                self.shared
                    .last_connect_error
                    .pool_timeout(&self.shared.target, self.acquire_timeout)
            }
        }
    }
}

#[async_trait]
impl Executor for TokioPostgresPool {
    async fn execute(&self, sql: &str, params: Params<'_>) -> Result<u64> {
        self.get().await?.execute_direct(sql, params).await
    }
    async fn fetch_all(&self, sql: &str, params: Params<'_>) -> Result<Vec<Row>> {
        self.get().await?.fetch_all_direct(sql, params).await
    }
    async fn fetch_optional(&self, sql: &str, params: Params<'_>) -> Result<Option<Row>> {
        self.get().await?.fetch_optional_direct(sql, params).await
    }
    async fn batch_execute(&self, sql: &str) -> Result<()> {
        self.get().await?.batch_execute_direct(sql).await
    }
}

#[async_trait]
impl PoolProvider for TokioPostgresPool {
    async fn acquire(&self) -> Result<PooledConnection> {
        let get = async { self.pool.get_owned().await.map_err(|e| self.run_error(e)) };
        let conn = self.shared.gate.checkout(get).await?;
        Ok(Box::new(TokioPostgresConnection { conn }))
    }

    fn stats(&self) -> PoolStats {
        let state = self.pool.state();
        let s = &state.statistics;
        let closed = s.connections_closed_broken
            + s.connections_closed_invalid
            + s.connections_closed_max_lifetime
            + s.connections_closed_idle_timeout;
        let created = s.connections_created + self.shared.made_outside.load(Ordering::Relaxed);
        let closed = closed + self.shared.closed_outside.load(Ordering::Relaxed);
        // bb8's `pending_gets` never forgets a cancelled checkout: the gate counts waiters.
        PoolStats::new(state.connections, state.idle_connections, self.max_size)
            .with_waiting(self.shared.gate.waiting())
            .with_counters(s.get_timed_out, created, closed)
    }

    async fn close(&self) {
        if !self.shared.gate.close() {
            return;
        }
        // Check out every idle connection once: returned while closed, each is closed.
        let idle = self.pool.state().idle_connections;
        for _ in 0..idle {
            match tokio::time::timeout(Duration::from_millis(100), self.pool.get()).await {
                Ok(Ok(conn)) => drop(conn),
                _ => break,
            }
        }
    }

    fn is_closed(&self) -> bool {
        self.shared.gate.is_closed()
    }

    fn driver_name(&self) -> &'static str {
        TokioPostgres::NAME
    }
}
