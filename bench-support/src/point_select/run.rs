//! The benchmark run: settings, database, buffer-cache warm-up, then for each concurrency the
//! interleaved rounds of pgbench, raw, pgdbm (and with multiplexing, pgdbm multiplexed and the
//! shared raw clients), and the report.

use std::sync::Arc;
use std::time::Duration;

use pgdbm::DatabaseConfig;

use super::cpu::cpu_note;
use super::driver::PgdbmTarget;
use super::pgbench::{PgbenchTarget, find_pgbench, run_pgbench};
use super::pooler::run_pooler_phase;
use super::profile::profile;
use super::report::{Summary, print_summary};
use super::settings::{Settings, env_nonempty, with_database};
use super::setup::prepare_database;
use super::timed::{drive, slice};
use super::{BENCH_DB, Driver, PointSelect, Result};

/// The whole bench (or the profile mode) with driver `D`.
pub(super) fn run<D: Driver>() -> Result<()> {
    let settings = Settings::from_env()?;
    let base = DatabaseConfig::from_url(&settings.url)
        .map_err(|e| format!("invalid server URL ({}): {e}", settings.url_source))?;
    let bench_url = with_database(&settings.url, BENCH_DB)?;
    let admin_url = with_database(&settings.url, "postgres")?;
    let driver = D::new(&bench_url)?;
    let target = PgbenchTarget::from_config(&base);
    if let Some(client) = env_nonempty("PGDBM_BENCH_PROFILE") {
        return profile(&driver, &client, &bench_url, &admin_url, &target);
    }
    let pgbench = find_pgbench();
    if pgbench.is_none() {
        println!("point_select: pgbench not found on PATH: its phases are skipped (pgbench n/a)");
    }

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(settings.workers)
        .enable_all()
        .build()?;

    println!(
        "point_select: server {}:{} as {} (URL from {}), database {BENCH_DB}, {} s per phase \
         in {} round(s), {} s pool warm-up, concurrency {:?}, {} tokio worker thread(s)",
        target.host,
        target.port,
        target.user,
        settings.url_source,
        settings.secs,
        settings.rounds,
        settings.warmup_secs,
        settings.concurrency,
        settings.workers,
    );

    rt.block_on(prepare_database::<D>(
        &admin_url,
        &bench_url,
        &target,
        pgbench.as_deref(),
    ))?;

    let warmup = Duration::from_secs_f64(settings.warmup_secs);
    if !warmup.is_zero() {
        // Fill the buffer cache before the first measurement.
        rt.block_on(async {
            let pool = Arc::new(driver.open_raw(2).await?);
            let result = drive(&pool, 2, warmup.max(Duration::from_secs(2))).await;
            pool.close().await;
            result
        })?;
    }

    let rounds = settings.rounds;
    let shared_clients = base.multiplexed_connections() as usize;
    let mut clients = vec![Client::Raw, Client::Pgdbm];
    if D::MULTIPLEXES {
        clients.extend([Client::Multiplexed, Client::Shared]);
        println!(
            "point_select: multiplexed and shared use {shared_clients} shared connection(s) \
             (multiplexed_connections)"
        );
    }
    let mut summary = Vec::new();
    for &n in &settings.concurrency {
        let mut pgbench_acc = pgbench.as_ref().map(|_| (0.0, 0.0));
        let mut acc = [(0u64, Duration::ZERO); Client::COUNT];
        let mut round_ratios = Vec::with_capacity(rounds as usize);
        for round in 0..rounds {
            let secs = settings.secs / rounds + u64::from(round < settings.secs % rounds);
            let phase = Duration::from_secs(secs);
            let tag = if rounds > 1 {
                format!("c={n} [{}/{rounds}]", round + 1)
            } else {
                format!("c={n}")
            };

            if let (Some(exe), Some(acc)) = (&pgbench, &mut pgbench_acc) {
                let (tps, cpu_us) = run_pgbench(exe, &target, n, secs)?;
                println!(
                    "{tag}: pgbench {tps:.0} tps ({secs} s{})",
                    cpu_note(cpu_us, "transaction")
                );
                acc.0 += tps * secs as f64;
                acc.1 += secs as f64;
            }

            // The clients after pgbench rotate every round (raw, pgdbm, … then pgdbm, …, raw).
            let mut this_round = [(0u64, Duration::ZERO); Client::COUNT];
            for i in 0..clients.len() {
                let client = clients[(i + round as usize) % clients.len()];
                let label = client.label();
                let result = match client {
                    Client::Raw => {
                        rt.block_on(slice(driver.open_raw(n), &tag, label, n, warmup, phase))
                    }
                    Client::Pgdbm => {
                        let open = PgdbmTarget::open::<D>(&bench_url, n);
                        rt.block_on(slice(open, &tag, label, n, warmup, phase))
                    }
                    Client::Multiplexed => {
                        let open = PgdbmTarget::open_multiplexed::<D>(&bench_url, n);
                        rt.block_on(slice(open, &tag, label, n, warmup, phase))
                    }
                    Client::Shared => {
                        let open = driver.open_shared(shared_clients);
                        rt.block_on(slice(open, &tag, label, n, warmup, phase))
                    }
                }?;
                this_round[client as usize] = result;
                acc[client as usize].0 += result.0;
                acc[client as usize].1 += result.1;
            }
            let qps = |(count, elapsed): (u64, Duration)| count as f64 / elapsed.as_secs_f64();
            round_ratios.push(
                qps(this_round[Client::Pgdbm as usize]) / qps(this_round[Client::Raw as usize]),
            );
        }
        let pgbench_tps = pgbench_acc.map(|(sum, secs)| sum / secs);
        let qps = |client: Client| {
            let (count, elapsed) = acc[client as usize];
            (!elapsed.is_zero()).then(|| count as f64 / elapsed.as_secs_f64())
        };
        let raw_qps = qps(Client::Raw).unwrap_or_default();
        let pgdbm_qps = qps(Client::Pgdbm).unwrap_or_default();
        if rounds > 1 {
            match pgbench_tps {
                Some(t) => println!("c={n}: pgbench {t:.0} tps over {rounds} rounds"),
                None => println!("c={n}: pgbench n/a (not installed)"),
            }
            for &client in &clients {
                if let Some(q) = qps(client) {
                    println!("c={n}: {} {q:.0} qps over {rounds} rounds", client.label());
                }
            }
        } else if pgbench_tps.is_none() {
            println!("c={n}: pgbench n/a (not installed)");
        }
        summary.push(Summary {
            n,
            pgdbm_qps,
            raw_qps,
            pgbench_tps,
            ratios: round_ratios,
            multiplexed_qps: qps(Client::Multiplexed),
            shared_qps: qps(Client::Shared),
        });
    }

    print_summary(&summary);
    run_pooler_phase::<D>(&rt, &settings, &base, pgbench.as_deref())
}

/// The clients measured after pgbench in each round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Client {
    Raw,
    Pgdbm,
    Multiplexed,
    Shared,
}

impl Client {
    const COUNT: usize = 4;

    fn label(self) -> &'static str {
        match self {
            Client::Raw => "raw",
            Client::Pgdbm => "pgdbm",
            Client::Multiplexed => "multiplexed",
            Client::Shared => "shared",
        }
    }
}
