//! Running statements on one sqlx connection (bound in `bind.rs`, read in `decode.rs`), binary
//! COPY, the busy mark, and the pooled connection handed to the core.

use std::sync::Arc;

use async_trait::async_trait;
use bytes::BytesMut;
use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use pgdbm::driver::copy::{BINARY_HEADER, BINARY_TRAILER};
use pgdbm::driver::{
    Columns, Connection, CopyStatements, InUse, PooledConnection, RowSender, check_row_width,
    row_stream,
};
use pgdbm::{Error, Executor, Params, Result, Row, Value};
use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnection, PgTypeInfo, Postgres};
use sqlx::{Column as _, Executor as _, Statement as _};

use crate::bind::{Bound, bind, run_error};
use crate::decode::{Shape, columns, decode, decode_rows, decode_with, shape};
use crate::error::map;
use crate::pooled::{self, Op, Out};
use crate::statements::StatementTypes;
use crate::wire;
use pgdbm::driver::transaction_control;

pub(crate) async fn execute(
    conn: &mut PgConnection,
    cache: &StatementTypes,
    sql: &str,
    params: Params<'_>,
) -> Result<u64> {
    let Bound { learned, args } = bind(conn, cache, sql, params).await?;
    conn.execute(sqlx::query_with(&learned.tagged, args))
        .await
        .map(|r| r.rows_affected())
        .map_err(|e| run_error(cache, sql, params, &learned, e))
}

pub(crate) async fn fetch_all(
    conn: &mut PgConnection,
    cache: &StatementTypes,
    sql: &str,
    params: Params<'_>,
) -> Result<Vec<Row>> {
    let Bound { learned, args } = bind(conn, cache, sql, params).await?;
    let rows = conn
        .fetch_all(sqlx::query_with(&learned.tagged, args))
        .await
        .map_err(|e| run_error(cache, sql, params, &learned, e))?;
    decode_rows(rows.iter())
}

pub(crate) async fn fetch_optional(
    conn: &mut PgConnection,
    cache: &StatementTypes,
    sql: &str,
    params: Params<'_>,
) -> Result<Option<Row>> {
    let Bound { learned, args } = bind(conn, cache, sql, params).await?;
    // sqlx reads the whole result (late errors surface) and keeps the first row.
    let row = conn
        .fetch_optional(sqlx::query_with(&learned.tagged, args))
        .await
        .map_err(|e| run_error(cache, sql, params, &learned, e))?;
    let Some(row) = row else {
        return Ok(None);
    };
    match shape(&row) {
        Some(shape) => decode_with(&row, &shape).map(Some),
        None => decode(&row, &columns(&row)).map(Some),
    }
}

pub(crate) async fn batch_execute(conn: &mut PgConnection, sql: &str) -> Result<()> {
    conn.execute(sqlx::raw_sql(sql))
        .await
        .map(|_| ())
        .map_err(|e| map(e, sql))
}

/// Data is sent to the server in chunks of about this size.
const COPY_CHUNK: usize = 1 << 20;

/// Binary COPY: the column types come from preparing `SELECT cols FROM table LIMIT 0`; rows are
/// written in PostgreSQL's binary COPY format. A bad value or row aborts the COPY (nothing is
/// written).
pub(crate) async fn copy_in(
    conn: &mut PgConnection,
    table: &str,
    columns: &[&str],
    rows: &[Vec<Value>],
) -> Result<u64> {
    let CopyStatements {
        probe,
        copy: copy_sql,
    } = CopyStatements::new(table, columns);
    let stmt = (&mut *conn)
        .prepare(&probe)
        .await
        .map_err(|e| map(e, &probe))?;
    let types: Vec<(String, PgTypeInfo)> = stmt
        .columns()
        .iter()
        .map(|c| (c.name().to_owned(), c.type_info().clone()))
        .collect();
    drop(stmt);

    let mut buf = BytesMut::with_capacity(COPY_CHUNK.min(64 + rows.len() * 64));
    buf.extend_from_slice(BINARY_HEADER);
    let width = i16::try_from(types.len())
        .map_err(|_| Error::query(&copy_sql, "too many columns", None))?;
    // Started before the data is encoded: any bad value or row aborts it, nothing is written.
    let mut copy = conn
        .copy_in_raw(&copy_sql)
        .await
        .map_err(|e| map(e, &copy_sql))?;
    let mut result = Ok(());
    for (n, row) in rows.iter().enumerate() {
        if let Err(e) = check_row_width(&copy_sql, n, row.len(), types.len()) {
            result = Err(e);
            break;
        }
        buf.extend_from_slice(&width.to_be_bytes());
        if let Some(e) = row
            .iter()
            .zip(&types)
            .enumerate()
            .find_map(|(i, (v, (name, ty)))| {
                wire::write_field(v, ty, &mut buf)
                    .err()
                    .map(|m| Error::encode(i + 1, format!("row {}, column {name}: {m}", n + 1)))
            })
        {
            result = Err(e);
            break;
        }
        if buf.len() >= COPY_CHUNK {
            if let Err(e) = copy.send(buf.split()).await {
                result = Err(map(e, &copy_sql).redact_values(rows.iter().flatten()));
                break;
            }
        }
    }
    if let Err(e) = result {
        // The server answers the abort with an error that the abort itself consumes.
        let _ = copy.abort("pgdbm: COPY aborted by the client").await;
        return Err(e);
    }
    buf.extend_from_slice(&BINARY_TRAILER);
    if let Err(e) = copy.send(buf).await {
        let _ = copy.abort("pgdbm: COPY aborted by the client").await;
        return Err(map(e, &copy_sql).redact_values(rows.iter().flatten()));
    }
    copy.finish()
        .await
        .map_err(|e| map(e, &copy_sql).redact_values(rows.iter().flatten()))
}

