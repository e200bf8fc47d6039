//! Running statements on one sqlx connection (bound in `bind.rs`, read in `decode.rs`), binary
//! COPY, the busy mark, and the pooled connection handed to the core.

use std::sync::Arc;

use async_trait::async_trait;
use pgdbm::driver::check_row_width;
use pgdbm::driver::copy::{BINARY_HEADER, BINARY_TRAILER};
use pgdbm::driver::{Connection, CopyStatements};
use pgdbm::{Error, Executor, Params, Result, Row, Value};
use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnection, PgTypeInfo, Postgres};
use sqlx::{Column as _, Executor as _, Statement as _};

use crate::bind::{Bound, bind, run_error};
use crate::decode::{columns, decode, decode_rows, decode_with, shape};
use crate::error::map;
use crate::pooled::{self, Op, Out, transaction_control};
use crate::statements::StatementTypes;
use crate::types;

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

    let mut buf = Vec::with_capacity(COPY_CHUNK.min(64 + rows.len() * 64));
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
                types::write_field(v, ty, &mut buf)
                    .err()
                    .map(|m| Error::encode(i + 1, format!("row {}, column {name}: {m}", n + 1)))
            })
        {
            result = Err(e);
            break;
        }
        if buf.len() >= COPY_CHUNK {
            if let Err(e) = copy.send(std::mem::take(&mut buf)).await {
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

/// A pooled connection lent to one statement: unless [`Busy::finish`] is reached, it is never
/// pooled again. A statement whose future was dropped (a timeout, a `select!`) may still be
/// running, or may have opened a transaction (`BEGIN`) that nobody owns; sqlx would wait for it,
/// ping it and pool it as it is.
pub(crate) struct Busy<'c> {
    conn: Lent<'c>,
    finished: bool,
}

enum Lent<'c> {
    /// The pool's own statements: an abandoned connection is detached from the pool at once
    /// (its slot is free for a new connection) and closed in the background.
    Owned(Option<PoolConnection<Postgres>>),
    /// A checked-out [`SqlxConnection`]: an abandoned one is closed when it is returned.
    Borrowed(&'c mut PoolConnection<Postgres>),
}

impl<'c> Busy<'c> {
    pub(crate) fn owned(conn: PoolConnection<Postgres>) -> Busy<'static> {
        Busy {
            conn: Lent::Owned(Some(conn)),
            finished: false,
        }
    }

    pub(crate) fn borrowed(conn: &'c mut PoolConnection<Postgres>) -> Self {
        Busy {
            conn: Lent::Borrowed(conn),
            finished: false,
        }
    }

    pub(crate) fn conn(&mut self) -> &mut PgConnection {
        match &mut self.conn {
            Lent::Owned(conn) => conn.as_mut().expect("taken only on drop"),
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
        match &mut self.conn {
            Lent::Borrowed(conn) => conn.close_on_drop(),
            Lent::Owned(conn) => {
                let Some(conn) = conn.take() else { return };
                let raw = conn.detach();
                if let Ok(rt) = tokio::runtime::Handle::try_current() {
                    rt.spawn(async move {
                        let _ = sqlx::Connection::close(raw).await;
                    });
                }
            }
        }
    }
}

/// A connection checked out of a [`SqlxPool`](crate::SqlxPool).
///
/// sqlx needs `&mut` access to run a statement, so the connection sits behind a
/// `tokio::sync::Mutex`: statements on one connection run one after another.
pub struct SqlxConnection {
    conn: tokio::sync::Mutex<PoolConnection<Postgres>>,
    types: Arc<StatementTypes>,
    /// Behind a transaction pooler: a transaction was begun (and not ended) with
    /// `batch_execute`, so the server connection is held (see `pooled.rs`).
    in_transaction: std::sync::atomic::AtomicBool,
}

impl std::fmt::Debug for SqlxConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlxConnection").finish_non_exhaustive()
    }
}

impl SqlxConnection {
    pub(crate) fn new(conn: PoolConnection<Postgres>, types: Arc<StatementTypes>) -> Self {
        SqlxConnection {
            conn: tokio::sync::Mutex::new(conn),
            types,
            in_transaction: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Locks the underlying sqlx connection, for what pgdbm does not cover
    /// (`&mut *guard` is a `&mut PgConnection`).
    pub async fn lock(&self) -> tokio::sync::MutexGuard<'_, PoolConnection<Postgres>> {
        self.conn.lock().await
    }

    /// The underlying sqlx pooled connection.
    pub fn into_inner(self) -> PoolConnection<Postgres> {
        self.conn.into_inner()
    }
}

// Each statement runs under a `Busy`: a connection whose statement was abandoned is closed
// when it goes back to the pool, even if later statements (a transaction's ROLLBACK) finish.
#[async_trait]
impl Executor for SqlxConnection {
    async fn execute(&self, sql: &str, params: Params<'_>) -> Result<u64> {
        let mut guard = self.conn.lock().await;
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
        let mut guard = self.conn.lock().await;
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
        let mut guard = self.conn.lock().await;
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
        let mut guard = self.conn.lock().await;
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
        self.conn.get_mut().close_on_drop();
    }
}
