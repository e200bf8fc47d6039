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
//! * **TLS** with rustls (see below).
//! * **Listener connections** for [`pgdbm::Listener`], opened with the pool's settings (TLS,
//!   server settings, init commands, connect timeout) outside the pool; notifications are read
//!   from the connection's message stream as the listener asks for them.
//!
//! # TLS
//!
//! With the `tls` feature (on by default) the driver speaks TLS through
//! [rustls](https://docs.rs/rustls) (ring provider) in libpq's modes, set with
//! [`ssl_mode`](pgdbm::DatabaseConfigBuilder::ssl_mode) and the file fields, `sslmode`,
//! `sslrootcert`, `sslcert` and `sslkey` in the connection string, or `PGSSLMODE`,
//! `PGSSLROOTCERT`, `PGSSLCERT` and `PGSSLKEY`:
//!
//! | mode | TLS | server certificate |
//! |---|---|---|
//! | `disable` | never | — |
//! | `allow`, `prefer` (default) | if the server offers it; plain if it does not, or if the handshake fails (as libpq) | not checked (but with `ssl_ca_file`: chain checked, as libpq does) |
//! | `require` | always, or the connect fails | not checked (but with `ssl_ca_file`: as `verify-ca`, as libpq does) |
//! | `verify-ca` | always | its chain must lead to a CA of `ssl_ca_file` (without one: the public webpki roots) |
//! | `verify-full` | always | as `verify-ca`, and it must be valid for the host name (a DNS name or an IP address) |
//!
//! `allow` is treated as `prefer`. Like libpq's default, `prefer` negotiates TLS with every
//! server that offers it, which costs a handshake per new connection; set
//! [`SslMode::Disable`](pgdbm::SslMode::Disable) for plain text. Over a Unix socket there is never TLS, whatever the mode
//! (as in libpq). A client certificate and its key (`ssl_cert_file` and `ssl_key_file`, PEM;
//! the key PKCS#8, PKCS#1 or SEC1, or PKCS#8 encrypted with `ssl_key_password`, libpq's
//! `sslpassword`) are sent when the server asks for one, for
//! `hostssl … cert` rules. With SCRAM authentication over TLS the session is bound to the
//! server's certificate (`SCRAM-SHA-256-PLUS`, `tls-server-end-point`).
//!
//! ```no_run
//! # async fn demo() -> pgdbm::Result<()> {
//! use pgdbm::prelude::*;
//! use pgdbm::{DatabaseConfig, SslMode};
//! use pgdbm_driver_tokio_postgres::TokioPostgres;
//!
//! let config = DatabaseConfig::builder()
//!     .url("postgresql://app@db.internal:5432/shop")
//!     .ssl_mode(SslMode::VerifyFull)
//!     .ssl_ca_file("/etc/pgdbm/root.crt")
//!     .ssl_cert_file("/etc/pgdbm/client.crt")
//!     .ssl_key_file("/etc/pgdbm/client.key")
//!     .build()?;
//! // Same as: postgresql://app@db.internal/shop?sslmode=verify-full&sslrootcert=/etc/pgdbm/root.crt&…
//! let db = Database::connect::<TokioPostgres>(&config).await?;
//! let tls: bool = db
//!     .fetch_value("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()", &[])
//!     .await?;
//! assert!(tls);
//! # Ok(()) }
//! ```
//!
//! The certificate files are read once when the pool opens; an unreadable file or one without a
//! PEM certificate or key is an [`Error::Config`](pgdbm::Error::Config) naming the field and the
//! path. A refused server certificate ("unknown issuer", "not valid for host name …"), a TLS
//! alert from the server, or a server without TLS where the mode requires it is an
//! [`Error::Connect`](pgdbm::Error::Connect) whose source is a
//! [`TlsError`](pgdbm::driver::TlsError) saying what failed; it is not retried.
//!
//! Without the `tls` feature, `prefer` connects in plain text and `require`, `verify-ca` and
//! `verify-full` are refused with [`Error::Config`](pgdbm::Error::Config).
//!
//! The crates it wraps are re-exported: [`tokio_postgres`] and [`bb8`].

mod bind;
mod cancel;
mod casts;
mod conn;
mod declare;
mod decode;
mod error;
mod host;
mod listen;
mod lookups;
mod manager;
mod multiplex;
mod pool;
mod settings;
#[cfg(feature = "tls")]
mod tls;
mod unnamed;

pub use pool::{TokioPostgres, TokioPostgresConnection, TokioPostgresPool, client};

/// The tokio-postgres crate, whose `Client` [`TokioPostgresConnection::client`] hands out.
pub use tokio_postgres;
