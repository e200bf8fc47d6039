//! The `Database` API: execute/fetch, execute_many, returning ids, scripts, table_exists,
//! ensure_schema, COPY, the statement cache and `dyn Executor`.

use std::sync::Arc;

use pgdbm::prelude::*;
use pgdbm::{Error, Executor, Result, Value};

use super::Ctx;
use crate::support::one_connection_pool;

/// `execute` returns rows affected; `fetch_all`, `fetch_optional`, `fetch_one`, `fetch_value`
/// behave as documented (`fetch_one` on no rows is [`Error::RowNotFound`]).
///
/// # Errors
///
/// Any unexpected query error.
pub async fn execute_and_fetch(ctx: &Ctx) -> Result<()> {
    let db = &ctx.db;
    db.batch_execute("CREATE TABLE {{tables.t}} (id int PRIMARY KEY, v text)")
        .await?;
    for i in 0..5i32 {
        db.execute(
            "INSERT INTO {{tables.t}} VALUES ($1, $2)",
            params![i, format!("v{i}")],
        )
        .await?;
    }
    let n = db
        .execute(
            "UPDATE {{tables.t}} SET v = v || '!' WHERE id >= $1",
            params![3i32],
        )
        .await?;
    assert_eq!(n, 2);
    let rows = db
        .fetch_all("SELECT id, v FROM {{tables.t}} ORDER BY id", &[])
        .await?;
    assert_eq!(rows.len(), 5);
    assert_eq!(rows[4].get::<String>("v")?, "v4!");
    assert_eq!(rows[0].columns()[1].name(), "v");
    let first = db
        .fetch_optional("SELECT id FROM {{tables.t}} ORDER BY id", &[])
        .await?
        .expect("rows exist");
    assert_eq!(first.get::<i32>(0)?, 0);
    assert!(
        db.fetch_optional("SELECT id FROM {{tables.t}} WHERE id = $1", params![99i32])
            .await?
            .is_none()
    );
    crate::assert_err!(
        db.fetch_one("SELECT id FROM {{tables.t}} WHERE id = $1", params![99i32])
            .await,
        Error::RowNotFound { .. }
    );
    let count: i64 = db
        .fetch_value("SELECT count(*) FROM {{tables.t}}", &[])
        .await?;
    assert_eq!(count, 5);
    Ok(())
}

/// `Database::execute_many` applies every parameter set or none.
///
/// # Errors
///
/// Any unexpected query error.
pub async fn execute_many_is_atomic(ctx: &Ctx) -> Result<()> {
    let db = &ctx.db;
    db.batch_execute("CREATE TABLE {{tables.t}} (id int PRIMARY KEY)")
        .await?;
    let sql = "INSERT INTO {{tables.t}} VALUES ($1)";
    let n = db
        .execute_many(sql, &[params![1i32], params![2i32], params![3i32]])
        .await?;
    assert_eq!(n, 3);
    let err = db
        .execute_many(sql, &[params![4i32], params![1i32], params![5i32]])
        .await
        .expect_err("duplicate key");
    assert!(err.is_unique_violation(), "{err}");
    let count: i64 = db
        .fetch_value("SELECT count(*) FROM {{tables.t}}", &[])
        .await?;
    assert_eq!(count, 3, "a failed batch must leave nothing behind");
    Ok(())
}

/// `execute_and_return_id` returns the new id, adding `RETURNING id` when missing.
///
/// # Errors
///
/// Any unexpected query error.
pub async fn execute_and_return_id(ctx: &Ctx) -> Result<()> {
    let db = &ctx.db;
    db.batch_execute("CREATE TABLE {{tables.t}} (id serial PRIMARY KEY, v text)")
        .await?;
    let a: i32 = db
        .execute_and_return_id("INSERT INTO {{tables.t}} (v) VALUES ($1)", params!["a"])
        .await?;
    let b = db
        .execute_and_return_id::<i64>(
            "INSERT INTO {{tables.t}} (v) VALUES ($1) RETURNING id;",
            params!["b"],
        )
        .await?;
    assert_eq!((a, b), (1, 2));
    Ok(())
}

/// A multi-statement script without parameters runs in order.
///
/// # Errors
///
/// Any unexpected query error.
pub async fn batch_execute_script(ctx: &Ctx) -> Result<()> {
    let db = &ctx.db;
    db.batch_execute(
        "CREATE TABLE {{tables.a}} (x int);
         INSERT INTO {{tables.a}} VALUES (1), (2);
         CREATE TABLE {{tables.b}} AS SELECT x * 10 AS y FROM {{tables.a}};",
    )
    .await?;
    let sum: i64 = db
        .fetch_value("SELECT sum(y)::bigint FROM {{tables.b}}", &[])
        .await?;
    assert_eq!(sum, 30);
    let err = db
        .batch_execute("SELECT 1; SELEC 2;")
        .await
        .expect_err("syntax error");
    assert_eq!(err.code(), Some("42601"), "{err}");
    Ok(())
}

