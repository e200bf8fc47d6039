//! The `pooler` phase: pgdbm with `pooler = transaction` through a PgBouncer in transaction mode
//! (`pgdbm_testing::PgBouncer`: `default_pool_size = 2`, started in front of the bench server for
//! this phase and stopped after it) against `pgbench -S -M extended` through the same PgBouncer —
//! unnamed statements, which is what a transaction pooler can carry (`-M prepared` fails
//! through it).
//!
//! Rounds are interleaved as in the main phases (pgbench, then pgdbm). Skipped with a printed
//! reason when `PGDBM_BENCH_POOLER=0`, when `pgbouncer` is not installed, or without pgbench.
//! The last lines are one summary per concurrency:
//! `point_select pooler c=<N>: pgdbm <qps> qps, pgbench -M extended <tps> tps, pgdbm/pgbench <r>`.

use std::time::Duration;

use pgdbm::DatabaseConfig;
use pgdbm_testing::PgBouncer;

use super::driver::PgdbmTarget;
use super::pgbench::{PgbenchTarget, run_pgbench_mode};
use super::settings::{Settings, env_nonempty};
use super::timed::slice;
use super::{BENCH_DB, Driver, Result};

/// One concurrency's result: pgdbm qps, pgbench tps.
type PoolerResult = (usize, f64, f64);

/// Runs the phase for every concurrency of `settings` and prints its summary.
pub(super) fn run_pooler_phase<D: Driver>(
    rt: &tokio::runtime::Runtime,
    settings: &Settings,
    base: &DatabaseConfig,
    pgbench: Option<&str>,
) -> Result<()> {
    if env_nonempty("PGDBM_BENCH_POOLER").as_deref() == Some("0") {
        println!("point_select pooler: skipped (PGDBM_BENCH_POOLER=0)");
        return Ok(());
    }
    let Some(pgbench) = pgbench else {
        println!("point_select pooler: skipped (pgbench not found)");
        return Ok(());
    };
    let bouncer = match rt.block_on(PgBouncer::start(base)) {
        Ok(bouncer) => bouncer,
        Err(e) => {
            println!("point_select pooler: skipped ({e})");
            return Ok(());
        }
    };
    let routed = bouncer.config_for(BENCH_DB);
    let mut target = PgbenchTarget::from_config(base);
    target.host = "127.0.0.1".to_owned();
    target.port = bouncer.port();
    println!(
        "point_select pooler: PgBouncer (transaction mode, default_pool_size = {}) on \
         127.0.0.1:{}, pgdbm with pooler = transaction, pgbench -M extended",
        pgdbm_testing::PGBOUNCER_POOL_SIZE,
        bouncer.port()
    );
    let warmup = Duration::from_secs_f64(settings.warmup_secs);
    let rounds = settings.rounds;
    let mut summary: Vec<PoolerResult> = Vec::new();
    for &n in &settings.concurrency {
        let (mut tps_sum, mut tps_secs) = (0.0, 0.0);
        let (mut count, mut elapsed) = (0u64, Duration::ZERO);
        for round in 0..rounds {
            let secs = settings.secs / rounds + u64::from(round < settings.secs % rounds);
            let tag = format!("pooler c={n} [{}/{rounds}]", round + 1);
            let (tps, _) = run_pgbench_mode(pgbench, &target, "extended", n, secs)?;
            println!("{tag}: pgbench -M extended {tps:.0} tps ({secs} s)");
            tps_sum += tps * secs as f64;
            tps_secs += secs as f64;
            let open = PgdbmTarget::open_config::<D>(routed.to_builder(), n);
            let phase = Duration::from_secs(secs);
            let (c, e) = rt.block_on(slice(open, &tag, "pgdbm", n, warmup, phase))?;
            count += c;
            elapsed += e;
        }
        summary.push((n, count as f64 / elapsed.as_secs_f64(), tps_sum / tps_secs));
    }
    for (n, pgdbm, pgbench) in summary {
        println!(
            "point_select pooler c={n}: pgdbm {pgdbm:.0} qps, pgbench -M extended {pgbench:.0} \
             tps, pgdbm/pgbench {:.2}",
            pgdbm / pgbench
        );
    }
    Ok(())
}
