//! Migrations and modules: applying, the ledger (and its compatibility with pgdbm for Python),
//! the advisory lock, inspection, and every kind of bad input.

use std::time::Duration;

use pgdbm::migrate::checksum;
use pgdbm::prelude::*;
use pgdbm::{Database, Error, MigrationSource, Migrator, Result, SharedPool};

use super::Ctx;
use crate::support::lock_is_free;

/// An in-memory source from `(name, sql)` pairs.
pub(super) fn source(pairs: &[(&str, &str)]) -> Result<MigrationSource> {
    MigrationSource::from_pairs(
        pairs
            .iter()
            .map(|(n, s)| ((*n).to_owned(), (*s).to_owned())),
    )
}

/// A module made of plain data, as tests need.
struct TestModule {
    name: String,
    deps: Vec<String>,
    source: MigrationSource,
}

impl Module for TestModule {
    fn name(&self) -> &str {
        &self.name
    }
    fn migrations(&self) -> MigrationSource {
        self.source.clone()
    }
    fn depends_on(&self) -> Vec<&str> {
        self.deps.iter().map(String::as_str).collect()
    }
}

/// A handle on a sub-schema `{ctx.schema}_{suffix}` (not created yet).
pub(super) fn sub(ctx: &Ctx, suffix: &str) -> Result<Database> {
    ctx.db
        .with_schema(Some(&format!("{}_{suffix}", ctx.schema)))
}

pub(super) async fn drop_schema(db: &Database) -> Result<()> {
    db.batch_execute("DROP SCHEMA IF EXISTS {{schema}} CASCADE")
        .await
}

/// A module name no other check uses (advisory lock keys are database-wide).
fn unique(ctx: &Ctx, name: &str) -> String {
    format!("{}_{name}", ctx.schema)
}

/// Adds to `handles` one handle on `db`'s schema through each of four more pools (of up to two
/// connections), so that concurrent runs are on different sessions; returns the pools.
pub(super) async fn more_handles(
    ctx: &Ctx,
    db: &Database,
    handles: &mut Vec<Database>,
) -> Result<Vec<SharedPool>> {
    let mut pools = Vec::new();
    for _ in 0..4 {
        let pool = ctx
            .connect(ctx.config_with(|b| b.min_connections(1).max_connections(2))?)
            .await?;
        handles.push(Database::new(pool.clone(), db.schema())?);
        pools.push(pool);
    }
    Ok(pools)
}

pub(super) async fn ledger_count(db: &Database, module: &str) -> Result<i64> {
    db.fetch_value(
        "SELECT count(*) FROM {{tables.schema_migrations}} WHERE module_name = $1",
        params![module],
    )
    .await
}

pub(super) const USERS_001: &str =
    "CREATE TABLE {{tables.users}} (id serial PRIMARY KEY, email text NOT NULL);";
pub(super) const USERS_002: &str = "INSERT INTO {{tables.users}} (email) VALUES ('a@example.com');";
pub(super) const USERS_003: &str = "CREATE INDEX users_email_idx ON {{tables.users}} (email);";

/// Applying a module runs its files in order into the handle's schema (templates expanded),
/// records each, and a second run skips them all; new files are applied on the next run.
///
/// # Errors
///
/// Any unexpected error.
pub async fn migrate_applies_and_skips(ctx: &Ctx) -> Result<()> {
    let db = sub(ctx, "a")?;
    let module = TestModule {
        name: "users".into(),
        deps: vec![],
        source: source(&[
            ("002_seed.sql", USERS_002),
            ("001_users.sql", USERS_001),
            ("003_index.sql", USERS_003),
        ])?,
    };
    let report = db.migrate(&module).await?;
    assert_eq!(report.module, "users");
    let files: Vec<&str> = report.applied.iter().map(|m| m.file.as_str()).collect();
    assert_eq!(files, ["001_users.sql", "002_seed.sql", "003_index.sql"]);
    assert!(report.skipped.is_empty());
    assert!(
        db.table_exists("users").await?,
        "schema created, template expanded"
    );
    let n: i64 = db
        .fetch_value("SELECT count(*) FROM {{tables.users}}", &[])
        .await?;
    assert_eq!(n, 1);

    let again = db.migrate(&module).await?;
    assert!(again.applied.is_empty());
    assert_eq!(again.skipped.len(), 3);

    let more = source(&[
        ("001_users.sql", USERS_001),
        ("002_seed.sql", USERS_002),
        ("003_index.sql", USERS_003),
        (
            "004_more.sql",
            "ALTER TABLE {{tables.users}} ADD COLUMN name text;",
        ),
    ])?;
    let report = db.migrator().apply("users", &more).await?;
    assert_eq!(report.applied.len(), 1);
    assert_eq!(report.applied[0].file, "004_more.sql");
    assert_eq!(
        report.applied[0].checksum,
        checksum(more.migrations()[3].sql())
    );
    assert_eq!(ledger_count(&db, "users").await?, 4);
    drop_schema(&db).await
}

