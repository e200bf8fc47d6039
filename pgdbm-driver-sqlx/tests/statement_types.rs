//! The sqlx driver learns a statement's parameter types once per pool (see the crate docs):
//! these checks make sure that is never wrong. The types follow a schema change, and a
//! statement of the same text that the application prepared itself on a shared `PgPool`, with
//! other parameter types, never gets pgdbm's values.

use std::sync::Arc;
use std::time::{Duration, Instant};

use pgdbm::driver::PoolProvider;
use pgdbm::prelude::*;
use pgdbm::{Error, Value};
use pgdbm_conformance::{Capabilities, Ctx};
use pgdbm_driver_sqlx::{SqlxDriver, SqlxPool, sqlx};

/// A check context on the server pgdbm-testing finds (or starts), and a pgdbm handle on a pool of
/// exactly `n` connections scoped to the context's schema.
async fn setup(name: &str, n: u32) -> pgdbm::Result<(Ctx, Arc<SqlxPool>, Database)> {
    let ctx = Ctx::with_capabilities::<SqlxDriver>(name, Capabilities::default()).await?;
    let config = ctx.config_with(|b| b.min_connections(n).max_connections(n))?;
    let pool = Arc::new(SqlxPool::connect(&config).await?);
    let db = Database::new(pool.clone(), Some(&ctx.schema))?;
    Ok((ctx, pool, db))
}

/// Runs `sql` with `params` on each of the pool's `n` connections at once (each in a
/// transaction of its own, so that all are held together), returning each first value.
async fn on_every_connection<T: pgdbm::FromValue + Send>(
    db: &Database,
    n: usize,
    sql: &str,
    params: &[Value],
) -> pgdbm::Result<Vec<T>> {
    let mut txs = Vec::with_capacity(n);
    for _ in 0..n {
        txs.push(db.begin().await?);
    }
    let params: Vec<&dyn pgdbm::ToParam> =
        params.iter().map(|v| v as &dyn pgdbm::ToParam).collect();
    let mut values = Vec::with_capacity(n);
    for tx in &txs {
        values.push(tx.fetch_value::<T>(sql, &params).await?);
    }
    for tx in txs {
        tx.rollback().await?;
    }
    Ok(values)
}