/// `table_exists` looks in the handle's schema (or `schema.table`); `ensure_schema` is idempotent.
///
/// # Errors
///
/// Any unexpected query error.
pub async fn table_exists_and_ensure_schema(ctx: &Ctx) -> Result<()> {
    let db = &ctx.db;
    assert!(!db.table_exists("things").await?);
    db.batch_execute("CREATE TABLE {{tables.things}} (x int)")
        .await?;
    assert!(db.table_exists("things").await?);
    assert!(db.table_exists(&format!("{}.things", ctx.schema)).await?);
    let other = db.with_schema(Some(&format!("{}_x", ctx.schema)))?;
    assert!(!other.table_exists("things").await?);
    // Concurrent ensure_schema calls on a new schema all succeed.
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let other = other.clone();
        tasks.push(tokio::spawn(async move { other.ensure_schema().await }));
    }
    for t in tasks {
        t.await.expect("task")?;
    }
    other.ensure_schema().await?;
    other.batch_execute("DROP SCHEMA {{schema}}").await?;
    Ok(())
}

/// `copy_in` loads rows in binary COPY format into the handle's schema; a bad value writes
/// nothing; a wrong row width is an error.
///
/// # Errors
///
/// Any unexpected query error.
pub async fn copy_in_binary(ctx: &Ctx) -> Result<()> {
    let db = &ctx.db;
    db.batch_execute(
        "CREATE TABLE {{tables.bulk}} (id bigint, name text, score double precision, tags text[], at_ jsonb)",
    )
    .await?;
    let rows: Vec<Vec<Value>> = (0..1000i64)
        .map(|i| {
            vec![
                Value::Int8(i),
                if i % 10 == 0 {
                    Value::Null
                } else {
                    Value::Text(format!("n{i}"))
                },
                Value::Float8(i as f64 / 2.0),
                Value::Array {
                    element: pgdbm::Kind::Text,
                    items: vec![Value::Text("a".into())],
                },
                Value::Json(serde_json::json!({ "i": i })),
            ]
        })
        .collect();
    let n = db
        .copy_in("bulk", &["id", "name", "score", "tags", "at_"], &rows)
        .await?;
    assert_eq!(n, 1000);
    let sum: i64 = db
        .fetch_value("SELECT sum(id)::bigint FROM {{tables.bulk}}", &[])
        .await?;
    assert_eq!(sum, 999 * 1000 / 2);
    let nulls: i64 = db
        .fetch_value(
            "SELECT count(*) FROM {{tables.bulk}} WHERE name IS NULL",
            &[],
        )
        .await?;
    assert_eq!(nulls, 100);
    // i32 widens into bigint in COPY too.
    db.copy_in("bulk", &["id"], &[vec![Value::Int4(5000)]])
        .await?;

    let bad = vec![
        vec![Value::Int8(1), Value::Text("ok".into())],
        vec![Value::Text("not a number".into()), Value::Text("x".into())],
    ];
    crate::assert_err!(
        db.copy_in("bulk", &["id", "name"], &bad).await,
        Error::Encode { .. }
    );
    let short = vec![vec![Value::Int8(1)]];
    db.copy_in("bulk", &["id", "name"], &short)
        .await
        .expect_err("row width mismatch");
    let count: i64 = db
        .fetch_value("SELECT count(*) FROM {{tables.bulk}}", &[])
        .await?;
    assert_eq!(count, 1001, "failed COPYs must write nothing");
    // The pool is healthy afterwards.
    db.fetch_value::<i32>("SELECT 1", &[]).await?;

    // Inside a transaction, rolled back with it.
    let tx = db.begin().await?;
    tx.copy_in("bulk", &["id"], &[vec![Value::Int8(-1)]])
        .await?;
    tx.rollback().await?;
    let neg: i64 = db
        .fetch_value("SELECT count(*) FROM {{tables.bulk}} WHERE id < 0", &[])
        .await?;
    assert_eq!(neg, 0);
    Ok(())
}

