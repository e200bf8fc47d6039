//! # pgdbm
//!
//! A PostgreSQL framework for **modular** Rust applications. A library built on pgdbm owns its
//! tables and SQL and runs unchanged **standalone** (its own pool) or **embedded** in an
//! application that shares one pool among many modules, each in its own schema.
//!
//! This crate is the driver-neutral core: configuration, values and rows, SQL templates,
//! [`Database`] handles, [`Transaction`]s with savepoints, and typed [`Error`]s. A driver crate
//! supplies the connections:
//!
//! | driver crate | pool type | use it when |
//! |---|---|---|
//! | `pgdbm-driver-tokio-postgres` | `TokioPostgresPool` (bb8) | the default: fastest, COPY in binary format |
//! | `pgdbm-driver-sqlx` | `SqlxPool` | your application already runs sqlx and has a `PgPool` |
//!
//! Module code only ever sees [`Database`], [`Transaction`] and `&dyn Executor`, so swapping the
//! driver of a deployment changes one line: `Database::connect::<TokioPostgres>(&config)`.
//!
//! ## Connecting
//!
//! ```no_run
//! # async fn demo() -> pgdbm::Result<()> {
//! use pgdbm::prelude::*;
//! use pgdbm::DatabaseConfig;
//! use pgdbm_driver_tokio_postgres::TokioPostgres;
//!
//! let config = DatabaseConfig::builder()
//!     .url("postgresql://app@localhost:5432/app") // or .env(): DATABASE_URL, then PGHOST, PGUSER…
//!     .schema("users")
//!     .max_connections(20)
//!     .build()?; // every value is validated here, errors name the field
//! let db = Database::connect::<TokioPostgres>(&config).await?; // owns its pool
//! db.ensure_schema().await?;
//! # Ok(()) }
//! ```
//!
//! Every connection gets `statement_timeout` (60 s), `idle_in_transaction_session_timeout` (60 s)
//! and `lock_timeout` (5 s) from the server side; each can be changed or turned off
//! (`.statement_timeout(None)`). Connects are retried (3 attempts, 1 s, ×2, at most 30 s), except
//! when retrying cannot help (authentication, unknown database). A config's `Display`/`Debug` never
//! show the password.
//!
//! ## Sharing one pool among modules
//!
//! ```no_run
//! # async fn demo(config: pgdbm::DatabaseConfig) -> pgdbm::Result<()> {
//! use std::sync::Arc;
//! use pgdbm::Database;
//! use pgdbm::driver::PoolProvider;
//! use pgdbm_driver_tokio_postgres::TokioPostgresPool;
//!
//! let pool: Arc<dyn PoolProvider> = Arc::new(TokioPostgresPool::connect(&config).await?);
//! let users = Database::new(pool.clone(), Some("users"))?;     // shared: close() leaves the pool open
//! let billing = Database::new(pool.clone(), Some("billing"))?;
//! # Ok(()) }
//! ```
//!
//! No `SET search_path` is issued on pooled connections: schema isolation comes from templates,
//! so it needs no session state (see "Behind a pooler").
//!
//! ## Behind a pooler
//!
//! Tell pgdbm what sits in front of the server with `pooler`: `?pooler=transaction` in the URL,
//! [`DatabaseConfigBuilder::pooler`], `PGDBM_POOLER` or `pooler = "transaction"` in
//! `pgdbm.toml` ([`Pooler`]: `none`, the default, `session` or `transaction`). In transaction
//! mode (PgBouncer `pool_mode = transaction`, PgCat, Supavisor, RDS Proxy…) consecutive
//! transactions and autocommit statements may run on different server connections, and pgdbm
//! keeps no state in a server session between them:
//!
//! * **no startup `options`** (PgBouncer refuses them): `statement_timeout`, `lock_timeout`,
//!   `idle_in_transaction_session_timeout` and `server_settings` are `SET LOCAL` right after
//!   `BEGIN` of every transaction pgdbm opens (same round trip). Autocommit statements are
//!   bounded client side by `statement_timeout` (a typed `57014`; the tokio-postgres driver also
//!   sends a CancelRequest, which PgBouncer forwards); set the server-side limit for them with
//!   `ALTER ROLE … SET statement_timeout` and PgBouncer's `query_timeout`. A one-time warning at
//!   pool creation and [`Database::health_check`] say so when it is missing. (In `session` mode
//!   the settings are `SET` once per new connection.)
//! * **statements that run on any server connection**: no named statements and no statement
//!   cache. tokio-postgres sends each statement unnamed in one round trip with parameter types
//!   declared from the values (text and JSON as `unknown`, inferred by the server as for a
//!   literal; integers as `int8`, so a function overloaded only for `int4` needs `$1::int4`).
//!   sqlx needs two exchanges per statement with parameters, so an autocommit one runs in a
//!   `BEGIN`/`COMMIT` of its own (four round trips instead of two; an `execute` without
//!   parameters is one simple Query). Inside a transaction nothing changes: the pooler keeps
//!   its server connection.
//! * **migrations**: each file runs in a transaction of its own under
//!   `pg_advisory_xact_lock(hashtext('pgdbm_migration_' || module))`, reading the ledger again
//!   under it (pgdbm for Python ≥ 0.4.1's protocol: both still exclude each other). A
//!   `-- pgdbm:no-transaction` file needs a direct connection: **`direct_url`** (URL key,
//!   [`DatabaseConfigBuilder::direct_url`], `PGDBM_DIRECT_URL`, `pgdbm.toml`), a connection
//!   string whose unset parts are inherited ([`DatabaseConfig::direct_config`]); without one the
//!   run fails with [`Error::Pooler`] naming the file before anything is applied.
//! * **refused** with [`Error::Pooler`] (naming the mode and `direct_url` as the alternative):
//!   what needs one server session across transactions — session advisory locks, `LISTEN`,
//!   cursors outside a transaction ([`driver::refuse_behind_transaction_pooler`]).
//!
//! PgBouncer ≥ 1.21 can carry named prepared statements itself (`max_prepared_statements`),
//! which would let a driver keep its statement cache; pgdbm does not rely on it (and the sqlx
//! driver's transaction mode clears leftover named statements with `DEALLOCATE ALL`, so leave it
//! off for the databases pgdbm's pools use). The settings still cannot travel as startup
//! `options` with it.
//!
//! ## Templates
//!
//! | placeholder | with schema `app` | without schema |
//! |---|---|---|
//! | `{{tables.users}}` | `"app".users` | `users` |
//! | `{{tables.other.users}}` | `"other".users` | `"other".users` |
//! | `{{schema}}.fn()` | `"app".fn()` | `fn()` |
//! | `{{schema}}` | `"app"` | `public` |
//!
//! Schema and table names must match `^[A-Za-z_][A-Za-z0-9_]{0,62}$`; a handle with a bad schema
//! cannot be made ([`Error::Identifier`]) and a malformed placeholder is an [`Error::Template`]
//! naming it. Other text in braces (JSON literals) is left alone. Expansions are cached per handle
//! and SQL text, so a repeated query is neither parsed nor allocated again, and the driver's
//! per-connection statement cache sees the same text every time.
//!
//! ## Queries, values and rows
//!
//! Import [`prelude`] for the [`Executor`] methods (`execute`, `fetch_all`, `fetch_optional`,
//! `batch_execute`) and the [`ExecutorExt`] conveniences (`fetch_one`, `fetch_value`,
//! `fetch_all_as`, `execute_each`, `execute_and_return_id`). Parameters are positional (`$1`) and
//! given with [`params!`]. [`Database::execute_many`] runs a statement once per parameter set in
//! a transaction of its own (all or nothing); `execute_each`, on any executor, is the plain loop
//! (atomic only inside a [`Transaction`]):
//!
//! ```no_run
//! # async fn demo(db: pgdbm::Database) -> pgdbm::Result<()> {
//! use pgdbm::prelude::*;
//! #[derive(serde::Deserialize)]
//! struct User { id: i64, email: String, nickname: Option<String> }
//!
//! let id = db
//!     .execute_and_return_id("INSERT INTO {{tables.users}} (email) VALUES ($1)", params!["ann@example.com"])
//!     .await?;
//! let row = db.fetch_one("SELECT id, email, nickname FROM {{tables.users}} WHERE id = $1", params![id]).await?;
//! let email: String = row.get("email")?;
//! let nickname: Option<String> = row.get("nickname")?; // NULL → None; NULL into String is an error
//! let users: Vec<User> = db.fetch_all_as("SELECT id, email, nickname FROM {{tables.users}}", &[]).await?;
//! # Ok(()) }
//! ```
//!
//! [`Value`] covers NULL, bool, smallint/integer/bigint, real/double, text (and varchar, char,
//! name, citext, enums), bytea, json/jsonb (`serde_json::Value` or [`Json<T>`]), uuid,
//! date/time/timestamp/timestamptz (feature `chrono`, on by default), numeric (feature `decimal`)
//! and one-dimensional arrays of these. Integers bind to any integer column with a range check: an
//! `i32` works against a `BIGINT` column, an out-of-range `i64` is an [`Error::Encode`] naming the
//! parameter, never a silent wrap. A column type pgdbm cannot decode is an
//! [`Error::UnsupportedType`] that suggests a cast (`col::text`).
//!
//! ## Transactions
//!
//! ```no_run
//! # async fn demo(db: pgdbm::Database) -> pgdbm::Result<()> {
//! use pgdbm::prelude::*;
//! // Closure form: commit on Ok, rollback on Err or panic.
//! db.transaction(|tx| async move {
//!     tx.execute("UPDATE {{tables.accounts}} SET balance = balance - 10 WHERE id = $1", params![1]).await?;
//!     // Nested: a savepoint; its failure undoes only its own work.
//!     let _ = tx.transaction(|sp| async move {
//!         sp.execute("INSERT INTO {{tables.audit}} (note) VALUES ($1)", params!["moved 10"]).await
//!     }).await;
//!     Ok::<_, pgdbm::Error>(())
//! }).await?;
//!
//! // Guard form: dropped without commit (early `?`, panic, cancelled future) → rolled back.
//! let tx = db.begin().await?;
//! tx.execute("DELETE FROM {{tables.sessions}}", &[]).await?;
//! tx.commit().await?;
//! # Ok(()) }
//! ```
//!
//! ## Migrations and modules
//!
//! A reusable library implements [`Module`]: a unique name (its ledger key), the migrations it
//! ships — embedded at compile time with one line, [`embed_migrations!`] — and optionally the
//! modules it depends on. The host applies it into whatever schema it chose:
//!
//! ```no_run
//! # async fn demo(pool: pgdbm::SharedPool) -> pgdbm::Result<()> {
//! use pgdbm::prelude::*;
//! use pgdbm::MigrationSource;
//!
//! struct Users;
//! impl Module for Users {
//!     fn name(&self) -> &str { "users" }
//!     fn migrations(&self) -> MigrationSource {
//!         // In a library crate, one line embeds its `migrations/*.sql` at compile time:
//!         // pgdbm::embed_migrations!("migrations")
//!         MigrationSource::from_pairs([(
//!             "001_create_users.sql",
//!             "CREATE TABLE {{tables.users}} (id bigserial PRIMARY KEY, email text NOT NULL);",
//!         )])
//!         .expect("valid migrations")
//!     }
//! }
//!
//! let db = Database::new(pool, Some("users"))?;
//! let report = db.migrate(&Users).await?; // creates the schema if needed
//! for m in &report.applied {
//!     println!("applied {} in {:?}", m.file, m.duration);
//! }
//! # Ok(()) }
//! ```
//!
//! * **Sources**: `embed_migrations!("dir")` (relative to the crate's `Cargo.toml`; files are
//!   `include_str!`-ed, so cargo rebuilds when one changes), [`MigrationSource::from_dir`] at run
//!   time, or [`MigrationSource::from_pairs`] in memory. `*.sql` files ordered by name, hidden
//!   files ignored; an empty or non-UTF-8 file, or a symlink leaving the directory, is an error
//!   naming it.
//! * **Ledger**: pgdbm for Python's `schema_migrations` table in the handle's schema, same
//!   columns, checksum (SHA-256 of the text with CRLF → LF, trimmed) and per-module scoping, so
//!   a Python and a Rust service can share a database module by module. See [`migrate`].
//! * **Applying** ([`Migrator::apply`], [`Database::migrate`], [`Database::migrate_all`] in
//!   dependency order): under `pg_advisory_lock(hashtext('pgdbm_migration_' || module))` on one
//!   dedicated connection, always released (a cancelled or panicking run closes that connection
//!   instead of pooling it). Each file runs in its own transaction with its ledger row; a file
//!   with a line starting `-- pgdbm:no-transaction` runs statement by statement in autocommit
//!   (for `CREATE INDEX CONCURRENTLY`). Templates are expanded. A changed applied file is an
//!   [`Error::ChecksumMismatch`] before anything runs; a failing file stops the run with an
//!   [`Error::Migration`] naming module, file and the server's message.
//! * **Inspecting** (read-only): [`Migrator::status`], [`Migrator::history`],
//!   [`Migrator::dry_run`], [`Migrator::verify`]. **Creating**: [`migrate::create_migration`]
//!   writes `NNN_name.sql` or `YYYYMMDDHHMMSS_name.sql`.
//!
//! Migrations run under the connection's `statement_timeout` (60 s by default): raise it in the
//! config, or put `SET LOCAL statement_timeout = 0;` at the top of a long migration.
//!
//! ## Monitoring
//!
//! [`Database::monitored`] returns another handle on the same pool and schema that records every
//! statement it runs — `execute`, `fetch_*`, `batch_execute`, `execute_many`, `copy_in`, and
//! everything in the transactions it begins — on a [`Monitor`]: a bounded history, slow queries
//! (from [`MonitorOptions::slow_query_threshold`], or per handle with
//! [`Database::with_slow_query_threshold`]), errors with their kind, and per-statement
//! aggregates (count, errors, total, mean, p50, p95, max) keyed by the SQL *before* template
//! expansion. Parameters are recorded only with [`MonitorOptions::record_params`], masked (long
//! strings shortened, bytes as their length). Any other [`Executor`] can be wrapped in
//! [`Monitored`]. An unmonitored handle pays one branch per statement.
//!
//! ```no_run
//! # async fn demo(db: pgdbm::Database) -> pgdbm::Result<()> {
//! use std::time::Duration;
//! use pgdbm::prelude::*;
//! use pgdbm::MonitorOptions;
//!
//! let db = db.monitored(MonitorOptions::default().slow_query_threshold(Duration::from_millis(100)));
//! // … the application runs its queries through `db` …
//! let monitor = db.monitor().expect("monitored");
//! for s in monitor.slowest(5) {
//!     println!("{:>6} calls, total {:?}, p95 {:?}, max {:?}: {}", s.count, s.total, s.p95, s.max, s.sql);
//! }
//! let m = db.metrics();
//! if let Some(pool) = m.pool {
//!     println!(
//!         "pool: {} open, {} idle, {} in use of {}, {} waiting, {} timeouts ({:.0}% used)",
//!         pool.size, pool.idle, pool.in_use, pool.max_size, pool.waiting, pool.timed_out,
//!         m.utilization * 100.0
//!     );
//! }
//! println!("{} statements, {} failed, {} slow", m.total_queries, m.total_errors, m.slow_queries);
//!
//! // Why is it slow? EXPLAIN (FORMAT JSON); ANALYZE runs in a transaction that is rolled back.
//! let plan = db.explain_analyze("SELECT * FROM {{tables.users}} WHERE email = $1", params!["a@b.c"]).await?;
//! println!("{plan}"); // e.g. "Seq Scan on users (cost 25.88, rows 6; actual 0.015 ms, 1 rows; …)"
//!
//! // Health: round trip, server version, pool state, blocked and long-running statements.
//! let report = db.health_check().await; // never an Err: an unreachable server is Unhealthy
//! println!("{:?}: {:?}", report.status, report.reasons);
//! # Ok(()) }
//! ```
//!
//! Diagnostics: [`Database::find_blocking_queries`], [`Database::find_long_running_queries`],
//! [`Database::table_sizes`] (see [`monitor`]).
//!
//! **`tracing`**: every statement of a [`Database`] or [`Transaction`] runs in a `DEBUG` span
//! `pgdbm.query` (target `pgdbm::query`) with OpenTelemetry's database fields — `db.system =
//! "postgresql"`, `db.namespace` (when the handle was opened from a config),
//! `db.operation.name`, `db.query.text` (the template text, cut to 200 characters) — plus
//! `pgdbm.schema`, `pgdbm.operation` and `error.type` on failure. Slow statements of a
//! monitored handle are logged at `warn` (target `pgdbm::monitor`) with their duration.
//! Parameter values never appear in spans, and in the slow-query event only masked and only with
//! `record_params`. Without a subscriber interested in the span, its fields are not computed.
//!
//! ## Errors
//!
//! One [`Error`] enum. Server errors carry their SQLSTATE, classified by [`Error::kind`]
//! (`is_unique_violation()`, `is_serialization_failure()`, …), with constraint and table names.
//! Messages include the SQL (cut to 200 characters) but never parameter values or passwords; the
//! server's `DETAIL`, which can quote row values, is kept in [`DbError::detail`] only, and the
//! input a data exception quotes in its message is hidden ([`DbError::redacted_message`]). Causes
//! are reached through [`std::error::Error::source`]. A lost connection is
//! [`Error::ConnectionLost`]; [`Error::is_connection_error`] tells apart the failures a pool
//! recovers from by itself (lost or ended sessions, refused connects) once the server is back.
//!
//! ## Writing a driver
//!
//! Everything a driver author needs is in [`driver`], apart from the application API at the crate
//! root. Implement [`driver::Driver`], [`driver::PoolProvider`] and [`driver::Connection`] (both
//! are [`Executor`]s), keep the pool's closed flag, waiters and last connect failure in a
//! [`driver::PoolState`], then run the
//! shared test suite of the `pgdbm-conformance` crate (a dev-dependency) with one line in
//! `tests/conformance.rs`: `pgdbm_conformance::conformance_tests!(MyDriver);`.

