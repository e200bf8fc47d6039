//! Point selects through pgdbm on the sqlx driver, against raw sqlx (`sqlx::query_scalar` on a
//! `PgPool`) and `pgbench -S -M prepared`.
//!
//! ```text
//! cargo bench -p pgdbm-driver-sqlx --bench point_select
//! ```
//!
//! The same workload and output as the tokio-postgres driver's `point_select` bench: the
//! workload, the database (`pgdbm_bench` at pgbench scale 10, created and initialised when
//! missing), the interleaved rounds, the environment (`PGDBM_BENCH_SECS`, `PGDBM_BENCH_ROUNDS`,
//! `PGDBM_BENCH_WARMUP_SECS`, `PGDBM_BENCH_CONCURRENCY`, `PGDBM_BENCH_WORKERS`, `PGBENCH`) and
//! the output come from the shared harness, `pgdbm_bench_support::point_select`
//! (`bench-support/src/point_select.rs`). This file holds the sqlx parts:
//!
//! * raw: a `sqlx::PgPool` of N connections (`test_before_acquire(false)`, TLS off, statement
//!   logging off: pgdbm makes its tracing spans in the core),
//!   `sqlx::query_scalar::<_, i32>(SQL).bind(aid).fetch_one(&pool)` per query (sqlx's own
//!   statement cache prepares it once per connection);
//! * pgdbm: a `SqlxPool` of N connections (parameter types from pgdbm's statement cache); both
//!   pools get all N connections opened by holding N at once before measuring.
//!
//! The last lines are one summary per concurrency:
//! `point_select c=<N>: pgdbm <qps> qps, raw <qps> qps, pgbench <tps> tps, pgdbm/pgbench <ratio>`.

use std::str::FromStr;
use std::sync::Arc;

use harness::{BENCH_DB, PointSelect, RAW_SQL, Result};
use pgdbm::DatabaseConfig;
use pgdbm::driver::PoolProvider;
use pgdbm_bench_support::point_select as harness;
use pgdbm_driver_sqlx::SqlxPool;
use sqlx::ConnectOptions as _;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgSslMode};

fn main() {
    harness::main::<Sqlx>();
}

/// The sqlx parts of the bench; holds the raw baseline's connect options.
struct Sqlx {
    raw_config: PgConnectOptions,
}

impl harness::Driver for Sqlx {
    type Raw = RawPool;
    // sqlx runs one statement at a time per connection: no multiplexing, no shared clients.
    type Shared = harness::NoShared;

    fn new(bench_url: &str) -> Result<Self> {
        let raw_config = PgConnectOptions::from_str(bench_url)?
            .ssl_mode(PgSslMode::Disable)
            .disable_statement_logging();
        Ok(Sqlx { raw_config })
    }

    async fn open_raw(&self, n: usize) -> Result<RawPool> {
        RawPool::open(self.raw_config.clone(), n).await
    }

    async fn connect_pgdbm(config: &DatabaseConfig) -> pgdbm::Result<Arc<dyn PoolProvider>> {
        Ok(Arc::new(SqlxPool::connect(config).await?))
    }

    /// Opens all `n` connections of the pool by holding `n` at once.
    async fn fill_pgdbm(pool: &dyn PoolProvider, n: usize) -> Result<()> {
        let mut held = Vec::with_capacity(n);
        for _ in 0..n {
            held.push(pool.acquire().await?);
        }
        drop(held);
        if (pool.stats().size as usize) < n {
            return Err(format!("pgdbm pool: only {:?}", pool.stats()).into());
        }
        Ok(())
    }
}

// --- raw sqlx ------------------------------------------------------------------------------------

struct RawPool(PgPool);

impl RawPool {
    /// A pool of exactly `n` connections, all open on return.
    async fn open(config: PgConnectOptions, n: usize) -> Result<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(n as u32)
            .min_connections(n as u32)
            .test_before_acquire(false)
            .connect_with(config)
            .await
            .map_err(|e| format!("raw: cannot open the pool on {BENCH_DB}: {e}"))?;
        let mut held = Vec::with_capacity(n);
        for _ in 0..n {
            held.push(pool.acquire().await?);
        }
        drop(held);
        if (pool.size() as usize) < n {
            return Err(format!("raw pool: only {} connections", pool.size()).into());
        }
        Ok(RawPool(pool))
    }
}

impl PointSelect for RawPool {
    async fn select(&self, aid: i32) -> Result<i32> {
        Ok(sqlx::query_scalar::<_, i32>(RAW_SQL)
            .bind(aid)
            .fetch_one(&self.0)
            .await?)
    }

    async fn close(&self) {
        self.0.close().await;
    }
}
