//! Values: every type round-trips through parameters and rows, integers bind across widths,
//! bad parameters and bad reads give typed errors.

use pgdbm::prelude::*;
use pgdbm::{Error, Json, Result, Value};

use super::Ctx;

/// Every supported type round-trips: bound as a parameter, stored, read back equal; NULL ↔ `None`.
///
/// # Errors
///
/// Any query error.
pub async fn values_roundtrip(ctx: &Ctx) -> Result<()> {
    let db = &ctx.db;
    db.batch_execute(
        "CREATE TABLE {{tables.vals}} (
            id int PRIMARY KEY, b boolean, i2 smallint, i4 integer, i8 bigint, f4 real,
            f8 double precision, t text, vc varchar(20), bp char(3), by bytea, js json, jb jsonb,
            u uuid, d date, tm time, ts timestamp, tz timestamptz,
            ai integer[], at text[], ab bigint[], aj jsonb[])",
    )
    .await?;
    let uuid = uuid::Uuid::from_u128(0x1234_5678_9abc_def0_1234_5678_9abc_def0);
    let json = serde_json::json!({"a": [1, 2, {"b": null}], "c": "é"});
    #[cfg(feature = "chrono")]
    let (d, tm, ts, tz) = {
        use chrono::{NaiveDate, NaiveTime, TimeZone, Utc};
        let d = NaiveDate::from_ymd_opt(2024, 2, 29).expect("valid date");
        let tm = NaiveTime::from_hms_micro_opt(13, 14, 15, 123_456).expect("valid time");
        let ts = d.and_time(tm);
        let tz = Utc.from_utc_datetime(&ts);
        (d, tm, ts, tz)
    };
    #[cfg(not(feature = "chrono"))]
    let (d, tm, ts, tz) = (Value::Null, Value::Null, Value::Null, Value::Null);
    db.execute(
        "INSERT INTO {{tables.vals}} VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17,$18,$19,$20,$21,$22)",
        params![
            1i32, true, -7i16, i32::MIN, i64::MAX, 1.5f32, -2.25f64, "héllo 'q'", "vc", "abc",
            vec![0u8, 1, 255], json.clone(), json.clone(), uuid, d, tm, ts, tz,
            vec![Some(1i32), None, Some(3)], vec!["x".to_owned(), "y z".to_owned()],
            Vec::<i64>::new(), vec![json.clone()]
        ],
    )
    .await?;
    db.execute(
        "INSERT INTO {{tables.vals}} (id) VALUES ($1)",
        params![2i32],
    )
    .await?;

    let row = db
        .fetch_one("SELECT * FROM {{tables.vals}} WHERE id = $1", params![1i32])
        .await?;
    assert!(row.get::<bool>("b")?);
    assert_eq!(row.get::<i16>("i2")?, -7);
    assert_eq!(row.get::<i32>("i4")?, i32::MIN);
    assert_eq!(row.get::<i64>("i8")?, i64::MAX);
    assert_eq!(row.get::<f32>("f4")?, 1.5);
    assert_eq!(row.get::<f64>("f8")?, -2.25);
    assert_eq!(row.get::<String>("t")?, "héllo 'q'");
    assert_eq!(row.get::<String>("vc")?, "vc");
    assert_eq!(row.get::<String>("bp")?, "abc");
    assert_eq!(row.get::<Vec<u8>>("by")?, vec![0u8, 1, 255]);
    assert_eq!(row.get::<serde_json::Value>("js")?, json);
    assert_eq!(row.get::<serde_json::Value>("jb")?, json);
    assert_eq!(row.get::<uuid::Uuid>("u")?, uuid);
    #[cfg(feature = "chrono")]
    {
        assert_eq!(row.get::<chrono::NaiveDate>("d")?, d);
        assert_eq!(row.get::<chrono::NaiveTime>("tm")?, tm);
        assert_eq!(row.get::<chrono::NaiveDateTime>("ts")?, ts);
        assert_eq!(row.get::<chrono::DateTime<chrono::Utc>>("tz")?, tz);
    }
    assert_eq!(
        row.get::<Vec<Option<i32>>>("ai")?,
        vec![Some(1), None, Some(3)]
    );
    assert_eq!(row.get::<Vec<String>>("at")?, vec!["x", "y z"]);
    assert_eq!(row.get::<Vec<i64>>("ab")?, Vec::<i64>::new());
    assert_eq!(row.get::<Vec<serde_json::Value>>("aj")?, vec![json.clone()]);

    let nulls = db
        .fetch_one("SELECT * FROM {{tables.vals}} WHERE id = $1", params![2i32])
        .await?;
    for col in [
        "b", "i2", "i4", "i8", "f4", "f8", "t", "by", "js", "jb", "u", "d", "ts", "tz", "ai", "at",
    ] {
        assert!(nulls.value(col)?.is_null(), "column {col} should be NULL");
    }
    assert_eq!(nulls.get::<Option<i64>>("i8")?, None);
    assert_eq!(nulls.get::<Option<Vec<i32>>>("ai")?, None);

    // NULL parameters bind to any column type.
    let none: Option<i64> = None;
    let n = db
        .execute(
            "UPDATE {{tables.vals}} SET i8 = $1, t = $2, u = $3 WHERE id = $4",
            params![none, None::<String>, Value::Null, 1i32],
        )
        .await?;
    assert_eq!(n, 1);
    let cleared = db
        .fetch_value::<Option<i64>>("SELECT i8 FROM {{tables.vals}} WHERE id = 1", &[])
        .await?;
    assert_eq!(cleared, None);

    #[cfg(feature = "decimal")]
    {
        let dec: rust_decimal::Decimal = "12345.678901".parse().expect("valid decimal");
        let back: rust_decimal::Decimal =
            db.fetch_value("SELECT $1::numeric", params![dec]).await?;
        assert_eq!(back, dec);
    }
    Ok(())
}

