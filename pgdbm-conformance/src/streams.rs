//! Streams of rows (`fetch`, `fetch_as`): rows in order as they arrive, on a handle, in a
//! transaction and through `&dyn Executor`; dropping a stream early cancels the rest of the
//! statement and leaves a clean connection; monitored like any statement.

use std::time::Duration;

use futures_util::{StreamExt, TryStreamExt};
use pgdbm::monitor::Operation;
use pgdbm::prelude::*;
use pgdbm::{FromRow, MonitorOptions, Result, Row};

use crate::Ctx;
use crate::cancel_on_server::{PROMPTLY, gone_within};
use crate::cancellation::{MAX_POLLS, Probe, cancellation_tables, poll_then_drop};

/// A typed row of the checks' table.
#[derive(Debug, PartialEq)]
struct Item {
    id: i64,
    label: String,
}

impl FromRow for Item {
    fn from_row(row: &Row) -> Result<Self> {
        Ok(Item {
            id: row.get("id")?,
            label: row.get("label")?,
        })
    }
}

const ROWS: i64 = 5_000;

async fn items_table(ctx: &Ctx) -> Result<()> {
    ctx.db
        .batch_execute(
            "CREATE TABLE {{tables.items}} (id bigint PRIMARY KEY, label text NOT NULL); \
             INSERT INTO {{tables.items}} SELECT n, 'item ' || n FROM generate_series(1, 5000) n",
        )
        .await
}

/// Reads every row of `items` through `exec` as a stream, checking the order.
async fn read_all(exec: &dyn Executor, min: i64) -> Result<i64> {
    let p = params![min];
    let mut rows = exec.fetch(
        "SELECT id, label FROM {{tables.items}} WHERE id >= $1 ORDER BY id",
        p,
    );
    let mut expected = min;
    while let Some(row) = rows.try_next().await? {
        assert_eq!(row.get::<i64>("id")?, expected);
        assert_eq!(row.get::<String>("label")?, format!("item {expected}"));
        expected += 1;
    }
    Ok(expected - min)
}

/// `fetch` yields every row in order, on a handle, in a transaction and through `&dyn
/// Executor` (a pool, a checked-out connection); `fetch_as` maps them with `FromRow`; a
/// statement that fails after some rows yields those rows, then its error; a template error
/// is the stream's only item.
///
/// # Errors
///
/// Any unexpected query error.
pub async fn fetch_streams_rows_in_order(ctx: &Ctx) -> Result<()> {
    items_table(ctx).await?;
    assert_eq!(read_all(&ctx.db, 1).await?, ROWS);
    assert_eq!(read_all(&ctx.db, 4_990).await?, 11);
    let tx = ctx.db.begin().await?;
    assert_eq!(read_all(&tx, 10).await?, ROWS - 9);
    tx.execute("DELETE FROM {{tables.items}} WHERE id > 4000", &[])
        .await?;
    assert_eq!(read_all(&tx, 1).await?, 4_000);
    tx.rollback().await?;
    let conn = ctx.pool.acquire().await?;
    let sql = format!(
        "SELECT count(*) FROM (SELECT * FROM \"{}\".items) t",
        ctx.schema
    );
    let n: i64 = conn
        .fetch(&sql, &[])
        .try_next()
        .await?
        .expect("one row")
        .get(0)?;
    assert_eq!(n, ROWS);
    drop(conn);

    let items: Vec<Item> = ctx
        .db
        .fetch_as::<Item>(
            "SELECT id, label FROM {{tables.items}} WHERE id <= 3 ORDER BY id",
            &[],
        )
        .try_collect()
        .await?;
    assert_eq!(
        items,
        (1..=3)
            .map(|id| Item {
                id,
                label: format!("item {id}")
            })
            .collect::<Vec<_>>()
    );
    let dyn_exec: &dyn Executor = &ctx.db;
    let typed: Vec<Item> = dyn_exec
        .fetch_as::<Item>("SELECT id, label FROM {{tables.items}} ORDER BY id", &[])
        .try_collect()
        .await?;
    assert_eq!(typed.len() as i64, ROWS);
    let mut wrong = ctx
        .db
        .fetch_as::<Item>("SELECT id FROM {{tables.items}}", &[]);
    assert!(matches!(
        wrong.next().await,
        Some(Err(pgdbm::Error::ColumnNotFound { .. }))
    ));
    assert!(wrong.next().await.is_none(), "a failed typed stream ends");
    drop(wrong);

    let items: Vec<Result<Row>> = ctx
        .db
        .fetch("SELECT 10 / (3 - n) AS v FROM generate_series(1, 5) n", &[])
        .collect()
        .await;
    assert_eq!(items.len(), 3, "two rows, then the error: {items:?}");
    assert_eq!(items[0].as_ref().expect("row").get::<i32>(0)?, 5);
    let err = items[2].as_ref().expect_err("division by zero");
    assert_eq!(err.code(), Some("22012"));
    let bad: Vec<Result<Row>> = ctx.db.fetch("SELECT {{tables.}}", &[]).collect().await;
    assert!(matches!(
        bad.as_slice(),
        [Err(pgdbm::Error::Template { .. })]
    ));
    assert_eq!(ctx.db.fetch_value::<i32>("SELECT 1", &[]).await?, 1);
    Ok(())
}

