//! What a pool keeps of its configuration's [`Pooler`] mode ([`PoolerSettings`]), written once for
//! every driver: the `SET LOCAL` prelude of transactions, the client-side bound of autocommit
//! statements, the direct connection for what a transaction pooler cannot carry, and the refusal
//! of what cannot work through one. It also carries the configured `command_timeout`, the
//! default per-call bound of the handles on the pool, to the core.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::config::{DatabaseConfig, Pooler};
use crate::error::{DbError, Error, Result};

use super::pool::{Driver, SharedPool};

/// Opens a pool of the driver that built the settings (for the direct connection).
type OpenPool =
    for<'a> fn(&'a DatabaseConfig) -> Pin<Box<dyn Future<Output = Result<SharedPool>> + Send + 'a>>;

fn open_pool<D: Driver>(
    config: &DatabaseConfig,
) -> Pin<Box<dyn Future<Output = Result<SharedPool>> + Send + '_>> {
    Box::pin(async move { Ok(Arc::new(D::connect(config).await?) as SharedPool) })
}

/// A pool's pooler mode and what follows from it, built by the driver from its
/// [`DatabaseConfig`] ([`PoolerSettings::new`]) and handed to the core through
/// [`PoolProvider::pooler`](super::PoolProvider::pooler).
///
/// The core uses it to open transactions (`BEGIN; SET LOCAL …` behind a transaction pooler), to
/// run migrations (per-file transactions under `pg_advisory_xact_lock`, the direct connection for
/// `-- pgdbm:no-transaction` files) and to refuse what needs a server session.
pub struct PoolerSettings {
    mode: Pooler,
    prelude: Option<String>,
    client_statement_timeout: Option<Duration>,
    server_timeout_unset: bool,
    command_timeout: Option<Duration>,
    direct: Option<DatabaseConfig>,
    open: Option<OpenPool>,
    warned: AtomicBool,
}

impl std::fmt::Debug for PoolerSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PoolerSettings")
            .field("mode", &self.mode)
            .field("client_statement_timeout", &self.client_statement_timeout)
            .field("direct", &self.direct.is_some())
            .finish_non_exhaustive()
    }
}

static NO_POOLER: PoolerSettings = PoolerSettings::unpooled();

impl PoolerSettings {
    /// No pooler: the settings of [`NO_POOLER`] and of [`Default`].
    const fn unpooled() -> Self {
        PoolerSettings {
            mode: Pooler::None,
            prelude: None,
            client_statement_timeout: None,
            server_timeout_unset: false,
            command_timeout: None,
            direct: None,
            open: None,
            warned: AtomicBool::new(true),
        }
    }
}

impl Default for PoolerSettings {
    /// No pooler (for a pool wrapped without a [`DatabaseConfig`]).
    fn default() -> Self {
        Self::unpooled()
    }
}

impl PoolerSettings {
    /// The settings of a pool opened by driver `D` with `config`. Behind a transaction pooler,
    /// warns once (per pool) that the server-side `statement_timeout` of autocommit statements
    /// is not set by pgdbm and what to configure instead.
    pub fn new<D: Driver>(config: &DatabaseConfig) -> Self {
        let settings = PoolerSettings {
            mode: config.pooler(),
            prelude: config.transaction_prelude(),
            client_statement_timeout: config.client_statement_timeout(),
            server_timeout_unset: config.pooler().is_transaction(),
            command_timeout: config.command_timeout(),
            direct: config.direct_config().cloned(),
            open: Some(open_pool::<D>),
            warned: AtomicBool::new(false),
        };
        settings.warn_once();
        settings
    }

