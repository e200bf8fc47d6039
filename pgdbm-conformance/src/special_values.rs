//! Values beyond the everyday ones: `'infinity'` dates and timestamps, network addresses and
//! `money`, multi-dimensional arrays.

use pgdbm::prelude::*;
use pgdbm::{Error, Result, Value};

use super::Ctx;

/// `'infinity'`/`'-infinity'` dates and timestamps read as `pgdbm::Infinite<T>` and bind from it;
/// read into a plain chrono type they are a decode error naming the column and `Infinite`, and
/// finite values still read plainly. Arrays hold them too.
///
/// # Errors
///
/// Any unexpected query error.
pub async fn infinite_dates_and_timestamps(ctx: &Ctx) -> Result<()> {
    #[cfg(feature = "chrono")]
    {
        use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
        use pgdbm::Infinite;
        let db = &ctx.db;
        db.batch_execute(
            "CREATE TABLE {{tables.offers}} (id int PRIMARY KEY, starts date, \
             ends timestamp, checked timestamptz, days date[])",
        )
        .await?;
        let day = NaiveDate::from_ymd_opt(2024, 2, 29).unwrap_or_default();
        db.execute(
            "INSERT INTO {{tables.offers}} VALUES (1, $1, $2, $3, $4), (2, $5, NULL, NULL, NULL)",
            params![
                Infinite::<NaiveDate>::NegInfinity,
                Infinite::<NaiveDateTime>::Infinity,
                Infinite::<DateTime<Utc>>::NegInfinity,
                vec![Infinite::Finite(day), Infinite::Infinity],
                Infinite::Finite(day)
            ],
        )
        .await?;
        let texts = db
            .fetch_one(
                "SELECT starts::text AS s, ends::text AS e, checked::text AS c, days::text AS d \
                 FROM {{tables.offers}} WHERE id = 1",
                &[],
            )
            .await?;
        assert_eq!(texts.get::<String>("s")?, "-infinity");
        assert_eq!(texts.get::<String>("e")?, "infinity");
        assert_eq!(texts.get::<String>("c")?, "-infinity");
        assert_eq!(texts.get::<String>("d")?, "{2024-02-29,infinity}");

        let row = db
            .fetch_one("SELECT * FROM {{tables.offers}} WHERE id = 1", &[])
            .await?;
        assert_eq!(
            row.get::<Infinite<NaiveDate>>("starts")?,
            Infinite::NegInfinity
        );
        assert_eq!(
            row.get::<Infinite<NaiveDateTime>>("ends")?,
            Infinite::Infinity
        );
        assert_eq!(
            row.get::<Infinite<DateTime<Utc>>>("checked")?,
            Infinite::NegInfinity
        );
        assert_eq!(
            row.get::<Vec<Infinite<NaiveDate>>>("days")?,
            [Infinite::Finite(day), Infinite::Infinity]
        );
        let err = crate::assert_err!(row.get::<NaiveDateTime>("ends"), Error::Decode { .. });
        let message = err.to_string();
        assert!(
            message.contains("ends")
                && message.contains("infinity")
                && message.contains("Infinite<NaiveDateTime>"),
            "{message}"
        );
        crate::assert_err!(row.get::<NaiveDate>("starts"), Error::Decode { .. });
        crate::assert_err!(row.get::<Vec<NaiveDate>>("days"), Error::Decode { .. });
        // A timestamp's infinity is not a timestamptz's, like their finite values.
        crate::assert_err!(
            row.get::<Infinite<DateTime<Utc>>>("ends"),
            Error::Decode { .. }
        );
        let finite: NaiveDate = db
            .fetch_value("SELECT starts FROM {{tables.offers}} WHERE id = 2", &[])
            .await?;
        assert_eq!(finite, day);
        let later: bool = db
            .fetch_value(
                "SELECT $1::timestamptz > now()",
                params![Infinite::<DateTime<Utc>>::Infinity],
            )
            .await?;
        assert!(later);
        // Into another type's parameter: refused like a finite value would be.
        crate::assert_err!(
            db.fetch_value::<bool>(
                "SELECT $1::date IS NULL",
                params![Infinite::<NaiveDateTime>::Infinity]
            )
            .await,
            Error::Encode { .. }
        );
    }
    #[cfg(not(feature = "chrono"))]
    let _ = ctx;
    Ok(())
}

