//! Statements behind a transaction pooler.
//!
//! sqlx 0.8 runs a statement with parameters as two exchanges (Parse/Describe/Sync, then
//! Bind/Execute/Sync), and a transaction pooler may hand each exchange to a different server
//! connection once the first has answered outside a transaction. So:
//!
//! * statements are unnamed (`persistent(false)`), and every statement sqlx prepared under a
//!   name meanwhile (pgdbm learning the parameter types, sqlx looking up a custom type) is closed
//!   again on the same server connection before it is given back: no per-connection statement
//!   cache survives a statement;
//! * inside a transaction (pgdbm's, or one begun with `BEGIN` on a checked-out connection) the
//!   pooler keeps the server connection, and nothing more is needed;
//! * an autocommit statement with parameters (and any `fetch_*`) runs inside a `BEGIN`/`COMMIT`
//!   of its own, so both exchanges land on one server connection. That costs two more round
//!   trips per autocommit statement (four instead of two); an `execute` without parameters goes
//!   as one simple Query instead (one round trip);
//! * a named statement left on a server connection by a statement cancelled halfway is cleared
//!   (`DEALLOCATE ALL`, see [`CLEAR_LEFTOVERS`]) before pgdbm prepares one there. (So do not
//!   combine this mode with PgBouncer's own prepared statements, `max_prepared_statements`.)

use pgdbm::driver::RowSender;
use pgdbm::{Params, Result, Row};
use sqlx::postgres::PgConnection;
use sqlx::{Connection as _, Executor as _};

use crate::bind::{Bound, bind, run_error};
use crate::conn::{Stop, batch_execute, stream_rows};
use crate::decode::{columns, decode, decode_rows, decode_with, shape};
use crate::error::map;
use crate::statements::StatementTypes;

/// Named statements left on a server connection: a statement whose future was dropped between
/// sqlx's named `prepare` and its close (a timeout, a cancelled task) leaves one behind, and the
/// pooler hands that server connection to other clients, whose first statement of the same name
/// (`sqlx_s_1`) would fail with `42P05`. Between transactions behind a transaction pooler no
/// named statement can legitimately exist, so they are cleared before pgdbm prepares one.
const CLEAR_LEFTOVERS: &str = "DEALLOCATE ALL";

/// The `BEGIN` of an autocommit statement's own transaction, clearing leftovers in the same
/// round trip.
const BEGIN_CLEAN: &str = "BEGIN; DEALLOCATE ALL";

/// What a statement returns.
pub(crate) enum Out {
    Count(u64),
    Rows(Vec<Row>),
    Row(Option<Row>),
}

/// What to run.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    Execute,
    FetchAll,
    FetchOptional,
}

/// Runs `op` for `sql` behind a transaction pooler on `conn`; `in_transaction` when the session
/// is inside a transaction (its server connection is held).
pub(crate) async fn run(
    conn: &mut PgConnection,
    cache: &StatementTypes,
    sql: &str,
    params: Params<'_>,
    in_transaction: bool,
    op: Op,
) -> Result<Out> {
    if op == Op::Execute && params.is_empty() {
        // One simple Query: one exchange.
        return conn
            .execute(sqlx::raw_sql(sql))
            .await
            .map(|r| Out::Count(r.rows_affected()))
            .map_err(|e| map(e, sql));
    }
    if in_transaction {
        if cache.get(sql).is_none() {
            // Learning the types prepares a named statement: first clear what may be left.
            batch_execute(conn, CLEAR_LEFTOVERS).await?;
        }
        let out = unnamed(conn, cache, sql, params, op).await;
        forget_statements(conn).await?;
        return out;
    }
    batch_execute(conn, BEGIN_CLEAN).await?;
    let out = unnamed(conn, cache, sql, params, op).await;
    let forgotten = forget_statements(conn).await;
    match (out, forgotten) {
        (Ok(out), Ok(())) => {
            batch_execute(conn, "COMMIT").await?;
            Ok(out)
        }
        (Err(e), _) | (Ok(_), Err(e)) => {
            batch_execute(conn, "ROLLBACK").await?;
            Err(e)
        }
    }
}

