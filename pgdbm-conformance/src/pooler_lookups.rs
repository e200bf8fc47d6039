//! Result columns of types a driver has to look up (an enum, its array) through a transaction
//! pooler, under load: the lookup's exchanges must reach one server connection, and no named
//! statement may be left on a server connection the pooler hands to other clients.

use std::time::Duration;

use futures_util::future::try_join_all;
use pgdbm::prelude::*;
use pgdbm::{Database, Result, Value, params};

use crate::Ctx;
use crate::pooler::pooled;

/// Rounds each task runs.
const ROUNDS: usize = 25;
/// Tasks at once (PgBouncer's pool has two server connections, so they switch all the time).
const TASKS: usize = 8;

/// One round of a task: enum and enum-array columns read outside and inside transactions, one
/// of them from a type created while the pool runs.
async fn round(db: &Database, task: usize, n: usize) -> Result<()> {
    let id = i32::try_from(1_000 + task * ROUNDS + n).unwrap_or(i32::MAX);
    let rows = db
        .fetch_all("SELECT hue, past FROM {{tables.paint}} ORDER BY id", &[])
        .await?;
    assert!(rows.len() >= 2, "the seeded rows are missing");
    let first: String = rows[0].get("hue")?;
    assert_eq!(first, "red");
    let all: Vec<String> = db
        .fetch_value("SELECT enum_range(NULL::{{schema}}.hue)", &[])
        .await?;
    assert_eq!(all, ["red", "green", "blue"]);
    let tx = db.begin().await?;
    let hue: String = tx
        .fetch_value(
            "INSERT INTO {{tables.paint}} (id, hue, past) VALUES ($1, $2, $3) RETURNING hue",
            params![id, "green", vec!["red".to_owned(), "blue".to_owned()]],
        )
        .await?;
    assert_eq!(hue, "green");
    tx.commit().await?;
    if task == 0 && n == ROUNDS / 2 {
        // A type created while the other tasks run, on connections opened before it existed.
        db.batch_execute("CREATE TYPE {{schema}}.tone AS ENUM ('soft', 'loud')")
            .await?;
    }
    if n > ROUNDS / 2 {
        let tone: Option<String> = db
            .fetch_value(
                "SELECT t FROM unnest(enum_range(NULL::{{schema}}.tone)) AS t \
                 WHERE t::text = $1",
                params!["loud"],
            )
            .await
            .or_else(|e| {
                // Before task 0 created it, the type is missing (42704).
                if e.code() == Some("42704") {
                    Ok(None)
                } else {
                    Err(e)
                }
            })?;
        assert!(tone.is_none_or(|t| t == "loud"));
    }
    Ok(())
}

/// Eight tasks read enum and enum-array columns through PgBouncer (pool size 2, so server
/// connections switch between exchanges), with autocommit statements, in transactions, after a
/// COPY into an enum column, and from a type created while they run; none fails, and afterwards
/// no named statement is left on PgBouncer's server connections.
///
/// # Errors
///
/// Any unexpected query error.
pub async fn pooler_looked_up_types_under_load(ctx: &Ctx) -> Result<()> {
    let db = pooled(ctx, |b| b.max_connections(4)).await?;
    // The pool's connections are open before the types exist.
    try_join_all((0..4).map(|_| db.execute("SELECT pg_sleep(0.05)", &[]))).await?;
    db.batch_execute(
        "CREATE TYPE {{schema}}.hue AS ENUM ('red', 'green', 'blue');
         CREATE TABLE {{tables.paint}} (
             id int PRIMARY KEY,
             hue {{schema}}.hue NOT NULL,
             past {{schema}}.hue[] NOT NULL
         )",
    )
    .await?;
    let seeded = db
        .copy_in(
            "paint",
            &["id", "hue", "past"],
            &[
                vec![
                    Value::Int4(1),
                    Value::Text("red".into()),
                    Value::Array {
                        element: pgdbm::Kind::Text,
                        items: vec![Value::Text("blue".into())],
                    },
                ],
                vec![
                    Value::Int4(2),
                    Value::Text("blue".into()),
                    Value::Array {
                        element: pgdbm::Kind::Text,
                        items: vec![],
                    },
                ],
            ],
        )
        .await?;
    assert_eq!(seeded, 2);
    try_join_all((0..TASKS).map(|task| {
        let db = &db;
        async move {
            for n in 0..ROUNDS {
                round(db, task, n).await?;
            }
            Ok::<_, pgdbm::Error>(())
        }
    }))
    .await?;
    let written: i64 = db
        .fetch_value("SELECT count(*) FROM {{tables.paint}}", &[])
        .await?;
    assert_eq!(written, 2 + i64::try_from(TASKS * ROUNDS).unwrap_or(0));
    // Whatever server connection each of these reaches: no statement prepared by the protocol
    // (a lookup's) is left on it. The first run of the probe may see the statements a driver
    // prepares for the probe itself (to learn its parameter types), and a driver's own `PREPARE`
    // of its lookup statements (`from_sql`) is visible to the statement it runs for.
    let probe = "SELECT count(*) FROM pg_prepared_statements WHERE NOT from_sql";
    let _: i64 = db.fetch_value(probe, &[]).await?;
    for _ in 0..8 {
        let left: i64 = db.fetch_value(probe, &[]).await?;
        assert_eq!(left, 0, "a named statement was left on a server connection");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    db.close().await;
    Ok(())
}
