//! The per-statement hook ([`observe`], with the [`Hooks`] each handle carries) of
//! [`Database`](crate::Database), [`Transaction`](crate::Transaction) and
//! [`Monitored`](super::Monitored):
//! a `tracing` span following OpenTelemetry's database conventions, and the [`Monitor`] record.
//!
//! Spans are named `pgdbm.query`, target `pgdbm::query`, level `DEBUG`, with fields
//! `db.system = "postgresql"`, `db.namespace` (the database name, when the handle was opened with
//! a config), `db.operation.name` (the first SQL keyword, upper case), `db.query.text` (the
//! template text, cut to 200 characters), `pgdbm.schema`, `pgdbm.operation` (the pgdbm call) and,
//! on failure, `error.type`. Parameter values are never put into spans.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures_util::stream::{BoxStream, Stream};

use tracing::Instrument;

use super::{Call, Monitor};
use crate::error::{Result, truncate_sql};
use crate::row::Row;
use crate::value::Params;

/// Which call ran a statement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Operation {
    /// [`Executor::execute`](crate::Executor::execute).
    Execute,
    /// [`Executor::fetch_all`](crate::Executor::fetch_all).
    FetchAll,
    /// [`Executor::fetch_optional`](crate::Executor::fetch_optional) (and `fetch_one`, `fetch_value`…).
    FetchOptional,
    /// [`Executor::batch_execute`](crate::Executor::batch_execute).
    BatchExecute,
    /// `copy_in` (binary `COPY … FROM STDIN`).
    Copy,
    /// [`Executor::fetch`](crate::Executor::fetch) (and `fetch_as`): a stream of rows, timed
    /// until it ended or was dropped.
    Fetch,
}

impl Operation {
    /// The method name, e.g. `"fetch_all"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Execute => "execute",
            Operation::FetchAll => "fetch_all",
            Operation::FetchOptional => "fetch_optional",
            Operation::BatchExecute => "batch_execute",
            Operation::Copy => "copy_in",
            Operation::Fetch => "fetch",
        }
    }
}

/// What a handle does around each statement: `Default` is nothing but the (disabled) span.
#[derive(Clone, Default)]
pub(crate) struct Hooks {
    pub(crate) monitor: Option<Arc<Monitor>>,
    /// The slow threshold in force for this handle.
    pub(crate) threshold: Duration,
    /// The database name, for `db.namespace`.
    pub(crate) database: Option<Arc<str>>,
    /// `true` in [`Monitored`](super::Monitored): its inner executor makes its own span.
    pub(crate) no_span: bool,
}

impl Hooks {
    pub(crate) fn with_monitor(&self, monitor: Arc<Monitor>) -> Self {
        Hooks {
            threshold: monitor.options().slow_query_threshold,
            monitor: Some(monitor),
            database: self.database.clone(),
            no_span: self.no_span,
        }
    }
}

/// Rows a call returned or affected, for the record.
pub(crate) trait RowCount {
    fn rows(&self) -> Option<u64>;
}

impl RowCount for u64 {
    fn rows(&self) -> Option<u64> {
        Some(*self)
    }
}

impl RowCount for Vec<Row> {
    fn rows(&self) -> Option<u64> {
        Some(self.len() as u64)
    }
}

impl RowCount for Option<Row> {
    fn rows(&self) -> Option<u64> {
        Some(u64::from(self.is_some()))
    }
}

impl RowCount for () {
    fn rows(&self) -> Option<u64> {
        None
    }
}

/// The first SQL keyword, upper case (`"SELECT"`, `"WITH"`…), skipping blanks, `(` and comments.
pub(crate) fn operation_name(sql: &str) -> String {
    let mut rest = sql;
    loop {
        rest = rest.trim_start_matches(|c: char| c.is_whitespace() || c == '(');
        if let Some(after) = rest.strip_prefix("--") {
            rest = after.split_once('\n').map_or("", |(_, r)| r);
        } else if let Some(after) = rest.strip_prefix("/*") {
            rest = after.split_once("*/").map_or("", |(_, r)| r);
        } else {
            break;
        }
    }
    rest.chars()
        .take_while(char::is_ascii_alphabetic)
        .take(32)
        .collect::<String>()
        .to_ascii_uppercase()
}

/// The `pgdbm.query` span of one call, or a disabled span when nobody wants it.
fn query_span(
    hooks: &Hooks,
    schema: Option<&str>,
    operation: Operation,
    sql: &str,
) -> tracing::Span {
    if hooks.no_span || !debug_enabled() {
        return tracing::Span::none();
    }
    tracing::debug_span!(
        target: "pgdbm::query",
        "pgdbm.query",
        db.system = "postgresql",
        db.namespace = hooks.database.as_deref(),
        db.operation.name = %operation_name(sql),
        db.query.text = %truncate_sql(sql),
        pgdbm.schema = schema,
        pgdbm.operation = operation.as_str(),
        error.type = tracing::field::Empty,
    )
}

/// `true` when some subscriber may want DEBUG spans (compile-time and run-time maximum levels).
fn debug_enabled() -> bool {
    use tracing::level_filters::{LevelFilter, STATIC_MAX_LEVEL};
    STATIC_MAX_LEVEL >= LevelFilter::DEBUG && LevelFilter::current() >= LevelFilter::DEBUG
}