/// A row stream behind a transaction pooler: unnamed, inside the caller's transaction or a
/// `BEGIN`/`COMMIT` of its own (held while the rows are read), so that learning the parameter
/// types and reading the rows reach one server connection.
pub(crate) async fn stream(
    conn: &mut PgConnection,
    cache: &StatementTypes,
    sql: &str,
    params: Params<'_>,
    in_transaction: bool,
    tx: &RowSender,
) -> std::result::Result<(), Stop> {
    let begin = if in_transaction {
        CLEAR_LEFTOVERS
    } else {
        BEGIN_CLEAN
    };
    batch_execute(conn, begin).await.map_err(Stop::Ended)?;
    let out = stream_rows(conn, cache, sql, params, tx).await;
    if let Err(Stop::Cut(_)) = out {
        // Abandoned halfway: the caller closes the connection, which ends the transaction.
        return out;
    }
    let forgotten = forget_statements(conn).await;
    if in_transaction {
        forgotten.map_err(Stop::Ended)?;
        return out;
    }
    match (out, forgotten) {
        (Ok(()), Ok(())) => batch_execute(conn, "COMMIT").await.map_err(Stop::Ended),
        (Err(stop), _) => {
            batch_execute(conn, "ROLLBACK").await.map_err(Stop::Ended)?;
            Err(stop)
        }
        (Ok(()), Err(e)) => {
            batch_execute(conn, "ROLLBACK").await.map_err(Stop::Ended)?;
            Err(Stop::Ended(e))
        }
    }
}

/// Binary COPY behind a transaction pooler: the column types are learned with a named statement
/// (sqlx's `prepare`), so the probe, the COPY and closing that statement run inside one
/// transaction (the caller's, or a `BEGIN`/`COMMIT` of its own).
pub(crate) async fn copy_in(
    conn: &mut PgConnection,
    in_transaction: bool,
    table: &str,
    columns: &[&str],
    rows: &[Vec<pgdbm::Value>],
) -> Result<u64> {
    batch_execute(
        conn,
        if in_transaction {
            CLEAR_LEFTOVERS
        } else {
            BEGIN_CLEAN
        },
    )
    .await?;
    let copied = crate::conn::copy_in(conn, table, columns, rows).await;
    let forgotten = forget_statements(conn).await;
    if in_transaction {
        forgotten?;
        return copied;
    }
    match (copied, forgotten) {
        (Ok(n), Ok(())) => {
            batch_execute(conn, "COMMIT").await?;
            Ok(n)
        }
        (Err(e), _) | (Ok(_), Err(e)) => {
            batch_execute(conn, "ROLLBACK").await?;
            Err(e)
        }
    }
}

/// Closes every statement sqlx prepared under a name on this server connection.
async fn forget_statements(conn: &mut PgConnection) -> Result<()> {
    if conn.cached_statements_size() > 0 {
        conn.clear_cached_statements()
            .await
            .map_err(|e| map(e, "DEALLOCATE"))?;
    }
    Ok(())
}

/// The statement itself, unnamed.
async fn unnamed(
    conn: &mut PgConnection,
    cache: &StatementTypes,
    sql: &str,
    params: Params<'_>,
    op: Op,
) -> Result<Out> {
    let Bound { learned, args } = bind(conn, cache, sql, params).await?;
    let query = sqlx::query_with(&learned.tagged, args).persistent(false);
    let failed = |e| run_error(cache, sql, params, &learned, e);
    match op {
        Op::Execute => conn
            .execute(query)
            .await
            .map(|r| Out::Count(r.rows_affected()))
            .map_err(failed),
        Op::FetchAll => {
            let rows = conn.fetch_all(query).await.map_err(failed)?;
            decode_rows(rows.iter()).map(Out::Rows)
        }
        Op::FetchOptional => {
            let Some(row) = conn.fetch_optional(query).await.map_err(failed)? else {
                return Ok(Out::Row(None));
            };
            let row = match shape(&row) {
                Some(shape) => decode_with(&row, &shape)?,
                None => decode(&row, &columns(&row))?,
            };
            Ok(Out::Row(Some(row)))
        }
    }
}

impl Out {
    pub(crate) fn count(self) -> u64 {
        match self {
            Out::Count(n) => n,
            Out::Rows(rows) => rows.len() as u64,
            Out::Row(row) => u64::from(row.is_some()),
        }
    }

    pub(crate) fn rows(self) -> Vec<Row> {
        match self {
            Out::Rows(rows) => rows,
            Out::Row(row) => row.into_iter().collect(),
            Out::Count(_) => Vec::new(),
        }
    }

    pub(crate) fn row(self) -> Option<Row> {
        match self {
            Out::Row(row) => row,
            Out::Rows(rows) => rows.into_iter().next(),
            Out::Count(_) => None,
        }
    }
}