    /// No pooler: what a pool that does not say otherwise reports.
    pub fn none() -> &'static PoolerSettings {
        &NO_POOLER
    }

    /// The pooler mode.
    pub fn mode(&self) -> Pooler {
        self.mode
    }

    /// `true` behind a transaction pooler.
    pub fn is_transaction(&self) -> bool {
        self.mode.is_transaction()
    }

    /// The `SET LOCAL …` statements to run right after `BEGIN` (transaction mode only).
    pub fn transaction_prelude(&self) -> Option<&str> {
        self.prelude.as_deref()
    }

    /// The client-side bound of autocommit statements (transaction mode with a
    /// `statement_timeout`).
    pub fn client_statement_timeout(&self) -> Option<Duration> {
        self.client_statement_timeout
    }

    /// The configured `command_timeout`: the default per-call bound of every
    /// [`Database`](crate::Database) handle on the pool
    /// ([`DatabaseConfigBuilder::command_timeout`](crate::DatabaseConfigBuilder::command_timeout)).
    pub fn command_timeout(&self) -> Option<Duration> {
        self.command_timeout
    }

    /// The configuration of the direct connection (`direct_url`), if one is configured.
    pub fn direct_config(&self) -> Option<&DatabaseConfig> {
        self.direct.as_ref()
    }

    /// What [`health_check`](crate::Database::health_check) and the one-time warning say when
    /// the server-side `statement_timeout` of autocommit statements cannot be guaranteed: `None`
    /// when it can.
    pub fn guardrail_warning(&self) -> Option<String> {
        if !self.server_timeout_unset {
            return None;
        }
        Some(format!(
            "behind a transaction pooler pgdbm cannot set statement_timeout for autocommit \
             statements on the server (it is SET LOCAL in every transaction pgdbm opens{}); \
             set it for the role (ALTER ROLE … SET statement_timeout = …) or the database, \
             and PgBouncer's query_timeout",
            match self.client_statement_timeout {
                Some(t) => format!(
                    ", and autocommit statements are abandoned client side after {} ms",
                    t.as_millis()
                ),
                None => String::new(),
            }
        ))
    }

    fn warn_once(&self) {
        if let Some(message) = self.guardrail_warning() {
            if !self.warned.swap(true, Ordering::Relaxed) {
                tracing::warn!(pooler = %self.mode, "pgdbm: {message}");
            }
        }
    }

    /// Opens a small pool (1–2 connections) of the same driver on the direct connection, for
    /// `what` (e.g. "migration users/002_index.sql (-- pgdbm:no-transaction)").
    ///
    /// # Errors
    ///
    /// [`Error::Pooler`] naming `what` when no `direct_url` is configured (or the pool was not
    /// opened by a driver that can open another); the driver's connect error.
    pub async fn connect_direct(&self, what: &str) -> Result<SharedPool> {
        let (Some(direct), Some(open)) = (&self.direct, self.open) else {
            return Err(needs_direct(self.mode, what));
        };
        let config = direct
            .to_builder()
            .min_connections(1)
            .max_connections(2)
            .build()?;
        open(&config).await
    }
}

/// The error for `what` needing a direct connection that is not configured.
fn needs_direct(mode: Pooler, what: &str) -> Error {
    Error::Pooler {
        mode,
        what: what.to_owned(),
        alternative: "configure a direct connection to the server (direct_url, e.g. \
                      ?direct_url=postgresql%3A%2F%2Fdb%3A5432%2Fapp or PGDBM_DIRECT_URL)"
            .to_owned(),
    }
}

/// Refuses `what` (something that needs one server session across transactions: a session
/// advisory lock, `LISTEN`, a cursor outside a transaction) when `pooler` is a transaction
/// pooler.
///
/// ```
/// use pgdbm::Pooler;
/// use pgdbm::driver::refuse_behind_transaction_pooler;
///
/// assert!(refuse_behind_transaction_pooler(Pooler::None, "LISTEN").is_ok());
/// let err = refuse_behind_transaction_pooler(Pooler::Transaction, "LISTEN").unwrap_err();
/// assert!(err.to_string().contains("transaction mode"));
/// assert!(err.to_string().contains("direct_url"));
/// ```
///
/// # Errors
///
/// [`Error::Pooler`] naming the mode, `what` and the alternative (a `direct_url` connection).
pub fn refuse_behind_transaction_pooler(pooler: Pooler, what: &str) -> Result<()> {
    if pooler.is_transaction() {
        return Err(Error::Pooler {
            mode: pooler,
            what: what.to_owned(),
            alternative: "it needs one server session across transactions; run it on a \
                          direct connection to the server (direct_url, or a pool opened with \
                          DatabaseConfig::direct_config())"
                .to_owned(),
        });
    }
    Ok(())
}

