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
//! A result column whose type tokio-postgres does not know by OID (an enum, `citext`, a
//! composite) makes tokio-postgres look the type up with named statements of its own: the first
//! run of each statement text on a connection is guarded so that the lookup is safe
//! (`lookups.rs`).

use std::borrow::Cow;
use std::error::Error as StdError;
use std::future::Future;

use bytes::BytesMut;
use futures_util::{TryStreamExt, pin_mut};
use pgdbm::driver::{Columns, RowSender};
use pgdbm::{Error, Kind, Params, Result, Row, Value};
use tokio_postgres::types::{Format, IsNull, ToSql, Type, to_sql_checked};

use crate::bind::Bind;
use crate::conn::{PgConn, Stop};
use crate::decode;
use crate::error::map;
use crate::lookups::{TypeLookups, epilogue};

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

/// The pgdbm column list of a returned row.
fn columns_of(row: &tokio_postgres::Row) -> Columns {
    row.columns()
        .iter()
        .map(|c| pgdbm::driver::new_column(c.name(), c.type_().name()))
        .collect::<Vec<_>>()
        .into()
}

/// What an unnamed statement runs for.
pub(crate) enum Op<'a> {
    Execute,
    FetchAll,
    FetchOptional,
    /// Its rows sent to the stream's reader as they arrive.
    Stream(&'a RowSender),
}

/// What it gave.
pub(crate) enum Out {
    Count(u64),
    Rows(Vec<Row>),
    Row(Option<Row>),
    Streamed,
}

impl Out {
    fn mismatch(sql: &str) -> Error {
        Error::query(
            sql,
            "pgdbm: the driver returned another kind of result",
            None,
        )
    }
}

impl PgConn {
    /// The error of an unnamed statement, the parameters' values hidden in its text.
    fn unnamed_failed(&self, sql: &str, params: Params<'_>, err: tokio_postgres::Error) -> Error {
        if let Some(db) = err.as_db_error() {
            // The server counts the parameters at Bind (`08P01`, a protocol violation): the same
            // typed error as when the count is checked against a prepared statement.
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
            // A type lookup outside a guarded statement (see `lookups.rs`): the client's lookup
            // statements are unusable on this connection from now on.
            if db.code().code() == "26000" && db.message().starts_with("prepared statement \"") {
                self.mark_broken();
            }
        }
        map(err, sql).redact_params(params)
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
            .map_err(|e| self.unnamed_failed(sql, params, e))
    }

    /// Reads the rows of a started statement for `op`.
    async fn consume(
        &self,
        sql: &str,
        params: Params<'_>,
        stream: tokio_postgres::RowStream,
        op: Op<'_>,
    ) -> std::result::Result<Out, Stop> {
        pin_mut!(stream);
        let ended = |e| Stop::Ended(self.unnamed_failed(sql, params, e));
        match op {
            Op::Execute => {
                while stream.try_next().await.map_err(ended)?.is_some() {}
                Ok(Out::Count(stream.rows_affected().unwrap_or(0)))
            }
            Op::FetchAll => {
                let mut rows = Vec::new();
                while let Some(row) = stream.try_next().await.map_err(ended)? {
                    rows.push(row);
                }
                let Some(first) = rows.first() else {
                    return Ok(Out::Rows(Vec::new()));
                };
                let columns = columns_of(first);
                rows.iter()
                    .map(|r| decode::row(r, &columns))
                    .collect::<Result<_>>()
                    .map(Out::Rows)
                    .map_err(Stop::Ended)
            }
            Op::FetchOptional => {
                let first = stream.try_next().await.map_err(ended)?;
                // Drain the rest so the statement's own errors (raised after the first row)
                // surface. (A finished stream must not be polled again.)
                if first.is_some() {
                    while stream.try_next().await.map_err(ended)?.is_some() {}
                }
                first
                    .map(|r| decode::row(&r, &columns_of(&r)))
                    .transpose()
                    .map(Out::Row)
                    .map_err(Stop::Ended)
            }
            Op::Stream(tx) => {
                let mut columns = None;
                while let Some(row) = stream.try_next().await.map_err(ended)? {
                    let columns = columns.get_or_insert_with(|| columns_of(&row));
                    match decode::row(&row, columns) {
                        Ok(row) => tx.send(row).await,
                        // The statement may still be sending rows: abandoned.
                        Err(e) => return Err(Stop::Cut(e)),
                    }
                }
                Ok(Out::Streamed)
            }
        }
    }

