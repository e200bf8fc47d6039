//! [`Database`]: a schema-scoped handle on an owned or shared pool.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures_util::stream::BoxStream;

use crate::config::DatabaseConfig;
use crate::driver::{DiscardGuard, Driver, PoolStats, PooledConnection, SharedPool};
use crate::error::{Error, ErrorKind, Result};
use crate::executor::{Executor, ExecutorExt, required_row};
use crate::from_row::FromRow;
use crate::monitor::{Hooks, Operation, Peer, observe, observe_copy, observe_stream};
use crate::row::Row;
use crate::template::{Templates, quote_identifier, validate_identifier};
use crate::timeout::bounded;
use crate::transaction::Transaction;
use crate::value::{FromValue, Params, ToParam, Value};

/// A handle to the database, scoped to one schema (or none).
///
/// Every SQL text it runs goes through its [`Templates`] first: `{{tables.users}}` becomes
/// `"my_schema".users`. Cloning is cheap and shares the pool, the schema and the template cache.
///
/// * **Owned** ([`Database::connect`]): the handle opened its pool; [`close`](Database::close)
///   closes it.
/// * **Shared** ([`Database::new`]): many handles, one per module and schema, share one pool;
///   `close` on such a handle leaves the pool open.
///
/// Isolation comes from templates, so schema scoping needs no session state: a handle never
/// changes its connections' `search_path`. A pool opened from a config with a schema gives its
/// connections `search_path = "<schema>", public` once, when they open (pgdbm for Python's
/// behaviour, [`DatabaseConfigBuilder::search_path_to_schema`](crate::DatabaseConfigBuilder::search_path_to_schema)),
/// so unqualified names also work there; a shared pool may pin one instead
/// ([`DatabaseConfigBuilder::pin_search_path`](crate::DatabaseConfigBuilder::pin_search_path)).
#[derive(Clone)]
pub struct Database {
    inner: Arc<Inner>,
}

struct Inner {
    pool: SharedPool,
    owned: bool,
    templates: Arc<Templates>,
    /// Monitor, slow threshold and database name for spans (`Default`: not monitored).
    hooks: Hooks,
    /// The per-call bound of [`Database::with_timeout`] (`None`: only the configured ones).
    timeout: Option<Duration>,
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Database")
            .field("schema", &self.schema())
            .field("owned", &self.inner.owned)
            .field("driver", &self.inner.pool.driver_name())
            .finish()
    }
}

impl Database {
    /// Opens a pool with driver `D` and returns a handle that owns it, scoped to the config's schema.
    ///
    /// # Errors
    ///
    /// [`Error::Connect`] when the server cannot be reached (after the configured retries), with the
    /// real cause; [`Error::Identifier`] for an invalid schema name.
    pub async fn connect<D: Driver>(config: &DatabaseConfig) -> Result<Self> {
        let templates = Templates::new(config.schema())?;
        let pool = D::connect(config).await?;
        let hooks = Hooks {
            peer: Some(Arc::new(Peer::of(config))),
            ..Hooks::default()
        };
        Ok(Self::build(Arc::new(pool), true, templates, hooks))
    }

    /// A handle on a shared pool, scoped to `schema`. Closing it does not close the pool.
    ///
    /// # Errors
    ///
    /// [`Error::Identifier`] when `schema` is not a valid identifier.
    pub fn new(pool: SharedPool, schema: Option<&str>) -> Result<Self> {
        Ok(Self::build(
            pool,
            false,
            Templates::new(schema)?,
            Hooks::default(),
        ))
    }

    /// A handle that owns `pool` (closes it on [`close`](Database::close)), scoped to `schema`.
    ///
    /// # Errors
    ///
    /// [`Error::Identifier`] when `schema` is not a valid identifier.
    pub fn owning(pool: SharedPool, schema: Option<&str>) -> Result<Self> {
        Ok(Self::build(
            pool,
            true,
            Templates::new(schema)?,
            Hooks::default(),
        ))
    }

