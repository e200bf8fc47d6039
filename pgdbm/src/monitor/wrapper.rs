//! [`Monitored`]: any [`Executor`] wrapped so that its statements are recorded.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use super::{Hooks, Monitor, MonitorOptions, Operation, observe, observe_stream};
use crate::error::Result;
use crate::executor::Executor;
use crate::row::Row;
use crate::value::Params;

/// Wraps any [`Executor`] (a driver's pool or connection, a `&dyn Executor`, a
/// [`Transaction`](crate::Transaction)…) and records each statement on a [`Monitor`]. It is an
/// [`Executor`] itself, so code written against `&dyn Executor` runs unchanged.
///
/// It records the SQL as given to it; it makes no `tracing` span of its own (a
/// [`Database`](crate::Database) or [`Transaction`](crate::Transaction) inside makes one).
/// To monitor a `Database` and the transactions it begins, prefer
/// [`Database::monitored`](crate::Database::monitored).
///
/// ```no_run
/// # async fn demo(db: pgdbm::Database) -> pgdbm::Result<()> {
/// use std::sync::Arc;
/// use pgdbm::prelude::*;
/// use pgdbm::monitor::{Monitor, MonitorOptions, Monitored};
///
/// let tx = db.begin().await?;
/// let monitor = Arc::new(Monitor::new(MonitorOptions::default()));
/// let exec = Monitored::new(&tx, monitor.clone());
/// exec.execute("DELETE FROM {{tables.sessions}}", &[]).await?;
/// tx.commit().await?;
/// assert_eq!(monitor.metrics().total_queries, 1);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Monitored<E> {
    inner: E,
    hooks: Hooks,
}

impl<E> std::fmt::Debug for Monitored<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Monitored")
            .field("threshold", &self.hooks.threshold)
            .finish_non_exhaustive()
    }
}

impl<E: Executor> Monitored<E> {
    /// Wraps `inner`, recording on `monitor`.
    pub fn new(inner: E, monitor: Arc<Monitor>) -> Self {
        let hooks = Hooks {
            no_span: true,
            ..Hooks::default()
        }
        .with_monitor(monitor);
        Monitored { inner, hooks }
    }

    /// Wraps `inner` with a new monitor of its own.
    pub fn with_options(inner: E, options: MonitorOptions) -> Self {
        Self::new(inner, Arc::new(Monitor::new(options)))
    }

    /// The monitor statements are recorded on.
    pub fn monitor(&self) -> &Arc<Monitor> {
        self.hooks
            .monitor
            .as_ref()
            .expect("a Monitored always has a monitor")
    }

    /// The wrapped executor.
    pub fn get_ref(&self) -> &E {
        &self.inner
    }

    /// Unwraps the executor.
    pub fn into_inner(self) -> E {
        self.inner
    }

    /// The same wrapper with another slow threshold (for the calls made through the result only).
    pub fn with_slow_query_threshold(&self, threshold: Duration) -> Self
    where
        E: Clone,
    {
        let mut hooks = self.hooks.clone();
        hooks.threshold = threshold;
        Monitored {
            inner: self.inner.clone(),
            hooks,
        }
    }
}

#[async_trait]
impl<E: Executor> Executor for Monitored<E> {
    async fn execute(&self, sql: &str, params: Params<'_>) -> Result<u64> {
        let fut = self.inner.execute(sql, params);
        observe(&self.hooks, None, Operation::Execute, sql, params, fut).await
    }

    async fn fetch_all(&self, sql: &str, params: Params<'_>) -> Result<Vec<Row>> {
        let fut = self.inner.fetch_all(sql, params);
        observe(&self.hooks, None, Operation::FetchAll, sql, params, fut).await
    }

    async fn fetch_optional(&self, sql: &str, params: Params<'_>) -> Result<Option<Row>> {
        let fut = self.inner.fetch_optional(sql, params);
        observe(
            &self.hooks,
            None,
            Operation::FetchOptional,
            sql,
            params,
            fut,
        )
        .await
    }

    async fn batch_execute(&self, sql: &str) -> Result<()> {
        let fut = self.inner.batch_execute(sql);
        observe(&self.hooks, None, Operation::BatchExecute, sql, &[], fut).await
    }

    fn schema(&self) -> Option<&str> {
        self.inner.schema()
    }

    fn fetch<'a>(
        &'a self,
        sql: &str,
        params: Params<'a>,
    ) -> futures_util::stream::BoxStream<'a, Result<Row>> {
        observe_stream(
            &self.hooks,
            None,
            sql,
            params,
            self.inner.fetch(sql, params),
        )
    }
}
