//! The conformance suite: every behaviour that all drivers must share, as public async checks.
//!
//! A driver crate runs the whole suite with one line in `tests/conformance.rs`:
//!
//! ```ignore
//! pgdbm::conformance_tests!(pgdbm_driver_tokio_postgres::TokioPostgres);
//! ```
//!
//! which expands to one `#[tokio::test]` per check. Each check gets a [`Ctx`]: a fresh schema of
//! its own on the test server, a shared pool opened by the driver under test (always used as
//! `Arc<dyn PoolProvider>`), and a way to open more pools with other settings. The schema is
//! dropped when the context is dropped, also when the check panics.
//!
//! The test server comes from `PGDBM_TEST_URL`, then `DATABASE_URL`, then the libpq `PG*`
//! variables and defaults (`localhost:5432`, the current OS user), with database `postgres` unless
//! one is named.

mod cancellation;
mod errors;
mod guardrails;
mod load;
mod migration_ledger;
mod migration_lock;
mod migrations;
mod monitoring;
mod pool;
mod queries;
mod redaction;
mod startup_options;
mod templates;
mod tls;
mod transactions;
mod values;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

pub use cancellation::*;
pub use errors::*;
pub use guardrails::*;
pub use load::*;
pub use migration_ledger::*;
pub use migration_lock::*;
pub use migrations::*;
pub use monitoring::*;
pub use pool::*;
pub use queries::*;
pub use redaction::*;
pub use startup_options::*;
pub use templates::*;
pub use tls::*;
pub use transactions::*;
pub use values::*;

use crate::{Database, DatabaseConfig, Driver, Executor, Result, SharedPool};

/// Opens a pool with the driver under test.
pub type Connector = Arc<
    dyn Fn(DatabaseConfig) -> Pin<Box<dyn Future<Output = Result<SharedPool>> + Send>>
        + Send
        + Sync,
>;

/// What a driver can do, for checks that a driver may legitimately not support. A check that is
/// skipped because of a capability says so on standard error; nothing is skipped silently.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct Capabilities {
    /// The driver keeps prepared statements per connection, visible in `pg_prepared_statements`.
    pub named_statement_cache: bool,
}

impl Default for Capabilities {
    fn default() -> Self {
        Capabilities {
            named_statement_cache: true,
        }
    }
}

/// The context each check runs in.
pub struct Ctx {
    /// The configuration of the test server (no schema set).
    pub config: DatabaseConfig,
    /// The shared pool opened by the driver under test.
    pub pool: SharedPool,
    /// A handle on `pool` scoped to this check's own schema (created already).
    pub db: Database,
    /// This check's schema.
    pub schema: String,
    /// The driver's capabilities.
    pub caps: Capabilities,
    connector: Connector,
}

impl std::fmt::Debug for Ctx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ctx")
            .field("schema", &self.schema)
            .field("driver", &self.pool.driver_name())
            .finish()
    }
}

