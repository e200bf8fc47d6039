//! The seam under [`Listener`](crate::Listener): a driver opens dedicated connections
//! ([`NotificationConnector`]) that run `LISTEN`/`UNLISTEN` and surface the server's
//! notifications ([`NotificationConnection`]). Subscriptions, reconnects and events are the
//! core's (`pgdbm/src/listener/`), written once for every driver.

use std::fmt::Debug;

use async_trait::async_trait;

use crate::config::DatabaseConfig;
use crate::error::{BoxError, Result};
use crate::listener::Notification;

/// One dedicated connection of a [`Listener`](crate::Listener), outside any pool.
///
/// The core calls one method at a time (`&mut self`) and may drop any of their futures at any
/// await (e.g. when a `listen` command arrives while it waits for a notification), so:
///
/// * [`next_notification`](NotificationConnection::next_notification) must be cancel safe: a
///   notification the driver has read is either returned or kept for the next call, never lost;
/// * notifications that arrive while [`execute`](NotificationConnection::execute) or
///   [`backend_pid`](NotificationConnection::backend_pid) runs are kept, in order, for
///   `next_notification`;
/// * dropping the connection closes it (the server ends its subscriptions).
///
/// An error from `next_notification` means the connection is unusable: the core drops it and
/// opens another.
#[async_trait]
pub trait NotificationConnection: Send + Debug {
    /// Runs `sql` (one or more statements, no parameters: the simple query protocol), e.g.
    /// `LISTEN "app.events"`.
    ///
    /// # Errors
    ///
    /// The server's error, or [`Error::ConnectionLost`](crate::Error::ConnectionLost) when the
    /// connection failed.
    async fn execute(&mut self, sql: &str) -> Result<()>;

    /// Waits for the next notification on any channel this connection listens on, with the
    /// channel name as the server sent it. Cancel safe (see the trait's documentation).
    ///
    /// # Errors
    ///
    /// [`Error::ConnectionLost`](crate::Error::ConnectionLost) (or another error) when the
    /// connection ended; the connection is not used again.
    async fn next_notification(&mut self) -> Result<Notification>;

    /// The process id of this connection's server backend (`pg_backend_pid()`).
    ///
    /// # Errors
    ///
    /// As [`execute`](NotificationConnection::execute).
    async fn backend_pid(&mut self) -> Result<i32>;
}

/// Opens [`NotificationConnection`]s with the same settings as a pool's connections (host,
/// TLS, server settings, `application_name`, init commands), one attempt at a time: the core
/// retries with the config's [`RetryPolicy`](crate::RetryPolicy).
///
/// A driver hands one out from [`PoolProvider::notification_connector`] and
/// [`Driver::notification_connector`].
///
/// [`PoolProvider::notification_connector`]: crate::driver::PoolProvider::notification_connector
/// [`Driver::notification_connector`]: crate::driver::Driver::notification_connector
#[async_trait]
pub trait NotificationConnector: Send + Sync + Debug {
    /// The settings connections are opened with: the core takes the retry policy and the
    /// target named in connect errors from it.
    fn config(&self) -> &DatabaseConfig;

    /// One connect attempt, bounded by the connect timeout, with the init commands run.
    ///
    /// # Errors
    ///
    /// The cause of the failure, as for a pool's connect (see
    /// [`connect_with_retry`](crate::driver::connect_with_retry)): a permanent one (an
    /// authentication failure, a refused certificate) is not retried.
    async fn connect(&self) -> std::result::Result<Box<dyn NotificationConnection>, BoxError>;
}
