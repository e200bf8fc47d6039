//! What each bench supplies ([`Driver`], its raw [`PointSelect`]) and pgdbm's own client on the
//! bench's driver ([`PgdbmTarget`]).

use std::future::Future;
use std::sync::Arc;

use pgdbm::driver::PoolProvider;
use pgdbm::prelude::*;
use pgdbm::{DatabaseConfig, SslMode};

use super::{BENCH_DB, Result, with_sources};

/// The statement pgdbm runs (`{{tables.…}}` expands to `"public".pgbench_accounts`).
const PGDBM_SQL: &str = "SELECT abalance FROM {{tables.pgbench_accounts}} WHERE aid = $1";

/// What a bench supplies for its driver.
pub trait Driver: Sized {
    /// The raw baseline: the driver's own pool, without pgdbm.
    type Raw: PointSelect;

    /// The pipelining ceiling: `clients` raw clients shared by all tasks (round-robin, the
    /// statement prepared once per client). [`NoShared`] for a driver without one.
    type Shared: PointSelect;

    /// pgdbm on this driver honours `multiplexing`: the bench then also measures pgdbm
    /// multiplexed and [`Driver::open_shared`].
    const MULTIPLEXES: bool = false;

    /// Prepares the raw baseline's connect options for `bench_url` (the bench database, TLS
    /// off).
    fn new(bench_url: &str) -> Result<Self>;

    /// Opens the raw baseline with exactly `n` connections, all open on return.
    fn open_raw(&self, n: usize) -> impl Future<Output = Result<Self::Raw>>;

    /// Opens pgdbm's pool of this driver on `config`.
    fn connect_pgdbm(
        config: &DatabaseConfig,
    ) -> impl Future<Output = pgdbm::Result<Arc<dyn PoolProvider>>>;

    /// Opens the shared raw clients (see [`Driver::Shared`]), all open on return; only called
    /// when [`Driver::MULTIPLEXES`].
    fn open_shared(&self, clients: usize) -> impl Future<Output = Result<Self::Shared>> {
        let _ = clients;
        async { Err("this driver has no shared-client baseline".into()) }
    }

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

/// The [`Driver::Shared`] of a driver without a shared-client baseline (never opened).
#[derive(Debug)]
pub struct NoShared;

impl PointSelect for NoShared {
    async fn select(&self, _aid: i32) -> Result<i32> {
        Err("no shared-client baseline".into())
    }
}

/// A `Database` handle scoped to `public` on the driver's pgdbm pool.
pub(super) struct PgdbmTarget {
    db: Database,
    pool: Arc<dyn PoolProvider>,
}

impl PgdbmTarget {
    /// The pool of `D` on `bench_url` with min = max = `n`, all connections open.
    pub(super) async fn open<D: Driver>(bench_url: &str, n: usize) -> Result<Self> {
        let config = DatabaseConfig::builder()
            .url(bench_url)
            // Plain text, like the raw client and pgbench.
            .ssl_mode(SslMode::Disable);
        Self::open_config::<D>(config, n).await
    }

    /// As [`PgdbmTarget::open`], with `multiplexing` on (`multiplexed_connections` at its
    /// default, the number of CPUs): the shared connections open in the background, so this
    /// waits until a statement runs on one (the pool's exclusive connections all checked out).
    pub(super) async fn open_multiplexed<D: Driver>(bench_url: &str, n: usize) -> Result<Self> {
        let config = DatabaseConfig::builder()
            .url(bench_url)
            .ssl_mode(SslMode::Disable)
            .multiplexing(true);
        let this = Self::open_config::<D>(config, n).await?;
        let mut held = Vec::with_capacity(n);
        for _ in 0..n {
            held.push(this.pool.acquire().await?);
        }
        let bounded = this.db.with_timeout(std::time::Duration::from_millis(50));
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while bounded.execute("SELECT 1", &[]).await.is_err() {
            if std::time::Instant::now() > deadline {
                return Err("multiplexed: no shared connection after 30 s".into());
            }
        }
        drop(held);
        Ok(this)
    }

    /// The pool of `D` on `config` with min = max = `n`, all connections open.
    pub(super) async fn open_config<D: Driver>(
        config: pgdbm::DatabaseConfigBuilder,
        n: usize,
    ) -> Result<Self> {
        let config = config
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
