//! Pools losing their connections: backends terminated under the pool, and a database that
//! stops accepting connections (the acquire timeout names the connect error).

use std::time::{Duration, Instant};

use pgdbm::driver::VALIDATE_AFTER_IDLE;
use pgdbm::prelude::*;
use pgdbm::{Error, Result, RetryPolicy};

use crate::Ctx;
use crate::support::{
    app_pids, error_texts, one_connection_pool, open_connections, terminate_app, wait_until,
};

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
    open_connections(&pool, 3).await?;
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
    let pool = one_connection_pool(ctx, |b| {
        b.database(name.clone())
            .acquire_timeout(acquire_timeout)
            .retry(RetryPolicy::no_retry())
    })
    .await?;
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
