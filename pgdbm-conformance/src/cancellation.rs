//! Cancellation safety: a future dropped at any of its awaits leaves no session `idle in
//! transaction`, no advisory lock held, no busy connection in the pool, and loses nothing that
//! was acknowledged.
//!
//! Each check drives an operation by hand: it polls the future a chosen number of times (giving
//! the server a moment between polls), drops it, and then looks at the server from another
//! session — `pg_stat_activity`, `pg_locks`, and whether an autocommit write acknowledged
//! afterwards on the same pool is visible to everyone. The number of polls goes up until the
//! operation finishes by itself, so every await the operation has is a drop point once.

use std::future::{Future, poll_fn};
use std::pin::pin;
use std::sync::atomic::{AtomicU32, Ordering};
use std::task::Poll;
use std::time::Duration;

use pgdbm::prelude::*;
use pgdbm::{Database, Error, Result, Transaction, Value};

use super::Ctx;

/// Most polls tried before an operation must have finished by itself.
pub(crate) const MAX_POLLS: usize = 40;

/// Polls `fut` up to `polls` times, pausing `pause` after each poll that did not finish it, then
/// drops it. `Some(output)` when it finished.
pub(crate) async fn poll_then_drop<F: Future>(
    fut: F,
    polls: usize,
    pause: Duration,
) -> Option<F::Output> {
    let mut fut = pin!(fut);
    for _ in 0..polls {
        if let Poll::Ready(out) = poll_fn(|cx| Poll::Ready(fut.as_mut().poll(cx))).await {
            return Some(out);
        }
        tokio::time::sleep(pause).await;
    }
    None
}

/// A one-connection pool whose sessions carry an application name of their own, so the checks
/// can find them in `pg_stat_activity`.
pub(crate) struct Probe {
    /// A handle on the pool, in the check's schema.
    pub(crate) db: Database,
    /// The pool's `application_name`.
    pub(crate) app: String,
}

static PROBES: AtomicU32 = AtomicU32::new(0);

impl Probe {
    /// A pool of `max` connections (1 for the sweeps: a leaked session is then the next user's).
    pub(crate) async fn open(ctx: &Ctx, max: u32) -> Result<Probe> {
        Self::open_with(ctx, max, |b| b).await
    }

    /// As [`Probe::open`], with `change` applied to the pool's configuration.
    pub(crate) async fn open_with(
        ctx: &Ctx,
        max: u32,
        change: impl FnOnce(pgdbm::DatabaseConfigBuilder) -> pgdbm::DatabaseConfigBuilder,
    ) -> Result<Probe> {
        let app = format!(
            "pgdbm_cancel_{}_{}",
            std::process::id(),
            PROBES.fetch_add(1, Ordering::Relaxed)
        );
        let config = ctx.config_with(|b| {
            change(
                b.max_connections(max)
                    .min_connections(1)
                    .application_name(&app)
                    .acquire_timeout(Duration::from_secs(10)),
            )
        })?;
        let pool = ctx.connect(config).await?;
        Ok(Probe {
            db: Database::owning(pool, Some(&ctx.schema))?,
            app,
        })
    }

    /// Sessions of this pool that sit inside a transaction, as the server sees them.
    pub(crate) async fn in_transaction(&self, ctx: &Ctx) -> Result<i64> {
        ctx.pool
            .fetch_value(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 \
                 AND state LIKE 'idle in transaction%'",
                params![self.app.as_str()],
            )
            .await
    }

    /// Advisory locks held by sessions of this pool.
    async fn advisory_locks(&self, ctx: &Ctx) -> Result<i64> {
        ctx.pool
            .fetch_value(
                "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid \
                 WHERE a.application_name = $1 AND l.locktype = 'advisory'",
                params![self.app.as_str()],
            )
            .await
    }

    /// After an abandoned operation: within a few seconds no session of the pool is inside a
    /// transaction or holds an advisory lock and no connection is checked out; then an
    /// autocommit insert of `id` through the pool is acknowledged and seen from another
    /// session. `what` names the operation and drop point in the failure message.
    pub(crate) async fn assert_clean(&self, ctx: &Ctx, what: &str, id: i64) -> Result<()> {
        let mut last = (0, 0, 0);
        for _ in 0..100 {
            last = (
                self.in_transaction(ctx).await?,
                self.advisory_locks(ctx).await?,
                i64::from(self.db.pool().stats().in_use),
            );
            if last == (0, 0, 0) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(30)).await;
        }
        assert_eq!(
            last,
            (0, 0, 0),
            "{what}: (sessions idle in transaction, advisory locks, connections in use) \
             stay non-zero"
        );
        let n = self
            .db
            .execute("INSERT INTO {{tables.acked}} (id) VALUES ($1)", params![id])
            .await?;
        assert_eq!(n, 1, "{what}");
        assert!(
            visible(ctx, id).await?,
            "{what}: an acknowledged autocommit insert is not visible to other sessions \
             (its connection was left inside a transaction)"
        );
        assert_eq!(self.in_transaction(ctx).await?, 0, "{what}");
        Ok(())
    }
}

