//! One tokio-postgres connection: its bounded LRU statement cache, its busy and discard marks,
//! its cancel token and gate, the statements, streams and COPY run on it.

use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use futures_util::stream::BoxStream;
use futures_util::{TryStreamExt, pin_mut};
use lru::LruCache;
use pgdbm::driver::{CancelGate, Columns, CopyStatements, RowSender, check_row_width, row_stream};
use pgdbm::{Error, Executor, Params, Result, Row, Value};
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::Type;
use tokio_postgres::{CancelToken, Client};

use crate::bind::{Bind, BindParam};
use crate::cancel::CancelTarget;
use crate::decode;
use crate::error::map;
use crate::lookups::TypeLookups;
use crate::settings::Tls;

/// Awaits `$work` (a statement on the checked-out connection `$conn`) as a [`Running`]
/// statement: it waits while a cancel request for an earlier abandoned statement is on its way,
/// and if this future is dropped before the statement finishes, the server is asked to cancel
/// it and the busy mark stays (the pool closes the connection if it is returned so). A macro,
/// not a wrapping future, so the statement's future is not moved once more.
macro_rules! in_flight {
    ($conn:expr, $work:expr) => {{
        let running = $conn.start().await;
        let out = $work.await;
        running.finish(out)
    }};
}
pub(crate) use in_flight;

/// A statement running on a checked-out connection (see [`in_flight!`]): dropped before
/// [`finish`](Running::finish), it sends the server a cancel request on a background task,
/// through the connection's [`CancelGate`], so the owner's next statement is sent only once the
/// cancel was delivered and cannot be hit by it.
pub(crate) struct Running<'c> {
    conn: &'c PgConn,
    finished: bool,
}

impl Running<'_> {
    /// The statement finished (with `out`): the connection is idle again.
    pub(crate) fn finish<T>(mut self, out: T) -> T {
        self.finished = true;
        self.conn.mark_idle();
        out
    }
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        if !self.finished {
            self.conn
                .gate
                .cancel_in_background(self.conn.cancel_request());
        }
    }
}

/// Why a stream of rows stopped early.
pub(crate) enum Stop {
    /// The statement ended with this error (the server's, or the connection's).
    Ended(Error),
    /// A row could not be read: the statement may still be sending rows, so the connection
    /// must be treated as abandoned.
    Cut(Error),
}

/// A prepared statement and its pgdbm column list.
#[derive(Clone)]
struct Prepared {
    stmt: tokio_postgres::Statement,
    columns: Columns,
}

/// A connection: the tokio-postgres client, its statement cache, and a "do not reuse" flag —
/// behind one `Box`, so that bb8 moves a pointer, not ~250 bytes, each time it hands the
/// connection out or takes it back, and each query's future is that much smaller.
pub(crate) struct PgConn(Box<ConnState>);

pub(crate) struct ConnState {
    client: Client,
    /// Cancels the running statement from another socket (a protocol cancel request).
    cancel: CancelToken,
    /// The TLS connector the cancel request is sent with (the token knows whether to use it).
    tls: Tls,
    /// Where cancel requests go.
    target: Arc<CancelTarget>,
    /// Statements wait here while a cancel request is on its way.
    gate: CancelGate,
    cache: Option<Mutex<LruCache<String, Prepared>>>,
    broken: AtomicBool,
    /// A statement was sent and its future has not finished: when it was dropped instead (a
    /// timeout, a `select!`), the session may still run it or sit inside a `BEGIN` it opened,
    /// so the pool must not hand the connection to anyone else. A later statement that finishes
    /// clears it: the server answers in order, so the dropped one is over by then.
    busy: AtomicBool,
    /// Statements started on this connection, and the configured `max_queries`: once it is
    /// reached the connection is not reused (closed when it goes back to the pool).
    statements: AtomicU64,
    max_statements: Option<u64>,
    /// Behind a transaction pooler: no named statement of pgdbm's (see `unnamed.rs`).
    pub(crate) unnamed: bool,
    /// The task driving the connection's socket: aborted when the connection is dropped with a
    /// statement still running (see [`Drop for PgConn`](PgConn)).
    task: tokio::task::AbortHandle,
    /// Behind a transaction pooler: which statements ran, the client's lookup statements, and
    /// whether a transaction is open (see `lookups.rs`).
    lookups: Option<Box<TypeLookups>>,
}

impl std::ops::Deref for PgConn {
    type Target = ConnState;
    fn deref(&self) -> &ConnState {
        &self.0
    }
}

