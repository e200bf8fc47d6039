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

    /// Prepares the raw baseline's connect options for `bench_url` (the bench database, TLS
    /// off).
    fn new(bench_url: &str) -> Result<Self>;

    /// Opens the raw baseline with exactly `n` connections, all open on return.
    fn open_raw(&self, n: usize) -> impl Future<Output = Result<Self::Raw>>;

    /// Opens pgdbm's pool of this driver on `config`.
    fn connect_pgdbm(
        config: &DatabaseConfig,
    ) -> impl Future<Output = pgdbm::Result<Arc<dyn PoolProvider>>>;

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
