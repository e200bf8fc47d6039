//! Overhead of monitoring on the point-select workload: an unmonitored `Database` handle against
//! a monitored one (`history_size` 1000, `record_params` off) on the same pool, in the same run.
//!
//! ```text
//! cargo bench -p pgdbm-driver-tokio-postgres --bench monitor_overhead
//! ```
//!
//! Uses the pgbench database `pgdbm_bench` (scale 10) that the `point_select` bench creates: run
//! that one first if it is missing. The server comes from `PGDBM_TEST_URL`, else `DATABASE_URL`,
//! else the `PG*` variables and `localhost:5432`.
//!
//! C tasks (default 8) each loop `fetch_value::<i32>("SELECT abalance FROM
//! {{tables.pgbench_accounts}} WHERE aid = $1", params![aid])` over random ids until the slice
//! ends. The phases are interleaved in 1 s slices, alternating which handle goes first, so drift
//! of the machine affects both alike; no `tracing` subscriber is installed.
//!
//! Environment: `PGDBM_BENCH_SECS` (seconds per handle, default 10, at least 5 recommended),
//! `PGDBM_BENCH_CONCURRENCY` (default 8), `PGDBM_BENCH_WORKERS` (tokio worker threads, default 1
//! as in `point_select`).
//!
//! Last line: `monitor_overhead c=<N>: plain <qps> qps, monitored <qps> qps, overhead <pct>%
//! (median of <n> paired 1 s slices: <pct>%)`: the first figure from the totals, the second
//! the median over rounds of the overhead between the two adjacent slices of a round (robust
//! against load from other processes).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use pgdbm::driver::PoolProvider;
use pgdbm::monitor::{MonitorOptions, Monitored};
use pgdbm::prelude::*;
use pgdbm::{DatabaseConfig, Params, Row};
use pgdbm_bench_support::env_number;
use pgdbm_driver_tokio_postgres::TokioPostgresPool;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

const BENCH_DB: &str = "pgdbm_bench";
const ACCOUNTS: i32 = 1_000_000;
const SQL: &str = "SELECT abalance FROM {{tables.pgbench_accounts}} WHERE aid = $1";

type BoxError = Box<dyn std::error::Error + Send + Sync>;

