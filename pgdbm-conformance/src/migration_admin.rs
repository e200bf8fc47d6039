//! Changing the ledger by hand: `apply_one`, `forget`, `baseline`, `repair`, `recent_history`,
//! the refusal of files without a statement, and the migration lock those changes hold.

use std::time::Duration;

use pgdbm::prelude::*;
use pgdbm::{Error, Result};

use super::Ctx;
use super::cancellation::{Probe, cancellation_tables, sweep};
use super::migrations::{USERS_001, USERS_002, drop_schema, ledger_count, source, sub};
use crate::support::{lock_is_free, one_connection_pool};

/// A module name no other check uses (advisory lock keys are database-wide).
fn unique(ctx: &Ctx, name: &str) -> String {
    format!("{}_{name}", ctx.schema)
}

const SEED_2: &str = "INSERT INTO {{tables.users}} (email) VALUES ('b@example.com');";

/// `apply_one` applies exactly the file named, only once every earlier file is applied, says
/// `None` for a file applied already, and names a file that is not in the source.
///
/// # Errors
///
/// Any unexpected error.
pub async fn migrate_apply_one_in_order(ctx: &Ctx) -> Result<()> {
    let db = sub(ctx, "one")?;
    let m = db.migrator();
    let module = unique(ctx, "one");
    let src = source(&[
        ("001_users.sql", USERS_001),
        ("002_seed.sql", USERS_002),
        ("003_seed.sql", SEED_2),
    ])?;
    let err = crate::assert_err!(
        m.apply_one(&module, &src, "002_seed.sql").await,
        Error::Migration { .. }
    );
    assert!(
        err.to_string().contains("001_users.sql") && err.to_string().contains("002_seed.sql"),
        "{err}"
    );
    let done = m.apply_one(&module, &src, "001_users.sql").await?;
    assert_eq!(done.map(|d| d.file).as_deref(), Some("001_users.sql"));
    assert!(m.apply_one(&module, &src, "001_users.sql").await?.is_none());
    assert_eq!(ledger_count(&db, &module).await?, 1);
    let err = crate::assert_err!(
        m.apply_one(&module, &src, "009_nope.sql").await,
        Error::Migration { .. }
    );
    assert!(err.to_string().contains("009_nope.sql"), "{err}");
    m.apply_one(&module, &src, "002_seed.sql").await?;
    let rows: i64 = db
        .fetch_value("SELECT count(*) FROM {{tables.users}}", &[])
        .await?;
    assert_eq!(rows, 1, "only 002 ran, not 003");
    assert_eq!(m.dry_run(&module, &src).await?.len(), 1);
    assert!(lock_is_free(ctx, &module).await?);
    drop_schema(&db).await
}

/// A pending file with only comments and whitespace (a marker line counts as a comment) is
/// refused by `apply`, `apply_one` and `dry_run`, naming it, before anything is applied.
///
/// # Errors
///
/// Any unexpected error.
pub async fn migrate_file_without_statement_is_refused(ctx: &Ctx) -> Result<()> {
    let db = sub(ctx, "nostmt")?;
    let m = db.migrator();
    let module = unique(ctx, "nostmt");
    for body in [
        "-- Migration: add users\n-- TODO: write the SQL\n",
        "/* nothing yet; /* nested */ */\n  \n-- still nothing\n",
        "-- pgdbm:no-transaction\n-- CREATE INDEX CONCURRENTLY later\n",
    ] {
        let src = source(&[("001_users.sql", USERS_001), ("002_todo.sql", body)])?;
        let err = crate::assert_err!(m.apply(&module, &src).await, Error::Migration { .. });
        let text = err.to_string();
        assert!(
            text.contains("002_todo.sql") && text.contains("no SQL statement"),
            "{text}"
        );
        crate::assert_err!(m.dry_run(&module, &src).await, Error::Migration { .. });
        // (Behind a transaction pooler the run is refused before the ledger is created.)
        let history = m.recent_history(Some(&module), 10).await?;
        assert!(history.is_empty(), "nothing applied");
    }
    // Once applied, a file is never checked again (only its checksum is).
    let src = source(&[("001_users.sql", USERS_001)])?;
    m.apply(&module, &src).await?;
    let src = source(&[("001_users.sql", USERS_001), ("002_todo.sql", "-- later")])?;
    crate::assert_err!(
        m.apply_one(&module, &src, "002_todo.sql").await,
        Error::Migration { .. }
    );
    assert!(lock_is_free(ctx, &module).await?);
    drop_schema(&db).await
}

