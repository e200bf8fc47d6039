//! Pools: server settings at connect, stats, exhaustion, closing, and connect errors.

use std::time::{Duration, Instant};

use pgdbm::prelude::*;
use pgdbm::{Database, Error, Result, RetryPolicy, SharedPool};

use super::Ctx;
use crate::support::one_connection_pool;

/// The server-side timeouts (defaults 60 s / 60 s / 5 s, each can be turned off),
/// `application_name`, extra settings and init commands are applied to every connection.
///
/// # Errors
///
/// Any unexpected query error.
pub async fn server_settings_applied(ctx: &Ctx) -> Result<()> {
    let show = |db: Database, name: &'static str| async move {
        db.fetch_value::<String>(&format!("SHOW {name}"), &[]).await
    };
    let db = ctx.db.clone();
    assert_eq!(show(db.clone(), "statement_timeout").await?, "1min");
    assert_eq!(
        show(db.clone(), "idle_in_transaction_session_timeout").await?,
        "1min"
    );
    assert_eq!(show(db.clone(), "lock_timeout").await?, "5s");
    assert_eq!(
        show(db.clone(), "application_name").await?,
        ctx.config.application_name()
    );

    let config = ctx.config_with(|b| {
        b.statement_timeout(None)
            .lock_timeout(Some(Duration::from_millis(1500)))
            .application_name("conformance app")
            .server_setting("work_mem", "8MB")
            .server_setting("search_path", "a, b")
            .init_command("SET TIME ZONE 'Asia/Tokyo'")
            .max_connections(2)
    })?;
    let pool = ctx.connect(config).await?;
    let db = Database::owning(pool, None)?;
    assert_eq!(show(db.clone(), "statement_timeout").await?, "0");
    assert_eq!(show(db.clone(), "lock_timeout").await?, "1500ms");
    assert_eq!(
        show(db.clone(), "application_name").await?,
        "conformance app"
    );
    assert_eq!(show(db.clone(), "work_mem").await?, "8MB");
    assert_eq!(show(db.clone(), "search_path").await?, "a, b");
    assert_eq!(show(db.clone(), "TimeZone").await?, "Asia/Tokyo");
    db.close().await;
    Ok(())
}

/// Pool stats add up: `in_use = size - idle`, `max_size` as configured, and a checked-out
/// connection counts as in use.
///
/// # Errors
///
/// Any unexpected query error.
pub async fn pool_stats_consistent(ctx: &Ctx) -> Result<()> {
    let config = ctx.config_with(|b| b.max_connections(3).min_connections(1))?;
    let pool = ctx.connect(config).await?;
    pool.fetch_optional("SELECT 1", &[]).await?;
    let s = pool.stats();
    assert_eq!(s.max_size, 3);
    assert!(s.size >= 1 && s.size <= 3, "{s:?}");
    assert_eq!(s.in_use, s.size - s.idle, "{s:?}");
    let a = pool.acquire().await?;
    let b = pool.acquire().await?;
    let s = pool.stats();
    assert!(s.in_use >= 2, "{s:?}");
    assert!(s.utilization() > 0.5, "{s:?}");
    drop((a, b));
    tokio::time::sleep(Duration::from_millis(50)).await;
    let s = pool.stats();
    assert_eq!(s.in_use, 0, "{s:?}");
    assert!(s.connections_created >= 2, "{s:?}");
    pool.close().await;
    Ok(())
}

/// Pool stats name the server's version and the database, as the server reports them, from the
/// moment the pool is open (on a handle too: `Database::pool_stats`).
///
/// # Errors
///
/// Any unexpected query error.
pub async fn pool_stats_name_server_version_and_database(ctx: &Ctx) -> Result<()> {
    let version: String = ctx
        .db
        .fetch_value("SELECT current_setting('server_version')", &[])
        .await?;
    let database: String = ctx
        .db
        .fetch_value("SELECT current_database()::text", &[])
        .await?;
    let s = ctx.pool.stats();
    assert_eq!(s.server_version.as_deref(), Some(version.as_str()), "{s:?}");
    assert_eq!(s.database.as_deref(), Some(database.as_str()), "{s:?}");
    let s = ctx.db.pool_stats();
    assert_eq!(s.database.as_deref(), Some(database.as_str()), "{s:?}");
    let s = ctx.db.metrics().pool.expect("a pool");
    assert_eq!(s.server_version.as_deref(), Some(version.as_str()), "{s:?}");
    Ok(())
}

