//! [`PoolState`]: what every driver's pool keeps besides its connections, written once.

use std::future::Future;
use std::pin::Pin;
#[cfg(feature = "metrics")]
use std::sync::Arc;
use std::sync::OnceLock;
use std::time::Duration;
#[cfg(feature = "metrics")]
use std::time::Instant;

use super::pool_registry::Registration;
use super::server_info::ServerInfo;
use super::{CheckoutGate, ConnectTarget, LastConnectError};
use crate::error::{BoxError, Error, Result};

/// The state a driver's pool shares with its connection manager: the closed flag and the
/// waiting checkouts ([`CheckoutGate`]), the last connect failure (so that a pool timeout can
/// say why no connection could be made), and where the pool connects (for errors, never the
/// password).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use pgdbm::driver::{ConnectTarget, PoolState};
/// let state = PoolState::new(ConnectTarget {
///     host: "db.internal".into(),
///     port: 5432,
///     database: "app".into(),
///     user: "app".into(),
/// });
/// state.connect_failed(&"connection refused");
/// let err = state.pool_timeout(std::time::Duration::from_secs(2));
/// assert!(err.is_pool_timeout());
/// let cause = std::error::Error::source(&err).expect("the last connect failure");
/// assert!(cause.to_string().contains("db.internal:5432"));
/// assert!(state.close());
/// let checkout = std::pin::pin!(async { 1 });
/// assert!(matches!(state.checkout(checkout).await, Err(pgdbm::Error::PoolClosed)));
/// # }
/// ```
#[derive(Debug)]
pub struct PoolState {
    gate: CheckoutGate,
    last_connect_error: LastConnectError,
    target: ConnectTarget,
    /// The server's version and database, read when the pool opened.
    server: OnceLock<ServerInfo>,
    /// Counts this pool among the process's open pools (a `warn` for a second one to the same
    /// database and role).
    _registration: Registration,
    /// `db.client.connection.pool.name` of the checkout metrics: `host:port/database` (shared,
    /// so that a metric's label costs no allocation).
    #[cfg(feature = "metrics")]
    pool_name: Arc<str>,
}

impl PoolState {
    /// An open pool's state for `target`. Logs a `warn` when this process already has a pool
    /// open to the same server, database and role: usually a mistake (share one pool among
    /// modules instead), as pgdbm for Python warns too.
    pub fn new(target: ConnectTarget) -> Self {
        PoolState {
            gate: CheckoutGate::new(),
            last_connect_error: LastConnectError::default(),
            _registration: Registration::open(&target),
            #[cfg(feature = "metrics")]
            pool_name: format!("{}:{}/{}", target.host, target.port, target.database).into(),
            target,
            server: OnceLock::new(),
        }
    }

    /// The server's version and database, once
    /// [`inspect_opened_pool`](super::inspect_opened_pool) read them.
    pub fn server_info(&self) -> Option<&ServerInfo> {
        self.server.get()
    }

    /// Keeps what [`inspect_opened_pool`](super::inspect_opened_pool) read (the first value
    /// stays).
    pub(crate) fn set_server_info(&self, info: ServerInfo) {
        let _ = self.server.set(info);
    }

    /// Where the pool connects.
    pub fn target(&self) -> &ConnectTarget {
        &self.target
    }

    /// Runs a checkout (pinned where it is) through the gate ([`CheckoutGate::checkout`]):
    /// counted while it waits, ended with [`Error::PoolClosed`] by [`close`](PoolState::close).
    /// With pgdbm's `metrics` feature, the time it took is `db.client.connection.wait_time`.
    ///
    /// # Errors
    ///
    /// [`Error::PoolClosed`]; otherwise `Ok` with the checkout's own result.
    pub async fn checkout<F: Future>(&self, checkout: Pin<&mut F>) -> Result<F::Output> {
        #[cfg(feature = "metrics")]
        {
            let start = Instant::now();
            let result = self.gate.checkout(checkout).await;
            crate::monitor::metrics::checkout(&self.pool_name, start.elapsed());
            result
        }
        #[cfg(not(feature = "metrics"))]
        self.gate.checkout(checkout).await
    }

    /// Runs one attempt to open a connection. With pgdbm's `metrics` feature, the time a
    /// successful one took is `db.client.connection.create_time`; without it this only awaits
    /// `connect`.
    ///
    /// # Errors
    ///
    /// None of its own: `connect`'s result is returned as it is.
    pub async fn timed_connect<T, E, F>(&self, connect: F) -> std::result::Result<T, E>
    where
        F: Future<Output = std::result::Result<T, E>>,
    {
        #[cfg(feature = "metrics")]
        {
            let start = Instant::now();
            let result = connect.await;
            if result.is_ok() {
                crate::monitor::metrics::connection_created(&self.pool_name, start.elapsed());
            }
            result
        }
        #[cfg(not(feature = "metrics"))]
        connect.await
    }

    /// Starts timing a connection that a checkout just handed out: keep the [`InUse`] with the
    /// checked-out connection and drop it when the connection goes back to the pool (or is
    /// closed instead).
    pub fn in_use(&self) -> InUse {
        InUse {
            #[cfg(feature = "metrics")]
            since: Instant::now(),
            #[cfg(feature = "metrics")]
            pool_name: Arc::clone(&self.pool_name),
        }
    }

    /// Closes the pool's gate, waking every waiting checkout; `true` for the call that closed it.
    pub fn close(&self) -> bool {
        self.gate.close()
    }

    /// `true` once the pool was closed.
    pub fn is_closed(&self) -> bool {
        self.gate.is_closed()
    }

    /// Tasks waiting for a connection now.
    pub fn waiting(&self) -> u32 {
        self.gate.waiting()
    }

    /// Notes that a connect attempt succeeded.
    pub fn connect_succeeded(&self) {
        self.last_connect_error.record(None);
    }

    /// Notes why a connect attempt failed (a rendered cause; it never holds the password).
    pub fn connect_failed(&self, cause: &dyn std::fmt::Display) {
        self.last_connect_error.record(Some(cause.to_string()));
    }

    /// The last connect failure, if the last attempt failed.
    pub fn last_connect_error(&self) -> Option<String> {
        self.last_connect_error.get()
    }

    /// An [`Error::Connect`] for this pool's target after `attempts` attempts.
    pub fn connect_error(&self, attempts: u32, cause: BoxError) -> Error {
        self.target.error(attempts, cause)
    }

    /// An [`Error::PoolTimeout`] after waiting `waited`, whose source is the last connect
    /// failure, if any.
    pub fn pool_timeout(&self, waited: Duration) -> Error {
        self.last_connect_error.pool_timeout(&self.target, waited)
    }
}

/// A checked-out connection's time in use, from [`PoolState::in_use`]: with pgdbm's `metrics`
/// feature, dropping it records `db.client.connection.use_time` (seconds since the checkout,
/// labelled with the pool's name); without the feature it is an empty value whose drop does
/// nothing.
///
/// A driver keeps it next to the pooled connection in its checkout guard, so the time ends where
/// the connection goes back to the pool — after a background recovery, for a connection whose
/// statement was abandoned.
#[derive(Debug)]
#[must_use = "dropping it at once ends the time in use"]
pub struct InUse {
    #[cfg(feature = "metrics")]
    since: Instant,
    #[cfg(feature = "metrics")]
    pool_name: Arc<str>,
}

#[cfg(feature = "metrics")]
impl Drop for InUse {
    fn drop(&mut self) {
        crate::monitor::metrics::connection_used(&self.pool_name, self.since.elapsed());
    }
}
