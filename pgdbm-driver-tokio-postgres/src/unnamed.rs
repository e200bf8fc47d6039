//! Statements behind a transaction pooler: no named statement and no cache, each statement one
//! unnamed Parse/Bind/Describe/Execute/Sync exchange (`Client::query_typed_raw`), which any
//! server connection of the pooler can run.
//!
//! The parameter types are declared from pgdbm's values instead of being asked of the server
//! (which would take a second exchange, possibly on another server connection):
//!
//! * text and JSON values are declared `unknown` and sent in text format, so the server infers
//!   their type from the context, as for a literal: a text value binds to `uuid`, `json`,
//!   `jsonb`, an enum, `inet`, `citext`… as it does without a pooler; a text array is sent as an
//!   array literal, declared `unknown` too;
//! * every integer is declared `int8` and every float `float8` (the server converts them on
//!   assignment and compares across widths); the one difference: a function overloaded only for
//!   `int4` (or `int2`, `float4`) needs a cast, `$1::int4`;
//! * the other kinds are declared as themselves and sent binary; `NULL` is `unknown`.
//!
//! The result columns come from the rows the statement returns.
//!
//! A result column whose type tokio-postgres does not know by OID (an enum, a domain, `citext`,
//! a composite) makes tokio-postgres look the type up with statements of its own, which are
//! named; behind a transaction pooler such a connection is closed after the statement, so that
//! its named lookup statements are never used on another server connection.

use std::borrow::Cow;
use std::error::Error as StdError;

use bytes::BytesMut;
use futures_util::{TryStreamExt, pin_mut};
use pgdbm::driver::Columns;
use pgdbm::{Error, Kind, Params, Result, Row, Value};
use tokio_postgres::types::{Format, IsNull, ToSql, Type, to_sql_checked};

use crate::bind::Bind;
use crate::conn::PgConn;
use crate::decode;
use crate::error::map;

/// One parameter with the type declared for it (see the module docs).
#[derive(Debug)]
pub(crate) struct Typed<'a> {
    value: Cow<'a, Value>,
    /// Sent in text format, declared `unknown`.
    text: bool,
}

/// The declared type of `value`, and whether it goes as text.
fn declared(value: &Value) -> (Type, bool) {
    match value {
        Value::Null | Value::Text(_) | Value::Json(_) => (Type::UNKNOWN, true),
        Value::Bool(_) => (Type::BOOL, false),
        Value::Int2(_) | Value::Int4(_) | Value::Int8(_) => (Type::INT8, false),
        Value::Float4(_) | Value::Float8(_) => (Type::FLOAT8, false),
        Value::Bytea(_) => (Type::BYTEA, false),
        Value::Uuid(_) => (Type::UUID, false),
        #[cfg(feature = "chrono")]
        Value::Date(_) => (Type::DATE, false),
        #[cfg(feature = "chrono")]
        Value::Time(_) => (Type::TIME, false),
        #[cfg(feature = "chrono")]
        Value::Timestamp(_) => (Type::TIMESTAMP, false),
        #[cfg(feature = "chrono")]
        Value::TimestampTz(_) => (Type::TIMESTAMPTZ, false),
        #[cfg(feature = "decimal")]
        Value::Numeric(_) => (Type::NUMERIC, false),
        Value::Array { element, .. } => match element {
            Kind::Bool => (Type::BOOL_ARRAY, false),
            Kind::Int2 | Kind::Int4 | Kind::Int8 => (Type::INT8_ARRAY, false),
            Kind::Float4 | Kind::Float8 => (Type::FLOAT8_ARRAY, false),
            Kind::Bytea => (Type::BYTEA_ARRAY, false),
            Kind::Uuid => (Type::UUID_ARRAY, false),
            #[cfg(feature = "chrono")]
            Kind::Date => (Type::DATE_ARRAY, false),
            #[cfg(feature = "chrono")]
            Kind::Time => (Type::TIME_ARRAY, false),
            #[cfg(feature = "chrono")]
            Kind::Timestamp => (Type::TIMESTAMP_ARRAY, false),
            #[cfg(feature = "chrono")]
            Kind::TimestampTz => (Type::TIMESTAMPTZ_ARRAY, false),
            #[cfg(feature = "decimal")]
            Kind::Numeric => (Type::NUMERIC_ARRAY, false),
            // Text, JSON, unknown (empty) and kinds without this crate's features: an array
            // literal the server reads as the type the context wants.
            _ => (Type::UNKNOWN, true),
        },
        // Kinds of features this crate lacks: as text, which the server parses.
        #[allow(unreachable_patterns)]
        _ => (Type::UNKNOWN, true),
    }
}