/// Integers bind to any integer column: an `i32` to `BIGINT`, an `i64` that fits to `INTEGER`
/// or `SMALLINT`; out of range is [`Error::Encode`] naming the parameter, never a wrap.
///
/// # Errors
///
/// Any unexpected query error.
pub async fn integer_binding(ctx: &Ctx) -> Result<()> {
    let db = &ctx.db;
    db.batch_execute("CREATE TABLE {{tables.ints}} (s smallint, i integer, b bigint)")
        .await?;
    db.execute(
        "INSERT INTO {{tables.ints}} VALUES ($1, $2, $3)",
        params![7i64, 70_000i64, 5i32],
    )
    .await?;
    let row = db
        .fetch_one("SELECT s, i, b FROM {{tables.ints}}", &[])
        .await?;
    assert_eq!(row.get::<i64>("s")?, 7);
    assert_eq!(row.get::<i64>("i")?, 70_000);
    assert_eq!(row.get::<i64>("b")?, 5);

    let err = crate::assert_err!(
        db.execute(
            "INSERT INTO {{tables.ints}} (s) VALUES ($1)",
            params![40_000i32]
        )
        .await,
        Error::Encode { .. }
    );
    match &err {
        Error::Encode { index, message, .. } => {
            assert_eq!(*index, 1, "{err}");
            assert!(message.contains("out of range"), "{err}");
            assert!(!err.to_string().contains("40000"), "value leaked: {err}");
        }
        _ => unreachable!(),
    }
    crate::assert_err!(
        db.execute(
            "INSERT INTO {{tables.ints}} (i) VALUES ($1)",
            params![i64::MAX]
        )
        .await,
        Error::Encode { .. }
    );
    let count: i64 = db
        .fetch_value("SELECT count(*) FROM {{tables.ints}}", &[])
        .await?;
    assert_eq!(count, 1, "a failed bind must not insert anything");
    Ok(())
}

