//! The per-statement hook ([`observe`], with the [`Hooks`] each handle carries) of
//! [`Database`](crate::Database), [`Transaction`](crate::Transaction) and
//! [`Monitored`](super::Monitored): the `tracing` span (see `span.rs` for its fields), the
//! [`Monitor`] record and, with the `metrics` feature, the operation's duration.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures_util::stream::{BoxStream, Stream};

use tracing::Instrument;

use super::span::{Peer, query_span, record_error};
use super::{Call, Monitor};
use crate::error::Result;
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
    /// Transaction control sent by a [`Transaction`](crate::Transaction): `BEGIN`, `COMMIT`,
    /// `ROLLBACK`, `SAVEPOINT`, `RELEASE SAVEPOINT`, `ROLLBACK TO SAVEPOINT` (recorded with
    /// these texts, without savepoint names or settings).
    TransactionControl,
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
            Operation::TransactionControl => "transaction",
        }
    }
}

/// What a handle does around each statement: `Default` is nothing but the (disabled) span.
#[derive(Clone, Default)]
pub(crate) struct Hooks {
    pub(crate) monitor: Option<Arc<Monitor>>,
    /// The slow threshold in force for this handle.
    pub(crate) threshold: Duration,
    /// The database and server, for `db.namespace`, `server.address`, `server.port`.
    pub(crate) peer: Option<Arc<Peer>>,
    /// The module the handle belongs to ([`Database::with_module`](crate::Database::with_module)).
    pub(crate) module: Option<Arc<str>>,
    /// `true` in [`Monitored`](super::Monitored): its inner executor makes its own span (and
    /// metrics).
    pub(crate) no_span: bool,
}

impl Hooks {
    pub(crate) fn with_monitor(&self, monitor: Arc<Monitor>) -> Self {
        Hooks {
            threshold: monitor.options().slow_query_threshold,
            monitor: Some(monitor),
            ..self.clone()
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
    // One atomic load when no subscriber wants DEBUG: the span's fields (allocations for the
    // truncated SQL, the summary) are then never computed, even with tracing's `log` feature on
    // (sqlx enables it).
    let span = query_span(hooks, schema, operation, sql, None);
    if !timed(hooks) {
        if span.is_disabled() {
            return fut.await;
        }
        let result = fut.instrument(span.clone()).await;
        if let Err(e) = &result {
            record_error(&span, e);
        }
        return result;
    }
    let start = Instant::now();
    let result = if span.is_disabled() {
        fut.await
    } else {
        fut.instrument(span.clone()).await
    };
    let duration = start.elapsed();
    finished(
        hooks,
        &span,
        Finished {
            sql,
            schema,
            operation,
            params,
            duration,
        },
        result.as_ref().map(RowCount::rows),
    );
    result
}

/// `true` when a call must be timed: a monitor records it, or (feature `metrics`) its duration
/// goes to the metrics recorder.
fn timed(hooks: &Hooks) -> bool {
    hooks.monitor.is_some() || (cfg!(feature = "metrics") && !hooks.no_span)
}

/// A finished call, for [`finished`].
struct Finished<'a> {
    sql: &'a str,
    schema: Option<&'a str>,
    operation: Operation,
    params: Params<'a>,
    duration: Duration,
}

/// What follows a timed call: the error on its span, its duration in the metrics, its record on
/// the monitor.
fn finished(
    hooks: &Hooks,
    span: &tracing::Span,
    call: Finished<'_>,
    result: std::result::Result<Option<u64>, &crate::error::Error>,
) {
    if let Err(e) = result {
        record_error(span, e);
    }
    #[cfg(feature = "metrics")]
    if !hooks.no_span {
        super::metrics::operation(hooks, call.schema, call.sql, call.duration, result.err());
    }
    let Some(monitor) = hooks.monitor.as_deref() else {
        return;
    };
    let _entered = span.enter();
    monitor.record(
        Call {
            sql: call.sql,
            schema: call.schema,
            module: hooks.module.as_deref(),
            operation: call.operation,
            params: call.params,
            duration: call.duration,
            threshold: hooks.threshold,
        },
        result,
    );
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
    let span = query_span(hooks, schema, Operation::Fetch, sql, None);
    if !timed(hooks) && span.is_disabled() {
        return stream;
    }
    Box::pin(ObservedStream {
        inner: stream,
        span,
        hooks: hooks.clone(),
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
    hooks: Hooks,
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
        finished(
            &self.hooks,
            &self.span,
            Finished {
                sql: &self.sql,
                schema: self.schema,
                operation: Operation::Fetch,
                params: self.params,
                duration: self.start.elapsed(),
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
    if !timed(hooks) && !tracing::enabled!(target: "pgdbm::query", tracing::Level::DEBUG) {
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