/// With `max_queries = 3`, a pool of one connection replaces its connection after every three
/// statements (the backend pid changes), wherever they run: the pool's own statements and
/// those on a checked-out connection. A driver that cannot honour it refuses the setting with
/// a typed error naming it.
///
/// # Errors
///
/// Any unexpected query error.
pub async fn max_queries_recycles_the_connection(ctx: &Ctx) -> Result<()> {
    const MAX: usize = 3;
    let opened = one_connection_pool(ctx, |b| b.max_queries(MAX as u64)).await;
    if !ctx.caps.recycles_after_max_queries {
        let err = crate::assert_err!(opened, Error::Config { .. });
        assert!(
            matches!(err, Error::Config { ref field, .. } if field == "max_queries"),
            "{err:?}"
        );
        eprintln!("max_queries_recycles_the_connection: the driver refuses max_queries");
        return Ok(());
    }
    let pool = opened?;
    let mut pids = Vec::new();
    for _ in 0..10 {
        pids.push(
            pool.fetch_value::<i32>("SELECT pg_backend_pid()", &[])
                .await?,
        );
    }
    // Runs of the same backend: the first connection also ran the pool's opening statement.
    let mut runs: Vec<(i32, usize)> = Vec::new();
    for pid in &pids {
        match runs.last_mut() {
            Some((last, n)) if last == pid => *n += 1,
            _ => runs.push((*pid, 1)),
        }
    }
    assert!(
        runs.len() >= 3,
        "the connection was never replaced: {pids:?}"
    );
    assert!(runs[0].1 <= MAX, "{pids:?}");
    for (_, n) in &runs[1..runs.len() - 1] {
        assert_eq!(
            *n, MAX,
            "a connection ran other than {MAX} statements: {pids:?}"
        );
    }
    assert!(runs[runs.len() - 1].1 <= MAX, "{pids:?}");

    // On a checked-out connection every statement counts; it is replaced once returned.
    let conn = pool.acquire().await?;
    let held = conn
        .fetch_value::<i32>("SELECT pg_backend_pid()", &[])
        .await?;
    for _ in 0..MAX {
        let pid = conn
            .fetch_value::<i32>("SELECT pg_backend_pid()", &[])
            .await?;
        assert_eq!(
            pid, held,
            "a checked-out connection changed under its holder"
        );
    }
    drop(conn);
    let next = pool
        .fetch_value::<i32>("SELECT pg_backend_pid()", &[])
        .await?;
    assert_ne!(
        next, held,
        "a connection past max_queries went back to the pool"
    );
    pool.close().await;
    Ok(())
}

/// With every connection checked out, an acquire fails with a typed timeout after the acquire
/// timeout, not a hang; the timeout is counted.
///
/// # Errors
///
/// Any unexpected query error.
pub async fn pool_exhaustion_times_out(ctx: &Ctx) -> Result<()> {
    let pool = one_connection_pool(ctx, |b| b.acquire_timeout(Duration::from_millis(300))).await?;
    let held = pool.acquire().await?;
    let start = Instant::now();
    let err = crate::assert_err!(
        pool.fetch_optional("SELECT 1", &[]).await,
        Error::PoolTimeout { .. }
    );
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_millis(250),
        "gave up too early: {waited:?}"
    );
    assert!(waited < Duration::from_secs(5), "hung: {waited:?}");
    assert!(err.is_pool_timeout());
    assert!(pool.stats().timed_out >= 1, "{:?}", pool.stats());
    drop(held);
    pool.fetch_optional("SELECT 1", &[]).await?;
    pool.close().await;
    Ok(())
}

