//! Both drivers on one database: rows written through one are read identically through the other

#![cfg(feature = "chrono")]
//! (every value type, NULLs, arrays), and a module migrated through one is up to date through the
//! other.

use std::sync::Arc;

use pgdbm::prelude::*;
use pgdbm::{Kind, MigrationSource, Module, Row, SharedPool, ToParam, Value};
use pgdbm_conformance::{Capabilities, Ctx};
use pgdbm_driver_sqlx::SqlxDriver;
use pgdbm_driver_tokio_postgres::TokioPostgresPool;

const COLUMNS: &str = "b boolean, i2 smallint, i4 integer, i8 bigint, f4 real, f8 double precision,
    t text, vc varchar(20), bp char(3), nm name, by bytea, js json, jb jsonb, u uuid, o oid,
    e {{schema}}.mood, d date, tm time, ts timestamp, tz timestamptz,
    ab boolean[], ai2 smallint[], ai4 integer[], ai8 bigint[], af4 real[], af8 double precision[],
    at text[], avc varchar[], abp char(2)[], aby bytea[], ajs json[], ajb jsonb[], au uuid[],
    ad date[], ats timestamp[], atz timestamptz[], iv interval, aiv interval[]";

fn arr(element: Kind, items: Vec<Value>) -> Value {
    Value::Array { element, items }
}

/// One value per column of [`COLUMNS`], exercising edge cases (pre-2000 dates, NULL elements,
/// empty arrays, non-ASCII text).
fn sample() -> Vec<Value> {
    use chrono::{NaiveDate, NaiveTime, TimeZone, Utc};
    let d = NaiveDate::from_ymd_opt(1999, 12, 31).expect("date");
    let tm = NaiveTime::from_hms_micro_opt(23, 59, 58, 999_999).expect("time");
    let ts = d.and_time(tm);
    let tz = Utc.from_utc_datetime(
        &NaiveDate::from_ymd_opt(2031, 5, 6)
            .expect("date")
            .and_time(tm),
    );
    let json = serde_json::json!({"k": [1, 2.5, null, "é"], "n": {"x": true}});
    let uuid = uuid::Uuid::from_u128(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef);
    vec![
        Value::Bool(true),
        Value::Int2(i16::MIN),
        Value::Int4(i32::MAX),
        Value::Int8(i64::MIN),
        Value::Float4(-1.25),
        Value::Float8(6.02e23),
        Value::Text("héllo, 'wörld' \\ \"q\"".into()),
        Value::Text("varchar".into()),
        Value::Text("ab ".into()),
        Value::Text("a_name".into()),
        Value::Bytea(vec![0, 1, 2, 254, 255]),
        Value::Json(json.clone()),
        Value::Json(json.clone()),
        Value::Uuid(uuid),
        Value::Int8(4_000_000_000),
        Value::Text("sad".into()),
        Value::Date(d),
        Value::Time(tm),
        Value::Timestamp(ts),
        Value::TimestampTz(tz),
        arr(Kind::Bool, vec![Value::Bool(false), Value::Null]),
        arr(Kind::Int2, vec![Value::Int2(-1), Value::Int2(2)]),
        arr(
            Kind::Int4,
            vec![Value::Int4(1), Value::Null, Value::Int4(3)],
        ),
        arr(Kind::Int8, vec![]),
        arr(Kind::Float4, vec![Value::Float4(0.5)]),
        arr(Kind::Float8, vec![Value::Float8(-0.25), Value::Null]),
        arr(
            Kind::Text,
            vec![
                Value::Text("x".into()),
                Value::Text("y z".into()),
                Value::Null,
            ],
        ),
        arr(Kind::Text, vec![Value::Text("v".into())]),
        arr(Kind::Text, vec![Value::Text("ab".into())]),
        arr(
            Kind::Bytea,
            vec![Value::Bytea(vec![9]), Value::Bytea(vec![])],
        ),
        arr(Kind::Json, vec![Value::Json(json.clone())]),
        arr(
            Kind::Json,
            vec![Value::Json(serde_json::json!([1])), Value::Null],
        ),
        arr(Kind::Uuid, vec![Value::Uuid(uuid)]),
        arr(Kind::Date, vec![Value::Date(d)]),
        arr(Kind::Timestamp, vec![Value::Timestamp(ts)]),
        arr(Kind::TimestampTz, vec![Value::TimestampTz(tz)]),
        Value::Interval(pgdbm::Interval::new(-13, 40, 1)),
        arr(
            Kind::Interval,
            vec![Value::Null, Value::Interval(pgdbm::Interval::new(0, 0, -5))],
        ),
    ]
}

