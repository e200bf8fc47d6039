//! PostgreSQL binary wire format for pgdbm [`Value`]s: encoding a value as the type the server
//! expects (parameters and binary COPY) and decoding result columns.
//!
//! sqlx binds values with the Rust-declared type; pgdbm binds to the statement's own parameter
//! types (an `i32` into a `bigint` column, an `i64` into `integer` with a range check, text into
//! `uuid`/`json`). So values are written here, in the binary format of the *target* type.

use std::borrow::Cow;

use pgdbm::driver::{CoerceError, Coerced, coerce};
use pgdbm::{Error, Result, Value};
use sqlx::TypeInfo;
use sqlx::postgres::{PgTypeInfo, PgTypeKind};

/// The type families pgdbm reads and writes (the core's, shared with every driver).
pub(crate) use pgdbm::driver::PgType as Ty;

/// The family of a type. Like the tokio-postgres driver, enums and `citext` are text and domains
/// are not supported (cast them to their base type in SQL); dates and times need this crate's
/// `chrono` feature, NUMERIC its `decimal` feature (else they are [`Ty::Other`]).
pub(crate) fn classify(ti: &PgTypeInfo) -> Ty {
    if let Some((ty, _)) = builtin(ti) {
        return ty.unless_missing(cfg!(feature = "chrono"), cfg!(feature = "decimal"));
    }
    match ti.kind() {
        PgTypeKind::Array(_) => Ty::Array,
        PgTypeKind::Enum(_) => Ty::Text,
        _ if ti.name().eq_ignore_ascii_case("citext") => Ty::Text,
        _ => Ty::Other,
    }
}

/// A built-in type pgdbm knows by OID.
fn builtin(ti: &PgTypeInfo) -> Option<(Ty, &'static str)> {
    ti.oid().and_then(|o| Ty::from_oid(o.0))
}

/// `true` for the built-in types pgdbm knows by OID: everything pgdbm derives from such a type
/// (name, reader) depends on its OID only.
pub(crate) fn is_builtin(ti: &PgTypeInfo) -> bool {
    builtin(ti).is_some()
}

/// The element type of an array type.
pub(crate) fn element(ti: &PgTypeInfo) -> Option<&PgTypeInfo> {
    match ti.kind() {
        PgTypeKind::Array(elem) => Some(elem),
        _ => None,
    }
}

/// The PostgreSQL name of a type, as `pg_type.typname` spells it (`int4`, `_text`, `citext`).
pub(crate) fn type_name(ti: &PgTypeInfo) -> Cow<'static, str> {
    if let Some((_, name)) = builtin(ti) {
        return Cow::Borrowed(name);
    }
    if let Some(elem) = element(ti) {
        return Cow::Owned(format!("_{}", type_name(elem)));
    }
    let name = ti.name();
    if let PgTypeKind::Simple | PgTypeKind::Pseudo = ti.kind() {
        if let Some(elem) = name.strip_suffix("[]") {
            return Cow::Owned(format!("_{}", elem.to_ascii_lowercase()));
        }
        if name
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == ' ')
        {
            // sqlx's display name of a built-in type (`INTERVAL`).
            return Cow::Owned(name.to_ascii_lowercase());
        }
    }
    Cow::Owned(unqualified(name))
}

/// `pg_type.typname` from sqlx's (possibly schema-qualified, quoted) name of a user type:
/// `app.mood` → `mood`, `"My Type"` → `My Type`.
fn unqualified(name: &str) -> String {
    let mut in_quotes = false;
    let mut start = 0;
    for (i, c) in name.char_indices() {
        match c {
            '"' => in_quotes = !in_quotes,
            '.' if !in_quotes => start = i + 1,
            _ => {}
        }
    }
    let last = &name[start..];
    match last.strip_prefix('"').and_then(|s| s.strip_suffix('"')) {
        Some(quoted) => quoted.replace("\"\"", "\""),
        None => last.to_owned(),
    }
}

// ---------------------------------------------------------------------------------------------
// Encoding
// ---------------------------------------------------------------------------------------------