/// A repeated (templated) statement is prepared once per connection.
///
/// # Errors
///
/// Any unexpected query error.
pub async fn statement_cache_prepares_once(ctx: &Ctx) -> Result<()> {
    if !ctx.caps.named_statement_cache {
        eprintln!(
            "statement_cache_prepares_once: skipped, the driver declares no named statement cache"
        );
        return Ok(());
    }
    ctx.db
        .batch_execute("CREATE TABLE {{tables.t}} (id int)")
        .await?;
    let sql = "SELECT count(*) FROM {{tables.t}} WHERE id = $1";
    let expanded = ctx.db.expand_sql(sql)?;
    let tx = ctx.db.begin().await?; // one connection for the whole check
    for i in 0..20i32 {
        tx.fetch_value::<i64>(sql, params![i]).await?;
    }
    let prepared: i64 = tx
        .fetch_value(
            // A driver may append a comment to the text it prepares (the sqlx driver tags it).
            "SELECT count(*) FROM pg_prepared_statements \
             WHERE left(statement, length($1)) = $1",
            params![expanded.as_str()],
        )
        .await?;
    assert_eq!(
        prepared, 1,
        "statement prepared {prepared} times on one connection"
    );
    tx.rollback().await?;
    Ok(())
}

/// The per-connection statement cache is bounded (`statement_cache_capacity`).
///
/// # Errors
///
/// Any unexpected query error.
pub async fn statement_cache_is_bounded(ctx: &Ctx) -> Result<()> {
    if !ctx.caps.named_statement_cache {
        eprintln!(
            "statement_cache_is_bounded: skipped, the driver declares no named statement cache"
        );
        return Ok(());
    }
    let pool = one_connection_pool(ctx, |b| b.statement_cache_capacity(3)).await?;
    for i in 0..20 {
        pool.fetch_optional(&format!("SELECT {i}::int AS n"), &[])
            .await?;
    }
    // Closing evicted statements is sent with the next message; this query flushes it.
    pool.fetch_optional("SELECT 1", &[]).await?;
    let prepared: i64 =
        pgdbm::ExecutorExt::fetch_value(&*pool, "SELECT count(*) FROM pg_prepared_statements", &[])
            .await?;
    assert!(
        prepared <= 4,
        "{prepared} statements kept with a cache of 3"
    );
    pool.close().await;
    Ok(())
}

async fn count_rows(exec: &dyn Executor, table_sql: &str) -> Result<i64> {
    exec.fetch_value(&format!("SELECT count(*) FROM {table_sql}"), &[])
        .await
}

/// Generic code written against `&dyn Executor` / `Arc<dyn Executor>` runs on a `Database`, a
/// `Transaction` and a bare pool alike.
///
/// # Errors
///
/// Any unexpected query error.
pub async fn dyn_executors(ctx: &Ctx) -> Result<()> {
    ctx.db
        .batch_execute("CREATE TABLE {{tables.t}} (id int); INSERT INTO {{tables.t}} VALUES (1)")
        .await?;
    let as_dyn: Arc<dyn Executor> = Arc::new(ctx.db.clone());
    assert_eq!(count_rows(&*as_dyn, "{{tables.t}}").await?, 1);
    let tx = ctx.db.begin().await?;
    tx.execute("INSERT INTO {{tables.t}} VALUES (2)", &[])
        .await?;
    assert_eq!(count_rows(&tx, "{{tables.t}}").await?, 2);
    let tx_dyn: Arc<dyn Executor> = Arc::new(tx.clone());
    assert_eq!(count_rows(&*tx_dyn, "{{tables.t}}").await?, 2);
    drop(tx_dyn);
    tx.rollback().await?;
    let qualified = ctx.db.expand_sql("{{tables.t}}")?;
    assert_eq!(count_rows(&*ctx.pool, &qualified).await?, 1);
    Ok(())
}

/// `table_exists` resolves a name exactly as `{{tables.<name>}}` does: `MixedCase`, unquoted in
/// the expanded SQL, is the table `mixedcase`; a quoted mixed-case table is not that name.
///
/// # Errors
///
/// Any unexpected query error.
pub async fn table_exists_resolves_like_templates(ctx: &Ctx) -> Result<()> {
    let db = &ctx.db;
    assert!(!db.table_exists("MixedCase").await?);
    db.batch_execute("CREATE TABLE {{tables.MixedCase}} (x int)")
        .await?;
    db.copy_in("MixedCase", &["x"], &[vec![Value::Int4(1)]])
        .await?;
    assert!(db.table_exists("MixedCase").await?);
    assert!(db.table_exists("mixedcase").await?);
    assert!(
        db.table_exists(&format!("{}.MIXEDCASE", ctx.schema))
            .await?
    );
    // A table whose name really has capitals is not what the unquoted template names.
    db.batch_execute("CREATE TABLE {{schema}}.\"Quoted\" (x int)")
        .await?;
    assert!(!db.table_exists("Quoted").await?);
    assert!(
        crate::assert_err!(db.table_exists("a;b").await, Error::Identifier { .. })
            .to_string()
            .contains("a;b")
    );
    Ok(())
}
