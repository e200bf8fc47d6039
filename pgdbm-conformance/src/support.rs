//! Helpers shared by the checks of several files.

use std::collections::HashSet;
use std::future::Future;
use std::time::{Duration, Instant};

use pgdbm::prelude::*;
use pgdbm::{DatabaseConfigBuilder, Error, Result, SharedPool};

use crate::Ctx;

/// Waits until `cond` holds, checking every `every`, for at most `limit`; `false` on timeout.
pub(crate) async fn wait_until<F, Fut>(
    limit: Duration,
    every: Duration,
    mut cond: F,
) -> Result<bool>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<bool>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if cond().await? {
            return Ok(true);
        }
        if Instant::now() >= deadline {
            return Ok(false);
        }
        tokio::time::sleep(every).await;
    }
}

/// The backend pid of the connection a handle's next statement runs on.
pub(crate) async fn backend_pid(db: &Database) -> Result<i32> {
    db.fetch_value::<i32>("SELECT pg_backend_pid()", &[]).await
}

/// Ends every session with `application_name = app` (waiting up to 5 s for each to exit) and
/// returns their pids. Runs on the context's own pool, whose application name differs.
pub(crate) async fn terminate_app(ctx: &Ctx, app: &str) -> Result<Vec<i32>> {
    let rows = ctx
        .pool
        .fetch_all(
            "SELECT pid, pg_terminate_backend(pid, 5000) AS ended FROM pg_stat_activity \
             WHERE application_name = $1 AND pid <> pg_backend_pid()",
            params![app],
        )
        .await?;
    let mut pids = Vec::new();
    for row in rows {
        let ended: bool = row.get("ended")?;
        assert!(ended, "a backend did not exit within 5 s");
        pids.push(row.get::<i32>("pid")?);
    }
    Ok(pids)
}

/// The pids of the sessions with `application_name = app`.
pub(crate) async fn app_pids(ctx: &Ctx, app: &str) -> Result<HashSet<i32>> {
    let rows = ctx
        .pool
        .fetch_all(
            "SELECT pid FROM pg_stat_activity WHERE application_name = $1",
            params![app],
        )
        .await?;
    rows.iter().map(|r| r.get::<i32>("pid")).collect()
}

/// The causes of `err` (its `source()` chain), outermost first.
fn causes(err: &Error) -> impl Iterator<Item = &(dyn std::error::Error + 'static)> {
    std::iter::successors(std::error::Error::source(err), |s| s.source())
}

/// An error's `Display` and `Debug` texts and those of every cause in its chain.
pub(crate) fn error_texts(err: &Error) -> String {
    let mut text = format!("{err}\n{err:?}");
    for s in causes(err) {
        text.push_str(&format!("\n{s}\n{s:?}"));
    }
    text
}

/// The error and its causes on one line, `: ` apart.
pub(crate) fn error_chain(err: &Error) -> String {
    let mut text = err.to_string();
    for s in causes(err) {
        text.push_str(": ");
        text.push_str(&s.to_string());
    }
    text
}

/// A pool of exactly one connection, opened at once (`max_connections` and `min_connections`
/// 1), with `change` applied to the test configuration besides.
pub(crate) async fn one_connection_pool(
    ctx: &Ctx,
    change: impl FnOnce(DatabaseConfigBuilder) -> DatabaseConfigBuilder,
) -> Result<SharedPool> {
    let config = ctx.config_with(|b| change(b.max_connections(1).min_connections(1)))?;
    ctx.connect(config).await
}

/// `true` when another session can take the module's migration lock (it is then released).
pub(crate) async fn lock_is_free(ctx: &Ctx, module: &str) -> Result<bool> {
    let conn = ctx.pool.acquire().await?;
    let free: bool = conn
        .fetch_value(
            "SELECT pg_try_advisory_lock(hashtext('pgdbm_migration_' || $1))",
            params![module],
        )
        .await?;
    if free {
        conn.fetch_optional(
            "SELECT pg_advisory_unlock(hashtext('pgdbm_migration_' || $1))",
            params![module],
        )
        .await?;
    }
    Ok(free)
}

/// Makes `pool` open `n` connections: checks `n` out at once, then returns them all.
pub(crate) async fn open_connections(pool: &SharedPool, n: usize) -> Result<()> {
    let mut held = Vec::with_capacity(n);
    for _ in 0..n {
        held.push(pool.acquire().await?);
    }
    drop(held);
    Ok(())
}
