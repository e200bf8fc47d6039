//! The pool seam: [`PoolProvider`] hands out [`Connection`]s and reports [`PoolStats`];
//! [`Driver`] opens a pool from a [`DatabaseConfig`].

use std::any::Any;
use std::fmt::Debug;
use std::future::Future;
use std::sync::Arc;

use async_trait::async_trait;

use crate::config::DatabaseConfig;
use crate::driver::NotificationConnector;
use crate::error::Result;
use crate::executor::Executor;
use crate::value::Value;

use super::PoolerSettings;
use super::server_info::ServerInfo;

/// One connection checked out of a pool. Dropping it returns it to the pool (or closes it when it
/// was [discarded](Connection::discard)).
///
/// Drivers implement it; the core builds transactions, migrations' advisory locks and COPY on it.
///
/// Cancellation contract for driver authors: when the future of a statement run on a connection
/// (through this trait or the pool's own [`Executor`] methods) is dropped before it finishes,
/// the connection must not be handed to another caller while the server may still run that
/// statement or hold a transaction it opened: close it when it is returned (or, once a later
/// statement on it has finished, pool it again), and have the server stop the statement (see
/// [`cancel`](super::cancel)). The conformance checks `pgdbm_conformance::cancelled_*` hold
/// every driver to it.
///
/// # The way down to the driver
///
/// Where pgdbm does not cover something, [`as_any`](Connection::as_any) reaches the driver's own
/// connection type, and each driver crate has a typed helper on top of it
/// (`pgdbm_driver_tokio_postgres::client(&conn)` gives the `tokio_postgres::Client`,
/// `pgdbm_driver_sqlx::connection(&conn)` the sqlx connection). Statements run that way bypass
/// templates, monitoring and the cancellation handling of pgdbm.
#[async_trait]
pub trait Connection: Executor + Debug + Any {
    /// Bulk-loads `rows` into `table` (an already quoted, possibly schema-qualified name) with
    /// `COPY … FROM STDIN`, returning the number of rows written. Each row has one value per entry
    /// of `columns`.
    ///
    /// # Errors
    ///
    /// [`Error::Encode`](crate::Error::Encode) when a value does not fit its column,
    /// [`Error::Database`](crate::Error::Database) for server errors (nothing is written then).
    async fn copy_in(&self, table: &str, columns: &[&str], rows: &[Vec<Value>]) -> Result<u64>;

    /// Marks the connection so that the pool closes it instead of reusing it (its session state is
    /// unknown, e.g. a `ROLLBACK` failed).
    fn discard(&mut self);

    /// The driver's own connection type, to downcast (`conn.as_any().downcast_ref::<T>()`): the
    /// escape hatch for what pgdbm does not cover. Implement it as `fn as_any(&self) -> &dyn Any
    /// { self }`.
    fn as_any(&self) -> &dyn Any;
}

/// The two statements a driver's [`Connection::copy_in`] runs, built the same way by every
/// driver: `probe` (`SELECT cols FROM table LIMIT 0`, prepared to learn the column types) and
/// `copy` (`COPY table (cols) FROM STDIN (FORMAT binary)`). Without columns, all of the table's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyStatements {
    /// The statement whose result columns give the types to encode.
    pub probe: String,
    /// The `COPY … FROM STDIN` statement.
    pub copy: String,
}

impl CopyStatements {
    /// The statements for `table` and `columns` (both already quoted).
    pub fn new(table: &str, columns: &[&str]) -> Self {
        if columns.is_empty() {
            return CopyStatements {
                probe: format!("SELECT * FROM {table} LIMIT 0"),
                copy: format!("COPY {table} FROM STDIN (FORMAT binary)"),
            };
        }
        let list = columns.join(", ");
        CopyStatements {
            probe: format!("SELECT {list} FROM {table} LIMIT 0"),
            copy: format!("COPY {table} ({list}) FROM STDIN (FORMAT binary)"),
        }
    }
}

/// A connection checked out of a pool.
pub type PooledConnection = Box<dyn Connection>;

/// A checked-out connection that is closed (instead of pooled) when dropped, unless it was taken
/// back out with [`keep`](DiscardGuard::keep): held across every await after which the
/// session's state is unknown if the future is dropped there (inside `BEGIN`, holding a
/// session lock, before `COMMIT` has answered).
pub(crate) struct DiscardGuard(Option<PooledConnection>);

impl DiscardGuard {
    pub(crate) fn new(conn: PooledConnection) -> Self {
        DiscardGuard(Some(conn))
    }

    pub(crate) fn conn(&self) -> &PooledConnection {
        self.0.as_ref().expect("taken out only by keep")
    }

    /// Takes the connection back out: it will be pooled as usual.
    pub(crate) fn keep(&mut self) -> PooledConnection {
        self.0.take().expect("kept once")
    }
}

impl Drop for DiscardGuard {
    fn drop(&mut self) {
        if let Some(conn) = self.0.as_mut() {
            conn.discard();
        }
    }
}

/// Hands out connections and runs single statements on a pooled connection.
///
/// Its [`Executor`] methods acquire a connection per call and return it right after: the fast
/// path of [`Database`](crate::Database). Share one pool among many schema-scoped handles as
/// `Arc<dyn PoolProvider>`.
#[async_trait]
pub trait PoolProvider: Executor + Debug {
    /// Checks a connection out of the pool, waiting up to the configured acquire timeout.
    ///
    /// # Errors
    ///
    /// [`Error::PoolTimeout`](crate::Error::PoolTimeout) (with the last connect error as its
    /// cause) or [`Error::PoolClosed`](crate::Error::PoolClosed).
    async fn acquire(&self) -> Result<PooledConnection>;

