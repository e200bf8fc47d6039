//! `date`, `time`, `timestamp` and `timestamptz` in PostgreSQL's binary format, written once for
//! every driver, keyed on pgdbm's `chrono` feature alone.
//!
//! Drivers used to write and read dates with their client library's chrono support, switched on
//! by their own `chrono` feature: with `pgdbm/chrono` on and a driver's off, [`Value::Date`]
//! existed but that driver refused it. Now [`coerce`](crate::driver::coerce()) turns a chrono value
//! into the numbers below ([`Coerced::Date`](crate::driver::Coerced::Date) and the others) and
//! [`decode`] reads them back, so enabling `chrono` on pgdbm or on any driver turns dates and
//! times on for every driver alike ([`READABLE`]).
//!
//! The format: a `date` is an `i32` of days since 2000-01-01, `time` an `i64` of microseconds
//! since midnight, `timestamp` and `timestamptz` an `i64` of microseconds since
//! 2000-01-01 00:00:00 (UTC for `timestamptz`). `'infinity'` and `'-infinity'` are the
//! type's largest and smallest number; they are read as [`Value::Infinity`](crate::Value) and
//! are what [`Infinite`](crate::Infinite) binds.

use crate::Value;
use crate::driver::PgType;

/// `true` when `date`, `time`, `timestamp` and `timestamptz` columns are read and bound (as
/// chrono types): pgdbm was built with its `chrono` feature (whichever crate turned it on).
pub const READABLE: bool = cfg!(feature = "chrono");

/// `'infinity'` as a `date`.
pub const DATE_INFINITY: i32 = i32::MAX;
/// `'-infinity'` as a `date`.
pub const DATE_NEG_INFINITY: i32 = i32::MIN;
/// `'infinity'` as a `timestamp` or `timestamptz`.
pub const TIMESTAMP_INFINITY: i64 = i64::MAX;
/// `'-infinity'` as a `timestamp` or `timestamptz`.
pub const TIMESTAMP_NEG_INFINITY: i64 = i64::MIN;

#[cfg(feature = "chrono")]
fn epoch_date() -> chrono::NaiveDate {
    chrono::NaiveDate::from_ymd_opt(2000, 1, 1).unwrap_or_default()
}

#[cfg(feature = "chrono")]
fn epoch() -> chrono::NaiveDateTime {
    epoch_date().and_time(chrono::NaiveTime::MIN)
}

/// A `date`'s days since 2000-01-01.
#[cfg(feature = "chrono")]
pub fn date_days(v: chrono::NaiveDate) -> i32 {
    // chrono's dates span ±262 143 years: their day numbers fit an i32 with room to spare.
    i32::try_from(v.signed_duration_since(epoch_date()).num_days()).unwrap_or(DATE_INFINITY - 1)
}

/// A `time`'s microseconds since midnight (finer parts dropped).
#[cfg(feature = "chrono")]
pub fn time_micros(v: chrono::NaiveTime) -> i64 {
    v.signed_duration_since(chrono::NaiveTime::MIN)
        .num_microseconds()
        .unwrap_or_default()
}

/// A `timestamp`'s microseconds since 2000-01-01 00:00:00 (finer parts dropped, toward that
/// instant). chrono's range (±262 143 years) fits: no chrono value is written as infinity.
#[cfg(feature = "chrono")]
pub fn timestamp_micros(v: chrono::NaiveDateTime) -> i64 {
    v.signed_duration_since(epoch())
        .num_microseconds()
        .unwrap_or(TIMESTAMP_INFINITY - 1)
}

/// Reads one non-NULL value of the date/time family `ty` from its binary format: a chrono
/// value, or [`Value::Infinity`](crate::Value) for `'infinity'`/`'-infinity'`. The message of
/// an error names the problem (the value out of chrono's range, or pgdbm built without
/// `chrono`), never the value.
///
/// # Errors
///
/// The bytes are not of that type, the value is beyond what chrono holds (a `timestamp` after
/// the year 262 142, `time` 24:00:00), `ty` is not a date/time family, or [`READABLE`] is
/// `false`.
pub fn decode(ty: PgType, raw: &[u8]) -> Result<Value, String> {
    #[cfg(feature = "chrono")]
    {
        decode_chrono(ty, raw)
    }
    #[cfg(not(feature = "chrono"))]
    {
        let _ = (ty, raw);
        Err("dates and times are read with pgdbm's `chrono` feature".to_owned())
    }
}