/// A wrong parameter count is [`Error::ParameterCount`]; a value of the wrong type is
/// [`Error::Encode`] (without the value in the message).
///
/// # Errors
///
/// Any unexpected query error.
pub async fn bad_parameters(ctx: &Ctx) -> Result<()> {
    let db = &ctx.db;
    db.batch_execute("CREATE TABLE {{tables.p}} (id int, name text)")
        .await?;
    let err = crate::assert_err!(
        db.execute("INSERT INTO {{tables.p}} VALUES ($1, $2)", params![1i32])
            .await,
        Error::ParameterCount { .. }
    );
    assert!(err.to_string().contains("expects 2"), "{err}");
    crate::assert_err!(
        db.fetch_all("SELECT 1", params![1i32]).await,
        Error::ParameterCount { .. }
    );
    let err = crate::assert_err!(
        db.execute(
            "INSERT INTO {{tables.p}} VALUES ($1, $2)",
            params!["secret-value", "x"]
        )
        .await,
        Error::Encode { .. }
    );
    assert!(
        !err.to_string().contains("secret-value"),
        "value leaked: {err}"
    );
    // The connection is fine afterwards.
    db.execute(
        "INSERT INTO {{tables.p}} VALUES ($1, $2)",
        params![1i32, "ok"],
    )
    .await?;
    Ok(())
}

/// Reading: NULL into a non-`Option`, a wrong type, an unknown column and an unsupported column
/// type are typed errors naming the column; an unsupported type suggests a cast.
///
/// # Errors
///
/// Any unexpected query error.
pub async fn decode_errors(ctx: &Ctx) -> Result<()> {
    let db = &ctx.db;
    let row = db
        .fetch_one("SELECT NULL::int AS n, 'x'::text AS t, 5::int AS i", &[])
        .await?;
    let err = crate::assert_err!(row.get::<i32>("n"), Error::Decode { .. });
    let text = err.to_string();
    assert!(
        text.contains('n') && text.contains("NULL") && text.contains("i32"),
        "{text}"
    );
    crate::assert_err!(row.get::<i64>("t"), Error::Decode { .. });
    crate::assert_err!(row.get::<String>("i"), Error::Decode { .. });
    let err = crate::assert_err!(row.get::<i32>("missing"), Error::ColumnNotFound { .. });
    assert!(err.to_string().contains("missing"), "{err}");
    crate::assert_err!(row.get::<i32>(17usize), Error::ColumnNotFound { .. });

    let err = crate::assert_err!(
        db.fetch_all("SELECT '(1,2)'::point AS span", &[]).await,
        Error::UnsupportedType { .. }
    );
    let text = err.to_string();
    assert!(
        text.contains("span") && text.contains("point") && text.contains("::text"),
        "{text}"
    );
    let cast: String = db
        .fetch_value("SELECT '(1,2)'::point::text AS span", &[])
        .await?;
    assert_eq!(cast, "(1,2)");
    Ok(())
}

/// JSON through `serde_json::Value` and [`Json<T>`], and rows mapped onto structs with serde.
///
/// # Errors
///
/// Any unexpected query error.
pub async fn json_and_serde(ctx: &Ctx) -> Result<()> {
    #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq, Clone)]
    struct Prefs {
        theme: String,
        size: u32,
    }
    #[derive(serde::Deserialize, Debug, PartialEq)]
    struct User {
        id: i64,
        name: String,
        email: Option<String>,
        prefs: Prefs,
    }
    let db = &ctx.db;
    db.batch_execute(
        "CREATE TABLE {{tables.users}} (id bigserial PRIMARY KEY, name text NOT NULL, email text, prefs jsonb NOT NULL)",
    )
    .await?;
    let prefs = Prefs {
        theme: "dark".into(),
        size: 3,
    };
    db.execute(
        "INSERT INTO {{tables.users}} (name, email, prefs) VALUES ($1, $2, $3)",
        params!["ann", None::<String>, Json(prefs.clone())],
    )
    .await?;
    let users: Vec<User> = db
        .fetch_all_de("SELECT id, name, email, prefs FROM {{tables.users}}", &[])
        .await?;
    assert_eq!(
        users,
        vec![User {
            id: 1,
            name: "ann".into(),
            email: None,
            prefs: prefs.clone()
        }]
    );
    let one: User = db
        .fetch_one_de(
            "SELECT id, name, email, prefs FROM {{tables.users}} WHERE id = $1",
            params![1i64],
        )
        .await?;
    assert_eq!(one.prefs, prefs);
    let back: Json<Prefs> = db
        .fetch_value("SELECT prefs FROM {{tables.users}}", &[])
        .await?;
    assert_eq!(back.0, prefs);
    crate::assert_err!(
        db.fetch_all_de::<Prefs>("SELECT id FROM {{tables.users}}", &[])
            .await,
        Error::Decode { .. }
    );
    Ok(())
}