/// `baseline` records files without running them (up to a file, or all), leaves applied ones
/// alone and names an unknown `up_to`; `forget` removes one row so the file runs again;
/// `repair` re-records a changed file's checksum with both checksums reported. None of them
/// creates a ledger only to read it.
///
/// # Errors
///
/// Any unexpected error.
pub async fn migrate_baseline_forget_repair(ctx: &Ctx) -> Result<()> {
    let db = sub(ctx, "adopt")?;
    let m = db.migrator();
    let module = unique(ctx, "adopt");
    let src = source(&[
        ("001_users.sql", USERS_001),
        ("002_seed.sql", USERS_002),
        ("003_seed.sql", SEED_2),
    ])?;
    // Nothing there yet: no ledger is created by forget or repair.
    assert!(!m.forget(&module, "001_users.sql").await?);
    assert!(m.repair(&module, &src).await?.is_empty());
    let exists: bool = db
        .fetch_value(
            "SELECT to_regclass($1) IS NOT NULL",
            params![format!(
                "{}.schema_migrations",
                db.schema().unwrap_or("public")
            )],
        )
        .await?;
    assert!(!exists, "forget/repair created the ledger");

    // Adopt a database whose users table was made by hand.
    db.ensure_schema().await?;
    db.execute(USERS_001, &[]).await?;
    crate::assert_err!(
        m.baseline(&module, &src, Some("007_nope.sql")).await,
        Error::Migration { .. }
    );
    let recorded = m.baseline(&module, &src, Some("001_users.sql")).await?;
    assert_eq!(recorded, ["001_users.sql"]);
    assert!(
        m.baseline(&module, &src, Some("001_users.sql"))
            .await?
            .is_empty()
    );
    let report = m.apply(&module, &src).await?;
    let applied: Vec<&str> = report.applied.iter().map(|a| a.file.as_str()).collect();
    assert_eq!(applied, ["002_seed.sql", "003_seed.sql"]);

    // Forget 003: the next run applies it again.
    assert!(m.forget(&module, "003_seed.sql").await?);
    assert!(!m.forget(&module, "003_seed.sql").await?);
    assert_eq!(m.apply(&module, &src).await?.applied.len(), 1);
    let rows: i64 = db
        .fetch_value("SELECT count(*) FROM {{tables.users}}", &[])
        .await?;
    assert_eq!(rows, 3);

    // A comment added to 001 after it was applied: refused, then repaired.
    let edited = format!("-- creates the users table\n{USERS_001}");
    let changed = source(&[
        ("001_users.sql", edited.as_str()),
        ("002_seed.sql", USERS_002),
        ("003_seed.sql", SEED_2),
    ])?;
    crate::assert_err!(
        m.apply(&module, &changed).await,
        Error::ChecksumMismatch { .. }
    );
    let repaired = m.repair(&module, &changed).await?;
    assert_eq!(repaired.len(), 1);
    assert_eq!(repaired[0].file, "001_users.sql");
    assert_eq!(
        repaired[0].old_checksum,
        pgdbm::migrate::checksum(USERS_001)
    );
    assert_eq!(repaired[0].new_checksum, pgdbm::migrate::checksum(&edited));
    assert!(m.apply(&module, &changed).await?.applied.is_empty());
    assert!(m.repair(&module, &changed).await?.is_empty());
    // Baseline of a changed file is refused like a run.
    crate::assert_err!(
        m.baseline(&module, &src, None).await,
        Error::ChecksumMismatch { .. }
    );
    assert!(lock_is_free(ctx, &module).await?);
    drop_schema(&db).await
}

/// `recent_history` returns the newest rows, oldest first, for one module or all; nothing
/// when the ledger does not exist.
///
/// # Errors
///
/// Any unexpected error.
pub async fn migrate_recent_history(ctx: &Ctx) -> Result<()> {
    let db = sub(ctx, "recent")?;
    let m = db.migrator();
    let module = unique(ctx, "recent");
    assert!(m.recent_history(Some(&module), 5).await?.is_empty());
    let src = source(&[
        ("001_users.sql", USERS_001),
        ("002_seed.sql", USERS_002),
        ("003_seed.sql", SEED_2),
    ])?;
    for file in ["001_users.sql", "002_seed.sql", "003_seed.sql"] {
        m.apply_one(&module, &src, file).await?;
    }
    let other = source(&[("001_other.sql", "SELECT 1")])?;
    m.apply("other", &other).await?;
    let files = |h: Vec<pgdbm::migrate::HistoryEntry>| -> Vec<String> {
        h.into_iter().map(|e| e.filename).collect()
    };
    assert_eq!(
        files(m.recent_history(Some(&module), 2).await?),
        ["002_seed.sql", "003_seed.sql"]
    );
    assert_eq!(files(m.recent_history(Some(&module), 10).await?).len(), 3);
    assert!(m.recent_history(Some(&module), 0).await?.is_empty());
    assert_eq!(
        files(m.recent_history(None, 2).await?),
        ["003_seed.sql", "001_other.sql"]
    );
    drop_schema(&db).await
}