/// A changed applied file is [`Error::ChecksumMismatch`] naming module, file and both
/// checksums, and nothing (not even later new files) is applied.
///
/// # Errors
///
/// Any unexpected error.
pub async fn migrate_changed_file_is_rejected(ctx: &Ctx) -> Result<()> {
    let db = &ctx.db;
    let m = db.migrator();
    m.apply(
        "users",
        &source(&[("001_users.sql", USERS_001), ("002_seed.sql", USERS_002)])?,
    )
    .await?;
    let changed = "INSERT INTO {{tables.users}} (email) VALUES ('changed@example.com');";
    let next = source(&[
        ("001_users.sql", USERS_001),
        ("002_seed.sql", changed),
        ("003_index.sql", USERS_003),
    ])?;
    let err = crate::assert_err!(
        m.apply("users", &next).await,
        Error::ChecksumMismatch { .. }
    );
    let Error::ChecksumMismatch {
        module,
        file,
        applied,
        current,
        ..
    } = &err
    else {
        unreachable!()
    };
    assert_eq!((module.as_str(), file.as_str()), ("users", "002_seed.sql"));
    assert_eq!(applied, &checksum(USERS_002));
    assert_eq!(current, &checksum(changed));
    let text = err.to_string();
    assert!(
        text.contains("users/002_seed.sql") && text.contains(applied) && text.contains(current),
        "{text}"
    );
    assert_eq!(ledger_count(db, "users").await?, 2, "003 was not applied");
    let has_index: bool = db
        .fetch_value(
            "SELECT EXISTS (SELECT 1 FROM pg_indexes WHERE schemaname = $1 AND indexname = 'users_email_idx')",
            params![ctx.schema.as_str()],
        )
        .await?;
    assert!(!has_index);
    crate::assert_err!(
        m.verify("users", &next).await,
        Error::ChecksumMismatch { .. }
    );
    crate::assert_err!(
        m.dry_run("users", &next).await,
        Error::ChecksumMismatch { .. }
    );
    Ok(())
}

