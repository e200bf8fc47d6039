//! Turning tokio-postgres rows into pgdbm [`Row`]s.

use std::sync::Arc;

use pgdbm::driver::{Columns, numeric};
use pgdbm::{Error, Kind as ValueKind, Result, Row, Value};
use tokio_postgres::types::{FromSql, Kind, Type};

/// The pgdbm column list for a prepared statement.
pub(crate) fn columns(stmt: &tokio_postgres::Statement) -> Columns {
    stmt.columns()
        .iter()
        .map(|c| pgdbm::driver::new_column(c.name(), c.type_().name()))
        .collect::<Vec<_>>()
        .into()
}

/// Reads text-like values, including enums and `citext`, as `String`.
struct AnyText(String);

impl<'a> FromSql<'a> for AnyText {
    fn from_sql(
        _: &Type,
        raw: &'a [u8],
    ) -> std::result::Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(AnyText(std::str::from_utf8(raw)?.to_owned()))
    }
    fn accepts(ty: &Type) -> bool {
        text_like(ty)
    }
}

/// A `numeric`, read by the core's codec (as every driver reads it).
struct RawNumeric(Value);

impl<'a> FromSql<'a> for RawNumeric {
    fn from_sql(
        _: &Type,
        raw: &'a [u8],
    ) -> std::result::Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(RawNumeric(numeric::decode(raw)?))
    }
    fn accepts(ty: &Type) -> bool {
        *ty == Type::NUMERIC
    }
}

/// An `interval`, read by the core's codec.
struct RawInterval(pgdbm::Interval);

impl<'a> FromSql<'a> for RawInterval {
    fn from_sql(
        _: &Type,
        raw: &'a [u8],
    ) -> std::result::Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(RawInterval(pgdbm::Interval::from_be_bytes(raw)?))
    }
    fn accepts(ty: &Type) -> bool {
        *ty == Type::INTERVAL
    }
}

fn text_like(ty: &Type) -> bool {
    matches!(
        *ty,
        Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN
    ) || ty.name() == "citext"
        || matches!(ty.kind(), Kind::Enum(_))
}

fn get<'a, T: FromSql<'a>>(
    row: &'a tokio_postgres::Row,
    i: usize,
    cols: &Columns,
) -> Result<Option<T>> {
    row.try_get::<_, Option<T>>(i).map_err(|e| {
        Error::decode(
            cols[i].name(),
            cols[i].type_name(),
            format!("undecodable data ({e})"),
        )
    })
}

fn array<'a, T: FromSql<'a>>(
    row: &'a tokio_postgres::Row,
    i: usize,
    cols: &Columns,
    element: ValueKind,
    wrap: impl Fn(T) -> Value,
) -> Result<Value> {
    Ok(match get::<Vec<Option<T>>>(row, i, cols)? {
        None => Value::Null,
        Some(items) => Value::Array {
            element,
            items: items
                .into_iter()
                .map(|v| v.map_or(Value::Null, &wrap))
                .collect(),
        },
    })
}

fn scalar<'a, T: FromSql<'a>>(
    row: &'a tokio_postgres::Row,
    i: usize,
    cols: &Columns,
    wrap: impl Fn(T) -> Value,
) -> Result<Value> {
    Ok(get::<T>(row, i, cols)?.map_or(Value::Null, wrap))
}

fn value(row: &tokio_postgres::Row, i: usize, cols: &Columns) -> Result<Value> {
    let ty = row.columns()[i].type_();
    match *ty {
        Type::BOOL => scalar(row, i, cols, Value::Bool),
        Type::INT2 => scalar(row, i, cols, Value::Int2),
        Type::INT4 => scalar(row, i, cols, Value::Int4),
        Type::INT8 => scalar(row, i, cols, Value::Int8),
        Type::OID => scalar(row, i, cols, |v: u32| Value::Int8(v.into())),
        Type::FLOAT4 => scalar(row, i, cols, Value::Float4),
        Type::FLOAT8 => scalar(row, i, cols, Value::Float8),
        Type::BYTEA => scalar(row, i, cols, Value::Bytea),
        Type::JSON | Type::JSONB => scalar(row, i, cols, Value::Json),
        Type::UUID => scalar(row, i, cols, Value::Uuid),
        Type::VOID => Ok(Value::Null),
        Type::INTERVAL => scalar(row, i, cols, |v: RawInterval| Value::Interval(v.0)),
        Type::INTERVAL_ARRAY => array(row, i, cols, ValueKind::Interval, |v: RawInterval| {
            Value::Interval(v.0)
        }),
        #[cfg(feature = "chrono")]
        Type::DATE => scalar(row, i, cols, Value::Date),
        #[cfg(feature = "chrono")]
        Type::TIME => scalar(row, i, cols, Value::Time),
        #[cfg(feature = "chrono")]
        Type::TIMESTAMP => scalar(row, i, cols, Value::Timestamp),
        #[cfg(feature = "chrono")]
        Type::TIMESTAMPTZ => scalar(row, i, cols, Value::TimestampTz),
        Type::NUMERIC if numeric::READABLE => scalar(row, i, cols, |n: RawNumeric| n.0),
        Type::BOOL_ARRAY => array(row, i, cols, ValueKind::Bool, Value::Bool),
        Type::INT2_ARRAY => array(row, i, cols, ValueKind::Int2, Value::Int2),
        Type::INT4_ARRAY => array(row, i, cols, ValueKind::Int4, Value::Int4),
        Type::INT8_ARRAY => array(row, i, cols, ValueKind::Int8, Value::Int8),
        Type::FLOAT4_ARRAY => array(row, i, cols, ValueKind::Float4, Value::Float4),
        Type::FLOAT8_ARRAY => array(row, i, cols, ValueKind::Float8, Value::Float8),
        Type::BYTEA_ARRAY => array(row, i, cols, ValueKind::Bytea, Value::Bytea),
        Type::JSON_ARRAY | Type::JSONB_ARRAY => array(row, i, cols, ValueKind::Json, Value::Json),
        Type::UUID_ARRAY => array(row, i, cols, ValueKind::Uuid, Value::Uuid),
        Type::TEXT_ARRAY | Type::VARCHAR_ARRAY | Type::BPCHAR_ARRAY | Type::NAME_ARRAY => {
            array(row, i, cols, ValueKind::Text, |t: AnyText| Value::Text(t.0))
        }
        #[cfg(feature = "chrono")]
        Type::DATE_ARRAY => array(row, i, cols, ValueKind::Date, Value::Date),
        #[cfg(feature = "chrono")]
        Type::TIMESTAMP_ARRAY => array(row, i, cols, ValueKind::Timestamp, Value::Timestamp),
        #[cfg(feature = "chrono")]
        Type::TIMESTAMPTZ_ARRAY => array(row, i, cols, ValueKind::TimestampTz, Value::TimestampTz),
        Type::NUMERIC_ARRAY if numeric::READABLE => {
            array(row, i, cols, ValueKind::Numeric, |n: RawNumeric| n.0)
        }
        _ if text_like(ty) => scalar(row, i, cols, |t: AnyText| Value::Text(t.0)),
        _ => Err(Error::unsupported_type(cols[i].name(), ty.name())),
    }
}

/// Converts one row.
pub(crate) fn row(row: &tokio_postgres::Row, cols: &Columns) -> Result<Row> {
    let values = (0..row.len())
        .map(|i| value(row, i, cols))
        .collect::<Result<Vec<_>>>()?;
    Ok(pgdbm::driver::new_row(Arc::clone(cols), values))
}
