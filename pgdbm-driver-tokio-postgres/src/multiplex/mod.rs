//! Multiplexing: autocommit statements on a small set of shared connections, pipelined there.
//!
//! tokio-postgres pipelines the concurrent requests of one `Client` on its socket by itself, so
//! a shared connection is a [`PgConn`] (with its own statement cache) used by many statements at
//! once. Each statement goes to the slot with the fewest statements in flight; past
//! [`MAX_IN_FLIGHT`] on every slot, or while no shared connection is open, the caller runs it on
//! an exclusive connection of the pool as usual.
//!
//! - **Dropped statements.** No cancel request is sent for a statement whose future is dropped:
//!   on a pipelined connection it would cancel whatever the server runs when it arrives, maybe a
//!   neighbour's statement. The statement runs to its end and tokio-postgres discards its
//!   result; until the server has answered (a probe round trip sent after it, see
//!   [`Lease`]'s drop) it still counts as in flight, and new statements avoid its connection
//!   (they run on another shared connection, or exclusive when every shared one has an
//!   abandoned statement). A `with_timeout` or `command_timeout` therefore returns `Error::Timeout` to the caller
//!   at once while the statement itself ends when the server's `statement_timeout` (or the
//!   statement) says so.
//! - **Lost connections.** A shared connection whose socket closed fails its in-flight
//!   statements (tokio-postgres answers each with its closed-connection error, mapped to
//!   `Error::ConnectionLost`); the next statement routed to its slot takes it out and opens a
//!   replacement in the background (one at a time per slot, at most one attempt a second),
//!   running on an exclusive connection meanwhile.
//! - **Recycling.** A shared connection past `max_queries` statements or older than
//!   `max_lifetime` is replaced the same way; it closes when its last statement is done.

mod keyword;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pgdbm::DatabaseConfig;

use crate::conn::PgConn;
use crate::manager::{Manager, Shared};

pub(crate) use keyword::may_share;

/// Statements in flight on one shared connection beyond which a statement runs exclusive.
pub(crate) const MAX_IN_FLIGHT: usize = 32;

/// How long a slot waits after a failed connect before the next attempt.
const REOPEN_BACKOFF: Duration = Duration::from_secs(1);

/// The shared connections of a pool.
pub(crate) struct Multiplexer {
    slots: Box<[Arc<Slot>]>,
    /// Opens shared connections with the pool's manager (`dedicated_connection`: not pooled).
    pool: bb8::Pool<Manager>,
    shared: Arc<Shared>,
    max_lifetime: Option<Duration>,
}

/// One shared connection's place: the connection (none while it opens), the statements in
/// flight on it, and whether a replacement is being opened.
#[derive(Default)]
struct Slot {
    conn: Mutex<Option<Arc<SharedConn>>>,
    in_flight: AtomicUsize,
    /// Abandoned statements still running here (their futures were dropped): while there is
    /// one, new statements avoid this connection.
    abandoned: AtomicUsize,
    /// A connection is in `conn` (read without the lock, for routing).
    ready: AtomicBool,
    opening: AtomicBool,
}

/// A shared connection.
struct SharedConn {
    conn: PgConn,
    opened: Instant,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl std::fmt::Debug for Multiplexer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let in_flight: Vec<usize> = self
            .slots
            .iter()
            .map(|s| s.in_flight.load(Ordering::Relaxed))
            .collect();
        f.debug_struct("Multiplexer")
            .field("in_flight", &in_flight)
            .finish()
    }
}

impl Multiplexer {
    /// The shared connections of a pool opened with `config`, or `None` when multiplexing is
    /// off or a transaction pooler is in front (the two modes are not combined). The
    /// connections open in the background; statements run exclusive until they are there.
    pub(crate) fn new(
        config: &DatabaseConfig,
        pool: &bb8::Pool<Manager>,
        shared: &Arc<Shared>,
    ) -> Option<Self> {
        if !config.multiplexing() || config.pooler().is_transaction() {
            return None;
        }
        let slots = (0..config.multiplexed_connections())
            .map(|_| Arc::new(Slot::default()))
            .collect();
        let this = Multiplexer {
            slots,
            pool: pool.clone(),
            shared: Arc::clone(shared),
            max_lifetime: config.max_lifetime(),
        };
        for slot in this.slots.iter() {
            this.reopen(slot);
        }
        Some(this)
    }

