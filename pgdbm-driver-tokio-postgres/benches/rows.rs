//! Mapping a 100 000-row result onto a struct, four ways in one run:
//!
//! ```text
//! cargo bench -p pgdbm-driver-tokio-postgres --bench rows
//! ```
//!
//! * **raw**: tokio-postgres alone — `client.query(&stmt, &[])` on a statement prepared once,
//!   then `row.get("column")` per field (the baseline);
//! * **row.get**: pgdbm `db.fetch_all(sql)`, then `row.get("column")?` per field by hand;
//! * **derive**: pgdbm `db.fetch_all_as::<Item>(sql)` with `#[derive(FromRow)]`;
//! * **serde**: pgdbm `db.fetch_all_de::<Item>(sql)` (`Row::deserialize`, through JSON).
//!
//! `Item` has six columns — `int8`, `text`, nullable `text` (a third are NULL), `int4`, `bool`,
//! `float8` — and all four build the same `Vec<Item>` (checked). pgdbm runs on a
//! `TokioPostgresPool` of one connection, raw on one plain connection; both without TLS, on a
//! tokio runtime with one worker thread. The methods run in interleaved rounds (the order
//! rotates each round, so a drift of the machine spreads over all four) after one warm-up
//! round; each figure is the median over the rounds.
//!
//! The server comes from `PGDBM_TEST_URL`, else `DATABASE_URL`, else the `PG*` variables and
//! `localhost:5432`. The bench creates its own schema `pgdbm_bench_rows_<pid>` with one table
//! and drops it at the end (also after an error). `PGDBM_BENCH_ROUNDS` sets the rounds (default
//! 7), `PGDBM_BENCH_ROWS` the table size (default 100 000).
//!
//! Output: one line per method, `rows <method>: <rows/s> rows/s (<ms> ms per fetch), <ratio> x
//! raw`, then `rows: derive/row.get <ratio>`.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use pgdbm::driver::PoolProvider;
use pgdbm::prelude::*;
use pgdbm::{DatabaseConfig, SslMode};
use pgdbm_bench_support::env_number;
use pgdbm_driver_tokio_postgres::TokioPostgresPool;
use tokio_postgres::NoTls;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// One row of the bench table; read by every method.
#[derive(Debug, PartialEq, FromRow, serde::Deserialize)]
struct Item {
    id: i64,
    name: String,
    email: Option<String>,
    score: i32,
    active: bool,
    ratio: f64,
}

const SELECT: &str = "SELECT id, name, email, score, active, ratio FROM {{tables.items}}";

#[derive(Clone, Copy, Debug, PartialEq)]
enum Method {
    Raw,
    RowGet,
    Derive,
    Serde,
}

impl Method {
    const ALL: [Method; 4] = [Method::Raw, Method::RowGet, Method::Derive, Method::Serde];

    fn name(self) -> &'static str {
        match self {
            Method::Raw => "raw",
            Method::RowGet => "row.get",
            Method::Derive => "derive",
            Method::Serde => "serde",
        }
    }
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("tokio runtime");
    if let Err(e) = runtime.block_on(run()) {
        eprintln!("rows: error: {e}");
        std::process::exit(1);
    }
}

async fn run() -> Result<(), BoxError> {
    let rounds = env_number("PGDBM_BENCH_ROUNDS", 7)?;
    let rows = env_number("PGDBM_BENCH_ROWS", 100_000)?;
    let url = std::env::var("PGDBM_TEST_URL")
        .or_else(|_| std::env::var("DATABASE_URL"))
        .ok()
        .filter(|u| !u.trim().is_empty());
    let builder = match &url {
        Some(u) => DatabaseConfig::builder().url(u),
        None => DatabaseConfig::builder().env(),
    };
    let schema = format!("pgdbm_bench_rows_{}", std::process::id());
    let config = builder
        .ssl_mode(SslMode::Disable)
        .max_connections(1)
        .min_connections(1)
        .schema(&schema)
        .build()?;
    let pool: Arc<dyn PoolProvider> = Arc::new(TokioPostgresPool::connect(&config).await?);
    let db = Database::new(pool.clone(), Some(&schema))?;
    db.ensure_schema().await?;
    let result = measure(&db, &config, rounds, rows).await;
    let dropped = db
        .batch_execute(&format!("DROP SCHEMA \"{schema}\" CASCADE"))
        .await;
    pool.close().await;
    result?;
    dropped?;
    Ok(())
}

