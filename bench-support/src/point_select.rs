//! The driver-independent half of the `point_select` benches of `pgdbm-driver-tokio-postgres` and
//! `pgdbm-driver-sqlx`: settings, database preparation (through pgdbm on the bench's driver, and
//! pgbench), the pgbench runs, the timed loops and the report. Each bench depends on this crate
//! (a dev-dependency), calls [`main`] and supplies a [`Driver`]: its raw baseline and pgdbm's
//! pool on that driver.
//!
//! The database is `pgdbm_bench` at pgbench scale 10 on the server named by `PGDBM_TEST_URL`,
//! else `DATABASE_URL`, else `postgresql://$USER@localhost:5432/`. It is created (from a plain
//! connection to `postgres`) and initialised with `pgbench -i -s 10 --quiet` when it or its
//! `pgbench_accounts` (1 000 000 rows) is missing.
//!
//! For each concurrency N (default 1, 8 and 32) three clients are measured:
//!
//! 1. pgbench: `pgbench -S -M prepared -c N -j min(N,2) -T <secs> -n` (the reference: C, libpq,
//!    one prepared statement per connection), its `tps = … (without initial connection time)`;
//! 2. raw: the driver's own pool of N connections running [`RAW_SQL`] (see each bench);
//! 3. pgdbm: the driver's pgdbm pool of N connections shared by a `Database` handle scoped to
//!    `public`, one `db.fetch_value::<i32>("SELECT abalance FROM {{tables.pgbench_accounts}}
//!    WHERE aid = $1", params![aid])` per query (acquire per query, template expansion, statement
//!    cache, `Value` conversion and row decode included).
//!
//! In 2 and 3, N tasks each loop over random ids (1..=1 000 000) until the slice ends;
//! qps = completed queries / elapsed time. Both pools have min = max = N, all N connections open
//! before measuring, and get a short warm-up (which also prepares the statement on every
//! connection) before they are timed. All three connect over the same transport, without TLS.
//!
//! The phases are interleaved: each phase of `<secs>` is cut into rounds of about 2 s, run as
//! pgbench, raw, pgdbm, pgbench, pgdbm, raw, … (raw and pgdbm swap places every round) and each
//! result is the total over its rounds. On a small shared machine the throughput drifts by ±20 %
//! within a minute; three back-to-back 10 s phases would turn that drift into a difference
//! between the clients, interleaving spreads it over all three, and swapping the order cancels
//! a drift within a round. Each round also gives one pgdbm/raw ratio of two neighbouring slices;
//! the summary shows their median and range and a 95 % interval of their (geometric) mean, so a
//! run says how far its pgdbm/raw figure can be trusted. The pools are opened for each slice
//! (connecting is not timed) and closed after it, so that at most N client connections exist at
//! a time, as with pgbench. A first 2 s warm-up fills the buffer cache.
//!
//! Each line also shows the client CPU per query (this process for raw and pgdbm, the pgbench
//! child for pgbench, from `/proc`): on a machine where client and server share the cores, client
//! CPU is server CPU lost.
//!
//! Environment:
//!
//! * `PGDBM_BENCH_SECS`: seconds per phase (default 10);
//! * `PGDBM_BENCH_ROUNDS`: rounds per phase (default secs/2; 1 = one block per client, in the
//!   order pgbench, raw, pgdbm; the interval needs 2 or more);
//! * `PGDBM_BENCH_WARMUP_SECS`: pool warm-up before each slice (default 0.5, 0 = none);
//! * `PGDBM_BENCH_CONCURRENCY`: e.g. `1,8,32` (the default);
//! * `PGDBM_BENCH_WORKERS`: tokio worker threads (default 1, see `DEFAULT_WORKERS`);
//! * `PGBENCH`: the pgbench executable (default `pgbench` on `PATH`). Without it the pgbench
//!   results are `n/a`;
//! * `PGDBM_BENCH_PROFILE=raw|pgdbm`: instead of the benchmark, one client on one connection
//!   runs `PGDBM_BENCH_QUERIES` point selects (default 2000) one after another on a
//!   current-thread runtime, inside `profile_loop` — for counting instructions, which unlike
//!   throughput does not depend on what else the machine is doing:
//!
//!   ```text
//!   PGDBM_BENCH_PROFILE=pgdbm PGDBM_BENCH_QUERIES=2000 valgrind --tool=callgrind \
//!       --toggle-collect='*profile_loop*' target/release/deps/point_select-<hash>
//!   ```
//!
//!   Instructions per query = (the total at 4000 queries − the total at 2000) / 2000: the
//!   runtime, the connection task and the allocator included, start-up excluded.
//!
//! The last lines are one summary per concurrency:
//! `point_select c=<N>: pgdbm <qps> qps, raw <qps> qps, pgbench <tps> tps, pgdbm/pgbench <ratio>`.

