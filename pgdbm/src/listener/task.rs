//! The background task of a [`Listener`](super::Listener): it owns the connection, runs
//! `listen`/`unlisten` commands, forwards notifications of subscribed channels in order, and
//! after a lost connection reconnects, listens on every channel again and reports
//! `Reconnected`.
//!
//! Every await of the task that waits on the outside world (a notification, a command, room for
//! an event, a reconnect) is one branch of a `select!`, so commands are served and the
//! listener's drop ends the task at any time. The driver's `next_notification` is cancel safe;
//! a notification it returned is in `outbox` until the listener has room for it.

use std::collections::VecDeque;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use tokio::sync::{mpsc, oneshot};

use super::{Delivery, ListenerEvent, Notification, Shared};
use crate::driver::{NotificationConnection, NotificationConnector, connect_with_retry};
use crate::error::Result;
use crate::template::quote_identifier;

/// What the listener asks its task to do.
pub(super) enum Command {
    /// `LISTEN` on the server's channel name, then answer.
    Listen(String, oneshot::Sender<Result<()>>),
    /// `UNLISTEN` the server's channel name, then answer.
    Unlisten(String, oneshot::Sender<Result<()>>),
}

type Conn = Box<dyn NotificationConnection>;

/// Why serving a connection stopped.
enum Stop {
    /// The listener is gone: end the task.
    Exit,
    /// The connection failed: reconnect.
    Lost,
}

pub(super) struct Task {
    connector: Arc<dyn NotificationConnector>,
    commands: mpsc::UnboundedReceiver<Command>,
    events: mpsc::Sender<Delivery>,
    shared: Arc<Shared>,
    /// Events waiting for room in `events`, oldest first. While it is not empty the connection
    /// is not read (backpressure).
    outbox: VecDeque<Delivery>,
}

impl Task {
    pub(super) fn new(
        connector: Arc<dyn NotificationConnector>,
        commands: mpsc::UnboundedReceiver<Command>,
        events: mpsc::Sender<Delivery>,
        shared: Arc<Shared>,
    ) -> Self {
        Task {
            connector,
            commands,
            events,
            shared,
            outbox: VecDeque::new(),
        }
    }

    /// Serves `conn` until the listener is dropped, reconnecting whenever it is lost.
    pub(super) async fn run(mut self, mut conn: Conn) {
        loop {
            match self.serve(&mut conn).await {
                Stop::Exit => return,
                Stop::Lost => {}
            }
            drop(conn);
            self.shared.backend_pid.store(0, Ordering::Release);
            conn = match self.reconnect().await {
                Some(conn) => conn,
                None => return,
            };
        }
    }

    /// Commands, notifications and deliveries on a live connection.
    async fn serve(&mut self, conn: &mut Conn) -> Stop {
        loop {
            let reading = self.outbox.is_empty();
            tokio::select! {
                biased;
                command = self.commands.recv() => match command {
                    None => return Stop::Exit,
                    Some(command) => {
                        if let Err(e) = run_command(&self.shared, conn, command).await {
                            tracing::debug!(error = %e, "pgdbm: listener connection lost");
                            return Stop::Lost;
                        }
                    }
                },
                delivered = deliver(&self.events, &mut self.outbox), if !reading => {
                    if !delivered {
                        return Stop::Exit;
                    }
                }
                received = conn.next_notification(), if reading => match received {
                    Ok(n) => {
                        if let Some(event) = self.accept(n) {
                            if !self.push(Ok(event)) {
                                return Stop::Exit;
                            }
                        }
                    }
                    Err(e) => {
                        tracing::debug!(error = %e, "pgdbm: listener connection lost");
                        return Stop::Lost;
                    }
                },
            }
        }
    }

    /// A notification of a channel still listened on, named as the listener's user named it.
    /// One that arrives after its channel's `UNLISTEN` (sent by the server just before) is
    /// dropped.
    fn accept(&self, mut n: Notification) -> Option<(ListenerEvent, u64)> {
        let subscription = *self.shared.channels().get(&n.channel)?;
        n.channel.drain(..self.shared.prefix.len());
        Some((ListenerEvent::Notification(n), subscription))
    }

    /// Queues `event` (sent right away when there is room). `false` when the listener is gone.
    fn push(&mut self, event: Delivery) -> bool {
        if !self.outbox.is_empty() {
            self.outbox.push_back(event);
            return true;
        }
        match self.events.try_send(event) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(event)) => {
                self.outbox.push_back(event);
                true
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }

    /// Connects again (rounds of the retry policy, a failed round reported as an error event),
    /// listens on every channel and queues `Reconnected`. Commands are served meanwhile: they
    /// change the set of channels the new connection listens on. `None` when the listener is
    /// gone.
    async fn reconnect(&mut self) -> Option<Conn> {
        let connector = self.connector.clone();
        loop {
            let attempt = connect_with_retry(connector.config(), || connector.connect());
            let result = match self.serve_offline(attempt).await? {
                Ok(mut conn) => subscribe(&self.shared, &mut conn).await.map(|()| conn),
                Err(e) => Err(e),
            };
            match result {
                Ok(conn) => {
                    tracing::info!("pgdbm: listener reconnected");
                    return self
                        .push(Ok((ListenerEvent::Reconnected, 0)))
                        .then_some(conn);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "pgdbm: listener cannot reconnect");
                    if !self.push(Err(e)) {
                        return None;
                    }
                    let pause = tokio::time::sleep(connector.config().retry().max_delay);
                    self.serve_offline(pause).await?;
                }
            }
        }
    }

    /// Waits for `work` while there is no connection, serving commands (they only change the
    /// set of channels) and delivering queued events. `None` when the listener is gone.
    async fn serve_offline<T>(&mut self, work: impl std::future::Future<Output = T>) -> Option<T> {
        let mut work = pin!(work);
        loop {
            let delivering = !self.outbox.is_empty();
            tokio::select! {
                biased;
                command = self.commands.recv() => match command {
                    None => return None,
                    Some(command) => record_offline(&self.shared, command),
                },
                delivered = deliver(&self.events, &mut self.outbox), if delivering => {
                    if !delivered {
                        return None;
                    }
                }
                done = &mut work => return Some(done),
            }
        }
    }
}

/// Sends the oldest queued event once there is room. `false` when the listener is gone.
async fn deliver(events: &mpsc::Sender<Delivery>, outbox: &mut VecDeque<Delivery>) -> bool {
    match events.reserve().await {
        Ok(permit) => {
            if let Some(event) = outbox.pop_front() {
                permit.send(event);
            }
            true
        }
        Err(_) => false,
    }
}

/// Runs a command on the live connection and answers it. `Err` only when the connection was
/// lost (the command is then answered as if it had run: the new connection follows the set of
/// channels).
async fn run_command(shared: &Shared, conn: &mut Conn, command: Command) -> Result<()> {
    let (name, listen, reply) = match command {
        Command::Listen(name, reply) => (name, true, reply),
        Command::Unlisten(name, reply) => (name, false, reply),
    };
    if listen && shared.channels().contains_key(&name) {
        let _ = reply.send(Ok(()));
        return Ok(());
    }
    let verb = if listen { "LISTEN" } else { "UNLISTEN" };
    let sql = format!("{verb} {}", quote_identifier(&name));
    if !listen {
        // From now on its notifications are dropped, also those already on their way.
        shared.channels().remove(&name);
    }
    let result = conn.execute(&sql).await;
    let lost = matches!(&result, Err(e) if e.is_connection_error());
    if listen && (result.is_ok() || lost) {
        shared.subscribe(name);
    }
    match result {
        Err(e) if lost => {
            let _ = reply.send(Ok(()));
            Err(e)
        }
        other => {
            let _ = reply.send(other);
            Ok(())
        }
    }
}

/// A command while disconnected: the set of channels changes, the new connection follows it.
fn record_offline(shared: &Shared, command: Command) {
    let reply = match command {
        Command::Listen(name, reply) => {
            shared.subscribe(name);
            reply
        }
        Command::Unlisten(name, reply) => {
            shared.channels().remove(&name);
            reply
        }
    };
    let _ = reply.send(Ok(()));
}

/// Listens on every channel of the set on a new connection and notes its backend.
async fn subscribe(shared: &Shared, conn: &mut Conn) -> Result<()> {
    let channels: Vec<String> = shared.channels().keys().cloned().collect();
    if !channels.is_empty() {
        let sql = channels
            .iter()
            .map(|name| format!("LISTEN {};", quote_identifier(name)))
            .collect::<String>();
        conn.execute(&sql).await?;
    }
    let pid = conn.backend_pid().await?;
    shared.backend_pid.store(pid, Ordering::Release);
    Ok(())
}
