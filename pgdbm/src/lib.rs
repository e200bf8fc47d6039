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
//! use pgdbm::{Database, PoolProvider};
//! use pgdbm_driver_tokio_postgres::TokioPostgresPool;
//!
//! let pool: Arc<dyn PoolProvider> = Arc::new(TokioPostgresPool::connect(&config).await?);
//! let users = Database::new(pool.clone(), Some("users"))?;     // shared: close() leaves the pool open
//! let billing = Database::new(pool.clone(), Some("billing"))?;
//! # Ok(()) }
//! ```
//!
//! No `SET search_path` is issued on pooled connections: schema isolation comes from templates,
//! which keeps pgdbm safe behind PgBouncer in transaction mode.
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
//! `fetch_all_as`, `execute_many`, `execute_and_return_id`). Parameters are positional (`$1`) and
//! given with [`params!`]:
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
//! ## Errors
//!
//! One [`Error`] enum. Server errors carry their SQLSTATE, classified by [`Error::kind`]
//! (`is_unique_violation()`, `is_serialization_failure()`, …), with constraint and table names.
//! Messages include the SQL (cut to 200 characters) but never parameter values or passwords; the
//! server's `DETAIL`, which can quote row values, is kept in [`DbError::detail`] only. Causes are
//! reached through [`std::error::Error::source`].
//!
//! ## Writing a driver
//!
//! Implement [`Driver`], [`PoolProvider`] and [`Connection`] (both are [`Executor`]s), then run the
//! shared test suite with one line in `tests/conformance.rs`:
//! `pgdbm::conformance_tests!(MyDriver);` (feature `conformance`).

mod config;
mod database;
mod error;
mod executor;
mod pool;
mod row;
mod template;
mod transaction;
mod value;

pub use config::{DatabaseConfig, DatabaseConfigBuilder, RetryPolicy, SslConfig, SslMode};
pub use database::Database;
pub use error::{BoxError, DbError, Error, ErrorKind, MAX_SQL_IN_ERROR, Result, truncate_sql};
pub use executor::{Executor, ExecutorExt};
pub use pool::{Connection, Driver, PoolProvider, PoolStats, PooledConnection, SharedPool};
pub use row::{Column, ColumnIndex, Columns, Row};
pub use template::{ExpandedSql, Templates, quote_identifier, validate_identifier};
pub use transaction::Transaction;
pub use value::{ArrayElement, FromValue, Json, Kind, Params, ToParam, Value};

/// The traits and macro most code needs: `use pgdbm::prelude::*;`.
pub mod prelude {
    pub use crate::executor::{Executor, ExecutorExt};
    pub use crate::params;
    pub use crate::{Database, Transaction};
}

#[cfg(feature = "conformance")]
pub mod conformance;