    /// The one constructor: everything a handle carries, hooks included, is fixed here (a shared
    /// `Inner` cannot be changed afterwards). The per-call bound starts as the pool's configured
    /// `command_timeout`.
    fn build(pool: SharedPool, owned: bool, templates: Templates, hooks: Hooks) -> Self {
        let timeout = pool.pooler().command_timeout();
        Database {
            inner: Arc::new(Inner {
                pool,
                owned,
                templates: Arc::new(templates),
                hooks,
                timeout,
            }),
        }
    }

    /// The per-statement hooks (monitor, span data) of this handle.
    pub(crate) fn hooks(&self) -> &Hooks {
        &self.inner.hooks
    }

    /// The shared template expander of this handle (for transaction handles scoped to it).
    pub(crate) fn templates_arc(&self) -> &Arc<Templates> {
        &self.inner.templates
    }

    /// Another handle on the same pool, ownership, templates and bound, with other hooks.
    pub(crate) fn with_hooks(&self, hooks: Hooks) -> Database {
        Database {
            inner: Arc::new(Inner {
                pool: self.inner.pool.clone(),
                owned: self.inner.owned,
                templates: self.inner.templates.clone(),
                hooks,
                timeout: self.inner.timeout,
            }),
        }
    }

    /// Another handle on the same pool, schema, monitor and ownership whose calls are each
    /// bounded by `limit` (instead of the configured
    /// [`command_timeout`](crate::DatabaseConfigBuilder::command_timeout), if any), client side: past it, the call's future is dropped — which cancels
    /// its statement on the server and leaves the connection clean — and it returns
    /// [`Error::Timeout`] ([`Error::kind`] is [`ErrorKind::QueryCanceled`]). The bound covers
    /// the whole call, waiting for a connection included.
    ///
    /// Transactions begun through the handle ([`begin`](Database::begin),
    /// [`transaction`](Database::transaction)) carry the bound: `BEGIN` sets `SET LOCAL
    /// statement_timeout` to it, so the server bounds each statement too, and each call in the
    /// transaction is bounded by the client as well. Streams ([`fetch`](Database::fetch)) are
    /// paced by their consumer and are not bounded by the client. See
    /// [the crate docs' "Timeouts"](crate#timeouts).
    ///
    /// ```no_run
    /// # async fn demo(db: pgdbm::Database) -> pgdbm::Result<()> {
    /// use std::time::Duration;
    /// use pgdbm::prelude::*;
    /// let quick = db.with_timeout(Duration::from_millis(200));
    /// match quick.fetch_value::<i64>("SELECT count(*) FROM {{tables.events}}", &[]).await {
    ///     Err(e) if e.is_timeout() => println!("gave up after 200 ms; the server stopped too"),
    ///     other => println!("{:?}", other?),
    /// }
    /// # Ok(()) }
    /// ```
    pub fn with_timeout(&self, limit: Duration) -> Database {
        Database {
            inner: Arc::new(Inner {
                pool: self.inner.pool.clone(),
                owned: self.inner.owned,
                templates: self.inner.templates.clone(),
                hooks: self.inner.hooks.clone(),
                timeout: Some(limit),
            }),
        }
    }

    /// The per-call bound of this handle ([`with_timeout`](Database::with_timeout)), or else the
    /// pool's configured
    /// [`command_timeout`](crate::DatabaseConfigBuilder::command_timeout), if any.
    pub fn timeout(&self) -> Option<Duration> {
        self.inner.timeout
    }

    /// Another handle on the same pool, scoped to `schema`. It never owns the pool; it keeps
    /// this handle's monitor, if any.
    ///
    /// # Errors
    ///
    /// [`Error::Identifier`] when `schema` is not a valid identifier.
    pub fn with_schema(&self, schema: Option<&str>) -> Result<Self> {
        Ok(Self::build(
            self.inner.pool.clone(),
            false,
            Templates::new(schema)?,
            self.inner.hooks.clone(),
        ))
    }

    /// The schema of this handle.
    pub fn schema(&self) -> Option<&str> {
        self.inner.templates.schema()
    }

    /// The pool behind this handle.
    pub fn pool(&self) -> &SharedPool {
        &self.inner.pool
    }

