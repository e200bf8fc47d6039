//! Overhead of monitoring on the point-select workload, in one run, on one pool: the same
//! `Database` handle with pgdbm's spans disabled (**plain**), a monitored handle (`history_size`
//! 1000, `record_params` off: **monitored**), and the plain handle with a `tracing` subscriber
//! enabling pgdbm's `DEBUG` spans that exports nowhere (**traced**: a `tracing-subscriber`
//! registry with a target filter and no output layer, so every statement builds its span with
//! OpenTelemetry's fields and nothing more).
//!
//! ```text
//! cargo bench -p pgdbm-driver-tokio-postgres --bench monitor_overhead
//! cargo bench -p pgdbm-driver-tokio-postgres --bench monitor_overhead --features metrics
//! ```
//!
//! The second command compiles pgdbm's `metrics` feature in (OpenTelemetry's metrics through the
//! `metrics` facade) and installs no recorder: every phase then also pays for the metrics calls
//! (the facade's no-op recorder), so its plain figure against the first command's is the cost of
//! the feature, and its traced figure is "tracing + metrics enabled, no exporter". The first
//! command's plain figure is the disabled path. (A feature cannot be switched within one binary:
//! compare the two runs' plain figures, made back to back on the same machine.)
//!
//! The subscriber is installed once, as the global default, with a reloadable filter: for the
//! plain and monitored slices the filter enables nothing, which sets `tracing`'s global maximum
//! level to `OFF` — the same one-comparison short cut as with no subscriber at all — and for
//! the traced slices it enables target `pgdbm` at `DEBUG`.
//!
//! Uses the pgbench database `pgdbm_bench` (scale 10) that the `point_select` bench creates: run
//! that one first if it is missing (`PGDBM_BENCH_SECS=2 PGDBM_BENCH_CONCURRENCY=1
//! PGDBM_BENCH_POOLER=0` makes that quick). The server comes from `PGDBM_TEST_URL`, else
//! `DATABASE_URL`, else the `PG*` variables and `localhost:5432`.
//!
//! C tasks (default 8) each loop `fetch_value::<i32>("SELECT abalance FROM
//! {{tables.pgbench_accounts}} WHERE aid = $1", params![aid])` over random ids until the slice
//! ends. The phases are interleaved in 1 s slices, each round rotating which phase goes first,
//! so drift of the machine affects all alike.
//!
//! Environment: `PGDBM_BENCH_SECS` (rounds: seconds per phase, default 10, at least 5
//! recommended), `PGDBM_BENCH_CONCURRENCY` (default 8), `PGDBM_BENCH_WORKERS` (tokio worker
//! threads, default 1 as in `point_select`).
//!
//! Last line: `monitor_overhead c=<N> metrics=<on|off>: plain <qps> qps, monitored <qps> qps
//! (<pct>%), traced <qps> qps (<pct>%); medians of <n> rounds: monitored <pct>%, traced <pct>%;
//! CPU per statement: monitored +<pct>%, traced +<pct>%`: the overheads against plain, first
//! from the totals, then the median over rounds of the overhead between slices of the same
//! round, then the bench process's own CPU time per statement (all its threads, from
//! `/proc/self/task/*/schedstat`; Linux) against plain's — the figure that load from other
//! processes on a shared machine disturbs least. With one worker thread the client's CPU bounds
//! throughput, so the CPU figure is the throughput cost once the machine is quiet. The lines
//! above it give each phase's qps and CPU µs per statement (compare plain's across the two
//! commands for the cost of the `metrics` feature). It prints figures, never asserts them.

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
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::reload;
use tracing_subscriber::util::SubscriberInitExt as _;

const BENCH_DB: &str = "pgdbm_bench";
const ACCOUNTS: i32 = 1_000_000;
const SQL: &str = "SELECT abalance FROM {{tables.pgbench_accounts}} WHERE aid = $1";

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Whether pgdbm's `metrics` feature is compiled in (this crate's `metrics` feature).
const METRICS: &str = if cfg!(feature = "metrics") {
    "on"
} else {
    "off"
};

