//! Per-call bounds: `Database::with_timeout`, `Transaction::with_timeout` and a bounded handle's
//! closure transactions give a typed [`Error::Timeout`] and leave nothing running.

use std::time::{Duration, Instant};

use pgdbm::prelude::*;
use pgdbm::{Error, ErrorKind, Result, Transaction};

use crate::Ctx;
use crate::cancel_on_server::{PROMPTLY, autocommit_gone_within, gone_within};
use crate::cancellation::{Probe, cancellation_tables, poll_then_drop, sweep};

const LIMIT: Duration = Duration::from_millis(200);

/// Asserts `result` is the typed timeout of [`LIMIT`], returned well before the 3 s sleep.
fn assert_timeout<T: std::fmt::Debug>(result: Result<T>, started: Instant, what: &str) {
    let took = started.elapsed();
    let err = match result {
        Err(e) => e,
        Ok(v) => panic!("{what}: expected a timeout, got {v:?}"),
    };
    assert!(err.is_timeout(), "{what}: {err} ({err:?})");
    assert!(
        matches!(err, Error::Timeout { limit, .. } if limit == LIMIT),
        "{what}: {err:?}"
    );
    assert_eq!(err.kind(), Some(ErrorKind::QueryCanceled), "{what}");
    assert!(err.is_query_canceled(), "{what}");
    assert!(took < PROMPTLY, "{what}: returned after {took:?}");
}

/// A pool opened with `command_timeout = 200 ms`: every handle on it (owning, shared, another
/// schema's) bounds each call by it with the per-call machinery — a statement past it returns
/// [`Error::Timeout`] and is gone from the server, the connection answers the next statement at
/// once — and a transaction begun through such a handle is bounded the same way.
/// `with_timeout` replaces it.
///
/// # Errors
///
/// Any unexpected query error.
pub async fn command_timeout_bounds_every_call(ctx: &Ctx) -> Result<()> {
    cancellation_tables(ctx).await?;
    let probe = Probe::open_with(ctx, 1, |b| b.command_timeout(LIMIT)).await?;
    assert_eq!(probe.db.timeout(), Some(LIMIT));
    let shared = pgdbm::Database::new(probe.db.pool().clone(), None)?;
    assert_eq!(shared.timeout(), Some(LIMIT));
    assert_eq!(probe.db.with_schema(None)?.timeout(), Some(LIMIT));

    for (db, marker) in [(&probe.db, "/* owning */"), (&shared, "/* shared */")] {
        let start = Instant::now();
        let result = db
            .fetch_value::<i32>(&format!("SELECT 1 FROM pg_sleep(3) {marker}"), &[])
            .await;
        assert_timeout(result, start, marker);
        autocommit_gone_within(ctx, &probe, marker, marker).await?;
        // One connection: the next statement gets it back clean, not busy.
        let start = Instant::now();
        assert_eq!(db.fetch_value::<i32>("SELECT 1", &[]).await?, 1);
        assert!(
            start.elapsed() < PROMPTLY,
            "{marker}: {:?}",
            start.elapsed()
        );
    }

    // A transaction begun through the handle: bounded on the server and by the client.
    let start = Instant::now();
    let result: Result<()> = probe
        .db
        .transaction(|tx| async move {
            assert_eq!(tx.timeout(), Some(LIMIT));
            tx.execute("SELECT pg_sleep(3) /* command tx */", &[])
                .await?;
            Ok(())
        })
        .await;
    assert_timeout(
        result,
        start,
        "transaction of a handle with command_timeout",
    );
    gone_within(
        ctx,
        &probe,
        "/* command tx */",
        "command_timeout transaction",
    )
    .await?;

    // An explicit bound replaces it: a longer one lets a slower statement finish.
    let patient = probe.db.with_timeout(Duration::from_secs(5));
    assert_eq!(patient.timeout(), Some(Duration::from_secs(5)));
    patient.execute("SELECT pg_sleep(0.4)", &[]).await?;
    probe
        .assert_clean(ctx, "after calls bounded by command_timeout", 1)
        .await?;
    probe.db.close().await;
    Ok(())
}