impl Drop for PgConn {
    /// A connection dropped while a statement it abandoned may still run is closed at once: its
    /// socket task is aborted. (tokio-postgres would otherwise keep the socket open until the
    /// statement's answer came, and the server — or a pooler's server connection — would go on
    /// running it unnoticed. Closed, the server stops it when it next checks its client, e.g.
    /// within `client_connection_check_interval`.)
    fn drop(&mut self) {
        if self.busy.load(Ordering::Relaxed) {
            self.task.abort();
        }
    }
}

impl std::fmt::Debug for PgConn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgConn")
            .field("closed", &self.client.is_closed())
            .field(
                "cached_statements",
                &self.cache.as_ref().map(|c| lock(c).len()),
            )
            .finish()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl PgConn {
    /// With `unnamed` (behind a transaction pooler) statements run unnamed in one round trip
    /// and nothing is cached (`cache_capacity` is ignored).
    pub(crate) fn new(
        client: Client,
        task: tokio::task::AbortHandle,
        cache_capacity: usize,
        unnamed: bool,
        tls: Tls,
        target: Arc<CancelTarget>,
        max_statements: Option<u64>,
    ) -> Self {
        let capacity = if unnamed { 0 } else { cache_capacity };
        PgConn(Box::new(ConnState {
            cancel: client.cancel_token(),
            tls,
            target,
            gate: CancelGate::new(),
            client,
            cache: NonZeroUsize::new(capacity).map(|n| Mutex::new(LruCache::new(n))),
            broken: AtomicBool::new(false),
            busy: AtomicBool::new(false),
            statements: AtomicU64::new(0),
            max_statements,
            unnamed,
            lookups: unnamed.then(|| Box::new(TypeLookups::new())),
            task,
        }))
    }

    pub(crate) fn client(&self) -> &Client {
        &self.client
    }

    /// Behind a transaction pooler, what the connection knows of its statements and session.
    pub(crate) fn lookups(&self) -> Option<&TypeLookups> {
        self.lookups.as_deref()
    }

    /// `true` when the pool must not reuse this connection: discarded, closed, a statement on
    /// it was abandoned unfinished, or it ran its `max_queries` statements.
    pub(crate) fn is_broken(&self) -> bool {
        self.broken.load(Ordering::Relaxed)
            || self.busy.load(Ordering::Relaxed)
            || self.client.is_closed()
            || self
                .max_statements
                .is_some_and(|max| self.statements.load(Ordering::Relaxed) >= max)
    }

    /// Starts a statement on a checked-out connection (see [`in_flight!`]).
    pub(crate) async fn start(&self) -> Running<'_> {
        self.gate.pass().await;
        self.mark_busy();
        Running {
            conn: self,
            finished: false,
        }
    }

    /// A cancel request for whatever runs on this connection, to send from anywhere: it
    /// resolves once the server has taken it ([`CancelTarget::cancel`]).
    #[cfg_attr(not(feature = "tls"), allow(clippy::clone_on_copy))] // `NoTls` is `Copy`
    pub(crate) fn cancel_request(
        &self,
    ) -> impl std::future::Future<Output = Result<()>> + Send + 'static {
        let token = self.cancel.clone();
        let tls = self.tls.clone();
        let target = Arc::clone(&self.target);
        let through_pooler = self.unnamed;
        async move {
            if through_pooler {
                // Behind a transaction pooler a cancel request can arrive after the pooler moved
                // the client to another server connection (hitting an unrelated statement), and
                // PgBouncer 1.18 aborts (`disconnect_client(): bad client state`) when one meets
                // a client being closed: none is sent; the connection is closed instead.
                let _ = (token, tls, target);
                return Err(Error::query(
                    "cancel request",
                    "not sent behind a transaction pooler; the connection is closed instead",
                    None,
                ));
            }
            target.cancel(&token, tls).await
        }
    }

    /// Marks a statement as running (see [`in_flight!`]), and counts it (`max_queries`).
    pub(crate) fn mark_busy(&self) {
        self.statements.fetch_add(1, Ordering::Relaxed);
        self.busy.store(true, Ordering::Relaxed);
    }

    /// Counts a statement run on a shared connection (`max_queries`), which is never marked
    /// busy: it is not handed out by the pool.
    pub(crate) fn count_statement(&self) {
        self.statements.fetch_add(1, Ordering::Relaxed);
    }

    /// Marks the running statement as finished (see [`in_flight!`]).
    pub(crate) fn mark_idle(&self) {
        self.busy.store(false, Ordering::Relaxed);
    }

    pub(crate) fn mark_broken(&self) {
        self.broken.store(true, Ordering::Relaxed);
    }

    async fn prepare(&self, sql: &str) -> Result<Prepared> {
        if let Some(cache) = &self.cache {
            if let Some(hit) = lock(cache).get(sql) {
                return Ok(hit.clone());
            }
        }
        let stmt = self.client.prepare(sql).await.map_err(|e| map(e, sql))?;
        let prepared = Prepared {
            columns: decode::columns(&stmt),
            stmt,
        };
        if let Some(cache) = &self.cache {
            // An evicted statement is closed on the server when its last clone drops.
            lock(cache).put(sql.to_owned(), prepared.clone());
        }
        Ok(prepared)
    }

    /// A failed execution may come from a stale cached plan (the table changed): forget it.
    fn forget(&self, sql: &str) {
        if let Some(cache) = &self.cache {
            lock(cache).pop(sql);
        }
    }

    fn check_count<'p>(prepared: &Prepared, sql: &str, params: Params<'p>) -> Result<()> {
        let expected = prepared.stmt.params().len();
        if expected != params.len() {
            return Err(Error::parameter_count(expected, params.len(), sql));
        }
        Ok(())
    }

    /// The error of a bound statement, the parameters' values hidden in its text.
    fn failed<T>(&self, sql: &str, params: Params<'_>, err: tokio_postgres::Error) -> Result<T> {
        Err(self.failure(sql, params, err))
    }

    fn failure(&self, sql: &str, params: Params<'_>, err: tokio_postgres::Error) -> Error {
        self.forget(sql);
        map(err, sql).redact_params(params)
    }

    /// Runs `sql` and sends its rows to `tx` as they arrive (the caller marks the connection
    /// busy around it, as for any statement).
    pub(crate) async fn stream_rows(
        &self,
        sql: &str,
        params: Params<'_>,
        tx: &RowSender,
    ) -> std::result::Result<(), Stop> {
        if self.unnamed {
            return self
                .run_unnamed(sql, params, crate::unnamed::Op::Stream(tx))
                .await
                .map(drop);
        }
        let prepared = self.prepare(sql).await.map_err(Stop::Ended)?;
        Self::check_count(&prepared, sql, params).map_err(Stop::Ended)?;
        let binds = params.iter().map(|p| BindParam(*p));
        let stream = self
            .client
            .query_raw(&prepared.stmt, binds)
            .await
            .map_err(|e| Stop::Ended(self.failure(sql, params, e)))?;
        pin_mut!(stream);
        loop {
            match stream.try_next().await {
                Ok(Some(row)) => match decode::row(&row, &prepared.columns) {
                    Ok(row) => tx.send(row).await,
                    Err(e) => return Err(Stop::Cut(e)),
                },
                Ok(None) => return Ok(()),
                Err(e) => return Err(Stop::Ended(self.failure(sql, params, e))),
            }
        }
    }

    /// [`Executor::fetch`] on this checked-out connection.
    pub(crate) fn fetch_stream<'a>(
        &'a self,
        sql: &str,
        params: Params<'a>,
    ) -> BoxStream<'a, Result<Row>> {
        let sql = sql.to_owned();
        row_stream(move |tx| async move {
            let running = self.start().await;
            match self.stream_rows(&sql, params, &tx).await {
                Ok(()) => running.finish(Ok(())),
                Err(Stop::Ended(e)) => running.finish(Err(e)),
                // Dropped unfinished: the rest of the statement is cancelled.
                Err(Stop::Cut(e)) => {
                    drop(running);
                    Err(e)
                }
            }
        })
    }
}