/// The base configuration of the test server (see the module docs).
///
/// # Errors
///
/// [`Error::Config`](crate::Error::Config) when `PGDBM_TEST_URL`/`DATABASE_URL` cannot be parsed.
pub fn test_config() -> Result<DatabaseConfig> {
    let url = std::env::var("PGDBM_TEST_URL")
        .ok()
        .or_else(|| std::env::var("DATABASE_URL").ok());
    let builder = match url {
        Some(url) => DatabaseConfig::builder().url(&url),
        None => {
            let mut b = DatabaseConfig::builder().env();
            if std::env::var_os("PGDATABASE").is_none() {
                b = b.database("postgres");
            }
            b
        }
    };
    builder.min_connections(1).max_connections(8).build()
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

impl Ctx {
    /// Opens a context for check `name` with driver `D` on the [`test_config`] server.
    ///
    /// # Errors
    ///
    /// When the server cannot be reached or the schema cannot be created.
    pub async fn new<D: Driver>(name: &str) -> Result<Self> {
        Self::with_capabilities::<D>(name, Capabilities::default()).await
    }

    /// As [`Ctx::new`], declaring what the driver cannot do.
    ///
    /// # Errors
    ///
    /// When the server cannot be reached or the schema cannot be created.
    pub async fn with_capabilities<D: Driver>(name: &str, caps: Capabilities) -> Result<Self> {
        Self::with_config::<D>(name, caps, test_config()?).await
    }

    /// As [`Ctx::with_capabilities`], on the server of `config` (its database is used; the pool
    /// is sized 1–8) instead of [`test_config`]'s. This is what
    /// `conformance_tests!(Driver, caps, server = provider)` calls.
    ///
    /// # Errors
    ///
    /// When the server cannot be reached or the schema cannot be created.
    pub async fn with_config<D: Driver>(
        name: &str,
        caps: Capabilities,
        config: DatabaseConfig,
    ) -> Result<Self> {
        let config = config
            .to_builder()
            .without_schema()
            .min_connections(1)
            .max_connections(8)
            .build()?;
        let connector: Connector = Arc::new(|config: DatabaseConfig| {
            Box::pin(async move {
                let pool = D::connect(&config).await?;
                Ok(Arc::new(pool) as SharedPool)
            })
        });
        let pool = connector(config.clone()).await?;
        let short: String = name
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
            .take(30)
            .collect();
        let schema = format!(
            "conf_{}_{}_{}",
            short.to_ascii_lowercase(),
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let db = Database::new(pool.clone(), Some(&schema))?;
        db.batch_execute("DROP SCHEMA IF EXISTS {{schema}} CASCADE")
            .await?;
        db.ensure_schema().await?;
        Ok(Ctx {
            config,
            pool,
            db,
            schema,
            caps,
            connector,
        })
    }

    /// Opens another pool with the driver under test.
    ///
    /// # Errors
    ///
    /// The driver's connect error.
    pub async fn connect(&self, config: DatabaseConfig) -> Result<SharedPool> {
        (self.connector)(config).await
    }

    /// The test configuration with changes applied.
    ///
    /// # Errors
    ///
    /// The builder's validation error.
    pub fn config_with(
        &self,
        change: impl FnOnce(crate::DatabaseConfigBuilder) -> crate::DatabaseConfigBuilder,
    ) -> Result<DatabaseConfig> {
        change(self.config.to_builder()).build()
    }
}

impl Drop for Ctx {
    fn drop(&mut self) {
        let sql = format!("DROP SCHEMA IF EXISTS \"{}\" CASCADE", self.schema);
        run_cleanup(self.connector.clone(), self.config.clone(), sql);
    }
}

/// Runs a cleanup statement on a pool of its own, on a thread of its own with its own runtime:
/// it is called from `Drop`, in async code and while a failing check unwinds alike.
pub(crate) fn run_cleanup(connector: Connector, config: DatabaseConfig, sql: String) {
    let cleanup = std::thread::spawn(move || {
        let Ok(rt) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            return;
        };
        rt.block_on(async move {
            if let Ok(pool) = connector(config).await {
                if let Err(e) = pool.batch_execute(&sql).await {
                    eprintln!("conformance: cleanup `{sql}` failed: {e}");
                }
                pool.close().await;
            }
        });
    });
    let _ = cleanup.join();
}

/// Asserts that `result` is an error matching `pattern`, printing the error otherwise.
#[macro_export]
#[doc(hidden)]
macro_rules! assert_err {
    ($result:expr, $pattern:pat) => {
        match $result {
            Err(e @ $pattern) => e,
            Err(other) => panic!("expected {}, got error: {other:?}", stringify!($pattern)),
            Ok(_) => panic!("expected {}, got Ok", stringify!($pattern)),
        }
    };
}

/// Expands to one `#[tokio::test]` per conformance check for driver `$driver`
/// (optionally with [`Capabilities`]).
///
/// The server comes from [`test_config`], or, with `server = path::to::provider`, from
/// `provider::<$driver>().await`, an async fn generic over the driver returning
/// `pgdbm::Result<DatabaseConfig>` — e.g. `pgdbm_testing::server_config`, which also starts a
/// throwaway server when none is configured:
///
/// ```ignore
/// pgdbm::conformance_tests!(
///     pgdbm_driver_tokio_postgres::TokioPostgres,
///     pgdbm::conformance::Capabilities::default(),
///     server = pgdbm_testing::server_config
/// );
/// ```
#[macro_export]
macro_rules! conformance_tests {
    ($driver:ty) => {
        $crate::conformance_tests!($driver, $crate::conformance::Capabilities::default());
    };
    ($driver:ty, $caps:expr) => {
        $crate::conformance_tests!($driver, $caps, @config { $crate::conformance::test_config() });
    };
    ($driver:ty, $caps:expr, server = $($provider:ident)::+) => {
        $crate::conformance_tests!($driver, $caps, @config { $($provider)::+::<$driver>().await });
    };
    ($driver:ty, $caps:expr, @config $config:block) => {
        $crate::conformance_tests!(@each $driver, $caps, $config;
            values_roundtrip, integer_binding, bad_parameters, decode_errors, json_and_serde,
            templates_isolate_schemas, template_errors, identifier_errors,
            execute_and_fetch, execute_many_is_atomic, execute_and_return_id, batch_execute_script,
            table_exists_and_ensure_schema, copy_in_binary, statement_cache_prepares_once,
            statement_cache_is_bounded, dyn_executors,
            transaction_commit_and_rollback, transaction_closure, nested_savepoints,
            dropped_transaction_rolls_back, cancelled_transaction_rolls_back,
            panic_in_transaction_rolls_back, failed_statement_aborts_commit,
            finished_transaction_is_an_error,
            database_errors_are_classified, server_settings_applied, pool_stats_consistent,
            pool_exhaustion_times_out, closed_pool_rejects, shared_close_keeps_pool,
            unreachable_host_error,
            migrate_applies_and_skips, migrate_changed_file_is_rejected,
            migrate_failure_in_the_middle, migrate_syntax_error,
            migrate_empty_file_and_directory_source, migrate_ledger_table_name,
            migrate_modules_share_file_names, migrate_concurrent_runs, migrate_module_dependencies,
            migrate_no_transaction, migrate_python_compatibility, migrate_lock_released,
            migrate_inspect,
            monitor_history_bounded, monitor_errors_recorded, monitor_slow_queries,
            monitor_aggregates_and_coverage, monitor_params_masked, explain_plans,
            monitor_closed_pool, tracing_spans, health_check_fresh_pool, blocking_queries_found,
            long_running_queries_found, table_sizes_listed, monitor_records_migrations,
            statement_timeout_cancels, idle_in_transaction_timeout_recovers,
            lock_timeout_is_typed, terminated_connections_replaced,
            acquire_timeout_names_connect_error, max_lifetime_honoured, idle_timeout_honoured,
            pool_stats_under_load, secrets_stay_out_of_logs_and_errors,
            cancelled_begin_leaks_nothing, cancelled_finish_leaks_nothing,
            cancelled_statement_in_transaction_aborts_it, cancelled_statement_is_not_reused_busy,
            cancellation_under_load, close_wakes_waiters, waiting_counts_only_waiters,
            pool_counters_add_up, connect_timeout_bounds_the_handshake,
            table_exists_resolves_like_templates,
            server_setting_cannot_add_settings, server_setting_values_arrive_verbatim,
            migrate_concurrent_runs_with_concurrent_index, migrate_failed_concurrent_index_leaves_no_invalid_index, migrate_lock_waiter_holds_no_snapshot, migrate_lock_wait_bounded_and_cancellable,
            redaction_hides_quoted_values, redaction_hides_values_in_every_class, redaction_row_mapping_names_types_not_values, redaction_monitor_and_logs
        );
    };
    (@each $driver:ty, $caps:expr, $config:block; $($check:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $check() {
                let config = $config
                    .expect("conformance: no test server (set PGDBM_TEST_URL)");
                let ctx = $crate::conformance::Ctx::with_config::<$driver>(stringify!($check), $caps, config)
                    .await
                    .expect("conformance: cannot reach the test server (set PGDBM_TEST_URL)");
                if let Err(e) = $crate::conformance::$check(&ctx).await {
                    panic!("{} failed: {e} ({e:?})", stringify!($check));
                }
            }
        )*
    };
}
