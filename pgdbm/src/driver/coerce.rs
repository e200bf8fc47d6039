//! Which pgdbm [`Value`] may be bound to which server type, and what it becomes there.
//!
//! pgdbm binds every value as the type the *statement* declares for its parameter (or a COPY
//! column has), not as the type the Rust value suggests: an `i32` goes into a `bigint` column, an
//! `i64` into an `integer` one when it fits, text into `uuid` (parsed) or `json` (sent as is). The
//! rules are the same for every driver, so they are here; each driver classifies the server's
//! type into a [`PgType`], calls [`coerce`], and writes the [`Coerced`] value in its own wire
//! encoding. A driver that cannot write some family (dates without chrono) classifies those types
//! as [`PgType::Other`], so the value is refused with the same message as any other mismatch.
//! `numeric` is written by the core for every driver ([`crate::driver::numeric`]).

#[cfg(feature = "chrono")]
use crate::driver::datetime;
use crate::driver::network::{self, NetworkBytes};
use crate::driver::numeric::Numeric;
use crate::{Kind, Value};

/// The families of server types pgdbm reads and writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PgType {
    /// `bool`.
    Bool,
    /// `int2`.
    Int2,
    /// `int4`.
    Int4,
    /// `int8`.
    Int8,
    /// `oid` (read as `Int8`).
    Oid,
    /// `float4`.
    Float4,
    /// `float8`.
    Float8,
    /// `text`, `varchar`, `bpchar`, `name`, `unknown`, and (classified by the driver) `citext`
    /// and enums.
    Text,
    /// `bytea`.
    Bytea,
    /// `json`.
    Json,
    /// `jsonb`.
    Jsonb,
    /// `uuid`.
    Uuid,
    /// `date`.
    Date,
    /// `time` (without time zone).
    Time,
    /// `timestamp`.
    Timestamp,
    /// `timestamptz`.
    TimestampTz,
    /// `numeric`.
    Numeric,
    /// `interval`.
    Interval,
    /// `inet` (bound from and read as text, see [`network`]).
    Inet,
    /// `cidr` (as text).
    Cidr,
    /// `macaddr` (as text).
    MacAddr,
    /// `macaddr8` (as text).
    MacAddr8,
    /// `money`: its `i64` in the currency's smallest unit (bound from integers, read as `Int8`).
    Money,
    /// `void` (a function returning nothing: read as `NULL`).
    Void,
    /// Any one-dimensional array type (the driver encodes the elements).
    Array,
    /// Anything else: only `NULL` may be bound.
    Other,
}

impl PgType {
    /// The built-in scalar type of OID `oid`, with its `pg_type.typname`.
    #[inline]
    pub const fn from_oid(oid: u32) -> Option<(PgType, &'static str)> {
        Some(match oid {
            16 => (PgType::Bool, "bool"),
            17 => (PgType::Bytea, "bytea"),
            19 => (PgType::Text, "name"),
            20 => (PgType::Int8, "int8"),
            21 => (PgType::Int2, "int2"),
            23 => (PgType::Int4, "int4"),
            25 => (PgType::Text, "text"),
            26 => (PgType::Oid, "oid"),
            114 => (PgType::Json, "json"),
            700 => (PgType::Float4, "float4"),
            701 => (PgType::Float8, "float8"),
            705 => (PgType::Text, "unknown"),
            1042 => (PgType::Text, "bpchar"),
            1043 => (PgType::Text, "varchar"),
            1082 => (PgType::Date, "date"),
            1083 => (PgType::Time, "time"),
            1114 => (PgType::Timestamp, "timestamp"),
            1184 => (PgType::TimestampTz, "timestamptz"),
            1186 => (PgType::Interval, "interval"),
            1700 => (PgType::Numeric, "numeric"),
            2278 => (PgType::Void, "void"),
            650 => (PgType::Cidr, "cidr"),
            774 => (PgType::MacAddr8, "macaddr8"),
            790 => (PgType::Money, "money"),
            829 => (PgType::MacAddr, "macaddr"),
            869 => (PgType::Inet, "inet"),
            2950 => (PgType::Uuid, "uuid"),
            3802 => (PgType::Jsonb, "jsonb"),
            _ => return None,
        })
    }

    /// `self`, or [`PgType::Other`] for the families pgdbm was built without: dates and times
    /// without pgdbm's `chrono` feature ([`datetime::READABLE`],
    /// the same for every driver). `numeric` is always written (by [`Numeric`]); whether it is
    /// read is [`numeric::READABLE`](crate::driver::numeric::READABLE).
    #[inline]
    pub const fn unless_missing(self) -> PgType {
        match self {
            PgType::Date | PgType::Time | PgType::Timestamp | PgType::TimestampTz
                if !crate::driver::datetime::READABLE =>
            {
                PgType::Other
            }
            other => other,
        }
    }

