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
//! Settings shared with pgdbm for Python: `max_queries` recycles a connection after that many
//! statements ([`DatabaseConfigBuilder::max_queries`]; off by default, refused by the sqlx
//! driver); `command_timeout` bounds every call client side
//! ([`DatabaseConfigBuilder::command_timeout`]; off by default, Python's is 60 s — the server's
//! `statement_timeout` of 60 s is pgdbm's default bound); `ssl_key_password` decrypts a PKCS#8
//! encrypted client key ([`DatabaseConfigBuilder::ssl_key_password`]); `DB_PASSWORD` is read
//! after `PGPASSWORD` ([`DatabaseConfigBuilder::env`]).
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
//! Schema isolation comes from templates, so it needs no session state (see "Behind a pooler").
//! A pool opened from a config with a schema also gives its connections `search_path =
//! "<schema>", public` (pgdbm for Python's behaviour; unqualified names then resolve to the
//! module's schema; opt out with [`DatabaseConfigBuilder::search_path_to_schema`]`(false)`).
//! A shared pool can pin its `search_path` instead, e.g. to `pg_catalog`, so that a table name
//! written without `{{tables.x}}` fails loudly; the pin is verified when the pool opens
//! ([`DatabaseConfigBuilder::pin_search_path`], Python's `shared_pool_search_path`):
//!
//! ```no_run
//! # async fn demo(config: pgdbm::DatabaseConfig) -> pgdbm::Result<()> {
//! # use std::sync::Arc;
//! # use pgdbm::driver::PoolProvider;
//! # use pgdbm_driver_tokio_postgres::TokioPostgresPool;
//! let shared = config.to_builder().without_schema().pin_search_path("pg_catalog").build()?;
//! let pool: Arc<dyn PoolProvider> = Arc::new(TokioPostgresPool::connect(&shared).await?);
//! let users = pgdbm::Database::new(pool, Some("users"))?;
//! // users.execute("DELETE FROM sessions", &[])  → 42P01: write {{tables.sessions}}
//! # let _ = users; Ok(()) }
//! ```
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
//!   `idle_in_transaction_session_timeout`, `server_settings` and the schema's `search_path`
//!   are `SET LOCAL` right after `BEGIN` of every transaction pgdbm opens (same round trip;
//!   `search_path` with `set_config(…, true)`, as a list). A pinned `search_path` cannot be
//!   carried for autocommit statements, so opening a pool with one fails unless the role
//!   pins it (`ALTER ROLE … SET search_path`). Autocommit statements are
//!   bounded client side by `statement_timeout` (a typed `57014`; the connection is closed, as
//!   for any abandoned statement behind a transaction pooler: no CancelRequest is sent, since
//!   one that arrives late may hit another client's statement, so the server statement runs on
//!   until it ends or the server notices its client is gone — set
//!   `client_connection_check_interval` (PostgreSQL ≥ 14) for the role or database, e.g.
//!   `ALTER ROLE app SET client_connection_check_interval = '1s'`, and the server stops it
//!   within that interval; [`Database::health_check`] reports it when unset); set the
//!   server-side limit for them with
//!   `ALTER ROLE … SET statement_timeout` and PgBouncer's `query_timeout`. A one-time warning at
//!   pool creation and [`Database::health_check`] say so when it is missing. (In `session` mode
//!   the settings are `SET` once per new connection.)
//! * **statements that run on any server connection**: no named statements and no statement
//!   cache. tokio-postgres sends each statement unnamed in one round trip with parameter types
//!   declared by the client: a parameter the statement casts to a built-in type at every use
//!   (`$1::money`, `$1::numeric`, `$1::inet`) is declared that type and bound as without a
//!   pooler; the others from the values (text and JSON as `unknown`, inferred by the server as
//!   for a literal; integers as `int8`, so a function overloaded only for `int4` needs
//!   `$1::int4`, and an integer out of range for its column is the server's `22003`).
//!   sqlx needs two exchanges per statement with parameters, so an autocommit one runs in a
//!   `BEGIN`/`COMMIT` of its own (four round trips instead of two; an `execute` without
//!   parameters is one simple Query). Inside a transaction nothing changes: the pooler keeps
//!   its server connection.
//! * **looked-up types**: a result column of a type tokio-postgres does not know by OID (an
//!   enum, `citext`, their arrays) makes it look the type up with named statements of its own.
//!   So the first run of each statement text on a connection is guarded: inside the caller's
//!   transaction or a `BEGIN`/`COMMIT` of its own, with the client's lookup statements prepared
//!   again before and every named statement dropped after (two more round trips, once per
//!   statement text and connection; later runs are one round trip). A statement whose result
//!   gains a type the connection has never seen after a schema change fails once with `26000`,
//!   and its connection is closed.
//! * **migrations**: each file runs in a transaction of its own under
//!   `pg_advisory_xact_lock(hashtext('pgdbm_migration_' || module))`, reading the ledger again
//!   under it (pgdbm for Python ≥ 0.4.1's protocol: both still exclude each other); the ledger
//!   changes by hand (`apply_one`, `forget`, `baseline`, `repair`) each run in one transaction
//!   under that lock too. A `-- pgdbm:no-transaction` file needs a direct connection: **`direct_url`** (URL key,
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
//! ## Multiplexing
//!
//! With `multiplexing` on (`?multiplexing=true` in the URL,
//! [`DatabaseConfigBuilder::multiplexing`], `PGDBM_MULTIPLEXING`; `pgdbm.toml` accepts
//! `multiplexing` and `multiplexed_connections` under `[shared_pool]` with its other pool keys,
//! for applications that read it; off by default) the tokio-postgres driver runs autocommit
//! statements on a small set of **shared connections** (`multiplexed_connections`, default the
//! number of CPUs), many statements at once on each, pipelined on its socket, instead of
//! checking out an exclusive connection per statement. The shared connections come on top of
//! `max_connections` and open in the background when the pool opens.
//!
//! * **Shared**: `execute`, `fetch_all`, `fetch_optional` (and what is built on them:
//!   `fetch_one`, `fetch_value`, `fetch_*_as`, …) on the pool — through a [`Database`] handle —
//!   whose leading keyword (after whitespace, comments and opening parentheses) is `SELECT`,
//!   `INSERT`, `UPDATE`, `DELETE`, `MERGE`, `WITH`, `VALUES`, `TABLE`, `SHOW`, `NOTIFY`,
//!   `EXPLAIN`, `CREATE` (not `CREATE TEMP`/`TEMPORARY`), `ALTER`, `DROP`, `TRUNCATE`,
//!   `COMMENT`, `GRANT`, `REVOKE`, `ANALYZE`, `VACUUM`, `REINDEX`, `REFRESH` or `CLUSTER`. Each
//!   goes to the shared connection with the fewest statements in flight; past 32 in flight on
//!   every one (or while none is open) it runs exclusive. Each shared connection has its own
//!   statement cache (a statement is prepared once per connection).
//! * **Exclusive, as without multiplexing**: transactions, `batch_execute`, COPY, streams
//!   (`fetch`), [`Listener`]s, `acquire()`, and every statement whose leading keyword is not in
//!   the list — those that change or depend on session state: `SET`/`RESET`, `LISTEN`/`UNLISTEN`,
//!   `PREPARE`/`EXECUTE`/`DEALLOCATE`, `DECLARE`/`FETCH`/`MOVE`/`CLOSE`, `BEGIN`/`START`/
//!   `COMMIT`/`ROLLBACK`/`SAVEPOINT`/`RELEASE`/`END`/`ABORT`, `LOCK`, `CREATE TEMP`, `DISCARD`,
//!   `COPY`, `LOAD`, `DO`, `CALL`. Behind a transaction pooler (`pooler = transaction`) every
//!   statement runs exclusive: the two modes are not combined. The sqlx driver refuses
//!   `multiplexing` ([`Error::Config`] naming it).
//! * **Not recognised**: what a function does to the session inside a shared statement.
//!   `SELECT pg_advisory_lock(…)` takes a session lock on a shared connection (use
//!   `pg_advisory_xact_lock` in a transaction, or `acquire()`); `SELECT set_config('x', 'y',
//!   false)` changes the setting for every statement on that shared connection; `SELECT … INTO
//!   TEMP` creates a temporary table there; `pg_backend_pid()` names a shared session. Run such
//!   statements in a transaction or on an acquired connection.
//! * **Dropped statements and timeouts**: a statement whose future is dropped (a
//!   [`Database::with_timeout`] or `command_timeout` bound, a `select!`) is **not** cancelled on
//!   the server — a cancel request would stop whatever that pipelined session runs when it
//!   arrives, maybe a neighbour's statement. The caller gets [`Error::Timeout`] at once; the
//!   statement runs to its end (bounded by the server's `statement_timeout`) and its result is
//!   discarded; new statements avoid its connection until it is over. Its neighbours' results
//!   are not disturbed.
//! * **Lost connections**: a shared connection that dies fails only its statements in flight
//!   (with a connection error, [`Error::ConnectionLost`]) and is replaced in the background.
//!   `max_queries` and `max_lifetime` retire shared connections as they do pooled ones;
//!   `idle_timeout` does not close them.
//! * **Stats and monitoring**: every statement is recorded as before (the monitor, spans and
//!   metrics live above the driver); [`PoolStats`] counts the pool's exclusive connections only.
//!
//! Leave it off unless many tasks run short autocommit statements concurrently: that is where it
//! pays (see the README's benchmark); a slow statement delays what is pipelined behind it on the
//! same connection.
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
//! `batch_execute`), the [`ExecutorExt`] conveniences (`fetch_one`, `fetch_value`,
//! `fetch_value_at`, `fetch_all_as`, `execute_each`, `execute_and_return_id`) and [`FromRow`].
//! Parameters are positional (`$1`) and given with [`params!`]. [`Database::execute_many`] runs a
//! statement once per parameter set in a transaction of its own (all or nothing); `execute_each`,
//! on any executor, is the plain loop (atomic only inside a [`Transaction`]):
//!
//! ```no_run
//! # async fn demo(db: pgdbm::Database) -> pgdbm::Result<()> {
//! use pgdbm::prelude::*;
//! let id: i64 = db
//!     .execute_and_return_id("INSERT INTO {{tables.users}} (email) VALUES ($1)", params!["ann@example.com"])
//!     .await?; // or ::<uuid::Uuid> for a uuid key: any FromValue type
//! let row = db.fetch_one("SELECT id, email, nickname FROM {{tables.users}} WHERE id = $1", params![id]).await?;
//! let email: String = row.get("email")?;
//! let nickname: Option<String> = row.get("nickname")?; // NULL → None; NULL into String is an error
//! let n: i64 = db.fetch_value("SELECT count(*) FROM {{tables.users}}", &[]).await?; // first column
//! let same: String = db
//!     .fetch_value_at("SELECT id, email FROM {{tables.users}} WHERE id = $1", params![id], "email")
//!     .await?; // a column by name, or by position: 1usize
//! # Ok(()) }
//! ```
//!
//! ### Types
//!
//! Every driver reads and binds the same types, through [`Value`]:
//!
//! | PostgreSQL | Rust (bind and read) | feature |
//! |---|---|---|
//! | `boolean` | `bool` | |
//! | `smallint`, `integer`, `bigint`, `oid` | `i16`, `i32`, `i64` (any width into any integer column, range checked) | |
//! | `real`, `double precision` | `f32`, `f64` | |
//! | `numeric` | bind: `rust_decimal::Decimal`, integers, `f32`/`f64` (as their shortest round-trip decimal: `0.1` is stored as `0.1`); read: `Decimal` | reading and `Decimal`: `decimal` on pgdbm or any driver (one switch for all drivers) |
//! | `text`, `varchar`, `char(n)`, `name`, `citext` | `String`, `&str` | |
//! | enums | a Rust enum with `#[derive(pgdbm::Enum)]` (labels: the variant names as written, or `rename_all`/`rename`; see [`Enum`](trait@Enum)); `String`, `&str` | |
//! | domains | as their base type (the domain's checks are the server's) | |
//! | `bytea` | `Vec<u8>`, `&[u8]` | |
//! | `json`, `jsonb` | `serde_json::Value`, [`Json<T>`]; text binds as is | |
//! | `uuid` | `uuid::Uuid`; text binds parsed | |
//! | `date`, `time` | `chrono::NaiveDate`, `chrono::NaiveTime` | `chrono` (default) on pgdbm or any driver (one switch for all drivers) |
//! | `timestamp` | `chrono::NaiveDateTime` (a `DateTime<Utc>` is refused, naming the type to use) | `chrono` |
//! | `timestamptz` | `chrono::DateTime<Utc>` (a `NaiveDateTime` is refused, naming the type to use) | `chrono` |
//! | `'infinity'`, `'-infinity'` (`date`, `timestamp`, `timestamptz`) | [`Infinite<T>`] (`Infinite<NaiveDate>`…); read into a plain chrono type, an [`Error::Decode`] naming the column and `Infinite` | `chrono` |
//! | `interval` | [`Interval`]; `std::time::Duration`, `chrono::TimeDelta` where exact (see [`Interval`]) | `TimeDelta`: `chrono` |
//! | `inet`, `cidr`, `macaddr`, `macaddr8` | `String`, `&str`: read as the server prints them, bound parsed (see [`driver::network`] for the spellings taken) | |
//! | `money` | `i64` (any integer to bind): the amount in the currency's smallest unit (cents when `lc_monetary`'s currency has two fractional digits), exactly; its text depends on `lc_monetary`, so it is not read as text — cast in SQL (`col::numeric`, `col::text`) for that | |
//! | arrays of the above | `Vec<T>`, `&[T]`, `[T; N]`, `Vec<Option<T>>` (NULL elements), `&[&str]`, `Vec<&str>`, `Vec<MyEnum>` | |
//! | multi-dimensional arrays | `Vec<Vec<T>>` (and deeper, `&[[T; N]]`…): every sub-array of one length, as PostgreSQL requires (a ragged one is an [`Error::Encode`]); lower bounds other than 1 are not kept | |
//! | any type, `NULL` | `Option<T>` (`None` is `NULL`), [`Value::Null`] | |
//!
//! Integers bind to any integer column with a range check: an `i32` works against a `BIGINT`
//! column, an out-of-range `i64` is an [`Error::Encode`] naming the parameter, never a silent
//! wrap. A column type pgdbm cannot decode (e.g. `point`) is an [`Error::UnsupportedType`] or
//! [`Error::Decode`] naming the column, that suggests a cast (`col::text`).
//!
//! ## Mapping rows onto types
//!
//! [`FromRow`] turns a row into a Rust value; `fetch_all_as`, `fetch_one_as` and
//! `fetch_optional_as` use it. Derive it for a struct — columns are read by field name, without
//! going through JSON — or use a tuple, whose elements are the columns by position:
//!
//! ```no_run
//! # async fn demo(db: pgdbm::Database) -> pgdbm::Result<()> {
//! use pgdbm::prelude::*;
//! use pgdbm::Json;
//!
//! #[derive(FromRow)]
//! struct User {
//!     id: i64,
//!     #[pgdbm(rename = "email_address")]
//!     email: String,
//!     nickname: Option<String>,    // NULL → None
//!     #[pgdbm(default)]
//!     logins: i64,                 // 0 when the query has no `logins` column
//!     #[pgdbm(flatten)]
//!     address: Address,            // its own columns, from the same row
//!     settings: Json<Settings>,    // a jsonb column through serde
//! }
//!
//! #[derive(FromRow)]
//! struct Address { city: Option<String>, country: String }
//!
//! #[derive(serde::Deserialize)]
//! struct Settings { theme: String }
//!
//! let users: Vec<User> = db
//!     .fetch_all_as("SELECT * FROM {{tables.users}} JOIN {{tables.addresses}} USING (id)", &[])
//!     .await?;
//! let pairs = db.fetch_all_as::<(i64, String)>("SELECT id, email_address FROM {{tables.users}}", &[]).await?;
//! let one: Option<(i64,)> = db
//!     .fetch_optional_as("SELECT id FROM {{tables.users}} WHERE nickname = $1", params!["ann"])
//!     .await?;
//! # Ok(()) }
//! ```
//!
//! A mismatch is an [`Error::Decode`] (a missing column an [`Error::ColumnNotFound`]) naming the
//! column, the struct and field (or tuple element), the Rust type wanted and the PostgreSQL type
//! found — `cannot decode column email_address for field User.email: expected String, found
//! integer` — never the value. Tuples have 1 to 12 elements; a row with fewer columns is an
//! error, extra columns are ignored. A whole result is mapped with each column looked up once and
//! strings moved out of the rows, so the derive is at least as fast as `row.get` by hand (the
//! `rows` bench of the tokio-postgres driver measures it).
//!
//! **serde instead**: a type that already implements `serde::Deserialize`, or needs serde's
//! attributes, maps with `fetch_all_de`, `fetch_one_de`, `fetch_optional_de` or
//! [`Row::deserialize`]. The row goes through JSON (slower; dates, UUIDs and numerics arrive as
//! strings), and errors name the column and types the same way. [`Json<T>`] is `Serialize` and
//! `Deserialize` itself, so it can be a field of such a type.
//!
//! ```no_run
//! # async fn demo(db: pgdbm::Database) -> pgdbm::Result<()> {
//! use pgdbm::prelude::*;
//! #[derive(serde::Deserialize)]
//! struct User { id: i64, email: String, nickname: Option<String> }
//!
//! let users: Vec<User> = db.fetch_all_de("SELECT id, email, nickname FROM {{tables.users}}", &[]).await?;
//! # Ok(()) }
//! ```
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
//! ## Modules in one transaction
//!
//! A transaction expands templates with the schema of the handle that began it. To write through
//! another module in the same transaction — the todo module and the audit module, each in its own
//! schema, committed together — take a handle on the transaction with the other module's
//! templates: [`Transaction::with_schema_of`] or, the same call seen from the other side,
//! [`Database::in_transaction`]. It is a [`Transaction`] on the same connection and level, so a
//! module's functions written against `&dyn Executor` run in it unchanged:
//!
//! ```no_run
//! # async fn demo(pool: pgdbm::SharedPool) -> pgdbm::Result<()> {
//! use pgdbm::prelude::*;
//!
//! // The audit module's code, written once against any executor.
//! mod audit {
//!     use pgdbm::prelude::*;
//!     pub async fn record(db: &dyn Executor, event: &str) -> pgdbm::Result<()> {
//!         db.execute("INSERT INTO {{tables.events}} (event) VALUES ($1)", params![event]).await?;
//!         Ok(())
//!     }
//! }
//!
//! let todo = Database::new(pool.clone(), Some("todo"))?;
//! let audit = Database::new(pool.clone(), Some("audit"))?;
//!
//! todo.transaction(|tx| async move {
//!     let id: i64 = tx
//!         .fetch_value("INSERT INTO {{tables.items}} (title) VALUES ($1) RETURNING id", params!["ship"])
//!         .await?;
//!     // "audit".events, on this transaction's connection:
//!     audit::record(&tx.with_schema_of(&audit), &format!("todo {id} created")).await?;
//!     // Savepoints nest across modules: this one expands with the audit schema.
//!     let sp = audit.in_transaction(&tx).begin().await?;
//!     if audit::record(&sp, "optional detail").await.is_err() {
//!         sp.rollback().await?; // undoes only the savepoint's work
//!     } else {
//!         sp.commit().await?;
//!     }
//!     Ok::<_, pgdbm::Error>(())
//! })
//! .await?; // both modules' writes commit together, or neither does
//! # Ok(()) }
//! ```
//!
//! * The handles of one level share it: [`commit`](Transaction::commit) or
//!   [`rollback`](Transaction::rollback) through any of them finishes the level for all. Commit
//!   with the handle the level was begun with (the closure form does), and let cross-module
//!   handles go out of scope: dropping one finishes nothing; the level is rolled back only when
//!   its last handle is dropped unfinished. A failed or cancelled statement through any handle
//!   makes the whole transaction uncommittable, as it would in one module.
//! * Only the other handle's templates and monitor are taken: its statements run on the
//!   transaction's connection, so it should be a handle on the same database (usually the same
//!   pool). Each statement is recorded on the monitor, and with the schema, of the module whose
//!   handle ran it.
//!
//! ## Listening for notifications
//!
//! A [`Listener`] holds a dedicated connection (outside the pool, opened with the pool's
//! settings: TLS, `application_name`, init commands) that `LISTEN`s on channels and yields
//! [`ListenerEvent`]s; [`ExecutorExt::notify`] sends with `pg_notify` on any handle,
//! transaction or `&dyn Executor`, the payload bound as a parameter (never in the SQL text,
//! never logged):
//!
//! ```no_run
//! # async fn demo(db: pgdbm::Database) -> pgdbm::Result<()> {
//! use pgdbm::prelude::*;
//! use pgdbm::ListenerEvent;
//!
//! let mut listener = db.listener().await?; // or Listener::connect::<TokioPostgres>(&config)
//! listener.listen("order_paid").await?;
//!
//! db.transaction(|tx| async move {
//!     tx.execute("UPDATE {{tables.orders}} SET paid = true WHERE id = $1", params![7]).await?;
//!     tx.notify("order_paid", "7").await?; // delivered when the transaction commits
//!     Ok::<_, pgdbm::Error>(())
//! }).await?;
//!
//! loop {
//!     match listener.recv().await? {
//!         ListenerEvent::Notification(n) => println!("order {} paid (by pid {})", n.payload, n.process_id),
//!         // The connection was lost and is back, listening on every channel again.
//!         // Notifications sent meanwhile are lost: re-read what they were about.
//!         ListenerEvent::Reconnected => println!("resynchronising"),
//!         _ => {}
//!     }
//! }
//! # }
//! ```
//!
//! * **Channels** are identifiers (validated, quoted, case-sensitive; a bad one is an
//!   [`Error::Identifier`] naming it), scoped by schema like tables: on a handle with schema
//!   `billing`, channel `order_paid` is the server's channel `billing.order_paid`, for the
//!   listener and for `notify` alike, so two modules' channels of the same name never meet.
//!   Without a schema the name is used as given.
//! * **Reconnects**: when the connection is lost, the listener reconnects with the config's
//!   [`RetryPolicy`], listens on every channel again and yields
//!   [`ListenerEvent::Reconnected`]; a round of attempts that fails is yielded as an
//!   [`Error::Connect`], and it keeps trying.
//! * **Cancellation**: `recv` (and the listener as a `Stream`) may be dropped at any await
//!   without losing a received notification; dropping the listener closes its connection.
//! * **Poolers**: a listener needs a session of its own; it cannot work through a pooler in
//!   transaction mode (PgBouncer's `pool_mode = transaction`). Point its config at the server.
//!
//! ## Streaming large results
//!
//! [`Executor::fetch`] (on [`Database`], [`Transaction`], pools, connections and `&dyn
//! Executor`) returns the rows as a stream read from the server as the consumer takes them: a
//! few dozen rows ahead at most, whatever the size of the result (1M rows of 200 bytes: +0.1 MiB
//! peak, against +741 MiB for `fetch_all`). [`ExecutorExt::fetch_as`] maps each row with
//! [`FromRow`]. Dropping a stream early cancels the rest of the statement on the server.
//!
//! ```no_run
//! # async fn demo(db: pgdbm::Database) -> pgdbm::Result<()> {
//! use futures_util::TryStreamExt;
//! use pgdbm::prelude::*;
//! let since = 0_i64;
//! let p = params![since]; // parameters live as long as the stream
//! let mut rows = db.fetch("SELECT id, payload FROM {{tables.events}} WHERE id > $1 ORDER BY id", p);
//! while let Some(row) = rows.try_next().await? {
//!     let id: i64 = row.get("id")?;
//!     # let _ = id;
//! }
//! # Ok(()) }
//! ```
//!
//! ## Timeouts
//!
//! Every bound pgdbm knows, in one place:
//!
//! | bound | set with | what it bounds | when it runs out |
//! |---|---|---|---|
//! | connect timeout (10 s) | [`DatabaseConfigBuilder::connect_timeout`] | one connect attempt: TCP, TLS, startup, authentication | the attempt fails; retried per the [`RetryPolicy`], then [`Error::Connect`] |
//! | acquire timeout (30 s) | [`DatabaseConfigBuilder::acquire_timeout`] | waiting for a pooled connection | [`Error::PoolTimeout`] (with the last connect failure as its cause) |
//! | `statement_timeout` (60 s) | [`DatabaseConfigBuilder::statement_timeout`] | each statement, on the server | the server cancels it: [`Error::Database`] with [`ErrorKind::QueryCanceled`] (`57014`) |
//! | `lock_timeout` (5 s), `idle_in_transaction_session_timeout` (60 s) | the builder | lock waits; idle transactions, on the server | `55P03`; the server ends the session ([`Error::is_connection_error`]) |
//! | per call | [`Database::with_timeout`] | each call of that handle, client side, waiting for a connection included | the call's future is dropped, which cancels its statement on the server; [`Error::Timeout`] ([`Error::is_timeout`], `kind()` = [`ErrorKind::QueryCanceled`]) |
//! | `command_timeout` (none) | [`DatabaseConfigBuilder::command_timeout`] | the default per-call bound of every handle on the pool (`with_timeout` replaces it) | as per call |
//! | per transaction | [`Transaction::with_timeout`], or a transaction begun by a bounded handle | each statement, on the server (`SET LOCAL statement_timeout`) and client side | [`Error::Timeout`]; the transaction can then only roll back |
//!
//! Your own bound works the same way: `tokio::time::timeout(d, db.execute(…))` (or a
//! `select!`, or a client that went away) drops the statement's future, and pgdbm has the
//! server stop the statement — with tokio-postgres by a cancel request (the connection goes back
//! to the pool once it answered again; the cancel never reaches a later statement), with sqlx
//! by closing the connection (the server notices within 100 ms, `client_connection_check_interval`,
//! PostgreSQL 14+). Inside a transaction the statement is cancelled too, so the rollback does not
//! wait for it. Streams ([`Database::fetch`]) are paced by their consumer and bounded only by
//! the server's settings.
//!
//! ```no_run
//! # async fn demo(db: pgdbm::Database) -> pgdbm::Result<()> {
//! use std::time::Duration;
//! use pgdbm::prelude::*;
//! let quick = db.with_timeout(Duration::from_millis(200));
//! let report = quick.fetch_all("SELECT * FROM {{tables.report}}", &[]).await;
//! if let Err(e) = &report {
//!     if e.is_timeout() {
//!         // Gave up after 200 ms; the server stopped working on it too.
//!     }
//! }
//! // Closure form: BEGIN sets `SET LOCAL statement_timeout = 200`, each call is bounded.
//! quick
//!     .transaction(|tx| async move {
//!         tx.execute("UPDATE {{tables.accounts}} SET hits = hits + 1", &[]).await?;
//!         Ok::<_, pgdbm::Error>(())
//!     })
//!     .await?;
//! # Ok(()) }
//! ```
//!
//! ## The way down to the driver
//!
//! Where pgdbm does not cover something, a checked-out connection ([`Database::acquire`])
//! reaches the driver's own client: `pgdbm_driver_tokio_postgres::client(&conn)` (a
//! `tokio_postgres::Client`), `pgdbm_driver_sqlx::connection(&conn)` (lock it for the
//! `PgConnection`), or [`driver::Connection::as_any`] to downcast. Statements run that way bypass
//! templates, monitoring and pgdbm's cancellation handling; leave the session as you found it.
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
//!   `include_str!`-ed, so cargo rebuilds when one changes; for *new* files to be embedded on the
//!   next build, add a `build.rs` with `println!("cargo:rerun-if-changed=dir");` — see
//!   [`embed_migrations!`]), [`MigrationSource::from_dir`] at run time, or
//!   [`MigrationSource::from_pairs`] in memory. `*.sql` files ordered by name, hidden
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
//! [`Monitored`]. Transaction control (`BEGIN`, `COMMIT`, `ROLLBACK`, `SAVEPOINT`,
//! `RELEASE SAVEPOINT`, `ROLLBACK TO SAVEPOINT`) is recorded as
//! [`Operation::TransactionControl`](monitor::Operation::TransactionControl), and every record
//! names the module of its handle ([`Database::with_module`]). An unmonitored handle pays one
//! branch per statement.
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
//! [`Database::table_sizes`] (the handle's schema; every user schema on a handle without one),
//! [`Database::pool_stats`] (counters, the server's version and the database; see [`monitor`]).
//!
//! **`tracing`**: every statement of a [`Database`] or [`Transaction`] runs in a `DEBUG` span
//! `pgdbm.query` (target `pgdbm::query`) carrying OpenTelemetry's stable database conventions,
//! so `tracing-opentelemetry` exports a correct client span without glue (see
//! `examples/otel`): `otel.name` = `db.query.summary` (the operation and the tables of the
//! template's `{{tables.x}}` placeholders, e.g. `SELECT todos`), `otel.kind = "client"`,
//! `db.system.name = "postgresql"`, `db.namespace` (`database.schema`), `db.operation.name`,
//! `db.collection.name` (when one table is named), `db.query.text` (the template text, cut to
//! 200 characters — never values), `server.address`, `server.port`; on failure
//! `otel.status_code = "error"`, `error.type` and `db.response.status_code` (the SQLSTATE);
//! `db.operation.batch.size` on the `BATCH …` span of [`Database::execute_many`]; plus
//! `pgdbm.schema`, `pgdbm.module` ([`Database::with_module`]) and `pgdbm.operation`. A
//! transaction (and each savepoint) has a span of its own, `pgdbm.transaction`, the parent of
//! its statements, `BEGIN` and `COMMIT` included, with `pgdbm.outcome`. The retired `db.system`
//! field is added with `PGDBM_TRACING_LEGACY_FIELDS=1` (for one release). Slow statements of a
//! monitored handle are logged at `warn` (target `pgdbm::monitor`) with their duration.
//! Parameter values never appear in spans, and in the slow-query event only masked and only with
//! `record_params`. Without a subscriber interested in the span, its fields are not computed.
//!
//! **Metrics** (feature `metrics`, off by default): OpenTelemetry's
//! `db.client.operation.duration` and the pool's `db.client.connection.*` through the `metrics`
//! facade, for any recorder (Prometheus, OpenTelemetry…): see `monitor::metrics` (shown when the
//! feature is on) and `examples/todo-app`'s `/metrics`.
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