async fn measure(
    db: &Database,
    config: &DatabaseConfig,
    rounds: u64,
    rows: u64,
) -> Result<(), BoxError> {
    db.batch_execute(
        "CREATE TABLE {{tables.items}} (id int8 PRIMARY KEY, name text NOT NULL, email text, \
         score int4 NOT NULL, active bool NOT NULL, ratio float8 NOT NULL)",
    )
    .await?;
    let n = i64::try_from(rows)?;
    db.execute(
        "INSERT INTO {{tables.items}} SELECT g, 'name ' || g, \
         CASE WHEN g % 3 = 0 THEN NULL ELSE 'user' || g || '@example.com' END, \
         (g % 1000)::int4, g % 2 = 0, g / 7.0 FROM generate_series(1, $1::int8) g",
        params![n],
    )
    .await?;
    db.batch_execute("ANALYZE {{tables.items}}").await?;

    let raw = connect_raw(config).await?;
    let raw_sql = db.expand_sql(SELECT)?;
    let stmt = raw.prepare(&raw_sql).await?;

    // Every method builds the same items.
    let expected = fetch(Method::Derive, db, &raw, &stmt).await?;
    assert_eq!(expected.len(), usize::try_from(rows)?);
    for method in Method::ALL {
        let items = fetch(method, db, &raw, &stmt).await?;
        assert!(
            items == expected,
            "{} maps the rows differently",
            method.name()
        );
    }

    let mut times: Vec<Vec<Duration>> = vec![Vec::new(); Method::ALL.len()];
    for round in 0..rounds as usize {
        for k in 0..Method::ALL.len() {
            let i = (round + k) % Method::ALL.len();
            let start = Instant::now();
            let items = fetch(Method::ALL[i], db, &raw, &stmt).await?;
            times[i].push(start.elapsed());
            black_box(items);
        }
    }

    let medians: Vec<Duration> = times
        .iter_mut()
        .map(|t| {
            t.sort();
            t[t.len() / 2]
        })
        .collect();
    let rate = |d: Duration| rows as f64 / d.as_secs_f64();
    let raw_rate = rate(medians[0]);
    println!(
        "rows: {rows} rows x 6 columns, {rounds} rounds, median per method (pgdbm {}, PostgreSQL on {})",
        env!("CARGO_PKG_VERSION"),
        config.host()
    );
    for (method, median) in Method::ALL.iter().zip(&medians) {
        println!(
            "rows {:<8} {:>12.0} rows/s ({:>7.1} ms per fetch), {:.2} x raw",
            method.name(),
            rate(*median),
            median.as_secs_f64() * 1e3,
            rate(*median) / raw_rate
        );
    }
    println!(
        "rows: derive/row.get {:.3} (above 1: the derive is faster)",
        rate(medians[2]) / rate(medians[1])
    );
    Ok(())
}

/// A plain tokio-postgres connection without TLS, its connection task in the background.
async fn connect_raw(config: &DatabaseConfig) -> Result<tokio_postgres::Client, BoxError> {
    let mut raw = tokio_postgres::Config::new();
    raw.host(config.host())
        .port(config.port())
        .user(config.user())
        .dbname(config.database())
        .connect_timeout(Duration::from_secs(10));
    if let Some(password) = config.password() {
        raw.password(password);
    }
    let (client, connection) = raw.connect(NoTls).await?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(client)
}

/// All rows of the bench table as `Item`s, read the `method` way.
async fn fetch(
    method: Method,
    db: &Database,
    raw: &tokio_postgres::Client,
    stmt: &tokio_postgres::Statement,
) -> Result<Vec<Item>, BoxError> {
    Ok(match method {
        Method::Raw => raw
            .query(stmt, &[])
            .await?
            .iter()
            .map(|row| Item {
                id: row.get("id"),
                name: row.get("name"),
                email: row.get("email"),
                score: row.get("score"),
                active: row.get("active"),
                ratio: row.get("ratio"),
            })
            .collect(),
        Method::RowGet => db
            .fetch_all(SELECT, &[])
            .await?
            .iter()
            .map(|row| {
                Ok(Item {
                    id: row.get("id")?,
                    name: row.get("name")?,
                    email: row.get("email")?,
                    score: row.get("score")?,
                    active: row.get("active")?,
                    ratio: row.get("ratio")?,
                })
            })
            .collect::<pgdbm::Result<_>>()?,
        Method::Derive => db.fetch_all_as::<Item>(SELECT, &[]).await?,
        Method::Serde => db.fetch_all_de::<Item>(SELECT, &[]).await?,
    })
}
