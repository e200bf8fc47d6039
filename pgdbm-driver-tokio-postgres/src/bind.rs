//! Binding pgdbm [`Value`]s as tokio-postgres parameters, converting to the type the server
//! expects for each `$n` (integers widen or narrow with a range check).

use std::error::Error as StdError;

use bytes::{BufMut as _, BytesMut};
use pgdbm::Value;
use pgdbm::driver::{CoerceError, Coerced, PgType, array, coerce};
use postgres_protocol::types::{ArrayDimension, array_to_sql};
use tokio_postgres::types::{IsNull, Kind, ToSql, Type, to_sql_checked};

type BoxError = Box<dyn StdError + Sync + Send>;

/// Why a parameter could not be encoded. Never contains the value itself.
#[derive(Debug)]
pub(crate) struct BindError(pub(crate) String);

impl std::fmt::Display for BindError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl StdError for BindError {}

/// A borrowed [`Value`] that tokio-postgres can send.
#[derive(Debug)]
pub(crate) struct Bind<'a>(pub(crate) &'a Value);

/// The family of `ty` for pgdbm's binding and reading rules ([`pgdbm::driver::coerce`]): enums
/// and `citext` are text, a domain is its base type's; dates and times with pgdbm's `chrono`
/// feature (whichever crate turned it on), `numeric` always (both the core's codecs).
pub(crate) fn family(ty: &Type) -> PgType {
    match ty.kind() {
        Kind::Array(_) => return PgType::Array,
        Kind::Enum(_) => return PgType::Text,
        Kind::Domain(base) => return family(base),
        _ => {}
    }
    match PgType::from_oid(ty.oid()) {
        Some((family, _)) => family.unless_missing(),
        None if ty.name() == "citext" => PgType::Text,
        None => PgType::Other,
    }
}

impl ToSql for Bind<'_> {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
        let value = self.0;
        let refused =
            |e: CoerceError| -> BoxError { Box::new(BindError(e.message(value, ty.name()))) };
        match coerce(value, family(ty)).map_err(refused)? {
            Coerced::Null => Ok(IsNull::Yes),
            Coerced::Bool(v) => v.to_sql(ty, out),
            Coerced::Int2(v) => v.to_sql(ty, out),
            Coerced::Int4(v) => v.to_sql(ty, out),
            Coerced::Int8(v) => v.to_sql(ty, out),
            Coerced::Oid(v) => v.to_sql(ty, out),
            Coerced::Float4(v) => v.to_sql(ty, out),
            Coerced::Float8(v) => v.to_sql(ty, out),
            Coerced::Text(s) => {
                out.extend_from_slice(s.as_bytes());
                Ok(IsNull::No)
            }
            Coerced::JsonbText(s) => {
                out.extend_from_slice(&[1]);
                out.extend_from_slice(s.as_bytes());
                Ok(IsNull::No)
            }
            Coerced::Bytea(v) => v.to_sql(ty, out),
            Coerced::Json(v) | Coerced::Jsonb(v) => v.to_sql(ty, out),
            Coerced::Uuid(v) => v.to_sql(ty, out),
            Coerced::Date(v) => {
                out.put_i32(v);
                Ok(IsNull::No)
            }
            Coerced::Time(v) | Coerced::Timestamp(v) | Coerced::TimestampTz(v) => {
                out.put_i64(v);
                Ok(IsNull::No)
            }
            Coerced::Network(v) => {
                out.extend_from_slice(v.as_bytes());
                Ok(IsNull::No)
            }
            Coerced::Interval(v) => {
                out.extend_from_slice(&v.to_be_bytes());
                Ok(IsNull::No)
            }
            Coerced::Numeric(n) => {
                n.write_binary(out);
                Ok(IsNull::No)
            }
            Coerced::Array(items) => {
                let Kind::Array(member) = ty.kind() else {
                    return Err(refused(CoerceError::Mismatch));
                };
                write_array(items, member, out)?;
                Ok(IsNull::No)
            }
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

/// An array (of any number of dimensions, see [`pgdbm::driver::array`]) of `member` elements,
/// each bound as `member`.
fn write_array(items: &[Value], member: &Type, out: &mut BytesMut) -> Result<(), BoxError> {
    let flat = array::flatten(items).map_err(BindError)?;
    let dimensions = flat.dimensions.iter().map(|&len| ArrayDimension {
        len,
        lower_bound: 1,
    });
    array_to_sql(
        dimensions,
        member.oid(),
        flat.elements,
        |item, buf| match Bind(item).to_sql(member, buf) {
            Ok(IsNull::Yes) => Ok(postgres_protocol::IsNull::Yes),
            Ok(IsNull::No) => Ok(postgres_protocol::IsNull::No),
            Err(e) => Err(e),
        },
        out,
    )
    .map_err(|e| -> BoxError { Box::new(BindError(format!("array element: {e}"))) })
}

/// A parameter converted to a [`Value`] only when tokio-postgres encodes it (no `Vec` per query).
pub(crate) struct BindParam<'a>(pub(crate) &'a dyn pgdbm::ToParam);

impl std::fmt::Debug for BindParam<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BindParam")
    }
}

impl ToSql for BindParam<'_> {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
        Bind(&self.0.to_param()).to_sql(ty, out)
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}