use std::future::Future;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use pgdbm::driver::PoolProvider;
use pgdbm::prelude::*;
use pgdbm::{DatabaseConfig, SslMode};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

/// The database the benchmark owns.
pub const BENCH_DB: &str = "pgdbm_bench";
/// pgbench scale factor.
const SCALE: i64 = 10;
/// Rows of `pgbench_accounts` at [`SCALE`]; ids are `1..=ACCOUNTS`.
const ACCOUNTS: i64 = 100_000 * SCALE;
/// The tables [`bench_tables`] counts: accounts, then branches.
const TABLES: [&str; 2] = ["public.pgbench_accounts", "public.pgbench_branches"];
/// The statement pgdbm runs (`{{tables.…}}` expands to `"public".pgbench_accounts`).
const PGDBM_SQL: &str = "SELECT abalance FROM {{tables.pgbench_accounts}} WHERE aid = $1";
/// The same statement for the raw baseline.
pub const RAW_SQL: &str = "SELECT abalance FROM \"public\".pgbench_accounts WHERE aid = $1";

/// Tokio worker threads. Measured on the 2-core machine this was written on, where PostgreSQL
/// shares the cores: one and two workers give the same throughput within noise (±3 %), but two
/// cost 1.5–2 µs more client CPU per query at c=8 and c=32 (cross-thread wake-ups and work
/// stealing between each client task and its connection task), CPU the server then lacks when
/// the machine is busy. Override with `PGDBM_BENCH_WORKERS`.
const DEFAULT_WORKERS: usize = 1;

/// Any error of the bench.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
/// The bench's result type.
pub type Result<T, E = BoxError> = std::result::Result<T, E>;

/// What a bench supplies for its driver.
pub trait Driver: Sized {
    /// The raw baseline: the driver's own pool, without pgdbm.
    type Raw: PointSelect;

    /// Prepares the raw baseline's connect options for `bench_url` (the bench database, TLS
    /// off).
    fn new(bench_url: &str) -> Result<Self>;

    /// Opens the raw baseline with exactly `n` connections, all open on return.
    fn open_raw(&self, n: usize) -> impl Future<Output = Result<Self::Raw>>;

    /// Opens pgdbm's pool of this driver on `config`.
    fn connect_pgdbm(
        config: &DatabaseConfig,
    ) -> impl Future<Output = pgdbm::Result<Arc<dyn PoolProvider>>>;

    /// Returns once all `n` connections of `pool` (opened by [`Driver::connect_pgdbm`] with
    /// min = max = `n`) are open, so that no phase pays for connecting.
    fn fill_pgdbm(pool: &dyn PoolProvider, n: usize) -> impl Future<Output = Result<()>>;
}

/// Something that runs the point select.
pub trait PointSelect: Send + Sync + 'static {
    /// The balance of account `aid`.
    fn select(&self, aid: i32) -> impl Future<Output = Result<i32>> + Send;

    /// Closes the connections after the slice (default: when dropped).
    fn close(&self) -> impl Future<Output = ()> {
        async {}
    }
}

/// Runs the bench with driver `D` and exits with status 1 on an error.
pub fn main<D: Driver>() {
    if let Err(e) = run::<D>() {
        eprintln!("point_select: error: {}", with_sources(&*e));
        std::process::exit(1);
    }
}

/// What the environment asks for.
struct Settings {
    /// Base server URL (its database part is replaced).
    url: String,
    /// Where `url` came from, for messages.
    url_source: &'static str,
    secs: u64,
    warmup_secs: f64,
    /// Each phase is split into this many slices, run pgbench, raw, pgdbm, pgbench, pgdbm, raw, …
    rounds: u64,
    concurrency: Vec<usize>,
    workers: usize,
}

