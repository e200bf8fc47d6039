//! Rows into Rust types without JSON: `#[derive(FromRow)]` (columns by field name), tuples
//! (columns by position), the typed errors of a mismatch, and the small readers next to them —
//! `execute_and_return_id::<T>` and `fetch_value_at`.

use std::time::Duration;

use pgdbm::prelude::*;
use pgdbm::{Error, Json, Result};
use uuid::Uuid;

use super::Ctx;
use crate::cancellation::{Probe, cancellation_tables, poll_then_drop};
use crate::capture::unique_token;
use crate::support::error_texts;

#[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq, Clone)]
struct Prefs {
    theme: String,
}

/// Every option of the derive at once.
#[derive(FromRow, Debug, PartialEq)]
struct Person {
    id: i64,
    #[pgdbm(rename = "full_name")]
    name: String,
    nickname: Option<String>,
    #[pgdbm(default)]
    visits: i64,
    #[pgdbm(flatten)]
    place: Place,
    prefs: Json<Prefs>,
    score: Option<i32>,
}

#[derive(FromRow, Debug, PartialEq)]
struct Place {
    city: Option<String>,
}

/// A generic struct: the key type is chosen by the caller.
#[derive(FromRow, Debug, PartialEq)]
struct Keyed<K> {
    id: K,
    #[pgdbm(rename = "full_name")]
    name: String,
}

/// The same columns through serde, with a `Json<T>` field.
#[derive(serde::Deserialize, Debug, PartialEq)]
struct PersonDe {
    id: i64,
    prefs: Json<Prefs>,
}

async fn people(ctx: &Ctx) -> Result<()> {
    let db = &ctx.db;
    db.batch_execute(
        "CREATE TABLE {{tables.people}} (id bigserial PRIMARY KEY, full_name text NOT NULL, \
         nickname text, city text, prefs jsonb NOT NULL, score int4)",
    )
    .await?;
    let dark = Json(Prefs {
        theme: "dark".into(),
    });
    db.execute(
        "INSERT INTO {{tables.people}} (full_name, nickname, city, prefs, score) \
         VALUES ($1, $2, $3, $4, $5), ($6, $7, $8, $9, $10)",
        params![
            "Ann Lee",
            "annie",
            "Oslo",
            dark,
            7i32,
            "Bo Chen",
            None::<String>,
            None::<String>,
            dark,
            None::<i32>
        ],
    )
    .await?;
    Ok(())
}

const SELECT_PEOPLE: &str =
    "SELECT id, full_name, nickname, city, prefs, score FROM {{tables.people}} ORDER BY id";

/// `#[derive(FromRow)]` on both drivers: columns by field name, `rename`, `default` for a column
/// the row lacks (and the column's value when it has it), `flatten`, `Option` fields reading
/// NULL as `None`, a `Json<T>` field, a generic struct; through `fetch_all_as`, `fetch_one_as`,
/// `fetch_optional_as` on a handle, a transaction and the pool. `Json<T>` is also a field of a
/// serde type read with `fetch_all_de`.
///
/// # Errors
///
/// Any unexpected query error.
pub async fn rows_derive_maps_columns_by_field_name(ctx: &Ctx) -> Result<()> {
    people(ctx).await?;
    let db = &ctx.db;
    let prefs = Json(Prefs {
        theme: "dark".into(),
    });
    let all: Vec<Person> = db.fetch_all_as(SELECT_PEOPLE, &[]).await?;
    assert_eq!(
        all,
        vec![
            Person {
                id: 1,
                name: "Ann Lee".into(),
                nickname: Some("annie".into()),
                visits: 0,
                place: Place {
                    city: Some("Oslo".into())
                },
                prefs: prefs.clone(),
                score: Some(7),
            },
            Person {
                id: 2,
                name: "Bo Chen".into(),
                nickname: None,
                visits: 0,
                place: Place { city: None },
                prefs: prefs.clone(),
                score: None,
            },
        ]
    );
    // `default` only stands in for a missing column: a present one is read.
    let visited: Person = db
        .fetch_one_as(
            "SELECT p.*, 3::int8 AS visits FROM {{tables.people}} p WHERE id = $1",
            params![2i64],
        )
        .await?;
    assert_eq!((visited.id, visited.visits), (2, 3));
    let none: Option<Person> = db
        .fetch_optional_as(
            "SELECT * FROM {{tables.people}} WHERE id = $1",
            params![99i64],
        )
        .await?;
    assert_eq!(none, None);
    let keyed: Vec<Keyed<i64>> = ctx
        .pool
        .fetch_all_as(
            &db.expand_sql("SELECT id, full_name FROM {{tables.people}} ORDER BY id")?,
            &[],
        )
        .await?;
    assert_eq!(
        keyed[1],
        Keyed {
            id: 2,
            name: "Bo Chen".into()
        }
    );
    let in_tx = db
        .transaction(|tx| async move {
            tx.fetch_optional_as::<Keyed<Option<i32>>>(
                "SELECT id, full_name FROM {{tables.people}} WHERE id = 1",
                &[],
            )
            .await
        })
        .await?;
    assert_eq!(in_tx.map(|k| k.id), Some(Some(1)));
    let de: Vec<PersonDe> = db.fetch_all_de(SELECT_PEOPLE, &[]).await?;
    assert_eq!(de[0], PersonDe { id: 1, prefs });
    Ok(())
}

