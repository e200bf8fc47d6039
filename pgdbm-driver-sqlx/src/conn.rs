//! Running statements on one sqlx connection, and the pooled connection handed to the core.

use std::sync::Arc;

use async_trait::async_trait;
use pgdbm::driver::check_row_width;
use pgdbm::driver::copy::{BINARY_HEADER, BINARY_TRAILER};
use pgdbm::driver::front_cache::FrontCache;
use pgdbm::{
    Column, Columns, Connection, CopyStatements, Error, Executor, Params, Result, Row, Value,
    truncate_sql,
};
use sqlx::ValueRef as _;
use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;
use sqlx::pool::PoolConnection;
use sqlx::postgres::types::Oid;
use sqlx::postgres::{PgArgumentBuffer, PgArguments, PgConnection, PgRow, PgTypeInfo, Postgres};
use sqlx::{Arguments as _, Column as _, Either, Executor as _, Row as _, Statement as _};

use crate::error::map;
use crate::statements::{Learned, StatementTypes, schema_may_have_changed};
use crate::types::{self, Reader, Ty};

/// A pgdbm value bound as exactly the type the statement declares for its parameter.
struct Bind<'a> {
    value: &'a Value,
    ty: &'a PgTypeInfo,
    /// `types::classify(ty)`.
    kind: Ty,
}

impl sqlx::Type<Postgres> for Bind<'_> {
    fn type_info() -> PgTypeInfo {
        <String as sqlx::Type<Postgres>>::type_info()
    }
}

impl sqlx::Encode<'_, Postgres> for Bind<'_> {
    fn encode_by_ref(&self, buf: &mut PgArgumentBuffer) -> Result<IsNull, BoxDynError> {
        match types::encode_as(self.value, self.ty, self.kind, buf) {
            Ok(true) => Ok(IsNull::Yes),
            Ok(false) => Ok(IsNull::No),
            Err(message) => Err(message.into()),
        }
    }

    fn produces(&self) -> Option<PgTypeInfo> {
        Some(self.ty.clone())
    }
}

/// A statement ready to run: the text to send (the SQL and its tag, see [`crate::statements`])
/// and its arguments, each converted to its parameter's type.
struct Bound {
    learned: Arc<Learned>,
    args: PgArguments,
}

/// Converts `params` to the parameter types of `sql`, learning them first (one round trip, on
/// this connection) when the pool does not know them yet.
///
/// When a value does not fit a type the pool learned earlier, the schema may have changed since
/// (a column's type altered): the types are learned again (at most once a second per SQL text),
/// and if they differ the new ones replace the old and are used. A value that does not fit the
/// current types is the caller's [`Error::Encode`].
async fn bind(
    conn: &mut PgConnection,
    cache: &StatementTypes,
    sql: &str,
    params: Params<'_>,
) -> Result<Bound> {
    let (learned, fresh) = match cache.get(sql) {
        Some(learned) => (learned, false),
        None => {
            let learned = learn(conn, sql).await?;
            cache.insert(sql, Arc::clone(&learned));
            (learned, true)
        }
    };
    match arguments(&learned, sql, params) {
        Ok(args) => Ok(Bound { learned, args }),
        Err(err @ Error::Encode { .. }) if !fresh && learned.claim_recheck() => {
            let again = learn(conn, sql).await?;
            if again.types == learned.types {
                return Err(err);
            }
            cache.replace(sql, &learned, Arc::clone(&again));
            let args = arguments(&again, sql, params)?;
            Ok(Bound {
                learned: again,
                args,
            })
        }
        Err(err) => Err(err),
    }
}

/// Prepares `sql` under a new tag on this connection, which tells its parameter types.
async fn learn(conn: &mut PgConnection, sql: &str) -> Result<Arc<Learned>> {
    let tagged = Learned::tag(sql);
    let stmt = conn.prepare(&tagged).await.map_err(|e| map(e, sql))?;
    let types: Box<[PgTypeInfo]> = match stmt.parameters() {
        Some(Either::Left(types)) => types.into(),
        _ => Box::new([]),
    };
    drop(stmt);
    Ok(Arc::new(Learned::new(tagged, types)))
}

