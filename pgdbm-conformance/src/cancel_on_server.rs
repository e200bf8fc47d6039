//! A statement whose future is dropped is stopped on the server, promptly, and its connection
//! is never handed to anyone while it may still run — and the cancel never hits a statement
//! that came later.

use std::time::{Duration, Instant};

use pgdbm::Result;
use pgdbm::prelude::*;

use crate::Ctx;
use crate::cancellation::Probe;
use crate::support::wait_until;

/// Generous bound for "promptly" (the target is ~100 ms; the sleeps raced are 3 s).
pub(crate) const PROMPTLY: Duration = Duration::from_millis(1_500);

/// Active statements of the probe's sessions whose text contains `marker`.
pub(crate) async fn running(ctx: &Ctx, probe: &Probe, marker: &str) -> Result<i64> {
    ctx.pool
        .fetch_value(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 \
             AND state = 'active' AND strpos(query, $2) > 0",
            params![probe.app.as_str(), marker],
        )
        .await
}

/// As [`gone_within`], for an abandoned *autocommit* statement of the pool: with `multiplexing`
/// on it ran on a shared connection, where no cancel request is sent (it could hit a
/// neighbour's statement pipelined on the same session) — it runs to its end, its result
/// discarded — so this is passed over there, saying so.
pub(crate) async fn autocommit_gone_within(
    ctx: &Ctx,
    probe: &Probe,
    marker: &str,
    what: &str,
) -> Result<()> {
    if ctx.config.multiplexing() && !ctx.config.pooler().is_transaction() {
        eprintln!(
            "{what}: multiplexed, the abandoned statement runs to its end on its shared \
             connection (no cancel request there, by design)"
        );
        return Ok(());
    }
    gone_within(ctx, probe, marker, what).await.map(drop)
}

/// Waits until no statement of the probe containing `marker` runs any more; returns how long
/// that took, failing past [`PROMPTLY`].
pub(crate) async fn gone_within(
    ctx: &Ctx,
    probe: &Probe,
    marker: &str,
    what: &str,
) -> Result<Duration> {
    let start = Instant::now();
    let gone = wait_until(PROMPTLY, Duration::from_millis(10), || async {
        Ok(running(ctx, probe, marker).await? == 0)
    })
    .await?;
    let took = start.elapsed();
    assert!(
        gone,
        "{what}: the abandoned statement still runs on the server after {took:?}"
    );
    eprintln!("{what}: the abandoned statement was gone from the server after {took:?}");
    Ok(took)
}

/// Times one `SELECT 1` on the probe's pool, failing past [`PROMPTLY`].
async fn next_statement_is_prompt(probe: &Probe, what: &str) -> Result<()> {
    let start = Instant::now();
    assert_eq!(probe.db.fetch_value::<i32>("SELECT 1", &[]).await?, 1);
    let took = start.elapsed();
    assert!(
        took < PROMPTLY,
        "{what}: the next statement waited {took:?} behind the abandoned one"
    );
    eprintln!("{what}: the next statement on the one-connection pool answered in {took:?}");
    Ok(())
}

/// `tokio::time::timeout(200 ms, db.execute("SELECT pg_sleep(3)"))`: the statement is gone
/// from `pg_stat_activity` well before its 3 s, and the next `SELECT 1` on the one-connection
/// pool answers well under 3 s. The same inside a transaction: the rollback does not wait for
/// the sleep either, and no session is left `idle in transaction`.
///
/// # Errors
///
/// Any unexpected query error.
pub async fn dropped_statement_is_cancelled_on_the_server(ctx: &Ctx) -> Result<()> {
    crate::cancellation::cancellation_tables(ctx).await?;
    let probe = Probe::open(ctx, 1).await?;
    let db = probe.db.clone();

    let slow = db.execute("SELECT pg_sleep(3) /* autocommit */", &[]);
    assert!(
        tokio::time::timeout(Duration::from_millis(200), slow)
            .await
            .is_err()
    );
    autocommit_gone_within(ctx, &probe, "/* autocommit */", "autocommit").await?;
    next_statement_is_prompt(&probe, "autocommit").await?;

    let tx = db.begin().await?;
    tx.execute("SELECT 1", &[]).await?;
    let slow = tx.execute("SELECT pg_sleep(3) /* in transaction */", &[]);
    assert!(
        tokio::time::timeout(Duration::from_millis(200), slow)
            .await
            .is_err()
    );
    gone_within(ctx, &probe, "/* in transaction */", "in a transaction").await?;
    let start = Instant::now();
    tx.rollback().await?;
    let took = start.elapsed();
    assert!(took < PROMPTLY, "the rollback waited {took:?}");
    next_statement_is_prompt(&probe, "after the transaction").await?;
    assert_eq!(probe.in_transaction(ctx).await?, 0);

    // The transaction's handle simply dropped (no explicit rollback).
    let tx = db.begin().await?;
    let slow = tx.execute("SELECT pg_sleep(3) /* dropped transaction */", &[]);
    assert!(
        tokio::time::timeout(Duration::from_millis(200), slow)
            .await
            .is_err()
    );
    drop(tx);
    gone_within(
        ctx,
        &probe,
        "/* dropped transaction */",
        "dropped transaction",
    )
    .await?;
    next_statement_is_prompt(&probe, "after the dropped transaction").await?;
    probe
        .assert_clean(ctx, "after the cancelled statements", 1)
        .await?;
    probe.db.close().await;
    Ok(())
}

