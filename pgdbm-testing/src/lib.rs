//! # pgdbm-testing
//!
//! An isolated, migrated PostgreSQL database per test, in milliseconds, on any machine with
//! PostgreSQL installed — for code built on [`pgdbm`], with either driver.
//!
//! Each test gets its own database, `CREATE DATABASE … TEMPLATE` of a template that was
//! migrated **once** (per migration set, across test runs and processes), so tests run in
//! parallel without sharing state and without running all migrations again.
//!
//! ```no_run
//! use pgdbm::prelude::*;
//! use pgdbm::MigrationSource;
//! use pgdbm_driver_tokio_postgres::TokioPostgres;
//! use pgdbm_testing::{TestDatabase, assert_table_unchanged, count_rows, load_json, snapshot_table};
//!
//! struct Users;
//! impl Module for Users {
//!     fn name(&self) -> &str { "users" }
//!     fn migrations(&self) -> MigrationSource {
//!         // In a library crate: pgdbm::embed_migrations!("migrations")
//!         MigrationSource::from_pairs([(
//!             "001_users.sql",
//!             "CREATE TABLE {{tables.users}} (id bigserial PRIMARY KEY, email text NOT NULL UNIQUE);",
//!         )])
//!         .expect("valid migrations")
//!     }
//! }
//!
//! #[tokio::test]
//! async fn signup_adds_one_user() -> pgdbm::Result<()> {
//!     // A fresh database with the module migrated into schema `users`, dropped at the end
//!     // (also when the test panics; PGDBM_TEST_KEEP=1 keeps it and prints its name).
//!     let db = TestDatabase::<TokioPostgres>::builder()
//!         .module(&Users)
//!         .schema("users")
//!         .build()
//!         .await?;
//!     load_json(&db, r#"{"users": [{"email": "ann@example.com"}]}"#).await?;
//!
//!     db.execute("INSERT INTO {{tables.users}} (email) VALUES ($1)", params!["bob@example.com"])
//!         .await?;
//!     assert_eq!(count_rows(&db, "users").await?, 2);
//!
//!     // A failing signup must not touch the table.
//!     let before = snapshot_table(&db, "users").await?;
//!     let dup = db.execute("INSERT INTO {{tables.users}} (email) VALUES ($1)", params!["ann@example.com"]).await;
//!     assert!(dup.unwrap_err().is_unique_violation());
//!     assert_table_unchanged(&db, &before).await;
//!     Ok(())
//! }
//! # fn main() {}
//! ```
//!
//! The same test as one attribute, [`test`] (the database is the test's parameter; fixtures and
//! several modules in several schemas are arguments):
//!
//! ```no_run
//! # use pgdbm::MigrationSource;
//! # struct Users;
//! # impl pgdbm::Module for Users {
//! #     fn name(&self) -> &str { "users" }
//! #     fn migrations(&self) -> MigrationSource { MigrationSource::from_pairs([("001.sql", "SELECT 1")]).unwrap() }
//! # }
//! use pgdbm_testing::{TestDatabase, count_rows};
//!
//! #[pgdbm_testing::test(module = Users, schema = "users", fixtures = ["tests/fixtures/users.json"])]
//! async fn fixtures_are_there(db: TestDatabase) -> pgdbm::Result<()> {
//!     assert_eq!(count_rows(&db, "users").await?, 2);
//!     Ok(())
//! }
//! # fn main() {}
//! ```
//!
//! Any driver works: `TestDatabase::<D>` for any [`pgdbm::driver::Driver`] (`TokioPostgres`,
//! `SqlxDriver`). Nothing in this crate depends on a particular driver.
//!
//! ## The server
//!
//! [`TestServer::shared`] finds one server per test process, in this order:
//!
//! 1. `PGDBM_TEST_URL` — when set it must work (no fallback: a typo should not go unnoticed);
//! 2. `DATABASE_URL`;
//! 3. `TEST_DB_HOST` / `TEST_DB_PORT` / `TEST_DB_USER` / `TEST_DB_PASSWORD`;
//! 4. the local default: the libpq `PG*` variables, else `localhost:5432` as the current OS
//!    user (one attempt, 2 s timeout);
//! 5. a **throwaway server** ([`TestServer::start_throwaway`]): `initdb` + `pg_ctl` from `PATH`,
//!    `pg_config --bindir` or the highest `/usr/lib/postgresql/*/bin`, in a temporary directory,
//!    on a Unix socket there and a free port on 127.0.0.1, with `fsync`, `full_page_writes` and
//!    `synchronous_commit` off. Run as root, it runs as the `postgres` OS user. A small watcher
//!    process stops it (`SIGQUIT`, immediate shutdown) and deletes the directory once the test
//!    process has exited.
//!
//! A candidate is used when a connection succeeds and its role may create databases. When
//! nothing works, the error lists every candidate and why it failed.
//!
//! ## A server of the test's own
//!
//! [`DedicatedServer`] is for tests that must not touch the shared server: it is started for
//! its owner with extra settings, its own `pg_hba.conf`, a superuser password and, with feature
//! `tls`, TLS on using `TestCerts` (a CA, a `localhost` server certificate and a client
//! certificate, generated when the test runs). Its owner may [`stop`](DedicatedServer::stop),
//! [`start`](DedicatedServer::start) and [`restart`](DedicatedServer::restart) it; it is removed
//! when dropped.
//!
//! With feature `tls`, `TlsTestServers` sets up the two servers of the TLS checks of
//! `pgdbm-conformance` (one with TLS and client certificates, one without), once per test
//! process with `TlsTestServers::shared`.
//!
//! ## Per-test databases
//!
//! [`TestDatabaseBuilder::build`]: the migration set (modules, [`MigrationSource`](pgdbm::MigrationSource)s,
//! directories, and the schema) is hashed into a template name `pgdbm_tpl_<16 hex>`. The first
//! test to need it creates and migrates it under `pg_advisory_lock(hashtext(
//! 'pgdbm_testing_template'))` on the maintenance database `postgres`, then marks it
//! `IS_TEMPLATE` (and not connectable, so clones never wait). Every test then gets
//! `CREATE DATABASE pgdbm_test_<pid>_<n>_<random> TEMPLATE pgdbm_tpl_…` (`STRATEGY =
//! FILE_COPY` when the server runs with `fsync = off`, else `WAL_LOG`: see [`CloneStrategy`])
//! and an owned pool on it. `CREATE`/`DROP DATABASE` run on one connection kept by a background
//! thread for the whole process (each test has its own runtime, so tests cannot share a pool).
//! On a local server that thread keeps one spare clone per template, made right after it hands
//! one out, so a test usually waits only for its own connection (a spare left when the process
//! ends is swept by the next run). Templates stay on the server for the next run (a changed migration
//! makes a new one; [`drop_templates`] removes them all).
//!
//! Dropping the guard runs `DROP DATABASE … WITH (FORCE)` on a thread of its own, so it works
//! in async tests and while a failing test unwinds. Databases of test processes that were
//! killed (`pgdbm_test_<pid>_…` whose pid no longer runs) are dropped at the first build of the
//! next run — on local servers only, where process ids can be checked.
//!
//! A template can hold several modules, each in a schema of its own
//! ([`TestDatabaseBuilder::module_in`], reached with [`TestDatabase::module_db`]); the schemas
//! are part of the template's hash.
//!
//! [`TestSchema`] is the lighter variant: a fresh schema in the shared database
//! `pgdbm_testing_shared`, migrations run into it, dropped (`CASCADE`) at the end.
//!
//! ## Fixtures and assertions
//!
//! * [`load_sql_fixture`]: a `.sql` script, templates expanded for the handle's schema.
//! * [`load_json_fixture`] / [`load_json`]: `{"table": [ {"column": value} ]}`, inserted in one
//!   transaction in document order, the values sent as parameters.
//! * [`snapshot_table`], [`table_diff`], [`assert_table_unchanged`]; [`count_rows`],
//!   [`table_exists`], [`truncate`] (names validated as identifiers).
//! * [`rollback_after`] and [`RollbackOnly`]: a transaction that is always rolled back, with
//!   nested transactions as savepoints.
//!
//! ## Environment
//!
//! | variable | effect |
//! |---|---|
//! | `PGDBM_TEST_URL`, `DATABASE_URL`, `TEST_DB_*`, `PG*` | the server (see above) |
//! | `PGDBM_TEST_KEEP=1` | keep every test database/schema and print its name |
//! | `PGDBM_TEST_VERBOSE=1` | report when a throwaway server is started |