    /// `true` when this handle owns its pool.
    pub fn owns_pool(&self) -> bool {
        self.inner.owned
    }

    /// The template expander of this handle.
    pub fn templates(&self) -> &Templates {
        &self.inner.templates
    }

    /// A snapshot of the pool's counters.
    pub fn pool_stats(&self) -> PoolStats {
        self.inner.pool.stats()
    }

    /// The SQL this handle would send for `sql`: `{{tables.…}}`/`{{schema}}` placeholders expanded
    /// for its schema (nothing is prepared or sent). Formerly `prepare_sql`.
    ///
    /// # Errors
    ///
    /// [`Error::Template`] for a malformed placeholder.
    pub fn expand_sql(&self, sql: &str) -> Result<String> {
        Ok(self.inner.templates.expand(sql)?.to_string())
    }

    /// Closes the pool if this handle owns it; a shared handle leaves the pool open.
    pub async fn close(&self) {
        if self.inner.owned {
            self.inner.pool.close().await;
        }
    }

    /// Checks a connection out of the pool (for work this API does not cover).
    ///
    /// # Errors
    ///
    /// [`Error::PoolTimeout`] or [`Error::PoolClosed`].
    pub async fn acquire(&self) -> Result<PooledConnection> {
        self.inner.pool.acquire().await
    }

    /// Starts a transaction on a connection of its own. Commit it with
    /// [`Transaction::commit`]; dropping it uncommitted rolls it back. A handle with a bound
    /// ([`with_timeout`](Database::with_timeout)) begins a bounded transaction.
    ///
    /// # Errors
    ///
    /// [`Error::PoolTimeout`]/[`Error::PoolClosed`] when no connection can be had, or the error of
    /// `BEGIN`; [`Error::Timeout`] past the handle's bound.
    pub async fn begin(&self) -> Result<Transaction> {
        let inner = &*self.inner;
        bounded(inner.timeout, "BEGIN", async {
            let conn = inner.pool.acquire().await?;
            Transaction::begin_on(
                conn,
                inner.templates.clone(),
                inner.hooks.clone(),
                inner.timeout,
                inner.pool.pooler().transaction_prelude(),
            )
            .await
        })
        .await
    }

    /// A handle on `tx`'s transaction (same connection, same level) that expands templates with
    /// this handle's schema and records with this handle's monitor: this module's SQL, inside a
    /// transaction another module began. The same as
    /// [`tx.with_schema_of(self)`](Transaction::with_schema_of), which documents how the handles
    /// of one level share it (commit with the handle that began it).
    ///
    /// ```no_run
    /// # async fn demo(todo: pgdbm::Database, audit: pgdbm::Database) -> pgdbm::Result<()> {
    /// use pgdbm::prelude::*;
    /// todo.transaction(|tx| async move {
    ///     tx.execute("INSERT INTO {{tables.todos}} (title) VALUES ($1)", params!["ship"]).await?;
    ///     audit
    ///         .in_transaction(&tx) // {{tables.events}} → "audit".events, on tx's connection
    ///         .execute("INSERT INTO {{tables.events}} (what) VALUES ($1)", params!["todo created"])
    ///         .await?;
    ///     Ok::<_, pgdbm::Error>(())
    /// })
    /// .await?; // committed together
    /// # Ok(()) }
    /// ```
    pub fn in_transaction(&self, tx: &Transaction) -> Transaction {
        tx.with_schema_of(self)
    }

    /// Runs `f` in a transaction: committed when `f` returns `Ok`, rolled back when it returns
    /// `Err` or panics (the panic then continues). The connection goes back to the pool clean.
    ///
    /// ```no_run
    /// # async fn demo(db: pgdbm::Database) -> pgdbm::Result<()> {
    /// use pgdbm::prelude::*;
    /// let id: i64 = db
    ///     .transaction(|tx| async move {
    ///         let id = tx
    ///             .fetch_value::<i64>("INSERT INTO {{tables.users}} (name) VALUES ($1) RETURNING id", params!["ann"])
    ///             .await?;
    ///         tx.execute("INSERT INTO {{tables.audit}} (user_id) VALUES ($1)", params![id]).await?;
    ///         Ok::<_, pgdbm::Error>(id)
    ///     })
    ///     .await?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// The error `f` returned (after the rollback), or the error of `BEGIN`/`COMMIT`.
    pub async fn transaction<T, E, F, Fut>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce(Transaction) -> Fut + Send,
        Fut: Future<Output = Result<T, E>> + Send,
        T: Send,
        E: From<Error> + Send,
    {
        let tx = self.begin().await?;
        tx.run(f).await
    }