fn env_nonempty(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// The current OS user, as libpq would default to.
fn current_user() -> String {
    if let Some(u) = env_nonempty("USER").or_else(|| env_nonempty("LOGNAME")) {
        return u;
    }
    Command::new("id")
        .arg("-un")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "postgres".to_owned())
}

impl Settings {
    fn from_env() -> Result<Self> {
        let (url, url_source) = match (env_nonempty("PGDBM_TEST_URL"), env_nonempty("DATABASE_URL"))
        {
            (Some(u), _) => (u, "PGDBM_TEST_URL"),
            (None, Some(u)) => (u, "DATABASE_URL"),
            (None, None) => (
                format!("postgresql://{}@localhost:5432/postgres", current_user()),
                "default",
            ),
        };
        let secs = match env_nonempty("PGDBM_BENCH_SECS") {
            None => 10,
            Some(s) => s
                .trim()
                .parse::<u64>()
                .ok()
                .filter(|&n| n >= 1)
                .ok_or_else(|| format!("PGDBM_BENCH_SECS={s:?}: expected whole seconds >= 1"))?,
        };
        let warmup_secs = match env_nonempty("PGDBM_BENCH_WARMUP_SECS") {
            None => 0.5,
            Some(s) => s
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|w| w.is_finite() && *w >= 0.0)
                .ok_or_else(|| format!("PGDBM_BENCH_WARMUP_SECS={s:?}: expected seconds >= 0"))?,
        };
        let rounds = match env_nonempty("PGDBM_BENCH_ROUNDS") {
            // Slices of about 2 s.
            None => (secs / 2).max(1),
            Some(s) => s
                .trim()
                .parse::<u64>()
                .ok()
                .filter(|&r| r >= 1)
                .ok_or_else(|| format!("PGDBM_BENCH_ROUNDS={s:?}: expected a number >= 1"))?
                .min(secs),
        };
        let concurrency = match env_nonempty("PGDBM_BENCH_CONCURRENCY") {
            None => vec![1, 8, 32],
            Some(s) => s
                .split(',')
                .map(|p| p.trim().parse::<usize>().ok().filter(|&n| n >= 1))
                .collect::<Option<Vec<_>>>()
                .filter(|v| !v.is_empty())
                .ok_or_else(|| {
                    format!("PGDBM_BENCH_CONCURRENCY={s:?}: expected e.g. 1,8,32 (each >= 1)")
                })?,
        };
        let workers = match env_nonempty("PGDBM_BENCH_WORKERS") {
            None => DEFAULT_WORKERS,
            Some(s) => s
                .trim()
                .parse::<usize>()
                .ok()
                .filter(|&n| n >= 1)
                .ok_or_else(|| format!("PGDBM_BENCH_WORKERS={s:?}: expected a number >= 1"))?,
        };
        Ok(Settings {
            url,
            url_source,
            secs,
            warmup_secs,
            rounds,
            concurrency,
            workers,
        })
    }
}

/// `url` with its database replaced by `db` (user, password, host, port and query kept).
fn with_database(url: &str, db: &str) -> Result<String> {
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err("the server URL must look like postgresql://user@host:port/db".into());
    };
    if scheme != "postgres" && scheme != "postgresql" {
        return Err(format!("unsupported URL scheme {scheme:?} (expected postgresql://)").into());
    }
    let (main, query) = match rest.find('?') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let authority = main.split('/').next().unwrap_or_default();
    Ok(format!("{scheme}://{authority}/{db}{query}"))
}

/// Host, port, user and password for pgbench (`-h -p -U`, `PGPASSWORD`), from the URL.
struct PgbenchTarget {
    host: String,
    port: u16,
    user: String,
    password: Option<String>,
}

impl PgbenchTarget {
    /// From the server URL as pgdbm reads it (a Unix socket directory is a host starting with
    /// `/`; the user defaults to `$USER`).
    fn from_config(config: &DatabaseConfig) -> Self {
        PgbenchTarget {
            host: config.host().to_owned(),
            port: config.port(),
            user: config.user().to_owned(),
            password: config.password().map(str::to_owned),
        }
    }

    /// A pgbench command aimed at the server. TLS is off, as in the two Rust clients, so that all
    /// three pay the same per-query transport cost.
    fn command(&self, pgbench: &str) -> Command {
        let mut cmd = Command::new(pgbench);
        cmd.arg("-h")
            .arg(&self.host)
            .arg("-p")
            .arg(self.port.to_string())
            .arg("-U")
            .arg(&self.user)
            .env("PGSSLMODE", "disable");
        if let Some(pw) = &self.password {
            cmd.env("PGPASSWORD", pw);
        }
        cmd
    }
}