/// Why a stream of rows stopped early.
pub(crate) enum Stop {
    /// The statement ended with this error (the server's, or the connection's).
    Ended(Error),
    /// A row could not be read: the statement may still be sending rows, so the connection
    /// must be treated as abandoned.
    Cut(Error),
}

/// Runs `sql` and sends its rows to `tx` as they arrive (sqlx reads them one at a time from
/// the socket).
pub(crate) async fn stream_rows(
    conn: &mut PgConnection,
    cache: &StatementTypes,
    sql: &str,
    params: Params<'_>,
    tx: &RowSender,
) -> std::result::Result<(), Stop> {
    let Bound { learned, args } = bind(conn, cache, sql, params).await.map_err(Stop::Ended)?;
    // Behind a transaction pooler the statement is unnamed (and runs inside a transaction: see
    // `pooled::stream`); otherwise sqlx keeps it prepared on the connection.
    let query = sqlx::query_with(&learned.tagged, args).persistent(!cache.unnamed);
    let mut rows = conn.fetch(query);
    // The decoding plan of the first row serves the whole result.
    let mut plan: Option<(Option<Arc<Shape>>, Columns)> = None;
    while let Some(row) = rows.next().await {
        let row = row.map_err(|e| Stop::Ended(run_error(cache, sql, params, &learned, e)))?;
        let (shape, cols) = plan.get_or_insert_with(|| (shape(&row), columns(&row)));
        let decoded = match shape {
            Some(shape) => decode_with(&row, shape),
            None => decode(&row, cols),
        };
        tx.send(decoded.map_err(Stop::Cut)?).await;
    }
    Ok(())
}

/// A pooled connection lent to one statement: unless [`Busy::finish`] is reached, it is never
/// pooled again. A statement whose future was dropped (a timeout, a `select!`) may still be
/// running, or may have opened a transaction (`BEGIN`) that nobody owns; sqlx would wait for it,
/// ping it and pool it as it is. Instead the connection's socket is closed at once: the server sees the socket close within `client_connection_check_interval` (set on
/// every connection the driver opens, see `pool.rs`) and stops the statement. (sqlx keeps the
/// backend's cancel key to itself, so a cancel request cannot be sent, and a pooled connection
/// has no place to keep its backend pid for `pg_cancel_backend`.)
pub(crate) struct Busy<'c> {
    conn: Lent<'c>,
    finished: bool,
    /// The pool's own checkout: dropped after the connection went back (or was closed),
    /// `db.client.connection.use_time`.
    _in_use: Option<InUse>,
}

enum Lent<'c> {
    /// The pool's own statements: an abandoned connection is detached from the pool at once
    /// (its slot is free for a new connection) and closed.
    Owned(Option<PoolConnection<Postgres>>),
    /// A checked-out [`SqlxConnection`]: an abandoned one is taken out of it and closed the
    /// same way; the connection's later statements fail at once instead of waiting.
    Borrowed(&'c mut Option<PoolConnection<Postgres>>),
}