    /// Runs `sql` once per parameter set inside one transaction of its own: all sets apply or
    /// none does. Returns the total rows affected.
    ///
    /// [`ExecutorExt::execute_each`] is the plain loop on any executor (not atomic on a pool;
    /// inside a [`Transaction`], that transaction makes it all-or-nothing).
    ///
    /// # Errors
    ///
    /// The first failing execution's error; nothing is applied then.
    pub async fn execute_many(&self, sql: &str, param_sets: &[&[&dyn ToParam]]) -> Result<u64> {
        // One span for the batch (`BATCH INSERT todos`, `db.operation.batch.size`), the parent
        // of the transaction and its statements.
        let span = crate::monitor::query_span(
            self.hooks(),
            self.schema(),
            Operation::Execute,
            sql,
            Some(param_sets.len()),
        );
        let work = async {
            let tx = self.begin().await?;
            let total = ExecutorExt::execute_each(&tx, sql, param_sets).await?;
            tx.commit().await?;
            Ok(total)
        };
        if span.is_disabled() {
            return work.await;
        }
        let result = tracing::Instrument::instrument(work, span.clone()).await;
        if let Err(e) = &result {
            crate::monitor::record_error(&span, e);
        }
        result
    }

    /// Creates this handle's schema if it does not exist (a no-op without schema).
    ///
    /// # Errors
    ///
    /// The server's error (e.g. missing `CREATE` privilege).
    pub async fn ensure_schema(&self) -> Result<()> {
        let Some(schema) = self.schema() else {
            return Ok(());
        };
        let sql = format!("CREATE SCHEMA IF NOT EXISTS {}", quote_identifier(schema));
        match self.inner.pool.batch_execute(&sql).await {
            // Two sessions creating the same schema at once race on the catalog's unique index.
            Err(e) if e.kind() == Some(ErrorKind::UniqueViolation) || e.code() == Some("42P06") => {
                Ok(())
            }
            other => other,
        }
    }

    /// `true` when the table (or view) that `{{tables.<table>}}` names exists: in this handle's
    /// schema, or found on the `search_path` without one. `table` may also be written
    /// `schema.table`. Names resolve as in the expanded SQL: unquoted, so `MixedCase` is the table
    /// `mixedcase` that `CREATE TABLE {{tables.MixedCase}}` made.
    ///
    /// # Errors
    ///
    /// [`Error::Identifier`] for an invalid name; query errors.
    pub async fn table_exists(&self, table: &str) -> Result<bool> {
        // The name `{{tables.<table>}}` expands to, resolved by the server as that SQL would
        // resolve it: an unquoted `MixedCase` is the table `mixedcase`.
        let qualified = self.inner.templates.qualify(table)?;
        self.inner
            .pool
            .fetch_value::<bool>(
                "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_class \
                 WHERE oid = pg_catalog.to_regclass($1) \
                 AND relkind IN ('r', 'p', 'v', 'm', 'f'))",
                crate::params![qualified],
            )
            .await
    }

