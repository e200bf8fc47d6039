//! The migration lock and `CREATE INDEX CONCURRENTLY`: runs waiting for the lock hold no
//! snapshot (a CIC in the run holding it waits for every snapshot, so a waiter blocked in
//! `pg_advisory_lock` deadlocks with it), the wait stays bounded as before, and a failed CIC
//! leaves no INVALID index that would block the next run.

use std::time::{Duration, Instant};

use pgdbm::prelude::*;
use pgdbm::{Database, Error, Result, SharedPool};

use super::Ctx;
use super::migrations::{drop_schema, ledger_count, more_handles, source, sub};
use crate::support::{lock_is_free, one_connection_pool};

/// A module name no other check uses (advisory lock keys are database-wide).
fn unique(ctx: &Ctx, name: &str) -> String {
    format!("{}_{name}", ctx.schema)
}

const LOCK: &str = "SELECT pg_advisory_lock(hashtext('pgdbm_migration_' || $1))";
const UNLOCK: &str = "SELECT pg_advisory_unlock(hashtext('pgdbm_migration_' || $1))";

/// An application name for this check's extra pool, as the server keeps it (63 bytes at most).
fn app_name(ctx: &Ctx, what: &str) -> String {
    let mut name = format!("{what}_{}", ctx.schema);
    while name.len() > 63 {
        name.remove(0);
    }
    name
}

/// A one-connection pool on the test server with `application_name` `app` and changed
/// timeouts.
async fn waiter_pool(
    ctx: &Ctx,
    app: &str,
    lock_timeout: Option<Duration>,
    statement_timeout: Option<Duration>,
) -> Result<SharedPool> {
    one_connection_pool(ctx, |b| {
        b.application_name(app)
            .lock_timeout(lock_timeout)
            .statement_timeout(statement_timeout)
    })
    .await
}

