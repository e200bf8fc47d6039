//! pgdbm [`Value`]s in PostgreSQL's binary format: written as the type the server expects
//! (parameters and binary COPY) and read from result columns.
//!
//! sqlx binds values with the Rust-declared type; pgdbm binds to the statement's own parameter
//! types (an `i32` into a `bigint` column, an `i64` into `integer` with a range check, text into
//! `uuid`/`json`). Which value goes into which type is [`pgdbm::driver::coerce`]'s to say; the
//! bytes of the basic scalars and the array framing are written and read by
//! `postgres-protocol`'s codecs, the ones tokio-postgres uses; those of `numeric`, `interval`,
//! dates and times, the network types and `money` by the core's ([`pgdbm::driver::decode_own`]),
//! the same for every driver. Their errors are wrapped in this driver's messages, which never
//! contain the value.

use std::cell::RefCell;
use std::error::Error as StdError;

use bytes::{BufMut as _, BytesMut};
use fallible_iterator::FallibleIterator as _;
use pgdbm::Value;
use pgdbm::driver::{CoerceError, Coerced, array, coerce, decode_own};
use postgres_protocol::IsNull;
use postgres_protocol::types::{self as codec, ArrayDimension};
use sqlx::postgres::PgTypeInfo;

use crate::types::{Ty, classify, element, type_name};

type CodecError = Box<dyn StdError + Sync + Send>;

/// A scratch buffer per thread for the values bound through sqlx, whose argument buffer is a
/// `Vec<u8>` while the codecs write into a `BytesMut`: the value is encoded here and copied over.
/// A buffer grown past this size by a large value is not kept.
const SCRATCH_KEEP: usize = 64 * 1024;

thread_local! {
    static SCRATCH: RefCell<BytesMut> = RefCell::new(BytesMut::new());
}

/// Writes `value` in the binary format of `ti` (without the length prefix) at the end of `out`.
/// `Ok(true)` means SQL `NULL` (nothing written). `ty` is `classify(ti)`. The error message never
/// contains the value.
pub(crate) fn encode_as(
    value: &Value,
    ti: &PgTypeInfo,
    ty: Ty,
    out: &mut Vec<u8>,
) -> Result<bool, String> {
    // Only `encode_into` runs while the buffer is borrowed, and it never comes back here.
    SCRATCH.with_borrow_mut(|buf| {
        buf.clear();
        let result = encode_into(value, ti, ty, buf);
        if result == Ok(false) {
            out.extend_from_slice(buf);
        }
        if buf.capacity() > SCRATCH_KEEP {
            *buf = BytesMut::new();
        }
        result
    })
}

/// Writes `value` in the binary format of `ti` into `buf`; `Ok(true)` for `NULL`.
pub(crate) fn encode_into(
    value: &Value,
    ti: &PgTypeInfo,
    ty: Ty,
    buf: &mut BytesMut,
) -> Result<bool, String> {
    let refused = |e: CoerceError| e.message(value, &type_name(ti));
    match coerce(value, ty).map_err(refused)? {
        Coerced::Null => return Ok(true),
        Coerced::Bool(v) => codec::bool_to_sql(v, buf),
        Coerced::Int2(v) => codec::int2_to_sql(v, buf),
        Coerced::Int4(v) => codec::int4_to_sql(v, buf),
        Coerced::Int8(v) => codec::int8_to_sql(v, buf),
        Coerced::Oid(v) => codec::oid_to_sql(v, buf),
        Coerced::Float4(v) => codec::float4_to_sql(v, buf),
        Coerced::Float8(v) => codec::float8_to_sql(v, buf),
        Coerced::Text(s) => codec::text_to_sql(s, buf),
        Coerced::JsonbText(s) => {
            buf.put_u8(1);
            codec::text_to_sql(s, buf);
        }
        Coerced::Bytea(v) => codec::bytea_to_sql(v, buf),
        Coerced::Json(v) => write_json(v, buf)?,
        Coerced::Jsonb(v) => {
            buf.put_u8(1);
            write_json(v, buf)?;
        }
        Coerced::Uuid(v) => codec::uuid_to_sql(*v.as_bytes(), buf),
        Coerced::Date(v) => buf.put_i32(v),
        Coerced::Time(v) | Coerced::Timestamp(v) | Coerced::TimestampTz(v) => buf.put_i64(v),
        Coerced::Network(v) => buf.put_slice(v.as_bytes()),
        Coerced::Numeric(n) => n.write_binary(buf),
        Coerced::Interval(v) => buf.put_slice(&v.to_be_bytes()),
        Coerced::Array(items) => match element(ti) {
            Some(elem) => encode_array(items, elem, buf)?,
            None => return Err(refused(CoerceError::Mismatch)),
        },
    }
    Ok(false)
}

