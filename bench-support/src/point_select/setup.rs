//! Preparing the bench database: created if missing, initialised with `pgbench -i` unless it
//! already holds the scale-10 tables (checked through pgdbm on the bench's driver).

use std::time::Instant;

use pgdbm::prelude::*;
use pgdbm::{DatabaseConfig, SslMode};

use super::pgbench::PgbenchTarget;
use super::{ACCOUNTS, BENCH_DB, Driver, Result, SCALE, with_sources};

/// The tables [`bench_tables`] counts: accounts, then branches.
const TABLES: [&str; 2] = ["public.pgbench_accounts", "public.pgbench_branches"];

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

/// Creates `pgdbm_bench` if missing and (re)initialises it with pgbench unless it already holds
/// the scale-10 tables.
pub(super) async fn prepare_database<D: Driver>(
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