/// Every parameter converted to its type.
fn arguments(learned: &Learned, sql: &str, params: Params<'_>) -> Result<PgArguments> {
    let types = &learned.types;
    if types.len() != params.len() {
        return Err(Error::ParameterCount {
            expected: types.len(),
            actual: params.len(),
            sql: truncate_sql(sql),
        });
    }
    let mut args = PgArguments::default();
    args.reserve(params.len(), params.len() * 8);
    for (i, (param, (ty, &kind))) in params
        .iter()
        .zip(types.iter().zip(learned.kinds.iter()))
        .enumerate()
    {
        let value = param.to_param();
        args.add(Bind {
            value: &value,
            ty,
            kind,
        })
        .map_err(|e| Error::Encode {
            index: i + 1,
            message: e.to_string(),
        })?;
    }
    Ok(args)
}

/// The error of a bound statement's execution, the parameters' values hidden in its text. When a
/// changed schema may explain it, the learned types of `sql` are forgotten, so the next execution
/// learns them again.
fn run_error(
    cache: &StatementTypes,
    sql: &str,
    params: Params<'_>,
    learned: &Arc<Learned>,
    err: sqlx::Error,
) -> Error {
    if let sqlx::Error::Database(db) = &err {
        if db.code().is_some_and(|code| schema_may_have_changed(&code)) {
            cache.forget(sql, learned);
        }
    }
    map(err, sql).redact_params(params)
}

/// The pgdbm column list of a result.
fn columns(row: &PgRow) -> Columns {
    row.columns()
        .iter()
        .map(|c| Column::new(c.name(), types::type_name(c.type_info())))
        .collect::<Vec<_>>()
        .into()
}

/// The decoding plan of a result whose columns are all of built-in types: its pgdbm columns and
/// one reader per column, all derived from the columns' names and type OIDs only.
struct Shape {
    cols: Columns,
    oids: Vec<Oid>,
    readers: Vec<Reader>,
}

impl Shape {
    /// The plan for `row`'s columns, or `None` when some column is not of a built-in type or has
    /// no reader (the row-by-row path then handles it exactly as before).
    fn build(row: &PgRow) -> Option<Shape> {
        let oids = row
            .columns()
            .iter()
            .map(|c| {
                let ti = c.type_info();
                ti.oid().filter(|_| types::is_builtin(ti))
            })
            .collect::<Option<Vec<_>>>()?;
        let readers = row
            .columns()
            .iter()
            .map(|c| types::reader(c.type_info(), c.name()).ok())
            .collect::<Option<Vec<_>>>()?;
        Some(Shape {
            cols: columns(row),
            oids,
            readers,
        })
    }

    /// `true` when `row` has exactly these column names and type OIDs (so this plan is the one
    /// [`Shape::build`] would make for it).
    fn matches(&self, row: &PgRow) -> bool {
        let cols = row.columns();
        cols.len() == self.cols.len()
            && cols
                .iter()
                .zip(self.cols.iter().zip(&self.oids))
                .all(|(c, (col, oid))| c.type_info().oid() == Some(*oid) && c.name() == col.name())
    }
}

thread_local! {
    /// Recently used plans, by a hash of where sqlx keeps the result's column list (its
    /// statement's metadata, shared by every execution of a cached statement). A plan is used
    /// only after checking it against the row's column names and types, so a stale or colliding
    /// entry is never wrong, only replaced.
    static SHAPES: FrontCache<(usize, Arc<Shape>)> = const { FrontCache::new() };
}

/// The plan for a result whose first row is `row` (from the cache when it still fits).
fn shape(row: &PgRow) -> Option<Arc<Shape>> {
    let key = row.columns().as_ptr() as usize;
    let slot = FrontCache::<(usize, Arc<Shape>)>::slot(key as u64);
    let cached = SHAPES.with(|slots| {
        slots.get(slot, |(k, shape)| {
            (*k == key && shape.matches(row)).then(|| Arc::clone(shape))
        })
    });
    if cached.is_some() {
        return cached;
    }
    let shape = Arc::new(Shape::build(row)?);
    SHAPES.with(|slots| slots.put(slot, (key, Arc::clone(&shape))));
    Some(shape)
}

