//! Point selects through pgdbm, against raw tokio-postgres + bb8 and `pgbench -S -M prepared`.
//!
//! ```text
//! cargo bench -p pgdbm-driver-tokio-postgres --bench point_select
//! ```
//!
//! The workload, the database (`pgdbm_bench` at pgbench scale 10, created and initialised when
//! missing), the interleaved rounds, the environment (`PGDBM_BENCH_SECS`, `PGDBM_BENCH_ROUNDS`,
//! `PGDBM_BENCH_WARMUP_SECS`, `PGDBM_BENCH_CONCURRENCY`, `PGDBM_BENCH_WORKERS`, `PGBENCH`) and
//! the output are those of the shared harness, `pgdbm_bench_support::point_select`
//! (`bench-support/src/point_select.rs`, also used by the sqlx driver's `point_select` bench).
//! This file holds the tokio-postgres parts:
//!
//! * raw: a bb8 pool of N tokio-postgres clients (`NoTls`, `test_on_check_out(false)`, so no
//!   round trip at checkout), one `pool.get()` per query and a statement prepared once per
//!   connection, `client.query_one(&stmt, &[&aid])`;
//! * pgdbm: a `TokioPostgresPool` of N connections (its checkout test is only
//!   `Client::is_closed()`); it opens one connection at once and the others in the background,
//!   and the bench waits until all N are open;
//! * multiplexed: the same pool with `multiplexing = true` (shared connections: the number of
//!   CPUs);
//! * shared: as many tokio-postgres clients as shared connections, used by all N tasks
//!   round-robin, the statement prepared once per client — the pipelining ceiling.
//!
//! The last lines are one summary per concurrency:
//! `point_select c=<N>: pgdbm <qps> qps, multiplexed <qps> qps, raw <qps> qps, pgbench <tps> tps,
//! pgdbm/pgbench <r>, multiplexed/pgbench <r>, shared <qps> qps, multiplexed/shared <r>`.

use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use harness::{BENCH_DB, PointSelect, RAW_SQL, Result};
use pgdbm::DatabaseConfig;
use pgdbm::driver::PoolProvider;
use pgdbm_bench_support::point_select as harness;
use pgdbm_driver_tokio_postgres::TokioPostgresPool;
use tokio_postgres::{Client, NoTls, Statement};

fn main() {
    harness::main::<TokioPostgres>();
}

/// The tokio-postgres parts of the bench; holds the raw baseline's connect options.
struct TokioPostgres {
    raw_config: tokio_postgres::Config,
}

impl harness::Driver for TokioPostgres {
    type Raw = RawPool;
    type Shared = SharedClients;
    const MULTIPLEXES: bool = true;

    fn new(bench_url: &str) -> Result<Self> {
        let mut raw_config = tokio_postgres::Config::from_str(bench_url)?;
        raw_config.connect_timeout(Duration::from_secs(10));
        Ok(TokioPostgres { raw_config })
    }

    async fn open_raw(&self, n: usize) -> Result<RawPool> {
        RawPool::open(self.raw_config.clone(), n).await
    }

    async fn open_shared(&self, clients: usize) -> Result<SharedClients> {
        SharedClients::open(&self.raw_config, clients).await
    }

    async fn connect_pgdbm(config: &DatabaseConfig) -> pgdbm::Result<Arc<dyn PoolProvider>> {
        Ok(Arc::new(TokioPostgresPool::connect(config).await?))
    }

    /// `TokioPostgresPool::connect` opens one connection and the rest of `min_connections` in
    /// the background: wait until all `n` are open.
    async fn fill_pgdbm(pool: &dyn PoolProvider, n: usize) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(30);
        while (pool.stats().size as usize) < n {
            if Instant::now() > deadline {
                return Err(format!("pgdbm pool: only {:?} after 30 s", pool.stats()).into());
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Ok(())
    }
}

/// A plain connection whose connection task runs in the background.
async fn connect(config: &tokio_postgres::Config) -> Result<Client, tokio_postgres::Error> {
    let (client, connection) = config.connect(NoTls).await?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(client)
}

// --- raw tokio-postgres clients shared by the tasks (the pipelining ceiling) ---------------------

/// `clients` tokio-postgres clients used by all tasks at once, round-robin, each with the point
/// select prepared once: concurrent statements pipeline on each client's socket.
struct SharedClients {
    clients: Vec<(Client, Statement)>,
    next: std::sync::atomic::AtomicUsize,
}

impl SharedClients {
    async fn open(config: &tokio_postgres::Config, clients: usize) -> Result<Self> {
        let mut opened = Vec::with_capacity(clients);
        for _ in 0..clients.max(1) {
            let client = connect(config).await?;
            let stmt = client.prepare(RAW_SQL).await?;
            opened.push((client, stmt));
        }
        Ok(SharedClients {
            clients: opened,
            next: std::sync::atomic::AtomicUsize::new(0),
        })
    }
}

impl PointSelect for SharedClients {
    async fn select(&self, aid: i32) -> Result<i32> {
        let i = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % self.clients.len();
        let (client, stmt) = &self.clients[i];
        let row = client.query_one(stmt, &[&aid]).await?;
        Ok(row.get::<_, i32>(0))
    }
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

/// The raw baseline; its connections close when it is dropped (bb8 has no `close`).
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
