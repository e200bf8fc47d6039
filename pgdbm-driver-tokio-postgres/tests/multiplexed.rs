//! The whole conformance suite with `multiplexing` on (autocommit statements on two shared,
//! pipelined connections), the checks that cannot apply declared with their reasons; and the
//! multiplexing-specific checks: random drops among 32 tasks on shared connections, and a
//! shared connection killed under load.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use pgdbm::prelude::*;
use pgdbm::{Database, DatabaseConfigBuilder, Result, SharedPool};
use pgdbm_conformance::{Capabilities, Ctx};
use pgdbm_driver_tokio_postgres::TokioPostgres;
use rand::Rng;

fn multiplexed(b: DatabaseConfigBuilder) -> DatabaseConfigBuilder {
    b.multiplexing(true).multiplexed_connections(2)
}

/// Why a check of the pool's own connections does not apply: it follows them through the
/// backend pids of the pool's statements or `PoolStats`.
const POOL_CONNECTIONS: &str = "it follows the pool's own connections (the backend pids of \
    the pool's statements, PoolStats counters); multiplexed statements run on the shared \
    connections, which are not the pool's and not in PoolStats. Shared connections: a lost one \
    is replaced (a_killed_shared_connection_fails_only_its_statements), max_queries retires them \
    (max_queries_retires_shared_connections), max_lifetime likewise; they are not closed when \
    idle";

/// Checks that cannot apply with multiplexing on, each with the reason.
const MULTIPLEXING_GAPS: &[(&str, &str)] = &[
    (
        "pool_exhaustion_times_out",
        "with every exclusive connection checked out an autocommit SELECT still runs, on a \
         shared connection, instead of timing out; statements that need an exclusive connection \
         (SET, BEGIN, transactions) still time out (multiplexing_shares_autocommit_statements)",
    ),
    ("terminated_connections_replaced", POOL_CONNECTIONS),
    ("statement_timeout_cancels", POOL_CONNECTIONS),
    ("max_lifetime_honoured", POOL_CONNECTIONS),
    ("idle_timeout_honoured", POOL_CONNECTIONS),
    ("max_queries_recycles_the_connection", POOL_CONNECTIONS),
];

fn caps() -> Capabilities {
    Capabilities::default().with_config(multiplexed, MULTIPLEXING_GAPS)
}

pgdbm_conformance::conformance_tests!(TokioPostgres, caps());

/// A multiplexed pool whose one exclusive connection the caller can hold, so that every
/// statement that goes shared is seen to.
async fn pool(ctx: &Ctx) -> Result<SharedPool> {
    let config = ctx.config_with(|b| {
        multiplexed(b)
            .min_connections(1)
            .max_connections(1)
            .acquire_timeout(Duration::from_millis(300))
    })?;
    ctx.connect(config).await
}

