//! `'infinity'` and `'-infinity'` dates and timestamps, which no chrono type holds.

use std::borrow::Cow;

use crate::value::{ArrayElement, FromValue, Kind, ToParam, Value};

/// A `date`, `timestamp` or `timestamptz` that may be `'infinity'` or `'-infinity'`:
/// `Infinite<NaiveDate>`, `Infinite<NaiveDateTime>`, `Infinite<DateTime<Utc>>` (feature
/// `chrono`).
///
/// PostgreSQL's date and timestamp types have two special values, later and earlier than every
/// other, which chrono's types cannot hold. Reading one into a plain chrono type is an
/// [`Error::Decode`](crate::Error::Decode) that names the column and points here; read an
/// `Infinite<T>` instead (or the column as text, `col::text`). Binding one writes the special
/// value. The variants are in the server's order, so `Ord` sorts as `ORDER BY` does.
///
/// ```
/// use chrono::NaiveDate;
/// use pgdbm::{FromValue, Infinite, ToParam, Value};
///
/// let until: Infinite<NaiveDate> = Infinite::Infinity;
/// let bound = until.to_param().into_owned();
/// assert_eq!(Infinite::<NaiveDate>::from_value(&bound), Ok(Infinite::Infinity));
/// // A plain NaiveDate cannot hold it, and the error says what can.
/// assert!(NaiveDate::from_value(&bound).unwrap_err().contains("Infinite<NaiveDate>"));
///
/// let day = NaiveDate::from_ymd_opt(2024, 5, 1).unwrap();
/// assert!(Infinite::NegInfinity < Infinite::Finite(day));
/// assert_eq!(Infinite::Finite(day).finite(), Some(day));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Infinite<T> {
    /// `'-infinity'`: before every other value.
    NegInfinity,
    /// An ordinary value.
    Finite(T),
    /// `'infinity'`: after every other value.
    Infinity,
}

impl<T> Infinite<T> {
    /// The ordinary value, `None` for either infinity.
    pub fn finite(self) -> Option<T> {
        match self {
            Infinite::Finite(v) => Some(v),
            Infinite::NegInfinity | Infinite::Infinity => None,
        }
    }
}

impl<T> From<T> for Infinite<T> {
    fn from(value: T) -> Self {
        Infinite::Finite(value)
    }
}

macro_rules! infinite {
    ($t:ty, $kind:ident, $name:literal) => {
        impl ToParam for Infinite<$t> {
            fn to_param(&self) -> Cow<'_, Value> {
                Cow::Owned(match self {
                    Infinite::Finite(v) => Value::$kind(*v),
                    Infinite::Infinity => Value::Infinity {
                        kind: Kind::$kind,
                        negative: false,
                    },
                    Infinite::NegInfinity => Value::Infinity {
                        kind: Kind::$kind,
                        negative: true,
                    },
                })
            }
        }
        impl ArrayElement for Infinite<$t> {
            const KIND: Kind = Kind::$kind;
        }
        impl FromValue for Infinite<$t> {
            fn type_name() -> String {
                concat!("Infinite<", $name, ">").to_owned()
            }
            fn from_value(value: &Value) -> Result<Self, String> {
                match value {
                    Value::Infinity {
                        kind: Kind::$kind,
                        negative,
                    } => Ok(if *negative {
                        Infinite::NegInfinity
                    } else {
                        Infinite::Infinity
                    }),
                    // Another type's infinity is a mismatch like its finite values.
                    Value::Infinity { .. } => Err(value.type_description()),
                    other => <$t>::from_value(other).map(Infinite::Finite),
                }
            }
        }
    };
}

infinite!(chrono::NaiveDate, Date, "NaiveDate");
infinite!(chrono::NaiveDateTime, Timestamp, "NaiveDateTime");
infinite!(chrono::DateTime<chrono::Utc>, TimestampTz, "DateTime<Utc>");

#[cfg(test)]
mod tests {
    use chrono::{DateTime, NaiveDateTime, Utc};

    use super::*;

    #[test]
    fn each_kind_reads_its_own_infinity_only() {
        let inf = Infinite::<NaiveDateTime>::Infinity.to_param().into_owned();
        assert_eq!(
            inf,
            Value::Infinity {
                kind: Kind::Timestamp,
                negative: false
            }
        );
        let err = Infinite::<DateTime<Utc>>::from_value(&inf).unwrap_err();
        assert_eq!(err, "timestamp 'infinity'");
        let err = NaiveDateTime::from_value(&inf).unwrap_err();
        assert!(err.contains("Infinite<NaiveDateTime>"), "{err}");
        let neg = Infinite::<DateTime<Utc>>::NegInfinity
            .to_param()
            .into_owned();
        assert_eq!(
            Infinite::<DateTime<Utc>>::from_value(&neg),
            Ok(Infinite::NegInfinity)
        );
        assert_eq!(neg.to_json(), serde_json::json!("-infinity"));
        assert_eq!(
            Option::<Infinite<DateTime<Utc>>>::from_value(&Value::Null),
            Ok(None)
        );
    }
}