async fn insert(db: &Database, id: i32, values: &[Value]) -> pgdbm::Result<()> {
    let placeholders: Vec<String> = (1..=values.len() + 1).map(|i| format!("${i}")).collect();
    let sql = format!(
        "INSERT INTO {{{{tables.vals}}}} VALUES ({})",
        placeholders.join(", ")
    );
    let mut params: Vec<&dyn ToParam> = vec![&id];
    params.extend(values.iter().map(|v| v as &dyn ToParam));
    assert_eq!(db.execute(&sql, &params).await?, 1);
    Ok(())
}

async fn read_all(db: &Database) -> pgdbm::Result<Vec<Row>> {
    db.fetch_all("SELECT * FROM {{tables.vals}} ORDER BY id", &[])
        .await
}

async fn tokio_postgres_handle(ctx: &Ctx) -> pgdbm::Result<Database> {
    let pool: SharedPool = Arc::new(TokioPostgresPool::connect(&ctx.config).await?);
    Database::owning(pool, Some(&ctx.schema))
}

/// `numeric` is read by both drivers or by neither, by pgdbm's `decimal` feature alone, whichever
/// crate enabled it (this test binary may have the sqlx driver's `decimal` on and the other's off).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn numeric_is_read_alike_by_both_drivers() -> pgdbm::Result<()> {
    let ctx = context("cross_driver_numeric").await?;
    let sqlx_db = ctx.db.clone();
    let tp_db = tokio_postgres_handle(&ctx).await?;
    let sql = "SELECT $1::numeric AS n, ARRAY[$2::numeric] AS a";
    let via_sqlx = sqlx_db.fetch_one(sql, params![19.99f64, 7i64]).await;
    let via_tp = tp_db.fetch_one(sql, params![19.99f64, 7i64]).await;
    if pgdbm::driver::numeric::READABLE {
        let (via_sqlx, via_tp) = (via_sqlx?, via_tp?);
        assert_eq!(via_sqlx.value("n")?.kind(), Kind::Numeric);
        assert_eq!(via_sqlx.values(), via_tp.values());
    } else {
        for result in [via_sqlx, via_tp] {
            assert!(
                matches!(result, Err(pgdbm::Error::UnsupportedType { .. })),
                "{result:?}"
            );
        }
    }
    tp_db.close().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_written_by_one_driver_read_identically_by_the_other() -> pgdbm::Result<()> {
    let ctx = context("cross_driver_rows").await?;
    let sqlx_db = ctx.db.clone();
    let tp_db = tokio_postgres_handle(&ctx).await?;
    assert_eq!(sqlx_db.pool().driver_name(), "sqlx");
    assert_eq!(tp_db.pool().driver_name(), "tokio-postgres");

    sqlx_db
        .batch_execute(&format!(
            "CREATE TYPE {{{{schema}}}}.mood AS ENUM ('happy', 'sad');
             CREATE TABLE {{{{tables.vals}}}} (id int PRIMARY KEY, {COLUMNS})"
        ))
        .await?;
    let values = sample();
    let nulls = vec![Value::Null; values.len()];
    insert(&sqlx_db, 1, &values).await?;
    insert(&tp_db, 2, &values).await?;
    insert(&sqlx_db, 3, &nulls).await?;
    insert(&tp_db, 4, &nulls).await?;

    let via_sqlx = read_all(&sqlx_db).await?;
    let via_tp = read_all(&tp_db).await?;
    assert_eq!(via_sqlx.len(), 4);
    for (a, b) in via_sqlx.iter().zip(&via_tp) {
        // Same column names and type names, same values.
        assert_eq!(a, b, "the drivers read a row differently");
    }
    for row in [&via_sqlx[0], &via_sqlx[1]] {
        assert_eq!(&row.values()[1..], &values[..], "row {:?}", row.value("id"));
    }
    for row in [&via_sqlx[2], &via_sqlx[3]] {
        assert!(row.values()[1..].iter().all(Value::is_null));
    }
    // Integers bind across widths and text binds to uuid/jsonb the same way on both drivers.
    for db in [&sqlx_db, &tp_db] {
        let n = db
            .execute(
                "UPDATE {{tables.vals}} SET i8 = $1, i2 = $2, u = $3, jb = $4 WHERE id = $5",
                params![
                    7i32,
                    9i64,
                    "01234567-89ab-cdef-0123-456789abcdef",
                    "{\"a\": 1}",
                    3i64
                ],
            )
            .await?;
        assert_eq!(n, 1);
    }
    let a = sqlx_db
        .fetch_one(
            "SELECT i8, i2, u, jb FROM {{tables.vals}} WHERE id = 3",
            &[],
        )
        .await?;
    let b = tp_db
        .fetch_one(
            "SELECT i8, i2, u, jb FROM {{tables.vals}} WHERE id = 3",
            &[],
        )
        .await?;
    assert_eq!(a, b);
    assert_eq!(a.get::<i64>("i8")?, 7);
    tp_db.close().await;
    Ok(())
}