#[async_trait]
impl Executor for PgConn {
    async fn execute(&self, sql: &str, params: Params<'_>) -> Result<u64> {
        in_flight!(self, self.execute_direct(sql, params))
    }
    async fn fetch_all(&self, sql: &str, params: Params<'_>) -> Result<Vec<Row>> {
        in_flight!(self, self.fetch_all_direct(sql, params))
    }
    async fn fetch_optional(&self, sql: &str, params: Params<'_>) -> Result<Option<Row>> {
        in_flight!(self, self.fetch_optional_direct(sql, params))
    }
    async fn batch_execute(&self, sql: &str) -> Result<()> {
        in_flight!(self, self.batch_execute_direct(sql))
    }
    fn fetch<'a>(&'a self, sql: &str, params: Params<'a>) -> BoxStream<'a, Result<Row>> {
        self.fetch_stream(sql, params)
    }
}

impl PgConn {
    /// Unboxed bodies of the `Executor` methods, for the pool's fast path. Callers mark the
    /// connection busy while they run ([`in_flight!`], or the pool's `Lent`).
    pub(crate) async fn batch_execute_direct(&self, sql: &str) -> Result<()> {
        let result = self.client.batch_execute(sql).await;
        if let Some(lookups) = self.lookups() {
            // A failed `BEGIN; SET LOCAL …` still opened its transaction, a failed `COMMIT`
            // still ended it.
            lookups.follow(sql);
        }
        result.map_err(|e| map(e, sql))
    }

