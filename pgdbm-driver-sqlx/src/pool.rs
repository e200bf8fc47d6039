//! The pool ([`SqlxPool`] around a `sqlx::PgPool`) and the [`Driver`] implementation.

use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures_util::stream::BoxStream;
use pgdbm::driver::{
    ConnectTarget, InUse, PoolState, bounded_by_client, connect_with_retry, inspect_opened_pool,
    row_stream,
};
use pgdbm::driver::{
    Driver, NotificationConnector, PoolProvider, PooledConnection, PoolerSettings,
};
use pgdbm::{DatabaseConfig, Executor, Params, PoolStats, Result, Row};
use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgPool, Postgres};

use crate::conn::{self, Busy, SqlxConnection, Stop};
use crate::listen::ListenConnector;
use crate::options::{connect_options, pool_options, with_client_check};
use crate::pooled::{self, Op};
use crate::probe::probe;
use crate::statements::StatementTypes;
use crate::stats::Shared;

/// The driver marker: `Database::connect::<SqlxDriver>(&config)`.
#[derive(Debug, Clone, Copy, Default)]
pub struct SqlxDriver;

impl Driver for SqlxDriver {
    type Pool = SqlxPool;
    const NAME: &'static str = "sqlx";

    async fn connect(config: &DatabaseConfig) -> Result<SqlxPool> {
        SqlxPool::connect(config).await
    }

    fn notification_connector(config: &DatabaseConfig) -> Result<Arc<dyn NotificationConnector>> {
        Ok(Arc::new(ListenConnector::new(
            config,
            connect_options(config)?,
        )))
    }
}

/// `max_queries` needs a count that follows each connection across checkouts; sqlx 0.8 gives a
/// pooled connection neither an identity nor a place to keep one (its pool hooks see only the
/// connection's age), so the setting is refused rather than silently ignored.
fn refuse_max_queries(config: &DatabaseConfig) -> Result<()> {
    match config.max_queries() {
        None => Ok(()),
        Some(_) => Err(pgdbm::Error::config(
            "max_queries",
            "the sqlx driver cannot recycle connections after a number of statements (sqlx \
             gives a pooled connection no identity to count them by); use max_lifetime, or the \
             tokio-postgres driver",
        )),
    }
}

