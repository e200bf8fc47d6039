//! Taking pgdbm's migration lock without holding a snapshot while waiting for it.
//!
//! A session blocked in `pg_advisory_lock` runs a statement, and a running statement holds a
//! snapshot. `CREATE INDEX CONCURRENTLY` in the run that holds the lock waits for every older
//! snapshot to go away, while the blocked session waits for that run's lock: a deadlock
//! (`40P01`), and when the index build is the victim an INVALID index is left behind. So a run
//! polls `pg_try_advisory_lock` (one short autocommit statement each time) with a growing,
//! jittered pause between polls, during which its session is idle and holds no snapshot.

use std::hash::{BuildHasher, Hasher};
use std::time::{Duration, Instant};

use crate::driver::{DiscardGuard, PooledConnection};
use crate::error::{DbError, Error, Result};
use crate::executor::{Executor, ExecutorExt};
use crate::params;

/// pgdbm for Python's lock key, taken without waiting.
const TRY_LOCK_SQL: &str = "SELECT pg_try_advisory_lock(hashtext('pgdbm_migration_' || $1))";
const UNLOCK_SQL: &str = "SELECT pg_advisory_unlock(hashtext('pgdbm_migration_' || $1))";
/// The session's `lock_timeout` and `statement_timeout`, in milliseconds (0 = off).
const TIMEOUTS_SQL: &str = "SELECT \
     (SELECT setting::bigint FROM pg_settings WHERE name = 'lock_timeout'), \
     (SELECT setting::bigint FROM pg_settings WHERE name = 'statement_timeout')";
/// What the wait for the lock used to be (a single blocking statement); errors name it.
const BLOCKING_LOCK_SQL: &str = "SELECT pg_advisory_lock(hashtext('pgdbm_migration_' || $1))";

/// The first pause between two polls; it doubles up to [`MAX_PAUSE`].
const FIRST_PAUSE: Duration = Duration::from_millis(10);
const MAX_PAUSE: Duration = Duration::from_millis(500);

/// How long a run may wait for the lock, from the session's timeouts (milliseconds, 0 = off).
///
/// This keeps the bound of the single `pg_advisory_lock` statement runs used to wait in: a wait
/// ended by `lock_timeout` was retried (so `lock_timeout` alone never ended it), a wait ended by
/// `statement_timeout` (shorter than `lock_timeout`, or without one) failed with `57014`.
pub(super) fn wait_bound(lock_timeout_ms: i64, statement_timeout_ms: i64) -> Option<Duration> {
    let statement = u64::try_from(statement_timeout_ms)
        .ok()
        .filter(|&ms| ms > 0)?;
    match u64::try_from(lock_timeout_ms).ok().filter(|&ms| ms > 0) {
        Some(lock) if lock < statement => None,
        _ => Some(Duration::from_millis(statement)),
    }
}

/// `pause` shortened by up to a half, at random, so that waiters started together spread out.
fn jittered(pause: Duration) -> Duration {
    let random = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    let half = pause / 2;
    let nanos = u64::try_from(half.as_nanos()).unwrap_or(u64::MAX).max(1);
    pause - Duration::from_nanos(random % nanos)
}

/// A dedicated connection holding the advisory lock. Unless it was unlocked, dropping it
/// (an error, a panic, a cancelled future — also while still waiting for the lock) closes the
/// connection instead of pooling it, which ends the session and so releases the lock.
pub(super) struct LockedConnection(DiscardGuard);

impl LockedConnection {
    /// Takes module `module`'s migration lock on `conn`, waiting for it as long as the
    /// session's timeouts allow (see [`wait_bound`]).
    ///
    /// # Errors
    ///
    /// `57014` (query canceled) when the bound ends first; server and connection errors.
    pub(super) async fn acquire(conn: PooledConnection, module: &str) -> Result<Self> {
        // The guard comes first, so that a cancellation at any await below discards the
        // connection: a poll may have taken the lock just before it.
        let locked = LockedConnection(DiscardGuard::new(conn));
        let session = locked.conn();
        let timeouts = session.fetch_one(TIMEOUTS_SQL, &[]).await?;
        let bound = wait_bound(timeouts.get(0)?, timeouts.get(1)?);
        let started = Instant::now();
        let mut pause = FIRST_PAUSE;
        loop {
            if session
                .fetch_value::<bool>(TRY_LOCK_SQL, params![module])
                .await?
            {
                return Ok(locked);
            }
            let waited = started.elapsed();
            let mut next = jittered(pause);
            if let Some(bound) = bound {
                if waited >= bound {
                    return Err(lock_wait_timeout(module, bound));
                }
                // The last poll happens when the bound ends.
                next = next.min(bound - waited);
            }
            tracing::debug!(
                module,
                waited_ms = waited.as_millis() as u64,
                "waiting for the migration lock"
            );
            tokio::time::sleep(next).await;
            pause = (pause * 2).min(MAX_PAUSE);
        }
    }

    pub(super) fn conn(&self) -> &dyn Executor {
        &**self.0.conn()
    }

    pub(super) async fn unlock(mut self, module: &str) {
        match self
            .0
            .conn()
            .fetch_optional(UNLOCK_SQL, params![module])
            .await
        {
            Ok(Some(row)) if row.get::<bool>(0).unwrap_or(false) => drop(self.0.keep()),
            other => {
                tracing::warn!(module, result = ?other.map(|_| ()), "advisory unlock failed; closing the connection");
            }
        }
    }
}

/// The error a blocking `pg_advisory_lock` got from the server when `statement_timeout` ended
/// its wait: `57014`, so callers see the same typed error as before.
fn lock_wait_timeout(module: &str, bound: Duration) -> Error {
    let message = format!(
        "canceling statement due to statement timeout: the migration lock of module {module} \
         was not free within the session's statement_timeout ({} ms)",
        bound.as_millis()
    );
    Error::from(DbError::new("57014", message)).with_sql(BLOCKING_LOCK_SQL)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wait_is_bounded_as_a_blocking_lock_statement_was() {
        // Defaults: lock_timeout 5 s ends each blocking wait first, and was retried.
        assert_eq!(wait_bound(5_000, 60_000), None);
        assert_eq!(wait_bound(0, 0), None);
        assert_eq!(wait_bound(100, 0), None);
        // statement_timeout ended the wait with 57014.
        assert_eq!(wait_bound(0, 300), Some(Duration::from_millis(300)));
        assert_eq!(wait_bound(30_000, 300), Some(Duration::from_millis(300)));
        assert_eq!(wait_bound(300, 300), Some(Duration::from_millis(300)));
        assert_eq!(wait_bound(-1, -1), None);
    }

    #[test]
    fn jitter_stays_within_half_a_pause() {
        for _ in 0..1000 {
            let p = jittered(Duration::from_millis(100));
            assert!(
                p > Duration::from_millis(50) && p <= Duration::from_millis(100),
                "{p:?}"
            );
        }
        assert!(jittered(Duration::ZERO) == Duration::ZERO);
    }

    #[test]
    fn the_timeout_is_a_typed_query_canceled() {
        let e = lock_wait_timeout("users", Duration::from_millis(250));
        assert!(e.is_query_canceled());
        assert_eq!(e.code(), Some("57014"));
        assert!(
            e.to_string().contains("users") && e.to_string().contains("250 ms"),
            "{e}"
        );
    }
}
