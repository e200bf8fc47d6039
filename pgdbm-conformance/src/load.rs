//! Load with random cancellations: 32 tasks, about 10 000 statements mixing autocommit writes,
//! transactions and savepoints, each operation cut short by a random timeout (0 to 3 ms) or
//! left to finish. Afterwards every acknowledged write is visible from another session, nothing
//! that was rolled back is, no session is `idle in transaction`, no advisory lock is held, the
//! pool's counters add up, and the pool still works.

use std::collections::HashSet;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pgdbm::prelude::*;
use pgdbm::{Database, Error, Result};

use super::Ctx;
use super::cancellation::{Probe, cancellation_tables};

/// Tasks running at once.
const TASKS: usize = 32;
/// Statements (counting `BEGIN`, `SAVEPOINT`, … each) to run in all.
const STATEMENTS: u64 = 10_000;

/// A small xorshift generator: the jitter needs no quality, only a seed to print.
struct Jitter(u64);

impl Jitter {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// What the tasks were told happened.
#[derive(Default)]
struct Outcomes {
    /// Rows whose write (or whose transaction's commit) returned `Ok`.
    acknowledged: Mutex<Vec<i64>>,
    /// Rows written only inside a savepoint that was rolled back.
    rolled_back: Mutex<Vec<i64>>,
    /// Operations cut short by their timeout.
    cancelled: AtomicU64,
}

fn push(list: &Mutex<Vec<i64>>, ids: &[i64]) {
    list.lock()
        .unwrap_or_else(|p| p.into_inner())
        .extend_from_slice(ids);
}

const INSERT: &str = "INSERT INTO {{tables.t}} (id) VALUES ($1)";

/// One random operation; returns the number of statements it sends.
async fn operation(db: &Database, ids: &AtomicI64, out: &Outcomes, rng: &mut Jitter) -> u64 {
    let kind = rng.next() % 3;
    let cut = rng.next() % 4 != 0;
    let limit = Duration::from_micros(rng.next() % 3_000);
    let a = ids.fetch_add(2, Ordering::Relaxed);
    let b = a + 1;
    let (statements, work) = match kind {
        0 => (
            1,
            Box::pin(async move {
                db.execute(INSERT, params![a]).await?;
                push(&out.acknowledged, &[a]);
                Ok::<_, Error>(())
            })
                as std::pin::Pin<Box<dyn std::future::Future<Output = Result<()>> + Send + '_>>,
        ),
        1 => (
            4,
            Box::pin(async move {
                db.transaction(|tx| async move {
                    tx.execute(INSERT, params![a]).await?;
                    tx.execute(INSERT, params![b]).await?;
                    Ok::<_, Error>(())
                })
                .await?;
                push(&out.acknowledged, &[a, b]);
                Ok(())
            }) as _,
        ),
        _ => (
            6,
            Box::pin(async move {
                push(&out.rolled_back, &[b]);
                let tx = db.begin().await?;
                tx.execute(INSERT, params![a]).await?;
                let sp = tx.begin().await?;
                sp.execute(INSERT, params![b]).await?;
                sp.rollback().await?;
                tx.commit().await?;
                push(&out.acknowledged, &[a]);
                Ok(())
            }) as _,
        ),
    };
    let result = if cut {
        match tokio::time::timeout(limit, work).await {
            Ok(result) => result,
            Err(_) => {
                out.cancelled.fetch_add(1, Ordering::Relaxed);
                Ok(())
            }
        }
    } else {
        work.await
    };
    if let Err(e) = result {
        panic!("an operation that was not cancelled failed: {e}");
    }
    statements
}

/// 32 tasks, about 10 000 statements, random cancellations; then nothing acknowledged is lost,
/// nothing rolled back is visible, no session is left in a transaction or holding an advisory
/// lock, the pool's counters add up and it still works.
///
/// # Errors
///
/// Any unexpected query error.
pub async fn cancellation_under_load(ctx: &Ctx) -> Result<()> {
    cancellation_tables(ctx).await?;
    let probe = Probe::open(ctx, 8).await?;
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64)
        | 1;
    eprintln!("cancellation_under_load: seed {seed}");
    let ids = Arc::new(AtomicI64::new(1));
    let sent = Arc::new(AtomicU64::new(0));
    let out = Arc::new(Outcomes::default());
    let mut tasks = Vec::new();
    for task in 0..TASKS {
        let (db, ids, sent, out) = (probe.db.clone(), ids.clone(), sent.clone(), out.clone());
        let mut rng = Jitter(seed.wrapping_mul(task as u64 + 1) | 1);
        tasks.push(tokio::spawn(async move {
            while sent.load(Ordering::Relaxed) < STATEMENTS {
                let n = operation(&db, &ids, &out, &mut rng).await;
                sent.fetch_add(n, Ordering::Relaxed);
            }
        }));
    }
    for task in tasks {
        task.await.expect("load task");
    }
    let next = ids.load(Ordering::Relaxed);
    probe.assert_clean(ctx, "after the load", next).await?;

    let seen: HashSet<i64> = ctx
        .db
        .fetch_all("SELECT id FROM {{tables.t}}", &[])
        .await?
        .iter()
        .map(|r| r.get::<i64>(0))
        .collect::<Result<_>>()?;
    let acknowledged = out
        .acknowledged
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    let lost: Vec<_> = acknowledged
        .iter()
        .filter(|id| !seen.contains(id))
        .collect();
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged writes are not visible (seed {seed}): {:?}",
        lost.len(),
        acknowledged.len(),
        &lost[..lost.len().min(20)]
    );
    let rolled_back = out
        .rolled_back
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    let resurrected: Vec<_> = rolled_back.iter().filter(|id| seen.contains(id)).collect();
    assert!(
        resurrected.is_empty(),
        "rows of rolled-back savepoints are visible (seed {seed}): {resurrected:?}"
    );
    let cancelled = out.cancelled.load(Ordering::Relaxed);
    assert!(
        cancelled > 0 && !acknowledged.is_empty(),
        "the load must both cancel and finish operations: {cancelled} cancelled, {} acknowledged",
        acknowledged.len()
    );

    let pool = probe.db.pool();
    let mut stats = pool.stats();
    for _ in 0..100 {
        let adds_up = stats
            .connections_created
            .checked_sub(stats.connections_closed)
            == Some(u64::from(stats.size));
        if adds_up && stats.waiting == 0 && stats.in_use == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        stats = pool.stats();
    }
    assert_eq!(stats.waiting, 0, "{stats:?}");
    assert_eq!(stats.in_use, 0, "{stats:?}");
    assert_eq!(
        stats
            .connections_created
            .checked_sub(stats.connections_closed),
        Some(u64::from(stats.size)),
        "{stats:?}"
    );
    assert_eq!(probe.db.fetch_value::<i32>("SELECT 1", &[]).await?, 1);
    eprintln!(
        "cancellation_under_load: {} statements, {cancelled} operations cancelled, {} rows \
         acknowledged, pool {stats:?}",
        sent.load(Ordering::Relaxed),
        acknowledged.len()
    );
    probe.db.close().await;
    Ok(())
}