struct Notes;

impl Module for Notes {
    fn name(&self) -> &str {
        "cross_driver_notes"
    }
    fn migrations(&self) -> MigrationSource {
        MigrationSource::from_pairs([
            (
                "001_notes.sql",
                "CREATE TABLE {{tables.notes}} (id serial PRIMARY KEY, body text NOT NULL);",
            ),
            (
                "002_tags.sql",
                "ALTER TABLE {{tables.notes}} ADD COLUMN tags text[] NOT NULL DEFAULT '{}';",
            ),
        ])
        .expect("valid migrations")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_module_migrated_through_one_driver_is_up_to_date_through_the_other() -> pgdbm::Result<()>
{
    let ctx = context("cross_driver_migrate").await?;
    let tp_db = tokio_postgres_handle(&ctx).await?;

    // tokio-postgres first, then sqlx.
    let first = tp_db.migrate(&Notes).await?;
    assert_eq!(first.applied.len(), 2);
    let second = ctx.db.migrate(&Notes).await?;
    assert!(second.applied.is_empty(), "{second:?}");
    assert_eq!(second.skipped.len(), 2);
    let status = ctx
        .db
        .migrator()
        .status(Notes.name(), &Notes.migrations())
        .await?;
    assert!(
        status
            .iter()
            .all(|s| s.state == pgdbm::migrate::MigrationState::Applied),
        "{status:?}"
    );

    // sqlx first (another schema), then tokio-postgres.
    let other = format!("{}_b", ctx.schema);
    let sqlx_b = ctx.db.with_schema(Some(&other))?;
    let tp_b = tp_db.with_schema(Some(&other))?;
    assert_eq!(sqlx_b.migrate(&Notes).await?.applied.len(), 2);
    let again = tp_b.migrate(&Notes).await?;
    assert!(again.applied.is_empty(), "{again:?}");
    tp_b.execute(
        "INSERT INTO {{tables.notes}} (body, tags) VALUES ($1, $2)",
        params!["hi", vec!["a".to_owned()]],
    )
    .await?;
    let tags: Vec<String> = sqlx_b
        .fetch_value("SELECT tags FROM {{tables.notes}}", &[])
        .await?;
    assert_eq!(tags, vec!["a"]);
    sqlx_b
        .batch_execute("DROP SCHEMA {{schema}} CASCADE")
        .await?;
    tp_db.close().await;
    Ok(())
}

/// A check context on the server pgdbm-testing finds (or starts).
async fn context(name: &str) -> pgdbm::Result<Ctx> {
    Ctx::with_capabilities::<SqlxDriver>(name, Capabilities::default()).await
}
