//! PostgreSQL's `interval`, kept as the server keeps it, and its conversions to Rust durations.

use std::borrow::Cow;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::value::{ArrayElement, FromValue, Kind, ToParam, Value};

/// A PostgreSQL `interval`: months, days and microseconds, kept apart as the server keeps them
/// (`'1 mon 2 days 03:00:00'` is `{ months: 1, days: 2, microseconds: 10_800_000_000 }`).
///
/// A month has no fixed length, nor (across daylight-saving changes) has a day, so the three
/// parts do not add up to one duration. Reading converts only where that is exact:
///
/// | read as | months | days | microseconds |
/// |---|---|---|---|
/// | `Interval` | any | any | any |
/// | `std::time::Duration` | 0 | 0 | ≥ 0 |
/// | `chrono::TimeDelta` (feature `chrono`) | 0 | any, as 24 hours each | any |
///
/// Anything else is an [`Error::Decode`](crate::Error::Decode) that says which part is in the
/// way; `justify_interval(col)` or `extract(epoch from col)` in SQL turns such an interval into
/// one these types take. Binding a `Duration` or `TimeDelta` sends microseconds only (months and
/// days 0); finer parts are dropped, as the server would, and a `Duration` beyond `i64::MAX`
/// microseconds (292 471 years) is sent as that maximum.
///
/// ```
/// use pgdbm::{FromValue, Interval, ToParam};
/// use std::time::Duration;
///
/// let ninety_minutes = Interval::new(0, 0, 90 * 60 * 1_000_000);
/// assert_eq!(
///     Duration::from_value(&ninety_minutes.to_param()),
///     Ok(Duration::from_secs(5400))
/// );
/// let a_month = Interval::new(1, 0, 0);
/// assert!(Duration::from_value(&a_month.to_param()).is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct Interval {
    /// Whole months (a year is 12).
    pub months: i32,
    /// Whole days.
    pub days: i32,
    /// The time part, in microseconds.
    pub microseconds: i64,
}

impl Interval {
    /// An interval of these parts.
    pub const fn new(months: i32, days: i32, microseconds: i64) -> Interval {
        Interval {
            months,
            days,
            microseconds,
        }
    }

    /// The 16 bytes of `interval`'s binary format (for drivers): microseconds, days, months.
    pub fn to_be_bytes(self) -> [u8; 16] {
        let mut out = [0; 16];
        out[..8].copy_from_slice(&self.microseconds.to_be_bytes());
        out[8..12].copy_from_slice(&self.days.to_be_bytes());
        out[12..].copy_from_slice(&self.months.to_be_bytes());
        out
    }

    /// Reads `interval`'s binary format (for drivers).
    ///
    /// # Errors
    ///
    /// `raw` is not 16 bytes long.
    pub fn from_be_bytes(raw: &[u8]) -> Result<Interval, String> {
        let raw: &[u8; 16] = raw
            .try_into()
            .map_err(|_| format!("expected 16 bytes of interval, got {}", raw.len()))?;
        let (micros, rest) = raw.split_at(8);
        let (days, months) = rest.split_at(4);
        let word = |b: &[u8]| i32::from_be_bytes([b[0], b[1], b[2], b[3]]);
        let mut m = [0; 8];
        m.copy_from_slice(micros);
        Ok(Interval::new(
            word(months),
            word(days),
            i64::from_be_bytes(m),
        ))
    }

    /// The interval of a `Duration`: microseconds only, sub-microsecond parts dropped, saturated
    /// at `i64::MAX` microseconds.
    pub fn from_duration(d: Duration) -> Interval {
        Interval::new(0, 0, i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
    }
}

impl ToParam for Interval {
    fn to_param(&self) -> Cow<'_, Value> {
        Cow::Owned(Value::Interval(*self))
    }
}
impl ArrayElement for Interval {
    const KIND: Kind = Kind::Interval;
}
impl FromValue for Interval {
    fn type_name() -> String {
        "Interval".to_owned()
    }
    fn from_value(value: &Value) -> Result<Self, String> {
        match value {
            Value::Interval(v) => Ok(*v),
            other => Err(other.type_description()),
        }
    }
}

