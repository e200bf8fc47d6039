//! LISTEN/NOTIFY: [`Listener`] (a dedicated connection that receives notifications, reconnects
//! and re-subscribes by itself), the events it yields ([`ListenerEvent`], [`Notification`]), the
//! channel naming rule shared with [`ExecutorExt::notify`](crate::ExecutorExt::notify), and
//! the one place where a transaction pooler is refused.
//!
//! The background task that owns the connection is in `task.rs`; the driver seam
//! ([`NotificationConnector`]) in `pgdbm::driver`.

mod task;

use std::collections::BTreeMap;
use std::pin::Pin;
use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use futures_util::Stream;
use tokio::sync::{mpsc, oneshot};

use crate::config::DatabaseConfig;
use crate::database::Database;
use crate::driver::{Driver, NotificationConnector, connect_with_retry};
use crate::error::{Error, Result, truncate_chars};
use crate::template::validate_identifier;

use task::{Command, Task};

/// Longest channel name the server accepts (`NAMEDATALEN - 1` bytes).
const MAX_CHANNEL_LEN: usize = 63;

/// Events waiting for [`Listener::recv`] before the listener stops reading its connection (the
/// server then keeps further notifications in its queue).
const EVENT_BUFFER: usize = 1024;

/// The statement of [`ExecutorExt::notify`](crate::ExecutorExt::notify): the payload travels as
/// a parameter, as bytes, so that even a monitor recording parameters shows only its length.
pub(crate) const NOTIFY_SQL: &str =
    "SELECT pg_catalog.pg_notify($1, pg_catalog.convert_from($2, 'UTF8'))";

/// A notification received by a [`Listener`].
///
/// Its `Debug` output shows the payload's length, not the payload.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Notification {
    /// The channel, as given to [`Listener::listen`] (without the schema prefix of a scoped
    /// listener).
    pub channel: String,
    /// The payload (`""` when the sender gave none).
    pub payload: String,
    /// The process id of the sending session's backend (`pg_backend_pid()` there).
    pub process_id: i32,
}

impl Notification {
    /// A notification on `channel` (drivers give the name as the server sent it).
    pub fn new(channel: impl Into<String>, payload: impl Into<String>, process_id: i32) -> Self {
        Notification {
            channel: channel.into(),
            payload: payload.into(),
            process_id,
        }
    }
}

impl std::fmt::Debug for Notification {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notification")
            .field("channel", &self.channel)
            .field("payload_len", &self.payload.len())
            .field("process_id", &self.process_id)
            .finish()
    }
}

/// What [`Listener::recv`] yields.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ListenerEvent {
    /// A notification on a channel the listener listens on.
    Notification(Notification),
    /// The connection was lost and a new one is listening on every channel again. Notifications
    /// sent while the listener was disconnected are lost: resynchronise (re-read the state the
    /// notifications were about).
    Reconnected,
}

