//! The pool ([`SqlxPool`] around a `sqlx::PgPool`) and the [`Driver`] implementation.

use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use pgdbm::driver::{ConnectTarget, PoolState, connect_with_retry};
use pgdbm::driver::{Driver, PoolProvider, PooledConnection, PoolerSettings};
use pgdbm::{BoxError, DatabaseConfig, Error, Executor, Params, PoolStats, Result, Row};
use sqlx::ConnectOptions as _;
use sqlx::Connection as _;
use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, Postgres};

use crate::conn::{self, Busy, SqlxConnection};
use crate::error::connect_cause;
use crate::pooled::{self, Op};
use crate::statements::StatementTypes;
use crate::tls;

/// The driver marker: `Database::connect::<SqlxDriver>(&config)`.
#[derive(Debug, Clone, Copy, Default)]
pub struct SqlxDriver;

impl Driver for SqlxDriver {
    type Pool = SqlxPool;
    const NAME: &'static str = "sqlx";

    async fn connect(config: &DatabaseConfig) -> Result<SqlxPool> {
        SqlxPool::connect(config).await
    }
}

/// The `before_acquire` hook's answer for a connection used recently: keep it. Zero-sized, so
/// boxing it does not allocate.
struct StillValid;

impl std::future::Future for StillValid {
    type Output = std::result::Result<bool, sqlx::Error>;

    fn poll(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        std::task::Poll::Ready(Ok(true))
    }
}

/// State shared by the pool and its `after_connect` hook.
#[derive(Debug)]
struct Shared {
    /// Closed flag, waiting checkouts, last connect failure, target.
    state: PoolState,
    timed_out: AtomicU64,
    created: AtomicU64,
    /// The highest `connections_closed` reported, so the counter never goes back.
    closed_seen: AtomicU64,
    /// `false` for a wrapped pool, whose connects pgdbm does not see.
    counts_connects: bool,
    /// When a full pool last probed the server after a timeout.
    last_probe: std::sync::Mutex<Option<std::time::Instant>>,
}

impl Shared {
    /// `true` (and the time noted) when a full pool has not probed the server for a second.
    fn probe_due(&self) -> bool {
        let mut last = self.last_probe.lock().unwrap_or_else(|p| p.into_inner());
        let now = std::time::Instant::now();
        if last.is_some_and(|t| now.duration_since(t) < Duration::from_secs(1)) {
            return false;
        }
        *last = Some(now);
        true
    }
}

/// sqlx's connect options for `config`.
///
/// # Errors
///
/// [`Error::Config`] for TLS settings this build cannot honour or certificate files that cannot
/// be read (see [`tls::apply`]).
pub(crate) fn connect_options(config: &DatabaseConfig) -> Result<PgConnectOptions> {
    let mut opts = PgConnectOptions::new_without_pgpass();
    opts = if config.host().starts_with('/') {
        opts.socket(config.host())
    } else {
        opts.host(config.host())
    };
    opts = opts
        .port(config.port())
        .database(config.database())
        .username(config.user())
        .application_name(config.application_name())
        // sqlx learns parameter types from its statement cache: keep at least one entry so that
        // no unnamed statement piles up (0 = "no cache" is treated as 1).
        .statement_cache_capacity(config.statement_cache_capacity().max(1))
        // Tracing spans are made by the pgdbm core, once for every driver.
        .disable_statement_logging();
    // Behind a pooler there are none, and sqlx would send an empty `options` for an empty list
    // (PgBouncer refuses the parameter): only set when there is something to send.
    let options: Vec<(String, String)> = config
        .startup_options()
        .into_iter()
        .filter(|(k, _)| k != "application_name")
        .map(|(k, v)| (k, pgdbm::driver::escape_option(&v)))
        .collect();
    if !options.is_empty() {
        opts = opts.options(options);
    }
    if config.pooler() != pgdbm::Pooler::None {
        // PgBouncer refuses startup parameters it does not track, and sqlx sends this one by
        // default; pgdbm reads floats in binary, where it changes nothing.
        opts = opts.extra_float_digits(None);
    }
    if let Some(password) = config.password() {
        opts = opts.password(password);
    }
    tls::apply(opts, config, &|name| std::env::var(name).ok())
}

