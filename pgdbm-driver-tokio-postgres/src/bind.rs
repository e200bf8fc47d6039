//! Binding pgdbm [`Value`]s as tokio-postgres parameters, converting to the type the server
//! expects for each `$n` (integers widen or narrow with a range check).

use std::error::Error as StdError;

use bytes::BytesMut;
use pgdbm::Value;
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

fn mismatch(value: &Value, ty: &Type) -> BoxError {
    Box::new(BindError(format!(
        "a {} value cannot be sent as {}",
        value.type_description(),
        ty.name()
    )))
}

fn out_of_range(ty: &Type) -> BoxError {
    Box::new(BindError(format!(
        "integer value out of range for {}",
        ty.name()
    )))
}

/// A borrowed [`Value`] that tokio-postgres can send.
#[derive(Debug)]
pub(crate) struct Bind<'a>(pub(crate) &'a Value);

fn is_text(ty: &Type) -> bool {
    matches!(
        *ty,
        Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN
    ) || ty.name() == "citext"
        || matches!(ty.kind(), Kind::Enum(_))
}

fn int(v: i64, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
    match *ty {
        Type::INT2 => i16::try_from(v)
            .map_err(|_| out_of_range(ty))?
            .to_sql(ty, out),
        Type::INT4 => i32::try_from(v)
            .map_err(|_| out_of_range(ty))?
            .to_sql(ty, out),
        Type::INT8 => v.to_sql(ty, out),
        Type::OID => u32::try_from(v)
            .map_err(|_| out_of_range(ty))?
            .to_sql(ty, out),
        #[cfg(feature = "decimal")]
        Type::NUMERIC => rust_decimal::Decimal::from(v).to_sql(ty, out),
        _ => Err(Box::new(BindError(format!(
            "an integer value cannot be sent as {}",
            ty.name()
        )))),
    }
}

impl ToSql for Bind<'_> {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
        let value = self.0;
        match value {
            Value::Null => Ok(IsNull::Yes),
            Value::Int2(_) | Value::Int4(_) | Value::Int8(_) => {
                int(value.as_i64().unwrap_or_default(), ty, out)
            }
            Value::Bool(v) if *ty == Type::BOOL => v.to_sql(ty, out),
            Value::Float4(v) if *ty == Type::FLOAT4 => v.to_sql(ty, out),
            Value::Float4(v) if *ty == Type::FLOAT8 => f64::from(*v).to_sql(ty, out),
            Value::Float8(v) if *ty == Type::FLOAT8 => v.to_sql(ty, out),
            Value::Text(s) if is_text(ty) => {
                out.extend_from_slice(s.as_bytes());
                Ok(IsNull::No)
            }
            Value::Text(s) if *ty == Type::JSON => {
                out.extend_from_slice(s.as_bytes());
                Ok(IsNull::No)
            }
            Value::Text(s) if *ty == Type::JSONB => {
                out.extend_from_slice(&[1]);
                out.extend_from_slice(s.as_bytes());
                Ok(IsNull::No)
            }
            Value::Text(s) if *ty == Type::UUID => uuid::Uuid::parse_str(s)
                .map_err(|_| Box::new(BindError("text is not a valid uuid".into())) as BoxError)?
                .to_sql(ty, out),
            Value::Bytea(v) if *ty == Type::BYTEA => v.as_slice().to_sql(ty, out),
            Value::Json(v) if matches!(*ty, Type::JSON | Type::JSONB) => v.to_sql(ty, out),
            Value::Uuid(v) if *ty == Type::UUID => v.to_sql(ty, out),
            #[cfg(feature = "chrono")]
            Value::Date(v) if *ty == Type::DATE => v.to_sql(ty, out),
            #[cfg(feature = "chrono")]
            Value::Time(v) if *ty == Type::TIME => v.to_sql(ty, out),
            #[cfg(feature = "chrono")]
            Value::Timestamp(v) if *ty == Type::TIMESTAMP => v.to_sql(ty, out),
            #[cfg(feature = "chrono")]
            Value::TimestampTz(v) if *ty == Type::TIMESTAMPTZ => v.to_sql(ty, out),
            #[cfg(feature = "decimal")]
            Value::Numeric(v) if *ty == Type::NUMERIC => v.to_sql(ty, out),
            Value::Array { items, .. } if matches!(ty.kind(), Kind::Array(_)) => {
                let binds: Vec<Bind<'_>> = items.iter().map(Bind).collect();
                binds.to_sql(ty, out)
            }
            other => Err(mismatch(other, ty)),
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
