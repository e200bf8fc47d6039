//! Statements behind a transaction pooler: no named statement and no cache, each statement one
//! unnamed Parse/Bind/Describe/Execute/Sync exchange (`Client::query_typed_raw`), which any
//! server connection of the pooler can run.
//!
//! The parameter types are declared by the client instead of being asked of the server (which
//! would take a second exchange, possibly on another server connection): from the statement's
//! casts where every use of a parameter has one, else from pgdbm's values (`declare.rs`). A value
//! sent as text that the server's input function refuses for the type it inferred is the same
//! [`Error::Encode`] as when pgdbm refuses it without a pooler (`parameter_refused`).
//!
//! The result columns come from the rows the statement returns.
//!
//! A result column whose type tokio-postgres does not know by OID (an enum, `citext`, a
//! composite) makes tokio-postgres look the type up with named statements of its own: the first
//! run of each statement text on a connection is guarded so that the lookup is safe
//! (`lookups.rs`).

use std::future::Future;

use futures_util::{TryStreamExt, pin_mut};
use pgdbm::driver::{Columns, RowSender};
use pgdbm::{Error, Params, Result, Row};

use crate::conn::{PgConn, Stop};
use crate::declare::typed;
use crate::decode;
use crate::error::map;
use crate::lookups::{TypeLookups, epilogue};

/// The index (1-based) of the parameter whose text the server's input function refused, read
/// from the error's context (`unnamed portal parameter $N`, which the server adds while it
/// converts the parameters of a Bind), when that refusal is one pgdbm itself makes without a
/// pooler: a value of the wrong kind for the type (a data exception, class `22`). Enum labels
/// and JSON text are sent to the server as they are without a pooler too, so its refusal of
/// them stays a database error.
fn parameter_refused(db: &tokio_postgres::error::DbError) -> Option<usize> {
    if !db.code().code().starts_with("22") {
        return None;
    }
    let routine = db.routine().unwrap_or_default();
    let enum_label = db.message().starts_with("invalid input value for enum");
    if routine.starts_with("enum") || routine.starts_with("json") || enum_label {
        return None;
    }
    let context = db.where_()?;
    let at = context.find("parameter $")? + "parameter $".len();
    let digits: String = context[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
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
        let refused = err.as_db_error().and_then(parameter_refused);
        let mapped = map(err, sql).redact_params(params);
        match (refused, &mapped) {
            (Some(index), Error::Database(db))
                if typed(sql, params)
                    .get(index.wrapping_sub(1))
                    .is_some_and(|(p, _)| p.is_text()) =>
            {
                Error::encode(
                    index,
                    format!(
                        "the server refused the value for this parameter's type: {}",
                        db.message
                    ),
                )
            }
            _ => mapped,
        }
    }

    /// Sends `sql` with `params` as one unnamed exchange; its rows stream back.
    async fn start_unnamed(
        &self,
        sql: &str,
        params: Params<'_>,
    ) -> Result<tokio_postgres::RowStream> {
        self.client()
            .query_typed_raw(sql, typed(sql, params))
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