    /// Bulk-loads rows into `table` (qualified with this handle's schema) with `COPY … FROM STDIN`
    /// in binary format. Returns the number of rows written; on error nothing is written.
    ///
    /// # Errors
    ///
    /// [`Error::Identifier`] for invalid table or column names, [`Error::Encode`] when a value
    /// does not fit its column, server errors.
    pub async fn copy_in(&self, table: &str, columns: &[&str], rows: &[Vec<Value>]) -> Result<u64> {
        let (target, quoted) = copy_target(&self.inner.templates, table, columns)?;
        let cols: Vec<&str> = quoted.iter().map(String::as_str).collect();
        let work = bounded(self.inner.timeout, &target, async {
            let conn = self.inner.pool.acquire().await?;
            let pooler = self.inner.pool.pooler();
            if !pooler.is_transaction() {
                return conn.copy_in(&target, &cols, rows).await;
            }
            // Behind a transaction pooler a COPY is more than one exchange (the column types are
            // learned first): all of it in one transaction, so one server connection runs it.
            // Until that transaction has ended, a dropped future closes the connection.
            let mut guard = DiscardGuard::new(conn);
            let begin = match pooler.transaction_prelude() {
                Some(prelude) => format!("BEGIN; {prelude}"),
                None => "BEGIN".to_owned(),
            };
            guard.conn().batch_execute(&begin).await?;
            let copied = guard.conn().copy_in(&target, &cols, rows).await;
            let end = if copied.is_ok() { "COMMIT" } else { "ROLLBACK" };
            let ended = guard.conn().batch_execute(end).await;
            if ended.is_ok() || end == "COMMIT" {
                drop(guard.keep());
            }
            let n = copied?;
            ended?;
            Ok(n)
        });
        observe_copy(&self.inner.hooks, self.schema(), &target, &cols, work).await
    }
}

/// The target of a `copy_in`: `table` qualified with the handle's schema, and the quoted columns.
pub(crate) fn copy_target(
    templates: &Templates,
    table: &str,
    columns: &[&str],
) -> Result<(String, Vec<String>)> {
    let target = templates.qualify(table)?;
    let quoted = columns
        .iter()
        .map(|c| validate_identifier("column", c).map(|()| quote_identifier(c)))
        .collect::<Result<_>>()?;
    Ok((target, quoted))
}

/// The hot path, unboxed: calling these on a `Database` puts their future inline in the caller's
/// (the [`Executor`] and [`ExecutorExt`] methods box theirs, one allocation each). They behave
/// exactly as the trait methods of the same names.
impl Database {
    /// [`Executor::execute`]: runs a statement and returns the number of rows it affected.
    ///
    /// # Errors
    ///
    /// As [`Executor::execute`].
    pub async fn execute(&self, sql: &str, params: Params<'_>) -> Result<u64> {
        let inner = &*self.inner;
        let work = async {
            let sql = inner.templates.expand(sql)?;
            bounded(inner.timeout, &sql, (*inner.pool).execute(&sql, params)).await
        };
        observe(
            &inner.hooks,
            self.schema(),
            Operation::Execute,
            sql,
            params,
            work,
        )
        .await
    }

    /// [`Executor::fetch_all`]: runs a statement and returns all its rows.
    ///
    /// # Errors
    ///
    /// As [`Executor::fetch_all`].
    pub async fn fetch_all(&self, sql: &str, params: Params<'_>) -> Result<Vec<Row>> {
        let inner = &*self.inner;
        let work = async {
            let sql = inner.templates.expand(sql)?;
            bounded(inner.timeout, &sql, (*inner.pool).fetch_all(&sql, params)).await
        };
        observe(
            &inner.hooks,
            self.schema(),
            Operation::FetchAll,
            sql,
            params,
            work,
        )
        .await
    }

    /// [`Executor::fetch_optional`]: runs a statement and returns its first row, if any.
    ///
    /// # Errors
    ///
    /// As [`Executor::fetch_optional`].
    pub async fn fetch_optional(&self, sql: &str, params: Params<'_>) -> Result<Option<Row>> {
        let inner = &*self.inner;
        let work = async {
            let sql = inner.templates.expand(sql)?;
            bounded(
                inner.timeout,
                &sql,
                (*inner.pool).fetch_optional(&sql, params),
            )
            .await
        };
        observe(
            &inner.hooks,
            self.schema(),
            Operation::FetchOptional,
            sql,
            params,
            work,
        )
        .await
    }

    /// [`Executor::batch_execute`]: runs a script without parameters.
    ///
    /// # Errors
    ///
    /// As [`Executor::batch_execute`].
    pub async fn batch_execute(&self, sql: &str) -> Result<()> {
        let inner = &*self.inner;
        let work = async {
            let sql = inner.templates.expand(sql)?;
            bounded(inner.timeout, &sql, (*inner.pool).batch_execute(&sql)).await
        };
        observe(
            &inner.hooks,
            self.schema(),
            Operation::BatchExecute,
            sql,
            &[],
            work,
        )
        .await
    }

