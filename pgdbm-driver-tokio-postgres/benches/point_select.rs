//! Point selects through pgdbm, against raw tokio-postgres + bb8 and `pgbench -S -M prepared`.
//!
//! ```text
//! cargo bench -p pgdbm-driver-tokio-postgres --bench point_select
//! ```
//!
//! Uses the pgbench database `pgdbm_bench` at scale 10 on the server named by `PGDBM_TEST_URL`,
//! else `DATABASE_URL`, else `postgresql://$USER@localhost:5432/`. The database is created (from
//! a plain connection to `postgres`) and initialised with `pgbench -i -s 10 --quiet` when it or
//! its `pgbench_accounts` (1 000 000 rows) is missing.
//!
//! For each concurrency N (default 1, 8 and 32) three clients are measured:
//!
//! 1. pgbench: `pgbench -S -M prepared -c N -j min(N,2) -T <secs> -n` (the reference: C, libpq,
//!    one prepared statement per connection), its `tps = … (without initial connection time)`;
//! 2. raw: a bb8 pool of N tokio-postgres clients, one `pool.get()` per query and a statement
//!    prepared once per connection, `client.query_one(&stmt, &[&aid])`;
//! 3. pgdbm: a `TokioPostgresPool` of N connections shared by a `Database` handle scoped to
//!    `public`, one `db.fetch_value::<i32>("SELECT abalance FROM {{tables.pgbench_accounts}}
//!    WHERE aid = $1", params![aid])` per query (acquire per query, template expansion, statement
//!    cache, `Value` conversion and row decode included).
//!
//! In 2 and 3, N tasks each loop over random ids (1..=1 000 000) until the slice ends;
//! qps = completed queries / elapsed time. Both pools have min = max = N, all N connections open,
//! no round trip at checkout (raw: `test_on_check_out(false)`; pgdbm's checkout test is only
//! `Client::is_closed()`), and get a short warm-up (which also prepares the statement on every
//! connection) before they are timed. All three connect over the same transport, without
//! TLS.
//!
//! The phases are interleaved: each phase of `<secs>` is cut into rounds of about 2 s, run as
//! pgbench, raw, pgdbm, pgbench, raw, pgdbm, … and each result is the total over its rounds. On
//! a small shared machine the throughput drifts by ±20 % within a minute; three back-to-back
//! 10 s phases would turn that drift into a difference between the clients, interleaving spreads
//! it over all three. The pools are opened for each slice (connecting is not timed) so that at
//! most N client connections exist at a time, as with pgbench. A first 2 s warm-up fills the
//! buffer cache.
//!
//! Each line also shows the client CPU per query (this process for raw and pgdbm, the pgbench
//! child for pgbench, from `/proc`): on a machine where client and server share the cores, client
//! CPU is server CPU lost.
//!
//! Environment:
//!
//! * `PGDBM_BENCH_SECS`: seconds per phase (default 10);
//! * `PGDBM_BENCH_ROUNDS`: rounds per phase (default secs/2; 1 = one block per client, in the
//!   order pgbench, raw, pgdbm);
//! * `PGDBM_BENCH_WARMUP_SECS`: pool warm-up before each slice (default 0.5, 0 = none);
//! * `PGDBM_BENCH_CONCURRENCY`: e.g. `1,8,32` (the default);
//! * `PGDBM_BENCH_WORKERS`: tokio worker threads (default 1, see [`DEFAULT_WORKERS`]);
//! * `PGBENCH`: the pgbench executable (default `pgbench` on `PATH`). Without it the pgbench
//!   results are `n/a`.
//!
//! The last lines are one summary per concurrency:
//! `point_select c=<N>: pgdbm <qps> qps, raw <qps> qps, pgbench <tps> tps, pgdbm/pgbench <ratio>`.

use std::future::Future;
use std::process::Command;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use pgdbm::prelude::*;
use pgdbm::{DatabaseConfig, PoolProvider, SslMode};
use pgdbm_driver_tokio_postgres::TokioPostgresPool;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use tokio_postgres::config::Host;
use tokio_postgres::{Client, NoTls, Statement};

/// The database the benchmark owns.
const BENCH_DB: &str = "pgdbm_bench";
/// pgbench scale factor.
const SCALE: i64 = 10;
/// Rows of `pgbench_accounts` at [`SCALE`]; ids are `1..=ACCOUNTS`.
const ACCOUNTS: i64 = 100_000 * SCALE;
/// The statement pgdbm runs (`{{tables.…}}` expands to `"public".pgbench_accounts`).
const PGDBM_SQL: &str = "SELECT abalance FROM {{tables.pgbench_accounts}} WHERE aid = $1";
/// The same statement for the raw baseline.
const RAW_SQL: &str = "SELECT abalance FROM \"public\".pgbench_accounts WHERE aid = $1";

/// Tokio worker threads. Measured on the 2-core machine this was written on, where PostgreSQL
/// shares the cores: one and two workers give the same throughput within noise (±3 %), but two
/// cost 1.5–2 µs more client CPU per query at c=8 and c=32 (cross-thread wake-ups and work
/// stealing between each client task and its connection task), CPU the server then lacks when
/// the machine is busy. Override with `PGDBM_BENCH_WORKERS`.
const DEFAULT_WORKERS: usize = 1;

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type Result<T, E = BoxError> = std::result::Result<T, E>;

