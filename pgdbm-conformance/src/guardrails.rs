//! Guardrails: server-side timeouts, pools under stress (killed connections, an unreachable
//! database, lifetimes, stats under load, a server restart) and secrets kept out of logs and
//! errors.
//!
//! Most checks run on the shared test server through the `conformance_tests!` macro. Two need a
//! server of their own: [`server_restart_during_load`] (stops and starts the server through a
//! [`ServerControl`]) and [`wrong_password_stays_secret`] (needs password authentication).
//! Driver crates run them on a `pgdbm_testing::DedicatedServer` through
//! [`dedicated`](crate::dedicated).

use std::collections::HashSet;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use tracing::field::{Field, Visit};
use tracing::instrument::WithSubscriber;
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

use pgdbm::connect::VALIDATE_AFTER_IDLE;
use pgdbm::monitor::MonitorOptions;
use pgdbm::prelude::*;
use pgdbm::{DatabaseConfig, Driver, Error, ErrorKind, PoolStats, Result, RetryPolicy, SharedPool};

use super::Ctx;

/// Waits until `cond` holds, checking every `every`, for at most `limit`; `false` on timeout.
async fn wait_until<F, Fut>(limit: Duration, every: Duration, mut cond: F) -> Result<bool>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<bool>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if cond().await? {
            return Ok(true);
        }
        if Instant::now() >= deadline {
            return Ok(false);
        }
        tokio::time::sleep(every).await;
    }
}

/// The backend pid of the connection a handle's next statement runs on.
async fn backend_pid(db: &Database) -> Result<i32> {
    db.fetch_value::<i32>("SELECT pg_backend_pid()", &[]).await
}

/// Ends every session with `application_name = app` (waiting up to 5 s for each to exit) and
/// returns their pids. Runs on the context's own pool, whose application name differs.
async fn terminate_app(ctx: &Ctx, app: &str) -> Result<Vec<i32>> {
    let rows = ctx
        .pool
        .fetch_all(
            "SELECT pid, pg_terminate_backend(pid, 5000) AS ended FROM pg_stat_activity \
             WHERE application_name = $1 AND pid <> pg_backend_pid()",
            params![app],
        )
        .await?;
    let mut pids = Vec::new();
    for row in rows {
        let ended: bool = row.get("ended")?;
        assert!(ended, "a backend did not exit within 5 s");
        pids.push(row.get::<i32>("pid")?);
    }
    Ok(pids)
}

/// The pids of the sessions with `application_name = app`.
async fn app_pids(ctx: &Ctx, app: &str) -> Result<HashSet<i32>> {
    let rows = ctx
        .pool
        .fetch_all(
            "SELECT pid FROM pg_stat_activity WHERE application_name = $1",
            params![app],
        )
        .await?;
    rows.iter().map(|r| r.get::<i32>("pid")).collect()
}

/// An error's `Display` and `Debug` texts and those of every cause in its chain.
fn error_texts(err: &Error) -> String {
    let mut text = format!("{err}\n{err:?}");
    let mut source = std::error::Error::source(err);
    while let Some(s) = source {
        text.push_str(&format!("\n{s}\n{s:?}"));
        source = s.source();
    }
    text
}

// ---------------------------------------------------------------------------------------------
// Server-side timeouts
// ---------------------------------------------------------------------------------------------

/// A statement running past `statement_timeout` is canceled by the server with a typed error
/// (`57014`, [`Error::is_query_canceled`]), not a connection error; the same pooled connection
/// (the pool has one) runs the next statement, also after a canceled statement in a
/// transaction that is then rolled back.
///
/// # Errors
///
/// Any unexpected query error.
pub async fn statement_timeout_cancels(ctx: &Ctx) -> Result<()> {
    let config = ctx.config_with(|b| {
        b.statement_timeout(Duration::from_millis(200))
            .max_connections(1)
            .min_connections(1)
    })?;
    let db = Database::owning(ctx.connect(config).await?, None)?;
    let pid = backend_pid(&db).await?;

    let start = Instant::now();
    let err = crate::assert_err!(
        db.fetch_optional("SELECT pg_sleep(5)", &[]).await,
        Error::Database(_)
    );
    let waited = start.elapsed();
    assert!(err.is_query_canceled(), "{err} ({err:?})");
    assert_eq!(err.kind(), Some(ErrorKind::QueryCanceled));
    assert_eq!(err.code(), Some("57014"));
    assert!(!err.is_connection_error(), "{err}");
    assert!(
        waited < Duration::from_secs(4),
        "the statement was not canceled by the server: {waited:?}"
    );
    assert_eq!(
        backend_pid(&db).await?,
        pid,
        "the connection was replaced instead of reused"
    );

    let tx = db.begin().await?;
    let err = tx
        .execute("SELECT pg_sleep(5)", &[])
        .await
        .expect_err("canceled");
    assert!(err.is_query_canceled(), "{err}");
    tx.rollback().await?;
    assert_eq!(backend_pid(&db).await?, pid);
    assert_eq!(db.fetch_value::<i32>("SELECT 41 + 1", &[]).await?, 42);
    db.close().await;
    Ok(())
}

