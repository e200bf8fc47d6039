//! Pool stats stay consistent under concurrent load.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use pgdbm::prelude::*;
use pgdbm::{Error, PoolStats, Result};

use crate::Ctx;
use crate::support::wait_until;

/// Checks one stats snapshot against the previous one; returns what is wrong.
fn stats_violations(s: &PoolStats, prev: &PoolStats) -> Vec<String> {
    let mut out = Vec::new();
    if s.idle > s.size {
        out.push(format!("idle > size: {s:?}"));
    }
    if s.size > s.max_size {
        out.push(format!("size > max_size: {s:?}"));
    }
    if s.in_use != s.size - s.idle.min(s.size) {
        out.push(format!("in_use != size - idle: {s:?}"));
    }
    if s.connections_created < prev.connections_created
        || s.connections_closed < prev.connections_closed
        || s.timed_out < prev.timed_out
    {
        out.push(format!("a counter went back: {prev:?} -> {s:?}"));
    }
    out
}

/// Pool stats stay consistent under concurrent load with connections discarded on the way:
/// sampled continuously, `idle ≤ size ≤ max_size`, `in_use = size - idle`, and the counters
/// (`connections_created`, `connections_closed`, `timed_out`) never go back; afterwards nothing
/// is in use and every discarded connection is counted as closed.
///
/// # Errors
///
/// Any unexpected query error.
pub async fn pool_stats_under_load(ctx: &Ctx) -> Result<()> {
    let config = ctx.config_with(|b| {
        b.max_connections(4)
            .min_connections(1)
            .acquire_timeout(Duration::from_secs(10))
    })?;
    let pool = ctx.connect(config).await?;
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = {
        let pool = pool.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut prev = pool.stats();
            let mut violations = Vec::new();
            let mut samples = 0u64;
            while !stop.load(Ordering::Acquire) {
                let s = pool.stats();
                violations.extend(stats_violations(&s, &prev));
                prev = s;
                samples += 1;
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            (samples, violations)
        })
    };
    let discarded = Arc::new(AtomicU64::new(0));
    let mut workers = Vec::new();
    for w in 0..8u32 {
        let pool = pool.clone();
        let discarded = discarded.clone();
        workers.push(tokio::spawn(async move {
            for i in 0..40u32 {
                match (w + i) % 10 {
                    0 => {
                        let mut conn = pool.acquire().await?;
                        conn.fetch_optional("SELECT 1", &[]).await?;
                        conn.discard();
                        discarded.fetch_add(1, Ordering::Relaxed);
                    }
                    1..=3 => {
                        let conn = pool.acquire().await?;
                        conn.fetch_optional("SELECT pg_sleep(0.002)", &[]).await?;
                    }
                    _ => {
                        pool.fetch_optional("SELECT 1", &[]).await?;
                    }
                }
            }
            Ok::<_, Error>(())
        }));
    }
    for worker in workers {
        worker.await.expect("worker panicked")?;
    }
    stop.store(true, Ordering::Release);
    let (samples, violations) = sampler.await.expect("sampler panicked");
    assert!(samples > 0);
    assert!(
        violations.is_empty(),
        "inconsistent stats ({} of {samples} samples):\n{}",
        violations.len(),
        violations.join("\n")
    );

    let discarded = discarded.load(Ordering::Relaxed);
    let settled = wait_until(
        Duration::from_secs(10),
        Duration::from_millis(20),
        || async {
            let s = pool.stats();
            Ok(s.in_use == 0 && s.connections_closed >= discarded)
        },
    )
    .await?;
    let s = pool.stats();
    assert!(
        settled,
        "{discarded} discarded; in use or closed count off: {s:?}"
    );
    assert!(s.size <= s.max_size && s.idle <= s.size, "{s:?}");
    assert!(s.connections_created >= discarded, "{s:?}");
    pool.close().await;
    Ok(())
}
