//! Turning tokio-postgres rows into pgdbm [`Row`]s: each column read by its family
//! ([`crate::bind::family`], the rules both drivers share), the basic scalars with
//! tokio-postgres's codecs, the families pgdbm decodes itself with the core's
//! ([`pgdbm::driver::decode_own`]), arrays of any element type and dimension with
//! `postgres-protocol`'s.

use std::error::Error as StdError;
use std::sync::Arc;

use fallible_iterator::FallibleIterator as _;
use pgdbm::driver::{Columns, PgType, array, decode_own};
use pgdbm::{Error, Result, Row, Value};
use tokio_postgres::types::{FromSql, Kind, Type};

use crate::bind::family;

type BoxError = Box<dyn StdError + Sync + Send>;

/// The pgdbm column list for a prepared statement.
pub(crate) fn columns(stmt: &tokio_postgres::Statement) -> Columns {
    stmt.columns()
        .iter()
        .map(|c| pgdbm::driver::new_column(c.name(), c.type_().name()))
        .collect::<Vec<_>>()
        .into()
}

/// A column's bytes as they came (binary format), whatever its type.
struct Raw<'a>(&'a [u8]);

impl<'a> FromSql<'a> for Raw<'a> {
    fn from_sql(_: &Type, raw: &'a [u8]) -> std::result::Result<Self, BoxError> {
        Ok(Raw(raw))
    }
    fn accepts(_: &Type) -> bool {
        true
    }
}

/// How a column of some type is read.
#[derive(Debug, Clone, Copy)]
enum Reader {
    Scalar(PgType),
    /// An array whose elements are of this family.
    Array(PgType),
}

/// The reader of a column of type `ty`, or `None` when pgdbm does not read it.
fn reader(ty: &Type) -> Option<Reader> {
    match ty.kind() {
        Kind::Array(member) => {
            let elem = family(member);
            elem.readable_element().then_some(Reader::Array(elem))
        }
        _ => {
            let ty = family(ty);
            ty.readable().then_some(Reader::Scalar(ty))
        }
    }
}

/// One non-NULL value of family `ty`.
fn scalar(ty: PgType, raw: &[u8]) -> std::result::Result<Value, BoxError> {
    if let Some(own) = decode_own(ty, raw) {
        return own.map_err(Into::into);
    }
    Ok(match ty {
        PgType::Bool => Value::Bool(bool::from_sql(&Type::BOOL, raw)?),
        PgType::Int2 => Value::Int2(i16::from_sql(&Type::INT2, raw)?),
        PgType::Int4 => Value::Int4(i32::from_sql(&Type::INT4, raw)?),
        PgType::Int8 => Value::Int8(i64::from_sql(&Type::INT8, raw)?),
        PgType::Oid => Value::Int8(u32::from_sql(&Type::OID, raw)?.into()),
        PgType::Float4 => Value::Float4(f32::from_sql(&Type::FLOAT4, raw)?),
        PgType::Float8 => Value::Float8(f64::from_sql(&Type::FLOAT8, raw)?),
        PgType::Text => Value::Text(<&str>::from_sql(&Type::TEXT, raw)?.to_owned()),
        PgType::Bytea => Value::Bytea(<&[u8]>::from_sql(&Type::BYTEA, raw)?.to_vec()),
        PgType::Json => Value::Json(serde_json::Value::from_sql(&Type::JSON, raw)?),
        PgType::Jsonb => Value::Json(serde_json::Value::from_sql(&Type::JSONB, raw)?),
        PgType::Uuid => Value::Uuid(uuid::Uuid::from_sql(&Type::UUID, raw)?),
        PgType::Void => Value::Null,
        _ => return Err("unsupported type".into()),
    })
}

/// An array of elements of family `elem`, of any number of dimensions.
fn array_of(elem: PgType, raw: &[u8]) -> std::result::Result<Value, BoxError> {
    let array = postgres_protocol::types::array_from_sql(raw)?;
    let dimensions: Vec<i32> = array.dimensions().map(|d| Ok(d.len)).collect()?;
    let items: Vec<Value> = array
        .values()
        .map(|v| v.map_or(Ok(Value::Null), |raw| scalar(elem, raw)))
        .collect()?;
    Ok(array::nest(&dimensions, items, elem.kind())?)
}

fn value(row: &tokio_postgres::Row, i: usize, cols: &Columns) -> Result<Value> {
    let ty = row.columns()[i].type_();
    let reader = reader(ty).ok_or_else(|| Error::unsupported_type(cols[i].name(), ty.name()))?;
    let undecodable = |e: &dyn std::fmt::Display| {
        Error::decode(
            cols[i].name(),
            cols[i].type_name(),
            format!("undecodable data ({e})"),
        )
    };
    let Some(Raw(raw)) = row
        .try_get::<_, Option<Raw<'_>>>(i)
        .map_err(|e| undecodable(&e))?
    else {
        return Ok(Value::Null);
    };
    match reader {
        Reader::Scalar(ty) => scalar(ty, raw),
        Reader::Array(elem) => array_of(elem, raw),
    }
    .map_err(|e| undecodable(&e))
}

/// Converts one row.
pub(crate) fn row(row: &tokio_postgres::Row, cols: &Columns) -> Result<Row> {
    let values = (0..row.len())
        .map(|i| value(row, i, cols))
        .collect::<Result<Vec<_>>>()?;
    Ok(pgdbm::driver::new_row(Arc::clone(cols), values))
}