#[cfg(feature = "chrono")]
mod epoch {
    use chrono::{NaiveDate, NaiveDateTime};

    pub(super) fn date() -> NaiveDate {
        NaiveDate::from_ymd_opt(2000, 1, 1).unwrap_or_default()
    }
    pub(super) fn datetime() -> NaiveDateTime {
        date().and_hms_opt(0, 0, 0).unwrap_or_default()
    }
}

#[cfg(feature = "chrono")]
fn timestamp_micros(ts: chrono::NaiveDateTime) -> Result<i64, String> {
    (ts - epoch::datetime())
        .num_microseconds()
        .ok_or_else(|| "timestamp out of range".to_owned())
}

/// Writes `value` in the binary format of `ti` (without the length prefix). `Ok(true)` means
/// SQL `NULL` (nothing written). The error message never contains the value.
pub(crate) fn encode(value: &Value, ti: &PgTypeInfo, out: &mut Vec<u8>) -> Result<bool, String> {
    encode_as(value, ti, classify(ti), out)
}

/// [`encode`] with `ti` already classified (`ty` is `classify(ti)`). Which value goes into which
/// type is [`pgdbm::driver::coerce`]'s to say; this writes the result.
pub(crate) fn encode_as(
    value: &Value,
    ti: &PgTypeInfo,
    ty: Ty,
    out: &mut Vec<u8>,
) -> Result<bool, String> {
    let refused = |e: CoerceError| e.message(value, &type_name(ti));
    match coerce(value, ty).map_err(refused)? {
        Coerced::Null => return Ok(true),
        Coerced::Bool(v) => out.push(u8::from(v)),
        Coerced::Int2(v) => out.extend_from_slice(&v.to_be_bytes()),
        Coerced::Int4(v) => out.extend_from_slice(&v.to_be_bytes()),
        Coerced::Int8(v) => out.extend_from_slice(&v.to_be_bytes()),
        Coerced::Oid(v) => out.extend_from_slice(&v.to_be_bytes()),
        Coerced::Float4(v) => out.extend_from_slice(&v.to_be_bytes()),
        Coerced::Float8(v) => out.extend_from_slice(&v.to_be_bytes()),
        Coerced::Text(s) => out.extend_from_slice(s.as_bytes()),
        Coerced::JsonbText(s) => {
            out.push(1);
            out.extend_from_slice(s.as_bytes());
        }
        Coerced::Bytea(v) => out.extend_from_slice(v),
        Coerced::Json(v) => {
            serde_json::to_writer(&mut *out, v).map_err(|e| format!("invalid json: {e}"))?;
        }
        Coerced::Jsonb(v) => {
            out.push(1);
            serde_json::to_writer(&mut *out, v).map_err(|e| format!("invalid json: {e}"))?;
        }
        Coerced::Uuid(v) => out.extend_from_slice(v.as_bytes()),
        #[cfg(feature = "chrono")]
        Coerced::Date(d) => {
            let days = i32::try_from((d - epoch::date()).num_days())
                .map_err(|_| "date out of range".to_owned())?;
            out.extend_from_slice(&days.to_be_bytes());
        }
        #[cfg(feature = "chrono")]
        Coerced::Time(t) => {
            let micros = (t - chrono::NaiveTime::MIN)
                .num_microseconds()
                .unwrap_or_default();
            out.extend_from_slice(&micros.to_be_bytes());
        }
        #[cfg(feature = "chrono")]
        Coerced::Timestamp(ts) => {
            out.extend_from_slice(&timestamp_micros(ts)?.to_be_bytes());
        }
        #[cfg(feature = "chrono")]
        Coerced::TimestampTz(ts) => {
            out.extend_from_slice(&timestamp_micros(ts.naive_utc())?.to_be_bytes());
        }
        #[cfg(feature = "decimal")]
        Coerced::Numeric(d) => numeric::encode(d, out),
        Coerced::Array(items) => match element(ti) {
            Some(elem) => encode_array(items, elem, out)?,
            None => return Err(refused(CoerceError::Mismatch)),
        },
        // Families `classify` does not give without this crate's features.
        #[allow(unreachable_patterns)]
        _ => return Err(refused(CoerceError::Mismatch)),
    }
    Ok(false)
}