fn write_json(v: &serde_json::Value, buf: &mut BytesMut) -> Result<(), String> {
    serde_json::to_writer(buf.writer(), v).map_err(|e| format!("invalid json: {e}"))
}

/// An array of elements of type `elem`, of any number of dimensions (see
/// [`pgdbm::driver::array`]; an empty one has none).
fn encode_array(items: &[Value], elem: &PgTypeInfo, buf: &mut BytesMut) -> Result<(), String> {
    let flat = array::flatten(items)?;
    let dimensions = flat.dimensions.iter().map(|&len| ArrayDimension {
        len,
        lower_bound: 1,
    });
    let elem_ty = classify(elem);
    let elem_oid = elem.oid().map_or(0, |o| o.0);
    codec::array_to_sql(
        dimensions,
        elem_oid,
        flat.elements,
        |item, buf| match encode_into(item, elem, elem_ty, buf) {
            Ok(true) => Ok(IsNull::Yes),
            Ok(false) => Ok(IsNull::No),
            Err(e) => Err(e.into()),
        },
        buf,
    )
    .map_err(|e| format!("array element: {e}"))
}

/// Writes a length-prefixed field (as in binary COPY rows).
pub(crate) fn write_field(
    value: &Value,
    ti: &PgTypeInfo,
    buf: &mut BytesMut,
) -> Result<(), String> {
    let start = buf.len();
    buf.put_i32(0);
    let len = if encode_into(value, ti, classify(ti), buf)? {
        -1
    } else {
        i32::try_from(buf.len() - start - 4).map_err(|_| "value too large".to_owned())?
    };
    buf[start..start + 4].copy_from_slice(&len.to_be_bytes());
    Ok(())
}

/// The message of a codec's error (the codecs' texts name sizes and formats, never data).
fn why(e: CodecError) -> String {
    e.to_string()
}

/// Reads one non-NULL value of family `ty` from its binary representation.
pub(crate) fn decode_scalar(ty: Ty, raw: &[u8]) -> Result<Value, String> {
    if let Some(own) = decode_own(ty, raw) {
        return own;
    }
    Ok(match ty {
        Ty::Bool => Value::Bool(codec::bool_from_sql(raw).map_err(why)?),
        Ty::Int2 => Value::Int2(codec::int2_from_sql(raw).map_err(why)?),
        Ty::Int4 => Value::Int4(codec::int4_from_sql(raw).map_err(why)?),
        Ty::Int8 => Value::Int8(codec::int8_from_sql(raw).map_err(why)?),
        Ty::Oid => Value::Int8(codec::oid_from_sql(raw).map_err(why)?.into()),
        Ty::Float4 => Value::Float4(codec::float4_from_sql(raw).map_err(why)?),
        Ty::Float8 => Value::Float8(codec::float8_from_sql(raw).map_err(why)?),
        Ty::Text => Value::Text(codec::text_from_sql(raw).map_err(why)?.to_owned()),
        Ty::Bytea => Value::Bytea(codec::bytea_from_sql(raw).to_vec()),
        Ty::Json => Value::Json(serde_json::from_slice(raw).map_err(|e| e.to_string())?),
        Ty::Jsonb => match raw.split_first() {
            Some((1, rest)) => {
                Value::Json(serde_json::from_slice(rest).map_err(|e| e.to_string())?)
            }
            _ => return Err("unknown jsonb format version".to_owned()),
        },
        Ty::Uuid => Value::Uuid(uuid::Uuid::from_bytes(
            codec::uuid_from_sql(raw).map_err(why)?,
        )),
        Ty::Void => Value::Null,
        _ => return Err("unsupported type".to_owned()),
    })
}

/// Reads an array, of any number of dimensions, whose elements are of family `ty`.
pub(crate) fn decode_array(ty: Ty, raw: &[u8]) -> Result<Value, String> {
    let array = codec::array_from_sql(raw).map_err(why)?;
    let dimensions: Vec<i32> = array
        .dimensions()
        .map(|d| Ok(d.len))
        .collect()
        .map_err(why)?;
    let mut values = array.values();
    let mut items = Vec::with_capacity(values.size_hint().0);
    while let Some(item) = values.next().map_err(why)? {
        items.push(match item {
            None => Value::Null,
            Some(raw) => decode_scalar(ty, raw)?,
        });
    }
    array::nest(&dimensions, items, ty.kind())
}

