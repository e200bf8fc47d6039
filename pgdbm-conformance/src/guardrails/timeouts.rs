//! Server-side timeouts: `statement_timeout`, `idle_in_transaction_session_timeout` and
//! `lock_timeout` give typed errors, and the pool recovers from each.

use std::time::{Duration, Instant};

use pgdbm::prelude::*;
use pgdbm::{Error, ErrorKind, Result};

use crate::Ctx;
use crate::support::{backend_pid, one_connection_pool, wait_until};

/// A statement running past `statement_timeout` is canceled by the server with a typed error
/// (`57014`, [`Error::is_query_canceled`]), not a connection error; the same pooled connection
/// (the pool has one) runs the next statement, also after a canceled statement in a
/// transaction that is then rolled back.
///
/// # Errors
///
/// Any unexpected query error.
pub async fn statement_timeout_cancels(ctx: &Ctx) -> Result<()> {
    let db = Database::owning(
        one_connection_pool(ctx, |b| b.statement_timeout(Duration::from_millis(200))).await?,
        None,
    )?;
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
    let db = Database::owning(
        one_connection_pool(ctx, |b| {
            b.idle_in_transaction_session_timeout(Duration::from_millis(300))
                .acquire_timeout(Duration::from_secs(5))
        })
        .await?,
        None,
    )?;
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
