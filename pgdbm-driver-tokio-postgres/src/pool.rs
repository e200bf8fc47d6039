//! The pool ([`TokioPostgresPool`]), the connection it lends ([`TokioPostgresConnection`]) and
//! the [`Driver`] implementation.

use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use bb8::RunError;
use futures_util::stream::BoxStream;
use pgdbm::driver::{Abandoned, ConnectTarget, InUse, PoolState, connect_with_retry};
use pgdbm::driver::{
    Connection, Driver, NotificationConnector, PoolProvider, PooledConnection, PoolerSettings,
};
use pgdbm::driver::{bounded_by_client, inspect_opened_pool, recover_in_background, row_stream};
use pgdbm::{DatabaseConfig, Error, Executor, Params, PoolStats, Result, Row, Value};
use tokio_postgres::Client;

use crate::cancel::CancelTarget;
use crate::conn::{PgConn, Stop, in_flight};
use crate::listen::ListenConnector;
use crate::manager::{Manager, Shared};
use crate::multiplex::Multiplexer;
use crate::settings::{pg_config, plain_fallback, reaper_rate, tls};

/// The driver marker: `Database::connect::<TokioPostgres>(&config)`.
#[derive(Debug, Clone, Copy, Default)]
pub struct TokioPostgres;

impl Driver for TokioPostgres {
    type Pool = TokioPostgresPool;
    const NAME: &'static str = "tokio-postgres";

    async fn connect(config: &DatabaseConfig) -> Result<TokioPostgresPool> {
        TokioPostgresPool::connect(config).await
    }

    fn notification_connector(config: &DatabaseConfig) -> Result<Arc<dyn NotificationConnector>> {
        Ok(Arc::new(ListenConnector::new(config)?))
    }
}

/// A connection checked out of a [`TokioPostgresPool`](crate::TokioPostgresPool).
pub struct TokioPostgresConnection {
    pub(crate) conn: bb8::PooledConnection<'static, Manager>,
    /// Dropped after `conn` went back: `db.client.connection.use_time`.
    _in_use: InUse,
}

impl std::fmt::Debug for TokioPostgresConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokioPostgresConnection")
            .field("conn", &*self.conn)
            .finish()
    }
}

impl TokioPostgresConnection {
    /// The underlying tokio-postgres client, for what pgdbm does not cover (see [`client`] to
    /// reach it from `Database::acquire`'s connection).
    pub fn client(&self) -> &Client {
        self.conn.client()
    }
}

/// The tokio-postgres client of a connection checked out of a [`TokioPostgresPool`]
/// (`Database::acquire`, `PoolProvider::acquire`), or `None` for another driver's connection:
/// the escape hatch for what pgdbm does not cover (`LISTEN`, `COPY … TO STDOUT`, portals, the
/// client's own types). Statements run on it bypass templates, monitoring and pgdbm's handling
/// of cancelled statements; leave the session as you found it (no open transaction, no session
/// settings changed), as it goes back to the pool.
///
/// ```no_run
/// # async fn demo(db: pgdbm::Database) -> pgdbm::Result<()> {
/// let conn = db.acquire().await?;
/// let client = pgdbm_driver_tokio_postgres::client(&conn).expect("a tokio-postgres pool");
/// let row = client.query_one("SELECT 40 + $1::int4", &[&2_i32]).await.expect("query");
/// assert_eq!(row.get::<_, i32>(0), 42);
/// # Ok(()) }
/// ```
pub fn client(conn: &PooledConnection) -> Option<&Client> {
    conn.as_any()
        .downcast_ref::<TokioPostgresConnection>()
        .map(TokioPostgresConnection::client)
}

