//! The pool ([`TokioPostgresPool`]), the connection it lends ([`TokioPostgresConnection`]) and
//! the [`Driver`] implementation.

use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use bb8::RunError;
use pgdbm::driver::{ConnectTarget, PoolState, connect_with_retry};
use pgdbm::driver::{Connection, Driver, PoolProvider, PooledConnection, PoolerSettings};
use pgdbm::{DatabaseConfig, Error, Executor, Params, PoolStats, Result, Row, Value};
use tokio_postgres::Client;

use crate::conn::in_flight;
use crate::manager::{Manager, Shared};
use crate::settings::{Tls, pg_config, plain_fallback, reaper_rate, tls};

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

/// A connection checked out of a [`TokioPostgresPool`](crate::TokioPostgresPool).
pub struct TokioPostgresConnection {
    pub(crate) conn: bb8::PooledConnection<'static, Manager>,
}

impl std::fmt::Debug for TokioPostgresConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokioPostgresConnection")
            .field("conn", &*self.conn)
            .finish()
    }
}

impl TokioPostgresConnection {
    /// The underlying tokio-postgres client, for what pgdbm does not cover.
    pub fn client(&self) -> &Client {
        self.conn.client()
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
}

#[async_trait]
impl Connection for TokioPostgresConnection {
    async fn copy_in(&self, table: &str, columns: &[&str], rows: &[Vec<Value>]) -> Result<u64> {
        in_flight!(self.conn, self.conn.copy_in(table, columns, rows))
    }

    fn discard(&mut self) {
        self.conn.mark_broken();
    }
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
    /// The pooler in front of the server.
    pooler: PoolerSettings,
    /// For CancelRequests (the client-side bound behind a transaction pooler).
    tls: Tls,
    connect_timeout: Duration,
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
        let manager = Manager {
            plain: plain_fallback(&pg),
            pg,
            tls: tls(config)?,
            connect_sql: config.connect_sql(),
            init_commands: config.init_commands().to_vec(),
            cache_capacity: config.statement_cache_capacity(),
            unnamed: config.pooler().is_transaction(),
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
            pooler: PoolerSettings::new::<TokioPostgres>(config),
            tls: tls(config)?,
            connect_timeout: config.connect_timeout(),
        })
    }

    /// Behind a transaction pooler, an autocommit statement is bounded client side by the
    /// configured `statement_timeout`: on expiry a CancelRequest is sent (the pooler forwards it
    /// to the server connection running the statement) and the statement's future dropped (its
    /// connection is then closed, not pooled).
    async fn bounded<T>(
        &self,
        conn: &crate::conn::PgConn,
        sql: &str,
        work: impl std::future::Future<Output = Result<T>>,
    ) -> Result<T> {
        let Some(bound) = self.pooler.client_statement_timeout() else {
            return work.await;
        };
        let token = conn.client().cancel_token();
        match tokio::time::timeout(bound, work).await {
            Ok(result) => result,
            Err(_) => {
                #[cfg_attr(not(feature = "tls"), allow(clippy::clone_on_copy))]
                let cancel = token.cancel_query(self.tls.clone());
                if let Ok(Err(e)) = tokio::time::timeout(self.connect_timeout, cancel).await {
                    tracing::debug!(error = %e, "pgdbm: cancel request failed");
                }
                Err(pgdbm::driver::client_timeout_error(sql, bound))
            }
        }
    }

    async fn get(&self) -> Result<bb8::PooledConnection<'_, Manager>> {
        let got = self.shared.state.checkout(pin!(self.pool.get())).await?;
        got.map_err(|e| self.run_error(e))
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
        let conn = self.get().await?;
        if self.pooler.client_statement_timeout().is_some() {
            let work = async { in_flight!(conn, conn.execute_direct(sql, params)) };
            return self.bounded(&conn, sql, work).await;
        }
        in_flight!(conn, conn.execute_direct(sql, params))
    }
    async fn fetch_all(&self, sql: &str, params: Params<'_>) -> Result<Vec<Row>> {
        let conn = self.get().await?;
        if self.pooler.client_statement_timeout().is_some() {
            let work = async { in_flight!(conn, conn.fetch_all_direct(sql, params)) };
            return self.bounded(&conn, sql, work).await;
        }
        in_flight!(conn, conn.fetch_all_direct(sql, params))
    }
    async fn fetch_optional(&self, sql: &str, params: Params<'_>) -> Result<Option<Row>> {
        let conn = self.get().await?;
        if self.pooler.client_statement_timeout().is_some() {
            let work = async { in_flight!(conn, conn.fetch_optional_direct(sql, params)) };
            return self.bounded(&conn, sql, work).await;
        }
        in_flight!(conn, conn.fetch_optional_direct(sql, params))
    }
    async fn batch_execute(&self, sql: &str) -> Result<()> {
        let conn = self.get().await?;
        if self.pooler.client_statement_timeout().is_some() {
            let work = async { in_flight!(conn, conn.batch_execute_direct(sql)) };
            return self.bounded(&conn, sql, work).await;
        }
        in_flight!(conn, conn.batch_execute_direct(sql))
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
            .with_waiting(self.shared.state.waiting())
            .with_counters(s.get_timed_out, created, closed)
    }

    async fn close(&self) {
        if !self.shared.state.close() {
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
        self.shared.state.is_closed()
    }

    fn driver_name(&self) -> &'static str {
        TokioPostgres::NAME
    }

    fn pooler(&self) -> &PoolerSettings {
        &self.pooler
    }
}