/// Creates the tables the sweeps write to: `acked` (autocommit inserts) and `t` (the
/// operations' own rows).
pub(crate) async fn cancellation_tables(ctx: &Ctx) -> Result<()> {
    ctx.db
        .batch_execute(
            "CREATE TABLE {{tables.acked}} (id bigint PRIMARY KEY); \
             CREATE TABLE {{tables.t}} (id bigint PRIMARY KEY)",
        )
        .await
}

/// `true` when row `id` of `acked` is visible from the context's own pool.
async fn visible(ctx: &Ctx, id: i64) -> Result<bool> {
    ctx.db
        .fetch_value(
            "SELECT EXISTS (SELECT 1 FROM {{tables.acked}} WHERE id = $1)",
            params![id],
        )
        .await
}

/// `true` when row `id` of `t` is visible from the context's own pool.
pub(crate) async fn in_t(ctx: &Ctx, id: i64) -> Result<bool> {
    ctx.db
        .fetch_value(
            "SELECT EXISTS (SELECT 1 FROM {{tables.t}} WHERE id = $1)",
            params![id],
        )
        .await
}

/// Drops `make()`'s future after 1, 2, 3… polls until it finishes by itself, checking after
/// each drop that the pool is clean and loses nothing. `after(finished)` runs after each round
/// (with whether the operation finished) for the operation's own assertions.
pub(crate) async fn sweep<F, Fut, T>(
    ctx: &Ctx,
    what: &str,
    probe: &Probe,
    ids: &mut i64,
    mut make: F,
) -> Result<()>
where
    F: FnMut(i64) -> Fut,
    Fut: Future<Output = Result<T>>,
{
    for polls in 1..=MAX_POLLS {
        *ids += 1;
        let id = *ids;
        let finished = poll_then_drop(make(id), polls, Duration::from_millis(2)).await;
        if let Some(Err(e)) = &finished {
            panic!("{what}: failed when not cancelled: {e}");
        }
        *ids += 1;
        probe
            .assert_clean(ctx, &format!("{what}, dropped after {polls} poll(s)"), *ids)
            .await?;
        if finished.is_some() {
            return Ok(());
        }
    }
    panic!("{what}: not finished after {MAX_POLLS} polls");
}

/// `Database::begin` dropped at each of its awaits (and the transaction it returns, dropped
/// unfinished) never leaves the pooled connection inside `BEGIN`: the next autocommit insert on
/// the one-connection pool is visible to everyone.
///
/// # Errors
///
/// Any unexpected query error.
pub async fn cancelled_begin_leaks_nothing(ctx: &Ctx) -> Result<()> {
    cancellation_tables(ctx).await?;
    let probe = Probe::open(ctx, 1).await?;
    let mut ids = 0;
    let db = probe.db.clone();
    sweep(ctx, "begin", &probe, &mut ids, |_| {
        let db = db.clone();
        async move { db.begin().await.map(drop) }
    })
    .await?;
    sweep(ctx, "transaction closure", &probe, &mut ids, |id| {
        let db = db.clone();
        async move {
            db.transaction(|tx| async move {
                tx.execute("INSERT INTO {{tables.t}} (id) VALUES ($1)", params![id])
                    .await
            })
            .await
        }
    })
    .await?;
    // The outside suite's case: `begin` cut short while the connection still finishes a
    // statement that was itself cancelled.
    for round in 0..6 {
        let slow = probe.db.execute("SELECT pg_sleep(0.1)", &[]);
        let _ = tokio::time::timeout(Duration::from_millis(20), slow).await;
        let _ = tokio::time::timeout(Duration::from_millis(20), probe.db.begin()).await;
        ids += 1;
        probe
            .assert_clean(
                ctx,
                &format!("begin after a cancelled sleep, round {round}"),
                ids,
            )
            .await?;
    }
    probe.db.close().await;
    Ok(())
}

/// `commit`, `rollback` and the savepoint forms dropped at each of their awaits: no session is
/// left inside a transaction, and a commit that finished made its row visible.
///
/// # Errors
///
/// Any unexpected query error.
pub async fn cancelled_finish_leaks_nothing(ctx: &Ctx) -> Result<()> {
    cancellation_tables(ctx).await?;
    let probe = Probe::open(ctx, 1).await?;
    let mut ids = 1_000;
    let db = probe.db.clone();
    for commit in [true, false] {
        let what = if commit { "commit" } else { "rollback" };
        let committed = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        sweep(ctx, what, &probe, &mut ids, |id| {
            let db = db.clone();
            let committed = committed.clone();
            async move {
                let tx = db.begin().await?;
                tx.execute("INSERT INTO {{tables.t}} (id) VALUES ($1)", params![id])
                    .await?;
                // Cut anywhere: in `BEGIN`, the insert or the finishing call (the loop below cuts
                // only the finishing call).
                if commit {
                    tx.commit().await?;
                } else {
                    tx.rollback().await?;
                }
                committed.lock().unwrap_or_else(|p| p.into_inner()).push(id);
                Ok::<_, Error>(())
            }
        })
        .await?;
        let finished: Vec<i64> = committed.lock().unwrap_or_else(|p| p.into_inner()).clone();
        for id in finished {
            assert_eq!(in_t(ctx, id).await?, commit, "{what} of row {id}");
        }
    }
    // Cut only the finishing future of a transaction that is otherwise complete.
    for commit in [true, false] {
        for polls in 1..=MAX_POLLS {
            ids += 1;
            let id = ids;
            let tx = db.begin().await?;
            tx.execute("INSERT INTO {{tables.t}} (id) VALUES ($1)", params![id])
                .await?;
            let finished = if commit {
                poll_then_drop(tx.commit(), polls, Duration::from_millis(2)).await
            } else {
                poll_then_drop(tx.rollback(), polls, Duration::from_millis(2)).await
            };
            ids += 1;
            let what = format!("commit={commit} cut after {polls} poll(s)");
            probe.assert_clean(ctx, &what, ids).await?;
            if let Some(result) = finished {
                result?;
                assert_eq!(in_t(ctx, id).await?, commit, "{what}");
                break;
            }
        }
    }
    probe.db.close().await;
    Ok(())
}