#[cfg(feature = "chrono")]
fn decode_chrono(ty: PgType, raw: &[u8]) -> Result<Value, String> {
    use chrono::TimeDelta;

    use crate::Kind;

    let length = |n: usize| format!("expected {n} bytes of {}, got {}", ty_name(ty), raw.len());
    let int8 = || {
        <[u8; 8]>::try_from(raw)
            .map(i64::from_be_bytes)
            .map_err(|_| length(8))
    };
    let infinity = |kind, negative| Value::Infinity { kind, negative };
    // A timestamp's microseconds: `Ok(Err(negative))` for an infinity.
    let timestamp = || -> Result<Result<chrono::NaiveDateTime, bool>, String> {
        match int8()? {
            TIMESTAMP_INFINITY => Ok(Err(false)),
            TIMESTAMP_NEG_INFINITY => Ok(Err(true)),
            micros => epoch()
                .checked_add_signed(TimeDelta::microseconds(micros))
                .map(Ok)
                .ok_or_else(|| format!("{} beyond chrono's range", ty_name(ty))),
        }
    };
    Ok(match ty {
        PgType::Date => {
            let days = <[u8; 4]>::try_from(raw)
                .map(i32::from_be_bytes)
                .map_err(|_| length(4))?;
            match days {
                DATE_INFINITY => infinity(Kind::Date, false),
                DATE_NEG_INFINITY => infinity(Kind::Date, true),
                days => Value::Date(
                    epoch_date()
                        .checked_add_signed(TimeDelta::days(days.into()))
                        .ok_or("date beyond chrono's range")?,
                ),
            }
        }
        PgType::Time => {
            let micros = int8()?;
            let secs = u32::try_from(micros.div_euclid(1_000_000)).ok();
            let nanos = (micros.rem_euclid(1_000_000) * 1000) as u32;
            Value::Time(
                secs.and_then(|s| chrono::NaiveTime::from_num_seconds_from_midnight_opt(s, nanos))
                    .filter(|_| micros < 86_400_000_000)
                    .ok_or("time 24:00:00 does not fit chrono::NaiveTime (cast it in SQL)")?,
            )
        }
        PgType::Timestamp => {
            timestamp()?.map_or_else(|neg| infinity(Kind::Timestamp, neg), Value::Timestamp)
        }
        PgType::TimestampTz => timestamp()?.map_or_else(
            |neg| infinity(Kind::TimestampTz, neg),
            |v| Value::TimestampTz(v.and_utc()),
        ),
        other => return Err(format!("{other:?} is not a date or time type")),
    })
}

#[cfg(feature = "chrono")]
fn ty_name(ty: PgType) -> &'static str {
    ty.kind().sql_name()
}

#[cfg(all(test, feature = "chrono"))]
mod tests {
    use chrono::{NaiveDate, NaiveTime};

    use super::*;
    use crate::Kind;

    #[test]
    fn dates_and_timestamps_roundtrip_through_their_numbers() {
        let d = NaiveDate::from_ymd_opt(1999, 12, 31).unwrap();
        assert_eq!(date_days(d), -1);
        assert_eq!(
            decode(PgType::Date, &(-1i32).to_be_bytes()),
            Ok(Value::Date(d))
        );
        let t = NaiveTime::from_hms_micro_opt(23, 59, 59, 999_999).unwrap();
        let ts = d.and_time(t);
        let micros = timestamp_micros(ts);
        assert_eq!(micros, -1);
        assert_eq!(
            decode(PgType::Timestamp, &micros.to_be_bytes()),
            Ok(Value::Timestamp(ts))
        );
        assert_eq!(
            decode(PgType::TimestampTz, &micros.to_be_bytes()),
            Ok(Value::TimestampTz(ts.and_utc()))
        );
        assert_eq!(
            decode(PgType::Time, &time_micros(t).to_be_bytes()),
            Ok(Value::Time(t))
        );
    }

    #[test]
    fn infinities_are_values_and_the_extremes_of_chrono_are_not_infinite() {
        assert_eq!(
            decode(PgType::Date, &DATE_INFINITY.to_be_bytes()),
            Ok(Value::Infinity {
                kind: Kind::Date,
                negative: false
            })
        );
        assert_eq!(
            decode(PgType::TimestampTz, &TIMESTAMP_NEG_INFINITY.to_be_bytes()),
            Ok(Value::Infinity {
                kind: Kind::TimestampTz,
                negative: true
            })
        );
        assert_ne!(
            timestamp_micros(chrono::NaiveDateTime::MAX),
            TIMESTAMP_INFINITY
        );
        assert_ne!(
            timestamp_micros(chrono::NaiveDateTime::MIN),
            TIMESTAMP_NEG_INFINITY
        );
        assert_ne!(date_days(NaiveDate::MAX), DATE_INFINITY);
        let err = decode(PgType::Time, &86_400_000_000i64.to_be_bytes()).unwrap_err();
        assert!(err.contains("24:00:00"), "{err}");
        assert!(decode(PgType::Timestamp, &[0, 1]).is_err());
        let far = (280_000i64 * 365 * 86_400 * 1_000_000).to_be_bytes();
        assert!(
            decode(PgType::Timestamp, &far)
                .unwrap_err()
                .contains("range")
        );
    }
}