#[cfg(test)]
mod tests {
    use super::*;
    use pgdbm::Kind;

    fn info<T: sqlx::Type<sqlx::Postgres>>() -> PgTypeInfo {
        T::type_info()
    }

    fn encode(value: &Value, ti: &PgTypeInfo, out: &mut Vec<u8>) -> Result<bool, String> {
        encode_as(value, ti, classify(ti), out)
    }

    #[test]
    fn integers_convert_with_range_checks() {
        let mut out = Vec::new();
        assert_eq!(encode(&Value::Int4(5), &info::<i64>(), &mut out), Ok(false));
        assert_eq!(out, 5i64.to_be_bytes());
        let err = encode(&Value::Int4(40_000), &info::<i16>(), &mut Vec::new()).unwrap_err();
        assert!(
            err.contains("out of range") && !err.contains("40000"),
            "{err}"
        );
    }

    #[test]
    fn arrays_roundtrip() {
        let arr = info::<Vec<i32>>();
        let v = Value::Array {
            element: Kind::Int4,
            items: vec![Value::Int4(1), Value::Null, Value::Int4(3)],
        };
        let mut out = Vec::new();
        assert_eq!(encode(&v, &arr, &mut out), Ok(false));
        assert_eq!(decode_array(Ty::Int4, &out).unwrap(), v);
        let empty = Value::Array {
            element: Kind::Int4,
            items: vec![],
        };
        let mut out = Vec::new();
        assert_eq!(encode(&empty, &arr, &mut out), Ok(false));
        assert_eq!(decode_array(Ty::Int4, &out).unwrap(), empty);
    }

    #[test]
    fn nested_arrays_roundtrip_ragged_ones_and_bad_bytes_are_refused() {
        let arr = info::<Vec<i32>>();
        let row = |items: &[i32]| Value::Array {
            element: Kind::Int4,
            items: items.iter().copied().map(Value::Int4).collect(),
        };
        let grid = Value::Array {
            element: Kind::Array,
            items: vec![row(&[1, 2]), row(&[3, 4])],
        };
        let mut out = Vec::new();
        assert_eq!(encode(&grid, &arr, &mut out), Ok(false));
        assert_eq!(decode_array(Ty::Int4, &out).unwrap(), grid);
        let ragged = Value::Array {
            element: Kind::Array,
            items: vec![row(&[1, 2]), row(&[3])],
        };
        let err = encode(&ragged, &arr, &mut Vec::new()).unwrap_err();
        assert!(err.contains("rectangular"), "{err}");
        assert!(decode_scalar(Ty::Int4, &[0, 1]).is_err());
        assert!(decode_array(Ty::Int4, &[0, 0, 0, 1]).is_err());
    }

    #[test]
    fn a_null_writes_nothing_and_copy_fields_carry_their_length() {
        let mut out = Vec::new();
        assert_eq!(encode(&Value::Null, &info::<i32>(), &mut out), Ok(true));
        assert!(out.is_empty());
        let mut buf = BytesMut::new();
        write_field(&Value::Int2(7), &info::<i16>(), &mut buf).unwrap();
        write_field(&Value::Null, &info::<i16>(), &mut buf).unwrap();
        assert_eq!(&buf[..], &[0, 0, 0, 2, 0, 7, 255, 255, 255, 255]);
    }

    #[cfg(feature = "chrono")]
    #[test]
    fn dates_and_times_roundtrip() {
        use chrono::{NaiveDate, NaiveTime, TimeZone, Utc};
        let d = NaiveDate::from_ymd_opt(1999, 12, 31).unwrap();
        let t = NaiveTime::from_hms_micro_opt(23, 59, 59, 999_999).unwrap();
        for (v, ti) in [
            (Value::Date(d), info::<NaiveDate>()),
            (Value::Time(t), info::<NaiveTime>()),
            (
                Value::Timestamp(d.and_time(t)),
                info::<chrono::NaiveDateTime>(),
            ),
            (
                Value::TimestampTz(Utc.from_utc_datetime(&d.and_time(t))),
                info::<chrono::DateTime<Utc>>(),
            ),
        ] {
            let mut out = Vec::new();
            assert_eq!(encode(&v, &ti, &mut out), Ok(false));
            assert_eq!(decode_scalar(classify(&ti), &out).unwrap(), v);
        }
        let infinity = i64::MAX.to_be_bytes();
        assert_eq!(
            decode_scalar(Ty::Timestamp, &infinity),
            Ok(Value::Infinity {
                kind: Kind::Timestamp,
                negative: false
            })
        );
    }
}
