//! Times tenant sign-ups as the number of tenants grows: in a fresh database, signs up N tenants
//! (default 1,000) through [`saas_app::lifecycle::sign_up`] — registry row, `CREATE SCHEMA`,
//! migrations, key — and prints the median and p95 of one sign-up at 1, 100 and 1,000 tenants
//! (over the sign-ups that brought the count from 90 % to 100 % of that size), then drops the
//! database.
//!
//! ```text
//! cargo run --release -p saas-app --example signup_timing
//! cargo run --release -p saas-app --example signup_timing -- --tenants 1000 --concurrency 8
//! ```
//!
//! The server is `DATABASE_URL` or the libpq variables (database `postgres` by default); the
//! role needs `CREATEDB`. Keys are hashed with Argon2id at its default cost, as in production;
//! the hash alone is timed too. `--low-cost-hash` hashes at Argon2's minimum cost instead, which
//! leaves the database's part of a sign-up.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use pgdbm::prelude::*;
use pgdbm::{DatabaseConfig, SharedPool, quote_identifier};
use pgdbm_driver_tokio_postgres::TokioPostgresPool;
use saas_app::api_key::{ApiKey, KeyHasher};
use saas_app::lifecycle::{SignUp, sign_up};
use saas_app::registry::Registry;

const SIZES: [usize; 3] = [1, 100, 1000];

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (tenants, concurrency, low_cost) = args()?;
    let mut builder = DatabaseConfig::builder().env();
    if std::env::var_os("DATABASE_URL").is_none() && std::env::var_os("PGDATABASE").is_none() {
        builder = builder.database("postgres");
    }
    let admin_config = builder.max_connections(2).build()?;
    let admin =
        Database::connect::<pgdbm_driver_tokio_postgres::TokioPostgres>(&admin_config).await?;
    let name = format!("saas_signup_timing_{}", std::process::id());
    admin
        .batch_execute(&format!("CREATE DATABASE {}", quote_identifier(&name)))
        .await?;
    let hasher = if low_cost {
        KeyHasher::low_cost()
    } else {
        KeyHasher::default()
    };
    let result = run(&admin_config, &name, tenants, concurrency, hasher, low_cost).await;
    admin
        .batch_execute(&format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            quote_identifier(&name)
        ))
        .await?;
    admin.close().await;
    result
}

fn args() -> Result<(usize, usize, bool), String> {
    let (mut tenants, mut concurrency, mut low_cost) = (1000, 1, false);
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        if flag == "--low-cost-hash" {
            low_cost = true;
            continue;
        }
        let value = args.next().ok_or(format!("{flag} needs a value"))?;
        let n: usize = value
            .parse()
            .map_err(|_| format!("{flag} {value}: not a number"))?;
        match flag.as_str() {
            "--tenants" => tenants = n.max(1),
            "--concurrency" => concurrency = n.max(1),
            _ => {
                return Err(format!(
                    "unknown flag {flag} (--tenants N, --concurrency N, --low-cost-hash)"
                ));
            }
        }
    }
    Ok((tenants, concurrency, low_cost))
}

async fn run(
    admin_config: &DatabaseConfig,
    database: &str,
    tenants: usize,
    concurrency: usize,
    hasher: KeyHasher,
    low_cost: bool,
) -> Result<(), Box<dyn std::error::Error>> {
    let config = admin_config
        .to_builder()
        .database(database)
        .max_connections(u32::try_from(concurrency * 2 + 2)?)
        .build()?;
    let pool: SharedPool = Arc::new(TokioPostgresPool::connect(&config).await?);
    let registry = Registry::setup(pool.clone()).await?;
    let mut hashes = Vec::new();
    for _ in 0..20 {
        let started = Instant::now();
        hasher.hash(&ApiKey::generate()).await?;
        hashes.push(started.elapsed());
    }
    println!(
        "argon2id hash alone ({}): median {}",
        if low_cost {
            "minimum cost"
        } else {
            "default cost"
        },
        ms(percentile(&mut hashes, 50))
    );

    println!("signing up {tenants} tenants, {concurrency} at a time, in database {database}");
    let started = Instant::now();
    let mut runs = futures_util::stream::iter(0..tenants)
        .map(|i| {
            let (registry, hasher) = (&registry, &hasher);
            async move {
                let req = SignUp {
                    slug: format!("t{i:05}"),
                    name: format!("Tenant {i}"),
                    plan: "free".into(),
                };
                let one = Instant::now();
                sign_up(registry, hasher, req).await.map(|_| one.elapsed())
            }
        })
        .buffered(concurrency);
    let mut times = Vec::with_capacity(tenants);
    while let Some(took) = runs.next().await {
        times.push(took?);
    }
    let wall = started.elapsed();
    println!(
        "{tenants} sign-ups in {:.1} s: {:.1} sign-ups/s",
        wall.as_secs_f64(),
        tenants as f64 / wall.as_secs_f64()
    );
    println!(
        "{:>8}  {:>10}  {:>10}  {:>9}",
        "tenants", "median", "p95", "sign-ups"
    );
    for size in SIZES.into_iter().filter(|&s| s <= tenants) {
        let from = size - size.div_ceil(10);
        let mut window = times[from..size].to_vec();
        println!(
            "{size:>8}  {:>10}  {:>10}  {:>9}",
            ms(percentile(&mut window, 50)),
            ms(percentile(&mut window, 95)),
            format!("{}–{}", from + 1, size)
        );
    }
    let schemas: i64 = registry
        .db()
        .fetch_value(
            "SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'tenant\\_%'",
            &[],
        )
        .await?;
    let relations: i64 = registry
        .db()
        .fetch_value("SELECT count(*) FROM pg_class", &[])
        .await?;
    println!("{schemas} tenant schemas, {relations} rows in pg_class");
    pool.close().await;
    Ok(())
}

/// The `p`th percentile (nearest rank) of `values`.
fn percentile(values: &mut [Duration], p: usize) -> Duration {
    values.sort();
    let rank = (values.len() * p).div_ceil(100).max(1);
    values[rank - 1]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}
