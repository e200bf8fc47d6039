//! Transactions and savepoints, written once on top of any driver's
//! [`Connection`](crate::driver::Connection).
//!
//! A [`Transaction`] is a cheap, cloneable handle on one level: the top level (`BEGIN`) or a
//! savepoint inside it. Levels finish explicitly with [`commit`](Transaction::commit) or
//! [`rollback`](Transaction::rollback). A level whose last handle is dropped unfinished (an early
//! `?`, a panic, a cancelled future) is rolled back: a savepoint before the next statement on its
//! parent, the top level right away on a background task, after which the connection returns to
//! the pool clean (or is closed when the rollback fails).
//!
//! The handle is two parts: the level (shared by every handle on it, with the connection and the
//! cancellation state) and the scope — the templates and hooks of one [`Database`](crate::Database)
//! handle. [`Transaction::with_schema_of`] makes a handle on the same level with another scope, so
//! several modules, each in its own schema, write in one transaction.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex as StdMutex};
use std::time::Duration;

use async_trait::async_trait;
use futures_util::FutureExt;
use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use tokio::sync::{Mutex, MutexGuard};

use crate::database::copy_target;
use crate::driver::row_stream;
use crate::driver::{DiscardGuard, PooledConnection};
use crate::error::{Error, Result};
use crate::executor::Executor;
use crate::monitor::{
    Hooks, Operation, observe, observe_copy, observe_stream, record_error, transaction_span,
};
use crate::row::Row;
use crate::template::Templates;
use crate::timeout::{bounded, set_local_statement_timeout};
use crate::value::{Params, Value};

/// Runs one statement on the transaction's connection (`$conn` is bound to it in `$work`): until
/// it finishes, the transaction counts as failed ([`State::start_statement`]), so a statement
/// whose future is dropped leaves it uncommittable; then the outcome is noted
/// ([`State::end_statement`]).
macro_rules! in_statement {
    ($state:ident, $conn:ident => $work:expr) => {{
        let before = $state.start_statement();
        let result = {
            let $conn = $state.conn();
            $work.await
        };
        $state.end_statement(before, result)
    }};
}

/// A transaction (or a savepoint inside one) on a dedicated connection.
///
/// It implements [`Executor`], so everything written against `&dyn Executor` runs inside it, and it
/// expands templates for the schema of the handle that began it. To run another module's SQL in
/// the same transaction, take a handle with that module's schema:
/// [`with_schema_of`](Transaction::with_schema_of) (or
/// [`Database::in_transaction`](crate::Database::in_transaction)).
///
/// ```no_run
/// # async fn demo(db: pgdbm::Database) -> pgdbm::Result<()> {
/// use pgdbm::prelude::*;
/// let tx = db.begin().await?;
/// tx.execute("UPDATE {{tables.accounts}} SET balance = balance - 10 WHERE id = $1", params![1]).await?;
/// let sp = tx.begin().await?; // SAVEPOINT
/// if sp.execute("UPDATE {{tables.accounts}} SET balance = balance + 10 WHERE id = $1", params![2]).await.is_err() {
///     sp.rollback().await?; // only the savepoint's work is undone
/// } else {
///     sp.commit().await?; // RELEASE SAVEPOINT
/// }
/// tx.commit().await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Transaction {
    level: Arc<Level>,
    /// Whose templates and hooks this handle uses: the handle that began the transaction, or the
    /// one given to [`Transaction::with_schema_of`].
    scope: Arc<Scope>,
    /// The client-side bound of each call through this handle
    /// ([`with_timeout`](Transaction::with_timeout)).
    timeout: Option<Duration>,
}

/// The per-handle half of a transaction handle: how its SQL is expanded and recorded. Handles on
/// one level may differ here (one per module); the level and the connection are shared.
struct Scope {
    templates: Arc<Templates>,
    /// The monitor and span data of the [`Database`](crate::Database) handle this scope is from.
    hooks: Hooks,
}