/// After `close`, queries fail with [`Error::PoolClosed`].
///
/// # Errors
///
/// Any unexpected query error.
pub async fn closed_pool_rejects(ctx: &Ctx) -> Result<()> {
    let config = ctx.config_with(|b| b.max_connections(2))?;
    let pool = ctx.connect(config).await?;
    let db = Database::owning(pool.clone(), Some(&ctx.schema))?;
    db.fetch_value::<i32>("SELECT 1", &[]).await?;
    db.close().await;
    assert!(pool.is_closed());
    crate::assert_err!(
        db.fetch_value::<i32>("SELECT 1", &[]).await,
        Error::PoolClosed
    );
    crate::assert_err!(db.begin().await, Error::PoolClosed);
    crate::assert_err!(pool.acquire().await, Error::PoolClosed);
    Ok(())
}

/// Closing a shared (non-owning) handle leaves the pool open for the other handles.
///
/// # Errors
///
/// Any unexpected query error.
pub async fn shared_close_keeps_pool(ctx: &Ctx) -> Result<()> {
    let other = Database::new(ctx.pool.clone(), Some(&ctx.schema))?;
    assert!(!other.owns_pool());
    other.close().await;
    assert!(!ctx.pool.is_closed());
    ctx.db.fetch_value::<i32>("SELECT 1", &[]).await?;
    Ok(())
}

/// An unreachable server gives [`Error::Connect`] naming host, port and attempts, after the
/// configured retries, and never the password.
///
/// # Errors
///
/// Any unexpected error.
pub async fn unreachable_host_error(ctx: &Ctx) -> Result<()> {
    let retry = RetryPolicy::new(2, Duration::from_millis(10), 2.0, Duration::from_secs(1));
    let config = ctx.config_with(|b| {
        b.host("127.0.0.1")
            .port(1)
            .password("s3cret-pw")
            .connect_timeout(Duration::from_secs(2))
            .retry(retry)
    })?;
    let err = crate::assert_err!(ctx.connect(config).await, Error::Connect { .. });
    let mut text = err.to_string();
    let mut source = std::error::Error::source(&err);
    while let Some(s) = source {
        text.push_str(&format!(" / {s}"));
        source = s.source();
    }
    assert!(text.contains("127.0.0.1:1"), "{text}");
    assert!(text.contains("2 attempt"), "{text}");
    assert!(!text.contains("s3cret-pw"), "password leaked: {text}");
    assert!(
        !format!("{err:?}").contains("s3cret-pw"),
        "password leaked in Debug"
    );
    Ok(())
}

/// A pool with every connection checked out, `n` tasks waiting for one (each with a long
/// acquire timeout). Returns the held connection and the waiters' handles, which finish with
/// the acquire's outcome and when it came.
async fn waiters(
    ctx: &Ctx,
    n: usize,
) -> Result<(
    SharedPool,
    pgdbm::driver::PooledConnection,
    Vec<tokio::task::JoinHandle<(Result<()>, Instant)>>,
)> {
    let pool = one_connection_pool(ctx, |b| b.acquire_timeout(Duration::from_secs(30))).await?;
    let held = pool.acquire().await?;
    let mut tasks = Vec::new();
    for _ in 0..n {
        let pool = pool.clone();
        tasks.push(tokio::spawn(async move {
            let result = pool.acquire().await.map(drop);
            (result, Instant::now())
        }));
    }
    Ok((pool, held, tasks))
}

/// `close` wakes the tasks waiting for a connection at once: they get [`Error::PoolClosed`]
/// well under a second later, not when their acquire timeout ends.
///
/// # Errors
///
/// Any unexpected query error.
pub async fn close_wakes_waiters(ctx: &Ctx) -> Result<()> {
    let (pool, held, tasks) = waiters(ctx, 3).await?;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(pool.stats().waiting, 3, "{:?}", pool.stats());
    let closing = Instant::now();
    let close = {
        let pool = pool.clone();
        tokio::spawn(async move { pool.close().await })
    };
    for task in tasks {
        let (result, at) = task.await.expect("waiter task");
        crate::assert_err!(result, Error::PoolClosed);
        let after = at.duration_since(closing);
        assert!(
            after < Duration::from_millis(500),
            "a waiter learned of the close {after:?} later"
        );
    }
    drop(held);
    close.await.expect("close task");
    assert_eq!(pool.stats().waiting, 0);
    Ok(())
}