/// A one-dimensional array: header, then each element with its length (-1 for NULL).
fn encode_array(items: &[Value], elem: &PgTypeInfo, out: &mut Vec<u8>) -> Result<(), String> {
    let oid = elem.oid().map_or(0, |o| o.0);
    let has_null = items.iter().any(Value::is_null);
    out.extend_from_slice(&i32::from(!items.is_empty()).to_be_bytes());
    out.extend_from_slice(&i32::from(has_null).to_be_bytes());
    out.extend_from_slice(&oid.to_be_bytes());
    if !items.is_empty() {
        let len = i32::try_from(items.len()).map_err(|_| "array too long".to_owned())?;
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(&1i32.to_be_bytes());
    }
    for item in items {
        if matches!(item, Value::Array { .. }) {
            return Err("nested arrays are not supported".to_owned());
        }
        write_field(item, elem, out).map_err(|e| format!("array element: {e}"))?;
    }
    Ok(())
}

/// Writes a length-prefixed field (as in Bind values, array elements and binary COPY).
pub(crate) fn write_field(value: &Value, ti: &PgTypeInfo, out: &mut Vec<u8>) -> Result<(), String> {
    let start = out.len();
    out.extend_from_slice(&[0; 4]);
    let len = if encode(value, ti, out)? {
        -1
    } else {
        i32::try_from(out.len() - start - 4).map_err(|_| "value too large".to_owned())?
    };
    out[start..start + 4].copy_from_slice(&len.to_be_bytes());
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Decoding
// ---------------------------------------------------------------------------------------------

/// How to read one result column.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Reader {
    Scalar(Ty),
    Array(Ty),
}

/// The reader for a column type, or [`Error::UnsupportedType`] (suggesting a cast).
pub(crate) fn reader(ti: &PgTypeInfo, column: &str) -> Result<Reader> {
    let unsupported = || Error::unsupported_type(column, type_name(ti));
    let supported = |ty: Ty| {
        !matches!(ty, Ty::Other)
            && (cfg!(feature = "chrono")
                || !matches!(ty, Ty::Date | Ty::Time | Ty::Timestamp | Ty::TimestampTz))
            && (cfg!(feature = "decimal") || ty != Ty::Numeric)
    };
    if let Some(elem) = element(ti) {
        // Arrays of built-in types only, and not `time[]`/`oid[]`/`void[]`: the same set as the
        // tokio-postgres driver, so that both drivers read the same columns.
        let ty = builtin(elem).map_or(Ty::Other, |(ty, _)| ty);
        return if supported(ty) && !matches!(ty, Ty::Time | Ty::Oid | Ty::Void) {
            Ok(Reader::Array(ty))
        } else {
            Err(unsupported())
        };
    }
    let ty = classify(ti);
    if supported(ty) {
        Ok(Reader::Scalar(ty))
    } else {
        Err(unsupported())
    }
}

fn take<const N: usize>(raw: &[u8]) -> Result<[u8; N], String> {
    raw.try_into()
        .map_err(|_| format!("expected {N} bytes, got {}", raw.len()))
}

fn utf8(raw: &[u8]) -> Result<String, String> {
    std::str::from_utf8(raw)
        .map(str::to_owned)
        .map_err(|e| format!("invalid utf-8: {e}"))
}