/// Tuples read columns by position: 1, 2 and 12 elements (every common value type, `Option`
/// elements for NULL); extra columns are ignored; a row with fewer columns than the tuple is an
/// `Error::ColumnNotFound` naming the missing position and the tuple element.
///
/// # Errors
///
/// Any unexpected query error.
pub async fn rows_tuples_read_columns_by_position(ctx: &Ctx) -> Result<()> {
    people(ctx).await?;
    let db = &ctx.db;
    let ids: Vec<(i64,)> = db
        .fetch_all_as("SELECT id FROM {{tables.people}} ORDER BY id", &[])
        .await?;
    assert_eq!(ids, vec![(1,), (2,)]);
    let pairs = db.fetch_all_as::<(i64, String)>(SELECT_PEOPLE, &[]).await?;
    assert_eq!(pairs, vec![(1, "Ann Lee".into()), (2, "Bo Chen".into())]);
    let nulls = db
        .fetch_one_as::<(Option<String>, Option<i32>)>(
            "SELECT nickname, score FROM {{tables.people}} WHERE id = 2",
            &[],
        )
        .await?;
    assert_eq!(nulls, (None, None));

    type Twelve = (
        i16,
        i32,
        i64,
        bool,
        f32,
        f64,
        String,
        Vec<u8>,
        serde_json::Value,
        Uuid,
        Option<String>,
        Vec<i32>,
    );
    let key = Uuid::from_u128(0x1234_5678_9abc_def0_1234_5678_9abc_def0);
    let twelve: Twelve = ctx
        .pool
        .fetch_one_as(
            "SELECT 1::int2, 2::int4, 3::int8, true, 1.5::float4, 2.5::float8, 'seven'::text, \
             '\\x0809'::bytea, '{\"n\": 9}'::jsonb, $1::uuid, NULL::text, ARRAY[11, 12]::int4[]",
            params![key],
        )
        .await?;
    assert_eq!(
        twelve,
        (
            1,
            2,
            3,
            true,
            1.5,
            2.5,
            "seven".into(),
            vec![8, 9],
            serde_json::json!({"n": 9}),
            key,
            None,
            vec![11, 12]
        )
    );

    let err = crate::assert_err!(
        db.fetch_one_as::<(i64, String, bool)>("SELECT 1::int8 AS a, 'b'::text AS b", &[])
            .await,
        Error::ColumnNotFound { .. }
    );
    assert_eq!(
        err.to_string(),
        "no column 2 for field (i64, String, bool).2 in row (columns: a, b)"
    );
    Ok(())
}

#[derive(FromRow, Debug)]
#[allow(dead_code)]
struct Badge {
    #[pgdbm(rename = "code")]
    number: i64,
}

#[derive(FromRow, Debug)]
#[allow(dead_code)]
struct Strict {
    nickname: String,
}

#[derive(FromRow, Debug)]
#[allow(dead_code)]
struct Outer {
    id: i64,
    #[pgdbm(flatten)]
    badge: Badge,
}

