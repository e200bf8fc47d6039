//! Transactions: guard and closure forms, savepoints to any depth, and rollback of dropped,
//! cancelled, panicked and failed transactions with the connection returned clean.

use std::time::Duration;

use pgdbm::prelude::*;
use pgdbm::{Database, Error, Result};

use super::Ctx;
use crate::support::one_connection_pool;

async fn setup(ctx: &Ctx) -> Result<()> {
    ctx.db
        .batch_execute("CREATE TABLE {{tables.t}} (id int PRIMARY KEY)")
        .await
}

async fn ids(db: &Database) -> Result<Vec<i32>> {
    db.fetch_all("SELECT id FROM {{tables.t}} ORDER BY id", &[])
        .await?
        .iter()
        .map(|r| r.get::<i32>(0))
        .collect()
}

/// A handle on a one-connection pool, so that "the connection returned clean" can be checked.
async fn single_connection(ctx: &Ctx) -> Result<Database> {
    let pool = one_connection_pool(ctx, |b| b.acquire_timeout(Duration::from_secs(5))).await?;
    Database::owning(pool, Some(&ctx.schema))
}

/// The one connection of `db` is not inside a transaction.
async fn assert_clean(db: &Database) -> Result<()> {
    // Outside a transaction block, every statement gets a fresh transaction, so two
    // consecutive statements see different transaction start times.
    let a: String = db
        .fetch_value("SELECT transaction_timestamp()::text", &[])
        .await?;
    tokio::time::sleep(Duration::from_millis(2)).await;
    let b: String = db
        .fetch_value("SELECT transaction_timestamp()::text", &[])
        .await?;
    assert_ne!(a, b, "the pooled connection is still inside a transaction");
    Ok(())
}

/// Guard form: commit makes work visible, rollback discards it.
///
/// # Errors
///
/// Any unexpected query error.
pub async fn transaction_commit_and_rollback(ctx: &Ctx) -> Result<()> {
    setup(ctx).await?;
    let tx = ctx.db.begin().await?;
    assert_eq!(tx.depth(), 0);
    tx.execute("INSERT INTO {{tables.t}} VALUES (1)", &[])
        .await?;
    assert!(
        ids(&ctx.db).await?.is_empty(),
        "uncommitted work is invisible to others"
    );
    tx.commit().await?;
    let tx = ctx.db.begin().await?;
    tx.execute("INSERT INTO {{tables.t}} VALUES (2)", &[])
        .await?;
    tx.rollback().await?;
    assert_eq!(ids(&ctx.db).await?, vec![1]);
    Ok(())
}

/// Closure form: `Ok` commits, `Err` rolls back and returns the error; a user error type works.
///
/// # Errors
///
/// Any unexpected query error.
pub async fn transaction_closure(ctx: &Ctx) -> Result<()> {
    setup(ctx).await?;
    let v = ctx
        .db
        .transaction(|tx| async move {
            tx.execute("INSERT INTO {{tables.t}} VALUES (1)", &[])
                .await?;
            Ok::<_, Error>(42)
        })
        .await?;
    assert_eq!(v, 42);

    #[derive(Debug)]
    enum AppError {
        Db(Error),
        Rule,
    }
    impl From<Error> for AppError {
        fn from(e: Error) -> Self {
            AppError::Db(e)
        }
    }
    let r: std::result::Result<(), AppError> = ctx
        .db
        .transaction(|tx| async move {
            tx.execute("INSERT INTO {{tables.t}} VALUES (2)", &[])
                .await?;
            Err(AppError::Rule)
        })
        .await;
    assert!(matches!(r, Err(AppError::Rule)));
    let r: std::result::Result<(), AppError> = ctx
        .db
        .transaction(|tx| async move {
            tx.execute("INSERT INTO {{tables.t}} VALUES (3)", &[])
                .await?;
            tx.execute("INSERT INTO {{tables.t}} VALUES (1)", &[])
                .await?; // duplicate
            Ok(())
        })
        .await;
    assert!(
        matches!(r, Err(AppError::Db(ref e)) if e.is_unique_violation()),
        "{r:?}"
    );
    assert_eq!(ids(&ctx.db).await?, vec![1]);
    Ok(())
}

/// Savepoints nest to any depth; rolling back a level undoes only its work (and its children's);
/// releasing an outer level finishes inner ones.
///
/// # Errors
///
/// Any unexpected query error.
pub async fn nested_savepoints(ctx: &Ctx) -> Result<()> {
    setup(ctx).await?;
    let tx = ctx.db.begin().await?;
    let mut levels = vec![tx.clone()];
    for depth in 1..=6i32 {
        let sp = levels.last().expect("non-empty").begin().await?;
        assert_eq!(sp.depth(), depth as u32);
        sp.execute("INSERT INTO {{tables.t}} VALUES ($1)", params![depth])
            .await?;
        levels.push(sp);
    }
    // Roll back depth 4 (undoes 4, 5, 6); 5 and 6 are finished with it.
    let sp5 = levels[5].clone();
    levels[4].clone().rollback().await?;
    crate::assert_err!(
        sp5.execute("INSERT INTO {{tables.t}} VALUES (50)", &[])
            .await,
        Error::Transaction(_)
    );
    levels[3].clone().commit().await?;
    // Closure form inside: Err rolls back just that savepoint.
    let r = tx
        .transaction(|sp| async move {
            sp.execute("INSERT INTO {{tables.t}} VALUES (100)", &[])
                .await?;
            Err::<(), _>(Error::Transaction("rule".into()))
        })
        .await;
    assert!(r.is_err());
    tx.transaction(|sp| async move {
        sp.execute("INSERT INTO {{tables.t}} VALUES (200)", &[])
            .await?;
        sp.transaction(|inner| async move {
            inner
                .execute("INSERT INTO {{tables.t}} VALUES (300)", &[])
                .await?;
            Ok::<_, Error>(())
        })
        .await
    })
    .await?;
    // A failed statement inside a savepoint, rolled back, leaves the transaction usable.
    let sp = tx.begin().await?;
    assert!(
        sp.execute("INSERT INTO {{tables.t}} VALUES (1)", &[])
            .await
            .is_err()
    );
    sp.rollback().await?;
    tx.commit().await?;
    assert_eq!(ids(&ctx.db).await?, vec![1, 2, 3, 200, 300]);
    Ok(())
}