impl<'c> Busy<'c> {
    /// A connection of the pool's own checkout ([`SqlxPool::get`](crate::SqlxPool)).
    pub(crate) fn owned((conn, in_use): (PoolConnection<Postgres>, InUse)) -> Busy<'static> {
        Busy {
            conn: Lent::Owned(Some(conn)),
            finished: false,
            _in_use: Some(in_use),
        }
    }

    /// `conn` holds a connection (checked by [`SqlxConnection::lend`]).
    pub(crate) fn borrowed(conn: &'c mut Option<PoolConnection<Postgres>>) -> Self {
        Busy {
            conn: Lent::Borrowed(conn),
            finished: false,
            _in_use: None,
        }
    }

    pub(crate) fn conn(&mut self) -> &mut PgConnection {
        self.slot().as_mut().expect("taken only on drop")
    }

    fn slot(&mut self) -> &mut Option<PoolConnection<Postgres>> {
        match &mut self.conn {
            Lent::Owned(conn) => conn,
            Lent::Borrowed(conn) => conn,
        }
    }

    /// The statement finished (with `result`): the connection may be pooled again.
    pub(crate) fn finish<T>(mut self, result: T) -> T {
        self.finished = true;
        result
    }
}

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        let Some(conn) = self.slot().take() else {
            return;
        };
        // Detached from the pool (its slot is free at once) and dropped: the socket is closed
        // right here. (sqlx's graceful `close` would first write a Terminate message behind the
        // unfinished statement, and waits on the busy socket.)
        drop(conn.detach());
    }
}

/// A connection checked out of a [`SqlxPool`](crate::SqlxPool).
///
/// sqlx needs `&mut` access to run a statement, so the connection sits behind a
/// `tokio::sync::Mutex`: statements on one connection run one after another. When a
/// statement's future is dropped before it finished, the connection is closed (the server then
/// stops the statement within [`CLIENT_CHECK_INTERVAL`](crate::CLIENT_CHECK_INTERVAL)) and every later call on it fails at once with
/// [`Error::ConnectionLost`] — except a `ROLLBACK`, which succeeds: closing the connection
/// ended its transaction.
pub struct SqlxConnection {
    conn: tokio::sync::Mutex<Option<PoolConnection<Postgres>>>,
    types: Arc<StatementTypes>,
    /// Behind a transaction pooler: a transaction was begun (and not ended) with
    /// `batch_execute`, so the server connection is held (see `pooled.rs`).
    in_transaction: std::sync::atomic::AtomicBool,
    /// Dropped after `conn` went back: `db.client.connection.use_time`.
    _in_use: InUse,
}

impl std::fmt::Debug for SqlxConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlxConnection").finish_non_exhaustive()
    }
}

/// The error of a call on a connection closed after an abandoned statement.
fn closed() -> Error {
    Error::connection_lost(
        "",
        "an earlier statement on this connection was abandoned unfinished, so the connection was closed",
        None,
    )
}

impl SqlxConnection {
    pub(crate) fn new(
        (conn, in_use): (PoolConnection<Postgres>, InUse),
        types: Arc<StatementTypes>,
    ) -> Self {
        SqlxConnection {
            conn: tokio::sync::Mutex::new(Some(conn)),
            types,
            in_transaction: std::sync::atomic::AtomicBool::new(false),
            _in_use: in_use,
        }
    }

    /// Locks the underlying sqlx connection, for what pgdbm does not cover
    /// (`&mut **guard` is a `&mut PgConnection`); see [`connection`](crate::connection).
    ///
    /// # Errors
    ///
    /// [`Error::ConnectionLost`] when the connection was closed after an abandoned statement.
    pub async fn lock(
        &self,
    ) -> Result<tokio::sync::MappedMutexGuard<'_, PoolConnection<Postgres>>> {
        tokio::sync::MutexGuard::try_map(self.conn.lock().await, Option::as_mut)
            .map_err(|_| closed())
    }

    /// The underlying sqlx pooled connection (`None` once closed after an abandoned
    /// statement).
    pub fn into_inner(self) -> Option<PoolConnection<Postgres>> {
        self.conn.into_inner()
    }

    /// The connection for one statement, or the error of a closed one.
    async fn lend(&self) -> Result<tokio::sync::MutexGuard<'_, Option<PoolConnection<Postgres>>>> {
        let guard = self.conn.lock().await;
        if guard.is_none() {
            return Err(closed());
        }
        Ok(guard)
    }
}