/// `inet`, `cidr`, `macaddr` and `macaddr8` bind from text and read as the text the server
/// prints; text that is not an address is an encode error naming the type, not the text.
/// Arrays of them too.
///
/// # Errors
///
/// Any unexpected query error.
pub async fn network_types_as_text(ctx: &Ctx) -> Result<()> {
    let db = &ctx.db;
    db.batch_execute(
        "CREATE TABLE {{tables.hosts}} (id int, ip inet, net cidr, mac macaddr, \
         mac8 macaddr8, ips inet[])",
    )
    .await?;
    let rows = [
        (
            "192.168.0.1/24",
            "10.0.0.0/8",
            "08:00:2b:01:02:03",
            "08:00:2b:01:02:03",
        ),
        (
            "2001:db8::1",
            "2001:db8::/32",
            "08-00-2B-01-02-03",
            "0800.2b01.0203.0405",
        ),
        (
            "::ffff:1.2.3.4",
            "10.1.2.3",
            "08002b010203",
            "08:00:2b:ff:fe:01:02:03",
        ),
        (
            "::1.2.3.4/128",
            "::/0",
            "0800.2b01.0203",
            "0800:2b01:0203:0405",
        ),
    ];
    for (id, (ip, net, mac, mac8)) in rows.iter().enumerate() {
        db.execute(
            "INSERT INTO {{tables.hosts}} VALUES ($1, $2, $3, $4, $5, $6)",
            params![id as i32, ip, net, mac, mac8, vec![*ip, "127.0.0.1"]],
        )
        .await?;
    }
    // What pgdbm reads is what the server prints (its output function; `::text` of an inet
    // always adds the mask).
    let read = db
        .fetch_all(
            "SELECT ip, net, mac, mac8, ips, format('%s', ip) AS ip_t, \
             format('%s', net) AS net_t, format('%s', mac) AS mac_t, \
             format('%s', mac8) AS mac8_t, format('%s', ips) AS ips_t \
             FROM {{tables.hosts}} ORDER BY id",
            &[],
        )
        .await?;
    for row in &read {
        for column in ["ip", "net", "mac", "mac8"] {
            assert_eq!(
                row.get::<String>(column)?,
                row.get::<String>(format!("{column}_t").as_str())?,
                "{column}"
            );
        }
        let ips = row.get::<Vec<String>>("ips")?;
        assert_eq!(
            format!("{{{}}}", ips.join(",")),
            row.get::<String>("ips_t")?
        );
    }
    assert_eq!(read[0].get::<String>("ip")?, "192.168.0.1/24");
    assert_eq!(read[2].get::<String>("net")?, "10.1.2.3/32");
    assert_eq!(read[1].get::<String>("mac")?, "08:00:2b:01:02:03");

    for (sql, bad) in [
        ("SELECT $1::inet IS NULL", "not-an-address"),
        ("SELECT $1::cidr IS NULL", "10.1.0.0/8"),
        ("SELECT $1::macaddr IS NULL", "08:00:zz"),
    ] {
        let err = crate::assert_err!(
            db.fetch_value::<bool>(sql, params![bad]).await,
            Error::Encode { .. }
        );
        let message = err.to_string();
        let ty = sql.trim_start_matches("SELECT $1::").split(' ').next();
        assert!(message.contains(ty.unwrap_or("?")), "{message}");
        assert!(!message.contains(bad), "value leaked: {message}");
    }
    Ok(())
}

