//! Helpers shared by the checks of several files.

use std::collections::HashSet;
use std::future::Future;
use std::time::{Duration, Instant};

use pgdbm::prelude::*;
use pgdbm::{Error, Result};

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

/// An error's `Display` and `Debug` texts and those of every cause in its chain.
pub(crate) fn error_texts(err: &Error) -> String {
    let mut text = format!("{err}\n{err:?}");
    let mut source = std::error::Error::source(err);
    while let Some(s) = source {
        text.push_str(&format!("\n{s}\n{s:?}"));
        source = s.source();
    }
    text
}