    /// A shared connection for `sql`, or `None` when it must run exclusive: its leading keyword
    /// is not one of the shared ones, or no open shared connection is free of abandoned
    /// statements and under [`MAX_IN_FLIGHT`].
    pub(crate) fn lease(&self, sql: &str) -> Option<Lease<'_>> {
        if !may_share(sql) {
            return None;
        }
        let slot = self
            .slots
            .iter()
            .filter(|s| s.ready.load(Ordering::Relaxed) && s.abandoned.load(Ordering::Relaxed) == 0)
            .min_by_key(|s| s.in_flight.load(Ordering::Relaxed))?;
        if slot.in_flight.load(Ordering::Relaxed) >= MAX_IN_FLIGHT {
            return None;
        }
        let conn = {
            let mut held = lock(&slot.conn);
            match &*held {
                Some(conn) if !self.worn_out(conn) => Arc::clone(conn),
                Some(_) => {
                    // Lost, or due for recycling: its statements keep their `Arc`.
                    *held = None;
                    slot.ready.store(false, Ordering::Relaxed);
                    drop(held);
                    self.reopen(slot);
                    return None;
                }
                None => return None,
            }
        };
        slot.in_flight.fetch_add(1, Ordering::Relaxed);
        conn.conn.count_statement();
        Some(Lease {
            slot,
            conn: Some(conn),
        })
    }

    fn worn_out(&self, conn: &SharedConn) -> bool {
        conn.conn.is_broken()
            || self
                .max_lifetime
                .is_some_and(|max| conn.opened.elapsed() >= max)
    }

    /// Opens a connection for `slot` in the background, unless one is being opened already or
    /// the pool is closed.
    fn reopen(&self, slot: &Arc<Slot>) {
        if self.shared.state.is_closed() || slot.opening.swap(true, Ordering::AcqRel) {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            slot.opening.store(false, Ordering::Release);
            return;
        };
        let slot = Arc::clone(slot);
        let pool = self.pool.clone();
        let shared = Arc::clone(&self.shared);
        runtime.spawn(async move {
            match pool.dedicated_connection().await {
                Ok(conn) if !shared.state.is_closed() => {
                    *lock(&slot.conn) = Some(Arc::new(SharedConn {
                        conn,
                        opened: Instant::now(),
                    }));
                    slot.ready.store(true, Ordering::Relaxed);
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::debug!(error = %e, "pgdbm: opening a shared connection failed");
                    tokio::time::sleep(REOPEN_BACKOFF).await;
                }
            }
            slot.opening.store(false, Ordering::Release);
        });
    }

    /// Closes the shared connections (each as soon as its last statement is done).
    pub(crate) fn close(&self) {
        for slot in self.slots.iter() {
            slot.ready.store(false, Ordering::Relaxed);
            lock(&slot.conn).take();
        }
    }
}

/// A statement's hold on a shared connection. [`finish`](Lease::finish) ends it; dropped
/// unfinished (the statement's future was dropped), it sends no cancel request — that could hit
/// a neighbour's statement — but a probe round trip (an empty query) on a background task:
/// the server answers in order, so when the probe is answered the abandoned statement is over,
/// and only then does it stop counting as in flight.
pub(crate) struct Lease<'m> {
    slot: &'m Arc<Slot>,
    conn: Option<Arc<SharedConn>>,
}

impl Lease<'_> {
    pub(crate) fn conn(&self) -> &PgConn {
        &self
            .conn
            .as_ref()
            .expect("taken only by finish and drop")
            .conn
    }

    /// The statement finished (with `out`).
    pub(crate) fn finish<T>(mut self, out: T) -> T {
        self.conn = None;
        self.slot.in_flight.fetch_sub(1, Ordering::Relaxed);
        out
    }
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        let Some(conn) = self.conn.take() else {
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            self.slot.in_flight.fetch_sub(1, Ordering::Relaxed);
            return;
        };
        let slot = Arc::clone(self.slot);
        slot.abandoned.fetch_add(1, Ordering::Relaxed);
        runtime.spawn(async move {
            // An error here means the connection is gone: its slot replaces it.
            let _ = conn.conn.client().batch_execute("").await;
            slot.abandoned.fetch_sub(1, Ordering::Relaxed);
            slot.in_flight.fetch_sub(1, Ordering::Relaxed);
        });
    }
}
