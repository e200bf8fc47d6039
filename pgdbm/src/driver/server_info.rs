//! What a pool learns from the server when it opens ([`ServerInfo`]: the server version and the
//! database, shown in [`PoolStats`](super::PoolStats)), and the check that a pinned
//! `search_path` is in effect: one round trip in [`inspect_opened_pool`], which every driver
//! calls at the end of its `connect`.

use std::sync::Arc;

use crate::config::{DatabaseConfig, Pooler, search_path_entries};
use crate::error::{Error, Result};

use super::pool::PoolProvider;
use super::pool_state::PoolState;

/// The server a pool is connected to, as read when the pool opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerInfo {
    /// `server_version` (e.g. `15.4 (Debian 15.4-1.pgdg120+1)`).
    pub server_version: Arc<str>,
    /// `current_database()`: the database on the server (behind a pooler, the server's name,
    /// which may differ from the name the pooler is asked for).
    pub database: Arc<str>,
}

/// One round trip: the version, the database and the effective `search_path`.
const SERVER_INFO_SQL: &str = "SELECT pg_catalog.current_setting('server_version'), \
     pg_catalog.current_database()::text, pg_catalog.current_setting('search_path')";

/// Reads the server's version and database on a newly opened pool and keeps them in `state`
/// ([`PoolState::server_info`]), and verifies a pinned `search_path`
/// ([`DatabaseConfigBuilder::pin_search_path`](crate::DatabaseConfigBuilder::pin_search_path)).
/// A driver calls it at the end of `connect`, once its first connection is in the pool; on
/// error the pool is closed before the error is returned.
///
/// # Errors
///
/// [`Error::Config`] naming `pin_search_path` when the server's effective `search_path` is not
/// the pinned one; the error of the query.
pub async fn inspect_opened_pool(
    pool: &dyn PoolProvider,
    state: &PoolState,
    config: &DatabaseConfig,
) -> Result<()> {
    let result = inspect(pool, state, config).await;
    if result.is_err() {
        pool.close().await;
    }
    result
}

async fn inspect(
    pool: &dyn PoolProvider,
    state: &PoolState,
    config: &DatabaseConfig,
) -> Result<()> {
    let row = pool.fetch_optional(SERVER_INFO_SQL, &[]).await?;
    let row = crate::executor::required_row(row, SERVER_INFO_SQL)?;
    state.set_server_info(ServerInfo {
        server_version: Arc::from(row.get::<String>(0)?),
        database: Arc::from(row.get::<String>(1)?),
    });
    match config.pinned_search_path() {
        Some(pin) => check_pin(pin, &row.get::<String>(2)?, config.pooler()),
        None => Ok(()),
    }
}

/// The pin is in effect when the server reports the same entries (its spacing may differ).
fn check_pin(requested: &str, effective: &str, pooler: Pooler) -> Result<()> {
    if search_path_entries(effective) == search_path_entries(requested) {
        return Ok(());
    }
    let why = if pooler.is_transaction() {
        "behind a transaction pooler pgdbm sets it only in the transactions it opens, so \
         autocommit statements would run unpinned"
    } else {
        "the startup parameter did not arrive (a proxy or pooler may drop it) or was overridden"
    };
    Err(Error::config(
        "pin_search_path",
        format!(
            "the pinned search_path is not in effect: requested {requested:?}, the server \
             reports {effective:?} ({why}); unqualified table names would resolve instead of \
             failing. Pin it for the role (ALTER ROLE … SET search_path = {requested}), which \
             this check accepts, or open the pool without the pin"
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pin_compares_entries() {
        assert!(check_pin("a, b", "a,b", Pooler::None).is_ok());
        assert!(check_pin("pg_catalog", "pg_catalog", Pooler::Transaction).is_ok());
        let err = check_pin("pg_catalog", "\"$user\", public", Pooler::Transaction).unwrap_err();
        assert!(
            matches!(err, Error::Config { ref field, .. } if field == "pin_search_path"),
            "{err:?}"
        );
        let text = err.to_string();
        assert!(
            text.contains("transaction pooler") && text.contains("ALTER ROLE"),
            "{text}"
        );
    }
}
