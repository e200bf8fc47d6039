//! Modules in one transaction: handles from [`Transaction::with_schema_of`] and
//! [`Database::in_transaction`] run each module's SQL with its own schema on the transaction's
//! connection, commit and roll back together, nest savepoints across modules, and leave nothing
//! open when dropped mid-statement.

use std::time::Duration;

use pgdbm::prelude::*;
use pgdbm::{Database, Error, MonitorOptions, Result, Transaction};

use super::Ctx;
use crate::cancellation::{Probe, cancellation_tables, poll_then_drop, sweep};

/// A module function as a library writes it: against any executor, in its own schema's terms.
async fn record(db: &dyn Executor, id: i64) -> Result<u64> {
    db.execute(
        "INSERT INTO {{tables.items}} (id, note) VALUES ($1, $2)",
        params![id, format!("{id}")],
    )
    .await
}

/// The ids in `db`'s `items`, seen from outside any transaction.
async fn items(db: &Database) -> Result<Vec<i64>> {
    db.fetch_all("SELECT id FROM {{tables.items}} ORDER BY id", &[])
        .await?
        .iter()
        .map(|r| r.get::<i64>(0))
        .collect()
}

/// The same table, `items`, in each module's schema; only the third refuses ids above 100, so a
/// write of an id above 100 through it fails the way a module's own constraint would.
async fn create_items(modules: &[&Database]) -> Result<()> {
    for (i, db) in modules.iter().enumerate() {
        let check = if i == 2 { " CHECK (id <= 100)" } else { "" };
        db.batch_execute(&format!(
            "CREATE TABLE {{{{tables.items}}}} (id bigint PRIMARY KEY{check}, note text NOT NULL)"
        ))
        .await?;
    }
    Ok(())
}

/// A transaction begun on one module's handle writes through three modules in three schemas —
/// by `with_schema_of`, by `in_transaction`, in the closure and the guard form — and commits all
/// three rows or none: nothing is visible before the commit, an error in the third module leaves
/// none of the three, and each row lands in its own module's schema.
///
/// # Errors
///
/// Any unexpected query error.
pub async fn transaction_across_three_modules_commits_all_or_nothing(ctx: &Ctx) -> Result<()> {
    let a = ctx.db.clone();
    let (b, _b) = ctx.other_schema("b").await?;
    let (c, _c) = ctx.other_schema("c").await?;
    create_items(&[&a, &b, &c]).await?;

    // Guard form, committed with the handle that began it.
    let tx = a.begin().await?;
    let in_b = tx.with_schema_of(&b);
    let in_c = c.in_transaction(&tx);
    assert_eq!(tx.schema(), a.schema());
    assert_eq!(in_b.schema(), b.schema());
    assert_eq!(in_c.schema(), c.schema());
    assert_eq!((in_b.depth(), in_c.depth()), (0, 0));
    record(&tx, 1).await?;
    record(&in_b, 2).await?;
    record(&in_c, 3).await?;
    for db in [&a, &b, &c] {
        assert!(
            items(db).await?.is_empty(),
            "uncommitted work of a cross-module transaction is visible in {:?}",
            db.schema()
        );
    }
    // The three handles share one transaction.
    let mut txids = Vec::new();
    for h in [&tx, &in_b, &in_c] {
        txids.push(h.fetch_value::<i64>("SELECT txid_current()", &[]).await?);
    }
    assert!(txids.windows(2).all(|w| w[0] == w[1]), "{txids:?}");
    drop((in_b, in_c)); // dropping a cross-module handle finishes nothing
    tx.commit().await?;
    assert_eq!(items(&a).await?, vec![1]);
    assert_eq!(items(&b).await?, vec![2]);
    assert_eq!(items(&c).await?, vec![3]);

    // Closure form: an error in the third module rolls back the first two.
    let failed = a
        .transaction(|tx| {
            let (b, c) = (b.clone(), c.clone());
            async move {
                record(&tx, 11).await?;
                record(&b.in_transaction(&tx), 12).await?;
                record(&tx.with_schema_of(&c), 1_013).await?; // violates c's CHECK
                Ok::<_, Error>(())
            }
        })
        .await;
    let err = failed.expect_err("the third module's insert must fail");
    assert!(err.is_check_violation(), "{err:?}");
    assert_eq!(
        items(&a).await?,
        vec![1],
        "module a kept a row of a failed transaction"
    );
    assert_eq!(
        items(&b).await?,
        vec![2],
        "module b kept a row of a failed transaction"
    );
    assert_eq!(items(&c).await?, vec![3]);

    // Guard form: after the failure the level cannot commit through any handle.
    let tx = b.begin().await?;
    record(&tx, 21).await?;
    record(&tx.with_schema_of(&a), 22).await?;
    assert!(record(&tx.with_schema_of(&c), 1_023).await.is_err());
    let outcome = tx.commit().await;
    assert!(
        matches!(outcome, Err(Error::Transaction(_))),
        "a transaction with a failed statement in another module committed: {outcome:?}"
    );
    assert_eq!(items(&a).await?, vec![1]);
    assert_eq!(items(&b).await?, vec![2]);

    // Closure form, committed: all three.
    a.transaction(|tx| {
        let (b, c) = (b.clone(), c.clone());
        async move {
            record(&tx, 31).await?;
            record(&b.in_transaction(&tx), 32).await?;
            record(&tx.with_schema_of(&c), 33).await?;
            Ok::<_, Error>(())
        }
    })
    .await?;
    assert_eq!(items(&a).await?, vec![1, 31]);
    assert_eq!(items(&b).await?, vec![2, 32]);
    assert_eq!(items(&c).await?, vec![3, 33]);
    Ok(())
}