/// Waits until sqlx has taken back the connections handed out (it does so in a task of its own).
async fn idle(pool: &SqlxPool, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while pool.inner().num_idle() < n {
        assert!(Instant::now() < deadline, "connections never came back");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parameter_types_follow_a_column_type_change() -> pgdbm::Result<()> {
    let (ctx, pool, db) = setup("types_follow_alter", 2).await?;
    db.batch_execute(
        "CREATE TABLE {{tables.t}} (v integer); INSERT INTO {{tables.t}} VALUES (1), (2), (3)",
    )
    .await?;
    let sql = "SELECT count(*) FROM {{tables.t}} WHERE v = $1";
    // Both connections hold the statement with an `integer` parameter.
    assert_eq!(
        on_every_connection::<i64>(&db, 2, sql, &[Value::Int4(2)]).await?,
        [1, 1]
    );

    // A value that does not fit the old type: learned again, at once.
    db.batch_execute(
        "ALTER TABLE {{tables.t}} ALTER COLUMN v TYPE bigint; \
         INSERT INTO {{tables.t}} VALUES (5000000000)",
    )
    .await?;
    assert_eq!(
        on_every_connection::<i64>(&db, 2, sql, &[Value::Int8(5_000_000_000)]).await?,
        [1, 1]
    );

    db.batch_execute("ALTER TABLE {{tables.t}} ALTER COLUMN v TYPE text USING v::text")
        .await?;
    assert_eq!(
        on_every_connection::<i64>(&db, 2, sql, &[Value::Text("5000000000".into())]).await?,
        [1, 1]
    );

    // A value that fits neither the old nor the current type stays the caller's error.
    let err = db
        .fetch_value::<i64>(sql, params![vec![1u8, 2]])
        .await
        .expect_err("bytea into text");
    assert!(matches!(err, Error::Encode { index: 1, .. }), "{err:?}");
    assert_eq!(db.fetch_value::<i64>(sql, params!["1"]).await?, 1);

    drop(ctx);
    pool.close().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_result_type_fails_once_then_is_learned_again() -> pgdbm::Result<()> {
    let (ctx, pool, db) = setup("types_result_change", 2).await?;
    db.batch_execute("CREATE TABLE {{tables.t}} (v integer); INSERT INTO {{tables.t}} VALUES (7)")
        .await?;
    let sql = "SELECT v FROM {{tables.t}} WHERE v = $1";
    // Both connections hold the statement.
    assert_eq!(
        on_every_connection::<i32>(&db, 2, sql, &[Value::Int4(7)]).await?,
        [7, 7]
    );
    db.batch_execute("ALTER TABLE {{tables.t}} ALTER COLUMN v TYPE bigint")
        .await?;
    // The server refuses the statement it planned for `integer` results; pgdbm then forgets
    // what it learned, and the next execution works, on any connection.
    let err = db
        .fetch_value::<i64>(sql, params![7i64])
        .await
        .expect_err("the cached plan changed its result type");
    assert_eq!(err.code(), Some("0A000"), "{err}");
    for _ in 0..6 {
        assert_eq!(db.fetch_value::<i64>(sql, params![7i64]).await?, 7);
    }
    drop(ctx);
    pool.close().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_application_statement_of_the_same_text_is_kept_apart() -> pgdbm::Result<()> {
    let (ctx, pool, db) = setup("types_shared_pool", 2).await?;
    db.batch_execute("CREATE TABLE {{tables.t}} (v bigint); INSERT INTO {{tables.t}} VALUES (3)")
        .await?;
    let template = "SELECT count(*) FROM {{tables.t}} WHERE v = $1";
    let sql = db.expand_sql(template)?;
    let app = pool.inner();

    // The application prepares the text on connection A with a `double precision` parameter.
    let mut a = app.acquire().await.expect("connection A");
    let n: i64 = sqlx::query_scalar(sql.as_str())
        .bind(3.0f64)
        .fetch_one(&mut *a)
        .await
        .expect("application query");
    assert_eq!(n, 1);
    // pgdbm learns the same text on connection B (A is held): a `bigint` parameter.
    assert_eq!(db.fetch_value::<i64>(template, params![3i64]).await?, 1);
    idle(&pool, 1).await;
    // Hold B and give A back: pgdbm now runs on A. Had it sent the same text, A's statement
    // would read pgdbm's `bigint` bytes as a `double precision`.
    let b = app.acquire().await.expect("connection B");
    drop(a);
    idle(&pool, 1).await;
    for _ in 0..3 {
        assert_eq!(db.fetch_value::<i64>(template, params![3i64]).await?, 1);
    }
    // The application's statement still has its own types.
    let n: i64 = sqlx::query_scalar(sql.as_str())
        .bind(3.0f64)
        .fetch_one(app)
        .await
        .expect("application query");
    assert_eq!(n, 1);
    drop(b);
    drop(ctx);
    pool.close().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeated_wrong_value_does_not_fill_the_statement_cache() -> pgdbm::Result<()> {
    let (ctx, pool, db) = setup("types_wrong_value", 1).await?;
    db.batch_execute("CREATE TABLE {{tables.t}} (v integer)")
        .await?;
    let sql = "SELECT count(*) FROM {{tables.t}} WHERE v = $1";
    assert_eq!(db.fetch_value::<i64>(sql, params![1i32]).await?, 0);
    let prepared = "SELECT count(*) FROM pg_prepared_statements";
    let before: i64 = db.fetch_value(prepared, &[]).await?;
    for _ in 0..20 {
        let err = db
            .fetch_value::<i64>(sql, params!["not a number"])
            .await
            .expect_err("text into integer");
        assert!(matches!(err, Error::Encode { index: 1, .. }), "{err:?}");
    }
    // The first wrong value checks the types against the server once (one more statement);
    // the others, within a second, do not.
    let after: i64 = db.fetch_value(prepared, &[]).await?;
    assert!(
        after <= before + 1,
        "{before} statements before, {after} after"
    );
    drop(ctx);
    pool.close().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tag_never_changes_what_the_sql_means() -> pgdbm::Result<()> {
    let (ctx, pool, db) = setup("types_tag_text", 1).await?;
    // A trailing semicolon, a trailing line comment, an unterminated block comment.
    assert_eq!(
        db.fetch_value::<i32>("SELECT $1::int;", params![5i32])
            .await?,
        5
    );
    assert_eq!(
        db.fetch_value::<i32>("SELECT $1::int -- the end", params![6i32])
            .await?,
        6
    );
    let err = db
        .fetch_value::<i32>("SELECT $1::int /* never closed", params![7i32])
        .await
        .expect_err("an unterminated comment stays an error");
    assert_eq!(err.code(), Some("42601"), "{err}");
    // Two statements are still refused as one prepared statement, and the error quotes the SQL
    // as written, without the tag.
    let err = db
        .execute("SELECT $1::int; SELECT 2", params![8i32])
        .await
        .expect_err("two commands");
    assert_eq!(err.code(), Some("42601"), "{err}");
    assert!(!err.to_string().contains("pgdbm:"), "{err}");
    drop(ctx);
    pool.close().await;
    Ok(())
}