/// A pool connection lent to one of the pool's own statements: marked busy while it runs. If
/// the statement's future is dropped before [`finish`](Lent::finish), the connection stays
/// checked out while a background task cancels the statement and waits for the connection to
/// answer a round trip ([`recover_in_background`]); it is then pooled again, or closed.
struct Lent(Option<(bb8::PooledConnection<'static, Manager>, InUse)>);

impl Lent {
    fn new(conn: bb8::PooledConnection<'static, Manager>, in_use: InUse) -> Self {
        conn.mark_busy();
        Lent(Some((conn, in_use)))
    }

    fn conn(&self) -> &PgConn {
        &self.0.as_ref().expect("taken only by finish and drop").0
    }

    /// The statement finished (with `out`): the connection goes back to the pool idle.
    fn finish<T>(mut self, out: T) -> T {
        if let Some((conn, in_use)) = self.0.take() {
            conn.mark_idle();
            drop(conn);
            drop(in_use);
        }
        out
    }
}

impl Drop for Lent {
    fn drop(&mut self) {
        if let Some((conn, in_use)) = self.0.take() {
            recover_in_background(Recovering {
                conn,
                _in_use: in_use,
            });
        }
    }
}

/// A pool connection whose statement was abandoned, being recovered (still in use until it is
/// pooled again or closed).
struct Recovering {
    conn: bb8::PooledConnection<'static, Manager>,
    /// Dropped after `conn`: `db.client.connection.use_time`.
    _in_use: InUse,
}

impl Abandoned for Recovering {
    fn cancel(&self) -> impl std::future::Future<Output = Result<()>> + Send {
        self.conn.cancel_request()
    }

    async fn run(&mut self, sql: &'static str) -> Result<()> {
        self.conn.batch_execute_direct(sql).await
    }

    fn release(self, clean: bool) {
        if clean {
            self.conn.mark_idle();
        }
        // Still marked busy when not clean: the pool closes it.
    }
}

#[async_trait]
impl Executor for TokioPostgresConnection {
    async fn execute(&self, sql: &str, params: Params<'_>) -> Result<u64> {
        self.conn.execute(sql, params).await
    }
    async fn fetch_all(&self, sql: &str, params: Params<'_>) -> Result<Vec<Row>> {
        self.conn.fetch_all(sql, params).await
    }
    async fn fetch_optional(&self, sql: &str, params: Params<'_>) -> Result<Option<Row>> {
        self.conn.fetch_optional(sql, params).await
    }
    async fn batch_execute(&self, sql: &str) -> Result<()> {
        in_flight!(self.conn, self.conn.batch_execute_direct(sql))
    }
    fn fetch<'a>(&'a self, sql: &str, params: Params<'a>) -> BoxStream<'a, Result<Row>> {
        self.conn.fetch_stream(sql, params)
    }
}

#[async_trait]
impl Connection for TokioPostgresConnection {
    async fn copy_in(&self, table: &str, columns: &[&str], rows: &[Vec<Value>]) -> Result<u64> {
        in_flight!(self.conn, self.conn.copy_in(table, columns, rows))
    }

    fn discard(&mut self) {
        self.conn.mark_broken();
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

/// A bb8 pool of tokio-postgres connections, each with its own prepared-statement cache.
///
/// Open it with [`TokioPostgresPool::connect`] (or `Database::connect::<TokioPostgres>`) and
/// share it as `Arc<dyn PoolProvider>` among schema-scoped [`pgdbm::Database`] handles.
///
/// With `multiplexing` on (not behind a transaction pooler) it also keeps
/// `multiplexed_connections` shared connections, outside the bb8 pool and its [`PoolStats`],
/// on which its autocommit `execute`/`fetch_all`/`fetch_optional` run pipelined (see pgdbm's
/// crate docs, "Multiplexing").
pub struct TokioPostgresPool {
    pool: bb8::Pool<Manager>,
    shared: Arc<Shared>,
    acquire_timeout: Duration,
    max_size: u32,
    /// Opens listener connections with the pool's settings.
    listen: Arc<ListenConnector>,
    /// The pooler in front of the server.
    pooler: PoolerSettings,
    /// With `multiplexing`: the shared connections autocommit statements run on.
    multiplexer: Option<Multiplexer>,
}

impl std::fmt::Debug for TokioPostgresPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokioPostgresPool")
            .field("target", self.shared.state.target())
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
            state: PoolState::new(ConnectTarget::new(config)),
            made_outside: AtomicU64::new(0),
            closed_outside: AtomicU64::new(0),
        });
        let pg = pg_config(config)?;
        let tls = tls(config)?;
        let listen = Arc::new(ListenConnector::with_parts(config, pg.clone(), tls.clone()));
        let manager = Manager {
            plain: plain_fallback(&pg),
            pg,
            tls,
            connect_sql: config.connect_sql(),
            init_commands: config.init_commands().to_vec(),
            cancel_target: Arc::new(CancelTarget {
                host: config.host().to_owned(),
                port: config.port(),
            }),
            cache_capacity: config.statement_cache_capacity(),
            max_statements: config.max_queries(),
            unnamed: config.pooler().is_transaction(),
            connect_timeout: config.connect_timeout(),
            shared: shared.clone(),
        };
        let first =
            connect_with_retry(config, || shared.state.timed_connect(manager.open())).await?;
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
        let multiplexer = Multiplexer::new(config, &pool, &shared);
        let this = TokioPostgresPool {
            multiplexer,
            pool,
            shared,
            acquire_timeout: config.acquire_timeout(),
            max_size: config.max_connections(),
            listen,
            pooler: PoolerSettings::new::<TokioPostgres>(config),
        };
        inspect_opened_pool(&this, &this.shared.state, config).await?;
        Ok(this)
    }

    /// A connection for one of the pool's own statements. Owned (not borrowed from the pool),
    /// so that a statement abandoned on it can be recovered on a background task.
    async fn get(&self) -> Result<Lent> {
        let got = self
            .shared
            .state
            .checkout(pin!(self.pool.get_owned()))
            .await?;
        let conn = got.map_err(|e| self.run_error(e))?;
        Ok(Lent::new(conn, self.shared.state.in_use()))
    }

    fn run_error(&self, err: RunError<Error>) -> Error {
        match err {
            RunError::User(e) => e,
            RunError::TimedOut => {
                if self.shared.state.is_closed() {
                    return Error::PoolClosed;
                }
                self.shared.state.pool_timeout(self.acquire_timeout)
            }
        }
    }
}