struct Level {
    shared: Arc<Shared>,
    /// `None` for the top level, the savepoint number otherwise.
    savepoint: Option<u32>,
    depth: u32,
    finished: AtomicBool,
    /// The level's `pgdbm.transaction` span (disabled when nobody wants it): the parent of the
    /// statements run on the level and of its savepoints' spans. It ends with the level.
    span: tracing::Span,
}

struct Shared {
    state: Mutex<State>,
    /// Savepoints whose handles were dropped unfinished; rolled back before the next statement.
    abandoned: StdMutex<Vec<u32>>,
    next_savepoint: AtomicU32,
}

struct State {
    /// `None` once the top level finished and the connection went back to the pool.
    conn: Option<PooledConnection>,
    /// Open savepoints, outermost first.
    open: Vec<u32>,
    /// A statement failed and no rollback to a savepoint has happened since: the server will only
    /// accept a rollback now.
    failed: bool,
}

impl std::fmt::Debug for Transaction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transaction")
            .field("depth", &self.level.depth)
            .field("schema", &self.schema())
            .field("finished", &self.level.finished.load(Ordering::Relaxed))
            .finish()
    }
}

fn savepoint_name(n: u32) -> String {
    format!("pgdbm_sp_{n}")
}

impl Transaction {
    /// Sends `BEGIN` on `conn`, followed in the same round trip by `prelude` (behind a
    /// transaction pooler: the guardrail settings as `SET LOCAL`); the transaction expands with
    /// `templates` and records its statements with `hooks` (monitor, spans) — given here, as
    /// nothing of a begun transaction can be changed once its state is shared.
    pub(crate) async fn begin_on(
        conn: PooledConnection,
        templates: Arc<Templates>,
        hooks: Hooks,
        timeout: Option<Duration>,
        prelude: Option<&str>,
    ) -> Result<Self> {
        // Until `BEGIN` has answered, the connection is closed rather than pooled if this future
        // is dropped: it may be inside a transaction nobody owns.
        let mut guard = DiscardGuard::new(conn);
        let span = transaction_span(&hooks, templates.schema(), None);
        let mut begin = String::from("BEGIN");
        if let Some(prelude) = prelude {
            begin.push_str("; ");
            begin.push_str(prelude);
        }
        if let Some(limit) = timeout {
            begin.push_str("; ");
            begin.push_str(&set_local_statement_timeout(limit));
        }
        // On failure the session may be inside an aborted transaction: closed (guard).
        let sent = guard.conn().batch_execute(&begin);
        let schema = templates.schema();
        let begun = observe(
            &hooks,
            schema,
            Operation::TransactionControl,
            "BEGIN",
            &[],
            sent,
        );
        if let Err(e) = in_span(&span, begun).await {
            record_error(&span, &e);
            return Err(e);
        }
        let conn = guard.keep();
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                conn: Some(conn),
                open: Vec::new(),
                failed: false,
            }),
            abandoned: StdMutex::new(Vec::new()),
            next_savepoint: AtomicU32::new(1),
        });
        Ok(Transaction {
            level: Arc::new(Level {
                shared,
                savepoint: None,
                depth: 0,
                finished: AtomicBool::new(false),
                span,
            }),
            scope: Arc::new(Scope { templates, hooks }),
            timeout,
        })
    }

    /// A handle on this same transaction level and connection that expands `{{tables.x}}` and
    /// `{{schema}}` with `db`'s schema, and records its statements with `db`'s monitor and span
    /// data: the way to run another module's SQL inside this transaction.
    ///
    /// Only `db`'s templates and hooks are taken: its statements run on this transaction's
    /// connection, never on `db`'s pool, so `db` should be a handle on the same database (usually
    /// the same pool). The returned handle is a [`Transaction`] like any other (an [`Executor`],
    /// so module functions taking `&dyn Executor` work unchanged), and it shares this level:
    ///
    /// * [`begin`](Transaction::begin) on it opens a savepoint on the shared connection whose
    ///   handle expands with `db`'s templates; savepoints nest across modules in any order.
    /// * [`commit`](Transaction::commit) or [`rollback`](Transaction::rollback) through *any*
    ///   handle of a level finishes that level for all of them. Commit with the handle the level
    ///   was begun with (the closure form does this for you) and let cross-module handles simply
    ///   go out of scope: dropping one finishes nothing, the level stays open while any handle on
    ///   it lives and is rolled back only when the last one is dropped unfinished.
    ///
    /// [`Database::in_transaction`](crate::Database::in_transaction) is the same call seen from
    /// the other side.
    ///
    /// ```no_run
    /// # async fn demo(todo: pgdbm::Database, audit: pgdbm::Database) -> pgdbm::Result<()> {
    /// use pgdbm::prelude::*;
    /// // A module function, written against any executor.
    /// async fn record(db: &dyn Executor, what: &str) -> pgdbm::Result<u64> {
    ///     db.execute("INSERT INTO {{tables.events}} (what) VALUES ($1)", params![what]).await
    /// }
    ///
    /// let tx = todo.begin().await?;
    /// tx.execute("INSERT INTO {{tables.todos}} (title) VALUES ($1)", params!["write docs"]).await?;
    /// record(&tx.with_schema_of(&audit), "todo created").await?; // "audit".events
    /// tx.commit().await?; // both inserts, or neither
    /// # Ok(()) }
    /// ```
    pub fn with_schema_of(&self, db: &crate::Database) -> Transaction {
        Transaction {
            level: self.level.clone(),
            timeout: self.timeout,
            scope: Arc::new(Scope {
                templates: db.templates_arc().clone(),
                hooks: db.hooks().clone(),
            }),
        }
    }

    /// Bounds the rest of the transaction: `SET LOCAL statement_timeout` (so the server cancels
    /// any statement running longer than `limit`, until the transaction ends — also in
    /// savepoints, unless one is rolled back past this call), and a handle on this level whose
    /// calls are each bounded by `limit` client side as well, returning [`Error::Timeout`] past
    /// it (the statement is cancelled and the transaction can then only be rolled back, as
    /// after any failed statement). Streams ([`fetch`](Transaction::fetch)) are bounded by the
    /// server only.
    ///
    /// ```no_run
    /// # async fn demo(db: pgdbm::Database) -> pgdbm::Result<()> {
    /// use std::time::Duration;
    /// use pgdbm::prelude::*;
    /// let tx = db.begin().await?;
    /// let tx = tx.with_timeout(Duration::from_secs(2)).await?;
    /// tx.execute("UPDATE {{tables.accounts}} SET balance = 0 WHERE id = $1", params![1]).await?;
    /// tx.commit().await?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Transaction`] when this level is finished; the server's error.
    pub async fn with_timeout(&self, limit: Duration) -> Result<Transaction> {
        let bounded_handle = Transaction {
            level: self.level.clone(),
            scope: self.scope.clone(),
            timeout: Some(limit),
        };
        bounded_handle
            .batch_execute(&set_local_statement_timeout(limit))
            .await?;
        Ok(bounded_handle)
    }

    /// The client-side bound of this handle's calls, if any.
    pub fn timeout(&self) -> Option<Duration> {
        self.timeout
    }

    /// Nesting depth: 0 for the top level, 1 for a savepoint in it, and so on.
    pub fn depth(&self) -> u32 {
        self.level.depth
    }

    /// The schema templates expand to.
    pub fn schema(&self) -> Option<&str> {
        self.scope.templates.schema()
    }

    /// Locks the connection for one operation of this level, after checking the level is still
    /// open and undoing savepoints abandoned since the last operation.
    async fn lock(&self) -> Result<MutexGuard<'_, State>> {
        let mut state = self.level.shared.state.lock().await;
        if self.level.finished.load(Ordering::Acquire) || state.conn.is_none() {
            return Err(Error::Transaction(
                "the transaction has already been committed or rolled back".into(),
            ));
        }
        self.level.shared.undo_abandoned(&mut state).await?;
        if let Some(sp) = self.level.savepoint {
            if !state.open.contains(&sp) {
                return Err(Error::Transaction(
                    "this savepoint was already released or rolled back by an enclosing level"
                        .into(),
                ));
            }
        }
        Ok(state)
    }

    /// Starts a nested level (`SAVEPOINT`). Finish it with [`commit`](Transaction::commit)
    /// (`RELEASE`) or [`rollback`](Transaction::rollback) (`ROLLBACK TO`). The new handle expands
    /// with this handle's templates (on a handle from [`with_schema_of`](Transaction::with_schema_of),
    /// that other module's).
    ///
    /// # Errors
    ///
    /// [`Error::Transaction`] when this level is finished; the server's error.
    pub async fn begin(&self) -> Result<Transaction> {
        let shared = &self.level.shared;
        let mut state = self.lock().await?;
        let n = shared.next_savepoint.fetch_add(1, Ordering::Relaxed);
        let sql = format!("SAVEPOINT {}", savepoint_name(n));
        let span = transaction_span(&self.scope.hooks, self.schema(), Some(&self.level.span));
        let work = async {
            in_statement!(state, conn => self.control("SAVEPOINT", conn.batch_execute(&sql)))
        };
        if let Err(e) = in_span(&span, work).await {
            record_error(&span, &e);
            return Err(e);
        }
        state.open.push(n);
        Ok(Transaction {
            level: Arc::new(Level {
                shared: shared.clone(),
                savepoint: Some(n),
                depth: self.level.depth + 1,
                finished: AtomicBool::new(false),
                span,
            }),
            scope: self.scope.clone(),
            timeout: self.timeout,
        })
    }

    /// Runs `f` in a nested level (savepoint): released when `f` returns `Ok`, rolled back to
    /// when it returns `Err` or panics. The enclosing transaction goes on either way.
    ///
    /// # Errors
    ///
    /// The error `f` returned, or the error of `SAVEPOINT`/`RELEASE`.
    pub async fn transaction<T, E, F, Fut>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce(Transaction) -> Fut + Send,
        Fut: Future<Output = Result<T, E>> + Send,
        T: Send,
        E: From<Error> + Send,
    {
        let sp = self.begin().await?;
        sp.run(f).await
    }

    /// Runs `f` with a handle on this level, then commits it on `Ok` or rolls it back on `Err`
    /// or panic.
    pub(crate) async fn run<T, E, F, Fut>(self, f: F) -> Result<T, E>
    where
        F: FnOnce(Transaction) -> Fut + Send,
        Fut: Future<Output = Result<T, E>> + Send,
        T: Send,
        E: From<Error> + Send,
    {
        let outcome = AssertUnwindSafe(f(self.clone())).catch_unwind().await;
        match outcome {
            Ok(Ok(value)) => {
                self.commit().await?;
                Ok(value)
            }
            Ok(Err(err)) => {
                if let Err(rollback_err) = self.rollback().await {
                    tracing::warn!(error = %rollback_err, "rollback after a failed transaction body failed");
                }
                Err(err)
            }
            Err(panic) => {
                if let Err(rollback_err) = self.rollback().await {
                    tracing::warn!(error = %rollback_err, "rollback after a panic in a transaction body failed");
                }
                std::panic::resume_unwind(panic)
            }
        }
    }

    /// Commits this level: `COMMIT` for the top level (the connection returns to the pool),
    /// `RELEASE SAVEPOINT` for a nested one.
    ///
    /// A top-level transaction in which a statement failed (and was not rolled back to a
    /// savepoint) cannot commit: it is rolled back and an error says so.
    ///
    /// # Errors
    ///
    /// [`Error::Transaction`] when already finished or aborted by an earlier failure; the server's
    /// error (e.g. a serialization failure at commit, after which the work is rolled back).
    pub async fn commit(self) -> Result<()> {
        self.finish(true).await
    }

    /// Rolls this level back: `ROLLBACK` for the top level, `ROLLBACK TO SAVEPOINT` (and
    /// `RELEASE`) for a nested one.
    ///
    /// # Errors
    ///
    /// [`Error::Transaction`] when already finished; the server's error (the connection is then
    /// closed rather than reused).
    pub async fn rollback(self) -> Result<()> {
        self.finish(false).await
    }

    async fn finish(&self, commit: bool) -> Result<()> {
        let mut state = self.lock().await?;
        self.level.finished.store(true, Ordering::Release);
        match self.level.savepoint {
            None => {
                let aborted = state.failed;
                let sql = if commit && !aborted {
                    "COMMIT"
                } else {
                    "ROLLBACK"
                };
                // If this future is dropped before the server answers, the guard closes the
                // connection: its transaction may still be open, and closing ends it.
                let mut guard = DiscardGuard::new(state.conn.take().expect("checked by lock"));
                state.open.clear();
                let result = self
                    .in_level(self.control(sql, guard.conn().batch_execute(sql)))
                    .await;
                self.ended(
                    if sql == "COMMIT" {
                        "commit"
                    } else {
                        "rollback"
                    },
                    &result,
                );
                if result.is_ok() || sql == "COMMIT" {
                    // Ended, or a COMMIT the server refused (which ends the transaction too):
                    // reusable. A failed ROLLBACK leaves the session's state unknown: closed.
                    drop(guard.keep());
                }
                result?;
                if commit && aborted {
                    return Err(Error::Transaction(
                        "a statement in the transaction failed (or was cancelled before it finished), so it \
                         was rolled back instead of committed"
                            .into(),
                    ));
                }
                Ok(())
            }
            Some(sp) => {
                let name = savepoint_name(sp);
                let pos = state
                    .open
                    .iter()
                    .position(|&s| s == sp)
                    .expect("checked by lock");
                let (sql, recorded) = if commit {
                    (format!("RELEASE SAVEPOINT {name}"), "RELEASE SAVEPOINT")
                } else {
                    (
                        format!("ROLLBACK TO SAVEPOINT {name}; RELEASE SAVEPOINT {name}"),
                        "ROLLBACK TO SAVEPOINT",
                    )
                };
                let result = self
                    .in_level(async {
                        in_statement!(state, conn => self.control(recorded, conn.batch_execute(&sql)))
                    })
                    .await;
                self.ended(if commit { "commit" } else { "rollback" }, &result);
                state.open.truncate(pos);
                if result.is_ok() && !commit {
                    state.failed = false;
                }
                result
            }
        }
    }

    /// Runs `fut` inside this level's span (its statements' spans are children of it).
    async fn in_level<F: Future>(&self, fut: F) -> F::Output {
        in_span(&self.level.span, fut).await
    }

    /// Transaction control (`BEGIN`, `COMMIT`, `SAVEPOINT`…) sent as `fut`, recorded under the
    /// text `recorded` (without savepoint names) by the monitor, the span and the metrics.
    async fn control<F: Future<Output = Result<()>>>(&self, recorded: &str, fut: F) -> Result<()> {
        let hooks = &self.scope.hooks;
        observe(
            hooks,
            self.schema(),
            Operation::TransactionControl,
            recorded,
            &[],
            fut,
        )
        .await
    }

    /// Notes on the level's span how it ended.
    fn ended(&self, outcome: &'static str, result: &Result<()>) {
        let span = &self.level.span;
        if span.is_disabled() {
            return;
        }
        span.record("pgdbm.outcome", outcome);
        if let Err(e) = result {
            record_error(span, e);
        }
    }

    /// [`Executor::fetch`] inside the transaction: its rows as a stream read as they arrive. The
    /// transaction's connection is busy until the stream ends or is dropped (other calls on the
    /// transaction wait). Dropping it early cancels the statement, which aborts the transaction
    /// on the server as any failed statement does: it can then only be rolled back. (With a
    /// driver that keeps the connection after a cancel, tokio-postgres, streaming in a
    /// savepoint — [`begin`](Transaction::begin) — lets the transaction go on after an early
    /// drop; the sqlx driver closes the connection, which ends the transaction.)
    ///
    /// # Errors
    ///
    /// The stream yields the errors of [`Executor::fetch_all`], then ends.
    pub fn fetch<'a>(&'a self, sql: &str, params: Params<'a>) -> BoxStream<'a, Result<Row>> {
        let template = sql;
        let sql = self
            .scope
            .templates
            .expand(sql)
            .map(|expanded| expanded.to_string());
        let stream = row_stream(move |tx| async move {
            let sql = sql?;
            let mut state = self.lock().await?;
            let before = state.start_statement();
            let mut rows = state.conn().fetch(&sql, params);
            let mut result = Ok(());
            while let Some(row) = rows.next().await {
                match row {
                    Ok(row) => tx.send(row).await,
                    Err(e) => {
                        result = Err(e);
                        break;
                    }
                }
            }
            drop(rows);
            // Reached only when the statement ended (dropped earlier, the transaction stays
            // marked failed: its statement was cancelled).
            state.end_statement(before, result)
        });
        let _in_level = self.level.span.enter();
        observe_stream(&self.scope.hooks, self.schema(), template, params, stream)
    }

    /// [`fetch`](Transaction::fetch) with each row mapped onto `T`
    /// ([`FromRow`](crate::FromRow)) as it arrives.
    ///
    /// # Errors
    ///
    /// The stream yields the errors of [`Transaction::fetch`] and of `FromRow::from_row`.
    pub fn fetch_as<'a, T: crate::FromRow + Send + 'a>(
        &'a self,
        sql: &str,
        params: Params<'a>,
    ) -> BoxStream<'a, Result<T>> {
        crate::ExecutorExt::fetch_as(self, sql, params)
    }

    /// Bulk-loads rows into `table` (qualified with the schema) with `COPY … FROM STDIN`, inside
    /// this transaction.
    ///
    /// # Errors
    ///
    /// As [`Database::copy_in`](crate::Database::copy_in).
    pub async fn copy_in(&self, table: &str, columns: &[&str], rows: &[Vec<Value>]) -> Result<u64> {
        let (target, quoted) = copy_target(&self.scope.templates, table, columns)?;
        let cols: Vec<&str> = quoted.iter().map(String::as_str).collect();
        let work = bounded(self.timeout, &target, async {
            let mut state = self.lock().await?;
            in_statement!(state, conn => conn.copy_in(&target, &cols, rows))
        });
        self.in_level(observe_copy(
            &self.scope.hooks,
            self.schema(),
            &target,
            &cols,
            work,
        ))
        .await
    }
}