    /// A snapshot of the pool's counters.
    fn stats(&self) -> PoolStats;

    /// Closes the pool: idle connections are closed, further acquires fail with
    /// [`Error::PoolClosed`](crate::Error::PoolClosed), connections in use close when returned.
    async fn close(&self);

    /// `true` once [`close`](PoolProvider::close) was called.
    fn is_closed(&self) -> bool;

    /// The driver's name, e.g. `"tokio-postgres"` or `"sqlx"`.
    fn driver_name(&self) -> &'static str;

    /// Opens the dedicated connections of a [`Listener`](crate::Listener) with this pool's
    /// connect settings, outside the pool.
    ///
    /// # Errors
    ///
    /// [`Error::Unsupported`](crate::Error::Unsupported) when the driver has no listener
    /// connections (the default).
    fn notification_connector(&self) -> Result<Arc<dyn NotificationConnector>> {
        Err(no_listener(self.driver_name()))
    }

    /// The pooler in front of the server and what follows from it (see [`PoolerSettings`]):
    /// drivers return the settings they built from their configuration with
    /// [`PoolerSettings::new`]; the default is "no pooler".
    fn pooler(&self) -> &PoolerSettings {
        PoolerSettings::none()
    }
}

/// The error of a driver without [`NotificationConnector`].
fn no_listener(driver: &str) -> crate::Error {
    crate::Error::Unsupported(format!(
        "the {driver} driver cannot open listener connections (LISTEN/NOTIFY)"
    ))
}

/// A snapshot of a pool's state and counters, with the server's version and the database.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PoolStats {
    /// Open connections (idle + in use).
    pub size: u32,
    /// Idle connections.
    pub idle: u32,
    /// Connections checked out.
    pub in_use: u32,
    /// The configured maximum.
    pub max_size: u32,
    /// Tasks waiting for a connection now, where the driver can tell (otherwise 0).
    pub waiting: u32,
    /// Acquires that timed out since the pool was opened.
    pub timed_out: u64,
    /// Connections opened since the pool was opened.
    pub connections_created: u64,
    /// Connections closed since the pool was opened (broken, expired or idle).
    pub connections_closed: u64,
    /// The server's `server_version`, read when the pool opened (`None` for a pool the driver
    /// did not open itself, such as a wrapped application pool).
    pub server_version: Option<Arc<str>>,
    /// The database on the server (`current_database()`), read when the pool opened (`None`
    /// likewise).
    pub database: Option<Arc<str>>,
}

impl PoolStats {
    /// Builds a snapshot; `in_use` is derived as `size - idle`.
    pub fn new(size: u32, idle: u32, max_size: u32) -> Self {
        PoolStats {
            size,
            idle,
            in_use: size.saturating_sub(idle),
            max_size,
            ..PoolStats::default()
        }
    }

    /// Sets the waiting count.
    pub fn with_waiting(mut self, waiting: u32) -> Self {
        self.waiting = waiting;
        self
    }

    /// Sets the lifetime counters.
    pub fn with_counters(mut self, timed_out: u64, created: u64, closed: u64) -> Self {
        self.timed_out = timed_out;
        self.connections_created = created;
        self.connections_closed = closed;
        self
    }

    /// Sets the server's version and database ([`PoolState::server_info`](super::PoolState::server_info)).
    pub fn with_server(mut self, server: Option<&ServerInfo>) -> Self {
        if let Some(server) = server {
            self.server_version = Some(server.server_version.clone());
            self.database = Some(server.database.clone());
        }
        self
    }

    /// `in_use / max_size`, between 0 and 1.
    pub fn utilization(&self) -> f64 {
        if self.max_size == 0 {
            0.0
        } else {
            f64::from(self.in_use) / f64::from(self.max_size)
        }
    }
}

/// A database driver: how to open a pool from a [`DatabaseConfig`]. Generic code (tests, the
/// CLI, examples) says "with driver `D`" through it: `Database::connect::<D>(config)`.
pub trait Driver: Send + Sync + 'static {
    /// The pool type this driver opens.
    type Pool: PoolProvider + 'static;

    /// The driver's name, e.g. `"tokio-postgres"`.
    const NAME: &'static str;

    /// Opens a pool, making the configured minimum of connections (with the configured connect
    /// retries) before returning.
    ///
    /// # Errors
    ///
    /// [`Error::Connect`](crate::Error::Connect) naming host, port, database and attempts, with
    /// the real cause (e.g. an authentication failure); [`Error::Config`](crate::Error::Config) for
    /// settings the driver cannot honour.
    fn connect(config: &DatabaseConfig) -> impl Future<Output = Result<Self::Pool>> + Send;

    /// Opens the dedicated connections of a [`Listener`](crate::Listener) with `config`, without
    /// a pool (`Listener::connect::<D>(&config)`).
    ///
    /// # Errors
    ///
    /// [`Error::Config`](crate::Error::Config) for settings the driver cannot honour;
    /// [`Error::Unsupported`](crate::Error::Unsupported) when the driver has no listener
    /// connections (the default).
    fn notification_connector(config: &DatabaseConfig) -> Result<Arc<dyn NotificationConnector>> {
        let _ = config;
        Err(no_listener(Self::NAME))
    }
}

/// A pool shared between handles.
pub type SharedPool = Arc<dyn PoolProvider>;