/// The error for a failed connection to database `postgres`, for [`bench_tables`].
fn cannot_reach(target: &PgbenchTarget, err: &dyn std::error::Error) -> String {
    format!(
        "cannot reach PostgreSQL at {}:{} as {} (database postgres): {}. \
         Is the server running? Set PGDBM_TEST_URL or DATABASE_URL to point elsewhere.",
        target.host,
        target.port,
        target.user,
        with_sources(err)
    )
}

/// An error and its causes: `error connecting to server: Connection refused (os error 111)`.
fn with_sources(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// `pgbench` if it runs, else `None`.
fn find_pgbench() -> Option<String> {
    let exe = env_nonempty("PGBENCH").unwrap_or_else(|| "pgbench".to_owned());
    match Command::new(&exe).arg("--version").output() {
        Ok(o) if o.status.success() => {
            println!(
                "point_select: using {}",
                String::from_utf8_lossy(&o.stdout).trim()
            );
            Some(exe)
        }
        _ => None,
    }
}

fn run<D: Driver>() -> Result<()> {
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
    let mut summary = Vec::new();
    for &n in &settings.concurrency {
        let mut pgbench_acc = pgbench.as_ref().map(|_| (0.0, 0.0));
        let mut raw_acc = (0u64, Duration::ZERO);
        let mut pgdbm_acc = (0u64, Duration::ZERO);
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

            let raw_slice =
                || rt.block_on(slice(driver.open_raw(n), &tag, "raw", n, warmup, phase));
            let pgdbm_slice = || {
                let open = PgdbmTarget::open::<D>(&bench_url, n);
                rt.block_on(slice(open, &tag, "pgdbm", n, warmup, phase))
            };
            let (raw, pgdbm) = if round % 2 == 0 {
                let raw = raw_slice()?;
                (raw, pgdbm_slice()?)
            } else {
                let pgdbm = pgdbm_slice()?;
                (raw_slice()?, pgdbm)
            };
            raw_acc.0 += raw.0;
            raw_acc.1 += raw.1;
            pgdbm_acc.0 += pgdbm.0;
            pgdbm_acc.1 += pgdbm.1;
            let qps = |(count, elapsed): (u64, Duration)| count as f64 / elapsed.as_secs_f64();
            round_ratios.push(qps(pgdbm) / qps(raw));
        }
        let pgbench_tps = pgbench_acc.map(|(sum, secs)| sum / secs);
        let raw_qps = raw_acc.0 as f64 / raw_acc.1.as_secs_f64();
        let pgdbm_qps = pgdbm_acc.0 as f64 / pgdbm_acc.1.as_secs_f64();
        if rounds > 1 {
            match pgbench_tps {
                Some(t) => println!("c={n}: pgbench {t:.0} tps over {rounds} rounds"),
                None => println!("c={n}: pgbench n/a (not installed)"),
            }
            println!("c={n}: raw {raw_qps:.0} qps over {rounds} rounds");
            println!("c={n}: pgdbm {pgdbm_qps:.0} qps over {rounds} rounds");
        } else if pgbench_tps.is_none() {
            println!("c={n}: pgbench n/a (not installed)");
        }
        summary.push((n, pgdbm_qps, raw_qps, pgbench_tps, round_ratios));
    }

    println!();
    for (n, pgdbm_qps, raw_qps, pgbench_tps, ratios) in &summary {
        let vs = match pgbench_tps {
            Some(t) => format!(
                "raw/pgbench {:.2}, pgdbm/raw {:.2}",
                raw_qps / t,
                pgdbm_qps / raw_qps
            ),
            None => format!("pgdbm/raw {:.2}", pgdbm_qps / raw_qps),
        };
        println!(
            "c={n}: {vs}{}",
            RatioSpread::of(ratios).map_or_else(String::new, |r| r.describe())
        );
    }
    for &(n, pgdbm_qps, raw_qps, pgbench_tps, _) in &summary {
        let (tps, ratio) = match pgbench_tps {
            Some(t) => (format!("{t:.0}"), format!("{:.2}", pgdbm_qps / t)),
            None => ("n/a".to_owned(), "n/a".to_owned()),
        };
        println!(
            "point_select c={n}: pgdbm {pgdbm_qps:.0} qps, raw {raw_qps:.0} qps, pgbench {tps} tps, pgdbm/pgbench {ratio}"
        );
    }
    Ok(())
}