/// Runs the init commands on a new connection.
async fn init(
    conn: &mut sqlx::PgConnection,
    commands: &[String],
) -> std::result::Result<(), Error> {
    for sql in commands {
        conn::batch_execute(conn, sql).await?;
    }
    Ok(())
}

/// One direct connect attempt (with the init commands), closed again: used to make the first
/// connection with retries and to find out why the pool cannot connect.
async fn probe(
    opts: &PgConnectOptions,
    commands: &[String],
    timeout: Duration,
) -> std::result::Result<(), BoxError> {
    let mut conn = match tokio::time::timeout(timeout, opts.connect()).await {
        Ok(Ok(conn)) => conn,
        Ok(Err(e)) => return Err(connect_cause(e)),
        Err(_) => return Err(format!("connect timed out after {timeout:?}").into()),
    };
    let result = init(&mut conn, commands).await;
    let _ = conn.close().await;
    result.map_err(|e| Box::new(e) as BoxError)
}

/// A pool of sqlx PostgreSQL connections (`sqlx::PgPool`), as a pgdbm [`PoolProvider`].
///
/// Open it with [`SqlxPool::connect`] (or `Database::connect::<SqlxDriver>`), or wrap the pool the
/// application already has with [`SqlxPool::from_pool`]. Share it as `Arc<dyn PoolProvider>`
/// among schema-scoped [`pgdbm::Database`] handles.
pub struct SqlxPool {
    pool: PgPool,
    shared: Arc<Shared>,
    init_commands: Arc<[String]>,
    connect_timeout: Duration,
    /// Parameter types of the statements run through this pool.
    types: Arc<StatementTypes>,
    /// The pooler in front of the server.
    pooler: PoolerSettings,
}

impl std::fmt::Debug for SqlxPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlxPool")
            .field("target", self.shared.state.target())
            .field("stats", &self.stats())
            .finish()
    }
}

