//! Pools: server settings at connect, stats, exhaustion, closing, and connect errors.

use std::time::{Duration, Instant};

use crate::prelude::*;
use crate::{Database, Error, Result, RetryPolicy};

use super::Ctx;

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

/// With every connection checked out, an acquire fails with a typed timeout after the acquire
/// timeout, not a hang; the timeout is counted.
///
/// # Errors
///
/// Any unexpected query error.
pub async fn pool_exhaustion_times_out(ctx: &Ctx) -> Result<()> {
    let config = ctx.config_with(|b| {
        b.max_connections(1)
            .min_connections(1)
            .acquire_timeout(Duration::from_millis(300))
    })?;
    let pool = ctx.connect(config).await?;
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