    pub(crate) async fn execute_direct(&self, sql: &str, params: Params<'_>) -> Result<u64> {
        if self.unnamed {
            return self.execute_unnamed(sql, params).await;
        }
        let prepared = self.prepare(sql).await?;
        Self::check_count(&prepared, sql, params)?;
        let binds = params.iter().map(|p| BindParam(*p));
        match self.client.execute_raw(&prepared.stmt, binds).await {
            Ok(n) => Ok(n),
            Err(e) => self.failed(sql, params, e),
        }
    }

    pub(crate) async fn fetch_all_direct(&self, sql: &str, params: Params<'_>) -> Result<Vec<Row>> {
        if self.unnamed {
            return self.fetch_all_unnamed(sql, params).await;
        }
        let prepared = self.prepare(sql).await?;
        Self::check_count(&prepared, sql, params)?;
        let binds = params.iter().map(|p| BindParam(*p));
        let rows: Vec<tokio_postgres::Row> =
            match self.client.query_raw(&prepared.stmt, binds).await {
                Ok(stream) => match stream.try_collect().await {
                    Ok(rows) => rows,
                    Err(e) => return self.failed(sql, params, e),
                },
                Err(e) => return self.failed(sql, params, e),
            };
        rows.iter()
            .map(|r| decode::row(r, &prepared.columns))
            .collect()
    }

    pub(crate) async fn fetch_optional_direct(
        &self,
        sql: &str,
        params: Params<'_>,
    ) -> Result<Option<Row>> {
        if self.unnamed {
            return self.fetch_optional_unnamed(sql, params).await;
        }
        let prepared = self.prepare(sql).await?;
        Self::check_count(&prepared, sql, params)?;
        let binds = params.iter().map(|p| BindParam(*p));
        let stream = match self.client.query_raw(&prepared.stmt, binds).await {
            Ok(stream) => stream,
            Err(e) => return self.failed(sql, params, e),
        };
        pin_mut!(stream);
        let first = match stream.try_next().await {
            Ok(first) => first,
            Err(e) => return self.failed(sql, params, e),
        };
        // Drain the rest so the statement's own errors (raised after the first row) surface.
        // (A finished stream must not be polled again: it would report a closed connection.)
        while first.is_some() {
            match stream.try_next().await {
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(e) => return self.failed(sql, params, e),
            }
        }
        first
            .map(|r| decode::row(&r, &prepared.columns))
            .transpose()
    }
}

impl PgConn {
    pub(crate) async fn copy_in(
        &self,
        table: &str,
        columns: &[&str],
        rows: &[Vec<Value>],
    ) -> Result<u64> {
        let Some(lookups) = self.lookups() else {
            return self.copy_in_here(table, columns, rows).await;
        };
        // Behind a transaction pooler the probe and the COPY are named statements (and the
        // probe may look types up): guarded, so they stay on one server connection.
        let sql = format!("COPY {table}");
        let work = async {
            self.copy_in_here(table, columns, rows)
                .await
                .map_err(Stop::Ended)
        };
        match self.guarded(lookups, &sql, &[], work).await {
            Ok(n) => Ok(n),
            Err(Stop::Ended(e) | Stop::Cut(e)) => Err(e),
        }
    }

    /// Binary COPY of `rows` on this connection's session.
    async fn copy_in_here(
        &self,
        table: &str,
        columns: &[&str],
        rows: &[Vec<Value>],
    ) -> Result<u64> {
        let CopyStatements { probe, copy } = CopyStatements::new(table, columns);
        let probe_stmt = self
            .client
            .prepare(&probe)
            .await
            .map_err(|e| map(e, &probe))?;
        let types: Vec<Type> = probe_stmt
            .columns()
            .iter()
            .map(|c| c.type_().clone())
            .collect();
        // Closed now (an evicted statement is closed when its last clone drops), not later on
        // whatever server connection a pooler gives.
        drop(probe_stmt);
        let sink = self
            .client
            .copy_in(&copy)
            .await
            .map_err(|e| map(e, &copy))?;
        let writer = BinaryCopyInWriter::new(sink, &types);
        pin_mut!(writer);
        for (n, row) in rows.iter().enumerate() {
            // On a bad row, dropping the writer unfinished aborts the COPY: nothing is written.
            check_row_width(&copy, n, row.len(), types.len())?;
            let binds: Vec<Bind<'_>> = row.iter().map(Bind).collect();
            writer
                .as_mut()
                .write_raw(binds)
                .await
                .map_err(|e| map(e, &copy).redact_values(rows.iter().flatten()))?;
        }
        writer
            .as_mut()
            .finish()
            .await
            .map_err(|e| map(e, &copy).redact_values(rows.iter().flatten()))
    }
}