    /// The [`Kind`] of the values read from this family.
    pub const fn kind(self) -> Kind {
        match self {
            PgType::Bool => Kind::Bool,
            PgType::Int2 => Kind::Int2,
            PgType::Int4 => Kind::Int4,
            PgType::Int8 | PgType::Oid => Kind::Int8,
            PgType::Float4 => Kind::Float4,
            PgType::Float8 => Kind::Float8,
            PgType::Text | PgType::Inet | PgType::Cidr | PgType::MacAddr | PgType::MacAddr8 => {
                Kind::Text
            }
            PgType::Money => Kind::Int8,
            PgType::Bytea => Kind::Bytea,
            PgType::Json | PgType::Jsonb => Kind::Json,
            PgType::Uuid => Kind::Uuid,
            PgType::Date => Kind::Date,
            PgType::Time => Kind::Time,
            PgType::Timestamp => Kind::Timestamp,
            PgType::TimestampTz => Kind::TimestampTz,
            PgType::Numeric => Kind::Numeric,
            PgType::Interval => Kind::Interval,
            PgType::Void | PgType::Array | PgType::Other => Kind::Unknown,
        }
    }
}

/// A value as it is to be written in its target type.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Coerced<'v> {
    /// SQL `NULL` (whatever the type).
    Null,
    /// For `bool`.
    Bool(bool),
    /// For `int2`.
    Int2(i16),
    /// For `int4`.
    Int4(i32),
    /// For `int8`.
    Int8(i64),
    /// For `oid`.
    Oid(u32),
    /// For `float4`.
    Float4(f32),
    /// For `float8`.
    Float8(f64),
    /// The bytes of the text, as they are, for a text type or `json`.
    Text(&'v str),
    /// JSON text for `jsonb` (its binary format: a version byte, 1, then the text).
    JsonbText(&'v str),
    /// For `bytea`.
    Bytea(&'v [u8]),
    /// For `json`.
    Json(&'v serde_json::Value),
    /// For `jsonb`.
    Jsonb(&'v serde_json::Value),
    /// For `uuid` (also parsed from text).
    Uuid(uuid::Uuid),
    /// For `date`: days since 2000-01-01, its binary format (an `i32`; see
    /// [`datetime`] for the infinities).
    Date(i32),
    /// For `time`: microseconds since midnight (an `i64`).
    Time(i64),
    /// For `timestamp`: microseconds since 2000-01-01 00:00:00 (an `i64`).
    Timestamp(i64),
    /// For `timestamptz`: microseconds since 2000-01-01 00:00:00 UTC (an `i64`).
    TimestampTz(i64),
    /// For `numeric`: a `Decimal`, an integer or a float ([`Numeric::write_binary`] writes it).
    Numeric(Numeric),
    /// For `interval` (its binary format: [`Interval::to_be_bytes`](crate::Interval::to_be_bytes)).
    Interval(crate::Interval),
    /// For `inet`, `cidr`, `macaddr`, `macaddr8`: text parsed into the type's binary format.
    Network(NetworkBytes),
    /// The items of an array, for an array type; the driver coerces each to the element type
    /// (a multi-dimensional array's items are arrays: see [`array`]).
    Array(&'v [Value]),
}

/// Why a value cannot be bound to a type. Its [message](CoerceError::message) never contains the
/// value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CoerceError {
    /// The value's kind does not go into that type.
    Mismatch,
    /// An integer, into a type that takes none.
    IntegerMismatch,
    /// An integer outside the type's range.
    OutOfRange,
    /// Text bound to `uuid` that is not a UUID.
    InvalidUuid,
    /// Text bound to `inet`, `cidr`, `macaddr` or `macaddr8` that is not one (see
    /// [`network`] for what is accepted).
    InvalidNetwork,
}

impl CoerceError {
    /// The message of the driver's encode error: `value` was refused by the type the server
    /// names `type_name`.
    pub fn message(self, value: &Value, type_name: &str) -> String {
        match self {
            CoerceError::Mismatch => mismatch(value, type_name),
            CoerceError::IntegerMismatch => {
                format!("an integer value cannot be sent as {type_name}")
            }
            CoerceError::OutOfRange => format!("integer value out of range for {type_name}"),
            CoerceError::InvalidUuid => "text is not a valid uuid".to_owned(),
            CoerceError::InvalidNetwork => {
                let example = match type_name {
                    "inet" => "192.168.0.1/24 or ::1",
                    "cidr" => "10.0.0.0/8 (no bits right of the mask)",
                    _ => "08:00:2b:01:02:03",
                };
                format!(
                    "text is not a valid {type_name} (such as {example}; for other spellings \
                     cast in SQL: $n::text::{type_name})"
                )
            }
        }
    }
}

/// The message for a `value` that does not go into the type named `type_name` (with the Rust
/// type to bind instead where the mix-up is a common one).
pub fn mismatch(value: &Value, type_name: &str) -> String {
    let hint = match (value.kind(), type_name) {
        (Kind::Timestamp, "timestamptz") => {
            ": bind a chrono::DateTime<Utc> for timestamptz (a NaiveDateTime has no time zone)"
        }
        (Kind::TimestampTz, "timestamp") => {
            ": bind a chrono::NaiveDateTime for timestamp (without time zone)"
        }
        _ => "",
    };
    format!(
        "a {} value cannot be sent as {type_name}{hint}",
        value.type_description()
    )
}

/// What `value` becomes in a type of family `target`.
///
/// | value | goes into |
/// |---|---|
/// | `NULL` | any type |
/// | an integer | `int2`, `int4`, `oid` (range checked), `int8`, `numeric`, `money` (in the currency's smallest unit) |
/// | `Bool` | `bool` |
/// | `Float4` | `float4`, `float8`, `numeric` |
/// | `Float8` | `float8`, `numeric` (as its shortest round-trip decimal, see [`Numeric::float`]) |
/// | `Text` | text types and enums, `json`, `jsonb` (sent as is), `uuid`, `inet`, `cidr`, `macaddr`, `macaddr8` (parsed) |
/// | `Infinity` | its own date/time type |
/// | `Json` | `json`, `jsonb` |
/// | `Bytea`, `Uuid`, dates and times, `Numeric`, `Interval` | their own type |
/// | `Array` | an array type |
///
/// # Errors
///
/// A [`CoerceError`] for any other pair.
#[inline]
pub fn coerce(value: &Value, target: PgType) -> Result<Coerced<'_>, CoerceError> {
    Ok(match (value, target) {
        (Value::Null, _) => Coerced::Null,
        (Value::Int2(_) | Value::Int4(_) | Value::Int8(_), _) => {
            return integer(value.as_i64().unwrap_or_default(), target);
        }
        (Value::Bool(v), PgType::Bool) => Coerced::Bool(*v),
        (Value::Float4(v), PgType::Float4) => Coerced::Float4(*v),
        (Value::Float4(v), PgType::Float8) => Coerced::Float8(f64::from(*v)),
        (Value::Float8(v), PgType::Float8) => Coerced::Float8(*v),
        (Value::Text(s), PgType::Text | PgType::Json) => Coerced::Text(s),
        (Value::Text(s), PgType::Jsonb) => Coerced::JsonbText(s),
        (Value::Text(s), PgType::Inet | PgType::Cidr | PgType::MacAddr | PgType::MacAddr8) => {
            Coerced::Network(network::encode(target, s).ok_or(CoerceError::InvalidNetwork)?)
        }
        (Value::Text(s), PgType::Uuid) => {
            Coerced::Uuid(uuid::Uuid::parse_str(s).map_err(|_| CoerceError::InvalidUuid)?)
        }
        (Value::Bytea(v), PgType::Bytea) => Coerced::Bytea(v),
        (Value::Json(v), PgType::Json) => Coerced::Json(v),
        (Value::Json(v), PgType::Jsonb) => Coerced::Jsonb(v),
        (Value::Uuid(v), PgType::Uuid) => Coerced::Uuid(*v),
        #[cfg(feature = "chrono")]
        (Value::Date(v), PgType::Date) => Coerced::Date(datetime::date_days(*v)),
        #[cfg(feature = "chrono")]
        (Value::Time(v), PgType::Time) => Coerced::Time(datetime::time_micros(*v)),
        #[cfg(feature = "chrono")]
        (Value::Timestamp(v), PgType::Timestamp) => {
            Coerced::Timestamp(datetime::timestamp_micros(*v))
        }
        #[cfg(feature = "chrono")]
        (Value::TimestampTz(v), PgType::TimestampTz) => {
            Coerced::TimestampTz(datetime::timestamp_micros(v.naive_utc()))
        }
        #[cfg(feature = "chrono")]
        (Value::Infinity { kind, negative }, _) if *kind == target.kind() => {
            infinity(target, *negative)
        }
        #[cfg(feature = "decimal")]
        (Value::Numeric(v), PgType::Numeric) => Coerced::Numeric(Numeric::decimal(*v)),
        (Value::Float4(v), PgType::Numeric) => Coerced::Numeric(Numeric::float32(*v)),
        (Value::Float8(v), PgType::Numeric) => Coerced::Numeric(Numeric::float(*v)),
        (Value::Interval(v), PgType::Interval) => Coerced::Interval(*v),
        (Value::Array { items, .. }, PgType::Array) => Coerced::Array(items),
        _ => return Err(CoerceError::Mismatch),
    })
}

/// `'infinity'` (or `'-infinity'`) of the date/time family `target`.
#[cfg(feature = "chrono")]
fn infinity(target: PgType, negative: bool) -> Coerced<'static> {
    let (date, timestamp) = if negative {
        (
            datetime::DATE_NEG_INFINITY,
            datetime::TIMESTAMP_NEG_INFINITY,
        )
    } else {
        (datetime::DATE_INFINITY, datetime::TIMESTAMP_INFINITY)
    };
    match target {
        PgType::Date => Coerced::Date(date),
        PgType::TimestampTz => Coerced::TimestampTz(timestamp),
        _ => Coerced::Timestamp(timestamp),
    }
}

/// An integer into `target`, range checked.
#[inline]
fn integer(v: i64, target: PgType) -> Result<Coerced<'static>, CoerceError> {
    let range = |_| CoerceError::OutOfRange;
    Ok(match target {
        PgType::Int2 => Coerced::Int2(i16::try_from(v).map_err(range)?),
        PgType::Int4 => Coerced::Int4(i32::try_from(v).map_err(range)?),
        PgType::Int8 | PgType::Money => Coerced::Int8(v),
        PgType::Oid => Coerced::Oid(u32::try_from(v).map_err(range)?),
        PgType::Numeric => Coerced::Numeric(Numeric::int(v)),
        _ => return Err(CoerceError::IntegerMismatch),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_widen_and_narrow_with_range_checks() {
        assert_eq!(coerce(&Value::Int4(5), PgType::Int8), Ok(Coerced::Int8(5)));
        assert_eq!(coerce(&Value::Int8(5), PgType::Int4), Ok(Coerced::Int4(5)));
        assert_eq!(
            coerce(&Value::Int4(40_000), PgType::Int2),
            Err(CoerceError::OutOfRange)
        );
        assert_eq!(
            coerce(&Value::Int8(-1), PgType::Oid),
            Err(CoerceError::OutOfRange)
        );
        assert_eq!(
            coerce(&Value::Int4(1), PgType::Text),
            Err(CoerceError::IntegerMismatch)
        );
        let msg = CoerceError::OutOfRange.message(&Value::Int4(40_000), "int2");
        assert_eq!(msg, "integer value out of range for int2");
    }

    #[test]
    fn text_goes_into_uuid_and_json() {
        let id = uuid::Uuid::nil();
        assert_eq!(
            coerce(&Value::Text(id.to_string()), PgType::Uuid),
            Ok(Coerced::Uuid(id))
        );
        assert_eq!(
            coerce(&Value::Text("nope".into()), PgType::Uuid),
            Err(CoerceError::InvalidUuid)
        );
        let t = Value::Text("{}".into());
        assert_eq!(coerce(&t, PgType::Jsonb), Ok(Coerced::JsonbText("{}")));
        assert_eq!(coerce(&t, PgType::Json), Ok(Coerced::Text("{}")));
    }

    #[test]
    fn mismatches_name_the_kind_not_the_value() {
        let v = Value::Text("secret".into());
        let err = coerce(&v, PgType::Int4).unwrap_err();
        let msg = err.message(&v, "int4");
        assert!(msg.contains("int4") && !msg.contains("secret"), "{msg}");
        assert_eq!(coerce(&Value::Null, PgType::Other), Ok(Coerced::Null));
        assert_eq!(
            coerce(&Value::Float8(1.0), PgType::Float4),
            Err(CoerceError::Mismatch)
        );
    }

    #[test]
    fn builtins_by_oid() {
        assert_eq!(PgType::from_oid(23), Some((PgType::Int4, "int4")));
        assert_eq!(PgType::from_oid(1007), None);
        assert_eq!(PgType::Numeric.unless_missing(), PgType::Numeric);
        assert_eq!(
            PgType::Date.unless_missing() == PgType::Date,
            crate::driver::datetime::READABLE
        );
        assert_eq!(
            coerce(&Value::Float8(0.1), PgType::Numeric),
            Ok(Coerced::Numeric(Numeric::float(0.1)))
        );
    }
}