impl ToParam for Duration {
    fn to_param(&self) -> Cow<'_, Value> {
        Cow::Owned(Value::Interval(Interval::from_duration(*self)))
    }
}
impl ArrayElement for Duration {
    const KIND: Kind = Kind::Interval;
}
impl FromValue for Duration {
    fn type_name() -> String {
        "Duration".to_owned()
    }
    fn from_value(value: &Value) -> Result<Self, String> {
        let v = Interval::from_value(value)?;
        if v.months != 0 {
            return Err(MONTHS.to_owned());
        }
        if v.days != 0 {
            return Err(
                "an interval with days (a day is 23 to 25 hours across daylight-saving \
                        changes): read it as pgdbm::Interval or chrono::TimeDelta"
                    .to_owned(),
            );
        }
        u64::try_from(v.microseconds)
            .map(Duration::from_micros)
            .map_err(|_| {
                "a negative interval: read it as pgdbm::Interval or chrono::TimeDelta".to_owned()
            })
    }
}

const MONTHS: &str = "an interval with months (a month has no fixed length): read it as \
                      pgdbm::Interval, or convert it in SQL (extract(epoch from …))";

#[cfg(feature = "chrono")]
mod chrono_delta {
    use super::*;
    use chrono::TimeDelta;

    const MICROS_PER_DAY: i64 = 86_400_000_000;

    impl ToParam for TimeDelta {
        fn to_param(&self) -> Cow<'_, Value> {
            // A `TimeDelta` holds at most i64::MAX milliseconds: its microseconds may not fit.
            let micros = self
                .num_microseconds()
                .unwrap_or(if *self < TimeDelta::zero() {
                    i64::MIN
                } else {
                    i64::MAX
                });
            Cow::Owned(Value::Interval(Interval::new(0, 0, micros)))
        }
    }
    impl ArrayElement for TimeDelta {
        const KIND: Kind = Kind::Interval;
    }
    impl FromValue for TimeDelta {
        fn type_name() -> String {
            "TimeDelta".to_owned()
        }
        fn from_value(value: &Value) -> Result<Self, String> {
            let v = Interval::from_value(value)?;
            if v.months != 0 {
                return Err(MONTHS.to_owned());
            }
            i64::from(v.days)
                .checked_mul(MICROS_PER_DAY)
                .and_then(|d| d.checked_add(v.microseconds))
                .map(TimeDelta::microseconds)
                .ok_or_else(|| "an interval out of range for TimeDelta".to_owned())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_format_roundtrips() {
        let v = Interval::new(14, -3, 123_456_789);
        assert_eq!(Interval::from_be_bytes(&v.to_be_bytes()), Ok(v));
        assert!(Interval::from_be_bytes(&[0; 15]).is_err());
    }

    #[test]
    fn durations_only_where_exact() {
        let read = |v: Interval| Duration::from_value(&Value::Interval(v));
        assert_eq!(
            read(Interval::new(0, 0, 1_500_000)),
            Ok(Duration::from_millis(1500))
        );
        assert!(read(Interval::new(1, 0, 0)).unwrap_err().contains("months"));
        assert!(read(Interval::new(0, 1, 0)).unwrap_err().contains("days"));
        assert!(
            read(Interval::new(0, 0, -1))
                .unwrap_err()
                .contains("negative")
        );
        assert_eq!(
            Duration::from_nanos(1_500).to_param().into_owned(),
            Value::Interval(Interval::new(0, 0, 1))
        );
        assert_eq!(
            Duration::from_value(&Value::Int4(1)),
            Err("integer".to_owned())
        );
    }

    #[cfg(feature = "chrono")]
    #[test]
    fn time_deltas_take_days_as_24_hours() {
        use chrono::TimeDelta;
        let read = |v: Interval| TimeDelta::from_value(&Value::Interval(v));
        assert_eq!(
            read(Interval::new(0, 1, -3_600_000_000)),
            Ok(TimeDelta::hours(23))
        );
        assert!(
            read(Interval::new(-1, 0, 0))
                .unwrap_err()
                .contains("months")
        );
        assert_eq!(
            TimeDelta::minutes(-2).to_param().into_owned(),
            Value::Interval(Interval::new(0, 0, -120_000_000))
        );
    }
}