/// Reads one non-NULL value of family `ty` from its binary representation.
pub(crate) fn decode_scalar(ty: Ty, raw: &[u8]) -> Result<Value, String> {
    Ok(match ty {
        Ty::Bool => Value::Bool(take::<1>(raw)?[0] != 0),
        Ty::Int2 => Value::Int2(i16::from_be_bytes(take(raw)?)),
        Ty::Int4 => Value::Int4(i32::from_be_bytes(take(raw)?)),
        Ty::Int8 => Value::Int8(i64::from_be_bytes(take(raw)?)),
        Ty::Oid => Value::Int8(u32::from_be_bytes(take(raw)?).into()),
        Ty::Float4 => Value::Float4(f32::from_be_bytes(take(raw)?)),
        Ty::Float8 => Value::Float8(f64::from_be_bytes(take(raw)?)),
        Ty::Text => Value::Text(utf8(raw)?),
        Ty::Bytea => Value::Bytea(raw.to_vec()),
        Ty::Json => Value::Json(serde_json::from_slice(raw).map_err(|e| e.to_string())?),
        Ty::Jsonb => match raw.split_first() {
            Some((1, rest)) => {
                Value::Json(serde_json::from_slice(rest).map_err(|e| e.to_string())?)
            }
            _ => return Err("unknown jsonb format version".to_owned()),
        },
        Ty::Uuid => Value::Uuid(uuid::Uuid::from_bytes(take(raw)?)),
        #[cfg(feature = "chrono")]
        Ty::Date => {
            let days = i32::from_be_bytes(take(raw)?);
            Value::Date(
                epoch::date()
                    .checked_add_signed(chrono::TimeDelta::days(days.into()))
                    .ok_or("date out of range")?,
            )
        }
        #[cfg(feature = "chrono")]
        Ty::Time => {
            let micros = i64::from_be_bytes(take(raw)?);
            let secs = u32::try_from(micros.div_euclid(1_000_000)).map_err(|_| "bad time")?;
            let nanos = u32::try_from(micros.rem_euclid(1_000_000) * 1000).unwrap_or_default();
            Value::Time(
                chrono::NaiveTime::from_num_seconds_from_midnight_opt(secs, nanos)
                    .ok_or("time out of range")?,
            )
        }
        #[cfg(feature = "chrono")]
        Ty::Timestamp | Ty::TimestampTz => {
            let micros = i64::from_be_bytes(take(raw)?);
            let ts = epoch::datetime()
                .checked_add_signed(chrono::TimeDelta::microseconds(micros))
                .ok_or("timestamp out of range (infinity?)")?;
            if ty == Ty::Timestamp {
                Value::Timestamp(ts)
            } else {
                Value::TimestampTz(ts.and_utc())
            }
        }
        #[cfg(feature = "decimal")]
        Ty::Numeric => Value::Numeric(numeric::decode(raw)?),
        Ty::Void => Value::Null,
        _ => return Err("unsupported type".to_owned()),
    })
}

