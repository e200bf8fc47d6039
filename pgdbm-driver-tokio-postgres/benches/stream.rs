//! Reading 1M rows of ~200 bytes: pgdbm's `fetch` (a stream), pgdbm's `fetch_all`, and raw
//! tokio-postgres `query_raw` (its `RowStream`, rows dropped as they arrive).
//!
//! ```text
//! cargo bench -p pgdbm-driver-tokio-postgres --bench stream
//! ```
//!
//! Each variant runs in a child process of its own (this binary run again with
//! `PGDBM_STREAM_VARIANT` set), so that its peak resident memory (`VmHWM` in
//! `/proc/self/status`) is its own: the child connects, reads a small result once (so
//! connection buffers and caches exist), notes `VmHWM`, reads the 1M rows, and reports the peak's
//! growth and rows per second. The rows are `SELECT generate_series(1, N), repeat('x', 192)`
//! (an int4 and 192 bytes of text, produced as they are sent), made by the server, so no table
//! is needed. Server: `PGDBM_TEST_URL`, else `DATABASE_URL`, else
//! `postgresql://$USER@localhost:5432/postgres`.
//! `PGDBM_STREAM_ROWS` changes N (1 000 000).

use std::process::Command;
use std::time::Instant;

use futures_util::{StreamExt, TryStreamExt, pin_mut};
use pgdbm::prelude::*;
use pgdbm::{DatabaseConfig, Row};
use pgdbm_driver_tokio_postgres::TokioPostgres;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

const VARIANTS: [&str; 3] = ["fetch", "fetch_all", "raw query_raw"];

fn url() -> String {
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    env("PGDBM_TEST_URL")
        .or_else(|| env("DATABASE_URL"))
        .unwrap_or_else(|| {
            let user = env("USER").unwrap_or_else(|| "postgres".into());
            format!("postgresql://{user}@localhost:5432/postgres")
        })
}

fn rows_wanted() -> i32 {
    std::env::var("PGDBM_STREAM_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000)
}

/// Peak resident set size of this process so far, in KiB.
fn vm_hwm_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn main() {
    if let Ok(variant) = std::env::var("PGDBM_STREAM_VARIANT") {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        match rt.block_on(child(&variant)) {
            Ok(line) => println!("{line}"),
            Err(e) => {
                eprintln!("{variant}: {e}");
                std::process::exit(1);
            }
        }
        return;
    }
    let exe = std::env::current_exe().expect("own path");
    let n = rows_wanted();
    println!("stream: {n} rows of ~200 bytes, each variant in a fresh process");
    println!(
        "{:<15} {:>16} {:>12} {:>14}",
        "variant", "peak growth", "rows", "rows/s"
    );
    for variant in VARIANTS {
        let out = Command::new(&exe)
            .env("PGDBM_STREAM_VARIANT", variant)
            .output()
            .expect("run the variant");
        let text = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() {
            eprintln!("{variant} failed: {}", String::from_utf8_lossy(&out.stderr));
            std::process::exit(1);
        }
        let fields: Vec<&str> = text.split_whitespace().collect();
        let [growth_kib, rows, secs] = fields[..] else {
            panic!("unexpected output of {variant}: {text}");
        };
        let growth_kib: f64 = growth_kib.parse().expect("KiB");
        let rows: f64 = rows.parse().expect("rows");
        let secs: f64 = secs.parse().expect("seconds");
        println!(
            "{variant:<15} {:>12.1} MiB {rows:>12} {:>14.0}",
            growth_kib / 1024.0,
            rows / secs
        );
    }
}

/// One variant: `<peak growth KiB> <rows> <seconds>`.
async fn child(variant: &str) -> Result<String, BoxError> {
    let n = rows_wanted();
    let sql = "SELECT generate_series(1, $1) AS n, repeat('x', 192) AS body";
    let warm = 100;
    let (growth, rows, secs) = match variant {
        "fetch" | "fetch_all" => {
            let config = DatabaseConfig::builder()
                .url(url())
                .max_connections(1)
                .min_connections(1)
                .statement_timeout(None)
                .build()?;
            let db = Database::connect::<TokioPostgres>(&config).await?;
            let warm_p = params![warm];
            let _ = db.fetch_all(sql, warm_p).await?;
            let _ = db.fetch(sql, warm_p).try_collect::<Vec<Row>>().await?;
            let before = vm_hwm_kib();
            let start = Instant::now();
            let p = params![n];
            let rows = if variant == "fetch" {
                let mut bytes = 0usize;
                let mut count = 0u64;
                let mut stream = db.fetch(sql, p);
                while let Some(row) = stream.try_next().await? {
                    bytes += row.get::<String>(1)?.len();
                    count += 1;
                }
                assert_eq!(bytes, 192 * count as usize);
                count
            } else {
                let all = db.fetch_all(sql, p).await?;
                let bytes: usize = all
                    .iter()
                    .map(|r| r.get::<String>(1).map(|s| s.len()))
                    .sum::<pgdbm::Result<usize>>()?;
                assert_eq!(bytes, 192 * all.len());
                all.len() as u64
            };
            let secs = start.elapsed().as_secs_f64();
            db.close().await;
            (vm_hwm_kib().saturating_sub(before), rows, secs)
        }
        "raw query_raw" => {
            let (client, conn) = tokio_postgres::connect(&url(), tokio_postgres::NoTls).await?;
            tokio::spawn(conn);
            let stmt = client.prepare(sql).await?;
            let _ = client.query(&stmt, &[&warm]).await?;
            let before = vm_hwm_kib();
            let start = Instant::now();
            let stream = client
                .query_raw(&stmt, [&n as &(dyn tokio_postgres::types::ToSql + Sync)])
                .await?;
            pin_mut!(stream);
            let mut count = 0u64;
            let mut bytes = 0usize;
            while let Some(row) = stream.next().await {
                bytes += row?.get::<_, &str>(1).len();
                count += 1;
            }
            assert_eq!(bytes, 192 * count as usize);
            (
                vm_hwm_kib().saturating_sub(before),
                count,
                start.elapsed().as_secs_f64(),
            )
        }
        other => return Err(format!("unknown variant {other}").into()),
    };
    Ok(format!("{growth} {rows} {secs}"))
}