/// A failing migration in the middle of three: the first stays applied, the second and third
/// are not recorded, nothing of the second remains, the error names module, file and the
/// server's message, and the lock is released.
///
/// # Errors
///
/// Any unexpected error.
pub async fn migrate_failure_in_the_middle(ctx: &Ctx) -> Result<()> {
    let db = &ctx.db;
    let name = unique(ctx, "mid");
    let src = source(&[
        ("001_a.sql", "CREATE TABLE {{tables.a}} (id int);"),
        (
            "002_b.sql",
            "CREATE TABLE {{tables.b}} (id int);\nINSERT INTO {{tables.no_such_table}} VALUES (1);",
        ),
        ("003_c.sql", "CREATE TABLE {{tables.c}} (id int);"),
    ])?;
    let err = crate::assert_err!(
        db.migrator().apply(&name, &src).await,
        Error::Migration { .. }
    );
    let Error::Migration {
        module,
        file,
        message,
        ..
    } = &err
    else {
        unreachable!()
    };
    assert_eq!(module, &name);
    assert_eq!(file, "002_b.sql");
    assert!(message.contains("no_such_table"), "{message}");
    assert_eq!(err.code(), Some("42P01"), "the server error is the source");
    assert!(db.table_exists("a").await?);
    assert!(!db.table_exists("b").await?, "no partial objects");
    assert!(!db.table_exists("c").await?);
    let files: Vec<String> = db
        .fetch_all(
            "SELECT filename FROM {{tables.schema_migrations}} ORDER BY filename",
            &[],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect::<Result<_>>()?;
    assert_eq!(files, ["001_a.sql"]);
    assert!(
        lock_is_free(ctx, &name).await?,
        "lock released after a failed run"
    );
    Ok(())
}

/// A syntax error is an [`Error::Migration`] with SQLSTATE 42601; nothing is recorded.
///
/// # Errors
///
/// Any unexpected error.
pub async fn migrate_syntax_error(ctx: &Ctx) -> Result<()> {
    let db = &ctx.db;
    let src = source(&[("001_bad.sql", "CREAT TABLE {{tables.x}} (id int);")])?;
    let err = crate::assert_err!(
        db.migrator().apply("syntax", &src).await,
        Error::Migration { .. }
    );
    assert_eq!(err.code(), Some("42601"));
    assert!(err.to_string().contains("syntax/001_bad.sql"), "{err}");
    assert_eq!(ledger_count(db, "syntax").await?, 0);
    Ok(())
}

/// Directory sources: `*.sql` by name, hidden files skipped; an empty file is an error naming
/// it (from a directory and in memory) before anything runs.
///
/// # Errors
///
/// Any unexpected error.
pub async fn migrate_empty_file_and_directory_source(ctx: &Ctx) -> Result<()> {
    let dir = std::env::temp_dir().join(format!("pgdbm_conf_{}", ctx.schema));
    std::fs::create_dir_all(&dir).map_err(|source| Error::io("temp dir", source))?;
    let write = |name: &str, text: &str| {
        std::fs::write(dir.join(name), text).map_err(|source| Error::io(name, source))
    };
    let result = async {
        write("002_seed.sql", USERS_002)?;
        write("001_users.sql", USERS_001)?;
        write(".003_hidden.sql", "SELECT broken syntax here")?;
        write("README.md", "not a migration")?;
        let src = MigrationSource::from_dir(&dir)?;
        let report = ctx.db.migrator().apply("dir", &src).await?;
        assert_eq!(report.applied.len(), 2);
        write("003_empty.sql", "  \r\n\n")?;
        let err = crate::assert_err!(MigrationSource::from_dir(&dir), Error::Io { .. });
        assert!(err.to_string().contains("003_empty.sql"), "{err}");
        let err = crate::assert_err!(source(&[("009_empty.sql", "")]), Error::Io { .. });
        assert!(err.to_string().contains("009_empty.sql"), "{err}");
        assert_eq!(ledger_count(&ctx.db, "dir").await?, 2);
        Ok::<_, Error>(())
    }
    .await;
    let _ = std::fs::remove_dir_all(&dir);
    result
}

/// An invalid ledger table name is [`Error::Identifier`]; a valid custom one is used with its
/// own index name.
///
/// # Errors
///
/// Any unexpected error.
pub async fn migrate_ledger_table_name(ctx: &Ctx) -> Result<()> {
    for bad in ["bad name", "x; DROP TABLE y", "", "1abc"] {
        crate::assert_err!(
            Migrator::new(&ctx.db).with_ledger_table(bad),
            Error::Identifier { .. }
        );
    }
    let m = Migrator::new(&ctx.db).with_ledger_table("my_ledger")?;
    m.apply("custom", &source(&[("001.sql", "SELECT 1;")])?)
        .await?;
    assert!(ctx.db.table_exists("my_ledger").await?);
    assert!(!ctx.db.table_exists("schema_migrations").await?);
    let indexed: bool = ctx
        .db
        .fetch_value(
            "SELECT EXISTS (SELECT 1 FROM pg_indexes WHERE schemaname = $1 AND indexname = 'idx_my_ledger_module')",
            params![ctx.schema.as_str()],
        )
        .await?;
    assert!(indexed);
    assert_eq!(m.history(Some("custom")).await?.len(), 1);
    Ok(())
}

/// Two modules with the same file names in one schema keep separate histories.
///
/// # Errors
///
/// Any unexpected error.
pub async fn migrate_modules_share_file_names(ctx: &Ctx) -> Result<()> {
    let db = &ctx.db;
    let alpha = TestModule {
        name: "alpha".into(),
        deps: vec![],
        source: source(&[("001_init.sql", "CREATE TABLE {{tables.alpha}} (id int);")])?,
    };
    let beta = TestModule {
        name: "beta".into(),
        deps: vec![],
        source: source(&[("001_init.sql", "CREATE TABLE {{tables.beta}} (id int);")])?,
    };
    assert_eq!(db.migrate(&alpha).await?.applied.len(), 1);
    assert_eq!(
        db.migrate(&beta).await?.applied.len(),
        1,
        "beta's 001_init.sql is its own"
    );
    assert!(db.table_exists("alpha").await? && db.table_exists("beta").await?);
    assert!(db.migrate(&alpha).await?.applied.is_empty());
    assert!(db.migrate(&beta).await?.applied.is_empty());
    let history = db.migrator().history(Some("beta")).await?;
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].module_name.as_deref(), Some("beta"));
    assert_eq!(
        history[0].checksum,
        checksum(beta.source.migrations()[0].sql())
    );
    assert_eq!(db.migrator().history(None).await?.len(), 2);
    Ok(())
}