/// Runs `fut` (one statement) inside a span and records it on the monitor, if any. Without a
/// monitor and with the span disabled (no subscriber interested), this is `fut.await` after one
/// branch on an `Option` and tracing's callsite check.
pub(crate) async fn observe<T: RowCount, F: Future<Output = Result<T>>>(
    hooks: &Hooks,
    schema: Option<&str>,
    operation: Operation,
    sql: &str,
    params: Params<'_>,
    fut: F,
) -> Result<T> {
    // One atomic load when no subscriber wants DEBUG: the span's fields (an allocation for the
    // truncated SQL) are then never computed, even with tracing's `log` feature on (sqlx
    // enables it).
    let span = query_span(hooks, schema, operation, sql);
    let Some(monitor) = hooks.monitor.as_deref() else {
        if span.is_disabled() {
            return fut.await;
        }
        let result = fut.instrument(span.clone()).await;
        if let Err(e) = &result {
            span.record("error.type", super::variant_name(e));
        }
        return result;
    };
    let start = Instant::now();
    let result = if span.is_disabled() {
        fut.await
    } else {
        fut.instrument(span.clone()).await
    };
    let duration = start.elapsed();
    if let Err(e) = &result {
        span.record("error.type", super::variant_name(e));
    }
    let _entered = span.enter();
    monitor.record(
        Call {
            sql,
            schema,
            operation,
            params,
            duration,
            threshold: hooks.threshold,
        },
        result.as_ref().map(RowCount::rows),
    );
    result
}

/// [`observe`] for a stream of rows (`sql` the text before expansion): the span is entered at
/// each poll; the monitor records the rows read and the time until the stream ended (or failed,
/// with its error) or was dropped. Without a monitor and with the span disabled, `stream` itself.
pub(crate) fn observe_stream<'a>(
    hooks: &Hooks,
    schema: Option<&'a str>,
    sql: &str,
    params: Params<'a>,
    stream: BoxStream<'a, Result<Row>>,
) -> BoxStream<'a, Result<Row>> {
    let span = query_span(hooks, schema, Operation::Fetch, sql);
    if hooks.monitor.is_none() && span.is_disabled() {
        return stream;
    }
    Box::pin(ObservedStream {
        inner: stream,
        span,
        monitor: hooks.monitor.clone(),
        threshold: hooks.threshold,
        schema,
        sql: sql.to_owned(),
        params,
        start: Instant::now(),
        rows: 0,
        recorded: false,
    })
}

struct ObservedStream<'a> {
    inner: BoxStream<'a, Result<Row>>,
    span: tracing::Span,
    monitor: Option<Arc<Monitor>>,
    threshold: Duration,
    schema: Option<&'a str>,
    sql: String,
    params: Params<'a>,
    start: Instant,
    rows: u64,
    recorded: bool,
}

impl ObservedStream<'_> {
    fn record(&mut self, error: Option<&crate::error::Error>) {
        if std::mem::replace(&mut self.recorded, true) {
            return;
        }
        if let Some(e) = error {
            self.span.record("error.type", super::variant_name(e));
        }
        let Some(monitor) = self.monitor.as_deref() else {
            return;
        };
        let _entered = self.span.enter();
        monitor.record(
            Call {
                sql: &self.sql,
                schema: self.schema,
                operation: Operation::Fetch,
                params: self.params,
                duration: self.start.elapsed(),
                threshold: self.threshold,
            },
            error.map_or(Ok(Some(self.rows)), Err),
        );
    }
}

impl Stream for ObservedStream<'_> {
    type Item = Result<Row>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Row>>> {
        let this = &mut *self;
        let polled = {
            let _entered = this.span.enter();
            this.inner.as_mut().poll_next(cx)
        };
        match &polled {
            Poll::Ready(Some(Ok(_))) => this.rows += 1,
            Poll::Ready(Some(Err(e))) => this.record(Some(e)),
            Poll::Ready(None) => this.record(None),
            Poll::Pending => {}
        }
        polled
    }
}

impl Drop for ObservedStream<'_> {
    fn drop(&mut self) {
        // Dropped before its end: the rows read so far, the time until now.
        self.record(None);
    }
}

/// [`observe`] for `copy_in` of `cols` into `target`: the COPY text it records is only built
/// when a monitor or a DEBUG subscriber will see it.
pub(crate) async fn observe_copy<F: Future<Output = Result<u64>>>(
    hooks: &Hooks,
    schema: Option<&str>,
    target: &str,
    cols: &[&str],
    fut: F,
) -> Result<u64> {
    if hooks.monitor.is_none() && !tracing::enabled!(target: "pgdbm::query", tracing::Level::DEBUG)
    {
        return fut.await;
    }
    let sql = format!("COPY {target} ({}) FROM STDIN BINARY", cols.join(", "));
    observe(hooks, schema, Operation::Copy, &sql, &[], fut).await
}

#[cfg(test)]
mod tests {
    use super::operation_name;

    #[test]
    fn operation_names() {
        assert_eq!(operation_name("  select 1"), "SELECT");
        assert_eq!(
            operation_name("-- note\n/* x */ (WITH a AS (SELECT 1) SELECT 1)"),
            "WITH"
        );
        assert_eq!(operation_name("insert into t values (1)"), "INSERT");
        assert_eq!(operation_name(""), "");
    }
}