/// A dedicated connection that listens for notifications (`LISTEN`/`NOTIFY`), outside any pool.
///
/// * **Channels** are identifiers (`^[A-Za-z_][A-Za-z0-9_]{0,62}$`), case-sensitive. A listener
///   made from a handle or config with a schema is *scoped*: its channel `events` is the
///   server's channel `todo.events` for schema `todo`, so two modules' `events` never collide.
///   [`ExecutorExt::notify`](crate::ExecutorExt::notify) on a handle or transaction of the same
///   schema uses the same rule. Unscoped (no schema), `events` is `events`. A plain SQL
///   `NOTIFY todo.events` is not the same (write `NOTIFY "todo.events"`).
/// * **Events** come from [`recv`](Listener::recv) or the listener as a [`Stream`], in the order
///   the server sent them: [`ListenerEvent::Notification`] and, after a lost connection,
///   [`ListenerEvent::Reconnected`].
/// * **Reconnects**: a background task owns the connection. When it is lost, the task
///   reconnects with the config's [`RetryPolicy`](crate::RetryPolicy), listens on every channel
///   again and then yields `Reconnected`. Notifications sent while it was disconnected are
///   **lost**. When a whole round of retries fails, `recv` yields that [`Error::Connect`] and
///   the task starts another round after the policy's `max_delay`; the listener stays usable.
/// * **Backpressure**: up to 1024 events wait for `recv`; beyond that the listener stops
///   reading its connection and the server queues further notifications.
/// * **Cancellation**: `recv`, `listen` and `unlisten` may be dropped at any await; a
///   notification already received stays queued, and a `listen`/`unlisten` whose future was
///   dropped after its first poll still completes ([`channels`](Listener::channels) tells).
///   Dropping the listener closes its connection.
///
/// ```no_run
/// # async fn demo(db: pgdbm::Database) -> pgdbm::Result<()> {
/// use pgdbm::prelude::*;
/// use pgdbm::ListenerEvent;
///
/// let mut listener = db.listener().await?; // scoped to db's schema
/// listener.listen("orders").await?;
/// db.notify("orders", "42").await?; // the same channel
/// loop {
///     match listener.recv().await? {
///         ListenerEvent::Notification(n) => println!("{}: {}", n.channel, n.payload),
///         ListenerEvent::Reconnected => { /* re-read what may have changed meanwhile */ }
///         _ => {}
///     }
/// }
/// # }
/// ```
pub struct Listener {
    commands: mpsc::UnboundedSender<Command>,
    events: mpsc::Receiver<Delivery>,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

/// What the listener and its task share.
#[derive(Debug)]
struct Shared {
    /// The prefix of the server's channel names (`"todo."`), empty when unscoped.
    prefix: String,
    /// The schema the listener is scoped to.
    schema: Option<String>,
    /// The server's names of the channels listened on (or to listen on after a reconnect),
    /// each with the number of its subscription.
    channels: Mutex<BTreeMap<String, u64>>,
    /// The number of the next subscription.
    next_subscription: AtomicU64,
    /// The backend of the current connection, 0 while disconnected.
    backend_pid: AtomicI32,
}

/// An event on its way to the listener, with the subscription a notification came in under
/// (0 for other events): a notification of a channel unlistened since is not yielded.
type Delivery = Result<(ListenerEvent, u64)>;

impl Shared {
    fn channels(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, u64>> {
        self.channels.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds the server's channel `name` as a new subscription, unless it is one already.
    fn subscribe(&self, name: String) {
        self.channels()
            .entry(name)
            .or_insert_with(|| self.next_subscription.fetch_add(1, Ordering::Relaxed));
    }

    /// `true` unless `event` is a notification of a subscription that has ended since.
    fn is_current(&self, event: &ListenerEvent, subscription: u64) -> bool {
        let ListenerEvent::Notification(n) = event else {
            return true;
        };
        let name = format!("{}{}", self.prefix, n.channel);
        self.channels().get(&name) == Some(&subscription)
    }
}

impl std::fmt::Debug for Listener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Listener")
            .field("schema", &self.shared.schema)
            .field("channels", &self.channels())
            .field("backend_pid", &self.backend_pid())
            .finish()
    }
}

impl Listener {
    /// Opens a listener with driver `D` and `config` (no pool), scoped to the config's schema.
    ///
    /// # Errors
    ///
    /// As [`Listener::with_connector`]; [`Error::Unsupported`] when the driver has no listener
    /// connections.
    pub async fn connect<D: Driver>(config: &DatabaseConfig) -> Result<Listener> {
        let connector = D::notification_connector(config)?;
        Listener::with_connector(connector, config.schema()).await
    }

    /// Opens a listener with the connect settings of `db`'s pool (its own connection, outside
    /// the pool), scoped to `db`'s schema. [`Database::listener`] is the same.
    ///
    /// # Errors
    ///
    /// As [`Listener::with_connector`]; [`Error::Unsupported`] when the pool's driver has no
    /// listener connections.
    pub async fn from_database(db: &Database) -> Result<Listener> {
        let connector = db.pool().notification_connector()?;
        Listener::with_connector(connector, db.schema()).await
    }