/// 8 tasks on the shared pool and 4 separate pools (each with its own connections, standing in
/// for 4 processes: the advisory lock is per session either way) apply the same module at once:
/// none fails and each file is applied exactly once.
///
/// # Errors
///
/// Any unexpected error.
pub async fn migrate_concurrent_runs(ctx: &Ctx) -> Result<()> {
    let db = sub(ctx, "c")?;
    let name = unique(ctx, "conc");
    let src = source(&[
        (
            "001_t.sql",
            "CREATE TABLE {{tables.t}} (id int PRIMARY KEY);",
        ),
        (
            "002_slow.sql",
            "SELECT pg_sleep(0.05); INSERT INTO {{tables.t}} VALUES (1);",
        ),
        ("003_t2.sql", "CREATE TABLE {{tables.t2}} (id int);"),
        ("004_seed.sql", "INSERT INTO {{tables.t}} VALUES (2);"),
    ])?;
    let mut handles = Vec::new();
    for _ in 0..8 {
        handles.push(db.clone());
    }
    let pools = more_handles(ctx, &db, &mut handles).await?;
    let tasks: Vec<_> = handles
        .into_iter()
        .map(|h| {
            let src = src.clone();
            let name = name.clone();
            tokio::spawn(async move { h.migrator().apply(&name, &src).await })
        })
        .collect();
    let mut applied = 0;
    for task in tasks {
        let report = task.await.expect("task panicked")?;
        applied += report.applied.len();
    }
    assert_eq!(applied, 4, "each file applied exactly once");
    let dupes: i64 = db
        .fetch_value(
            "SELECT count(*) - count(DISTINCT filename) FROM {{tables.schema_migrations}}",
            &[],
        )
        .await?;
    assert_eq!(dupes, 0);
    assert_eq!(ledger_count(&db, &name).await?, 4);
    let rows: i64 = db
        .fetch_value("SELECT count(*) FROM {{tables.t}}", &[])
        .await?;
    assert_eq!(rows, 2);
    for pool in pools {
        pool.close().await;
    }
    drop_schema(&db).await
}

/// Modules are applied in dependency order; a cycle is an error naming it, before anything is
/// applied; an unknown dependency too.
///
/// # Errors
///
/// Any unexpected error.
pub async fn migrate_module_dependencies(ctx: &Ctx) -> Result<()> {
    let db = &ctx.db;
    let module = |name: &str, deps: &[&str], sql: &str| -> Result<TestModule> {
        Ok(TestModule {
            name: name.into(),
            deps: deps.iter().map(|d| (*d).to_owned()).collect(),
            source: source(&[("001.sql", sql)])?,
        })
    };
    let a = module(
        "cyc_a",
        &["cyc_b"],
        "CREATE TABLE {{tables.cyc_a}} (id int);",
    )?;
    let b = module(
        "cyc_b",
        &["cyc_a"],
        "CREATE TABLE {{tables.cyc_b}} (id int);",
    )?;
    let err = crate::assert_err!(db.migrate_all(&[&a, &b]).await, Error::ModuleOrder { .. });
    assert!(err.to_string().contains("cyc_a -> cyc_b -> cyc_a"), "{err}");
    assert!(
        !db.table_exists("schema_migrations").await?,
        "nothing applied"
    );
    let lost = module("lost", &["nowhere"], "SELECT 1;")?;
    let err = crate::assert_err!(db.migrate_all(&[&lost]).await, Error::ModuleOrder { .. });
    assert!(err.to_string().contains("nowhere"), "{err}");

    let orders = module(
        "orders",
        &["customers"],
        "CREATE TABLE {{tables.orders}} (id int, customer int REFERENCES {{tables.customers}} (id));",
    )?;
    let customers = module(
        "customers",
        &[],
        "CREATE TABLE {{tables.customers}} (id int PRIMARY KEY);",
    )?;
    let reports = db.migrate_all(&[&orders, &customers]).await?;
    let order: Vec<&str> = reports.iter().map(|r| r.module.as_str()).collect();
    assert_eq!(order, ["customers", "orders"]);
    Ok(())
}