#[async_trait]
impl Executor for TokioPostgresPool {
    async fn execute(&self, sql: &str, params: Params<'_>) -> Result<u64> {
        if let Some(lease) = self.multiplexer.as_ref().and_then(|m| m.lease(sql)) {
            let out = lease.conn().execute_direct(sql, params).await;
            return lease.finish(out);
        }
        let work = async {
            let lent = self.get().await?;
            let out = lent.conn().execute_direct(sql, params).await;
            lent.finish(out)
        };
        // The common case (no transaction pooler) awaits `work` directly: no extra future layer.
        match self.pooler.client_statement_timeout() {
            None => work.await,
            bound => bounded_by_client(bound, sql, work).await,
        }
    }
    async fn fetch_all(&self, sql: &str, params: Params<'_>) -> Result<Vec<Row>> {
        if let Some(lease) = self.multiplexer.as_ref().and_then(|m| m.lease(sql)) {
            let out = lease.conn().fetch_all_direct(sql, params).await;
            return lease.finish(out);
        }
        let work = async {
            let lent = self.get().await?;
            let out = lent.conn().fetch_all_direct(sql, params).await;
            lent.finish(out)
        };
        // The common case (no transaction pooler) awaits `work` directly: no extra future layer.
        match self.pooler.client_statement_timeout() {
            None => work.await,
            bound => bounded_by_client(bound, sql, work).await,
        }
    }
    async fn fetch_optional(&self, sql: &str, params: Params<'_>) -> Result<Option<Row>> {
        if let Some(lease) = self.multiplexer.as_ref().and_then(|m| m.lease(sql)) {
            let out = lease.conn().fetch_optional_direct(sql, params).await;
            return lease.finish(out);
        }
        let work = async {
            let lent = self.get().await?;
            let out = lent.conn().fetch_optional_direct(sql, params).await;
            lent.finish(out)
        };
        // The common case (no transaction pooler) awaits `work` directly: no extra future layer.
        match self.pooler.client_statement_timeout() {
            None => work.await,
            bound => bounded_by_client(bound, sql, work).await,
        }
    }
    async fn batch_execute(&self, sql: &str) -> Result<()> {
        let work = async {
            let lent = self.get().await?;
            let out = lent.conn().batch_execute_direct(sql).await;
            lent.finish(out)
        };
        // The common case (no transaction pooler) awaits `work` directly: no extra future layer.
        match self.pooler.client_statement_timeout() {
            None => work.await,
            bound => bounded_by_client(bound, sql, work).await,
        }
    }
    fn fetch<'a>(&'a self, sql: &str, params: Params<'a>) -> BoxStream<'a, Result<Row>> {
        let sql = sql.to_owned();
        row_stream(move |tx| async move {
            let lent = self.get().await?;
            match lent.conn().stream_rows(&sql, params, &tx).await {
                Ok(()) => lent.finish(Ok(())),
                Err(Stop::Ended(e)) => lent.finish(Err(e)),
                // Dropped unfinished: the rest of the statement is cancelled, the connection
                // recovered.
                Err(Stop::Cut(e)) => {
                    drop(lent);
                    Err(e)
                }
            }
        })
    }
}

#[async_trait]
impl PoolProvider for TokioPostgresPool {
    async fn acquire(&self) -> Result<PooledConnection> {
        let got = self
            .shared
            .state
            .checkout(pin!(self.pool.get_owned()))
            .await?;
        let conn = got.map_err(|e| self.run_error(e))?;
        Ok(Box::new(TokioPostgresConnection {
            conn,
            _in_use: self.shared.state.in_use(),
        }))
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
            .with_waiting(self.shared.state.waiting())
            .with_counters(s.get_timed_out, created, closed)
            .with_server(self.shared.state.server_info())
    }

    async fn close(&self) {
        if !self.shared.state.close() {
            return;
        }
        if let Some(multiplexer) = &self.multiplexer {
            multiplexer.close();
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
        self.shared.state.is_closed()
    }

    fn driver_name(&self) -> &'static str {
        TokioPostgres::NAME
    }

    fn pooler(&self) -> &PoolerSettings {
        &self.pooler
    }

    fn notification_connector(&self) -> Result<Arc<dyn NotificationConnector>> {
        Ok(self.listen.clone())
    }
}