/// How the per-round pgdbm/raw ratios of one concurrency spread.
#[derive(Debug, Clone, Copy, PartialEq)]
struct RatioSpread {
    median: f64,
    min: f64,
    max: f64,
    /// The 95 % interval of the geometric mean (Student's t on the logarithms), with 2 or more
    /// rounds.
    interval: Option<(f64, f64)>,
}

impl RatioSpread {
    /// `None` without ratios.
    fn of(ratios: &[f64]) -> Option<Self> {
        let mut sorted: Vec<f64> = ratios.iter().copied().filter(|r| *r > 0.0).collect();
        if sorted.is_empty() {
            return None;
        }
        sorted.sort_by(f64::total_cmp);
        let k = sorted.len();
        let median = if k % 2 == 1 {
            sorted[k / 2]
        } else {
            (sorted[k / 2 - 1] + sorted[k / 2]) / 2.0
        };
        let interval = (k >= 2).then(|| {
            let logs: Vec<f64> = sorted.iter().map(|r| r.ln()).collect();
            let mean = logs.iter().sum::<f64>() / k as f64;
            let var = logs.iter().map(|l| (l - mean).powi(2)).sum::<f64>() / (k - 1) as f64;
            let half = t_975(k - 1) * (var / k as f64).sqrt();
            ((mean - half).exp(), (mean + half).exp())
        });
        Some(RatioSpread {
            median,
            min: sorted[0],
            max: sorted[k - 1],
            interval,
        })
    }

    /// ` (per round: median 0.96, 0.90–1.01; 95 % interval 0.94–0.98)`.
    fn describe(&self) -> String {
        let interval = self.interval.map_or_else(String::new, |(lo, hi)| {
            format!("; 95 % interval {lo:.2}–{hi:.2}")
        });
        format!(
            " (per round: median {:.2}, {:.2}–{:.2}{interval})",
            self.median, self.min, self.max
        )
    }
}

/// The 97.5 % quantile of Student's t distribution with `df` degrees of freedom.
fn t_975(df: usize) -> f64 {
    const TABLE: [f64; 30] = [
        12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160,
        2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056,
        2.052, 2.048, 2.045, 2.042,
    ];
    match df {
        0 => f64::INFINITY,
        1..=30 => TABLE[df - 1],
        31..=60 => 2.00,
        61..=120 => 1.98,
        _ => 1.96,
    }
}