impl SqlxPool {
    /// Opens the pool: one connection is made right away (with the configured retries and
    /// backoff, init commands included) to check the server can be reached, then the pool opens
    /// its connections (`min_connections` are kept open in the background).
    ///
    /// # Errors
    ///
    /// [`Error::Connect`] naming host, port, database and attempts made, whose source is the real
    /// cause (an authentication failure or unknown database is not retried and says so — as an
    /// [`Error::Database`] so `err.kind()` works; a failed TLS handshake says why);
    /// [`Error::Config`] for settings this driver cannot honour (`require`/`verify-*` without the
    /// `tls` feature) and for certificate or key files (`ssl_ca_file`, `ssl_cert_file`,
    /// `ssl_key_file`) that cannot be read or hold no PEM data of their kind, naming the setting
    /// and the path.
    pub async fn connect(config: &DatabaseConfig) -> Result<Self> {
        let opts = connect_options(config)?;
        let shared = Arc::new(Shared {
            state: PoolState::new(ConnectTarget::new(config)),
            timed_out: AtomicU64::new(0),
            created: AtomicU64::new(0),
            closed_seen: AtomicU64::new(0),
            last_probe: std::sync::Mutex::new(None),
            counts_connects: true,
        });
        // Behind a session pooler the guardrails are `SET` first, on every new connection.
        let init_commands: Arc<[String]> = config
            .connect_sql()
            .into_iter()
            .chain(config.init_commands().iter().cloned())
            .collect();
        connect_with_retry(config, || {
            probe(&opts, &init_commands, config.connect_timeout())
        })
        .await?;
        let hook_shared = shared.clone();
        let hook_commands = init_commands.clone();
        let pool = PgPoolOptions::new()
            .max_connections(config.max_connections())
            .min_connections(config.min_connections())
            .acquire_timeout(config.acquire_timeout())
            .idle_timeout(config.idle_timeout())
            .max_lifetime(config.max_lifetime())
            // No ping at every acquire (sqlx's default): only a connection idle for a while may
            // have been closed by the server unnoticed (sqlx reads the socket only when it
            // runs a statement), so only such a one is pinged, and replaced if it is gone.
            .test_before_acquire(false)
            .before_acquire(|conn, meta| {
                if meta.idle_for < pgdbm::driver::VALIDATE_AFTER_IDLE {
                    // The common case, at every acquire under load: a zero-sized future, so
                    // sqlx's box for the hook's answer allocates nothing.
                    return Box::pin(StillValid);
                }
                Box::pin(async move {
                    match conn.ping().await {
                        Ok(()) => Ok(true),
                        Err(e) => {
                            tracing::debug!(error = %e, "pgdbm: an idle pooled connection is gone, replacing it");
                            Ok(false)
                        }
                    }
                })
            })
            .after_connect(move |conn, _meta| {
                let shared = hook_shared.clone();
                let commands = hook_commands.clone();
                Box::pin(async move {
                    let mut result = Ok(());
                    for sql in commands.iter() {
                        if let Err(e) =
                            sqlx::Executor::execute(&mut *conn, sqlx::raw_sql(sql)).await
                        {
                            result = Err(crate::error::map(e, sql));
                            break;
                        }
                    }
                    match result {
                        Ok(()) => {
                            shared.created.fetch_add(1, Ordering::Relaxed);
                            shared.state.connect_succeeded();
                            Ok(())
                        }
                        Err(e) => {
                            shared.state.connect_failed(&e);
                            Err(sqlx::Error::Configuration(Box::new(e)))
                        }
                    }
                })
            })
            .connect_lazy_with(opts);
        let this = SqlxPool {
            pool,
            shared,
            init_commands,
            connect_timeout: config.connect_timeout(),
            types: Arc::new(StatementTypes::new(config.pooler().is_transaction())),
            pooler: PoolerSettings::new::<SqlxDriver>(config),
        };
        // The first pooled connection, so the pool is usable (and counted) on return.
        drop(this.get().await?);
        Ok(this)
    }

    /// Wraps a pool the application already has. pgdbm runs its statements on the pool's
    /// connections as they are (its connect options and `after_connect` hook apply; the server
    /// settings of a [`DatabaseConfig`] do not). Keep sqlx's statement cache enabled (its default):
    /// pgdbm learns parameter types from it.
    ///
    /// Closing the returned pool closes `pool` (it is the same pool); the counters of
    /// [`PoolProvider::stats`] that sqlx does not expose (`connections_created`/`closed`) stay 0.
    pub fn from_pool(pool: PgPool) -> Self {
        let opts = pool.connect_options();
        let state = PoolState::new(ConnectTarget {
            host: opts
                .get_socket()
                .map_or_else(|| opts.get_host().to_owned(), |s| s.display().to_string()),
            port: opts.get_port(),
            database: opts.get_database().unwrap_or_default().to_owned(),
        });
        if pool.is_closed() {
            state.close();
        }
        let shared = Arc::new(Shared {
            state,
            timed_out: AtomicU64::new(0),
            created: AtomicU64::new(0),
            closed_seen: AtomicU64::new(0),
            last_probe: std::sync::Mutex::new(None),
            counts_connects: false,
        });
        SqlxPool {
            pool,
            shared,
            init_commands: Arc::new([]),
            connect_timeout: Duration::from_secs(10),
            types: Arc::default(),
            pooler: PoolerSettings::default(),
        }
    }

    /// The sqlx pool, e.g. to run sqlx queries next to pgdbm's.
    pub fn inner(&self) -> &PgPool {
        &self.pool
    }

    async fn get(&self) -> Result<PoolConnection<Postgres>> {
        match self
            .shared
            .state
            .checkout(pin!(self.pool.acquire()))
            .await?
        {
            Ok(conn) => Ok(conn),
            Err(e) => Err(self.acquire_error(e).await),
        }
    }