/// A row that does not fit: the error names the column, the struct and field (the innermost
/// one for a flattened struct, the element for a tuple), the Rust type wanted and the
/// PostgreSQL type found — never the value, checked with a distinctive one in `Display`,
/// `Debug` and the source chain. NULL into a non-`Option` field and a missing column say so.
///
/// # Errors
///
/// Any unexpected query error.
pub async fn rows_mismatch_names_struct_field_column_and_types(ctx: &Ctx) -> Result<()> {
    let db = &ctx.db;
    let secret = unique_token("Zq-row-value");
    db.batch_execute("CREATE TABLE {{tables.badges}} (id int8, code text, nickname text)")
        .await?;
    db.execute(
        "INSERT INTO {{tables.badges}} VALUES (1, $1, NULL)",
        params![secret],
    )
    .await?;
    let select = "SELECT id, code, nickname FROM {{tables.badges}}";
    let hidden = |what: &str, err: &Error| {
        let text = error_texts(err);
        assert!(!text.contains(&secret), "{what}: the value leaked: {text}");
        text
    };

    let err = crate::assert_err!(
        db.fetch_all_as::<Badge>(select, &[]).await,
        Error::Decode { .. }
    );
    hidden("struct field", &err);
    assert_eq!(
        err.to_string(),
        "cannot decode column code for field Badge.number: expected i64, found text"
    );
    let Error::Decode {
        column,
        expected,
        actual,
        field,
        ..
    } = &err
    else {
        unreachable!()
    };
    assert_eq!(
        (column.as_str(), expected.as_str(), actual.as_str()),
        ("code", "i64", "text")
    );
    assert_eq!(field.as_deref(), Some("Badge.number"));

    let err = crate::assert_err!(
        db.fetch_one_as::<Outer>(select, &[]).await,
        Error::Decode { .. }
    );
    hidden("flattened field", &err);
    assert_eq!(
        err.to_string(),
        "cannot decode column code for field Badge.number: expected i64, found text"
    );

    let err = crate::assert_err!(
        db.fetch_optional_as::<Strict>(select, &[]).await,
        Error::Decode { .. }
    );
    assert_eq!(
        err.to_string(),
        "cannot decode column nickname for field Strict.nickname: expected String, found NULL"
    );

    let err = crate::assert_err!(
        db.fetch_one_as::<Badge>("SELECT id FROM {{tables.badges}}", &[])
            .await,
        Error::ColumnNotFound { .. }
    );
    assert_eq!(
        err.to_string(),
        "no column code for field Badge.number in row (columns: id)"
    );

    let err = crate::assert_err!(
        ctx.pool
            .fetch_one_as::<(i64, i32)>("SELECT 1::int8, $1::text", params![secret])
            .await,
        Error::Decode { .. }
    );
    let text = hidden("tuple element", &err);
    assert!(
        text.contains("for field (i64, i32).1: expected i32, found text"),
        "{text}"
    );
    Ok(())
}

/// `execute_and_return_id` is generic over the key type: a `uuid` key (server default, with
/// and without an explicit `RETURNING`), a `bigint` key, `Option<T>` for a NULL, and a
/// mismatched type as a typed error naming both types.
///
/// # Errors
///
/// Any unexpected query error.
pub async fn rows_execute_and_return_id_of_any_type(ctx: &Ctx) -> Result<()> {
    let db = &ctx.db;
    db.batch_execute(
        "CREATE TABLE {{tables.tokens}} (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), note text); \
         CREATE TABLE {{tables.serials}} (id bigserial PRIMARY KEY, note text)",
    )
    .await?;
    let a = db
        .execute_and_return_id::<Uuid>(
            "INSERT INTO {{tables.tokens}} (note) VALUES ($1)",
            params!["a"],
        )
        .await?;
    let chosen = Uuid::from_u128(42);
    let b: Uuid = db
        .execute_and_return_id(
            "INSERT INTO {{tables.tokens}} (id, note) VALUES ($1, $2) RETURNING id",
            params![chosen, "b"],
        )
        .await?;
    assert_eq!(b, chosen);
    let note: String = db
        .fetch_value(
            "SELECT note FROM {{tables.tokens}} WHERE id = $1",
            params![a],
        )
        .await?;
    assert_eq!(note, "a");
    let serial = db
        .execute_and_return_id::<i64>("INSERT INTO {{tables.serials}} (note) VALUES ('x')", &[])
        .await?;
    assert_eq!(serial, 1);
    let nothing = db
        .execute_and_return_id::<Option<String>>(
            "UPDATE {{tables.serials}} SET note = NULL WHERE id = 1 RETURNING note",
            &[],
        )
        .await?;
    assert_eq!(nothing, None);
    let err = crate::assert_err!(
        db.execute_and_return_id::<i64>("INSERT INTO {{tables.tokens}} (note) VALUES ('c')", &[])
            .await,
        Error::Decode { .. }
    );
    assert_eq!(
        err.to_string(),
        "cannot decode column id: expected i64, found uuid"
    );
    Ok(())
}

