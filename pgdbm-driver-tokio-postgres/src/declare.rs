//! The parameter types of a statement behind a transaction pooler, declared by the client (a
//! server round trip to learn them could land on another server connection):
//!
//! * a parameter every use of which the statement casts to one built-in type (`$1::money`,
//!   `$2::int8[]`; see `casts.rs`) is declared that type and bound by pgdbm's rules for it, as
//!   when the server is asked: the same conversions and the same client-side encode errors;
//! * otherwise from the value: text and JSON values are declared `unknown` and sent in text
//!   format, so the server infers their type from the context, as for a literal (a text value
//!   binds to `uuid`, `json`, an enum, `inet`, `citext`… as it does without a pooler); a text
//!   array, of any dimension, is sent as an array literal, declared `unknown` too;
//! * every integer is declared `int8`, a `real` `float4` and a `double precision` `float8` (the
//!   server converts them on assignment and compares across widths; a function overloaded only
//!   for `int4` needs a cast, `$1::int4`);
//! * the other kinds (dates and times and their infinities, `interval`, `numeric`, `uuid`,
//!   `bytea`, `bool`) are declared as themselves and sent binary, arrays of them (of any
//!   dimension) as their array type; `NULL` is `unknown`.

use std::borrow::Cow;
use std::error::Error as StdError;

use bytes::BytesMut;
use pgdbm::{Kind, Params, Value};
use tokio_postgres::types::{Format, IsNull, ToSql, Type, to_sql_checked};

use crate::bind::{Bind, BindError};
use crate::casts::{array_of, cast_types};

/// One parameter with the type declared for it (see the module docs).
#[derive(Debug)]
pub(crate) struct Typed<'a> {
    value: Cow<'a, Value>,
    /// Sent in text format, declared `unknown`.
    text: bool,
}

impl Typed<'_> {
    /// Whether the value went as text for the server to parse (its input errors are the
    /// parameter's, see `unnamed.rs`).
    pub(crate) fn is_text(&self) -> bool {
        self.text
    }
}

/// `params` of `sql` with their declared types.
pub(crate) fn typed<'p>(sql: &str, params: Params<'p>) -> Vec<(Typed<'p>, Type)> {
    let casts = cast_types(sql, params.len());
    params
        .iter()
        .zip(casts)
        .map(|(p, cast)| {
            let value = p.to_param();
            let (ty, text) = match cast {
                Some(ty) => (ty, false),
                None => declared(&value),
            };
            (Typed { value, text }, ty)
        })
        .collect()
}

/// The declared type of `value`, and whether it goes as text.
fn declared(value: &Value) -> (Type, bool) {
    let scalar = match value {
        Value::Array { .. } => {
            return innermost(value)
                .and_then(scalar_type)
                .and_then(|s| array_of(&s))
                .map_or((Type::UNKNOWN, true), |ty| (ty, false));
        }
        other => scalar_type(other.kind()),
    };
    scalar.map_or((Type::UNKNOWN, true), |ty| (ty, false))
}

/// The element kind of an array of any dimension (`None` for an empty array of arrays).
fn innermost(value: &Value) -> Option<Kind> {
    match value {
        Value::Array {
            element: Kind::Array,
            items,
        } => items
            .iter()
            .find(|item| matches!(item, Value::Array { .. }))
            .and_then(innermost),
        Value::Array { element, .. } => Some(*element),
        _ => None,
    }
}

/// The type a non-text scalar of `kind` is declared as (`None`: sent as text, `unknown`).
fn scalar_type(kind: Kind) -> Option<Type> {
    Some(match kind {
        Kind::Bool => Type::BOOL,
        Kind::Int2 | Kind::Int4 | Kind::Int8 => Type::INT8,
        Kind::Float4 => Type::FLOAT4,
        Kind::Float8 => Type::FLOAT8,
        Kind::Bytea => Type::BYTEA,
        Kind::Uuid => Type::UUID,
        Kind::Date => Type::DATE,
        Kind::Time => Type::TIME,
        Kind::Timestamp => Type::TIMESTAMP,
        Kind::TimestampTz => Type::TIMESTAMPTZ,
        Kind::Numeric => Type::NUMERIC,
        Kind::Interval => Type::INTERVAL,
        // Text, JSON, unknown (NULL, empty) and kinds added later: text the server parses.
        _ => return None,
    })
}