fn read_i32(raw: &[u8], at: usize) -> Result<i32, String> {
    raw.get(at..at + 4)
        .map(|b| i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
        .ok_or_else(|| "truncated array".to_owned())
}

/// Reads a one-dimensional array whose elements are of family `ty`.
pub(crate) fn decode_array(ty: Ty, raw: &[u8]) -> Result<Value, String> {
    let ndim = read_i32(raw, 0)?;
    let mut items = Vec::new();
    if ndim > 1 {
        return Err("multi-dimensional arrays are not supported".to_owned());
    }
    if ndim == 1 {
        let len = usize::try_from(read_i32(raw, 12)?).map_err(|_| "bad array length")?;
        items.reserve(len);
        let mut at = 20;
        for _ in 0..len {
            let n = read_i32(raw, at)?;
            at += 4;
            if n < 0 {
                items.push(Value::Null);
                continue;
            }
            let n = usize::try_from(n).unwrap_or_default();
            let data = raw.get(at..at + n).ok_or("truncated array")?;
            items.push(decode_scalar(ty, data)?);
            at += n;
        }
    }
    Ok(Value::Array {
        element: ty.kind(),
        items,
    })
}

#[cfg(feature = "decimal")]
mod numeric {
    //! `numeric`'s binary format: ndigits, weight, sign, dscale, then base-10000 digits.
    use rust_decimal::Decimal;

    pub(super) fn encode(d: Decimal, out: &mut Vec<u8>) {
        let scale = d.scale();
        let pad = (4 - scale % 4) % 4;
        let mut m = d.mantissa().unsigned_abs() * 10u128.pow(pad);
        let frac_groups = ((scale + pad) / 4) as i32;
        let mut groups = Vec::new(); // least significant first
        while m > 0 {
            groups.push((m % 10_000) as i16);
            m /= 10_000;
        }
        let mut weight = groups.len() as i32 - frac_groups - 1;
        while groups.last() == Some(&0) {
            groups.pop();
            weight -= 1;
        }
        let trailing = groups.iter().take_while(|g| **g == 0).count();
        groups.drain(..trailing);
        if groups.is_empty() {
            weight = 0;
        }
        let sign: u16 = if d.is_sign_negative() && !groups.is_empty() {
            0x4000
        } else {
            0
        };
        out.extend_from_slice(&(groups.len() as i16).to_be_bytes());
        out.extend_from_slice(&(weight as i16).to_be_bytes());
        out.extend_from_slice(&sign.to_be_bytes());
        out.extend_from_slice(&(scale as u16).to_be_bytes());
        for g in groups.iter().rev() {
            out.extend_from_slice(&g.to_be_bytes());
        }
    }

    pub(super) fn decode(raw: &[u8]) -> Result<Decimal, String> {
        let word = |i: usize| {
            raw.get(i * 2..i * 2 + 2)
                .map(|b| i16::from_be_bytes([b[0], b[1]]))
                .ok_or_else(|| "truncated numeric".to_owned())
        };
        let ndigits = usize::try_from(word(0)?).map_err(|_| "bad numeric")?;
        let weight = i32::from(word(1)?);
        let sign = word(2)? as u16;
        let dscale = word(3)? as u16;
        if sign == 0xC000 {
            return Err("NaN cannot be read as Decimal".to_owned());
        }
        if sign != 0 && sign != 0x4000 {
            return Err("infinity cannot be read as Decimal".to_owned());
        }
        let overflow = || "numeric out of range for Decimal".to_owned();
        let mut m: i128 = 0;
        for i in 0..ndigits {
            let digit = i128::from(word(4 + i)?);
            m = m
                .checked_mul(10_000)
                .and_then(|m| m.checked_add(digit))
                .ok_or_else(overflow)?;
        }
        let mut exp = weight - (ndigits as i32 - 1); // value = m * 10000^exp
        while exp > 0 {
            m = m.checked_mul(10_000).ok_or_else(overflow)?;
            exp -= 1;
        }
        let mut scale = u32::try_from(-exp * 4).unwrap_or_default();
        // Drop zeros beyond the display scale so the mantissa fits.
        while scale > u32::from(dscale) && m % 10 == 0 {
            m /= 10;
            scale -= 1;
        }
        if sign == 0x4000 {
            m = -m;
        }
        let mut d = Decimal::try_from_i128_with_scale(m, scale).map_err(|_| overflow())?;
        if d.scale() < u32::from(dscale) && u32::from(dscale) <= 28 {
            d.rescale(u32::from(dscale));
        }
        Ok(d)
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn roundtrip() {
            for s in [
                "0",
                "1",
                "-1",
                "12345.678901",
                "0.0001",
                "10000",
                "-0.5",
                "100.00",
                "1e-20",
                "79228162514264337593543950335",
            ] {
                let d: Decimal = s.parse().or_else(|_| Decimal::from_scientific(s)).unwrap();
                let mut out = Vec::new();
                encode(d, &mut out);
                let back = decode(&out).unwrap();
                assert_eq!(back, d, "{s}");
                assert_eq!(back.scale(), d.scale(), "{s}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pgdbm::Kind;

    fn info<T: sqlx::Type<sqlx::Postgres>>() -> PgTypeInfo {
        T::type_info()
    }

    #[test]
    fn names_and_families() {
        assert_eq!(type_name(&info::<i32>()), "int4");
        assert_eq!(type_name(&info::<Vec<String>>()), "_text");
        assert_eq!(classify(&info::<i64>()), Ty::Int8);
        assert_eq!(classify(&info::<&str>()), Ty::Text);
    }

    #[test]
    fn user_type_names_are_unqualified() {
        assert_eq!(unqualified("app.mood"), "mood");
        assert_eq!(unqualified("mood"), "mood");
        assert_eq!(
            unqualified("\"my.schema\".\"My \"\"Type\"\""),
            "My \"Type\""
        );
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
    }
}
