//! The timed loops: one slice of a client (open, warm up, measure, close) and the `n` tasks of
//! point selects on random ids behind it.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use super::cpu::{cpu_note, cpu_seconds};
use super::{ACCOUNTS, BoxError, PointSelect, Result};

/// One slice of a client: opens it with `open`, [`measure`]s it, closes it.
pub(super) async fn slice<T: PointSelect>(
    open: impl Future<Output = Result<T>>,
    tag: &str,
    label: &str,
    n: usize,
    warmup: Duration,
    phase: Duration,
) -> Result<(u64, Duration)> {
    let target = Arc::new(open.await?);
    let result = measure(tag, label, n, target.clone(), warmup, phase).await;
    target.close().await;
    result
}

/// Runs `n` tasks of point selects on `target` for a warm-up, then for `phase`, and returns the
/// queries completed and the time taken.
async fn measure<T: PointSelect>(
    tag: &str,
    label: &str,
    n: usize,
    target: Arc<T>,
    warmup: Duration,
    phase: Duration,
) -> Result<(u64, Duration)> {
    if !warmup.is_zero() {
        drive(&target, n, warmup).await?;
    }
    let cpu_before = cpu_seconds();
    let (count, elapsed) = drive(&target, n, phase).await?;
    let cpu_us = match (cpu_before, cpu_seconds()) {
        (Some(b), Some(a)) if count > 0 => Some((a.0 - b.0) * 1e6 / count as f64),
        _ => None,
    };
    println!(
        "{tag}: {label} {:.0} qps ({count} queries in {:.2} s{})",
        count as f64 / elapsed.as_secs_f64(),
        elapsed.as_secs_f64(),
        cpu_note(cpu_us, "query"),
    );
    Ok((count, elapsed))
}

/// `n` tasks, each selecting random ids one after another until `phase` is over. Returns the
/// queries completed and the time from start until the last task finished its last query.
pub(super) async fn drive<T: PointSelect>(
    target: &Arc<T>,
    n: usize,
    phase: Duration,
) -> Result<(u64, Duration)> {
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let seed: u64 = rand::random();
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let target = Arc::clone(target);
            let stop = Arc::clone(&stop);
            let mut rng =
                SmallRng::seed_from_u64(seed ^ (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
            tokio::spawn(async move {
                let mut count = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let aid = rng.random_range(1..=ACCOUNTS as i32);
                    target.select(aid).await?;
                    count += 1;
                }
                Ok::<u64, BoxError>(count)
            })
        })
        .collect();
    tokio::time::sleep(phase).await;
    stop.store(true, Ordering::Relaxed);
    let mut total = 0;
    for task in tasks {
        total += task.await??;
    }
    Ok((total, start.elapsed()))
}