/// `PoolStats::waiting` counts the tasks waiting now: a cancelled acquire stops counting, so
/// after ten of them nobody is waiting and the health check does not report waiters.
///
/// # Errors
///
/// Any unexpected query error.
pub async fn waiting_counts_only_waiters(ctx: &Ctx) -> Result<()> {
    let (pool, held, tasks) = waiters(ctx, 2).await?;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(pool.stats().waiting, 2, "{:?}", pool.stats());
    for task in &tasks {
        task.abort();
    }
    for _ in 0..10 {
        let cut = tokio::time::timeout(Duration::from_millis(5), pool.acquire()).await;
        assert!(cut.is_err(), "the pool had no connection to give");
    }
    for task in tasks {
        let _ = task.await;
    }
    assert_eq!(pool.stats().waiting, 0, "{:?}", pool.stats());
    drop(held);
    let db = Database::new(pool.clone(), Some(&ctx.schema))?;
    let report = db.health_check().await;
    assert_eq!(report.pool.waiting, 0, "{report:?}");
    assert!(
        !report
            .reasons
            .iter()
            .any(|r| r.contains("waiting for a connection")),
        "health check reports waiters: {:?}",
        report.reasons
    );
    pool.close().await;
    Ok(())
}

/// `connections_created - connections_closed` is the number of open connections, from the first
/// connection on, also after connections were discarded.
///
/// # Errors
///
/// Any unexpected query error.
pub async fn pool_counters_add_up(ctx: &Ctx) -> Result<()> {
    let config = ctx.config_with(|b| b.max_connections(3).min_connections(1))?;
    let pool = ctx.connect(config).await?;
    let adds_up = |pool: &SharedPool| {
        let s = pool.stats();
        (
            s.connections_created.checked_sub(s.connections_closed) == Some(u64::from(s.size)),
            s,
        )
    };
    let mut last = adds_up(&pool);
    for _ in 0..100 {
        if last.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        last = adds_up(&pool);
    }
    assert!(last.0, "fresh pool: created - closed != size: {:?}", last.1);
    let held: Vec<_> = futures_util::future::try_join_all((0..3).map(|_| pool.acquire())).await?;
    let mut held = held.into_iter();
    let mut discarded = held.next().expect("three connections");
    discarded.discard();
    drop(discarded);
    drop(held);
    let mut last = adds_up(&pool);
    for _ in 0..100 {
        if last.0 && last.1.in_use == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        last = adds_up(&pool);
    }
    assert!(
        last.0,
        "after a discard: created - closed != size: {:?}",
        last.1
    );
    assert!(last.1.connections_created >= 3, "{:?}", last.1);
    assert!(last.1.connections_closed >= 1, "{:?}", last.1);
    pool.close().await;
    Ok(())
}

/// The connect timeout bounds a whole connect attempt, as libpq's does: against a server that
/// accepts the TCP connection and never answers, `connect` gives up after the configured
/// attempts instead of hanging.
///
/// # Errors
///
/// Any unexpected error.
pub async fn connect_timeout_bounds_the_handshake(ctx: &Ctx) -> Result<()> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| Error::test_setup("test listener", format!("cannot listen: {e}")))?;
    let port = listener
        .local_addr()
        .map_err(|e| Error::test_setup("test listener", e.to_string()))?
        .port();
    // Accepts and holds every connection without a byte of answer.
    let silent = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let retry = RetryPolicy::new(2, Duration::from_millis(10), 2.0, Duration::from_secs(1));
    let config = ctx.config_with(|b| {
        b.host("127.0.0.1")
            .port(port)
            .connect_timeout(Duration::from_millis(700))
            .retry(retry)
    })?;
    let start = Instant::now();
    let outcome = tokio::time::timeout(Duration::from_secs(10), ctx.connect(config)).await;
    let took = start.elapsed();
    silent.abort();
    let result = outcome.unwrap_or_else(|_| panic!("connect still hanging after {took:?}"));
    let err = crate::assert_err!(result, Error::Connect { .. });
    assert!(err.to_string().contains("2 attempt"), "{err}");
    assert!(took < Duration::from_secs(4), "took {took:?}");
    Ok(())
}
