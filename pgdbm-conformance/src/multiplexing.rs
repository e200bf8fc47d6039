//! `multiplexing`: autocommit statements on shared connections, whatever holds the pool's
//! exclusive connections; statements that touch session state, and transactions, still wait for
//! an exclusive one. A driver that cannot multiplex refuses the setting with a typed error.

use std::time::{Duration, Instant};

use futures_util::future::join_all;
use pgdbm::prelude::*;
use pgdbm::{Database, Error, Result, SharedPool};

use super::Ctx;

/// How long a statement waits for the pool's one exclusive connection in these checks.
const ACQUIRE: Duration = Duration::from_millis(300);

/// A pool with multiplexing on, two shared connections and one exclusive connection, or the
/// driver's refusal.
async fn multiplexed_pool(ctx: &Ctx) -> Result<SharedPool> {
    let config = ctx.config_with(|b| {
        b.multiplexing(true)
            .multiplexed_connections(2)
            .min_connections(1)
            .max_connections(1)
            .acquire_timeout(ACQUIRE)
    })?;
    ctx.connect(config).await
}

/// Waits (up to 10 s) until `db` runs `SELECT pg_backend_pid()` without the exclusive
/// connection (held by the caller): the shared connections open in the background.
async fn shared_backend(db: &Database) -> Result<i32> {
    let start = Instant::now();
    loop {
        match db.fetch_value::<i32>("SELECT pg_backend_pid()", &[]).await {
            Ok(pid) => return Ok(pid),
            Err(Error::PoolTimeout { .. }) if start.elapsed() < Duration::from_secs(10) => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => return Err(e),
        }
    }
}

/// With multiplexing on and the pool's only exclusive connection checked out, 32 concurrent
/// point selects each get their own row from at most two server sessions (the shared
/// connections), while `SET`, `BEGIN` and a transaction wait for the exclusive connection and
/// time out. A driver that cannot multiplex refuses `multiplexing` with `Error::Config` naming
/// it.
///
/// # Errors
///
/// Any unexpected query error.
pub async fn multiplexing_shares_autocommit_statements(ctx: &Ctx) -> Result<()> {
    let opened = multiplexed_pool(ctx).await;
    if !ctx.caps.multiplexes {
        let err = crate::assert_err!(opened, Error::Config { .. });
        assert!(
            matches!(err, Error::Config { ref field, .. } if field == "multiplexing"),
            "{err:?}"
        );
        eprintln!("multiplexing_shares_autocommit_statements: the driver refuses multiplexing");
        return Ok(());
    }
    let pool = opened?;
    let db = Database::new(pool.clone(), Some(&ctx.schema))?;
    let held = pool.acquire().await?;
    let held_pid = held
        .fetch_value::<i32>("SELECT pg_backend_pid()", &[])
        .await?;
    shared_backend(&db).await?;

    let answers = join_all((0..32_i32).map(|n| {
        let db = db.clone();
        async move {
            let row = db
                .fetch_one("SELECT pg_backend_pid(), $1::int4", &[&n])
                .await?;
            Ok::<_, Error>((n, row.get::<i32>(0)?, row.get::<i32>(1)?))
        }
    }))
    .await;
    let mut pids = Vec::new();
    for answer in answers {
        let (n, pid, echoed) = answer?;
        assert_eq!(n, echoed, "a statement got another statement's row");
        assert_ne!(
            pid, held_pid,
            "a shared statement ran on the held connection"
        );
        if !pids.contains(&pid) {
            pids.push(pid);
        }
    }
    assert!(
        pids.len() <= 2,
        "more server sessions than shared connections: {pids:?}"
    );

    // Session statements and transactions need the exclusive connection.
    for sql in ["SET LOCAL lock_timeout = 0", "BEGIN", "LISTEN some_channel"] {
        crate::assert_err!(db.execute(sql, &[]).await, Error::PoolTimeout { .. });
    }
    crate::assert_err!(db.begin().await, Error::PoolTimeout { .. });
    drop(held);
    db.execute("SET LOCAL lock_timeout = 0", &[]).await?;
    db.transaction(|tx| async move { tx.execute("SELECT 1", &[]).await })
        .await?;
    pool.close().await;
    crate::assert_err!(db.execute("SELECT 1", &[]).await, Error::PoolClosed);
    Ok(())
}