/// Runs `fut` inside `span` (a disabled span costs one branch).
async fn in_span<F: Future>(span: &tracing::Span, fut: F) -> F::Output {
    if span.is_disabled() {
        fut.await
    } else {
        tracing::Instrument::instrument(fut, span.clone()).await
    }
}

impl State {
    fn conn(&self) -> &PooledConnection {
        self.conn.as_ref().expect("checked by Transaction::lock")
    }

    /// Marks a statement as running, returning what [`State::end_statement`] needs. Until it
    /// ends the transaction counts as failed: when the statement's future is dropped, nobody
    /// knows whether it took effect or aborted the transaction on the server, so the transaction
    /// can no longer commit (it is rolled back, or rolled back to an enclosing savepoint).
    fn start_statement(&mut self) -> bool {
        std::mem::replace(&mut self.failed, true)
    }

    /// Ends the statement begun with [`State::start_statement`] (which returned `before`),
    /// passing `result` through and noting a failure (which aborts the transaction on the
    /// server).
    fn end_statement<T>(&mut self, before: bool, result: Result<T>) -> Result<T> {
        self.failed = before || result.is_err();
        result
    }
}

impl Shared {
    /// Rolls back to the outermost savepoint whose handles were dropped unfinished.
    async fn undo_abandoned(&self, state: &mut State) -> Result<()> {
        let abandoned =
            std::mem::take(&mut *self.abandoned.lock().unwrap_or_else(|p| p.into_inner()));
        let Some(pos) = state.open.iter().position(|sp| abandoned.contains(sp)) else {
            return Ok(());
        };
        let name = savepoint_name(state.open[pos]);
        let sql = format!("ROLLBACK TO SAVEPOINT {name}; RELEASE SAVEPOINT {name}");
        in_statement!(state, conn => conn.batch_execute(&sql))?;
        state.open.truncate(pos);
        state.failed = false;
        Ok(())
    }
}

