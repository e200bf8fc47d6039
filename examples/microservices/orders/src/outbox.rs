//! The transactional outbox: events written in the transaction of the change they describe,
//! then consumed by other services.
//!
//! * [`publish`] inserts an event and sends a notification on [`CHANNEL`] (scoped to the
//!   orders schema) in the caller's transaction: both take effect at commit, or neither.
//! * A consumer [`claim`]s a batch in a transaction of its own (`FOR UPDATE SKIP LOCKED`: rows
//!   another consumer holds are skipped, not waited for), handles it, marks it with
//!   [`mark_processed`] and commits. Two consumers never get the same event; a consumer that
//!   fails or is cancelled rolls back and the events are pending again.
//! * The notification only wakes consumers up; they must also poll, because notifications sent
//!   while a listener is disconnected are lost.

use chrono::{DateTime, Utc};
use pgdbm::prelude::*;
use serde::Serialize;

/// The channel [`publish`] notifies (scoped to the orders schema: `<schema>.outbox` on the
/// server). Listen on it with a listener of a handle with the orders schema.
pub const CHANNEL: &str = "outbox";

/// An event of the outbox.
#[derive(Debug, Clone, PartialEq, FromRow)]
pub struct OutboxEvent {
    /// Its id, increasing in commit order of the inserts (not strictly: ids are taken before
    /// commit).
    pub id: i64,
    /// What happened, e.g. `order.placed`.
    pub topic: String,
    /// The event's data.
    pub payload: serde_json::Value,
    /// When it was written.
    pub created_at: DateTime<Utc>,
}

/// Writes an event in `tx` (a transaction with the orders schema: begun on the orders handle,
/// or `tx.with_schema_of(&orders_db)`) and notifies [`CHANNEL`] with its id; both take effect
/// when `tx` commits. Returns the event's id.
///
/// # Errors
///
/// The database's errors.
pub async fn publish(
    tx: &Transaction,
    topic: &str,
    payload: &(impl Serialize + Sync),
) -> pgdbm::Result<i64> {
    let id: i64 = tx
        .fetch_value(
            "INSERT INTO {{tables.outbox}} (topic, payload) VALUES ($1, $2) RETURNING id",
            params![topic, pgdbm::Json(payload)],
        )
        .await?;
    tx.notify(CHANNEL, &id.to_string()).await?;
    Ok(id)
}

/// Locks and returns up to `limit` pending events, oldest first, skipping those another
/// transaction holds. Call it in a transaction with the orders schema and mark what you
/// handled with [`mark_processed`] before committing; the locks last until the transaction
/// ends.
///
/// # Errors
///
/// The database's errors.
pub async fn claim(tx: &Transaction, limit: i64) -> pgdbm::Result<Vec<OutboxEvent>> {
    tx.fetch_all_as(
        "SELECT id, topic, payload, created_at FROM {{tables.outbox}}
         WHERE processed_at IS NULL ORDER BY id LIMIT $1
         FOR UPDATE SKIP LOCKED",
        params![limit],
    )
    .await
}

/// Marks events handled (in the transaction that claimed them).
///
/// # Errors
///
/// The database's errors.
pub async fn mark_processed(tx: &Transaction, ids: &[i64]) -> pgdbm::Result<u64> {
    tx.execute(
        "UPDATE {{tables.outbox}} SET processed_at = now() WHERE id = ANY($1)",
        params![ids],
    )
    .await
}

/// How many events are pending.
///
/// # Errors
///
/// The database's errors.
pub async fn pending(db: &dyn Executor) -> pgdbm::Result<i64> {
    db.fetch_value(
        "SELECT count(*) FROM {{tables.outbox}} WHERE processed_at IS NULL",
        &[],
    )
    .await
}