/// `money` reads as `i64` in the currency's smallest unit and binds from integers, exactly, the
/// same whatever `lc_monetary` prints.
///
/// # Errors
///
/// Any unexpected query error.
pub async fn money_as_minor_units(ctx: &Ctx) -> Result<()> {
    let db = &ctx.db;
    let cents: i64 = db.fetch_value("SELECT '12.34'::money", &[]).await?;
    // The currency's fractional digits under the server's lc_monetary (2 for cents).
    let digits: i32 = db
        .fetch_value("SELECT scale(1::money::numeric)", &[])
        .await?;
    let expected: i64 = db
        .fetch_value(
            "SELECT ('12.34'::money::numeric * 10 ^ scale(1::money::numeric))::int8",
            &[],
        )
        .await?;
    assert_eq!(cents, expected);
    let back: i64 = db
        .fetch_value("SELECT $1::money + $2::money", params![cents, 1i32])
        .await?;
    assert_eq!(back, cents + 1);
    let numeric_text: String = db
        .fetch_value("SELECT ($1::money)::numeric::text", params![-5i64])
        .await?;
    assert_eq!(
        numeric_text.parse::<f64>().ok(),
        Some(-5.0 / 10f64.powi(digits))
    );
    let sums: Vec<Option<i64>> = db
        .fetch_value("SELECT ARRAY[$1::money, NULL]", params![7i64])
        .await?;
    assert_eq!(sums, [Some(7), None]);
    crate::assert_err!(
        db.fetch_value::<bool>("SELECT $1::money IS NULL", params!["12.34"])
            .await,
        Error::Encode { .. }
    );
    Ok(())
}

/// Arrays of arrays bind as multi-dimensional arrays and read back nested (`Vec<Vec<i64>>`,
/// text, NULL elements); a ragged one is an encode error that says arrays must be rectangular.
///
/// # Errors
///
/// Any unexpected query error.
pub async fn multi_dimensional_arrays(ctx: &Ctx) -> Result<()> {
    let db = &ctx.db;
    let grid = vec![vec![1i64, 2, 3], vec![4, 5, 6]];
    let text: String = db
        .fetch_value("SELECT $1::int8[]::text", params![grid])
        .await?;
    assert_eq!(text, "{{1,2,3},{4,5,6}}");
    let back: Vec<Vec<i64>> = db.fetch_value("SELECT $1::int8[]", params![grid]).await?;
    assert_eq!(back, grid);
    let dims: String = db
        .fetch_value(
            "SELECT array_dims($1::int4[])",
            params![[[[1i32], [2]], [[3], [4]]]],
        )
        .await?;
    assert_eq!(dims, "[1:2][1:2][1:1]");
    let read: Vec<Vec<Option<String>>> = db
        .fetch_value("SELECT ARRAY[['a', NULL], ['c', 'd']]", &[])
        .await?;
    assert_eq!(
        read,
        [
            vec![Some("a".to_owned()), None],
            vec![Some("c".to_owned()), Some("d".to_owned())]
        ]
    );
    let value: Value = db
        .fetch_value("SELECT '{{1,2},{3,4}}'::int2[]", &[])
        .await?;
    assert_eq!(value.type_description(), "smallint[][]");
    let empty: Vec<Vec<i32>> = db.fetch_value("SELECT '{}'::int4[]", &[]).await?;
    assert!(empty.is_empty());
    // Reading a two-dimensional array as one dimension names the column.
    let err = crate::assert_err!(
        db.fetch_value::<Vec<i64>>("SELECT ARRAY[[1, 2]] AS pairs", &[])
            .await,
        Error::Decode { .. }
    );
    assert!(err.to_string().contains("pairs"), "{err}");
    let ragged = vec![vec![1i64, 2], vec![3]];
    let err = crate::assert_err!(
        db.fetch_value::<String>("SELECT $1::int8[]::text", params![ragged])
            .await,
        Error::Encode { .. }
    );
    assert!(err.to_string().contains("rectangular"), "{err}");
    Ok(())
}
