//! Migration benchmark: apply 200 small migrations (a table and an index each) into a fresh
//! schema, then re-run with all 200 applied (a no-op: lock, ledger check, unlock).
//!
//! ```text
//! cargo bench -p pgdbm --bench migrate
//! ```
//!
//! The server comes from `PGDBM_TEST_URL`, then `DATABASE_URL`, then the libpq `PG*` variables
//! (database `postgres` unless one is named). The no-op re-run should take well under 10 ms.

use std::time::{Duration, Instant};

use pgdbm::prelude::*;
use pgdbm::{DatabaseConfig, MigrationSource, Result};
use pgdbm_driver_tokio_postgres::TokioPostgres;

const FILES: usize = 200;
const RERUNS: usize = 20;

fn config() -> Result<DatabaseConfig> {
    let url = std::env::var("PGDBM_TEST_URL")
        .ok()
        .or_else(|| std::env::var("DATABASE_URL").ok());
    let builder = match url {
        Some(url) => DatabaseConfig::builder().url(&url),
        None if std::env::var_os("PGDATABASE").is_none() => {
            DatabaseConfig::builder().env().database("postgres")
        }
        None => DatabaseConfig::builder().env(),
    };
    builder
        .schema(format!("pgdbm_bench_migrate_{}", std::process::id()))
        .min_connections(2)
        .max_connections(4)
        .build()
}

fn source() -> Result<MigrationSource> {
    MigrationSource::from_pairs((1..=FILES).map(|i| {
        (
            format!("{i:03}_table_{i}.sql"),
            format!(
                "CREATE TABLE {{{{tables.t{i}}}}} (id int PRIMARY KEY, v text);\n\
                 CREATE INDEX t{i}_v_idx ON {{{{tables.t{i}}}}} (v);\n"
            ),
        )
    }))
}

#[tokio::main]
async fn main() -> Result<()> {
    let db = Database::connect::<TokioPostgres>(&config()?).await?;
    db.batch_execute("DROP SCHEMA IF EXISTS {{schema}} CASCADE")
        .await?;
    let src = source()?;

    let started = Instant::now();
    let report = db.migrator().apply("bench", &src).await?;
    let first = started.elapsed();
    assert_eq!(report.applied.len(), FILES);

    let mut reruns: Vec<Duration> = Vec::with_capacity(RERUNS);
    for _ in 0..RERUNS {
        let started = Instant::now();
        let report = db.migrator().apply("bench", &src).await?;
        reruns.push(started.elapsed());
        assert!(report.applied.is_empty() && report.skipped.len() == FILES);
    }
    reruns.sort();
    let median = reruns[RERUNS / 2];

    println!(
        "apply {FILES} migrations into a fresh schema: {:.1} ms ({:.2} ms per migration)",
        first.as_secs_f64() * 1e3,
        first.as_secs_f64() * 1e3 / FILES as f64
    );
    println!(
        "no-op re-run with {FILES} applied: median {:.2} ms, min {:.2} ms, max {:.2} ms over {RERUNS} runs ({})",
        median.as_secs_f64() * 1e3,
        reruns[0].as_secs_f64() * 1e3,
        reruns[RERUNS - 1].as_secs_f64() * 1e3,
        if median < Duration::from_millis(10) {
            "under the 10 ms target"
        } else {
            "OVER the 10 ms target"
        }
    );

    db.batch_execute("DROP SCHEMA IF EXISTS {{schema}} CASCADE")
        .await?;
    db.close().await;
    Ok(())
}