// The derives expand to `::pgdbm::…` paths; this lets the crate's own tests use them.
extern crate self as pgdbm;

mod config;
mod database;
mod de;
pub mod driver;
mod enum_label;
mod error;
mod executor;
mod from_row;
mod listener;

#[cfg(feature = "chrono")]
mod infinite;
mod interval;
pub mod migrate;
pub mod monitor;
mod redact;
mod row;
mod template;
#[cfg(test)]
mod test_support;
mod timeout;
mod transaction;
mod value;

pub use config::{DatabaseConfig, DatabaseConfigBuilder, Pooler, RetryPolicy, SslConfig, SslMode};
pub use database::Database;
pub use driver::{PoolStats, SharedPool};
pub use error::{BoxError, DbError, Error, ErrorKind, MAX_SQL_IN_ERROR, Result, truncate_sql};
pub use executor::{Executor, ExecutorExt, RowStream};
pub use from_row::FromRow;
pub use listener::{Listener, ListenerEvent, Notification};

pub use enum_label::Enum;
#[doc(hidden)]
pub use enum_label::support as __enum_support;
#[doc(hidden)]
pub use from_row::derive_support as __derive_support;
#[cfg(feature = "chrono")]
pub use infinite::Infinite;
pub use interval::Interval;
pub use migrate::module::{Module, order_modules};
pub use migrate::{MigrationReport, MigrationSource, Migrator};
pub use monitor::{HealthReport, HealthStatus, Monitor, MonitorOptions, Monitored};
/// Derives [`Enum`](trait@Enum) (with `ToParam`, `FromValue` and `ArrayElement`) for an enum of
/// unit variants mapped to a PostgreSQL enum's labels: each variant's name as written, or
/// `#[pgdbm(rename_all = "snake_case")]` on the enum, `#[pgdbm(rename = "label")]` on a variant.
/// See [the trait](trait@Enum#the-derive).
pub use pgdbm_macros::Enum;
/// Derives [`FromRow`](trait@FromRow) for a struct with named fields: each field reads the
/// column of its name; `#[pgdbm(rename = "col")]`, `#[pgdbm(default)]`, `#[pgdbm(flatten)]`,
/// `Option<T>` for NULL. See [the trait](trait@FromRow#the-derive).
pub use pgdbm_macros::FromRow;
/// Embeds a directory of `*.sql` migrations into the crate at compile time; see
/// [the migrations section](crate#migrations-and-modules).
///
/// Pair it with a one-line `build.rs` so that files added to the directory are embedded on the
/// next `cargo build` (without it, only a rebuild for another reason picks them up):
///
/// ```ignore
/// // build.rs, next to Cargo.toml
/// fn main() {
///     println!("cargo:rerun-if-changed=migrations");
/// }
/// ```
pub use pgdbm_macros::embed_migrations;
pub use row::{Column, ColumnIndex, Row};
pub use template::{ExpandedSql, Templates, quote_identifier, validate_identifier};
pub use transaction::Transaction;
pub use value::{ArrayElement, FromValue, Json, Kind, Params, ToParam, Value};

/// The traits and macros most code needs: `use pgdbm::prelude::*;`.
pub mod prelude {
    pub use crate::executor::{Executor, ExecutorExt};
    pub use crate::params;
    pub use crate::{Database, Enum, FromRow, Module, Transaction};
}