/// Creates `pgdbm_bench` if missing and (re)initialises it with pgbench unless it already holds
/// the scale-10 tables.
async fn prepare_database<D: Driver>(
    admin_url: &str,
    bench_url: &str,
    target: &PgbenchTarget,
    pgbench: Option<&str>,
) -> Result<()> {
    let [accounts, branches] = bench_tables::<D>(admin_url, bench_url, target).await?;
    if accounts == Some(ACCOUNTS) && branches == Some(SCALE) {
        println!("point_select: {BENCH_DB} holds the pgbench tables at scale {SCALE}");
        return Ok(());
    }
    let why = match accounts {
        None => "pgbench_accounts is missing".to_owned(),
        Some(n) => format!("pgbench_accounts has {n} rows, not {ACCOUNTS}"),
    };
    let Some(exe) = pgbench else {
        return Err(format!(
            "{BENCH_DB}: {why}, and pgbench (needed for `pgbench -i`) is not installed"
        )
        .into());
    };
    println!("point_select: {why}: running pgbench -i -s {SCALE} --quiet {BENCH_DB}");
    let started = Instant::now();
    let out = target
        .command(exe)
        .args(["-i", "-s", &SCALE.to_string(), "--quiet", BENCH_DB])
        .output()?;
    if !out.status.success() {
        return Err(format!(
            "pgbench -i failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )
        .into());
    }
    println!(
        "point_select: pgbench -i done in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Creates [`BENCH_DB`] from a connection to `admin_url` (database `postgres`) unless it
/// exists, then returns the rows of the [`TABLES`] in it (`None` for a missing table), through
/// pgdbm on `D` (one connection at a time, plain text).
async fn bench_tables<D: Driver>(
    admin_url: &str,
    bench_url: &str,
    target: &PgbenchTarget,
) -> Result<[Option<i64>; 2]> {
    let one_plain_connection = |url: &str| {
        DatabaseConfig::builder()
            .url(url)
            .ssl_mode(SslMode::Disable)
            .min_connections(1)
            .max_connections(1)
            .build()
    };
    let admin = D::connect_pgdbm(&one_plain_connection(admin_url)?)
        .await
        .map_err(|e| cannot_reach(target, &e))?;
    let exists: bool = admin
        .fetch_value(
            "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)",
            params![BENCH_DB],
        )
        .await?;
    if !exists {
        println!("point_select: creating database {BENCH_DB}");
        if let Err(e) = admin
            .batch_execute(&format!("CREATE DATABASE {BENCH_DB}"))
            .await
        {
            // Someone else may have created it meanwhile.
            if e.code() != Some("42P04") {
                return Err(format!("cannot create database {BENCH_DB}: {e}").into());
            }
        }
    }
    admin.close().await;

    let bench = D::connect_pgdbm(&one_plain_connection(bench_url)?)
        .await
        .map_err(|e| {
            format!(
                "cannot connect to database {BENCH_DB}: {}",
                with_sources(&e)
            )
        })?;
    let mut rows = [None; 2];
    for (table, n) in TABLES.into_iter().zip(&mut rows) {
        let present: bool = bench
            .fetch_value("SELECT to_regclass($1) IS NOT NULL", params![table])
            .await?;
        if present {
            let count: i64 = bench
                .fetch_value(&format!("SELECT count(*) FROM {table}"), &[])
                .await?;
            *n = Some(count);
        }
    }
    bench.close().await;
    Ok(rows)
}

/// Runs pgbench once and returns its tps (without initial connection time) and the client CPU
/// it used per transaction, in µs (Linux only).
fn run_pgbench(
    exe: &str,
    target: &PgbenchTarget,
    clients: usize,
    secs: u64,
) -> Result<(f64, Option<f64>)> {
    let cpu_before = cpu_seconds();
    let out = target
        .command(exe)
        .args(["-S", "-M", "prepared", "-n"])
        .args(["-c", &clients.to_string()])
        .args(["-j", &clients.min(2).to_string()])
        .args(["-T", &secs.to_string()])
        .arg(BENCH_DB)
        .output()
        .map_err(|e| format!("cannot run pgbench: {e}"))?;
    let cpu_after = cpu_seconds();
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(format!(
            "pgbench -S -c {clients} failed ({}): {}{}",
            out.status,
            stdout.trim(),
            String::from_utf8_lossy(&out.stderr).trim()
        )
        .into());
    }
    let tps =
        parse_tps(&stdout).ok_or_else(|| format!("no tps line in pgbench output:\n{stdout}"))?;
    let transactions = stdout
        .lines()
        .find_map(|l| l.strip_prefix("number of transactions actually processed: "))
        .and_then(|v| v.split('/').next()?.trim().parse::<f64>().ok());
    let cpu_us = match (cpu_before, cpu_after, transactions) {
        (Some(b), Some(a), Some(t)) if t > 0.0 => Some((a.1 - b.1) * 1e6 / t),
        _ => None,
    };
    Ok((tps, cpu_us))
}

/// Clock ticks per second of `/proc/self/stat`.
fn clock_ticks() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(100.0)
    })
}

/// CPU seconds (user + system) used so far by this process, all threads, and by its children
/// that were waited for (pgbench). `None` where `/proc` is not available.
fn cpu_seconds() -> Option<(f64, f64)> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the parenthesised command name, starting with field 3 (state).
    let fields: Vec<&str> = stat
        .get(stat.rfind(')')? + 2..)?
        .split_whitespace()
        .collect();
    let field = |n: usize| fields.get(n - 3)?.parse::<f64>().ok();
    let ticks = clock_ticks();
    Some((
        (field(14)? + field(15)?) / ticks,
        (field(16)? + field(17)?) / ticks,
    ))
}

/// ", 12.3 µs client CPU/query" when known.
fn cpu_note(cpu_us: Option<f64>, per: &str) -> String {
    cpu_us.map_or_else(String::new, |us| format!(", {us:.1} µs client CPU/{per}"))
}

