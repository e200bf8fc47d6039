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
//!   server's error as its source (`err.kind()` works). TLS: see [below](#tls).
//! * **Listener connections** for [`pgdbm::Listener`]: sqlx's `PgListener`, each on a private
//!   one-connection pool with the pool's connect options and init commands (outside the pool;
//!   for a wrapped `PgPool`, its connect options without its `after_connect` hook). sqlx's own
//!   reconnect is off: pgdbm reconnects, listens again and reports it.
//! * **Parameters**: sqlx binds with Rust-declared types; pgdbm binds to the *statement's*
//!   parameter types like the tokio-postgres driver does (an `i32` into `bigint`, an `i64` into
//!   `integer` with a range check, `NULL` into anything, text into `uuid`/`json`/enums), and
//!   writes every value in the binary format of its parameter's type. A value that does not fit
//!   is [`Error::Encode`](pgdbm::Error::Encode) (never the value itself); a wrong count is
//!   [`Error::ParameterCount`](pgdbm::Error::ParameterCount).
//! * **Parameter types, learned once per pool**: the first execution of a SQL text prepares it
//!   (one round trip, as any first use on a connection) and the pool keeps its parameter types,
//!   so later executions neither ask the connection again nor wait. To keep those types right on
//!   every connection, the text pgdbm sends is the SQL followed by a comment naming what the pool
//!   learned, `…\n/* pgdbm:17 */`: it shows in `pg_stat_activity` and the server log, not in
//!   pgdbm's errors; error positions and `pg_stat_statements`' query id are unchanged, and a
//!   statement of the same SQL the application prepares itself on a wrapped `PgPool` stays
//!   apart. The types follow schema changes: a value that does not fit a type learned before
//!   makes the driver learn the types again at once, and a statement the server refuses because
//!   of a changed schema (a column's type altered: SQLSTATE class 42 or 0A, or `22P03`) fails
//!   once and is learned again at its next execution. At most 2048 SQL texts are kept per pool
//!   (then it starts over).
//! * **Statement cache**: sqlx's named, per-connection LRU cache, sized by
//!   `statement_cache_capacity` (a capacity of 0 is treated as 1: the driver needs the cache to
//!   keep the statement it learns the types from until it runs it).
//! * **Rows**: the same types as the tokio-postgres driver (bool, int2/4/8, oid, float4/8,
//!   text/varchar/bpchar/name/citext/enums, bytea, json/jsonb, uuid, date/time/timestamp/
//!   timestamptz, interval, numeric (read with pgdbm's `decimal`), void as NULL, one-dimensional arrays of the
//!   built-in ones); column type names as `pg_type.typname` spells them (`int4`, `_text`).
//! * **COPY**: `copy_in` writes PostgreSQL's binary COPY format through sqlx's `copy_in_raw`; a
//!   bad value aborts the COPY, nothing is written.
//! * **Pool stats**: size and idle from sqlx; timed-out acquires, connections created (counted in
//!   `after_connect`) and closed (created − open) by the driver; `waiting` is not exposed by sqlx
//!   (always 0).
//! * **Closing** ([`PoolProvider::close`](pgdbm::driver::PoolProvider::close)): sqlx's `close` marks the
//!   pool closed at once and closes idle connections; connections still checked out close when
//!   returned (`close` waits at most 1 s for them).
//!
//! ## TLS
//!
//! With the `tls` feature (on by default) the driver uses sqlx's rustls backend (the `ring`
//! provider, the Mozilla roots of `webpki-roots`; the same rustls 0.23 as the tokio-postgres
//! driver). The settings are pgdbm's: [`SslMode`](pgdbm::SslMode) and the three files of
//! [`SslConfig`](pgdbm::SslConfig), set with the builder, the connection string (`sslmode`,
//! `sslrootcert`, `sslcert`, `sslkey`) or the `PGSSL*` variables
//! ([`DatabaseConfigBuilder::env`](pgdbm::DatabaseConfigBuilder::env)).
//!
//! ```no_run
//! # async fn demo() -> pgdbm::Result<()> {
//! use pgdbm::prelude::*;
//! use pgdbm::{DatabaseConfig, SslMode};
//! use pgdbm_driver_sqlx::SqlxDriver;
//!
//! let config = DatabaseConfig::builder()
//!     .url("postgresql://app@db.internal:5432/shop")
//!     .ssl_mode(SslMode::VerifyFull)
//!     .ssl_ca_file("/etc/pgdbm/root.crt")
//!     // A client certificate and its key (mutual TLS), e.g. for `hostssl … cert`.
//!     .ssl_cert_file("/etc/pgdbm/client.crt")
//!     .ssl_key_file("/etc/pgdbm/client.key")
//!     .build()?;
//! // The same: postgresql://app@db.internal/shop?sslmode=verify-full&sslrootcert=/etc/pgdbm/root.crt&sslcert=…&sslkey=…
//! let db = Database::connect::<SqlxDriver>(&config).await?;
//! let tls: bool = db
//!     .fetch_value("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()", &[])
//!     .await?;
//! assert!(tls);
//! # Ok(()) }
//! ```
//!
//! | `ssl_mode` | sqlx mode | server certificate |
//! |---|---|---|
//! | `disable` | `Disable` | — (no TLS) |
//! | `allow` | `Prefer` | not checked (sqlx has no `allow`: `prefer` is the nearest) |
//! | `prefer` | `Prefer` | not checked, **even with `ssl_ca_file`** |
//! | `require` | `Require` | not checked |
//! | `require` with `ssl_ca_file` | `VerifyCa` | checked as `verify-ca` (libpq's rule) |
//! | `verify-ca` | `VerifyCa` | chain checked — and the host name, see below |
//! | `verify-full` | `VerifyFull` | chain and host name (DNS name or IP address) checked |
//!
//! `ssl_ca_file` becomes sqlx's `ssl_root_cert`, `ssl_cert_file`/`ssl_key_file` its
//! `ssl_client_cert`/`ssl_client_key` (a client certificate is sent in every mode that uses
//! TLS). Over a Unix socket there is never TLS, whatever the mode, as in libpq.
//!
//! sqlx reads the files at every TLS handshake and reports a missing one without its path, so
//! the driver reads each configured file when the pool opens: an unreadable file, a root or
//! client certificate file without `-----BEGIN CERTIFICATE-----`, or a key file without a PEM
//! private key (or with an encrypted one and no `ssl_key_password`) is an
//! [`Error::Config`](pgdbm::Error::Config) naming the field and the path. An encrypted PKCS#8
//! key is decrypted with `ssl_key_password` (libpq's `sslpassword`) when the pool opens and
//! handed to sqlx inline (sqlx has no password setting of its own); a wrong password is an
//! `Error::Config` naming `ssl_key_password`. A refused server certificate ("unknown issuer", "not valid for the
//! host name"), a TLS alert from the server (e.g. a client certificate it does not trust), or a
//! server without TLS where the mode requires it is an [`Error::Connect`](pgdbm::Error::Connect)
//! whose source is a [`TlsError`](pgdbm::driver::TlsError) saying what failed; it is not
//! retried. A refusal by the server after the handshake (`pg_hba.conf`, a missing client
//! certificate, a wrong password: SQLSTATE class 28) is an `Error::Connect` caused by the
//! server's error (`err.kind()` is `InvalidAuthorization`), not retried either, and never a pool
//! timeout. Passwords never appear in errors or logs.
//!
//! ### Where sqlx 0.8 differs from libpq
//!
//! * **`allow`** is `prefer` (TLS first, not plain text first).
//! * **`prefer`** never checks the server certificate, even with `ssl_ca_file` (libpq checks the
//!   chain then), and does not fall back to plain text when the TLS handshake fails (libpq
//!   retries without TLS): a server whose certificate cannot be used makes `prefer` fail.
//! * **`verify-ca` also checks the host name** (so does `require` with `ssl_ca_file`): sqlx
//!   0.8.6 does not recognise the "not valid for name" error of rustls ≥ 0.23.24
//!   (sqlx issue #3793, fixed after 0.8.6). Connecting by IP address or another name than the
//!   certificate's fails with "not valid for the host name"; use the certificate's name, or
//!   `verify-full`, which does the same. This fails closed: nothing is accepted that libpq
//!   would refuse.
//! * **Trusted roots**: with `ssl_ca_file`, its certificates *in addition to* the Mozilla roots
//!   of `webpki-roots` (libpq trusts the file alone), so a certificate from a public CA for the
//!   server's host name is accepted too. Without `ssl_ca_file`, `verify-*` trust the Mozilla
//!   roots (libpq needs `~/.postgresql/root.crt` or `sslrootcert=system`). The tokio-postgres
//!   driver trusts `ssl_ca_file` alone.
//! * **No channel binding**: SCRAM authentication over TLS uses `SCRAM-SHA-256`, never
//!   `SCRAM-SHA-256-PLUS` (libpq's default `channel_binding=prefer` binds to the certificate).
//! * **Encrypted keys**: PKCS#8 only (`-----BEGIN ENCRYPTED PRIVATE KEY-----`, decrypted by
//!   pgdbm with `ssl_key_password`), not OpenSSL's legacy `Proc-Type: 4,ENCRYPTED` form; PEM
//!   files only (no DER). The same holds for the tokio-postgres driver.
//! * **The environment**: sqlx reads `PGSSLROOTCERT`, `PGSSLCERT` and `PGSSLKEY` by itself,
//!   whatever pgdbm's configuration says. The driver replaces the root certificate by the
//!   configured one (or by none); a client certificate cannot be unset, so when the
//!   configuration has none and `PGSSLCERT`/`PGSSLKEY` are set, sqlx sends that certificate and
//!   the driver checks those files like its own (the error names the variable).
//!
//! Without the `tls` feature, `prefer` connects in plain text and `require`, `verify-ca` and
//! `verify-full` are an [`Error::Config`](pgdbm::Error::Config) naming `ssl_mode`.
//!
//! ## Features
//!
//! * `chrono` (default): date/time values as chrono types (it turns on pgdbm's `chrono`, which is
//!   what every driver keys dates and times on: enabling it anywhere enables it for all);
//! * `tls` (default): TLS through sqlx's rustls backend (see [above](#tls));
//! * `decimal`: `numeric` read as `rust_decimal::Decimal` (it turns on pgdbm's `decimal`, which
//!   is what every driver keys `numeric` on: enabling it anywhere enables it for all).

mod bind;
mod conn;
mod decode;
mod error;
mod listen;

mod options;
mod pool;
mod pooled;
mod probe;
mod statements;
mod stats;
mod tls;
mod types;
mod wire;

pub use conn::{SqlxConnection, connection};
pub use options::CLIENT_CHECK_INTERVAL;
pub use pool::{SqlxDriver, SqlxPool};

pub use sqlx;