impl Drop for Level {
    fn drop(&mut self) {
        if *self.finished.get_mut() {
            return;
        }
        if !self.span.is_disabled() {
            self.span.record("pgdbm.outcome", "abandoned");
        }
        if let Some(sp) = self.savepoint {
            self.shared
                .abandoned
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(sp);
        }
        // The top level is rolled back when the last handle on the connection goes (Shared::drop).
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        let Some(conn) = self.state.get_mut().conn.take() else {
            return;
        };
        let mut guard = DiscardGuard::new(conn);
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => {
                handle.spawn(async move {
                    if guard.conn().batch_execute("ROLLBACK").await.is_ok() {
                        // Clean again: give it back to the pool instead of discarding it.
                        drop(guard.keep());
                    }
                });
            }
            // No runtime to roll back on: the guard closes the connection, which ends it.
            Err(_) => drop(guard),
        }
    }
}

#[async_trait]
impl Executor for Transaction {
    async fn execute(&self, sql: &str, params: Params<'_>) -> Result<u64> {
        let work = bounded(self.timeout, sql, async {
            let sql = self.scope.templates.expand(sql)?;
            let mut state = self.lock().await?;
            in_statement!(state, conn => conn.execute(&sql, params))
        });
        let hooks = &self.scope.hooks;
        self.in_level(observe(
            hooks,
            self.schema(),
            Operation::Execute,
            sql,
            params,
            work,
        ))
        .await
    }