    /// Opens a listener on connections of `connector`, scoped to `schema`: the first connection
    /// is made now, with the config's retries.
    ///
    /// # Errors
    ///
    /// [`Error::Connect`] when no connection can be made (with its cause);
    /// [`Error::Identifier`] for an invalid schema; [`Error::Config`] when the config says a
    /// transaction pooler is in front of the server (a listener needs a session of its own).
    pub async fn with_connector(
        connector: Arc<dyn NotificationConnector>,
        schema: Option<&str>,
    ) -> Result<Listener> {
        refuse_transaction_pooler(connector.config())?;
        if let Some(schema) = schema {
            validate_identifier("schema", schema)?;
        }
        let mut conn = connect_with_retry(connector.config(), || connector.connect()).await?;
        let pid = conn.backend_pid().await?;
        let shared = Arc::new(Shared {
            prefix: schema.map(|s| format!("{s}.")).unwrap_or_default(),
            schema: schema.map(str::to_owned),
            channels: Mutex::default(),
            next_subscription: AtomicU64::new(1),
            backend_pid: AtomicI32::new(pid),
        });
        let (commands, command_rx) = mpsc::unbounded_channel();
        let (event_tx, events) = mpsc::channel(EVENT_BUFFER);
        let task = Task::new(connector, command_rx, event_tx, shared.clone());
        let task = tokio::spawn(task.run(conn));
        Ok(Listener {
            commands,
            events,
            shared,
            task,
        })
    }

    /// Starts listening on `channel` (scoped to the listener's schema, if any). Listening twice
    /// is a no-op. Once this returns, every later notification on the channel is received —
    /// except while the connection is down: a channel added then is listened on when it is
    /// back, before [`ListenerEvent::Reconnected`].
    ///
    /// # Errors
    ///
    /// [`Error::Identifier`] naming the channel when it is not a valid identifier (or too long
    /// with the schema prefix); the server's error.
    pub async fn listen(&self, channel: &str) -> Result<()> {
        let name = scoped_channel(self.schema(), channel)?;
        self.command(|reply| Command::Listen(name, reply)).await
    }

    /// Stops listening on `channel`. Once this returns, no notification of the channel is
    /// yielded any more, even one the server sent just before.
    ///
    /// # Errors
    ///
    /// [`Error::Identifier`] for an invalid channel name; the server's error.
    pub async fn unlisten(&self, channel: &str) -> Result<()> {
        let name = scoped_channel(self.schema(), channel)?;
        self.command(|reply| Command::Unlisten(name, reply)).await
    }

    async fn command(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<()>>) -> Command,
    ) -> Result<()> {
        let (reply, answer) = oneshot::channel();
        self.commands.send(make(reply)).map_err(|_| task_ended())?;
        answer.await.map_err(|_| task_ended())?
    }

    /// The next event: a notification, or [`ListenerEvent::Reconnected`] after a lost
    /// connection. Cancel safe: dropping the future loses nothing.
    ///
    /// # Errors
    ///
    /// [`Error::Connect`] when a round of reconnect attempts failed (the listener keeps
    /// trying; call `recv` again).
    pub async fn recv(&mut self) -> Result<ListenerEvent> {
        loop {
            let (event, subscription) = self.events.recv().await.ok_or_else(task_ended)??;
            if self.shared.is_current(&event, subscription) {
                return Ok(event);
            }
        }
    }

    /// The channels listened on, as given to [`listen`](Listener::listen), sorted.
    pub fn channels(&self) -> Vec<String> {
        let prefix = &self.shared.prefix;
        self.shared
            .channels()
            .keys()
            .map(|name| name[prefix.len()..].to_owned())
            .collect()
    }

    /// The schema the listener's channels are scoped to.
    pub fn schema(&self) -> Option<&str> {
        self.shared.schema.as_deref()
    }

