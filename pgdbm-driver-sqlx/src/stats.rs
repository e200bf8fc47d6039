//! What a pool counts: the state its `after_connect` hook shares with it, and [`PoolStats`] from
//! sqlx's figures and those counters.

use std::sync::atomic::{AtomicU64, Ordering};

use pgdbm::PoolStats;
use pgdbm::driver::PoolState;
use sqlx::postgres::PgPool;

/// State shared by the pool and its `after_connect` hook.
#[derive(Debug)]
pub(crate) struct Shared {
    /// Closed flag, waiting checkouts, last connect failure, target.
    pub(crate) state: PoolState,
    pub(crate) timed_out: AtomicU64,
    pub(crate) created: AtomicU64,
    /// The highest `connections_closed` reported, so the counter never goes back.
    closed_seen: AtomicU64,
    /// `false` for a wrapped pool, whose connects pgdbm does not see.
    counts_connects: bool,
    /// When a full pool last probed the server after a timeout (see `probe.rs`).
    pub(crate) last_probe: std::sync::Mutex<Option<std::time::Instant>>,
}

impl Shared {
    /// Nothing counted yet; `counts_connects` is `false` for a pool pgdbm did not open.
    pub(crate) fn new(state: PoolState, counts_connects: bool) -> Shared {
        Shared {
            state,
            timed_out: AtomicU64::new(0),
            created: AtomicU64::new(0),
            closed_seen: AtomicU64::new(0),
            counts_connects,
            last_probe: std::sync::Mutex::new(None),
        }
    }

    /// The statistics of `pool`, whose counters these are.
    pub(crate) fn stats(&self, pool: &PgPool) -> PoolStats {
        // sqlx reads size and idle count separately: a connection opened or closed in between
        // could make idle exceed size.
        let size = pool.size();
        let idle = u32::try_from(pool.num_idle()).unwrap_or(u32::MAX).min(size);
        let created = self.created.load(Ordering::Relaxed);
        // sqlx does not count closes. `size` includes connections being opened (not yet in
        // `created`), so `created - size` is a lower bound of the closes, which may dip while a
        // connection is opened: report the highest bound seen, so the counter is monotonic.
        let closed = if self.counts_connects {
            let bound = created.saturating_sub(u64::from(size));
            self.closed_seen
                .fetch_max(bound, Ordering::Relaxed)
                .max(bound)
        } else {
            0
        };
        PoolStats::new(size, idle, pool.options().get_max_connections())
            .with_waiting(self.state.waiting())
            .with_counters(self.timed_out.load(Ordering::Relaxed), created, closed)
            .with_server(self.state.server_info())
    }
}
