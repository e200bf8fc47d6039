//! Connection lifetimes: `max_lifetime` and `idle_timeout` are honoured.

use std::time::Duration;

use pgdbm::Result;
use pgdbm::prelude::*;

use crate::Ctx;
use crate::support::{backend_pid, one_connection_pool, open_connections, wait_until};

/// `max_lifetime` is honoured: an idle connection past it is closed (counted in
/// `connections_closed`) and replaced (`min_connections`), within a few lifetimes; a connection
/// in steady use is replaced too.
///
/// # Errors
///
/// Any unexpected query error.
pub async fn max_lifetime_honoured(ctx: &Ctx) -> Result<()> {
    let lifetime = Duration::from_millis(500);
    let db = Database::owning(
        one_connection_pool(ctx, |b| b.max_lifetime(lifetime).idle_timeout(None)).await?,
        None,
    )?;
    let first = backend_pid(&db).await?;

    // Idle: nothing uses the pool while the lifetime passes. (A connection may already have
    // been closed while the pool opened: count from here.)
    let pool = db.pool().clone();
    let closed_before = pool.stats().connections_closed;
    let reaped = wait_until(
        Duration::from_secs(10),
        Duration::from_millis(100),
        || async { Ok(pool.stats().connections_closed > closed_before) },
    )
    .await?;
    assert!(
        reaped,
        "an idle connection outlived max_lifetime: {:?}",
        pool.stats()
    );
    let second = backend_pid(&db).await?;
    assert_ne!(second, first, "the expired connection was reused");

    // In use: a statement every 100 ms; the connection is still replaced.
    let replaced = wait_until(
        Duration::from_secs(10),
        Duration::from_millis(100),
        || async { Ok(backend_pid(&db).await? != second) },
    )
    .await?;
    assert!(replaced, "a busy connection outlived max_lifetime");
    let s = db.pool_stats();
    assert!(s.connections_closed >= closed_before + 2, "{s:?}");
    db.close().await;
    Ok(())
}

/// `idle_timeout` is honoured: with `min_connections` 0, three idle connections are closed
/// within a few timeouts (the pool size drops to 0, `connections_closed` counts them), and the
/// next statement opens a new one.
///
/// # Errors
///
/// Any unexpected query error.
pub async fn idle_timeout_honoured(ctx: &Ctx) -> Result<()> {
    let config = ctx.config_with(|b| {
        b.max_connections(3)
            .min_connections(0)
            .idle_timeout(Duration::from_millis(500))
            .max_lifetime(None)
    })?;
    let pool = ctx.connect(config).await?;
    open_connections(&pool, 3).await?;
    let settled = wait_until(
        Duration::from_secs(2),
        Duration::from_millis(10),
        || async { Ok(pool.stats().idle == 3) },
    )
    .await?;
    assert!(settled, "{:?}", pool.stats());

    let emptied = wait_until(
        Duration::from_secs(10),
        Duration::from_millis(100),
        || async {
            let s = pool.stats();
            Ok(s.size == 0 && s.connections_closed >= 3)
        },
    )
    .await?;
    assert!(
        emptied,
        "idle connections outlived idle_timeout: {:?}",
        pool.stats()
    );
    pool.fetch_optional("SELECT 1", &[]).await?;
    let s = pool.stats();
    assert!(s.size >= 1 && s.connections_created >= 1, "{s:?}");
    pool.close().await;
    Ok(())
}
