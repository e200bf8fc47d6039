//! The notifications service of the microservices example.
//!
//! A pgdbm [`Module`] owning `{{tables.notifications}}` ([`NotificationsModule`], depending on
//! the orders module whose outbox it reads); a [`Consumer`] that turns the orders outbox's
//! events into notifications — each event exactly once however many consumers run, woken by
//! LISTEN/NOTIFY and polling as a fallback; and an axum [`router`] the host nests under
//! `/notifications`.

mod consumer;
mod http;

use chrono::{DateTime, Utc};
use pgdbm::MigrationSource;
use pgdbm::prelude::*;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub use consumer::Consumer;
pub use http::router;

/// The notifications module: its name (the ledger key), its embedded migrations, and the
/// module whose outbox it consumes.
#[derive(Debug, Clone, Copy, Default)]
pub struct NotificationsModule;

impl Module for NotificationsModule {
    fn name(&self) -> &str {
        "notifications"
    }

    fn migrations(&self) -> MigrationSource {
        pgdbm::embed_migrations!("migrations")
    }

    fn depends_on(&self) -> Vec<&str> {
        vec!["orders"]
    }
}

/// A notification sent to a user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, FromRow)]
pub struct Notification {
    /// Its id.
    pub id: i64,
    /// The outbox event it was made from.
    pub event_id: i64,
    /// Who it is for.
    pub user_id: Uuid,
    /// What it says.
    pub message: String,
    /// When it was made.
    pub created_at: DateTime<Utc>,
}

/// Records a notification made from outbox event `event_id`; a second one for the same event
/// is ignored. Returns whether it was recorded.
///
/// # Errors
///
/// The database's errors.
pub async fn record(
    db: &dyn Executor,
    event_id: i64,
    user_id: Uuid,
    message: &str,
) -> pgdbm::Result<bool> {
    let inserted = db
        .execute(
            "INSERT INTO {{tables.notifications}} (event_id, user_id, message) VALUES ($1, $2, $3)
             ON CONFLICT (event_id) DO NOTHING",
            params![event_id, user_id, message],
        )
        .await?;
    Ok(inserted == 1)
}

/// The latest notifications of `user_id`, newest first, at most `limit`.
///
/// # Errors
///
/// The database's errors.
pub async fn for_user(
    db: &dyn Executor,
    user_id: Uuid,
    limit: i64,
) -> pgdbm::Result<Vec<Notification>> {
    db.fetch_all_as(
        "SELECT id, event_id, user_id, message, created_at FROM {{tables.notifications}}
         WHERE user_id = $1 ORDER BY id DESC LIMIT $2",
        params![user_id, limit],
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_embedded() {
        let source = NotificationsModule.migrations();
        let names: Vec<&str> = source.migrations().iter().map(|m| m.name()).collect();
        assert_eq!(names, ["001_create_notifications.sql"]);
    }
}