/// `fetch_value_at` reads one column of the first row by name or by position, `Option<T>`
/// reading NULL as `None`; a missing column, a NULL into a non-`Option` and no row at all are
/// typed errors. `fetch_value::<Option<T>>` reads a NULL first column.
///
/// # Errors
///
/// Any unexpected query error.
pub async fn rows_fetch_value_by_name_and_index(ctx: &Ctx) -> Result<()> {
    let db = &ctx.db;
    let sql = "SELECT 1::int8 AS a, 'two'::text AS b, NULL::text AS c WHERE $1";
    let b: String = db.fetch_value_at(sql, params![true], "b").await?;
    assert_eq!(b, "two");
    let by_index: String = db.fetch_value_at(sql, params![true], 1usize).await?;
    assert_eq!(by_index, "two");
    let c: Option<String> = db.fetch_value_at(sql, params![true], "c").await?;
    assert_eq!(c, None);
    let a: Option<i64> = ctx.pool.fetch_value_at(sql, params![true], 0usize).await?;
    assert_eq!(a, Some(1));
    let owned_name = String::from("b");
    let in_tx = db
        .transaction(|tx| async move {
            tx.fetch_value_at::<String, _>(sql, params![true], owned_name)
                .await
        })
        .await?;
    assert_eq!(in_tx, "two");

    let err = crate::assert_err!(
        db.fetch_value_at::<i64, _>(sql, params![true], "missing")
            .await,
        Error::ColumnNotFound { .. }
    );
    assert_eq!(
        err.to_string(),
        "no column missing in row (columns: a, b, c)"
    );
    crate::assert_err!(
        db.fetch_value_at::<i64, _>(sql, params![true], 3usize)
            .await,
        Error::ColumnNotFound { .. }
    );
    let err = crate::assert_err!(
        db.fetch_value_at::<String, _>(sql, params![true], "c")
            .await,
        Error::Decode { .. }
    );
    assert_eq!(
        err.to_string(),
        "cannot decode column c: expected String, found NULL"
    );
    crate::assert_err!(
        db.fetch_value_at::<String, _>(sql, params![false], "b")
            .await,
        Error::RowNotFound { .. }
    );
    let null: Option<i64> = db.fetch_value("SELECT NULL::int8", &[]).await?;
    assert_eq!(null, None);
    Ok(())
}

/// The typed readers dropped at each of their awaits (`fetch_all_as` of a derived struct,
/// `fetch_value_at`, `execute_and_return_id::<Uuid>`): no connection is left busy or inside a
/// transaction and an acknowledged insert afterwards is visible (the same probe as the
/// cancellation checks).
///
/// # Errors
///
/// Any unexpected query error.
pub async fn rows_cancelled_readers_leak_nothing(ctx: &Ctx) -> Result<()> {
    cancellation_tables(ctx).await?;
    people(ctx).await?;
    ctx.db
        .batch_execute(
            "CREATE TABLE {{tables.tokens}} (id uuid PRIMARY KEY DEFAULT gen_random_uuid())",
        )
        .await?;
    let probe = Probe::open(ctx, 1).await?;
    let db = probe.db.clone();
    let mut ids = 9_000;
    for what in ["fetch_all_as", "fetch_value_at", "execute_and_return_id"] {
        let mut finished = false;
        for polls in 1..=40 {
            let db = db.clone();
            let op = async move {
                match what {
                    "fetch_all_as" => db
                        .fetch_all_as::<Person>(SELECT_PEOPLE, &[])
                        .await
                        .map(|rows| rows.len()),
                    "fetch_value_at" => db
                        .fetch_value_at::<String, _>(SELECT_PEOPLE, &[], "full_name")
                        .await
                        .map(|name| name.len()),
                    _ => db
                        .execute_and_return_id::<Uuid>(
                            "INSERT INTO {{tables.tokens}} DEFAULT VALUES",
                            &[],
                        )
                        .await
                        .map(|_| 1),
                }
            };
            let done = poll_then_drop(op, polls, Duration::from_millis(2)).await;
            if let Some(Err(e)) = &done {
                panic!("{what}: failed when not cancelled: {e}");
            }
            ids += 1;
            probe
                .assert_clean(ctx, &format!("{what}, dropped after {polls} poll(s)"), ids)
                .await?;
            if done.is_some() {
                finished = true;
                break;
            }
        }
        assert!(finished, "{what}: not finished after 40 polls");
    }
    probe.db.close().await;
    Ok(())
}
