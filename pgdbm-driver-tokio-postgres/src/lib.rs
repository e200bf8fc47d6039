//! The tokio-postgres + bb8 driver for [pgdbm].
//!
//! ```no_run
//! # async fn demo() -> pgdbm::Result<()> {
//! use pgdbm::prelude::*;
//! use pgdbm::DatabaseConfig;
//! use pgdbm_driver_tokio_postgres::TokioPostgres;
//!
//! let config = DatabaseConfig::from_env()?;
//! let db = Database::connect::<TokioPostgres>(&config).await?;
//! let one: i32 = db.fetch_value("SELECT 1", &[]).await?;
//! # Ok(()) }
//! ```
//!
//! What it does for pgdbm:
//!
//! * **Pooling** with bb8: `min_connections`/`max_connections`, acquire timeout, idle timeout and
//!   max lifetime from the [`DatabaseConfig`](pgdbm::DatabaseConfig). Connections are not pinged on
//!   checkout; a broken or discarded connection is dropped when it comes back.
//! * **Statement cache**: each connection keeps a bounded LRU (`statement_cache_capacity`, 256 by
//!   default) of prepared statements keyed by the SQL text, so a templated query is prepared once
//!   per connection. Evicted statements are closed on the server.
//! * **Server settings at connect**: the three server-side timeouts, `application_name` and extra
//!   settings travel in the startup packet (`options`), so they cost no round trip; init commands
//!   run once per new connection.
//! * **Connect retry** with exponential backoff for the first connection; authentication failures
//!   and unknown databases are not retried, and the final [`Error::Connect`](pgdbm::Error::Connect)
//!   carries the server's own error as its cause. A pool timeout carries the last connect error.
//! * **Binding** converts each parameter to the type the server inferred for it (an `i32` to
//!   `int8`, an `i64` to `int4` when in range, text to `uuid`/`json`), with typed errors that never
//!   contain the value.
//! * **COPY** in binary format for [`Database::copy_in`](pgdbm::Database::copy_in).
//!
//! TLS (`ssl_mode` other than `disable`/`prefer`) is not supported by this version of the driver
//! and is refused with [`Error::Config`](pgdbm::Error::Config).
//!
//! The crates it wraps are re-exported: [`tokio_postgres`] and [`bb8`].

mod bind;
mod conn;
mod decode;
mod error;
mod pool;

pub use conn::TokioPostgresConnection;
pub use pool::{TokioPostgres, TokioPostgresPool};

pub use bb8;
pub use tokio_postgres;