/// A transaction left idle past `idle_in_transaction_session_timeout` is ended by the server:
/// its next statement fails with a typed connection error ([`Error::is_connection_error`]:
/// [`ErrorKind::IdleInTransactionTimeout`] when the driver reads the server's reason,
/// [`Error::ConnectionLost`] otherwise), rolling back does not hang, and the pool recovers —
/// the next statements succeed on other connections, the broken one is never handed out again.
///
/// # Errors
///
/// Any unexpected query error.
pub async fn idle_in_transaction_timeout_recovers(ctx: &Ctx) -> Result<()> {
    let config = ctx.config_with(|b| {
        b.idle_in_transaction_session_timeout(Duration::from_millis(300))
            .max_connections(1)
            .min_connections(1)
            .acquire_timeout(Duration::from_secs(5))
    })?;
    let db = Database::owning(ctx.connect(config).await?, None)?;
    let tx = db.begin().await?;
    let pid: i32 = tx.fetch_value("SELECT pg_backend_pid()", &[]).await?;
    let ended = wait_until(
        Duration::from_secs(10),
        Duration::from_millis(100),
        || async {
            let alive: bool = ctx
                .pool
                .fetch_value(
                    "SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = $1)",
                    params![pid],
                )
                .await?;
            Ok(!alive)
        },
    )
    .await?;
    assert!(ended, "the server did not end the idle transaction");

    let err = tx
        .fetch_value::<i32>("SELECT 1", &[])
        .await
        .expect_err("the session is gone");
    assert!(err.is_connection_error(), "{err} ({err:?})");
    if let Some(kind) = err.kind() {
        assert_eq!(kind, ErrorKind::IdleInTransactionTimeout, "{err}");
    }
    let rolled_back = tokio::time::timeout(Duration::from_secs(10), tx.rollback())
        .await
        .expect("rolling back a dead transaction hung");
    if let Err(e) = &rolled_back {
        assert!(e.is_connection_error(), "{e} ({e:?})");
    }

    // The pool has one connection: every statement now needs the replacement.
    for _ in 0..3 {
        let next = backend_pid(&db).await?;
        assert_ne!(next, pid, "the ended session's connection was reused");
    }
    db.close().await;
    Ok(())
}