/// `tps = 12345.678 (without initial connection time)` (PostgreSQL 14+); older pgbench printed
/// `(excluding connections establishing)`.
fn parse_tps(output: &str) -> Option<f64> {
    let line = output
        .lines()
        .find(|l| l.starts_with("tps = ") && l.contains("without initial connection time"))
        .or_else(|| {
            output
                .lines()
                .find(|l| l.starts_with("tps = ") && l.contains("excluding connections"))
        })?;
    line.trim_start_matches("tps = ")
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// One slice of a client: opens it with `open`, [`measure`]s it, closes it.
async fn slice<T: PointSelect>(
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
async fn drive<T: PointSelect>(
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

// --- profiling -----------------------------------------------------------------------------------

/// `PGDBM_BENCH_PROFILE`: `client` (`raw` or `pgdbm`) on one connection runs
/// `PGDBM_BENCH_QUERIES` point selects in [`profile_loop`], after a warm-up outside it.
fn profile<D: Driver>(
    driver: &D,
    client: &str,
    bench_url: &str,
    admin_url: &str,
    target: &PgbenchTarget,
) -> Result<()> {
    let queries = match env_nonempty("PGDBM_BENCH_QUERIES") {
        None => 2000,
        Some(s) => s
            .trim()
            .parse::<u32>()
            .ok()
            .filter(|&n| n >= 1)
            .ok_or_else(|| format!("PGDBM_BENCH_QUERIES={s:?}: expected a number >= 1"))?,
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(prepare_database::<D>(
        admin_url,
        bench_url,
        target,
        find_pgbench().as_deref(),
    ))?;
    let sum = match client {
        "raw" => {
            let raw = rt.block_on(driver.open_raw(1))?;
            profile_loop(&rt, &raw, 200)?;
            let sum = profile_loop(&rt, &raw, queries)?;
            rt.block_on(raw.close());
            sum
        }
        "pgdbm" => {
            let pgdbm = rt.block_on(PgdbmTarget::open::<D>(bench_url, 1))?;
            profile_loop(&rt, &pgdbm, 200)?;
            let sum = profile_loop(&rt, &pgdbm, queries)?;
            rt.block_on(pgdbm.close());
            sum
        }
        other => {
            return Err(format!("PGDBM_BENCH_PROFILE={other:?}: expected raw or pgdbm").into());
        }
    };
    println!("profile: {client}, {queries} point selects (sum of balances {sum})");
    Ok(())
}

/// The profiled part: `queries` point selects one after another, with ids spread over the table.
#[inline(never)]
fn profile_loop<T: PointSelect>(
    rt: &tokio::runtime::Runtime,
    target: &T,
    queries: u32,
) -> Result<i64> {
    rt.block_on(async {
        let mut sum = 0i64;
        for i in 0..queries {
            let aid = 1 + (i.wrapping_mul(7919) % ACCOUNTS as u32) as i32;
            sum += i64::from(target.select(aid).await?);
        }
        Ok(sum)
    })
}

// --- pgdbm ---------------------------------------------------------------------------------------

/// A `Database` handle scoped to `public` on the driver's pgdbm pool.
struct PgdbmTarget {
    db: Database,
    pool: Arc<dyn PoolProvider>,
}

impl PgdbmTarget {
    /// The pool of `D` on `bench_url` with min = max = `n`, all connections open.
    async fn open<D: Driver>(bench_url: &str, n: usize) -> Result<Self> {
        let config = DatabaseConfig::builder()
            .url(bench_url)
            // Plain text, like the raw client and pgbench.
            .ssl_mode(SslMode::Disable)
            .max_connections(n as u32)
            .min_connections(n as u32)
            .build()?;
        let pool = D::connect_pgdbm(&config).await.map_err(|e| {
            format!(
                "pgdbm: cannot open the pool on {BENCH_DB}: {}",
                with_sources(&e)
            )
        })?;
        D::fill_pgdbm(&*pool, n).await?;
        let db = Database::new(pool.clone(), Some("public"))?;
        Ok(PgdbmTarget { db, pool })
    }
}

impl PointSelect for PgdbmTarget {
    async fn select(&self, aid: i32) -> Result<i32> {
        Ok(self.db.fetch_value::<i32>(PGDBM_SQL, params![aid]).await?)
    }

    async fn close(&self) {
        self.pool.close().await;
    }
}