    /// Runs `sql` as one unnamed exchange, guarded the first time this connection runs it
    /// (see `lookups.rs`).
    pub(crate) async fn run_unnamed(
        &self,
        sql: &str,
        params: Params<'_>,
        op: Op<'_>,
    ) -> std::result::Result<Out, Stop> {
        let lookups = match self.lookups() {
            Some(lookups) if lookups.must_guard(sql) => lookups,
            _ => {
                let stream = self.start_unnamed(sql, params).await.map_err(Stop::Ended)?;
                return self.consume(sql, params, stream, op).await;
            }
        };
        let out = self
            .guarded(lookups, sql, params, async {
                let stream = self.start_unnamed(sql, params).await.map_err(Stop::Ended)?;
                self.consume(sql, params, stream, op).await
            })
            .await;
        if out.is_ok() {
            lookups.ran(sql);
        }
        out
    }

    /// Runs `work` (statements on this connection whose type lookups, or named statements, must
    /// stay on one server connection) guarded: inside the caller's transaction or one of its
    /// own, the client's lookup statements prepared again before and every named statement
    /// dropped after (see `lookups.rs`). `sql` and `params` name a failed `COMMIT`.
    pub(crate) async fn guarded<T>(
        &self,
        lookups: &TypeLookups,
        sql: &str,
        params: Params<'_>,
        work: impl Future<Output = std::result::Result<T, Stop>>,
    ) -> std::result::Result<T, Stop> {
        let own = !lookups.in_transaction();
        if let Err(e) = self.client().batch_execute(&lookups.prologue(own)).await {
            // A `BEGIN` of its own may have opened: the connection is not reused.
            self.mark_broken();
            return Err(Stop::Ended(map(e, sql)));
        }
        let out = work.await;
        match &out {
            // Abandoned halfway: the caller does not reuse the connection.
            Err(Stop::Cut(_)) => return out,
            // The caller's transaction is aborted: the lookup statements the client prepared
            // cannot be listed, so the connection is not reused after it.
            Err(Stop::Ended(_)) if !own => {
                self.mark_broken();
                return out;
            }
            _ => {}
        }
        match self
            .client()
            .simple_query(&epilogue(own, out.is_ok()))
            .await
        {
            Ok(messages) => {
                lookups.keep(&messages);
                out
            }
            Err(e) => {
                self.mark_broken();
                match out {
                    // The `COMMIT` failed (a deferred constraint, say): nothing was committed.
                    Ok(_) => Err(Stop::Ended(self.unnamed_failed(sql, params, e))),
                    Err(stop) => Err(stop),
                }
            }
        }
    }

    pub(crate) async fn execute_unnamed(&self, sql: &str, params: Params<'_>) -> Result<u64> {
        match self.run_unnamed(sql, params, Op::Execute).await {
            Ok(Out::Count(n)) => Ok(n),
            Ok(_) => Err(Out::mismatch(sql)),
            Err(Stop::Ended(e) | Stop::Cut(e)) => Err(e),
        }
    }

    pub(crate) async fn fetch_all_unnamed(
        &self,
        sql: &str,
        params: Params<'_>,
    ) -> Result<Vec<Row>> {
        match self.run_unnamed(sql, params, Op::FetchAll).await {
            Ok(Out::Rows(rows)) => Ok(rows),
            Ok(_) => Err(Out::mismatch(sql)),
            Err(Stop::Ended(e) | Stop::Cut(e)) => Err(e),
        }
    }

    pub(crate) async fn fetch_optional_unnamed(
        &self,
        sql: &str,
        params: Params<'_>,
    ) -> Result<Option<Row>> {
        match self.run_unnamed(sql, params, Op::FetchOptional).await {
            Ok(Out::Row(row)) => Ok(row),
            Ok(_) => Err(Out::mismatch(sql)),
            Err(Stop::Ended(e) | Stop::Cut(e)) => Err(e),
        }
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