/// The backend pids of the shared connections once both answer (up to 10 s: they open in the
/// background).
async fn shared_pids(db: &Database, not: &[i32]) -> Result<HashSet<i32>> {
    let start = Instant::now();
    let mut pids = HashSet::new();
    while start.elapsed() < Duration::from_secs(10) {
        let round = futures_join(db, 8).await;
        for pid in round.into_iter().flatten() {
            if !not.contains(&pid) {
                pids.insert(pid);
            }
        }
        if pids.len() >= 2 {
            return Ok(pids);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the shared connections did not open: {pids:?}");
}

/// `n` concurrent `SELECT pg_backend_pid()`, with their errors dropped.
async fn futures_join(db: &Database, n: usize) -> Vec<Option<i32>> {
    let tasks: Vec<_> = (0..n)
        .map(|_| {
            let db = db.clone();
            tokio::spawn(async move {
                db.fetch_value::<i32>("SELECT pg_backend_pid(), pg_sleep(0.01)", &[])
                    .await
                    .ok()
            })
        })
        .collect();
    let mut out = Vec::new();
    for task in tasks {
        out.push(task.await.expect("task"));
    }
    out
}

/// 32 tasks run point selects on two shared connections, each bounded by a random 0–3 ms
/// timeout (so about half are dropped at some await): every statement that completes returns
/// its own argument, none fails because a neighbour was dropped, and afterwards the pool answers
/// promptly with nothing left running.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_drops_do_not_disturb_neighbours() -> Result<()> {
    let ctx = Ctx::with_capabilities::<TokioPostgres>("random_drops", caps()).await?;
    let pool = pool(&ctx).await?;
    let db = Database::new(pool.clone(), Some(&ctx.schema))?;
    let held = pool.acquire().await?;
    let held_pid = held
        .fetch_value::<i32>("SELECT pg_backend_pid()", &[])
        .await?;
    let pids = shared_pids(&db, &[held_pid]).await?;
    drop(held);

    let tasks: Vec<_> = (0..32_i64)
        .map(|task| {
            let db = db.clone();
            tokio::spawn(async move {
                let (mut done, mut dropped) = (0_u32, 0_u32);
                for i in 0..150_i64 {
                    let n = task * 1_000_000 + i;
                    let bound = Duration::from_micros(rand::rng().random_range(0..3_000));
                    let sql = if i % 10 == 0 {
                        "SELECT $1::int8, pg_backend_pid(), pg_sleep(0.002)"
                    } else {
                        "SELECT $1::int8, pg_backend_pid()"
                    };
                    match tokio::time::timeout(bound, db.fetch_one(sql, &[&n])).await {
                        Err(_) => dropped += 1,
                        Ok(Err(e)) => panic!("statement {n} failed: {e} ({e:?})"),
                        Ok(Ok(row)) => {
                            assert_eq!(row.get::<i64>(0).expect("int8"), n, "another's row");
                            done += 1;
                        }
                    }
                }
                (done, dropped)
            })
        })
        .collect();
    let (mut done, mut dropped) = (0, 0);
    for task in tasks {
        let (d, x) = task.await.expect("task panicked");
        done += d;
        dropped += x;
    }
    eprintln!("random drops: {done} completed, {dropped} dropped");
    assert!(
        done > 0 && dropped > 0,
        "{done} completed, {dropped} dropped"
    );

    // The dropped statements finish on their own; the shared connections stay and answer.
    let start = Instant::now();
    let value = db.fetch_value::<i64>("SELECT $1::int8", &[&7_i64]).await?;
    assert_eq!(value, 7);
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
    let busy: i64 = ctx
        .db
        .fetch_value(
            "SELECT count(*) FROM pg_stat_activity WHERE pid = ANY($1) \
             AND state <> 'idle'",
            &[&pids.iter().copied().collect::<Vec<i32>>()],
        )
        .await?;
    assert_eq!(
        busy, 0,
        "a shared connection still runs or sits in a transaction"
    );
    pool.close().await;
    Ok(())
}

/// With two shared connections running sleeping statements, one of them is terminated from
/// another pool: only the statements in flight on it fail (a connection error), those on the
/// other connection return their own rows, and the slot opens a replacement.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_shared_connection_fails_only_its_statements() -> Result<()> {
    let ctx = Ctx::with_capabilities::<TokioPostgres>("killed_shared", caps()).await?;
    let pool = pool(&ctx).await?;
    let db = Database::new(pool.clone(), Some(&ctx.schema))?;
    let held = pool.acquire().await?;
    let held_pid = held
        .fetch_value::<i32>("SELECT pg_backend_pid()", &[])
        .await?;
    let pids: Vec<i32> = shared_pids(&db, &[held_pid]).await?.into_iter().collect();
    let (victim, survivor) = (pids[0], pids[1]);

    let tasks: Vec<_> = (0..8_i32)
        .map(|n| {
            let db = db.clone();
            tokio::spawn(async move {
                db.fetch_one("SELECT $1::int4, pg_backend_pid(), pg_sleep(1)", &[&n])
                    .await
                    .map(|row| (n, row))
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let killed: bool = ctx
        .db
        .fetch_value("SELECT pg_terminate_backend($1)", &[&victim])
        .await?;
    assert!(killed);
    let (mut ok, mut lost) = (0, 0);
    for task in tasks {
        match task.await.expect("task panicked") {
            Ok((n, row)) => {
                assert_eq!(row.get::<i32>(0)?, n, "another statement's row");
                assert_eq!(row.get::<i32>(1)?, survivor, "ran on the killed connection");
                ok += 1;
            }
            Err(e) => {
                assert!(e.is_connection_error(), "{e} ({e:?})");
                lost += 1;
            }
        }
    }
    assert!(ok > 0 && lost > 0, "{ok} answered, {lost} lost");

    // The slot is refilled: two shared sessions again, the killed one not among them.
    let start = Instant::now();
    loop {
        let now = shared_pids(&db, &[held_pid]).await?;
        if !now.contains(&victim) && now.len() >= 2 {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "not replaced: {now:?}"
        );
    }
    match db.fetch_value::<i32>("SELECT 1", &[]).await {
        Ok(1) => {}
        other => panic!("after the replacement: {other:?}"),
    }
    drop(held);
    pool.close().await;
    Ok(())
}

/// With `max_queries = 3`, a shared connection runs at most three statements: then it is
/// retired (closed once its statements are done) and its slot opens another.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_queries_retires_shared_connections() -> Result<()> {
    let ctx = Ctx::with_capabilities::<TokioPostgres>("max_queries_shared", caps()).await?;
    let config = ctx.config_with(|b| {
        multiplexed(b)
            .max_queries(3)
            .min_connections(1)
            .max_connections(1)
            .acquire_timeout(Duration::from_millis(100))
    })?;
    let pool = ctx.connect(config).await?;
    let db = Database::new(pool.clone(), Some(&ctx.schema))?;
    let held = pool.acquire().await?;
    let mut counts = std::collections::HashMap::<i32, usize>::new();
    let start = Instant::now();
    while counts.len() < 4 && start.elapsed() < Duration::from_secs(15) {
        // Between retirement and replacement statements fall back to the held exclusive
        // connection and time out.
        if let Ok(pid) = db.fetch_value::<i32>("SELECT pg_backend_pid()", &[]).await {
            *counts.entry(pid).or_default() += 1;
        }
    }
    assert!(counts.len() >= 4, "not recycled: {counts:?}");
    assert!(counts.values().all(|&n| n <= 3), "{counts:?}");
    drop(held);
    pool.close().await;
    Ok(())
}
