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
#[cfg(feature = "tls")]
mod tls_servers;

#[cfg(feature = "tls")]
pub use certs::{CLIENT_CERT_USER, TestCerts};
pub use database::{CloneStrategy, TestDatabase, TestDatabaseBuilder, drop_templates};
pub use dedicated::{DedicatedServer, DedicatedServerBuilder};
pub use fixtures::{load_json, load_json_fixture, load_sql_fixture};
pub use helpers::{
    RollbackOnly, TableDiff, TableSnapshot, assert_table_unchanged, count_rows, rollback_after,
    snapshot_table, table_diff, table_exists, truncate,
};
pub use pgbouncer::{PGBOUNCER_POOL_SIZE, PgBouncer};
pub use schema::{SHARED_DATABASE, TestSchema};
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
        }
    )*};
}
delegate_executor!(TestDatabase, TestSchema);