    async fn fetch_all(&self, sql: &str, params: Params<'_>) -> Result<Vec<Row>> {
        let work = bounded(self.timeout, sql, async {
            let sql = self.scope.templates.expand(sql)?;
            let mut state = self.lock().await?;
            in_statement!(state, conn => conn.fetch_all(&sql, params))
        });
        let hooks = &self.scope.hooks;
        self.in_level(observe(
            hooks,
            self.schema(),
            Operation::FetchAll,
            sql,
            params,
            work,
        ))
        .await
    }

    async fn fetch_optional(&self, sql: &str, params: Params<'_>) -> Result<Option<Row>> {
        let work = bounded(self.timeout, sql, async {
            let sql = self.scope.templates.expand(sql)?;
            let mut state = self.lock().await?;
            in_statement!(state, conn => conn.fetch_optional(&sql, params))
        });
        let hooks = &self.scope.hooks;
        self.in_level(observe(
            hooks,
            self.schema(),
            Operation::FetchOptional,
            sql,
            params,
            work,
        ))
        .await
    }

    async fn batch_execute(&self, sql: &str) -> Result<()> {
        let work = bounded(self.timeout, sql, async {
            let sql = self.scope.templates.expand(sql)?;
            let mut state = self.lock().await?;
            in_statement!(state, conn => conn.batch_execute(&sql))
        });
        let hooks = &self.scope.hooks;
        self.in_level(observe(
            hooks,
            self.schema(),
            Operation::BatchExecute,
            sql,
            &[],
            work,
        ))
        .await
    }

    fn schema(&self) -> Option<&str> {
        Transaction::schema(self)
    }

    fn fetch<'a>(&'a self, sql: &str, params: Params<'a>) -> BoxStream<'a, Result<Row>> {
        Transaction::fetch(self, sql, params)
    }
}