mod config;
mod database;
mod de;
pub mod driver;
mod error;
mod executor;
mod from_row;
pub mod migrate;
pub mod monitor;
mod redact;
mod row;
mod template;
#[cfg(test)]
mod test_support;
mod transaction;
mod value;

pub use config::{DatabaseConfig, DatabaseConfigBuilder, Pooler, RetryPolicy, SslConfig, SslMode};
pub use database::Database;
pub use driver::{PoolStats, SharedPool};
pub use error::{BoxError, DbError, Error, ErrorKind, MAX_SQL_IN_ERROR, Result, truncate_sql};
pub use executor::{Executor, ExecutorExt};
pub use from_row::FromRow;
pub use migrate::module::{Module, order_modules};
pub use migrate::{MigrationReport, MigrationSource, Migrator};
pub use monitor::{HealthReport, HealthStatus, Monitor, MonitorOptions, Monitored};
/// Embeds a directory of `*.sql` migrations into the crate at compile time; see
/// [the migrations section](crate#migrations).
pub use pgdbm_macros::embed_migrations;
pub use row::{Column, ColumnIndex, Row};
pub use template::{ExpandedSql, Templates, quote_identifier, validate_identifier};
pub use transaction::Transaction;
pub use value::{ArrayElement, FromValue, Json, Kind, Params, ToParam, Value};

/// The traits and macro most code needs: `use pgdbm::prelude::*;`.
pub mod prelude {
    pub use crate::executor::{Executor, ExecutorExt};
    pub use crate::params;
    pub use crate::{Database, Module, Transaction};
}