    /// The process id of the current connection's backend (`None` while disconnected), e.g. to
    /// find it in `pg_stat_activity`.
    pub fn backend_pid(&self) -> Option<i32> {
        match self.shared.backend_pid.load(Ordering::Acquire) {
            0 => None,
            pid => Some(pid),
        }
    }
}

/// Yields the same events as [`Listener::recv`]; it ends only if the listener's task ended.
impl Stream for Listener {
    type Item = Result<ListenerEvent>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        loop {
            match std::task::ready!(self.events.poll_recv(cx)) {
                None => return Poll::Ready(None),
                Some(Err(e)) => return Poll::Ready(Some(Err(e))),
                Some(Ok((event, subscription))) => {
                    if self.shared.is_current(&event, subscription) {
                        return Poll::Ready(Some(Ok(event)));
                    }
                }
            }
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        // The task owns the connection: ending it closes the connection now.
        self.task.abort();
    }
}

impl Database {
    /// A [`Listener`] on a connection of its own with this handle's connect settings, scoped to
    /// its schema. Same as [`Listener::from_database`].
    ///
    /// # Errors
    ///
    /// As [`Listener::from_database`].
    pub async fn listener(&self) -> Result<Listener> {
        Listener::from_database(self).await
    }
}

/// The error of a listener whose task is gone (it panicked).
fn task_ended() -> Error {
    Error::connection_lost("", "the listener's background task ended", None)
}

/// The server's name of `channel` for a handle or listener scoped to `schema`: `schema.channel`,
/// or `channel` unscoped. A dot cannot occur in an identifier, so a scoped name never equals an
/// unscoped one nor another schema's.
///
/// # Errors
///
/// [`Error::Identifier`] naming the channel when it is not a valid identifier or the scoped
/// name is longer than 63 bytes.
pub(crate) fn scoped_channel(schema: Option<&str>, channel: &str) -> Result<String> {
    validate_identifier("channel", channel)?;
    let Some(schema) = schema else {
        return Ok(channel.to_owned());
    };
    let name = format!("{schema}.{channel}");
    if name.len() > MAX_CHANNEL_LEN {
        return Err(Error::Identifier {
            kind: "channel",
            value: truncate_chars(channel, 80),
            reason: "is longer than 63 characters with its schema prefix",
        });
    }
    Ok(name)
}

/// The one place where a listener refuses to run through a transaction pooler (PgBouncer in
/// transaction mode ends the session's `LISTEN` at each transaction's end, so notifications
/// would silently stop): an [`Error::Pooler`](crate::Error::Pooler) naming the mode and the
/// alternative, a listener opened with the config's `direct_url`
/// ([`DatabaseConfig::direct_config`]).
fn refuse_transaction_pooler(config: &DatabaseConfig) -> Result<()> {
    crate::driver::refuse_behind_transaction_pooler(
        config.pooler(),
        "a Listener (LISTEN/NOTIFY keeps a session listening)",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channels_are_scoped_by_schema() {
        assert_eq!(scoped_channel(None, "events").unwrap(), "events");
        assert_eq!(
            scoped_channel(Some("todo"), "events").unwrap(),
            "todo.events"
        );
        let err = scoped_channel(Some("todo"), "bad-name").unwrap_err();
        assert!(
            matches!(&err, Error::Identifier { kind: "channel", value, .. } if value == "bad-name"),
            "{err}"
        );
        let long = "c".repeat(60);
        assert!(scoped_channel(None, &long).is_ok());
        let err = scoped_channel(Some("todo"), &long).unwrap_err();
        assert!(err.to_string().contains("schema prefix"), "{err}");
    }

    #[test]
    fn debug_hides_the_payload() {
        let n = Notification::new("c", "secret-payload", 7);
        let text = format!("{n:?}");
        assert!(!text.contains("secret"), "{text}");
        assert!(text.contains("payload_len: 14"), "{text}");
    }
}