/// The race: a cancel request that arrives after the abandoned statement already finished must
/// not hit the statement that reused the connection. Hundreds of statements of 0–3 ms are cut
/// after 0–3 ms on a one-connection pool (so the cut often comes just as the statement ends),
/// each followed at once by an unrelated statement — on the pool, and as the `ROLLBACK` of a
/// transaction whose statement was cut — none of which may fail with `57014`.
///
/// # Errors
///
/// Any unexpected query error.
pub async fn cancel_never_hits_a_later_statement(ctx: &Ctx) -> Result<()> {
    crate::cancellation::cancellation_tables(ctx).await?;
    let probe = Probe::open(ctx, 1).await?;
    let db = probe.db.clone();
    let mut cut = 0;
    for round in 0..300u32 {
        let sleep = f64::from(round % 4) / 1000.0;
        let limit = Duration::from_micros(u64::from((round * 7) % 4) * 1000 + 200);
        let p = params![sleep];
        let first = db.execute("SELECT pg_sleep($1)", p);
        if tokio::time::timeout(limit, first).await.is_err() {
            cut += 1;
        }
        // Long enough (10 ms) for a late cancel to land on it.
        let p = params![i64::from(round)];
        let next: Result<i64> = db
            .fetch_value("SELECT $1::int8 FROM pg_sleep(0.01)", p)
            .await;
        match next {
            Ok(v) => assert_eq!(v, i64::from(round)),
            Err(e) => panic!("round {round}: the statement after a cut one failed: {e}"),
        }
    }
    for round in 0..60u32 {
        let tx = db.begin().await?;
        let sleep = f64::from(round % 4) / 1000.0;
        let limit = Duration::from_micros(u64::from(round % 3) * 1000 + 300);
        let p = params![sleep];
        let first = tx.execute("SELECT pg_sleep($1)", p);
        let finished = tokio::time::timeout(limit, first).await.is_ok();
        let rolled_back = tx.rollback().await;
        if let Err(e) = &rolled_back {
            assert!(
                !e.is_query_canceled(),
                "round {round}: the ROLLBACK after a cut statement was cancelled: {e}"
            );
            panic!("round {round}: ROLLBACK failed (statement finished: {finished}): {e}");
        }
        let next = db
            .fetch_value::<i32>("SELECT 7 FROM pg_sleep(0.01)", &[])
            .await;
        match next {
            Ok(v) => assert_eq!(v, 7),
            Err(e) => panic!("round {round}: the statement after a cut transaction failed: {e}"),
        }
    }
    eprintln!("{cut} of 300 autocommit statements were cut before they finished");
    assert!(cut > 0, "no statement was cut: the race was not provoked");
    probe.assert_clean(ctx, "after the race", 1).await?;
    probe.db.close().await;
    Ok(())
}

/// A pool's own statement cut short leaves a connection that is handed out again only once it
/// is clean: the connection that answers next is idle, outside any transaction — also when the
/// cut script had opened a transaction (`BEGIN; … ; COMMIT` cut inside).
///
/// # Errors
///
/// Any unexpected query error.
pub async fn cut_script_leaves_no_transaction(ctx: &Ctx) -> Result<()> {
    crate::cancellation::cancellation_tables(ctx).await?;
    let probe = Probe::open(ctx, 1).await?;
    let script = "BEGIN; INSERT INTO {{tables.t}} (id) VALUES (1); SELECT pg_sleep(3); COMMIT";
    let cut = probe.db.batch_execute(script);
    assert!(
        tokio::time::timeout(Duration::from_millis(200), cut)
            .await
            .is_err()
    );
    gone_within(ctx, &probe, "pg_sleep(3)", "cut script").await?;
    next_statement_is_prompt(&probe, "cut script").await?;
    assert!(
        !crate::cancellation::in_t(ctx, 1).await?,
        "half of the cut script was committed"
    );
    probe.assert_clean(ctx, "cut script", 2).await?;
    // The cut script's connection (or its replacement) accepts a new transaction.
    probe
        .db
        .transaction(|tx| async move {
            tx.execute("INSERT INTO {{tables.t}} (id) VALUES (3)", &[])
                .await
        })
        .await?;
    assert!(crate::cancellation::in_t(ctx, 3).await?);
    probe.db.close().await;
    Ok(())
}