/// Multiplexing pipelines concurrent statements on one connection; sqlx 0.8 runs one statement
/// at a time on a connection (`&mut PgConnection`), so the setting is refused rather than
/// silently ignored.
fn refuse_multiplexing(config: &DatabaseConfig) -> Result<()> {
    if !config.multiplexing() {
        return Ok(());
    }
    Err(pgdbm::Error::config(
        "multiplexing",
        "the sqlx driver cannot run statements multiplexed on shared connections (sqlx runs \
         one statement at a time on a connection); turn multiplexing off, or use the \
         tokio-postgres driver",
    ))
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
    /// Opens listener connections with the pool's settings (`None` for a wrapped pool: made
    /// from its connect options when asked for).
    listen: Option<Arc<ListenConnector>>,
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
    /// and the path; for `max_queries` and `multiplexing`, which this driver cannot honour (see
    /// [`DatabaseConfigBuilder::max_queries`](pgdbm::DatabaseConfigBuilder::max_queries) and
    /// [`DatabaseConfigBuilder::multiplexing`](pgdbm::DatabaseConfigBuilder::multiplexing)).
    ///
    /// [`Error::Connect`]: pgdbm::Error::Connect
    /// [`Error::Database`]: pgdbm::Error::Database
    /// [`Error::Config`]: pgdbm::Error::Config
    pub async fn connect(config: &DatabaseConfig) -> Result<Self> {
        refuse_max_queries(config)?;
        refuse_multiplexing(config)?;
        let opts = connect_options(config)?;
        let listen = Arc::new(ListenConnector::new(config, opts.clone()));
        let shared = Arc::new(Shared::new(
            PoolState::new(ConnectTarget::new(config)),
            true,
        ));
        // Behind a session pooler the guardrails are `SET` first, on every new connection.
        let init_commands: Arc<[String]> = config
            .connect_sql()
            .into_iter()
            .chain(config.init_commands().iter().cloned())
            .collect();
        let version = connect_with_retry(config, || {
            shared
                .state
                .timed_connect(probe(&opts, &init_commands, config.connect_timeout()))
        })
        .await?;
        let opts = with_client_check(opts, config, version);
        let pool = pool_options(config, &shared, &init_commands).connect_lazy_with(opts);
        let this = SqlxPool {
            pool,
            shared,
            init_commands,
            connect_timeout: config.connect_timeout(),
            types: Arc::new(StatementTypes::new(config.pooler().is_transaction())),
            listen: Some(listen),
            pooler: PoolerSettings::new::<SqlxDriver>(config),
        };
        // The first pooled connection, so the pool is usable (and counted) on return.
        drop(this.get().await?);
        inspect_opened_pool(&this, &this.shared.state, config).await?;
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
            user: opts.get_username().to_owned(),
        });
        if pool.is_closed() {
            state.close();
        }
        let shared = Arc::new(Shared::new(state, false));
        SqlxPool {
            pool,
            shared,
            init_commands: Arc::new([]),
            connect_timeout: Duration::from_secs(10),
            types: Arc::default(),
            listen: None,
            pooler: PoolerSettings::default(),
        }
    }

    /// The sqlx pool, e.g. to run sqlx queries next to pgdbm's.
    pub fn inner(&self) -> &PgPool {
        &self.pool
    }

    /// A checked-out connection and its time in use.
    async fn get(&self) -> Result<(PoolConnection<Postgres>, InUse)> {
        match self
            .shared
            .state
            .checkout(pin!(self.pool.acquire()))
            .await?
        {
            Ok(conn) => Ok((conn, self.shared.state.in_use())),
            Err(e) => Err(self.acquire_error(e).await),
        }
    }

    /// What the pool counts, shared with its hooks.
    pub(crate) fn shared(&self) -> &Shared {
        &self.shared
    }

    /// The commands each new connection runs.
    pub(crate) fn init_commands(&self) -> &[String] {
        &self.init_commands
    }

    /// The bound of one connect.
    pub(crate) fn connect_timeout(&self) -> Duration {
        self.connect_timeout
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
        bounded_by_client(self.pooler.client_statement_timeout(), sql, work).await
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
        bounded_by_client(self.pooler.client_statement_timeout(), sql, work).await
    }
    fn fetch<'a>(&'a self, sql: &str, params: Params<'a>) -> BoxStream<'a, Result<Row>> {
        let sql = sql.to_owned();
        row_stream(move |tx| async move {
            let mut busy = Busy::owned(self.get().await?);
            let streamed = if self.types.unnamed {
                pooled::stream(busy.conn(), &self.types, &sql, params, false, &tx).await
            } else {
                conn::stream_rows(busy.conn(), &self.types, &sql, params, &tx).await
            };
            match streamed {
                Ok(()) => busy.finish(Ok(())),
                Err(Stop::Ended(e)) => busy.finish(Err(e)),
                // The rest of the statement is abandoned: the connection is closed.
                Err(Stop::Cut(e)) => {
                    drop(busy);
                    Err(e)
                }
            }
        })
    }
}

#[async_trait]
impl PoolProvider for SqlxPool {
    async fn acquire(&self) -> Result<PooledConnection> {
        let checkout = self.get().await?;
        Ok(Box::new(SqlxConnection::new(
            checkout,
            Arc::clone(&self.types),
        )))
    }

    fn stats(&self) -> PoolStats {
        self.shared.stats(&self.pool)
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

    fn notification_connector(&self) -> Result<Arc<dyn NotificationConnector>> {
        match &self.listen {
            Some(listen) => Ok(listen.clone()),
            None => Ok(Arc::new(ListenConnector::for_wrapped(
                (*self.pool.connect_options()).clone(),
            )?)),
        }
    }
}