/// The indexes of table `table` in `db`'s schema that are (`valid`) or are not valid, by name.
async fn indexes(db: &Database, table: &str, valid: bool) -> Result<Vec<String>> {
    let qualified = format!("\"{}\".\"{table}\"", db.schema().unwrap_or("public"));
    let mut names = db
        .fetch_all(
            "SELECT c.relname::text FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid \
             WHERE i.indrelid = to_regclass($1) AND i.indisvalid = $2",
            params![qualified, valid],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect::<Result<Vec<String>>>()?;
    names.sort();
    Ok(names)
}

async fn invalid_indexes(db: &Database, table: &str) -> Result<Vec<String>> {
    indexes(db, table, false).await
}

async fn valid_indexes(db: &Database, table: &str) -> Result<Vec<String>> {
    indexes(db, table, true).await
}

/// 6 runs (4 on pools of their own, standing in for 4 processes, and 2 on the shared pool) of a
/// module whose second file is a `-- pgdbm:no-transaction` `CREATE INDEX CONCURRENTLY`, started
/// together: the first file keeps the lock a moment, so the others are already waiting when the
/// index is built. All runs succeed, each file is applied once and the indexes are valid.
/// (Runs blocked in `pg_advisory_lock` hold a snapshot the CIC waits for: `40P01`.)
///
/// # Errors
///
/// Any unexpected error.
pub async fn migrate_concurrent_runs_with_concurrent_index(ctx: &Ctx) -> Result<()> {
    // `CREATE INDEX CONCURRENTLY` waits for every older transaction in its database: run where
    // no other check's transactions are.
    let ctx = &ctx.isolated().await?;
    let db = sub(ctx, "cic")?;
    let name = unique(ctx, "cic");
    let src = source(&[
        (
            "001_t.sql",
            "CREATE TABLE {{tables.t}} (id int PRIMARY KEY, v text NOT NULL);\n\
             INSERT INTO {{tables.t}} SELECT g, md5(g::text) FROM generate_series(1, 5000) g;\n\
             SELECT pg_sleep(0.4);",
        ),
        (
            "002_index.sql",
            "-- pgdbm:no-transaction\n\
             CREATE INDEX CONCURRENTLY t_v_idx ON {{tables.t}} (v);\n\
             CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS \"T by id\" ON {{tables.t}} (id, v);",
        ),
        (
            "003_more.sql",
            "INSERT INTO {{tables.t}} VALUES (0, 'zero');",
        ),
    ])?;
    let mut handles = vec![db.clone(), db.clone()];
    let pools = more_handles(ctx, &db, &mut handles).await?;
    let start = std::sync::Arc::new(tokio::sync::Barrier::new(handles.len()));
    let tasks: Vec<_> = handles
        .into_iter()
        .map(|h| {
            let src = src.clone();
            let name = name.clone();
            let start = start.clone();
            tokio::spawn(async move {
                start.wait().await;
                h.migrator().apply(&name, &src).await
            })
        })
        .collect();
    let mut applied = 0;
    let mut failures = Vec::new();
    for task in tasks {
        match task.await.expect("task panicked") {
            Ok(report) => applied += report.applied.len(),
            Err(e) => failures.push(format!("{e} ({:?})", e.code())),
        }
    }
    assert!(failures.is_empty(), "runs failed: {failures:#?}");
    assert_eq!(applied, 3, "each file applied exactly once");
    assert_eq!(ledger_count(&db, &name).await?, 3);
    assert!(invalid_indexes(&db, "t").await?.is_empty());
    assert_eq!(
        valid_indexes(&db, "t").await?,
        ["T by id", "t_pkey", "t_v_idx"]
    );
    for pool in pools {
        pool.close().await;
    }
    assert!(lock_is_free(ctx, &name).await?);
    drop_schema(&db).await
}

/// A `CREATE UNIQUE INDEX CONCURRENTLY` over duplicate rows fails (23505) and the INVALID index
/// it leaves is dropped (the error says so), so after the data is fixed the next run applies the
/// file. Without a name, the error names the invalid index left and how to drop it. A valid
/// index of the same name (of the same table or of another one) is never dropped.
///
/// # Errors
///
/// Any unexpected error.
pub async fn migrate_failed_concurrent_index_leaves_no_invalid_index(ctx: &Ctx) -> Result<()> {
    // `CREATE INDEX CONCURRENTLY` waits for every older transaction in its database: run where
    // no other check's transactions are.
    let ctx = &ctx.isolated().await?;
    let db = &ctx.db;
    let name = unique(ctx, "cicfail");
    let files = [
        (
            "001_t.sql",
            "CREATE TABLE {{tables.t}} (id int, v text);\n\
             INSERT INTO {{tables.t}} SELECT g, 'v' || (g % 50) FROM generate_series(1, 200) g;\n\
             CREATE TABLE {{tables.other}} (v text);\n\
             CREATE INDEX \"Taken Name\" ON {{tables.other}} (v);\n\
             CREATE INDEX t_id_idx ON {{tables.t}} (id);",
        ),
        (
            "002_unique.sql",
            "-- pgdbm:no-transaction\n\
             /* a comment; first */ create unique index concurrently if not exists \"T V\" \
             on only {{tables.t}} using btree (v);",
        ),
    ];
    let src = source(&files)?;
    let err = crate::assert_err!(
        db.migrator().apply(&name, &src).await,
        Error::Migration { .. }
    );
    assert_eq!(err.code(), Some("23505"), "{err}");
    let Error::Migration { file, message, .. } = &err else {
        unreachable!()
    };
    assert_eq!(file, "002_unique.sql");
    assert!(
        message.contains("dropped") && message.contains("\"T V\"") && message.contains("INVALID"),
        "{message}"
    );
    assert!(invalid_indexes(db, "t").await?.is_empty(), "{message}");
    assert_eq!(ledger_count(db, &name).await?, 1);
    // Fix the data: the next run applies the file.
    db.execute("UPDATE {{tables.t}} SET v = 'v' || id", &[])
        .await?;
    let report = db.migrator().apply(&name, &src).await?;
    assert_eq!(report.applied.len(), 1);
    assert_eq!(valid_indexes(db, "t").await?, ["T V", "t_id_idx"]);

    // No name: the error names the invalid index left (and it is left alone).
    db.execute("INSERT INTO {{tables.t}} VALUES (1, 'dup')", &[])
        .await?;
    let unnamed = source(&[
        files[0],
        files[1],
        (
            "003_unnamed.sql",
            "-- pgdbm:no-transaction\nCREATE UNIQUE INDEX CONCURRENTLY ON {{tables.t}} (v, id);\n\
             CREATE UNIQUE INDEX CONCURRENTLY ON {{tables.t}} (id);",
        ),
    ])?;
    let err = crate::assert_err!(
        db.migrator().apply(&name, &unnamed).await,
        Error::Migration { .. }
    );
    assert_eq!(err.code(), Some("23505"), "{err}");
    let left = invalid_indexes(db, "t").await?;
    assert_eq!(left.len(), 1, "{left:?}");
    let Error::Migration { message, .. } = &err else {
        unreachable!()
    };
    let drop_sql = format!(
        "DROP INDEX CONCURRENTLY IF EXISTS \"{}\".\"{}\"",
        ctx.schema, left[0]
    );
    assert!(message.contains(&drop_sql), "{message}");
    assert!(
        valid_indexes(db, "t")
            .await?
            .contains(&"t_v_id_idx".to_owned()),
        "the statement before it stays"
    );
    ctx.pool.batch_execute(&drop_sql).await?;

    // A valid index of that name is never dropped: of another table, or of this one.
    for (i, sql) in [
        "CREATE UNIQUE INDEX CONCURRENTLY \"Taken Name\" ON {{tables.t}} (v)",
        "CREATE INDEX CONCURRENTLY t_id_idx ON {{tables.t}} (id)",
    ]
    .into_iter()
    .enumerate()
    {
        let file = format!("00{}_taken.sql", i + 3);
        let text = format!("-- pgdbm:no-transaction\n{sql}");
        let taken = source(&[files[0], files[1], (&file, &text)])?;
        let err = crate::assert_err!(
            db.migrator().apply(&name, &taken).await,
            Error::Migration { .. }
        );
        assert_eq!(err.code(), Some("42P07"), "{err}");
        assert!(!err.to_string().contains("dropped"), "{err}");
    }
    assert_eq!(valid_indexes(db, "other").await?, ["Taken Name"]);
    assert_eq!(
        valid_indexes(db, "t").await?,
        ["T V", "t_id_idx", "t_v_id_idx"]
    );
    assert!(invalid_indexes(db, "t").await?.is_empty());
    assert!(lock_is_free(ctx, &name).await?);
    Ok(())
}

/// While another session holds the module's lock, a run waiting for it holds no snapshot (its
/// backend is not `active` in `pg_advisory_lock`, `backend_xmin` is mostly NULL) and is never
/// `idle in transaction`; it applies the module once the lock is released.
///
/// # Errors
///
/// Any unexpected error.
pub async fn migrate_lock_waiter_holds_no_snapshot(ctx: &Ctx) -> Result<()> {
    let name = unique(ctx, "snap");
    let holder = ctx.pool.acquire().await?;
    holder.execute(LOCK, params![name.as_str()]).await?;
    let app = app_name(ctx, "snap");
    let pool = waiter_pool(ctx, &app, Some(Duration::from_secs(5)), None).await?;
    let waiter = Database::new(pool.clone(), Some(&ctx.schema))?;
    let src = source(&[("001_t.sql", "CREATE TABLE {{tables.snap}} (id int);")])?;
    let run = {
        let name = name.clone();
        tokio::spawn(async move { waiter.migrator().apply(&name, &src).await })
    };
    let (mut seen, mut with_xmin, mut blocked) = (0, 0, 0);
    let mut states = Vec::new();
    for _ in 0..60 {
        tokio::time::sleep(Duration::from_millis(25)).await;
        let rows = ctx
            .pool
            .fetch_all(
                "SELECT backend_xmin IS NOT NULL, coalesce(state, ''), query FROM pg_stat_activity \
                 WHERE application_name = $1 AND datname = current_database() \
                 AND query LIKE '%advisory_lock(hashtext(''pgdbm_migration_''%'",
                params![app.as_str()],
            )
            .await?;
        for row in &rows {
            let (xmin, state, query): (bool, String, String) =
                (row.get(0)?, row.get(1)?, row.get(2)?);
            seen += 1;
            with_xmin += usize::from(xmin);
            if state != "idle" {
                states.push(state.clone());
            }
            if state == "active" && query.contains("pg_advisory_lock(") {
                blocked += 1;
            }
            assert_ne!(state, "idle in transaction", "{query}");
        }
    }
    assert!(!run.is_finished(), "the run waits while the lock is held");
    assert!(seen >= 30, "the waiter's backend was seen {seen} times");
    assert_eq!(blocked, 0, "waiting in pg_advisory_lock: {states:?}");
    assert!(
        with_xmin * 10 <= seen,
        "a snapshot in {with_xmin} of {seen} samples: {states:?}"
    );
    holder
        .fetch_optional(UNLOCK, params![name.as_str()])
        .await?;
    drop(holder);
    let report = tokio::time::timeout(Duration::from_secs(10), run)
        .await
        .expect("the waiter takes the released lock")
        .expect("task panicked")?;
    assert_eq!(report.applied.len(), 1);
    pool.close().await;
    assert!(lock_is_free(ctx, &name).await?);
    Ok(())
}

/// The wait for the lock is bounded as before: a `lock_timeout` alone does not end it (the run
/// goes on waiting and applies once the lock is free), a `statement_timeout` shorter than the
/// `lock_timeout` (or without one) ends it with `57014` after about that time. A run cancelled
/// while it waits leaves neither a lock nor a session `idle in transaction`.
///
/// # Errors
///
/// Any unexpected error.
pub async fn migrate_lock_wait_bounded_and_cancellable(ctx: &Ctx) -> Result<()> {
    let name = unique(ctx, "bound");
    let holder = ctx.pool.acquire().await?;
    holder.execute(LOCK, params![name.as_str()]).await?;
    let src = source(&[("001_t.sql", "CREATE TABLE {{tables.bound}} (id int);")])?;

    // statement_timeout, no lock_timeout: a typed 57014 after about 400 ms.
    let app = app_name(ctx, "bst");
    let pool = waiter_pool(ctx, &app, None, Some(Duration::from_millis(400))).await?;
    let waiter = Database::new(pool.clone(), Some(&ctx.schema))?;
    let started = Instant::now();
    let err = tokio::time::timeout(
        Duration::from_secs(20),
        waiter.migrator().apply(&name, &src),
    )
    .await
    .expect("the statement_timeout bounds the wait")
    .expect_err("the lock is held");
    let waited = started.elapsed();
    assert!(err.is_query_canceled(), "{err} ({err:?})");
    assert!(
        waited >= Duration::from_millis(350) && waited < Duration::from_secs(5),
        "{waited:?}"
    );
    // statement_timeout shorter than lock_timeout: the same.
    let pool2 = waiter_pool(
        ctx,
        &app_name(ctx, "bst2"),
        Some(Duration::from_secs(30)),
        Some(Duration::from_millis(300)),
    )
    .await?;
    let err = Database::new(pool2.clone(), Some(&ctx.schema))?
        .migrator()
        .apply(&name, &src)
        .await
        .expect_err("the lock is held");
    assert!(err.is_query_canceled(), "{err} ({err:?})");
    pool2.close().await;

    // lock_timeout shorter than the wait: the run keeps waiting, and is cancelled.
    let app = app_name(ctx, "blt");
    let pool3 = waiter_pool(
        ctx,
        &app,
        Some(Duration::from_millis(100)),
        Some(Duration::from_secs(30)),
    )
    .await?;
    let waiter3 = Database::new(pool3.clone(), Some(&ctx.schema))?;
    let cancelled = tokio::time::timeout(
        Duration::from_millis(700),
        waiter3.migrator().apply(&name, &src),
    )
    .await;
    assert!(cancelled.is_err(), "still waiting after 7 lock_timeouts");
    holder
        .fetch_optional(UNLOCK, params![name.as_str()])
        .await?;
    // The cancelled run's session took no lock and is not left in a transaction.
    assert!(lock_is_free(ctx, &name).await?, "no lock left behind");
    let stuck: i64 = ctx
        .pool
        .fetch_value(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 \
             AND state LIKE 'idle in transaction%'",
            params![app.as_str()],
        )
        .await?;
    assert_eq!(stuck, 0);
    // A waiting run goes through once the lock is free.
    holder.execute(LOCK, params![name.as_str()]).await?;
    let run = {
        let name = name.clone();
        let src = src.clone();
        tokio::spawn(async move { waiter3.migrator().apply(&name, &src).await })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!run.is_finished(), "waits past several lock_timeouts");
    holder
        .fetch_optional(UNLOCK, params![name.as_str()])
        .await?;
    let report = tokio::time::timeout(Duration::from_secs(10), run)
        .await
        .expect("the waiter takes the released lock")
        .expect("task panicked")?;
    assert_eq!(report.applied.len(), 1);
    drop(holder);
    for p in [pool, pool3] {
        p.close().await;
    }
    assert!(lock_is_free(ctx, &name).await?);
    Ok(())
}