// Each statement runs under a `Busy`: a connection whose statement was abandoned is closed at
// once, and later statements (a transaction's ROLLBACK) fail without waiting for it.
#[async_trait]
impl Executor for SqlxConnection {
    async fn execute(&self, sql: &str, params: Params<'_>) -> Result<u64> {
        let mut guard = self.lend().await?;
        let mut busy = Busy::borrowed(&mut guard);
        let result = if self.types.unnamed {
            self.pooled(busy.conn(), sql, params, Op::Execute)
                .await
                .map(Out::count)
        } else {
            execute(busy.conn(), &self.types, sql, params).await
        };
        busy.finish(result)
    }
    async fn fetch_all(&self, sql: &str, params: Params<'_>) -> Result<Vec<Row>> {
        let mut guard = self.lend().await?;
        let mut busy = Busy::borrowed(&mut guard);
        let result = if self.types.unnamed {
            self.pooled(busy.conn(), sql, params, Op::FetchAll)
                .await
                .map(Out::rows)
        } else {
            fetch_all(busy.conn(), &self.types, sql, params).await
        };
        busy.finish(result)
    }
    async fn fetch_optional(&self, sql: &str, params: Params<'_>) -> Result<Option<Row>> {
        let mut guard = self.lend().await?;
        let mut busy = Busy::borrowed(&mut guard);
        let result = if self.types.unnamed {
            self.pooled(busy.conn(), sql, params, Op::FetchOptional)
                .await
                .map(Out::row)
        } else {
            fetch_optional(busy.conn(), &self.types, sql, params).await
        };
        busy.finish(result)
    }
    async fn batch_execute(&self, sql: &str) -> Result<()> {
        let mut guard = self.conn.lock().await;
        if guard.is_none() {
            // Closing the connection ended its transaction: the server rolled it back.
            return if sql.trim().eq_ignore_ascii_case("ROLLBACK") {
                Ok(())
            } else {
                Err(closed())
            };
        }
        let mut busy = Busy::borrowed(&mut guard);
        let result = batch_execute(busy.conn(), sql).await;
        if self.types.unnamed {
            if let Some(open) = transaction_control(sql) {
                self.in_transaction
                    .store(open, std::sync::atomic::Ordering::Relaxed);
            }
        }
        busy.finish(result)
    }
    fn fetch<'a>(&'a self, sql: &str, params: Params<'a>) -> BoxStream<'a, Result<Row>> {
        let sql = sql.to_owned();
        row_stream(move |tx| async move {
            let mut guard = self.lend().await?;
            let mut busy = Busy::borrowed(&mut guard);
            let streamed = if self.types.unnamed {
                let in_transaction = self
                    .in_transaction
                    .load(std::sync::atomic::Ordering::Relaxed);
                pooled::stream(busy.conn(), &self.types, &sql, params, in_transaction, &tx).await
            } else {
                stream_rows(busy.conn(), &self.types, &sql, params, &tx).await
            };
            match streamed {
                Ok(()) => busy.finish(Ok(())),
                Err(Stop::Ended(e)) => busy.finish(Err(e)),
                // The rest of the statement is abandoned: the connection is closed.
                Err(Stop::Cut(e)) => {
                    drop(busy);
                    Err(e)
                }
            }
        })
    }
}

impl SqlxConnection {
    /// Behind a transaction pooler (see `pooled.rs`).
    async fn pooled(
        &self,
        conn: &mut PgConnection,
        sql: &str,
        params: Params<'_>,
        op: Op,
    ) -> Result<Out> {
        let in_transaction = self
            .in_transaction
            .load(std::sync::atomic::Ordering::Relaxed);
        pooled::run(conn, &self.types, sql, params, in_transaction, op).await
    }
}

#[async_trait]
impl Connection for SqlxConnection {
    async fn copy_in(&self, table: &str, columns: &[&str], rows: &[Vec<Value>]) -> Result<u64> {
        let mut guard = self.lend().await?;
        let mut busy = Busy::borrowed(&mut guard);
        let result = if self.types.unnamed {
            let in_transaction = self
                .in_transaction
                .load(std::sync::atomic::Ordering::Relaxed);
            pooled::copy_in(busy.conn(), in_transaction, table, columns, rows).await
        } else {
            copy_in(busy.conn(), table, columns, rows).await
        };
        busy.finish(result)
    }

    fn discard(&mut self) {
        // sqlx closes the connection when the guard drops instead of returning it to the pool.
        if let Some(conn) = self.conn.get_mut() {
            conn.close_on_drop();
        }
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

/// The [`SqlxConnection`] of a connection checked out of a [`SqlxPool`](crate::SqlxPool)
/// (`Database::acquire`, `PoolProvider::acquire`), or `None` for another driver's connection:
/// the escape hatch for what pgdbm does not cover. Lock it for sqlx's own API on the
/// `PgConnection`. Statements run on it bypass templates, monitoring and pgdbm's handling of
/// cancelled statements; leave the session as you found it (no open transaction, no session
/// settings changed), as it goes back to the pool.
///
/// ```no_run
/// # async fn demo(db: pgdbm::Database) -> pgdbm::Result<()> {
/// use pgdbm_driver_sqlx::sqlx;
/// let conn = db.acquire().await?;
/// let sqlx_conn = pgdbm_driver_sqlx::connection(&conn).expect("an sqlx pool");
/// let mut guard = sqlx_conn.lock().await?;
/// let (n,): (i32,) = sqlx::query_as("SELECT 40 + $1")
///     .bind(2_i32)
///     .fetch_one(&mut **guard)
///     .await
///     .expect("query");
/// assert_eq!(n, 42);
/// # Ok(()) }
/// ```
pub fn connection(conn: &PooledConnection) -> Option<&SqlxConnection> {
    conn.as_any().downcast_ref::<SqlxConnection>()
}
