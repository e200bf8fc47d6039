//! The outbox consumer: claims events with `FOR UPDATE SKIP LOCKED`, turns them into
//! notifications in the same transaction, and waits for the next commit's notification or the
//! poll interval, whichever comes first.

use std::time::Duration;

use orders_service::OrderPlaced;
use orders_service::outbox::{self, OutboxEvent};
use pgdbm::prelude::*;
use pgdbm::{Listener, ListenerEvent};

/// Consumes the orders outbox. Any number may run, in one process or many: each event is
/// handled by exactly one of them (see [`process_batch`](Consumer::process_batch)).
#[derive(Debug, Clone)]
pub struct Consumer {
    db: Database,
    outbox: Database,
    batch_size: i64,
    poll_interval: Duration,
}

impl Consumer {
    /// A consumer writing notifications through `db` (the notifications module's handle) and
    /// reading the outbox through `outbox` (a handle with the orders schema on the same
    /// database: the claim and the notification commit in one transaction). Batches of 100,
    /// polling every 5 s.
    pub fn new(db: Database, outbox: Database) -> Self {
        Consumer {
            db,
            outbox,
            batch_size: 100,
            poll_interval: Duration::from_secs(5),
        }
    }

    /// The most events one transaction claims (at least 1).
    pub fn with_batch_size(mut self, batch_size: i64) -> Self {
        self.batch_size = batch_size.max(1);
        self
    }

    /// How long [`run`](Consumer::run) waits without a notification before looking anyway:
    /// the bound on how late an event whose notification was lost is handled.
    pub fn with_poll_interval(mut self, poll_interval: Duration) -> Self {
        self.poll_interval = poll_interval;
        self
    }

    /// Handles one batch in one transaction: claims up to the batch size of pending events
    /// (skipping those other consumers hold), records a notification for each `order.placed`,
    /// marks them processed and commits. Returns the ids handled (empty: nothing pending).
    ///
    /// Dropped or failing midway, the transaction rolls back and the events are pending again.
    /// An event that cannot be handled (unknown topic, undecodable payload) is logged and
    /// marked processed, so that it cannot block the queue.
    ///
    /// # Errors
    ///
    /// The database's errors (nothing was handled).
    pub async fn process_batch(&self) -> pgdbm::Result<Vec<i64>> {
        let (db, limit) = (self.db.clone(), self.batch_size);
        self.outbox
            .transaction(|tx| async move {
                let events = outbox::claim(&tx, limit).await?;
                let notes = tx.with_schema_of(&db);
                for event in &events {
                    handle(&notes, event).await?;
                }
                let ids: Vec<i64> = events.iter().map(|e| e.id).collect();
                outbox::mark_processed(&tx, &ids).await?;
                Ok::<_, pgdbm::Error>(ids)
            })
            .await
    }

    /// Handles batches until one comes back short of the batch size. Returns how many events
    /// were handled.
    ///
    /// # Errors
    ///
    /// As [`process_batch`](Consumer::process_batch); batches committed before stay handled.
    pub async fn drain(&self) -> pgdbm::Result<usize> {
        let mut handled = 0;
        loop {
            let batch = self.process_batch().await?.len();
            handled += batch;
            if (batch as i64) < self.batch_size {
                return Ok(handled);
            }
        }
    }

    /// Consumes until dropped: listens on the outbox channel, drains, then waits for a
    /// notification (sent when an event's transaction commits), a reconnect of the listener
    /// (notifications may have been lost meanwhile) or the poll interval, and drains again.
    /// Without a listener (it cannot connect, e.g. behind a transaction pooler) it polls only.
    /// Errors are logged and retried at the next wake-up.
    ///
    /// Cancel safe: dropping the future rolls back the batch in flight (its events are pending
    /// again) and closes the listener's connection.
    pub async fn run(&self) {
        let mut listener = self.listen().await;
        loop {
            if let Err(e) = self.drain().await {
                tracing::warn!(error = %e, "notifications: cannot handle outbox events");
            }
            let woken = async {
                match listener.as_mut() {
                    Some(listener) => listener.recv().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                event = woken => match event {
                    Ok(ListenerEvent::Reconnected) => {
                        tracing::info!("notifications: listener reconnected, looking for missed events");
                    }
                    Ok(_) => {}
                    Err(e) => {
                        // The listener keeps reconnecting; poll meanwhile.
                        tracing::warn!(error = %e, "notifications: listener disconnected");
                        tokio::time::sleep(self.poll_interval).await;
                    }
                },
                () = tokio::time::sleep(self.poll_interval) => {}
            }
        }
    }

    /// A listener on the outbox channel, or `None` (logged) when none can be had.
    async fn listen(&self) -> Option<Listener> {
        let listening = async {
            let listener = self.outbox.listener().await?;
            listener.listen(outbox::CHANNEL).await?;
            Ok::<_, pgdbm::Error>(listener)
        };
        match listening.await {
            Ok(listener) => Some(listener),
            Err(e) => {
                tracing::warn!(error = %e, "notifications: no listener, polling only");
                None
            }
        }
    }
}

/// Records the notification of one event (in the batch's transaction).
async fn handle(notes: &Transaction, event: &OutboxEvent) -> pgdbm::Result<()> {
    if event.topic != "order.placed" {
        tracing::warn!(id = event.id, topic = %event.topic, "notifications: unknown topic, skipped");
        return Ok(());
    }
    let placed: OrderPlaced = match serde_json::from_value(event.payload.clone()) {
        Ok(placed) => placed,
        Err(e) => {
            tracing::error!(id = event.id, error = %e, "notifications: bad order.placed payload, skipped");
            return Ok(());
        }
    };
    let message = format!(
        "Your order {} was placed: {}.{:02} total.",
        placed.order_id,
        placed.total_cents / 100,
        placed.total_cents % 100
    );
    crate::record(notes, event.id, placed.user_id, &message).await?;
    Ok(())
}
