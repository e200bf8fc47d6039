//! Binding pgdbm [`Value`]s as tokio-postgres parameters, converting to the type the server
//! expects for each `$n` (integers widen or narrow with a range check).

use std::error::Error as StdError;

use bytes::BytesMut;
use pgdbm::Value;
use pgdbm::driver::{CoerceError, Coerced, PgType, coerce};
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

/// The family of `ty` for pgdbm's binding rules ([`pgdbm::driver::coerce`]): enums and `citext`
/// are text; dates only with this crate's `chrono` feature (NUMERIC is the core's, always).
fn target(ty: &Type) -> PgType {
    match ty.kind() {
        Kind::Array(_) => return PgType::Array,
        Kind::Enum(_) => return PgType::Text,
        _ => {}
    }
    match PgType::from_oid(ty.oid()) {
        Some((family, _)) => family.unless_missing(cfg!(feature = "chrono")),
        None if ty.name() == "citext" => PgType::Text,
        None => PgType::Other,
    }
}

impl ToSql for Bind<'_> {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
        let value = self.0;
        let refused =
            |e: CoerceError| -> BoxError { Box::new(BindError(e.message(value, ty.name()))) };
        match coerce(value, target(ty)).map_err(refused)? {
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
            #[cfg(feature = "chrono")]
            Coerced::Date(v) => v.to_sql(ty, out),
            #[cfg(feature = "chrono")]
            Coerced::Time(v) => v.to_sql(ty, out),
            #[cfg(feature = "chrono")]
            Coerced::Timestamp(v) => v.to_sql(ty, out),
            #[cfg(feature = "chrono")]
            Coerced::TimestampTz(v) => v.to_sql(ty, out),
            Coerced::Interval(v) => {
                out.extend_from_slice(&v.to_be_bytes());
                Ok(IsNull::No)
            }
            Coerced::Numeric(n) => {
                n.write_binary(out);
                Ok(IsNull::No)
            }
            Coerced::Array(items) => {
                let binds: Vec<Bind<'_>> = items.iter().map(Bind).collect();
                binds.to_sql(ty, out)
            }
            // Families `target` does not give without this crate's features.
            #[allow(unreachable_patterns)]
            _ => Err(refused(CoerceError::Mismatch)),
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
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