mod admin;
#[cfg(feature = "tls")]
mod certs;
mod database;
mod dedicated;
mod fixtures;
mod helpers;
mod pgbouncer;
mod schema;
mod server;
mod test_attr;
#[cfg(feature = "tls")]
mod tls_servers;

#[cfg(feature = "tls")]
pub use certs::{CLIENT_CERT_USER, EncryptedKey, TestCerts, encrypt_key};
pub use database::{CloneStrategy, TestDatabase, TestDatabaseBuilder, drop_templates};
pub use dedicated::{DedicatedServer, DedicatedServerBuilder};
pub use fixtures::{load_fixtures, load_json, load_json_fixture, load_sql_fixture};
pub use helpers::{
    RollbackOnly, TableDiff, TableSnapshot, assert_table_unchanged, count_rows, count_rows_where,
    rollback_after, snapshot_table, table_diff, table_exists, truncate,
};
pub use pgbouncer::{PGBOUNCER_POOL_SIZE, PgBouncer};
pub use schema::{SHARED_DATABASE, TestSchema};

/// An async test that gets a database of its own, cloned from a template with the modules
/// migrated, and drops it afterwards — also when the test panics.
///
/// ```no_run
/// # use pgdbm::MigrationSource;
/// # struct Users;
/// # impl pgdbm::Module for Users {
/// #     fn name(&self) -> &str { "users" }
/// #     fn migrations(&self) -> MigrationSource { MigrationSource::from_pairs([("001.sql", "SELECT 1")]).unwrap() }
/// # }
/// # struct Audit;
/// # impl pgdbm::Module for Audit {
/// #     fn name(&self) -> &str { "audit" }
/// #     fn migrations(&self) -> MigrationSource { MigrationSource::from_pairs([("001.sql", "SELECT 1")]).unwrap() }
/// # }
/// use pgdbm::prelude::*;
/// use pgdbm_testing::TestDatabase;
///
/// #[pgdbm_testing::test(module = Users, schema = "users")]
/// async fn signup(db: TestDatabase) -> pgdbm::Result<()> {
///     db.execute("INSERT INTO {{tables.users}} (email) VALUES ($1)", params!["ann@example.com"])
///         .await?;
///     Ok(())
/// }
///
/// // Two modules in two schemas, fixtures, the sqlx driver.
/// #[pgdbm_testing::test(
///     modules = [Users = "users", Audit = "audit"],
///     fixtures = ["tests/fixtures/users.json"],
///     driver = Sqlx,
/// )]
/// async fn signup_is_audited(db: TestDatabase) {
///     let audit = db.module_db("audit").unwrap(); // scoped to "audit"; `db` is scoped to "users"
///     // …
/// #   let _ = audit;
/// }
/// # fn main() {}
/// ```
///
/// The function is `async`, takes one parameter — the [`TestDatabase`] (written `TestDatabase`,
/// or `TestDatabase<Driver>`) — and may return `()` or a `Result`. It becomes a `#[test]` that
/// runs it on a current-thread tokio runtime, as `#[tokio::test]` does; other attributes
/// (`#[should_panic]`, `#[ignore]`) stay on it.
///
/// | argument | meaning |
/// |---|---|
/// | `module = M` | migrate module `M` (an expression whose value implements [`pgdbm::Module`]) |
/// | `modules = [A = "a", B = "b", C]` | several modules; `= "schema"` migrates that module into a schema of its own (reach it with [`TestDatabase::module_db`]); one without goes into the default schema. Dependencies are applied first, across schemas |
/// | `schema = "s"` | the default schema: the handle's, and that of modules without their own. Without it, the first module's own schema, else none |
/// | `fixtures = ["seed.json", "more.sql"]` | loaded in order through the handle after migrating: `.json` with [`load_json`], `.sql` as a script (templates expanded). Paths are relative to the crate's `Cargo.toml` and embedded at compile time, so a missing file is a compile error |
/// | `driver = Sqlx` | the driver: `Sqlx` (`pgdbm_driver_sqlx::SqlxDriver`), `TokioPostgres` (the default, `pgdbm_driver_tokio_postgres::TokioPostgres`) or any path to a [`pgdbm::driver::Driver`]. Without it, the one in `TestDatabase<…>` if written. The driver's crate must be a dependency of the test's crate |
///
/// The template is built once per migration set (as [`TestDatabaseBuilder::build`] does: per
/// process, and kept between runs) and each test clones it. A database that cannot be set up,
/// or a fixture that cannot be loaded, fails the test with a message naming the test and the
/// cause. `PGDBM_TEST_KEEP=1` keeps the databases and prints their names.
pub use pgdbm_macros::test;