/// Committing or rolling back through a cross-module handle finishes the level for every handle
/// on it, and a cross-module handle records on its own module's monitor, under its schema.
///
/// # Errors
///
/// Any unexpected query error.
pub async fn cross_module_handle_finishes_the_shared_level(ctx: &Ctx) -> Result<()> {
    let a = ctx.db.clone();
    let (b, _b) = ctx.other_schema("b").await?;
    let (c, _c) = ctx.other_schema("c").await?;
    create_items(&[&a, &b, &c]).await?;

    let tx = a.begin().await?;
    record(&tx, 1).await?;
    let in_b = tx.with_schema_of(&b);
    record(&in_b, 2).await?;
    in_b.commit().await?;
    assert_eq!(items(&a).await?, vec![1]);
    assert_eq!(items(&b).await?, vec![2]);
    let after = record(&tx, 3).await;
    assert!(
        matches!(after, Err(Error::Transaction(_))),
        "the level is still open after a commit through another handle: {after:?}"
    );
    assert!(matches!(tx.commit().await, Err(Error::Transaction(_))));

    let tx = a.begin().await?;
    record(&tx, 4).await?;
    record(&c.in_transaction(&tx), 5).await?;
    c.in_transaction(&tx).rollback().await?;
    assert!(matches!(record(&tx, 6).await, Err(Error::Transaction(_))));
    assert_eq!(items(&a).await?, vec![1]);
    assert!(items(&c).await?.is_empty());

    // The monitor and schema of the statement's module, not those of the transaction's.
    let watched_b = b.monitored(MonitorOptions::default());
    let watched_a = a.monitored(MonitorOptions::default());
    let tx = watched_a.begin().await?;
    record(&tx.with_schema_of(&watched_b), 7).await?;
    tx.rollback().await?;
    let b_history = watched_b.monitor().expect("monitored").history();
    assert_eq!(b_history.len(), 1, "{b_history:?}");
    assert_eq!(b_history[0].schema.as_deref(), b.schema());
    // a's monitor has only the transaction control a's handle sent (BEGIN, ROLLBACK).
    let a_history = watched_a.monitor().expect("monitored").history();
    assert!(
        a_history
            .iter()
            .all(|r| r.operation == pgdbm::monitor::Operation::TransactionControl),
        "module b's statement was recorded on module a's monitor: {a_history:?}"
    );
    assert_eq!(a_history.len(), 2, "{a_history:?}");
    Ok(())
}

/// Savepoints nest across modules: a savepoint begun on a cross-module handle expands with that
/// module's schema, a savepoint of a third module nests inside it, and each releases, rolls back,
/// or is rolled back when dropped unfinished exactly as a savepoint of one module does; a failed
/// statement in another module's savepoint is undone by rolling that savepoint back, after which
/// the whole transaction still commits.
///
/// # Errors
///
/// Any unexpected query error.
pub async fn savepoints_nest_across_modules(ctx: &Ctx) -> Result<()> {
    let a = ctx.db.clone();
    let (b, _b) = ctx.other_schema("b").await?;
    let (c, _c) = ctx.other_schema("c").await?;
    create_items(&[&a, &b, &c]).await?;

    let tx = a.begin().await?;
    record(&tx, 1).await?;
    let sp_b = tx.with_schema_of(&b).begin().await?;
    assert_eq!((sp_b.depth(), sp_b.schema()), (1, b.schema()));
    record(&sp_b, 2).await?;
    let sp_c = sp_b.with_schema_of(&c).begin().await?;
    assert_eq!((sp_c.depth(), sp_c.schema()), (2, c.schema()));
    record(&sp_c, 3).await?;
    // A savepoint of module a inside module c's.
    let sp_a = sp_c.with_schema_of(&a).begin().await?;
    assert_eq!((sp_a.depth(), sp_a.schema()), (3, a.schema()));
    record(&sp_a, 4).await?;
    sp_a.rollback().await?; // undoes 4 only
    sp_c.commit().await?; // releases 3 into b's savepoint
    // Module c's savepoint, dropped unfinished: rolled back before the next statement.
    let abandoned = tx.with_schema_of(&c).begin().await?;
    record(&abandoned, 5).await?;
    drop(abandoned);
    record(&sp_b, 6).await?;
    // A failed statement in module c's savepoint, undone by rolling it back.
    let failing = sp_b.with_schema_of(&c).begin().await?;
    assert!(record(&failing, 1_007).await.is_err());
    failing.rollback().await?;
    sp_b.commit().await?;
    // The closure form on a cross-module handle.
    let nested = tx
        .with_schema_of(&c)
        .transaction(|sp| async move {
            record(&sp, 8).await?;
            record(&sp, 1_009).await // fails: the savepoint is rolled back, 8 with it
        })
        .await;
    assert!(nested.is_err());
    tx.commit().await?;
    assert_eq!(items(&a).await?, vec![1]);
    assert_eq!(items(&b).await?, vec![2, 6]);
    assert_eq!(items(&c).await?, vec![3]);
    Ok(())
}