/// The text form of `value` (text, JSON, array literals of any dimension).
fn write_text(value: &Value, out: &mut BytesMut) -> Result<(), String> {
    match value {
        Value::Text(s) => out.extend_from_slice(s.as_bytes()),
        Value::Json(v) => {
            let text = serde_json::to_string(v).map_err(|e| format!("unencodable JSON ({e})"))?;
            out.extend_from_slice(text.as_bytes());
        }
        Value::Array { items, .. } => {
            out.extend_from_slice(b"{");
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.extend_from_slice(b",");
                }
                match item {
                    Value::Null => out.extend_from_slice(b"NULL"),
                    // A sub-array: a dimension of the same literal, unquoted.
                    Value::Array { .. } => write_text(item, out)?,
                    _ => {
                        let mut element = BytesMut::new();
                        write_text(item, &mut element)?;
                        out.extend_from_slice(b"\"");
                        for &b in element.iter() {
                            if b == b'"' || b == b'\\' {
                                out.extend_from_slice(b"\\");
                            }
                            out.extend_from_slice(&[b]);
                        }
                        out.extend_from_slice(b"\"");
                    }
                }
            }
            out.extend_from_slice(b"}");
        }
        other => {
            return Err(format!(
                "a {} value cannot be sent as text",
                other.kind().sql_name()
            ));
        }
    }
    Ok(())
}

impl ToSql for Typed<'_> {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn StdError + Sync + Send>> {
        if matches!(*self.value, Value::Null) {
            return Ok(IsNull::Yes);
        }
        if self.text {
            write_text(&self.value, out).map_err(BindError)?;
            return Ok(IsNull::No);
        }
        Bind(self.value.as_ref()).to_sql(ty, out)
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    fn encode_format(&self, _ty: &Type) -> Format {
        if self.text {
            Format::Text
        } else {
            Format::Binary
        }
    }

    to_sql_checked!();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(v: &Value) -> String {
        let mut out = BytesMut::new();
        write_text(v, &mut out).unwrap();
        String::from_utf8(out.to_vec()).unwrap()
    }

    fn array(element: Kind, items: Vec<Value>) -> Value {
        Value::Array { element, items }
    }

    #[test]
    fn text_values_go_as_unknown_literals() {
        assert_eq!(declared(&Value::Text("x".into())), (Type::UNKNOWN, true));
        assert_eq!(declared(&Value::Int4(1)), (Type::INT8, false));
        assert_eq!(declared(&Value::Float4(0.1)), (Type::FLOAT4, false));
        assert_eq!(declared(&Value::Null), (Type::UNKNOWN, true));
        let texts = array(
            Kind::Text,
            vec![
                Value::Text("a\"b".into()),
                Value::Null,
                Value::Text("c\\d,e".into()),
            ],
        );
        assert_eq!(declared(&texts), (Type::UNKNOWN, true));
        assert_eq!(text(&texts), r#"{"a\"b",NULL,"c\\d,e"}"#);
        assert_eq!(
            text(&Value::Json(serde_json::json!({"a": [1]}))),
            r#"{"a":[1]}"#
        );
        let ints = array(Kind::Int4, vec![Value::Int4(1)]);
        assert_eq!(declared(&ints), (Type::INT8_ARRAY, false));
    }

    #[test]
    fn nested_arrays_are_declared_by_their_elements() {
        let row = |a: &str, b: Option<&str>| {
            array(
                Kind::Text,
                vec![
                    Value::Text(a.into()),
                    b.map_or(Value::Null, |b| Value::Text(b.into())),
                ],
            )
        };
        let grid = array(Kind::Array, vec![row("a", None), row("c", Some("d"))]);
        assert_eq!(declared(&grid), (Type::UNKNOWN, true));
        assert_eq!(text(&grid), r#"{{"a",NULL},{"c","d"}}"#);
        let ints = array(Kind::Array, vec![array(Kind::Int8, vec![Value::Int8(1)])]);
        assert_eq!(declared(&ints), (Type::INT8_ARRAY, false));
        let spans = array(Kind::Interval, vec![]);
        assert_eq!(declared(&spans), (Type::INTERVAL_ARRAY, false));
        assert_eq!(declared(&array(Kind::Array, vec![])), (Type::UNKNOWN, true));
    }

    #[test]
    fn casts_win_over_values() {
        let params: Params<'_> = &[&5i64, &"x"];
        let typed = typed("SELECT $1::money, $2", params);
        assert_eq!(typed[0].1, Type::MONEY);
        assert!(!typed[0].0.is_text());
        assert_eq!(typed[1].1, Type::UNKNOWN);
        assert!(typed[1].0.is_text());
    }
}