/// The phases, in their order within the first round.
const PHASES: [&str; 3] = ["plain", "monitored", "traced"];

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
    // The global subscriber: a registry with a reloadable target filter, no output layer.
    let (filter, spans) = reload::Layer::new(Targets::new());
    tracing_subscriber::registry().with(filter).try_init()?;
    let set_spans = |on: bool| {
        let targets = if on {
            Targets::new().with_target("pgdbm", tracing::Level::DEBUG)
        } else {
            Targets::new()
        };
        spans.reload(targets)
    };
    println!(
        "monitor_overhead: database {BENCH_DB}, c={c}, {secs} s per phase in 1 s slices, \
         {workers} tokio worker thread(s), pgdbm metrics feature {METRICS} (no recorder)"
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
        // Warm-up: connections, statement caches, template caches of both handles, the spans'
        // callsites.
        drive(&plain, c, Duration::from_secs(1)).await?;
        drive(&monitored, c, Duration::from_millis(500)).await?;
        set_spans(true)?;
        drive(&plain, c, Duration::from_millis(500)).await?;
        set_spans(false)?;

        let qps = |(count, elapsed): (u64, Duration)| count as f64 / elapsed.as_secs_f64();
        let mut totals = [(0u64, Duration::ZERO); 3];
        let mut cpu = [Duration::ZERO; 3];
        let mut rounds: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
        for round in 0..secs {
            let mut slice = [0.0; 3];
            for k in 0..3 {
                let which = (round as usize + k) % 3;
                let db = if which == 1 { &monitored } else { &plain };
                set_spans(which == 2)?;
                let cpu_before = cpu_time();
                let (count, elapsed) = drive(db, c, Duration::from_secs(1)).await?;
                if let (Some(before), Some(after)) = (cpu_before, cpu_time()) {
                    cpu[which] += after.saturating_sub(before);
                }
                totals[which].0 += count;
                totals[which].1 += elapsed;
                slice[which] = qps((count, elapsed));
            }
            set_spans(false)?;
            for (i, overheads) in rounds.iter_mut().enumerate() {
                overheads.push((1.0 - slice[i + 1] / slice[0]) * 100.0);
            }
        }
        let figures = totals.map(qps);
        let overhead = |i: usize| (1.0 - figures[i] / figures[0]) * 100.0;
        // Slices of one round see the same machine load: their median ratio resists load spikes.
        let medians = rounds.map(|mut overheads| {
            overheads.sort_by(f64::total_cmp);
            overheads[overheads.len() / 2]
        });
        // The process's own CPU time per statement: what monitoring adds, nearly untouched by
        // the load of other processes.
        let per_statement = |i: usize| cpu[i].as_nanos() as f64 / totals[i].0.max(1) as f64;
        for (i, (name, figure)) in PHASES.iter().zip(figures).enumerate() {
            println!(
                "  {name:>9}: {figure:.0} qps, {:.1} µs of this process's CPU per statement",
                per_statement(i) / 1e3
            );
        }
        let cpu_overhead = |i: usize| (per_statement(i) / per_statement(0) - 1.0) * 100.0;
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
             the difference is {:.1}% of a point select at {:.0} qps",
            (wrapped - bare) * figures[0] / 1e9 * 100.0,
            figures[0]
        );
        println!(
            "monitor_overhead c={c} metrics={METRICS}: plain {:.0} qps, monitored {:.0} qps \
             ({:.1}%), traced {:.0} qps ({:.1}%); medians of {} rounds: monitored {:.1}%, \
             traced {:.1}%; CPU per statement: monitored +{:.1}%, traced +{:.1}%",
            figures[0],
            figures[1],
            overhead(1),
            figures[2],
            overhead(2),
            secs,
            medians[0],
            medians[1],
            cpu_overhead(1),
            cpu_overhead(2),
        );
        Ok(())
    })
}

/// This process's CPU time so far (every thread's, from `/proc/self/task/*/schedstat`), or
/// `None` where that is not readable.
fn cpu_time() -> Option<Duration> {
    let mut total = 0u64;
    for task in std::fs::read_dir("/proc/self/task").ok()? {
        let stat = std::fs::read_to_string(task.ok()?.path().join("schedstat")).ok()?;
        total += stat.split_whitespace().next()?.parse::<u64>().ok()?;
    }
    Some(Duration::from_nanos(total))
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