/// A cross-module handle, or a savepoint begun on one, dropped at every await of a statement (and
/// of its savepoint's `SAVEPOINT`/`RELEASE`): no session is left idle in transaction, nothing
/// acknowledged is lost, and a transaction whose cross-module statement was cut cannot commit.
///
/// # Errors
///
/// Any unexpected query error.
pub async fn cancelled_cross_module_statement_leaks_nothing(ctx: &Ctx) -> Result<()> {
    cancellation_tables(ctx).await?;
    let probe = Probe::open(ctx, 1).await?;
    let (other, _other) = ctx.other_schema("other").await?;
    other
        .batch_execute("CREATE TABLE {{tables.t}} (id bigint PRIMARY KEY)")
        .await?;
    // Module "other" on the probe's one-connection pool.
    let other = Database::new(probe.db.pool().clone(), other.schema())?;
    let in_other = |id: i64| {
        let other = other.clone();
        async move {
            other
                .fetch_value::<bool>(
                    "SELECT EXISTS (SELECT 1 FROM {{tables.t}} WHERE id = $1)",
                    params![id],
                )
                .await
        }
    };
    let mut ids = 5_000;

    // The whole unit of work cut anywhere: BEGIN, the cross-module savepoint, its statement,
    // RELEASE, COMMIT.
    let db = probe.db.clone();
    sweep(ctx, "cross-module savepoint", &probe, &mut ids, |id| {
        let (db, other) = (db.clone(), other.clone());
        async move {
            let tx = db.begin().await?;
            tx.execute("INSERT INTO {{tables.t}} (id) VALUES ($1)", params![id])
                .await?;
            let sp = other.in_transaction(&tx).begin().await?;
            sp.execute("INSERT INTO {{tables.t}} (id) VALUES ($1)", params![id])
                .await?;
            sp.commit().await?;
            tx.commit().await
        }
    })
    .await?;

    // Only the cross-module statement cut: the transaction must refuse to commit.
    for polls in 1..=40 {
        ids += 1;
        let id = ids;
        let tx = probe.db.begin().await?;
        let cross: Transaction = tx.with_schema_of(&other);
        let params = params![id];
        let insert = cross.execute("INSERT INTO {{tables.t}} (id) VALUES ($1)", params);
        let finished = poll_then_drop(insert, polls, Duration::from_millis(2)).await;
        drop(cross);
        let what = format!("cross-module insert cut after {polls} poll(s)");
        let outcome = tx.commit().await;
        let done = finished.is_some();
        match finished {
            Some(result) => {
                result?;
                outcome?;
                assert!(in_other(id).await?, "{what}: committed row missing");
            }
            None => {
                assert!(
                    matches!(outcome, Err(Error::Transaction(_))),
                    "{what}: a transaction with a cancelled statement committed: {outcome:?}"
                );
                assert!(
                    !in_other(id).await?,
                    "{what}: half a transaction is visible"
                );
            }
        }
        ids += 1;
        probe.assert_clean(ctx, &what, ids).await?;
        if done {
            break;
        }
    }

    // Every handle dropped mid-statement, the original first: the last one to go rolls back.
    for polls in 1..=40 {
        ids += 1;
        let id = ids;
        let tx = probe.db.begin().await?;
        let cross = other.in_transaction(&tx);
        drop(tx);
        let insert = async move {
            cross
                .execute("INSERT INTO {{tables.t}} (id) VALUES ($1)", params![id])
                .await
        };
        let finished = poll_then_drop(insert, polls, Duration::from_millis(2)).await;
        ids += 1;
        let what = format!("abandoned cross-module handle, cut after {polls} poll(s)");
        probe.assert_clean(ctx, &what, ids).await?;
        assert!(
            !in_other(id).await?,
            "{what}: an uncommitted row is visible"
        );
        if finished.is_some() {
            break;
        }
    }
    probe.db.close().await;
    Ok(())
}