/// A row lock held past `lock_timeout` gives a typed error (`55P03`, [`Error::is_lock_timeout`])
/// to `SELECT … FOR UPDATE` in a transaction and to an autocommit `UPDATE`; once the holder
/// commits, the statement succeeds.
///
/// # Errors
///
/// Any unexpected query error.
pub async fn lock_timeout_is_typed(ctx: &Ctx) -> Result<()> {
    ctx.db
        .batch_execute(
            "CREATE TABLE {{tables.locked}} (id int PRIMARY KEY, v int NOT NULL);
             INSERT INTO {{tables.locked}} VALUES (1, 0)",
        )
        .await?;
    let config = ctx.config_with(|b| {
        b.lock_timeout(Duration::from_millis(200))
            .max_connections(3)
    })?;
    let db = Database::owning(ctx.connect(config).await?, Some(&ctx.schema))?;
    let holder = db.begin().await?;
    holder
        .execute("UPDATE {{tables.locked}} SET v = 1 WHERE id = 1", &[])
        .await?;

    let waiter = db.begin().await?;
    let err = waiter
        .fetch_optional(
            "SELECT v FROM {{tables.locked}} WHERE id = 1 FOR UPDATE",
            &[],
        )
        .await
        .expect_err("the row is locked");
    assert!(err.is_lock_timeout(), "{err} ({err:?})");
    assert_eq!(err.kind(), Some(ErrorKind::LockNotAvailable));
    assert_eq!(err.code(), Some("55P03"));
    assert!(!err.is_connection_error());
    waiter.rollback().await?;

    let err = db
        .execute("UPDATE {{tables.locked}} SET v = 2 WHERE id = 1", &[])
        .await
        .expect_err("the row is locked");
    assert!(err.is_lock_timeout(), "{err}");

    holder.commit().await?;
    db.execute("UPDATE {{tables.locked}} SET v = 3 WHERE id = 1", &[])
        .await?;
    let v: i32 = db
        .fetch_value("SELECT v FROM {{tables.locked}} WHERE id = 1", &[])
        .await?;
    assert_eq!(v, 3);
    db.close().await;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Pools under stress
// ---------------------------------------------------------------------------------------------

/// Pooled connections ended by `pg_terminate_backend` are detected and replaced:
///
/// * one killed while checked out fails its next statement with a typed connection error and is
///   not returned to the pool;
/// * idle ones (idle at least [`VALIDATE_AFTER_IDLE`], so drivers that must ping do) are never
///   handed out: the next statements all succeed, on new backends.
///
/// # Errors
///
/// Any unexpected query error.
pub async fn terminated_connections_replaced(ctx: &Ctx) -> Result<()> {
    let app = ctx.schema.clone();
    let config = ctx.config_with(|b| {
        b.application_name(app.clone())
            .max_connections(3)
            .min_connections(1)
            .acquire_timeout(Duration::from_secs(5))
    })?;
    let pool = ctx.connect(config).await?;
    let held = [
        pool.acquire().await?,
        pool.acquire().await?,
        pool.acquire().await?,
    ];
    drop(held);
    let before = app_pids(ctx, &app).await?;
    assert_eq!(before.len(), 3, "{before:?}");

    // Killed while checked out: the statement fails, typed; the connection is not reused.
    let conn = pool.acquire().await?;
    let pid: i32 = conn.fetch_value("SELECT pg_backend_pid()", &[]).await?;
    ctx.pool
        .fetch_optional("SELECT pg_terminate_backend($1, 5000)", params![pid])
        .await?;
    let err = conn
        .fetch_optional("SELECT 1", &[])
        .await
        .expect_err("the backend is gone");
    assert!(err.is_connection_error(), "{err} ({err:?})");
    drop(conn);

    // Killed while idle: detected at checkout, replaced; nothing fails.
    tokio::time::sleep(VALIDATE_AFTER_IDLE + Duration::from_millis(200)).await;
    let killed = terminate_app(ctx, &app).await?;
    assert!(!killed.is_empty());
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut tasks = Vec::new();
    for _ in 0..3 {
        let pool = pool.clone();
        tasks.push(tokio::spawn(async move {
            let conn = pool.acquire().await?;
            let pid: i32 = conn.fetch_value("SELECT pg_backend_pid()", &[]).await?;
            // Hold it a moment so the three run on three connections.
            tokio::time::sleep(Duration::from_millis(50)).await;
            Ok::<_, Error>(pid)
        }));
    }
    for task in tasks {
        let pid = task.await.expect("task panicked")?;
        assert!(
            !before.contains(&pid),
            "a terminated backend ({pid}) was handed out"
        );
    }
    let s = pool.stats();
    assert!(s.connections_closed >= 1, "{s:?}");
    pool.close().await;
    Ok(())
}

/// When the server stops accepting connections for the pool's database (`ALLOW_CONNECTIONS
/// false` on a database of the check's own, its sessions terminated), a statement fails after
/// at most the acquire timeout with a typed connection error that carries the server's reason:
/// [`Error::PoolTimeout`] whose source is the last connect error, or [`Error::Connect`] when the
/// driver gives up at once. When the database accepts connections again, the pool recovers
/// without any action.
///
/// # Errors
///
/// Any unexpected query error.
pub async fn acquire_timeout_names_connect_error(ctx: &Ctx) -> Result<()> {
    let name = format!("{}_db", ctx.schema);
    let _drop_database =
        ctx.cleanup_on_drop(format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"));
    ctx.pool
        .batch_execute(&format!("CREATE DATABASE \"{name}\""))
        .await?;
    let acquire_timeout = Duration::from_millis(1500);
    let config = ctx.config_with(|b| {
        b.database(name.clone())
            .max_connections(1)
            .min_connections(1)
            .acquire_timeout(acquire_timeout)
            .retry(RetryPolicy::no_retry())
    })?;
    let pool = ctx.connect(config).await?;
    pool.fetch_optional("SELECT 1", &[]).await?;

    ctx.pool
        .batch_execute(&format!(
            "ALTER DATABASE \"{name}\" WITH ALLOW_CONNECTIONS false"
        ))
        .await?;
    ctx.pool
        .fetch_all(
            "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity WHERE datname = $1",
            params![name.as_str()],
        )
        .await?;
    tokio::time::sleep(VALIDATE_AFTER_IDLE + Duration::from_millis(200)).await;

    let start = Instant::now();
    let err = pool
        .fetch_optional("SELECT 1", &[])
        .await
        .expect_err("the database refuses connections");
    let waited = start.elapsed();
    assert!(
        waited < acquire_timeout + Duration::from_secs(5),
        "hung: {waited:?}"
    );
    assert!(err.is_connection_error(), "{err} ({err:?})");
    match &err {
        Error::PoolTimeout { source, .. } => {
            assert!(
                source.is_some(),
                "a pool timeout without its cause: {err:?}"
            );
            assert!(pool.stats().timed_out >= 1, "{:?}", pool.stats());
        }
        Error::Connect { .. } => {}
        other => panic!("expected a pool timeout or a connect error, got {other:?}"),
    }
    let text = error_texts(&err);
    assert!(
        text.contains("not currently accepting connections"),
        "the server's reason is missing: {text}"
    );

    ctx.pool
        .batch_execute(&format!(
            "ALTER DATABASE \"{name}\" WITH ALLOW_CONNECTIONS true"
        ))
        .await?;
    let recovered = wait_until(
        Duration::from_secs(10),
        Duration::from_millis(100),
        || async { Ok(pool.fetch_optional("SELECT 1", &[]).await.is_ok()) },
    )
    .await?;
    assert!(recovered, "the pool did not recover");
    pool.close().await;
    Ok(())
}

/// `max_lifetime` is honoured: an idle connection past it is closed (counted in
/// `connections_closed`) and replaced (`min_connections`), within a few lifetimes; a connection
/// in steady use is replaced too.
///
/// # Errors
///
/// Any unexpected query error.
pub async fn max_lifetime_honoured(ctx: &Ctx) -> Result<()> {
    let lifetime = Duration::from_millis(500);
    let config = ctx.config_with(|b| {
        b.max_connections(1)
            .min_connections(1)
            .max_lifetime(lifetime)
            .idle_timeout(None)
    })?;
    let db = Database::owning(ctx.connect(config).await?, None)?;
    let first = backend_pid(&db).await?;

    // Idle: nothing uses the pool while the lifetime passes. (A connection may already have
    // been closed while the pool opened: count from here.)
    let pool = db.pool().clone();
    let closed_before = pool.stats().connections_closed;
    let reaped = wait_until(
        Duration::from_secs(10),
        Duration::from_millis(100),
        || async { Ok(pool.stats().connections_closed > closed_before) },
    )
    .await?;
    assert!(
        reaped,
        "an idle connection outlived max_lifetime: {:?}",
        pool.stats()
    );
    let second = backend_pid(&db).await?;
    assert_ne!(second, first, "the expired connection was reused");

    // In use: a statement every 100 ms; the connection is still replaced.
    let replaced = wait_until(
        Duration::from_secs(10),
        Duration::from_millis(100),
        || async { Ok(backend_pid(&db).await? != second) },
    )
    .await?;
    assert!(replaced, "a busy connection outlived max_lifetime");
    let s = db.pool_stats();
    assert!(s.connections_closed >= closed_before + 2, "{s:?}");
    db.close().await;
    Ok(())
}

/// `idle_timeout` is honoured: with `min_connections` 0, three idle connections are closed
/// within a few timeouts (the pool size drops to 0, `connections_closed` counts them), and the
/// next statement opens a new one.
///
/// # Errors
///
/// Any unexpected query error.
pub async fn idle_timeout_honoured(ctx: &Ctx) -> Result<()> {
    let config = ctx.config_with(|b| {
        b.max_connections(3)
            .min_connections(0)
            .idle_timeout(Duration::from_millis(500))
            .max_lifetime(None)
    })?;
    let pool = ctx.connect(config).await?;
    let held = [
        pool.acquire().await?,
        pool.acquire().await?,
        pool.acquire().await?,
    ];
    drop(held);
    let settled = wait_until(
        Duration::from_secs(2),
        Duration::from_millis(10),
        || async { Ok(pool.stats().idle == 3) },
    )
    .await?;
    assert!(settled, "{:?}", pool.stats());

    let emptied = wait_until(
        Duration::from_secs(10),
        Duration::from_millis(100),
        || async {
            let s = pool.stats();
            Ok(s.size == 0 && s.connections_closed >= 3)
        },
    )
    .await?;
    assert!(
        emptied,
        "idle connections outlived idle_timeout: {:?}",
        pool.stats()
    );
    pool.fetch_optional("SELECT 1", &[]).await?;
    let s = pool.stats();
    assert!(s.size >= 1 && s.connections_created >= 1, "{s:?}");
    pool.close().await;
    Ok(())
}

/// Checks one stats snapshot against the previous one; returns what is wrong.
fn stats_violations(s: &PoolStats, prev: &PoolStats) -> Vec<String> {
    let mut out = Vec::new();
    if s.idle > s.size {
        out.push(format!("idle > size: {s:?}"));
    }
    if s.size > s.max_size {
        out.push(format!("size > max_size: {s:?}"));
    }
    if s.in_use != s.size - s.idle.min(s.size) {
        out.push(format!("in_use != size - idle: {s:?}"));
    }
    if s.connections_created < prev.connections_created
        || s.connections_closed < prev.connections_closed
        || s.timed_out < prev.timed_out
    {
        out.push(format!("a counter went back: {prev:?} -> {s:?}"));
    }
    out
}

/// Pool stats stay consistent under concurrent load with connections discarded on the way:
/// sampled continuously, `idle ≤ size ≤ max_size`, `in_use = size - idle`, and the counters
/// (`connections_created`, `connections_closed`, `timed_out`) never go back; afterwards nothing
/// is in use and every discarded connection is counted as closed.
///
/// # Errors
///
/// Any unexpected query error.
pub async fn pool_stats_under_load(ctx: &Ctx) -> Result<()> {
    let config = ctx.config_with(|b| {
        b.max_connections(4)
            .min_connections(1)
            .acquire_timeout(Duration::from_secs(10))
    })?;
    let pool = ctx.connect(config).await?;
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = {
        let pool = pool.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut prev = pool.stats();
            let mut violations = Vec::new();
            let mut samples = 0u64;
            while !stop.load(Ordering::Acquire) {
                let s = pool.stats();
                violations.extend(stats_violations(&s, &prev));
                prev = s;
                samples += 1;
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            (samples, violations)
        })
    };
    let discarded = Arc::new(AtomicU64::new(0));
    let mut workers = Vec::new();
    for w in 0..8u32 {
        let pool = pool.clone();
        let discarded = discarded.clone();
        workers.push(tokio::spawn(async move {
            for i in 0..40u32 {
                match (w + i) % 10 {
                    0 => {
                        let mut conn = pool.acquire().await?;
                        conn.fetch_optional("SELECT 1", &[]).await?;
                        conn.discard();
                        discarded.fetch_add(1, Ordering::Relaxed);
                    }
                    1..=3 => {
                        let conn = pool.acquire().await?;
                        conn.fetch_optional("SELECT pg_sleep(0.002)", &[]).await?;
                    }
                    _ => {
                        pool.fetch_optional("SELECT 1", &[]).await?;
                    }
                }
            }
            Ok::<_, Error>(())
        }));
    }
    for worker in workers {
        worker.await.expect("worker panicked")?;
    }
    stop.store(true, Ordering::Release);
    let (samples, violations) = sampler.await.expect("sampler panicked");
    assert!(samples > 0);
    assert!(
        violations.is_empty(),
        "inconsistent stats ({} of {samples} samples):\n{}",
        violations.len(),
        violations.join("\n")
    );

    let discarded = discarded.load(Ordering::Relaxed);
    let settled = wait_until(
        Duration::from_secs(10),
        Duration::from_millis(20),
        || async {
            let s = pool.stats();
            Ok(s.in_use == 0 && s.connections_closed >= discarded)
        },
    )
    .await?;
    let s = pool.stats();
    assert!(
        settled,
        "{discarded} discarded; in use or closed count off: {s:?}"
    );
    assert!(s.size <= s.max_size && s.idle <= s.size, "{s:?}");
    assert!(s.connections_created >= discarded, "{s:?}");
    pool.close().await;
    Ok(())
}

/// Stopping and starting the server of a [`server_restart_during_load`] check. Implemented by
/// the driver's test around its throwaway server.
#[async_trait::async_trait]
pub trait ServerControl: Send + Sync {
    /// Stops the server (a clean, fast shutdown that ends the sessions); returns once it is down.
    async fn stop(&self) -> Result<()>;
    /// Starts it again on the same address; returns once it accepts connections.
    async fn start(&self) -> Result<()>;
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A short name for an error, for the restart check's summary.
fn label(err: &Error) -> String {
    match err {
        Error::Database(db) => format!("Database({})", db.code),
        Error::ConnectionLost { .. } => "ConnectionLost".to_owned(),
        Error::PoolTimeout { source, .. } => format!(
            "PoolTimeout({})",
            if source.is_some() {
                "cause"
            } else {
                "no cause"
            }
        ),
        Error::Connect { .. } => "Connect".to_owned(),
        other => format!("{other:?}").chars().take(40).collect(),
    }
}

/// What one statement of the load did, and in which phase it started and ended.
struct Outcome {
    task: usize,
    started: u8,
    ended: u8,
    error: Option<(bool, String, String)>,
}

const UP: u8 = 0;
const STOPPING: u8 = 1;
const DOWN: u8 = 2;
const STARTING: u8 = 3;
const RESTARTED: u8 = 4;

/// The pool survives a server restart under load, with no action of the application: four tasks
/// run statements in a loop through a pool with driver `D` on the server of `config` (a server
/// of the test's own — it is stopped), then the server is stopped and started again.
///
/// * While it is down every statement fails, within the acquire timeout plus a margin (no hang),
///   with a typed connection error ([`Error::is_connection_error`]); a pool timeout names the
///   connect failure as its cause.
/// * Once it is up again, statements succeed within a bounded time, in every task.
/// * No statement ever fails with anything but a connection error, and the pool stats are
///   consistent afterwards.
///
/// # Errors
///
/// Any unexpected error, including `server`'s.
pub async fn server_restart_during_load<D: Driver>(
    config: DatabaseConfig,
    server: &dyn ServerControl,
) -> Result<()> {
    const TASKS: usize = 4;
    let acquire_timeout = Duration::from_secs(1);
    // Longer than any failure may take: acquire timeout + the sqlx driver's probe connect.
    let hang = Duration::from_secs(10);
    let config = config
        .to_builder()
        .max_connections(4)
        .min_connections(2)
        .acquire_timeout(acquire_timeout)
        .connect_timeout(Duration::from_secs(2))
        .build()?;
    let pool: SharedPool = Arc::new(D::connect(&config).await?);
    let phase = Arc::new(std::sync::atomic::AtomicU8::new(UP));
    let stop = Arc::new(AtomicBool::new(false));
    let outcomes: Arc<Mutex<Vec<Outcome>>> = Arc::default();
    let mut tasks = Vec::new();
    for task in 0..TASKS {
        let (pool, phase, stop, outcomes) =
            (pool.clone(), phase.clone(), stop.clone(), outcomes.clone());
        tasks.push(tokio::spawn(async move {
            while !stop.load(Ordering::Acquire) {
                let started = phase.load(Ordering::Acquire);
                let result = tokio::time::timeout(hang, pool.fetch_optional("SELECT 1", &[]))
                    .await
                    .unwrap_or_else(|_| panic!("a statement hung for {hang:?}"));
                let error = result
                    .err()
                    .map(|e| (e.is_connection_error(), label(&e), format!("{e} ({e:?})")));
                let ended = phase.load(Ordering::Acquire);
                lock(&outcomes).push(Outcome {
                    task,
                    started,
                    ended,
                    error,
                });
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }));
    }
    let count = |phase_: u8| {
        lock(&outcomes)
            .iter()
            .filter(|o| o.started == phase_ && o.error.is_none())
            .count()
    };
    let warmed = wait_until(
        Duration::from_secs(10),
        Duration::from_millis(20),
        || async { Ok(count(UP) >= 20) },
    )
    .await?;
    assert!(warmed, "the load did not get going");

    phase.store(STOPPING, Ordering::Release);
    server.stop().await?;
    phase.store(DOWN, Ordering::Release);
    // Down: a statement fails, typed, within a bounded time.
    let err = tokio::time::timeout(hang, pool.fetch_optional("SELECT 1", &[]))
        .await
        .expect("a statement hung while the server was down")
        .expect_err("the server is down");
    assert!(err.is_connection_error(), "{err} ({err:?})");
    // Once the pool has no live connection left, acquiring times out (or fails to connect)
    // naming the connect failure.
    let mut named = None;
    for _ in 0..5 {
        let err = tokio::time::timeout(hang, pool.fetch_optional("SELECT 1", &[]))
            .await
            .expect("a statement hung while the server was down")
            .expect_err("the server is down");
        assert!(err.is_connection_error(), "{err} ({err:?})");
        if matches!(
            err,
            Error::PoolTimeout {
                source: Some(_),
                ..
            } | Error::Connect { .. }
        ) {
            named = Some(err);
            break;
        }
    }
    let named = named.expect("no pool timeout or connect error while the server was down");
    assert!(
        std::error::Error::source(&named).is_some(),
        "no cause: {named:?}"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;

    phase.store(STARTING, Ordering::Release);
    server.start().await?;
    phase.store(RESTARTED, Ordering::Release);
    let restarted = Instant::now();
    let recovered = wait_until(
        Duration::from_secs(30),
        Duration::from_millis(50),
        || async {
            Ok(
                tokio::time::timeout(hang, pool.fetch_optional("SELECT 1", &[]))
                    .await
                    .is_ok_and(|r| r.is_ok()),
            )
        },
    )
    .await?;
    assert!(
        recovered,
        "no statement succeeded within 30 s of the restart"
    );
    let every_task = wait_until(
        Duration::from_secs(30),
        Duration::from_millis(50),
        || async {
            let o = lock(&outcomes);
            Ok((0..TASKS).all(|t| {
                o.iter()
                    .filter(|o| o.task == t && o.started == RESTARTED && o.error.is_none())
                    .count()
                    >= 5
            }))
        },
    )
    .await?;
    assert!(every_task, "not every task recovered within 30 s");
    let recovery = restarted.elapsed();
    stop.store(true, Ordering::Release);
    for task in tasks {
        task.await.expect("a load task panicked");
    }

    // The tasks are done: take the outcomes out of the mutex.
    let o = std::mem::take(&mut *lock(&outcomes));
    let untyped: Vec<&String> = o
        .iter()
        .filter_map(|o| o.error.as_ref())
        .filter(|(typed, _, _)| !typed)
        .map(|(_, _, text)| text)
        .collect();
    assert!(
        untyped.is_empty(),
        "errors that are not connection errors: {untyped:#?}"
    );
    let while_down: Vec<&Outcome> = o
        .iter()
        .filter(|o| o.started == DOWN && o.ended == DOWN)
        .collect();
    assert!(
        !while_down.is_empty(),
        "the load ran no statement while the server was down"
    );
    assert!(
        while_down.iter().all(|o| o.error.is_some()),
        "a statement succeeded while the server was down"
    );
    let failed: std::collections::BTreeSet<&str> = o
        .iter()
        .filter_map(|o| o.error.as_ref())
        .map(|(_, label, _)| label.as_str())
        .collect();
    eprintln!(
        "server_restart_during_load ({}): {} statements, {} failed ({failed:?}), recovered in \
         {recovery:?} after the start",
        pool.driver_name(),
        o.len(),
        o.iter().filter(|o| o.error.is_some()).count(),
    );

    let settled = wait_until(
        Duration::from_secs(10),
        Duration::from_millis(20),
        || async { Ok(pool.stats().in_use == 0) },
    )
    .await?;
    let s = pool.stats();
    assert!(settled, "connections still in use: {s:?}");
    assert!(s.idle <= s.size && s.size <= s.max_size, "{s:?}");
    assert!(s.connections_closed <= s.connections_created + 1, "{s:?}");
    pool.fetch_optional("SELECT 1", &[]).await?;
    pool.close().await;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Secrets
// ---------------------------------------------------------------------------------------------

/// Everything `tracing` emitted while a [`CaptureSession`] was open: one line per span (name and
/// fields), per late span field and per event (level, target and fields).
#[derive(Default)]
struct Captured {
    lines: Mutex<Vec<String>>,
    active: AtomicUsize,
    next_id: AtomicU64,
}

struct Line<'a>(&'a mut String);

impl Visit for Line<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.push_str(&format!(" {}={value}", field.name()));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.push_str(&format!(" {}={value:?}", field.name()));
    }
}

/// The subscriber: always interested (so callsites are never cached as disabled), recording
/// only while a session is open.
#[derive(Clone)]
struct Collector(Arc<Captured>);

impl Collector {
    fn push(&self, line: String) {
        self.0
            .lines
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(line);
    }
    fn recording(&self) -> bool {
        self.0.active.load(Ordering::Acquire) > 0
    }
}

impl Subscriber for Collector {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn max_level_hint(&self) -> Option<tracing::level_filters::LevelFilter> {
        Some(tracing::level_filters::LevelFilter::TRACE)
    }
    fn new_span(&self, span: &Attributes<'_>) -> Id {
        let id = self.0.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        if self.recording() {
            let m = span.metadata();
            let mut line = format!("span {} {} {}:", m.level(), m.target(), m.name());
            span.record(&mut Line(&mut line));
            self.push(line);
        }
        Id::from_u64(id)
    }
    fn record(&self, span: &Id, values: &Record<'_>) {
        if self.recording() {
            let mut line = format!("span #{} record:", span.into_u64());
            values.record(&mut Line(&mut line));
            self.push(line);
        }
    }
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        if self.recording() {
            let m = event.metadata();
            let mut line = format!("event {} {}:", m.level(), m.target());
            event.record(&mut Line(&mut line));
            self.push(line);
        }
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

/// The process-wide collector, installed as the global default subscriber on first use; `None`
/// when the process already has a global subscriber.
fn global_collector() -> Option<Collector> {
    static GLOBAL: OnceLock<Option<Collector>> = OnceLock::new();
    GLOBAL
        .get_or_init(|| {
            let collector = Collector(Arc::default());
            tracing::subscriber::set_global_default(collector.clone())
                .ok()
                .map(|()| collector)
        })
        .clone()
}

/// Captures all `tracing` output while open: of every task and thread (background connects,
/// connection tasks…) through the global collector, or — when the process has a global
/// subscriber of its own — of the future given to [`CaptureSession::run`] only (said on
/// standard error).
pub(super) struct CaptureSession {
    collector: Collector,
    global: bool,
    start: usize,
}

impl CaptureSession {
    pub(super) fn open(check: &str) -> Self {
        let (collector, global) = match global_collector() {
            Some(c) => (c, true),
            None => {
                eprintln!(
                    "{check}: a global tracing subscriber is already installed; capturing only \
                     the check's own task, not background tasks"
                );
                (Collector(Arc::default()), false)
            }
        };
        collector.0.active.fetch_add(1, Ordering::AcqRel);
        let start = collector
            .0
            .lines
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .len();
        CaptureSession {
            collector,
            global,
            start,
        }
    }

    pub(super) async fn run<T>(&self, fut: impl Future<Output = T>) -> T {
        if self.global {
            fut.await
        } else {
            fut.with_subscriber(self.collector.clone()).await
        }
    }

    /// The lines captured since the session opened (other sessions' included).
    pub(super) fn lines(&self) -> Vec<String> {
        self.collector
            .0
            .lines
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(self.start..)
            .unwrap_or_default()
            .to_vec()
    }
}

impl Drop for CaptureSession {
    fn drop(&mut self) {
        self.collector.0.active.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A value unique to this process and call, for secrets that must not show up anywhere.
pub(super) fn unique_token(what: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!(
        "{what}-{}-{nanos}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Asserts that none of `secrets` is in `errors` (their `Display`, `Debug` and causes) or in
/// `lines` (captured tracing output).
fn assert_no_secrets(secrets: &[&str], errors: &[(&str, Error)], lines: &[String]) {
    for (what, err) in errors {
        let text = error_texts(err);
        for secret in secrets {
            assert!(
                !text.contains(secret),
                "{what}: a secret leaked into the error: {text}"
            );
        }
    }
    for line in lines {
        for secret in secrets {
            assert!(
                !line.contains(secret),
                "a secret leaked into tracing output: {line}"
            );
        }
    }
}

/// No bound parameter value and no password appears in any error text (`Display`, `Debug`, the
/// whole source chain) or in any `tracing` output (spans and events of every task, at every
/// level, captured by a global subscriber), across: a unique violation (whose `DETAIL` quotes
/// the value), data exceptions whose server message quotes the input (an invalid enum label, a
/// failed `::int` cast, invalid JSON), a client-side bind error, failures inside a transaction
/// and through a monitored handle (default options; its history and error records included), a
/// statement canceled by `statement_timeout`, slow-query warnings, and connect failures with a
/// password (refused, retried with warnings).
///
/// A wrong password against a server that checks it is [`wrong_password_stays_secret`]
/// (password authentication needs a server of the test's own).
///
/// # Errors
///
/// Any unexpected query error.
pub async fn secrets_stay_out_of_logs_and_errors(ctx: &Ctx) -> Result<()> {
    let secret = unique_token("s3cr3t-param");
    let password = unique_token("s3cr3t-pw");
    let session = CaptureSession::open("secrets_stay_out_of_logs_and_errors");
    let errors = session
        .run(secret_failures(ctx, &secret, &password))
        .await?;
    let lines = session.lines();
    drop(session);
    assert!(
        lines.iter().any(|l| l.contains("pgdbm.query")),
        "the capture saw no pgdbm span: {lines:#?}"
    );
    assert!(
        lines.iter().any(|l| l.contains("connect failed")),
        "the capture saw no connect warning: {lines:#?}"
    );
    assert_no_secrets(&[&secret, &password], &errors, &lines);
    Ok(())
}

async fn secret_failures(
    ctx: &Ctx,
    secret: &str,
    password: &str,
) -> Result<Vec<(&'static str, Error)>> {
    let db = &ctx.db;
    db.batch_execute(
        "CREATE TYPE {{schema}}.mood AS ENUM ('calm');
         CREATE TABLE {{tables.secrets}} (
            id int PRIMARY KEY, email text UNIQUE, mood {{schema}}.mood, doc jsonb, n int)",
    )
    .await?;
    let mut errors = Vec::new();
    let insert = "INSERT INTO {{tables.secrets}} (id, email) VALUES ($1, $2)";
    db.execute(insert, params![1i32, secret]).await?;

    let err = db
        .execute(insert, params![2i32, secret])
        .await
        .expect_err("unique");
    assert!(err.is_unique_violation(), "{err}");
    let detail = err.as_database().and_then(|d| d.detail.clone());
    assert!(
        detail.is_some_and(|d| d.contains("<hidden>")),
        "the server's DETAIL should quote the value (that is what must not leak), hidden"
    );
    errors.push(("unique violation", err));

    let err = db
        .execute(
            "INSERT INTO {{tables.secrets}} (id, mood) VALUES ($1, $2)",
            params![3i32, secret],
        )
        .await
        .expect_err("not an enum label");
    assert_eq!(err.kind(), Some(ErrorKind::DataException), "{err}");
    assert!(
        err.as_database()
            .is_some_and(|d| d.message.contains("<hidden>")),
        "the server's message should quote the value (that is what must not leak), hidden: {err:?}"
    );
    errors.push(("invalid enum label", err));

    let cast = "SELECT $1::text::int4";
    let err = db
        .fetch_optional(cast, params![secret])
        .await
        .expect_err("not an integer");
    assert_eq!(err.kind(), Some(ErrorKind::DataException), "{err}");
    errors.push(("failed cast", err));

    let err = db
        .execute(
            "INSERT INTO {{tables.secrets}} (id, doc) VALUES ($1, $2)",
            params![4i32, secret],
        )
        .await
        .expect_err("not JSON");
    errors.push(("invalid json", err));

    let err = db
        .execute(
            "INSERT INTO {{tables.secrets}} (id, n) VALUES ($1, $2)",
            params![5i32, secret],
        )
        .await
        .expect_err("text into int");
    errors.push(("bind error", err));

    let tx = db.begin().await?;
    let err = tx
        .fetch_optional(cast, params![secret])
        .await
        .expect_err("not an integer");
    errors.push(("in a transaction", err));
    let err = tx
        .execute(insert, params![6i32, secret])
        .await
        .expect_err("aborted");
    errors.push(("aborted transaction", err));
    tx.rollback().await?;

    let monitored = db.monitored(MonitorOptions::default().slow_query_threshold(Duration::ZERO));
    monitored
        .fetch_optional("SELECT $1::text", params![secret])
        .await?;
    let err = monitored
        .execute(insert, params![2i32, secret])
        .await
        .expect_err("unique");
    errors.push(("monitored unique violation", err));
    let err = monitored
        .fetch_optional(cast, params![secret])
        .await
        .expect_err("not an integer");
    errors.push(("monitored failed cast", err));
    let monitor = monitored.monitor().expect("monitored handle");
    let records = format!(
        "{:?}{:?}{:?}",
        monitor.history(),
        monitor.errors(),
        monitored.metrics()
    );
    assert!(
        !records.contains(secret),
        "a parameter value leaked into the monitor's records"
    );

    // A pool whose config has a password (the test server may not ask for it).
    let config = ctx.config_with(|b| {
        b.password(password)
            .statement_timeout(Duration::from_millis(100))
            .max_connections(1)
    })?;
    assert!(!format!("{config:?}").contains(password));
    assert!(!config.masked_url().contains(password));
    let pool = ctx.connect(config).await?;
    let err = pool
        .fetch_optional("SELECT pg_sleep(2), $1::text", params![secret])
        .await
        .expect_err("canceled");
    assert!(err.is_query_canceled(), "{err}");
    errors.push(("statement timeout", err));
    pool.close().await;
    let err = pool
        .fetch_optional("SELECT $1::text", params![secret])
        .await
        .expect_err("closed");
    errors.push(("closed pool", err));

    // Refused connects with a password, retried (each retry is logged at warn).
    let config = ctx.config_with(|b| {
        b.host("127.0.0.1")
            .port(1)
            .password(password)
            .connect_timeout(Duration::from_secs(2))
            .retry(RetryPolicy::new(
                2,
                Duration::from_millis(10),
                2.0,
                Duration::from_millis(50),
            ))
    })?;
    let err = ctx.connect(config).await.expect_err("nothing listens");
    errors.push(("refused connect", err));
    Ok(errors)
}

/// A wrong password never shows up — nor the right one — in the connect error (`Display`,
/// `Debug`, causes) or in `tracing` output, and the failure is typed
/// ([`ErrorKind::InvalidAuthorization`], not retried); the same holds when the password of a
/// running pool's role changes and a new connection is refused (a pool timeout or connect error
/// naming the authentication failure).
///
/// `config` must reach a server of the test's own that checks passwords (e.g. `scram-sha-256`),
/// as a superuser, with the right password; the role's password is changed and restored.
///
/// # Errors
///
/// Any unexpected error.
pub async fn wrong_password_stays_secret<D: Driver>(config: DatabaseConfig) -> Result<()> {
    let right = config
        .password()
        .expect("the config must carry the password")
        .to_owned();
    let wrong = unique_token("wrong-pw");
    let changed = unique_token("changed-pw");
    let session = CaptureSession::open("wrong_password_stays_secret");
    let errors = session
        .run(password_failures::<D>(&config, &wrong, &changed))
        .await?;
    let lines = session.lines();
    drop(session);
    assert_no_secrets(&[&right, &wrong, &changed], &errors, &lines);
    Ok(())
}

async fn password_failures<D: Driver>(
    config: &DatabaseConfig,
    wrong: &str,
    changed: &str,
) -> Result<Vec<(&'static str, Error)>> {
    let mut errors = Vec::new();
    let retry = RetryPolicy::new(3, Duration::from_millis(10), 2.0, Duration::from_millis(50));
    let bad = config.to_builder().password(wrong).retry(retry).build()?;
    let err = crate::assert_err!(D::connect(&bad).await, Error::Connect { .. });
    assert_eq!(err.kind(), Some(ErrorKind::InvalidAuthorization), "{err}");
    assert!(err.to_string().contains("1 attempt"), "retried: {err}");
    errors.push(("wrong password", err));

    let none = config
        .to_builder()
        .without_password()
        .retry(retry)
        .build()?;
    let err = crate::assert_err!(D::connect(&none).await, Error::Connect { .. });
    // Retrying cannot make a password appear: one attempt, and the error says what is missing.
    assert!(err.to_string().contains("1 attempt"), "retried: {err}");
    let text = error_texts(&err).to_lowercase();
    assert!(
        text.contains("password"),
        "should name the password: {text}"
    );
    errors.push(("no password", err));

    let pool_config = config
        .to_builder()
        .max_connections(1)
        .min_connections(0)
        .acquire_timeout(Duration::from_secs(1))
        .build()?;
    let pool: SharedPool = Arc::new(D::connect(&pool_config).await?);
    let err = pool
        .fetch_optional("SELECT 1/0", &[])
        .await
        .expect_err("division by zero");
    errors.push(("query error", err));

    // The role's password changes under the running pool; its next new connection is refused.
    let user = pool_config.user().replace('"', "\"\"");
    let right = config.password().unwrap_or_default().replace('\'', "''");
    pool.batch_execute(&format!("ALTER ROLE \"{user}\" PASSWORD '{changed}'"))
        .await?;
    let mut conn = pool.acquire().await?;
    conn.discard();
    drop(conn);
    let err = pool
        .fetch_optional("SELECT 1", &[])
        .await
        .expect_err("the password changed");
    assert!(err.is_connection_error(), "{err} ({err:?})");
    let text = error_texts(&err);
    assert!(
        text.contains("password authentication failed"),
        "the cause is missing: {text}"
    );
    errors.push(("password changed", err));
    pool.close().await;

    let fixed = config.to_builder().password(changed).build()?;
    let admin: SharedPool = Arc::new(D::connect(&fixed).await?);
    admin
        .batch_execute(&format!("ALTER ROLE \"{user}\" PASSWORD '{right}'"))
        .await?;
    admin.close().await;
    Ok(errors)
}