fn main() {
    if let Err(e) = run() {
        eprintln!("monitor_overhead: error: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), BoxError> {
    let secs = env_number("PGDBM_BENCH_SECS", 10)?;
    let c = usize::try_from(env_number("PGDBM_BENCH_CONCURRENCY", 8)?)?;
    let workers = usize::try_from(env_number("PGDBM_BENCH_WORKERS", 1)?)?;
    let url = std::env::var("PGDBM_TEST_URL")
        .or_else(|_| std::env::var("DATABASE_URL"))
        .ok()
        .filter(|u| !u.trim().is_empty());
    let builder = match &url {
        Some(u) => DatabaseConfig::builder().url(u),
        None => DatabaseConfig::builder().env(),
    };
    let n = u32::try_from(c)?;
    let config = builder
        .database(BENCH_DB)
        .max_connections(n)
        .min_connections(n)
        .build()?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()?;
    println!(
        "monitor_overhead: database {BENCH_DB}, c={c}, {secs} s per handle in 1 s slices, \
         {workers} tokio worker thread(s)"
    );
    rt.block_on(async move {
        let pool = Arc::new(TokioPostgresPool::connect(&config).await.map_err(|e| {
            format!("cannot open {BENCH_DB} ({e}); run the point_select bench once to create it")
        })?);
        let shared: Arc<dyn PoolProvider> = pool.clone();
        let plain = Database::new(shared, Some("public"))?;
        if !plain.table_exists("pgbench_accounts").await? {
            return Err::<(), BoxError>(
                "pgbench_accounts is missing: run the point_select bench once to create it".into(),
            );
        }
        let monitored = plain.monitored(MonitorOptions::default().history_size(1000));
        // Warm-up: connections, statement caches, template caches of both handles.
        drive(&plain, c, Duration::from_secs(1)).await?;
        drive(&monitored, c, Duration::from_millis(500)).await?;

        let qps = |(count, elapsed): (u64, Duration)| count as f64 / elapsed.as_secs_f64();
        let mut totals = [(0u64, Duration::ZERO); 2];
        let mut paired = Vec::new();
        for round in 0..secs {
            let order = if round % 2 == 0 { [0, 1] } else { [1, 0] };
            let mut slice = [0.0; 2];
            for which in order {
                let db = if which == 0 { &plain } else { &monitored };
                let (count, elapsed) = drive(db, c, Duration::from_secs(1)).await?;
                totals[which].0 += count;
                totals[which].1 += elapsed;
                slice[which] = qps((count, elapsed));
            }
            paired.push((1.0 - slice[1] / slice[0]) * 100.0);
        }
        let (plain_qps, monitored_qps) = (qps(totals[0]), qps(totals[1]));
        // Adjacent slices see the same machine load: their median ratio resists load spikes.
        paired.sort_by(f64::total_cmp);
        let median = paired[paired.len() / 2];
        let metrics = monitored.metrics();
        let stats = monitored
            .monitor()
            .and_then(|m| m.statement(SQL))
            .ok_or("the monitor recorded nothing")?;
        println!(
            "monitored handle: {} statements recorded, history {}, p50 {:?}, p95 {:?}, max {:?}",
            metrics.total_queries, metrics.history_len, stats.p50, stats.p95, stats.max
        );
        pool.close().await;
        let (bare, wrapped) = per_call_cost().await?;
        println!(
            "per call without the database: plain {bare:.0} ns, monitored {wrapped:.0} ns; \
             the difference is {:.1}% of a point select at {plain_qps:.0} qps",
            (wrapped - bare) * plain_qps / 1e9 * 100.0
        );
        println!(
            "monitor_overhead c={c}: plain {plain_qps:.0} qps, monitored {monitored_qps:.0} qps, \
             overhead {:.1}% (median of {} paired 1 s slices: {median:.1}%)",
            (1.0 - monitored_qps / plain_qps) * 100.0,
            paired.len()
        );
        Ok(())
    })
}

/// Runs `c` tasks of point selects on `db` for `phase`; returns (queries, elapsed).
async fn drive(db: &Database, c: usize, phase: Duration) -> Result<(u64, Duration), BoxError> {
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(c);
    for seed in 0..c {
        let db = db.clone();
        let stop = stop.clone();
        tasks.push(tokio::spawn(async move {
            let mut rng = SmallRng::seed_from_u64(seed as u64 + 1);
            let mut count = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let aid: i32 = rng.random_range(1..=ACCOUNTS);
                let _: i32 = db.fetch_value(SQL, params![aid]).await?;
                count += 1;
            }
            Ok::<_, pgdbm::Error>(count)
        }));
    }
    tokio::time::sleep(phase).await;
    stop.store(true, Ordering::Relaxed);
    let mut total = 0;
    for t in tasks {
        total += t.await??;
    }
    Ok((total, start.elapsed()))
}

/// An executor that answers at once: isolates the cost of the monitoring layer.
struct Noop;

#[async_trait::async_trait]
impl Executor for Noop {
    async fn execute(&self, _: &str, _: Params<'_>) -> pgdbm::Result<u64> {
        Ok(1)
    }
    async fn fetch_all(&self, _: &str, _: Params<'_>) -> pgdbm::Result<Vec<Row>> {
        Ok(Vec::new())
    }
    async fn fetch_optional(&self, _: &str, _: Params<'_>) -> pgdbm::Result<Option<Row>> {
        Ok(None)
    }
    async fn batch_execute(&self, _: &str) -> pgdbm::Result<()> {
        Ok(())
    }
    fn fetch<'a>(&'a self, _: &str, _: Params<'a>) -> pgdbm::RowStream<'a> {
        pgdbm::driver::row_stream(|_| async { Ok(()) })
    }
}

/// Nanoseconds per `execute` on [`Noop`], bare and wrapped in [`Monitored`] (history 1000).
async fn per_call_cost() -> Result<(f64, f64), BoxError> {
    const CALLS: u32 = 1_000_000;
    let bare: &dyn Executor = &Noop;
    let monitored = Monitored::with_options(Noop, MonitorOptions::default().history_size(1000));
    let wrapped: &dyn Executor = &monitored;
    let mut best = [f64::MAX; 2];
    for _ in 0..3 {
        for (i, exec) in [bare, wrapped].into_iter().enumerate() {
            let start = Instant::now();
            for aid in 0..CALLS {
                exec.execute(SQL, params![aid as i32]).await?;
            }
            best[i] = best[i].min(start.elapsed().as_nanos() as f64 / f64::from(CALLS));
        }
    }
    Ok((best[0], best[1]))
}
