//! Migrations: the ledger's compatibility with pgdbm for Python, and inspection (status,
//! history, dry run, verify).

use pgdbm::Result;
use pgdbm::migrate::{MigrationState, checksum};
use pgdbm::prelude::*;

use super::Ctx;
use super::migrations::{USERS_001, USERS_002, USERS_003, drop_schema, ledger_count, source, sub};

/// Ledger compatibility with pgdbm for Python, both ways: rows Python would write (its DDL,
/// its checksum computed independently in SQL) leave nothing pending here, and rows written here
/// have the columns, types, index and checksums Python expects.
///
/// # Errors
///
/// Any unexpected error.
pub async fn migrate_python_compatibility(ctx: &Ctx) -> Result<()> {
    // SHA-256 of the text with CRLF → LF, trimmed: Python's `content.replace("\r\n", "\n").strip()`.
    const PY_CHECKSUM: &str = "encode(sha256(convert_to(btrim(replace($1, E'\\r\\n', E'\\n'), E' \\t\\r\\n'), 'UTF8')), 'hex')";
    let files = [
        (
            "001_initial.sql",
            "\r\nCREATE TABLE {{tables.py_users}} (id serial PRIMARY KEY);\r\n",
        ),
        (
            "002_email.sql",
            "ALTER TABLE {{tables.py_users}} ADD COLUMN email text;\n\n",
        ),
        (
            "003_legacy.sql",
            "  CREATE TABLE {{tables.py_legacy}} (id int);",
        ),
    ];
    // Python → Rust.
    let db = sub(ctx, "py")?;
    db.ensure_schema().await?;
    db.batch_execute(
        "CREATE TABLE IF NOT EXISTS {{tables.schema_migrations}} (
            id SERIAL PRIMARY KEY,
            filename VARCHAR(255) NOT NULL,
            checksum VARCHAR(64) NOT NULL,
            module_name VARCHAR(100),
            applied_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
            applied_by VARCHAR(100) DEFAULT CURRENT_USER,
            execution_time_ms INTEGER,
            UNIQUE(filename, module_name)
        );
        CREATE INDEX IF NOT EXISTS idx_schema_migrations_module
            ON {{tables.schema_migrations}} (module_name, filename);",
    )
    .await?;
    for (i, (name, sql)) in files.iter().enumerate() {
        db.batch_execute(sql).await?;
        // The third row predates modules: module_name NULL counts for every module.
        let module = (i < 2).then_some("py_app");
        let insert = format!(
            "INSERT INTO {{{{tables.schema_migrations}}}} (filename, checksum, module_name, execution_time_ms) \
             VALUES ($2, {PY_CHECKSUM}, $3, 7)"
        );
        db.execute(&insert, params![sql, name, module]).await?;
    }
    let src = source(&files)?;
    let status = db.migrator().status("py_app", &src).await?;
    assert!(
        status.iter().all(|s| s.state == MigrationState::Applied),
        "{status:?}"
    );
    assert!(db.migrator().dry_run("py_app", &src).await?.is_empty());
    assert_eq!(db.migrator().verify("py_app", &src).await?, 3);
    let report = db.migrator().apply("py_app", &src).await?;
    assert!(report.applied.is_empty() && report.skipped.len() == 3);

    // Rust → Python.
    let rs = sub(ctx, "rs")?;
    let report = rs.migrator().apply("rs_app", &src).await?;
    assert_eq!(report.applied.len(), 3);
    for (name, sql) in files {
        let sql_check = format!(
            "SELECT checksum = {PY_CHECKSUM} AND module_name = 'rs_app' AND applied_by = current_user \
             AND execution_time_ms IS NOT NULL AND applied_at IS NOT NULL \
             FROM {{{{tables.schema_migrations}}}} WHERE filename = $2 AND (module_name = $3 OR module_name IS NULL)"
        );
        let ok: bool = rs
            .fetch_value(&sql_check, params![sql, name, "rs_app"])
            .await?;
        assert!(ok, "{name}: the row Python reads has its checksum");
    }
    let columns: Vec<String> = rs
        .fetch_all(
            "SELECT column_name || ' ' || data_type || coalesce('(' || character_maximum_length || ')', '') \
             || ' ' || is_nullable || ' ' || coalesce(column_default, '-') \
             FROM information_schema.columns WHERE table_schema = $1 AND table_name = 'schema_migrations' \
             ORDER BY ordinal_position",
            params![rs.schema()],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect::<Result<_>>()?;
    let expected_prefixes = [
        "id integer NO nextval(",
        "filename character varying(255) NO -",
        "checksum character varying(64) NO -",
        "module_name character varying(100) YES -",
        "applied_at timestamp without time zone NO CURRENT_TIMESTAMP",
        "applied_by character varying(100) YES CURRENT_USER",
        "execution_time_ms integer YES -",
    ];
    assert_eq!(columns.len(), expected_prefixes.len(), "{columns:?}");
    for (got, want) in columns.iter().zip(expected_prefixes) {
        assert!(got.starts_with(want), "column {got:?}, expected {want:?}");
    }
    let indexes: Vec<String> = rs
        .fetch_all(
            "SELECT indexdef FROM pg_indexes WHERE schemaname = $1 AND tablename = 'schema_migrations' ORDER BY indexname",
            params![rs.schema()],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect::<Result<_>>()?;
    assert!(
        indexes
            .iter()
            .any(|d| d.contains("idx_schema_migrations_module")
                && d.contains("(module_name, filename)")),
        "{indexes:?}"
    );
    assert!(
        indexes
            .iter()
            .any(|d| d.contains("UNIQUE") && d.contains("(filename, module_name)")),
        "{indexes:?}"
    );
    drop_schema(&db).await?;
    drop_schema(&rs).await
}

/// Status (applied / pending / changed / missing), history, dry run (writes nothing, not even
/// the schema or ledger) and verify (read-only).
///
/// # Errors
///
/// Any unexpected error.
pub async fn migrate_inspect(ctx: &Ctx) -> Result<()> {
    let db = sub(ctx, "i")?;
    let m = db.migrator();
    let all = source(&[
        ("001_users.sql", USERS_001),
        ("002_seed.sql", USERS_002),
        ("003_index.sql", USERS_003),
    ])?;
    let plan = m.dry_run("insp", &all).await?;
    assert_eq!(plan.len(), 3);
    assert!(
        plan[0]
            .sql
            .contains(&format!("\"{}\".users", db.schema().unwrap_or_default()))
    );
    assert!(!plan[0].no_transaction);
    let schema_exists: bool = ctx
        .db
        .fetch_value(
            "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)",
            params![db.schema()],
        )
        .await?;
    assert!(!schema_exists, "a dry run writes nothing");
    assert!(m.history(None).await?.is_empty());
    assert_eq!(m.verify("insp", &all).await?, 0);

    let first_two = source(&[("001_users.sql", USERS_001), ("002_seed.sql", USERS_002)])?;
    m.apply("insp", &first_two).await?;
    let states: Vec<MigrationState> = m
        .status("insp", &all)
        .await?
        .into_iter()
        .map(|s| s.state)
        .collect();
    assert_eq!(
        states,
        [
            MigrationState::Applied,
            MigrationState::Applied,
            MigrationState::Pending
        ]
    );
    let plan = m.dry_run("insp", &all).await?;
    assert_eq!(
        plan.iter().map(|p| p.file.as_str()).collect::<Vec<_>>(),
        ["003_index.sql"]
    );
    assert_eq!(ledger_count(&db, "insp").await?, 2, "dry run wrote nothing");

    let edited = source(&[
        ("002_seed.sql", "SELECT 'edited';"),
        ("003_index.sql", USERS_003),
    ])?;
    let status = m.status("insp", &edited).await?;
    assert_eq!(status.len(), 3);
    assert!(
        matches!(status[0].state, MigrationState::Changed { .. }),
        "{status:?}"
    );
    assert_eq!(status[1].state, MigrationState::Pending);
    assert_eq!(
        (status[2].file.as_str(), &status[2].state),
        ("001_users.sql", &MigrationState::MissingFromSource)
    );
    assert_eq!(m.verify("insp", &first_two).await?, 2);

    let history = m.history(Some("insp")).await?;
    assert_eq!(history.len(), 2);
    assert_eq!(history[0].filename, "001_users.sql");
    assert_eq!(history[0].checksum, checksum(USERS_001));
    assert!(history[0].applied_by.is_some() && history[0].execution_time_ms.is_some());
    assert!(!history[0].applied_at.is_empty());
    drop_schema(&db).await
}
