//! Time to hand a test a migrated database: template clone (pgdbm-testing) vs. create-and-migrate,
//! for migration sets of 20 and 200 files, p50/p95 over 50 databases each (each dropped after).
//!
//! `cargo bench -p pgdbm-testing --bench provision` (server as in the crate docs; `PGPORT=1`
//! with no `PGDBM_TEST_URL`/`DATABASE_URL` forces the throwaway server). `PROVISION_N` changes
//! the number of databases per figure.

use std::time::{Duration, Instant};

use pgdbm::prelude::*;
use pgdbm::{Database, MigrationSource};
use pgdbm_driver_tokio_postgres::TokioPostgres;
use pgdbm_testing::{CloneStrategy, TestDatabase, TestServer};

fn source(files: usize, salt: u64) -> MigrationSource {
    let pairs = (0..files).map(|i| {
        (
            format!("{i:04}_step.sql"),
            format!(
                "-- set {salt}\nCREATE TABLE {{{{tables.t{i}}}}} (id bigserial PRIMARY KEY, name text NOT NULL, \
                 created_at timestamptz NOT NULL DEFAULT now(), payload jsonb);\n\
                 CREATE INDEX ON {{{{tables.t{i}}}}} (name);"
            ),
        )
    });
    MigrationSource::from_pairs(pairs).expect("valid migrations")
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

fn summary(mut samples: Vec<Duration>) -> (Duration, Duration) {
    samples.sort();
    (percentile(&samples, 0.5), percentile(&samples, 0.95))
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

async fn clone_run(
    module: &str,
    src: &MigrationSource,
    strategy: CloneStrategy,
    n: usize,
    templates: &mut Vec<String>,
) -> (Duration, Duration) {
    // Warm-up: builds the template (not measured).
    let warm = TestDatabase::<TokioPostgres>::builder()
        .migrations(module, src.clone())
        .clone_strategy(strategy)
        .build()
        .await
        .expect("template");
    templates.push(warm.template().to_owned());
    drop(warm);
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        let db = TestDatabase::<TokioPostgres>::builder()
            .migrations(module, src.clone())
            .clone_strategy(strategy)
            .build()
            .await
            .expect("clone");
        db.fetch_value::<i32>("SELECT 1", &[]).await.expect("ready");
        samples.push(t.elapsed());
        drop(db);
    }
    summary(samples)
}

async fn migrate_run(
    server: &TestServer,
    module: &str,
    src: &MigrationSource,
    n: usize,
) -> (Duration, Duration) {
    let admin = connect_admin(server).await;
    let mut samples = Vec::with_capacity(n);
    for i in 0..n {
        let name = format!("pgdbm_bench_{}_{i}", std::process::id());
        let t = Instant::now();
        admin
            .batch_execute(&format!("CREATE DATABASE \"{name}\""))
            .await
            .expect("create");
        let db = Database::connect::<TokioPostgres>(
            &server
                .config
                .to_builder()
                .database(&name)
                .max_connections(5)
                .build()
                .expect("config"),
        )
        .await
        .expect("connect");
        db.migrator().apply(module, src).await.expect("migrate");
        db.fetch_value::<i32>("SELECT 1", &[]).await.expect("ready");
        samples.push(t.elapsed());
        db.close().await;
        admin
            .batch_execute(&format!("DROP DATABASE \"{name}\" WITH (FORCE)"))
            .await
            .expect("drop");
    }
    admin.close().await;
    summary(samples)
}

async fn connect_admin(server: &TestServer) -> Database {
    let config = server
        .config
        .to_builder()
        .database("postgres")
        .max_connections(1)
        .statement_timeout(None)
        .build()
        .expect("config");
    Database::connect::<TokioPostgres>(&config)
        .await
        .expect("admin")
}

fn main() {
    let n: usize = std::env::var("PROVISION_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let server = TestServer::shared::<TokioPostgres>().await.expect("server");
        let version: String = {
            let admin = connect_admin(server).await;
            let v: String = admin.fetch_value("SHOW server_version", &[]).await.expect("version");
            let fsync: String = admin.fetch_value("SHOW fsync", &[]).await.expect("fsync");
            admin.close().await;
            format!("{v}, fsync={fsync}")
        };
        println!("server: {} ({}), PostgreSQL {version}; {n} databases per figure", server.source, server.config.masked_url());
        // A salt per run so that templates are built fresh (warm-up) rather than found.
        let salt = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        println!(
            "{:>10} | {:>24} | {:>24} | {:>24} | {:>8}",
            "migrations", "clone FILE_COPY p50/p95", "clone WAL_LOG p50/p95", "create+migrate p50/p95", "speed-up"
        );
        let mut templates = Vec::new();
        for files in [20usize, 200] {
            let module = format!("bench_{files}");
            let src = source(files, salt);
            let (fc50, fc95) = clone_run(&module, &src, CloneStrategy::FileCopy, n, &mut templates).await;
            let (wl50, wl95) = clone_run(&module, &src, CloneStrategy::WalLog, n, &mut templates).await;
            let (m50, m95) = migrate_run(server, &module, &src, n).await;
            let best = fc50.min(wl50);
            println!(
                "{files:>10} | {:>10.1} / {:>8.1} ms | {:>10.1} / {:>8.1} ms | {:>10.1} / {:>8.1} ms | {:>7.1}x",
                ms(fc50),
                ms(fc95),
                ms(wl50),
                ms(wl95),
                ms(m50),
                ms(m95),
                ms(m50) / ms(best).max(0.001)
            );
        }
        templates.sort();
        templates.dedup();
        let admin = connect_admin(server).await;
        for t in &templates {
            admin
                .batch_execute(&format!("ALTER DATABASE \"{t}\" WITH IS_TEMPLATE false"))
                .await
                .expect("unmark");
            admin
                .batch_execute(&format!("DROP DATABASE \"{t}\" WITH (FORCE)"))
                .await
                .expect("drop template");
        }
        admin.close().await;
    });
}
