//! # pgdbm-driver-sqlx
//!
//! The [sqlx] driver for [pgdbm]: pgdbm's [`Database`](pgdbm::Database) handles,
//! transactions, migrations and modules on a `sqlx::PgPool`. Use it when your application already
//! runs sqlx; otherwise `pgdbm-driver-tokio-postgres` is the default driver. Both drivers pass the
//! same conformance suite (`pgdbm::conformance`), so a module behaves identically on either.
//!
//! | type | what it is |
//! |---|---|
//! | [`SqlxDriver`] | the driver marker: `Database::connect::<SqlxDriver>(&config)` |
//! | [`SqlxPool`] | a `sqlx::PgPool` as a pgdbm `PoolProvider` (open one, or wrap yours) |
//! | [`SqlxConnection`] | one checked-out connection (transactions, COPY) |
//!
//! ## Swapping drivers is one line
//!
//! Module code only sees [`Database`](pgdbm::Database), `Transaction` and `&dyn Executor`. A
//! deployment picks its driver where it opens the pool:
//!
//! ```no_run
//! # async fn demo(config: pgdbm::DatabaseConfig) -> pgdbm::Result<()> {
//! use pgdbm::prelude::*;
//! use pgdbm_driver_sqlx::SqlxDriver;
//!
//! // Before: let db = Database::connect::<TokioPostgres>(&config).await?;
//! let db = Database::connect::<SqlxDriver>(&config).await?;
//! let n: i64 = db.fetch_value("SELECT count(*) FROM {{tables.users}}", &[]).await?;
//! # Ok(()) }
//! ```
//!
//! ## Wrapping the `PgPool` your application already has
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use pgdbm::prelude::*;
//! use pgdbm::SharedPool;
//! use pgdbm_driver_sqlx::{SqlxPool, sqlx};
//!
//! let pg_pool = sqlx::PgPool::connect("postgresql://app@localhost/app").await?;
//! // pgdbm modules and your own sqlx queries share the same connections.
//! let pool: SharedPool = Arc::new(SqlxPool::from_pool(pg_pool.clone()));
//! let users = Database::new(pool.clone(), Some("users"))?;
//! let billing = Database::new(pool, Some("billing"))?;
//! let id: i64 = sqlx::query_scalar("SELECT 1::int8").fetch_one(&pg_pool).await?;
//! # let _ = (users, billing, id);
//! # Ok(()) }
//! ```
//!
//! A wrapped pool keeps its own connect options and `after_connect` hook: the server settings of
//! a `DatabaseConfig` (timeouts, `application_name`, init commands) are not applied to it. Keep
//! sqlx's statement cache on (its default): see below.
//!
//! ## How it maps onto sqlx
//!
//! * **Configuration** ([`SqlxPool::connect`]): host (or Unix socket directory when it starts
//!   with `/`), port, database, user, password and `application_name` go to `PgConnectOptions`;
//!   the three server timeouts and the extra server settings are sent in the startup packet
//!   (`options=-c …`); pool sizes, acquire/idle timeouts and max lifetime go to `PgPoolOptions`
//!   (`test_before_acquire(false)`); init commands run in `after_connect`. The first connection
//!   is made eagerly with the configured [`RetryPolicy`](pgdbm::RetryPolicy); authentication
//!   failures and unknown databases are not retried, and [`pgdbm::Error::Connect`] carries the
//!   server's error as its source (`err.kind()` works). TLS: `disable`, `allow` and `prefer` only
//!   for now (no TLS backend is compiled in); `require`/`verify-*` are an
//!   [`Error::Config`](pgdbm::Error::Config) naming `ssl_mode`.
//! * **Parameters**: sqlx binds with Rust-declared types; pgdbm binds to the *statement's*
//!   parameter types like the tokio-postgres driver does (an `i32` into `bigint`, an `i64` into
//!   `integer` with a range check, `NULL` into anything, text into `uuid`/`json`/enums). The
//!   statement is prepared first — a hit in sqlx's per-connection statement cache after its first
//!   use, so no extra round trip — and every value is written in the binary format of its
//!   parameter's type. A value that does not fit is [`Error::Encode`](pgdbm::Error::Encode)
//!   (never the value itself); a wrong count is
//!   [`Error::ParameterCount`](pgdbm::Error::ParameterCount).
//! * **Statement cache**: sqlx's named, per-connection LRU cache, sized by
//!   `statement_cache_capacity` (a capacity of 0 is treated as 1: the driver needs the cache to
//!   learn parameter types without leaking statements).
//! * **Rows**: the same types as the tokio-postgres driver (bool, int2/4/8, oid, float4/8,
//!   text/varchar/bpchar/name/citext/enums, bytea, json/jsonb, uuid, date/time/timestamp/
//!   timestamptz, numeric with feature `decimal`, void as NULL, one-dimensional arrays of the
//!   built-in ones); column type names as `pg_type.typname` spells them (`int4`, `_text`).
//! * **COPY**: `copy_in` writes PostgreSQL's binary COPY format through sqlx's `copy_in_raw`; a
//!   bad value aborts the COPY, nothing is written.
//! * **Pool stats**: size and idle from sqlx; timed-out acquires, connections created (counted in
//!   `after_connect`) and closed (created − open) by the driver; `waiting` is not exposed by sqlx
//!   (always 0).
//! * **Closing** ([`PoolProvider::close`](pgdbm::PoolProvider::close)): sqlx's `close` marks the
//!   pool closed at once and closes idle connections; connections still checked out close when
//!   returned (`close` waits at most 1 s for them).
//!
//! ## Features
//!
//! * `chrono` (default): date/time values as chrono types;
//! * `decimal`: `numeric` as `rust_decimal::Decimal`.

mod conn;
mod error;
mod pool;
mod types;

pub use conn::SqlxConnection;
pub use pool::{SqlxDriver, SqlxPool};

pub use sqlx;