    async fn acquire_error(&self, err: sqlx::Error) -> Error {
        match err {
            sqlx::Error::PoolClosed => Error::PoolClosed,
            sqlx::Error::PoolTimedOut => {
                self.shared.timed_out.fetch_add(1, Ordering::Relaxed);
                if self.is_closed() {
                    return Error::PoolClosed;
                }
                let mut last = self.shared.state.last_connect_error();
                // sqlx retries refused connections silently until the deadline: find out why it
                // could not connect, when the pool is not full — or when it is, at most once a
                // second, since sqlx counts connections it is still trying to open in its size
                // (all of them, while the server is down). The failure is recorded until a
                // connect succeeds.
                if last.is_none()
                    && (self.pool.size() < self.pool.options().get_max_connections()
                        || self.shared.probe_due())
                {
                    let opts = self.pool.connect_options();
                    let timeout = self.connect_timeout.min(Duration::from_secs(2));
                    if let Err(cause) = probe(&opts, &self.init_commands, timeout).await {
                        self.shared.state.connect_failed(&cause);
                        last = Some(cause.to_string());
                    }
                }
                Error::pool_timeout(
                    self.pool.options().get_acquire_timeout(),
                    last.map(|msg| self.shared.state.connect_error(1, msg.into())),
                )
            }
            other => {
                let cause = connect_cause(other);
                self.shared.state.connect_failed(&cause);
                self.shared.state.connect_error(1, cause)
            }
        }
    }
}

impl SqlxPool {
    /// Behind a transaction pooler: `op` on a pooled connection, bounded client side by the
    /// configured `statement_timeout` (on expiry the statement is abandoned and its connection
    /// closed; sqlx cannot send a CancelRequest).
    async fn pooled(&self, sql: &str, params: Params<'_>, op: Op) -> Result<pooled::Out> {
        let work = async {
            let mut busy = Busy::owned(self.get().await?);
            let result = pooled::run(busy.conn(), &self.types, sql, params, false, op).await;
            busy.finish(result)
        };
        match self.pooler.client_statement_timeout() {
            None => work.await,
            Some(bound) => tokio::time::timeout(bound, work)
                .await
                .unwrap_or_else(|_| Err(pgdbm::driver::client_timeout_error(sql, bound))),
        }
    }
}

#[async_trait]
impl Executor for SqlxPool {
    async fn execute(&self, sql: &str, params: Params<'_>) -> Result<u64> {
        if self.types.unnamed {
            return self
                .pooled(sql, params, Op::Execute)
                .await
                .map(pooled::Out::count);
        }
        let mut busy = Busy::owned(self.get().await?);
        let result = conn::execute(busy.conn(), &self.types, sql, params).await;
        busy.finish(result)
    }
    async fn fetch_all(&self, sql: &str, params: Params<'_>) -> Result<Vec<Row>> {
        if self.types.unnamed {
            return self
                .pooled(sql, params, Op::FetchAll)
                .await
                .map(pooled::Out::rows);
        }
        let mut busy = Busy::owned(self.get().await?);
        let result = conn::fetch_all(busy.conn(), &self.types, sql, params).await;
        busy.finish(result)
    }
    async fn fetch_optional(&self, sql: &str, params: Params<'_>) -> Result<Option<Row>> {
        if self.types.unnamed {
            return self
                .pooled(sql, params, Op::FetchOptional)
                .await
                .map(pooled::Out::row);
        }
        let mut busy = Busy::owned(self.get().await?);
        let result = conn::fetch_optional(busy.conn(), &self.types, sql, params).await;
        busy.finish(result)
    }
    async fn batch_execute(&self, sql: &str) -> Result<()> {
        let work = async {
            let mut busy = Busy::owned(self.get().await?);
            let result = conn::batch_execute(busy.conn(), sql).await;
            busy.finish(result)
        };
        match self.pooler.client_statement_timeout() {
            None => work.await,
            Some(bound) => tokio::time::timeout(bound, work)
                .await
                .unwrap_or_else(|_| Err(pgdbm::driver::client_timeout_error(sql, bound))),
        }
    }
}