/// `forget`, `baseline` and `repair` wait for the migration lock a run holds (a session lock, or
/// behind a transaction pooler the lock of a run's transaction), and go ahead once it is
/// released.
///
/// # Errors
///
/// Any unexpected error.
pub async fn migrate_ledger_changes_take_the_lock(ctx: &Ctx) -> Result<()> {
    let db = sub(ctx, "locked")?;
    let module = unique(ctx, "locked");
    let src = source(&[("001_users.sql", USERS_001), ("002_seed.sql", USERS_002)])?;
    db.migrator()
        .apply_one(&module, &src, "001_users.sql")
        .await?;
    let holder = one_connection_pool(ctx, |b| b).await?;
    let held = holder.acquire().await?;
    // Behind a transaction pooler a run holds the lock in a transaction of its own (a session
    // lock would stay with whichever server connection took it); without one, as a session lock.
    let pooled = ctx.config.pooler().is_transaction();
    if pooled {
        held.batch_execute("BEGIN").await?;
    }
    held.fetch_optional(
        if pooled {
            "SELECT pg_advisory_xact_lock(hashtext('pgdbm_migration_' || $1))"
        } else {
            "SELECT pg_advisory_lock(hashtext('pgdbm_migration_' || $1))"
        },
        params![module.as_str()],
    )
    .await?;
    let (migrator, m2, s2) = (db.migrator(), module.clone(), src.clone());
    let forget = tokio::spawn(async move { migrator.forget(&m2, "001_users.sql").await });
    let (migrator, m3, s3) = (db.migrator(), module.clone(), s2.clone());
    let baseline = tokio::spawn(async move { migrator.baseline(&m3, &s3, None).await });
    let (migrator, m4) = (db.migrator(), module.clone());
    let repair = tokio::spawn(async move { migrator.repair(&m4, &s2).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !forget.is_finished() && !baseline.is_finished() && !repair.is_finished(),
        "a ledger change went ahead while a run held the lock"
    );
    if pooled {
        held.batch_execute("COMMIT").await?;
    } else {
        held.fetch_optional(
            "SELECT pg_advisory_unlock(hashtext('pgdbm_migration_' || $1))",
            params![module.as_str()],
        )
        .await?;
    }
    drop(held);
    let join = |e: tokio::task::JoinError| Error::test_setup("ledger change task", e.to_string());
    forget.await.map_err(join)??;
    baseline.await.map_err(join)??;
    repair.await.map_err(join)??;
    holder.close().await;
    assert!(lock_is_free(ctx, &module).await?);
    drop_schema(&db).await
}

/// `apply_one`, `forget`, `baseline` and `repair` dropped at each of their awaits leave no
/// advisory lock, no session inside a transaction and no busy connection.
///
/// # Errors
///
/// Any unexpected error.
pub async fn cancelled_ledger_changes_leak_nothing(ctx: &Ctx) -> Result<()> {
    cancellation_tables(ctx).await?;
    let probe = Probe::open(ctx, 1).await?;
    let db = probe
        .db
        .with_schema(Some(&format!("{}_cadm", ctx.schema)))?;
    let module = unique(ctx, "cadm");
    let mut ids = 0;
    let src = source(&[("001_users.sql", USERS_001), ("002_seed.sql", USERS_002)])?;
    let edited = format!("-- edited\n{USERS_001}");
    let changed = source(&[
        ("001_users.sql", edited.as_str()),
        ("002_seed.sql", USERS_002),
    ])?;
    let m = db.migrator();
    sweep(ctx, "baseline", &probe, &mut ids, |_| {
        m.baseline(&module, &src, Some("001_users.sql"))
    })
    .await?;
    sweep(ctx, "repair", &probe, &mut ids, |_| {
        m.repair(&module, &changed)
    })
    .await?;
    sweep(ctx, "forget", &probe, &mut ids, |_| {
        m.forget(&module, "001_users.sql")
    })
    .await?;
    db.execute("DROP TABLE IF EXISTS {{tables.users}}", &[])
        .await?;
    sweep(ctx, "apply_one", &probe, &mut ids, |_| {
        m.apply_one(&module, &src, "001_users.sql")
    })
    .await?;
    assert!(lock_is_free(ctx, &module).await?);
    drop_schema(&db).await?;
    probe.db.close().await;
    Ok(())
}