    /// [`Executor::fetch`]: runs a statement and returns its rows as a stream read as they
    /// arrive (bounded client memory); dropping it early cancels the rest of the statement and
    /// returns the connection clean. Recorded by the monitor and the `pgdbm.query` span (timed
    /// until the stream ends or is dropped).
    ///
    /// ```no_run
    /// # async fn demo(db: pgdbm::Database) -> pgdbm::Result<()> {
    /// use futures_util::TryStreamExt;
    /// let since = 1_000_i64;
    /// let p = pgdbm::params![since];
    /// let mut rows = db.fetch("SELECT id, body FROM {{tables.events}} WHERE id > $1 ORDER BY id", p);
    /// let mut total = 0usize;
    /// while let Some(row) = rows.try_next().await? {
    ///     total += row.get::<String>("body")?.len();
    /// }
    /// # let _ = total;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// The stream yields the errors of [`Database::fetch_all`], then ends.
    pub fn fetch<'a>(&'a self, sql: &str, params: Params<'a>) -> BoxStream<'a, Result<Row>> {
        let inner = &*self.inner;
        let stream = match inner.templates.expand(sql) {
            Ok(expanded) => inner.pool.fetch(&expanded, params),
            Err(e) => Box::pin(futures_util::stream::once(std::future::ready(Err(e)))),
        };
        observe_stream(&inner.hooks, self.schema(), sql, params, stream)
    }

    /// [`ExecutorExt::fetch_as`]: [`fetch`](Database::fetch) with each row mapped onto `T`
    /// ([`FromRow`]) as it arrives.
    ///
    /// # Errors
    ///
    /// The stream yields the errors of [`Database::fetch`] and of [`FromRow::from_row`].
    pub fn fetch_as<'a, T: FromRow + Send + 'a>(
        &'a self,
        sql: &str,
        params: Params<'a>,
    ) -> BoxStream<'a, Result<T>> {
        ExecutorExt::fetch_as(self, sql, params)
    }

    /// [`ExecutorExt::fetch_one`]: runs a statement and returns its first row.
    ///
    /// # Errors
    ///
    /// [`Error::RowNotFound`] when there is no row; otherwise as [`Database::fetch_optional`].
    pub async fn fetch_one(&self, sql: &str, params: Params<'_>) -> Result<Row> {
        required_row(Database::fetch_optional(self, sql, params).await?, sql)
    }

    /// [`ExecutorExt::fetch_value`]: the first column of the first row as `T` (`Option<T>` to
    /// accept `NULL`).
    ///
    /// # Errors
    ///
    /// [`Error::RowNotFound`] when there is no row, [`Error::Decode`] when the value does not fit
    /// `T`; otherwise as [`Database::fetch_optional`].
    pub async fn fetch_value<T: FromValue>(&self, sql: &str, params: Params<'_>) -> Result<T> {
        required_row(Database::fetch_optional(self, sql, params).await?, sql)?.get::<T>(0)
    }
}

#[async_trait]
impl Executor for Database {
    async fn execute(&self, sql: &str, params: Params<'_>) -> Result<u64> {
        Database::execute(self, sql, params).await
    }

    async fn fetch_all(&self, sql: &str, params: Params<'_>) -> Result<Vec<Row>> {
        Database::fetch_all(self, sql, params).await
    }

    async fn fetch_optional(&self, sql: &str, params: Params<'_>) -> Result<Option<Row>> {
        Database::fetch_optional(self, sql, params).await
    }

    async fn batch_execute(&self, sql: &str) -> Result<()> {
        Database::batch_execute(self, sql).await
    }

    fn schema(&self) -> Option<&str> {
        Database::schema(self)
    }

    fn fetch<'a>(&'a self, sql: &str, params: Params<'a>) -> BoxStream<'a, Result<Row>> {
        Database::fetch(self, sql, params)
    }
}
