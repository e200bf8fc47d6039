//! Types beyond the basic scalars: `interval` (and Rust durations), `numeric` from floats and
//! integers whatever crate turned `decimal` on, arrays from slices and `&str`s, and the
//! `timestamp`/`timestamptz` mix-up explained.

use std::time::Duration;

use pgdbm::prelude::*;
use pgdbm::{Error, Interval, Kind, Result, ToParam, Value};

use super::Ctx;

/// `interval` round-trips as [`Interval`] (months, days and microseconds apart), binds from
/// `Duration` (and `chrono::TimeDelta`), reads as them where exact; an interval with months (or
/// days, for `Duration`) is a decode error naming the column, the Rust type and the part in the
/// way, never the value. `interval[]` too.
///
/// # Errors
///
/// Any unexpected query error.
pub async fn interval_values(ctx: &Ctx) -> Result<()> {
    let db = &ctx.db;
    db.batch_execute(
        "CREATE TABLE {{tables.spans}} (id int PRIMARY KEY, span interval, spans interval[])",
    )
    .await?;
    let odd = Interval::new(3, 4, 7_123_456);
    db.execute(
        "INSERT INTO {{tables.spans}} VALUES (1, $1, $2), (2, $3, NULL)",
        params![
            odd,
            vec![Interval::new(0, 1, 0), Interval::new(-14, 0, -1)],
            Duration::from_millis(90_500)
        ],
    )
    .await?;
    let text: String = db
        .fetch_value("SELECT span::text FROM {{tables.spans}} WHERE id = 1", &[])
        .await?;
    assert_eq!(text, "3 mons 4 days 00:00:07.123456");
    let row = db
        .fetch_one("SELECT span, spans FROM {{tables.spans}} WHERE id = 1", &[])
        .await?;
    assert_eq!(row.get::<Interval>("span")?, odd);
    assert_eq!(
        row.get::<Vec<Interval>>("spans")?,
        vec![Interval::new(0, 1, 0), Interval::new(-14, 0, -1)]
    );
    let err = crate::assert_err!(row.get::<Duration>("span"), Error::Decode { .. });
    let message = err.to_string();
    assert!(
        message.contains("span") && message.contains("Duration") && message.contains("months"),
        "{message}"
    );
    assert!(!message.contains("123456"), "value leaked: {message}");

    let short: Duration = db
        .fetch_value("SELECT span FROM {{tables.spans}} WHERE id = 2", &[])
        .await?;
    assert_eq!(short, Duration::from_millis(90_500));
    let day: Value = db.fetch_value("SELECT interval '1 day'", &[]).await?;
    let err = crate::assert_err!(
        db.fetch_value::<Duration>("SELECT interval '1 day' AS d", &[])
            .await,
        Error::Decode { .. }
    );
    assert!(err.to_string().contains("days"), "{err}");
    assert_eq!(day, Value::Interval(Interval::new(0, 1, 0)));
    #[cfg(feature = "chrono")]
    {
        use chrono::TimeDelta;
        let back: TimeDelta = db
            .fetch_value(
                "SELECT $1::interval + interval '1 day'",
                params![TimeDelta::minutes(-90)],
            )
            .await?;
        assert_eq!(back, TimeDelta::hours(24) - TimeDelta::minutes(90));
        crate::assert_err!(
            db.fetch_value::<TimeDelta>("SELECT interval '1 mon'", &[])
                .await,
            Error::Decode { .. }
        );
    }
    Ok(())
}

/// `numeric` parameters take integers exactly and floats as their shortest round-trip decimal
/// (`0.1` is stored as `0.1`), NaN and infinities as `numeric`'s own; whether `numeric` columns
/// are read depends on pgdbm's `decimal` feature alone, the same for every driver, and without it
/// reading one is an unsupported-type error naming the column.
///
/// # Errors
///
/// Any unexpected query error.
pub async fn numeric_parameters(ctx: &Ctx) -> Result<()> {
    let db = &ctx.db;
    let as_text = |v: &'static dyn ToParam| async move {
        db.fetch_value::<String>("SELECT ($1::numeric)::text", &[v])
            .await
    };
    assert_eq!(as_text(&0.1f64).await?, "0.1");
    assert_eq!(as_text(&0.1f32).await?, "0.1");
    assert_eq!(as_text(&1e-5f64).await?, "0.00001");
    assert_eq!(as_text(&-12_345.5f64).await?, "-12345.5");
    assert_eq!(as_text(&1e20f64).await?, "100000000000000000000");
    assert_eq!(as_text(&i64::MIN).await?, "-9223372036854775808");
    assert_eq!(as_text(&7i16).await?, "7");
    assert_eq!(as_text(&f64::NAN).await?, "NaN");
    assert_eq!(as_text(&f64::NEG_INFINITY).await?, "-Infinity");

    db.batch_execute("CREATE TABLE {{tables.prices}} (id int, price numeric(10, 2))")
        .await?;
    db.execute(
        "INSERT INTO {{tables.prices}} VALUES (1, $1), (2, $2)",
        params![19.99f64, 5i32],
    )
    .await?;
    let texts: Vec<String> = db
        .fetch_all(
            "SELECT price::text AS p FROM {{tables.prices}} ORDER BY id",
            &[],
        )
        .await?
        .iter()
        .map(|r| r.get("p"))
        .collect::<Result<_>>()?;
    assert_eq!(texts, ["19.99", "5.00"]);
    let read = db
        .fetch_all("SELECT price FROM {{tables.prices}} ORDER BY id", &[])
        .await;
    if pgdbm::driver::numeric::READABLE {
        let rows = read?;
        assert_eq!(rows[0].value("price")?.kind(), Kind::Numeric);
    } else {
        let err = crate::assert_err!(read, Error::UnsupportedType { .. });
        assert!(err.to_string().contains("price"), "{err}");
    }
    Ok(())
}