/// A stream dropped after 100 rows of a huge result: the statement is gone from the server, the
/// next statement on the one-connection pool answers promptly, nothing is left open. In a
/// transaction, the dropped stream's statement aborts the transaction (it can only roll back),
/// and a stream inside a savepoint lets the transaction go on.
///
/// # Errors
///
/// Any unexpected query error.
pub async fn dropped_stream_cancels_the_rest(ctx: &Ctx) -> Result<()> {
    cancellation_tables(ctx).await?;
    let probe = Probe::open(ctx, 1).await?;
    let huge = "SELECT generate_series(1, 100000000) AS n, repeat('x', 200) /* huge */";
    let mut rows = probe.db.fetch(huge, &[]);
    for expected in 1..=100_i32 {
        let row = rows.try_next().await?.expect("a row");
        assert_eq!(row.get::<i32>(0)?, expected);
    }
    drop(rows);
    gone_within(ctx, &probe, "/* huge */", "dropped stream").await?;
    let start = std::time::Instant::now();
    assert_eq!(probe.db.fetch_value::<i32>("SELECT 2", &[]).await?, 2);
    assert!(start.elapsed() < PROMPTLY, "waited {:?}", start.elapsed());
    probe.assert_clean(ctx, "dropped stream", 1).await?;

    if ctx.caps.keeps_connection_after_cancel {
        let tx = probe.db.begin().await?;
        let sp = tx.begin().await?;
        let mut rows = sp.fetch(huge, &[]);
        rows.try_next().await?.expect("a row");
        drop(rows);
        sp.rollback().await?;
        tx.execute("INSERT INTO {{tables.t}} (id) VALUES (10)", &[])
            .await?;
        tx.commit().await?;
        assert!(crate::cancellation::in_t(ctx, 10).await?);
    } else {
        eprintln!(
            "dropped_stream_cancels_the_rest: the driver closes a connection whose statement was \
             abandoned; the savepoint case is skipped"
        );
    }

    let tx = probe.db.begin().await?;
    let mut rows = tx.fetch(huge, &[]);
    rows.try_next().await?.expect("a row");
    drop(rows);
    tx.execute("INSERT INTO {{tables.t}} (id) VALUES (11)", &[])
        .await
        .ok();
    let outcome = tx.commit().await;
    assert!(
        outcome.is_err(),
        "a transaction whose stream was cut committed"
    );
    assert!(!crate::cancellation::in_t(ctx, 11).await?);
    probe
        .assert_clean(ctx, "dropped stream in a transaction", 2)
        .await?;
    probe.db.close().await;
    Ok(())
}

/// Consuming a stream (on the pool, in a transaction) dropped at each of its awaits, before
/// and between rows: nothing is left running or open, and acknowledged writes are visible.
///
/// # Errors
///
/// Any unexpected query error.
pub async fn cancelled_streams_leak_nothing(ctx: &Ctx) -> Result<()> {
    cancellation_tables(ctx).await?;
    let probe = Probe::open(ctx, 1).await?;
    let mut ids = 7_000;
    for in_transaction in [false, true] {
        for polls in 1..=MAX_POLLS {
            let db = probe.db.clone();
            let read = async move {
                let tx = if in_transaction {
                    Some(db.begin().await?)
                } else {
                    None
                };
                let exec: &dyn Executor = match &tx {
                    Some(tx) => tx,
                    None => &db,
                };
                let mut n = 0;
                let mut rows = exec.fetch("SELECT n FROM generate_series(1, 300) n", &[]);
                while let Some(row) = rows.try_next().await? {
                    n += 1;
                    assert_eq!(row.get::<i32>(0)?, n);
                    if n % 50 == 0 {
                        tokio::task::yield_now().await;
                    }
                }
                drop(rows);
                if let Some(tx) = tx {
                    tx.commit().await?;
                }
                Ok::<_, pgdbm::Error>(n)
            };
            let finished = poll_then_drop(read, polls, Duration::from_millis(1)).await;
            ids += 1;
            let what = format!("stream (transaction: {in_transaction}) cut after {polls} poll(s)");
            probe.assert_clean(ctx, &what, ids).await?;
            if let Some(result) = finished {
                assert_eq!(result?, 300, "{what}");
                break;
            }
            assert!(polls < MAX_POLLS, "{what}: never finished");
        }
    }
    probe.db.close().await;
    Ok(())
}

/// A monitored handle records a stream once, as `fetch`, with the rows read and the time until
/// it ended — or until it was dropped.
///
/// # Errors
///
/// Any unexpected query error.
pub async fn streams_are_monitored(ctx: &Ctx) -> Result<()> {
    let db = ctx.db.monitored(MonitorOptions::default());
    let sql = "SELECT n FROM generate_series(1, 40) n";
    let n = db.fetch(sql, &[]).try_collect::<Vec<_>>().await?.len();
    assert_eq!(n, 40);
    let mut partial = db.fetch("SELECT generate_series(1, 1000000) AS n", &[]);
    partial.try_next().await?;
    partial.try_next().await?;
    drop(partial);
    let monitor = db.monitor().expect("monitored");
    let records = monitor.history();
    let fetches: Vec<_> = records
        .iter()
        .filter(|r| r.operation == Operation::Fetch)
        .collect();
    assert_eq!(fetches.len(), 2, "{records:?}");
    assert_eq!(fetches[0].rows, Some(40));
    assert_eq!(fetches[1].rows, Some(2));
    Ok(())
}