fn main() {
    if let Err(e) = run() {
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
    /// Each phase is split into this many slices, run pgbench, raw, pgdbm, pgbench, raw, …
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
    fn from_config(pg: &tokio_postgres::Config) -> Self {
        let host = match pg.get_hosts().first() {
            Some(Host::Tcp(h)) => h.clone(),
            Some(Host::Unix(p)) => p.display().to_string(),
            None => "localhost".to_owned(),
        };
        PgbenchTarget {
            host,
            port: pg.get_ports().first().copied().unwrap_or(5432),
            user: pg.get_user().map_or_else(current_user, str::to_owned),
            password: pg
                .get_password()
                .map(|p| String::from_utf8_lossy(p).into_owned()),
        }
    }

    /// A pgbench command aimed at the server. TLS is off, as in the two Rust clients (`NoTls`),
    /// so that all three pay the same per-query transport cost.
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

fn run() -> Result<()> {
    let settings = Settings::from_env()?;
    let base: tokio_postgres::Config = settings
        .url
        .parse()
        .map_err(|e| format!("invalid server URL ({}): {e}", settings.url_source))?;
    let bench_url = with_database(&settings.url, BENCH_DB)?;
    let admin_url = with_database(&settings.url, "postgres")?;
    let mut raw_config = tokio_postgres::Config::from_str(&bench_url)?;
    raw_config.connect_timeout(Duration::from_secs(10));
    let target = PgbenchTarget::from_config(&base);
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

    rt.block_on(prepare_database(
        &admin_url,
        &raw_config,
        &target,
        pgbench.as_deref(),
    ))?;

    let warmup = Duration::from_secs_f64(settings.warmup_secs);
    if !warmup.is_zero() {
        // Fill the buffer cache before the first measurement.
        rt.block_on(async {
            let pool = Arc::new(RawPool::open(raw_config.clone(), 2).await?);
            drive(&pool, 2, warmup.max(Duration::from_secs(2))).await
        })?;
    }

    let rounds = settings.rounds;
    let mut summary = Vec::new();
    for &n in &settings.concurrency {
        let mut pgbench_acc = pgbench.as_ref().map(|_| (0.0, 0.0));
        let mut raw_acc = (0u64, Duration::ZERO);
        let mut pgdbm_acc = (0u64, Duration::ZERO);
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

            let (count, elapsed) = rt.block_on(async {
                let pool = Arc::new(RawPool::open(raw_config.clone(), n).await?);
                measure(&tag, "raw", n, pool, warmup, phase).await
            })?;
            raw_acc.0 += count;
            raw_acc.1 += elapsed;

            let (count, elapsed) = rt.block_on(async {
                let config = DatabaseConfig::builder()
                    .url(&bench_url)
                    // Plain text, like the raw client (`NoTls`) and pgbench.
                    .ssl_mode(SslMode::Disable)
                    .max_connections(n as u32)
                    .min_connections(n as u32)
                    .build()?;
                let pool = Arc::new(TokioPostgresPool::connect(&config).await.map_err(|e| {
                    format!(
                        "pgdbm: cannot open the pool on {BENCH_DB}: {}",
                        with_sources(&e)
                    )
                })?);
                wait_for_pgdbm_pool(&pool, n).await?;
                let shared: Arc<dyn PoolProvider> = pool.clone();
                let db = Database::new(shared, Some("public"))?;
                let result =
                    measure(&tag, "pgdbm", n, Arc::new(PgdbmTarget(db)), warmup, phase).await;
                pool.close().await;
                result
            })?;
            pgdbm_acc.0 += count;
            pgdbm_acc.1 += elapsed;
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
        summary.push((n, pgdbm_qps, raw_qps, pgbench_tps));
    }

    println!();
    for &(n, pgdbm_qps, raw_qps, pgbench_tps) in &summary {
        let vs = match pgbench_tps {
            Some(t) => format!(
                "raw/pgbench {:.2}, pgdbm/raw {:.2}",
                raw_qps / t,
                pgdbm_qps / raw_qps
            ),
            None => format!("pgdbm/raw {:.2}", pgdbm_qps / raw_qps),
        };
        println!("c={n}: {vs}");
    }
    for &(n, pgdbm_qps, raw_qps, pgbench_tps) in &summary {
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

/// Creates `pgdbm_bench` if missing and (re)initialises it with pgbench unless it already holds
/// the scale-10 tables.
async fn prepare_database(
    admin_url: &str,
    bench: &tokio_postgres::Config,
    target: &PgbenchTarget,
    pgbench: Option<&str>,
) -> Result<()> {
    let mut admin = tokio_postgres::Config::from_str(admin_url)?;
    admin.connect_timeout(Duration::from_secs(10));
    let client = connect(&admin).await.map_err(|e| {
        format!(
            "cannot reach PostgreSQL at {}:{} as {} (database postgres): {}. \
             Is the server running? Set PGDBM_TEST_URL or DATABASE_URL to point elsewhere.",
            target.host,
            target.port,
            target.user,
            with_sources(&e)
        )
    })?;
    let exists: bool = client
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)",
            &[&BENCH_DB],
        )
        .await?
        .get(0);
    if !exists {
        println!("point_select: creating database {BENCH_DB}");
        if let Err(e) = client
            .batch_execute(&format!("CREATE DATABASE {BENCH_DB}"))
            .await
        {
            // Someone else may have created it meanwhile.
            if e.code() != Some(&tokio_postgres::error::SqlState::DUPLICATE_DATABASE) {
                return Err(format!("cannot create database {BENCH_DB}: {e}").into());
            }
        }
    }
    drop(client);

    let client = connect(bench).await.map_err(|e| {
        format!(
            "cannot connect to database {BENCH_DB}: {}",
            with_sources(&e)
        )
    })?;
    let rows = |table: &'static str| {
        let client = &client;
        async move {
            let present: bool = client
                .query_one("SELECT to_regclass($1) IS NOT NULL", &[&table])
                .await?
                .get(0);
            if !present {
                return Ok::<_, tokio_postgres::Error>(None);
            }
            let n: i64 = client
                .query_one(&format!("SELECT count(*) FROM {table}"), &[])
                .await?
                .get(0);
            Ok(Some(n))
        }
    };
    let accounts = rows("public.pgbench_accounts").await?;
    let branches = rows("public.pgbench_branches").await?;
    if accounts == Some(ACCOUNTS) && branches == Some(SCALE) {
        println!("point_select: {BENCH_DB} holds the pgbench tables at scale {SCALE}");
    } else {
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
    }
    Ok(())
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

/// A plain connection whose connection task runs in the background.
async fn connect(config: &tokio_postgres::Config) -> Result<Client, tokio_postgres::Error> {
    let (client, connection) = config.connect(NoTls).await?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(client)
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

/// Something that runs the point select.
trait PointSelect: Send + Sync + 'static {
    fn select(&self, aid: i32) -> impl Future<Output = Result<i32>> + Send;
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

// --- pgdbm ---------------------------------------------------------------------------------------

struct PgdbmTarget(Database);

impl PointSelect for PgdbmTarget {
    async fn select(&self, aid: i32) -> Result<i32> {
        Ok(self.0.fetch_value::<i32>(PGDBM_SQL, params![aid]).await?)
    }
}

/// `TokioPostgresPool::connect` opens one connection and the rest of `min_connections` in the
/// background: wait until all `n` are open, so that no phase pays for connecting.
async fn wait_for_pgdbm_pool(pool: &TokioPostgresPool, n: usize) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while (pool.stats().size as usize) < n {
        if Instant::now() > deadline {
            return Err(format!("pgdbm pool: only {:?} after 30 s", pool.stats()).into());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Ok(())
}

// --- raw tokio-postgres + bb8 --------------------------------------------------------------------

/// A tokio-postgres client and its prepared point select (prepared on first use).
struct RawConn {
    client: Client,
    stmt: Option<Statement>,
}

struct RawManager {
    config: tokio_postgres::Config,
}

impl bb8::ManageConnection for RawManager {
    type Connection = RawConn;
    type Error = tokio_postgres::Error;

    async fn connect(&self) -> Result<RawConn, tokio_postgres::Error> {
        let client = connect(&self.config).await?;
        Ok(RawConn { client, stmt: None })
    }

    async fn is_valid(&self, conn: &mut RawConn) -> Result<(), tokio_postgres::Error> {
        conn.client.simple_query("").await.map(|_| ())
    }

    fn has_broken(&self, conn: &mut RawConn) -> bool {
        conn.client.is_closed()
    }
}

struct RawPool(bb8::Pool<RawManager>);

impl RawPool {
    /// A pool of exactly `n` connections, all open on return.
    async fn open(config: tokio_postgres::Config, n: usize) -> Result<Self> {
        let pool = bb8::Pool::builder()
            .max_size(n as u32)
            .min_idle(Some(n as u32))
            .test_on_check_out(false)
            .build(RawManager { config })
            .await
            .map_err(|e| format!("raw: cannot open the pool on {BENCH_DB}: {e}"))?;
        let deadline = Instant::now() + Duration::from_secs(30);
        while (pool.state().connections as usize) < n {
            if Instant::now() > deadline {
                return Err(format!("raw pool: only {:?} after 30 s", pool.state()).into());
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Ok(RawPool(pool))
    }
}

impl PointSelect for RawPool {
    async fn select(&self, aid: i32) -> Result<i32> {
        let mut conn = self.0.get().await.map_err(|e| format!("raw: {e}"))?;
        if conn.stmt.is_none() {
            let stmt = conn.client.prepare(RAW_SQL).await?;
            conn.stmt = Some(stmt);
        }
        let conn = &*conn;
        let stmt = conn.stmt.as_ref().expect("prepared above");
        let row = conn.client.query_one(stmt, &[&aid]).await?;
        Ok(row.get::<_, i32>(0))
    }
}