/// Converts one row with a plan that [`Shape::matches`] it.
fn decode_with(row: &PgRow, shape: &Shape) -> Result<Row> {
    decode_values(row, &shape.cols, |i| Ok(shape.readers[i]))
}

/// Converts the rows of one result (all of the same columns).
fn decode_rows<'r>(rows: impl Iterator<Item = &'r PgRow>) -> Result<Vec<Row>> {
    let mut rows = rows.peekable();
    let Some(first) = rows.peek() else {
        return Ok(Vec::new());
    };
    match shape(first) {
        Some(shape) => rows.map(|r| decode_with(r, &shape)).collect(),
        None => {
            let cols = columns(first);
            rows.map(|r| decode(r, &cols)).collect()
        }
    }
}

/// Converts one row, finding each column's reader from its type.
fn decode(row: &PgRow, cols: &Columns) -> Result<Row> {
    decode_values(row, cols, |i| {
        types::reader(row.columns()[i].type_info(), cols[i].name())
    })
}

/// Converts one row, reading column `i` with `reader_of(i)`.
fn decode_values(
    row: &PgRow,
    cols: &Columns,
    reader_of: impl Fn(usize) -> Result<Reader>,
) -> Result<Row> {
    let mut values = Vec::with_capacity(cols.len());
    for (i, col) in cols.iter().enumerate() {
        let (name, type_name) = (col.name(), col.type_name());
        let reader = reader_of(i)?;
        let raw = row
            .try_get_raw(i)
            .map_err(|e| Error::decode(name, type_name, e.to_string()))?;
        if raw.is_null() {
            values.push(Value::Null);
            continue;
        }
        let bytes = raw
            .as_bytes()
            .map_err(|e| Error::decode(name, type_name, e.to_string()))?;
        let value = match reader {
            Reader::Scalar(ty) => types::decode_scalar(ty, bytes),
            Reader::Array(ty) => types::decode_array(ty, bytes),
        }
        .map_err(|e| Error::decode(name, type_name, format!("undecodable data ({e})")))?;
        values.push(value);
    }
    Ok(Row::new(Arc::clone(cols), values))
}

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
                    .map(|m| Error::Encode {
                        index: i + 1,
                        message: format!("row {}, column {name}: {m}", n + 1),
                    })
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
        let result = execute(busy.conn(), &self.types, sql, params).await;
        busy.finish(result)
    }
    async fn fetch_all(&self, sql: &str, params: Params<'_>) -> Result<Vec<Row>> {
        let mut guard = self.conn.lock().await;
        let mut busy = Busy::borrowed(&mut guard);
        let result = fetch_all(busy.conn(), &self.types, sql, params).await;
        busy.finish(result)
    }
    async fn fetch_optional(&self, sql: &str, params: Params<'_>) -> Result<Option<Row>> {
        let mut guard = self.conn.lock().await;
        let mut busy = Busy::borrowed(&mut guard);
        let result = fetch_optional(busy.conn(), &self.types, sql, params).await;
        busy.finish(result)
    }
    async fn batch_execute(&self, sql: &str) -> Result<()> {
        let mut guard = self.conn.lock().await;
        let mut busy = Busy::borrowed(&mut guard);
        let result = batch_execute(busy.conn(), sql).await;
        busy.finish(result)
    }
}

#[async_trait]
impl Connection for SqlxConnection {
    async fn copy_in(&self, table: &str, columns: &[&str], rows: &[Vec<Value>]) -> Result<u64> {
        let mut guard = self.conn.lock().await;
        let mut busy = Busy::borrowed(&mut guard);
        let result = copy_in(busy.conn(), table, columns, rows).await;
        busy.finish(result)
    }

    fn discard(&mut self) {
        // sqlx closes the connection when the guard drops instead of returning it to the pool.
        self.conn.get_mut().close_on_drop();
    }
}