/// What the expansion of [`test`] calls. Not a public API.
#[doc(hidden)]
pub mod __private {
    pub use crate::test_attr::{Fixture, FixtureKind, Module, block_on, provision};
}
pub use server::{ServerSource, TestServer, find_postgres_binaries, server_config};
#[cfg(feature = "tls")]
pub use tls_servers::{TLS_SCRAM_USER, TlsTestServers, tls_hba_lines};

/// The guards are executors too (delegating to their [`Database`](pgdbm::Database)), so the
/// helpers take `&db` directly.
macro_rules! delegate_executor {
    ($($guard:ident),*) => {$(
        #[async_trait::async_trait]
        impl<D: pgdbm::driver::Driver> pgdbm::Executor for $guard<D> {
            async fn execute(&self, sql: &str, params: pgdbm::Params<'_>) -> pgdbm::Result<u64> {
                pgdbm::Executor::execute(&**self, sql, params).await
            }
            async fn fetch_all(
                &self,
                sql: &str,
                params: pgdbm::Params<'_>,
            ) -> pgdbm::Result<Vec<pgdbm::Row>> {
                pgdbm::Executor::fetch_all(&**self, sql, params).await
            }
            async fn fetch_optional(
                &self,
                sql: &str,
                params: pgdbm::Params<'_>,
            ) -> pgdbm::Result<Option<pgdbm::Row>> {
                pgdbm::Executor::fetch_optional(&**self, sql, params).await
            }
            async fn batch_execute(&self, sql: &str) -> pgdbm::Result<()> {
                pgdbm::Executor::batch_execute(&**self, sql).await
            }
            fn fetch<'a>(
                &'a self,
                sql: &str,
                params: pgdbm::Params<'a>,
            ) -> pgdbm::RowStream<'a> {
                pgdbm::Executor::fetch(&**self, sql, params)
            }
            fn schema(&self) -> Option<&str> {
                pgdbm::Executor::schema(&**self)
            }
        }
    )*};
}
delegate_executor!(TestDatabase, TestSchema);