#[async_trait]
impl PoolProvider for SqlxPool {
    async fn acquire(&self) -> Result<PooledConnection> {
        let conn = self.get().await?;
        Ok(Box::new(SqlxConnection::new(conn, Arc::clone(&self.types))))
    }

    fn stats(&self) -> PoolStats {
        // sqlx reads size and idle count separately: a connection opened or closed in between
        // could make idle exceed size.
        let size = self.pool.size();
        let idle = u32::try_from(self.pool.num_idle())
            .unwrap_or(u32::MAX)
            .min(size);
        let created = self.shared.created.load(Ordering::Relaxed);
        // sqlx does not count closes. `size` includes connections being opened (not yet in
        // `created`), so `created - size` is a lower bound of the closes, which may dip while a
        // connection is opened: report the highest bound seen, so the counter is monotonic.
        let closed = if self.shared.counts_connects {
            let bound = created.saturating_sub(u64::from(size));
            self.shared
                .closed_seen
                .fetch_max(bound, Ordering::Relaxed)
                .max(bound)
        } else {
            0
        };
        PoolStats::new(size, idle, self.pool.options().get_max_connections())
            .with_waiting(self.shared.state.waiting())
            .with_counters(
                self.shared.timed_out.load(Ordering::Relaxed),
                created,
                closed,
            )
    }

    async fn close(&self) {
        if !self.shared.state.close() {
            return;
        }
        // sqlx marks the pool closed at once and closes idle connections; its future then waits
        // for checked-out connections to come back (they are closed when returned): do not wait
        // for those longer than a moment.
        let _ = tokio::time::timeout(Duration::from_secs(1), self.pool.close()).await;
    }

    fn is_closed(&self) -> bool {
        self.shared.state.is_closed() || self.pool.is_closed()
    }

    fn driver_name(&self) -> &'static str {
        SqlxDriver::NAME
    }

    fn pooler(&self) -> &PoolerSettings {
        &self.pooler
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(not(feature = "tls"))]
    #[test]
    fn tls_modes_without_a_backend_are_a_config_error() {
        let config = DatabaseConfig::builder()
            .url("postgresql://u:pw@db.example:5433/app?sslmode=require")
            .build()
            .expect("valid config");
        let err = connect_options(&config).expect_err("require needs TLS");
        assert!(
            matches!(&err, Error::Config { field, .. } if field == "ssl_mode"),
            "{err}"
        );
        assert!(!err.to_string().contains("pw"), "{err}");
    }

    #[cfg(feature = "tls")]
    #[test]
    fn tls_modes_with_the_backend() {
        let config = DatabaseConfig::builder()
            .url("postgresql://u:pw@db.example:5433/app?sslmode=require")
            .build()
            .expect("valid config");
        let opts = connect_options(&config).expect("require is supported");
        assert!(matches!(
            opts.get_ssl_mode(),
            sqlx::postgres::PgSslMode::Require
        ));
    }

    #[test]
    fn options_carry_the_config() {
        let config = DatabaseConfig::builder()
            .url("postgresql://u@db.example:5433/app?sslmode=disable")
            .server_setting("search_path", "a, b")
            .application_name("svc")
            .build()
            .expect("valid config");
        let opts = connect_options(&config).expect("options");
        assert_eq!(opts.get_host(), "db.example");
        assert_eq!(opts.get_port(), 5433);
        assert_eq!(opts.get_database(), Some("app"));
        assert_eq!(opts.get_username(), "u");
        assert_eq!(opts.get_application_name(), Some("svc"));
        let options = opts.get_options().unwrap_or_default();
        assert!(options.contains("-c statement_timeout=60000"), "{options}");
        assert!(options.contains("-c search_path=a,\\ b"), "{options}");
        let socket = DatabaseConfig::builder()
            .host("/var/run/postgresql")
            .build()
            .expect("valid config");
        let opts = connect_options(&socket).expect("options");
        assert_eq!(
            opts.get_socket()
                .map(|p| p.display().to_string())
                .as_deref(),
            Some("/var/run/postgresql")
        );
    }
}