/// The text form of `value` (text, JSON, array literals).
fn write_text(value: &Value, out: &mut BytesMut) -> std::result::Result<(), String> {
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
                if matches!(item, Value::Null) {
                    out.extend_from_slice(b"NULL");
                    continue;
                }
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
    ) -> std::result::Result<IsNull, Box<dyn StdError + Sync + Send>> {
        if matches!(*self.value, Value::Null) {
            return Ok(IsNull::Yes);
        }
        if self.text {
            write_text(&self.value, out).map_err(crate::bind::BindError)?;
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

/// `params` with their declared types.
fn typed<'p>(params: Params<'p>) -> Vec<(Typed<'p>, Type)> {
    params
        .iter()
        .map(|p| {
            let value = p.to_param();
            let (ty, text) = declared(&value);
            (Typed { value, text }, ty)
        })
        .collect()
}

/// `true` for a type tokio-postgres had to look up (see the module docs).
fn looked_up(ty: &Type) -> bool {
    Type::from_oid(ty.oid()).is_none()
}

/// The pgdbm column list of a returned row.
fn columns_of(row: &tokio_postgres::Row) -> Columns {
    row.columns()
        .iter()
        .map(|c| pgdbm::driver::new_column(c.name(), c.type_().name()))
        .collect::<Vec<_>>()
        .into()
}

impl PgConn {
    /// The error of an unnamed statement, the parameters' values hidden in its text.
    fn unnamed_failed(sql: &str, params: Params<'_>, err: tokio_postgres::Error) -> Error {
        // The server counts the parameters at Bind (`08P01`, a protocol violation): the same
        // typed error as when the count is checked against a prepared statement.
        if let Some(db) = err.as_db_error() {
            if db.code().code() == "08P01" {
                if let Some(expected) = db
                    .message()
                    .strip_prefix("bind message supplies ")
                    .and_then(|rest| rest.rsplit_once(" requires "))
                    .and_then(|(_, n)| n.trim().parse::<usize>().ok())
                {
                    return Error::parameter_count(expected, params.len(), sql);
                }
            }
        }
        map(err, sql).redact_params(params)
    }

    /// Closes the connection after the statement when a returned column's type was looked up.
    fn check_lookups(&self, row: &tokio_postgres::Row) {
        if row.columns().iter().any(|c| looked_up(c.type_())) {
            self.mark_broken();
        }
    }

    /// Sends `sql` with `params` as one unnamed exchange; its rows stream back.
    async fn start_unnamed(
        &self,
        sql: &str,
        params: Params<'_>,
    ) -> Result<tokio_postgres::RowStream> {
        self.client()
            .query_typed_raw(sql, typed(params))
            .await
            .map_err(|e| Self::unnamed_failed(sql, params, e))
    }

    pub(crate) async fn execute_unnamed(&self, sql: &str, params: Params<'_>) -> Result<u64> {
        let stream = self.start_unnamed(sql, params).await?;
        pin_mut!(stream);
        let mut first = true;
        while let Some(row) = stream
            .try_next()
            .await
            .map_err(|e| Self::unnamed_failed(sql, params, e))?
        {
            if first {
                self.check_lookups(&row);
                first = false;
            }
        }
        Ok(stream.rows_affected().unwrap_or(0))
    }

    pub(crate) async fn fetch_all_unnamed(
        &self,
        sql: &str,
        params: Params<'_>,
    ) -> Result<Vec<Row>> {
        let stream = self.start_unnamed(sql, params).await?;
        let rows: Vec<tokio_postgres::Row> = stream
            .try_collect()
            .await
            .map_err(|e| Self::unnamed_failed(sql, params, e))?;
        let Some(first) = rows.first() else {
            return Ok(Vec::new());
        };
        self.check_lookups(first);
        let columns = columns_of(first);
        rows.iter().map(|r| decode::row(r, &columns)).collect()
    }

    pub(crate) async fn fetch_optional_unnamed(
        &self,
        sql: &str,
        params: Params<'_>,
    ) -> Result<Option<Row>> {
        let stream = self.start_unnamed(sql, params).await?;
        pin_mut!(stream);
        let first = stream
            .try_next()
            .await
            .map_err(|e| Self::unnamed_failed(sql, params, e))?;
        // Drain the rest so the statement's own errors (raised after the first row) surface.
        if first.is_some() {
            while stream
                .try_next()
                .await
                .map_err(|e| Self::unnamed_failed(sql, params, e))?
                .is_some()
            {}
        }
        let Some(first) = first else {
            return Ok(None);
        };
        self.check_lookups(&first);
        decode::row(&first, &columns_of(&first)).map(Some)
    }

    /// The column types of `probe` (`SELECT cols FROM table LIMIT 0`) without a named statement:
    /// one row of NULLs carrying them.
    pub(crate) async fn probe_types_unnamed(&self, probe: &str) -> Result<Vec<Type>> {
        let sql =
            format!("SELECT probe.* FROM (SELECT 1) AS one LEFT JOIN ({probe}) AS probe ON true");
        let rows = self
            .client()
            .query_typed(&sql, &[])
            .await
            .map_err(|e| map(e, probe))?;
        let row = rows
            .first()
            .ok_or_else(|| Error::query(probe, "the COPY probe returned no row", None))?;
        self.check_lookups(row);
        Ok(row.columns().iter().map(|c| c.type_().clone()).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(v: &Value) -> String {
        let mut out = BytesMut::new();
        write_text(v, &mut out).unwrap();
        String::from_utf8(out.to_vec()).unwrap()
    }

    #[test]
    fn text_values_go_as_unknown_literals() {
        assert_eq!(declared(&Value::Text("x".into())), (Type::UNKNOWN, true));
        assert_eq!(declared(&Value::Int4(1)), (Type::INT8, false));
        assert_eq!(declared(&Value::Null), (Type::UNKNOWN, true));
        let array = Value::Array {
            element: Kind::Text,
            items: vec![
                Value::Text("a\"b".into()),
                Value::Null,
                Value::Text("c\\d,e".into()),
            ],
        };
        assert_eq!(declared(&array), (Type::UNKNOWN, true));
        assert_eq!(text(&array), r#"{"a\"b",NULL,"c\\d,e"}"#);
        assert_eq!(
            text(&Value::Json(serde_json::json!({"a": [1]}))),
            r#"{"a":[1]}"#
        );
        let ints = Value::Array {
            element: Kind::Int4,
            items: vec![Value::Int4(1)],
        };
        assert_eq!(declared(&ints), (Type::INT8_ARRAY, false));
    }
}