/// Slices, fixed-size arrays and `&str`s bind as arrays: `&[&str]`, `Vec<&str>`, `[i32; 3]`,
/// `&[f64]`, `&[Uuid]`.
///
/// # Errors
///
/// Any unexpected query error.
pub async fn slice_and_str_arrays(ctx: &Ctx) -> Result<()> {
    let db = &ctx.db;
    let names: &[&str] = &["ann", "bob"];
    let back: Vec<String> = db.fetch_value("SELECT $1::text[]", params![names]).await?;
    assert_eq!(back, ["ann", "bob"]);
    let owned: Vec<&str> = vec!["x"];
    let back: Vec<String> = db.fetch_value("SELECT $1::text[]", params![owned]).await?;
    assert_eq!(back, ["x"]);
    let n: i64 = db
        .fetch_value("SELECT cardinality($1::int[])", params![[1i32, 2, 3]])
        .await?;
    assert_eq!(n, 3);
    let floats: &[f64] = &[1.5, -2.0];
    let back: Vec<f64> = db
        .fetch_value("SELECT $1::float8[]", params![floats])
        .await?;
    assert_eq!(back, floats);
    let ids = [uuid::Uuid::from_u128(7)];
    let back: Vec<uuid::Uuid> = db
        .fetch_value("SELECT $1::uuid[]", params![&ids[..]])
        .await?;
    assert_eq!(back, ids);
    let hit: bool = db
        .fetch_value("SELECT 'bob' = ANY($1::text[])", params![names])
        .await?;
    assert!(hit);
    Ok(())
}

/// Reading a `timestamp` as `DateTime<Utc>` (or a `timestamptz` as `NaiveDateTime`), and
/// binding one where the other is expected, are errors that name the Rust type to use.
///
/// # Errors
///
/// Any unexpected query error.
pub async fn timestamp_kinds_explained(ctx: &Ctx) -> Result<()> {
    #[cfg(feature = "chrono")]
    {
        use chrono::{DateTime, NaiveDateTime, Utc};
        let db = &ctx.db;
        let row = db
            .fetch_one(
                "SELECT timestamp '2024-01-02 03:04:05' AS naive, \
                 timestamptz '2024-01-02 03:04:05+00' AS zoned",
                &[],
            )
            .await?;
        let err = crate::assert_err!(row.get::<DateTime<Utc>>("naive"), Error::Decode { .. });
        let message = err.to_string();
        assert!(
            message.contains("naive") && message.contains("NaiveDateTime"),
            "{message}"
        );
        assert!(!message.contains("2024"), "value leaked: {message}");
        let err = crate::assert_err!(row.get::<NaiveDateTime>("zoned"), Error::Decode { .. });
        assert!(err.to_string().contains("DateTime<Utc>"), "{err}");

        let naive = row.get::<NaiveDateTime>("naive")?;
        let err = crate::assert_err!(
            db.fetch_value::<String>("SELECT $1::timestamptz::text", params![naive])
                .await,
            Error::Encode { .. }
        );
        let message = err.to_string();
        assert!(message.contains("DateTime<Utc>"), "{message}");
        assert!(!message.contains("2024"), "value leaked: {message}");
    }
    #[cfg(not(feature = "chrono"))]
    let _ = ctx;
    Ok(())
}

/// Whether dates and times are read and bound depends on pgdbm's `chrono` feature alone (turned
/// on through pgdbm or through any driver), the same for every driver: with it, `date`/`time`/
/// `timestamp`/`timestamptz` round-trip as chrono values; without it, reading one is an
/// unsupported-type error naming the column.
///
/// # Errors
///
/// Any unexpected query error.
pub async fn dates_follow_pgdbm_chrono(ctx: &Ctx) -> Result<()> {
    let db = &ctx.db;
    let read = db
        .fetch_one(
            "SELECT date '2024-02-29' AS d, time '23:59:59.999999' AS t, \
             timestamp '1999-12-31 23:59:59.5' AS ts, timestamptz '1970-01-01 00:00:00+00' AS tz",
            &[],
        )
        .await;
    if !pgdbm::driver::datetime::READABLE {
        let err = crate::assert_err!(read, Error::UnsupportedType { .. });
        assert!(err.to_string().contains('d'), "{err}");
        return Ok(());
    }
    let row = read?;
    let kinds: Vec<Kind> = ["d", "t", "ts", "tz"]
        .iter()
        .map(|c| row.value(*c).map(Value::kind))
        .collect::<Result<_>>()?;
    assert_eq!(
        kinds,
        [Kind::Date, Kind::Time, Kind::Timestamp, Kind::TimestampTz]
    );
    // Each value goes back into its own type unchanged.
    for column in ["d", "t", "ts", "tz"] {
        let value = row.value(column)?.clone();
        let sql = format!(
            "SELECT $1 = {column} FROM (SELECT date '2024-02-29' AS d, \
             time '23:59:59.999999' AS t, timestamp '1999-12-31 23:59:59.5' AS ts, \
             timestamptz '1970-01-01 00:00:00+00' AS tz) AS v"
        );
        let same: bool = db.fetch_value(&sql, params![value]).await?;
        assert!(same, "{column}");
    }
    Ok(())
}