/// A transaction dropped without commit (an early `?`) is rolled back and its connection returns
/// to the pool outside any transaction; a dropped savepoint is rolled back before the parent's
/// next statement.
///
/// # Errors
///
/// Any unexpected query error.
pub async fn dropped_transaction_rolls_back(ctx: &Ctx) -> Result<()> {
    setup(ctx).await?;
    let db = single_connection(ctx).await?;
    {
        let tx = db.begin().await?;
        tx.execute("INSERT INTO {{tables.t}} VALUES (1)", &[])
            .await?;
    }
    assert!(ids(&db).await?.is_empty());
    assert_clean(&db).await?;

    let tx = db.begin().await?;
    tx.execute("INSERT INTO {{tables.t}} VALUES (2)", &[])
        .await?;
    {
        let sp = tx.begin().await?;
        sp.execute("INSERT INTO {{tables.t}} VALUES (3)", &[])
            .await?;
    }
    tx.execute("INSERT INTO {{tables.t}} VALUES (4)", &[])
        .await?;
    tx.commit().await?;
    assert_eq!(ids(&db).await?, vec![2, 4]);
    assert_clean(&db).await?;
    db.close().await;
    Ok(())
}

/// A transaction whose future is cancelled mid-statement is rolled back; the pool stays usable.
///
/// # Errors
///
/// Any unexpected query error.
pub async fn cancelled_transaction_rolls_back(ctx: &Ctx) -> Result<()> {
    setup(ctx).await?;
    let db = single_connection(ctx).await?;
    let work = db.transaction(|tx| async move {
        tx.execute("INSERT INTO {{tables.t}} VALUES (1)", &[])
            .await?;
        tx.execute("SELECT pg_sleep(2)", &[]).await?;
        Ok::<_, Error>(())
    });
    let timed_out = tokio::time::timeout(Duration::from_millis(300), work).await;
    assert!(
        timed_out.is_err(),
        "the transaction should have been cancelled"
    );
    // The rollback runs in the background once the cancelled statement finishes.
    assert!(ids(&db).await?.is_empty());
    assert_clean(&db).await?;
    db.close().await;
    Ok(())
}

/// A panic inside a transaction closure rolls back, propagates, and leaves the connection clean.
///
/// # Errors
///
/// Any unexpected query error.
pub async fn panic_in_transaction_rolls_back(ctx: &Ctx) -> Result<()> {
    setup(ctx).await?;
    let db = single_connection(ctx).await?;
    let db2 = db.clone();
    let joined = tokio::spawn(async move {
        db2.transaction(|tx| async move {
            tx.execute("INSERT INTO {{tables.t}} VALUES (1)", &[])
                .await?;
            if tx.depth() == 0 {
                panic!("boom inside a transaction");
            }
            Ok::<_, Error>(())
        })
        .await
    })
    .await;
    assert!(joined.expect_err("the panic propagates").is_panic());
    assert!(ids(&db).await?.is_empty());
    assert_clean(&db).await?;
    db.close().await;
    Ok(())
}

/// Committing a transaction in which a statement failed is an error and rolls back.
///
/// # Errors
///
/// Any unexpected query error.
pub async fn failed_statement_aborts_commit(ctx: &Ctx) -> Result<()> {
    setup(ctx).await?;
    let tx = ctx.db.begin().await?;
    tx.execute("INSERT INTO {{tables.t}} VALUES (1)", &[])
        .await?;
    assert!(tx.execute("SELECT 1/0", &[]).await.is_err());
    let err = crate::assert_err!(tx.commit().await, Error::Transaction(_));
    assert!(err.to_string().contains("rolled back"), "{err}");
    assert!(ids(&ctx.db).await?.is_empty());
    Ok(())
}

/// Using a finished transaction (through a clone) is [`Error::Transaction`].
///
/// # Errors
///
/// Any unexpected query error.
pub async fn finished_transaction_is_an_error(ctx: &Ctx) -> Result<()> {
    let tx = ctx.db.begin().await?;
    let clone = tx.clone();
    tx.commit().await?;
    crate::assert_err!(clone.execute("SELECT 1", &[]).await, Error::Transaction(_));
    crate::assert_err!(clone.begin().await, Error::Transaction(_));
    crate::assert_err!(clone.clone().commit().await, Error::Transaction(_));
    Ok(())
}