/// A `-- pgdbm:no-transaction` file runs statement by statement in autocommit (so `CREATE
/// INDEX CONCURRENTLY` works); when one fails half way the file is not recorded and the error
/// says which statement.
///
/// # Errors
///
/// Any unexpected error.
pub async fn migrate_no_transaction(ctx: &Ctx) -> Result<()> {
    // `CREATE INDEX CONCURRENTLY` waits for every older transaction in its database: run where
    // no other check's transactions are.
    let ctx = &ctx.isolated().await?;
    let db = &ctx.db;
    let good = source(&[
        (
            "001_t.sql",
            "CREATE TABLE {{tables.n}} (id int, note text);",
        ),
        (
            "002_concurrently.sql",
            "-- pgdbm:no-transaction\n\
             CREATE INDEX CONCURRENTLY n_id_idx ON {{tables.n}} (id);\n\
             INSERT INTO {{tables.n}} VALUES (1, 'semi;colon ''quoted''');\n\
             CREATE FUNCTION {{schema}}.f() RETURNS int AS $$ SELECT 1; $$ LANGUAGE sql;",
        ),
    ])?;
    let report = db.migrator().apply("notx", &good).await?;
    assert_eq!(report.applied.len(), 2);
    let note: String = db.fetch_value("SELECT note FROM {{tables.n}}", &[]).await?;
    assert_eq!(note, "semi;colon 'quoted'");

    let bad = source(&[(
        "001_half.sql",
        "-- pgdbm:no-transaction\n\
         CREATE TABLE {{tables.h1}} (id int);\n\
         /* a comment; with a semicolon */\n\
         CREATE INDEX CONCURRENTLY h1_idx ON {{tables.h1}} (id);\n\
         INSERT INTO {{tables.missing_table}} VALUES (1);\n\
         CREATE TABLE {{tables.h2}} (id int);",
    )])?;
    let err = crate::assert_err!(
        db.migrator().apply("notx_bad", &bad).await,
        Error::Migration { .. }
    );
    let Error::Migration { file, message, .. } = &err else {
        unreachable!()
    };
    assert_eq!(file, "001_half.sql");
    assert!(
        message.contains("statement 3") && message.contains("INSERT INTO"),
        "{message}"
    );
    assert!(message.contains("missing_table"), "{message}");
    assert_eq!(ledger_count(db, "notx_bad").await?, 0, "not recorded");
    assert!(
        db.table_exists("h1").await?,
        "autocommit: earlier statements stay"
    );
    assert!(
        !db.table_exists("h2").await?,
        "later statements did not run"
    );
    Ok(())
}

/// The advisory lock is released after a failed run and after a cancelled one (the future
/// dropped mid-migration): another session can take it, and the cancelled file is not recorded.
///
/// # Errors
///
/// Any unexpected error.
pub async fn migrate_lock_released(ctx: &Ctx) -> Result<()> {
    let db = &ctx.db;
    let name = unique(ctx, "lock");
    let failing = source(&[("001.sql", "SELECT 1/0;")])?;
    crate::assert_err!(
        db.migrator().apply(&name, &failing).await,
        Error::Migration { .. }
    );
    assert!(lock_is_free(ctx, &name).await?, "released after a failure");

    let slow = source(&[(
        "001_slow.sql",
        "CREATE TABLE {{tables.slow}} (id int); SELECT pg_sleep(1.5);",
    )])?;
    let run = db.migrator();
    let cancelled = tokio::time::timeout(Duration::from_millis(400), run.apply(&name, &slow)).await;
    assert!(cancelled.is_err(), "the run was cancelled");
    // The connection was closed, not pooled: the server ends the session (and its lock) once
    // it notices, at the latest when the sleeping statement ends.
    let mut free = false;
    for _ in 0..100 {
        if lock_is_free(ctx, &name).await? {
            free = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(free, "released after a cancelled run");
    assert_eq!(ledger_count(db, &name).await?, 0);
    assert!(
        !db.table_exists("slow").await?,
        "the cancelled migration was rolled back"
    );
    // And a new run goes through.
    assert_eq!(run.apply(&name, &slow).await?.applied.len(), 1);
    Ok(())
}
