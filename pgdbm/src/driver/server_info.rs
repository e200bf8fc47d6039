//! What a pool learns from the server when it opens ([`ServerInfo`]: the server version and the
//! database, shown in [`PoolStats`](super::PoolStats)), read once by [`inspect_opened_pool`],
//! which every driver calls at the end of its `connect`.

use std::sync::Arc;

use crate::config::DatabaseConfig;
use crate::error::Result;

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
/// ([`PoolState::server_info`]). A driver calls it at the end of `connect`, once its first
/// connection is in the pool; on error the pool is closed before the error is returned.
///
/// # Errors
///
/// The error of the query.
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
    _config: &DatabaseConfig,
) -> Result<()> {
    let row = pool.fetch_optional(SERVER_INFO_SQL, &[]).await?;
    let row = crate::executor::required_row(row, SERVER_INFO_SQL)?;
    let info = ServerInfo {
        server_version: Arc::from(row.get::<String>(0)?),
        database: Arc::from(row.get::<String>(1)?),
    };
    state.set_server_info(info);
    Ok(())
}