/// `db.with_timeout(200 ms)`: a statement past the bound returns [`Error::Timeout`] and is gone
/// from the server; quick statements run as usual; the handle keeps the schema. In a
/// transaction (`tx.with_timeout`, which also sets `statement_timeout` on the server) and in the
/// closure form of a bounded handle the same error comes back, and the transaction is rolled
/// back without waiting for the sleep.
///
/// # Errors
///
/// Any unexpected query error.
pub async fn with_timeout_gives_a_typed_error(ctx: &Ctx) -> Result<()> {
    cancellation_tables(ctx).await?;
    let probe = Probe::open(ctx, 1).await?;
    let bounded = probe.db.with_timeout(LIMIT);
    assert_eq!(bounded.timeout(), Some(LIMIT));
    assert_eq!(bounded.schema(), probe.db.schema());
    assert_eq!(probe.db.timeout(), None);

    let start = Instant::now();
    let result = bounded
        .execute("SELECT pg_sleep(3) /* bounded */", &[])
        .await;
    assert_timeout(result, start, "Database::with_timeout");
    autocommit_gone_within(ctx, &probe, "/* bounded */", "Database::with_timeout").await?;
    assert_eq!(bounded.fetch_value::<i32>("SELECT 1", &[]).await?, 1);

    // A transaction bounded after it began: the server bounds it too.
    let tx = probe.db.begin().await?;
    let tx = tx.with_timeout(LIMIT).await?;
    assert_eq!(tx.timeout(), Some(LIMIT));
    let setting: String = tx.fetch_value("SHOW statement_timeout", &[]).await?;
    assert_eq!(setting, "200ms");
    let start = Instant::now();
    let result = tx.execute("SELECT pg_sleep(3) /* tx bounded */", &[]).await;
    assert_timeout(result, start, "Transaction::with_timeout");
    gone_within(ctx, &probe, "/* tx bounded */", "Transaction::with_timeout").await?;
    let start = Instant::now();
    tx.rollback().await?;
    assert!(start.elapsed() < PROMPTLY);

    // A transaction begun by a bounded handle, closure form.
    let start = Instant::now();
    let result: Result<()> = bounded
        .transaction(|tx| async move {
            assert_eq!(tx.timeout(), Some(LIMIT));
            let setting: String = tx.fetch_value("SHOW statement_timeout", &[]).await?;
            assert_eq!(setting, "200ms");
            tx.execute("SELECT pg_sleep(3) /* closure */", &[]).await?;
            Ok(())
        })
        .await;
    assert_timeout(result, start, "closure transaction of a bounded handle");
    gone_within(ctx, &probe, "/* closure */", "closure transaction").await?;

    // Both bounds run out at the same moment in a bounded transaction: whichever the client
    // sees first, the error is the same.
    let tx: Transaction = bounded.begin().await?;
    // With a driver that closes the connection of an abandoned statement, once.
    let rounds = if ctx.caps.keeps_connection_after_cancel {
        3
    } else {
        1
    };
    for _ in 0..rounds {
        let sp = tx.begin().await?;
        let err = sp
            .execute("SELECT pg_sleep(3)", &[])
            .await
            .expect_err("bounded");
        assert!(err.is_timeout(), "{err}");
        if ctx.caps.keeps_connection_after_cancel {
            sp.rollback().await?;
        }
    }
    drop(tx);
    probe
        .assert_clean(ctx, "after the bounded calls", 1)
        .await?;
    probe.db.close().await;
    Ok(())
}

/// Calls through bounded handles (and `Transaction::with_timeout` itself) dropped at each of
/// their awaits leave nothing behind, like unbounded ones.
///
/// # Errors
///
/// Any unexpected query error.
pub async fn cancelled_bounded_calls_leak_nothing(ctx: &Ctx) -> Result<()> {
    cancellation_tables(ctx).await?;
    let probe = Probe::open(ctx, 1).await?;
    let mut ids = 5_000;
    let bounded = probe.db.with_timeout(Duration::from_secs(30));
    let db = bounded.clone();
    sweep(ctx, "bounded insert", &probe, &mut ids, |id| {
        let db = db.clone();
        async move {
            db.execute("INSERT INTO {{tables.t}} (id) VALUES ($1)", params![id])
                .await
        }
    })
    .await?;
    sweep(ctx, "bounded closure transaction", &probe, &mut ids, |id| {
        let db = db.clone();
        async move {
            db.transaction(|tx| async move {
                tx.execute("INSERT INTO {{tables.t}} (id) VALUES ($1)", params![id])
                    .await
            })
            .await
        }
    })
    .await?;
    let plain = probe.db.clone();
    sweep(ctx, "Transaction::with_timeout", &probe, &mut ids, |id| {
        let db = plain.clone();
        async move {
            let tx = db.begin().await?;
            let tx = tx.with_timeout(Duration::from_secs(30)).await?;
            tx.execute("INSERT INTO {{tables.t}} (id) VALUES ($1)", params![id])
                .await?;
            tx.commit().await
        }
    })
    .await?;
    // A bounded call whose bound runs out at each point of its life.
    for micros in [1u64, 200, 500, 1_000, 2_000, 5_000] {
        ids += 1;
        let quick = probe.db.with_timeout(Duration::from_micros(micros));
        let p = params![ids];
        let _ = quick
            .execute("INSERT INTO {{tables.t}} (id) VALUES ($1)", p)
            .await;
        ids += 1;
        probe
            .assert_clean(ctx, &format!("bound of {micros} µs"), ids)
            .await?;
    }
    let _ = poll_then_drop(bounded.begin(), 1, Duration::from_millis(1)).await;
    ids += 1;
    probe.assert_clean(ctx, "bounded begin cut", ids).await?;
    probe.db.close().await;
    Ok(())
}