/// Runs `work` (an autocommit statement behind a transaction pooler) bounded client side by
/// `bound` ([`PoolerSettings::client_statement_timeout`]; `None`: unbounded). On expiry `work`
/// is dropped — the driver's usual handling of an abandoned statement follows — and the error is
/// [`client_timeout_error`].
///
/// # Errors
///
/// `work`'s error, or the timeout's `57014`.
pub async fn bounded_by_client<T>(
    bound: Option<Duration>,
    sql: &str,
    work: impl std::future::Future<Output = Result<T>>,
) -> Result<T> {
    match bound {
        None => work.await,
        Some(bound) => tokio::time::timeout(bound, work)
            .await
            .unwrap_or_else(|_| Err(client_timeout_error(sql, bound))),
    }
}

/// The error of an autocommit statement abandoned by the client-side bound: `57014` (query
/// canceled), as the server's own `statement_timeout` would report it.
pub fn client_timeout_error(sql: &str, bound: Duration) -> Error {
    Error::from(DbError::new(
        "57014",
        format!(
            "canceling statement due to statement timeout: abandoned by the client after {} ms \
             (behind a transaction pooler the server-side statement_timeout of autocommit \
             statements is not set by pgdbm)",
            bound.as_millis()
        ),
    ))
    .with_sql(sql)
}

/// Whether `sql` (a batch a driver runs with `batch_execute`) leaves its session inside a
/// transaction (`Some(true)`), outside one (`Some(false)`), or does not begin or end one
/// (`None`), read from the leading keyword of each statement (`BEGIN`/`START`, `COMMIT`/`END`/
/// `ABORT`, `ROLLBACK` but not `ROLLBACK TO`).
///
/// Behind a transaction pooler a driver keeps this per connection: inside a transaction the
/// pooler holds the server connection, outside it each exchange may reach another one.
pub fn transaction_control(sql: &str) -> Option<bool> {
    let mut state = None;
    for statement in sql.split(';') {
        let mut words = statement
            .lines()
            .map(str::trim)
            .filter(|l| !l.starts_with("--"))
            .flat_map(str::split_whitespace);
        let first = words.next().map(str::to_ascii_uppercase);
        match first.as_deref() {
            Some("BEGIN" | "START") => state = Some(true),
            Some("COMMIT" | "END" | "ABORT") => state = Some(false),
            Some("ROLLBACK") if !words.next().is_some_and(|w| w.eq_ignore_ascii_case("TO")) => {
                state = Some(false)
            }
            _ => {}
        }
    }
    state
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_name_the_mode_and_the_alternative() {
        assert!(refuse_behind_transaction_pooler(Pooler::Session, "LISTEN").is_ok());
        let err = refuse_behind_transaction_pooler(Pooler::Transaction, "LISTEN").unwrap_err();
        assert!(matches!(
            err,
            Error::Pooler {
                mode: Pooler::Transaction,
                ..
            }
        ));
        let text = err.to_string();
        assert!(
            text.contains("LISTEN") && text.contains("transaction mode"),
            "{text}"
        );
        assert!(text.contains("direct_url"), "{text}");
    }

    #[test]
    fn the_client_bound_is_a_typed_cancel() {
        let err = client_timeout_error("SELECT pg_sleep(5)", Duration::from_millis(250));
        assert!(err.is_query_canceled());
        assert!(err.to_string().contains("250 ms"), "{err}");
    }

    #[test]
    fn without_pooler_nothing_changes() {
        let none = PoolerSettings::none();
        assert_eq!(none.mode(), Pooler::None);
        assert!(none.transaction_prelude().is_none());
        assert!(none.client_statement_timeout().is_none());
        assert!(none.guardrail_warning().is_none());
    }

    #[test]
    fn transaction_control_follows_the_last_statement() {
        assert_eq!(transaction_control("BEGIN"), Some(true));
        assert_eq!(
            transaction_control("BEGIN; SET LOCAL statement_timeout = '1'"),
            Some(true)
        );
        assert_eq!(transaction_control("commit"), Some(false));
        assert_eq!(transaction_control("ROLLBACK"), Some(false));
        assert_eq!(
            transaction_control("ROLLBACK TO SAVEPOINT s; RELEASE SAVEPOINT s"),
            None
        );
        assert_eq!(
            transaction_control("BEGIN; INSERT INTO t VALUES (1); COMMIT"),
            Some(false)
        );
        assert_eq!(
            transaction_control("-- note\nstart transaction"),
            Some(true)
        );
        assert_eq!(transaction_control("SELECT 1"), None);
    }
}