/// Savepoints and statements inside a transaction dropped at each await: the transaction can no
/// longer commit (its outcome is unknown), and nothing is left open.
///
/// # Errors
///
/// Any unexpected query error.
pub async fn cancelled_statement_in_transaction_aborts_it(ctx: &Ctx) -> Result<()> {
    cancellation_tables(ctx).await?;
    let probe = Probe::open(ctx, 1).await?;
    let mut ids = 2_000;
    for savepoint in [false, true] {
        for polls in 1..=MAX_POLLS {
            ids += 1;
            let id = ids;
            let tx = probe.db.begin().await?;
            let level: Transaction = if savepoint {
                tx.begin().await?
            } else {
                tx.clone()
            };
            let params = params![id];
            let insert = level.execute("INSERT INTO {{tables.t}} (id) VALUES ($1)", params);
            let finished = poll_then_drop(insert, polls, Duration::from_millis(2)).await;
            let what = format!("savepoint={savepoint}, insert cut after {polls} poll(s)");
            let outcome = if savepoint {
                level.commit().await.and(tx.commit().await)
            } else {
                tx.commit().await
            };
            match &finished {
                Some(result) => {
                    result
                        .as_ref()
                        .map_err(|e| Error::Transaction(e.to_string()))?;
                    outcome?;
                    assert!(in_t(ctx, id).await?, "{what}: committed row missing");
                }
                None => {
                    // A driver that closes the connection of an abandoned statement reports
                    // the lost connection instead.
                    let closed = !ctx.caps.keeps_connection_after_cancel
                        && matches!(outcome, Err(Error::ConnectionLost { .. }));
                    assert!(
                        closed
                            || matches!(
                                outcome,
                                Err(Error::Transaction(_)) | Err(Error::Database(_))
                            ),
                        "{what}: a transaction with a cancelled statement committed: {outcome:?}"
                    );
                    assert!(
                        !in_t(ctx, id).await?,
                        "{what}: half a transaction is visible"
                    );
                }
            }
            ids += 1;
            probe.assert_clean(ctx, &what, ids).await?;
            if finished.is_some() {
                break;
            }
        }
    }
    probe.db.close().await;
    Ok(())
}

/// Autocommit statements and COPY dropped at each await: the connection is not handed to anyone
/// while its statement may still run, and every acknowledged insert is visible.
///
/// # Errors
///
/// Any unexpected query error.
pub async fn cancelled_statement_is_not_reused_busy(ctx: &Ctx) -> Result<()> {
    cancellation_tables(ctx).await?;
    let probe = Probe::open(ctx, 1).await?;
    let mut ids = 3_000;
    let db = probe.db.clone();
    sweep(ctx, "autocommit insert", &probe, &mut ids, |id| {
        let db = db.clone();
        async move {
            db.execute("INSERT INTO {{tables.t}} (id) VALUES ($1)", params![id])
                .await
        }
    })
    .await?;
    sweep(ctx, "copy_in", &probe, &mut ids, |id| {
        let db = db.clone();
        async move { db.copy_in("t", &["id"], &[vec![Value::Int8(id)]]).await }
    })
    .await?;
    // A long statement cut short: the next statement on the one-connection pool does not wait
    // behind it on the same connection.
    let slow = probe.db.execute("SELECT pg_sleep(2)", &[]);
    assert!(
        tokio::time::timeout(Duration::from_millis(100), slow)
            .await
            .is_err()
    );
    let start = std::time::Instant::now();
    let pid_free: i32 = probe.db.fetch_value("SELECT pg_backend_pid()", &[]).await?;
    assert!(pid_free > 0);
    assert!(
        start.elapsed() < Duration::from_millis(1_500),
        "the next statement waited {:?} behind the cancelled one",
        start.elapsed()
    );
    ids += 1;
    probe
        .assert_clean(ctx, "after a cancelled pg_sleep", ids)
        .await?;
    probe.db.close().await;
    Ok(())
}
