//! Connection and pool configuration: [`DatabaseConfig`], built and validated by
//! [`DatabaseConfigBuilder`].
//!
//! A configuration comes from up to four layers, each overriding the one before it:
//!
//! 1. built-in defaults (see [`DatabaseConfig`]);
//! 2. the environment, when [`DatabaseConfigBuilder::env`] is called: `DATABASE_URL` if it is set,
//!    otherwise the libpq variables `PGHOST`, `PGPORT`, `PGDATABASE`, `PGUSER`, `PGPASSWORD`,
//!    `PGAPPNAME`, `PGOPTIONS`, `PGSSLMODE`, `PGSSLROOTCERT`, `PGSSLCERT`, `PGSSLKEY`,
//!    `PGCONNECT_TIMEOUT`, and `DB_PASSWORD` (pgdbm for Python's) when `PGPASSWORD` is not set;
//! 3. a connection string given to [`DatabaseConfigBuilder::url`], either a
//!    `postgresql://` / `postgres://` URI or libpq `key=value` pairs;
//! 4. the builder's explicit setters (`.host(…)`, `.max_connections(…)`, …).
//!
//! The order of the builder calls does not matter: an explicit setter always wins over the
//! connection string, which always wins over the environment. Everything is parsed and validated
//! by [`DatabaseConfigBuilder::build`], which names the offending field or key in its
//! [`Error::Config`].
//!
//! ```
//! use std::time::Duration;
//! use pgdbm::{DatabaseConfig, SslMode};
//!
//! let config = DatabaseConfig::builder()
//!     .url("postgresql://app:s%40cret@db.internal:5433/shop?sslmode=require")
//!     .schema("orders")
//!     .max_connections(20)
//!     .statement_timeout(Duration::from_secs(30))
//!     .lock_timeout(None)
//!     .build()?;
//!
//! assert_eq!(config.host(), "db.internal");
//! assert_eq!(config.port(), 5433);
//! assert_eq!(config.password(), Some("s@cret"));
//! assert_eq!(config.ssl().mode, SslMode::Require);
//! assert_eq!(config.statement_timeout(), Some(Duration::from_secs(30)));
//! assert_eq!(config.lock_timeout(), None);
//! // The password never shows:
//! assert_eq!(config.to_string(), "postgresql://app:***@db.internal:5433/shop?schema=orders");
//!
//! // The libpq key=value form works too.
//! let config = DatabaseConfig::from_url("host=/var/run/postgresql dbname=app user=svc password='it''s'")?;
//! assert_eq!(config.host(), "/var/run/postgresql");
//! assert_eq!(config.password(), Some("it's"));
//!
//! // Invalid values are rejected when the config is built, naming the field.
//! let err = DatabaseConfig::builder().max_connections(0).build().unwrap_err();
//! assert!(matches!(err, pgdbm::Error::Config { ref field, .. } if field == "max_connections"));
//! # Ok::<(), pgdbm::Error>(())
//! ```
//!
//! [`Error::Config`]: crate::Error::Config

mod builder;
mod display;
mod layer;
mod multiplexing;
mod parse;
mod pool_limits;
mod pooler;
mod retry;
mod search_path;
mod tls;
mod validate;

#[cfg(test)]
mod properties;
#[cfg(test)]
mod test_support;

use std::time::Duration;

use crate::error::Result;

pub use builder::DatabaseConfigBuilder;
pub use pooler::Pooler;
pub use retry::RetryPolicy;
pub(crate) use search_path::search_path_entries;
pub use tls::{SslConfig, SslMode};

use layer::{Layer, Secret};

const DEFAULT_HOST: &str = "localhost";
const DEFAULT_PORT: u16 = 5432;
const DEFAULT_USER: &str = "postgres";
const DEFAULT_APPLICATION_NAME: &str = "pgdbm";

/// How to reach the server and how to pool connections.
///
/// Built only through [`DatabaseConfig::builder`] (or the shortcuts [`DatabaseConfig::from_url`]
/// and [`DatabaseConfig::from_env`]), so every `DatabaseConfig` has been validated.
///
/// | setting | default | connection-string key |
/// |---|---|---|
/// | host | `localhost` | `host` (a path starting with `/` is a Unix socket directory) |
/// | port | 5432 | `port` |
/// | database | the user name | `dbname` (or the URI path) |
/// | user | `$USER`, else `$LOGNAME`, else `postgres` | `user` |
/// | password | none | `password` |
/// | schema | none | `schema` |
/// | min / max connections | 1 / 10 | `min_connections` / `max_connections` |
/// | acquire timeout | 30 s | `acquire_timeout` (seconds, or with a unit) |
/// | statements per connection | unlimited | `max_queries` (`0` = unlimited) |
/// | command timeout (client side, per call) | none | `command_timeout` (seconds, or with a unit; `0` = none) |
/// | multiplexing (shared, pipelined connections; tokio-postgres driver) | off | `multiplexing` (`true`/`false`) |
/// | shared connections when multiplexing | the number of CPUs | `multiplexed_connections` |
/// | idle timeout / max lifetime | 10 min / 30 min | — |
/// | connect timeout | 10 s | `connect_timeout` (seconds, or with a unit) |
/// | statement timeout | 60 000 ms | `statement_timeout` (ms, or with a unit; `0` = off) |
/// | idle-in-transaction timeout | 60 000 ms | `idle_in_transaction_session_timeout` (likewise) |
/// | lock timeout | 5 000 ms | `lock_timeout` (likewise) |
/// | application name | `pgdbm` | `application_name` |
/// | server settings | none | `options` (`-c name=value …`) |
/// | `search_path` `"<schema>", public` when a schema is set | on | — ([`DatabaseConfigBuilder::search_path_to_schema`]) |
/// | pinned `search_path`, verified at pool open | none | — ([`DatabaseConfigBuilder::pin_search_path`]) |
/// | init commands | none | — |
/// | connect retry | 3 attempts, 1 s, ×2, ≤ 30 s | — |
/// | TLS | `prefer`, no files | `sslmode`, `sslrootcert`, `sslcert`, `sslkey` |
/// | password of an encrypted (PKCS#8) client key | none | `sslpassword` |
/// | statement cache capacity | 256 | — |
/// | pooler in front | `none` | `pooler` (`none`, `session`, `transaction`; see [`Pooler`]) |
/// | direct connection (behind a pooler) | none | `direct_url` (a connection string; percent-encode it inside a URI) |
///
/// Durations in a connection string are an integer, optionally followed by a unit: `ms`, `s`,
/// `min`, `h` or `d` (`statement_timeout=30s`). An empty value is ignored, as libpq does (except
/// `application_name`, which may be empty).
///
/// Neither `Display` (`postgresql://user:***@host:5432/db`) nor `Debug` shows the password or
/// the client key's password.
#[derive(Clone)]
pub struct DatabaseConfig {
    host: String,
    port: u16,
    database: String,
    user: String,
    password: Option<String>,
    schema: Option<String>,
    min_connections: u32,
    max_connections: u32,
    acquire_timeout: Duration,
    max_queries: Option<u64>,
    command_timeout: Option<Duration>,
    multiplexing: bool,
    multiplexed_connections: u32,
    idle_timeout: Option<Duration>,
    max_lifetime: Option<Duration>,
    connect_timeout: Duration,
    statement_timeout: Option<Duration>,
    idle_in_transaction_session_timeout: Option<Duration>,
    lock_timeout: Option<Duration>,
    application_name: String,
    server_settings: Vec<(String, String)>,
    search_path_to_schema: bool,
    pinned_search_path: Option<String>,
    init_commands: Vec<String>,
    retry: RetryPolicy,
    ssl: SslConfig,
    ssl_key_password: Option<String>,
    statement_cache_capacity: usize,
    pooler: Pooler,
    /// `direct_url` as given (it may hold a password), to rebuild the config from.
    direct_url: Option<String>,
    /// The configuration `direct_url` resolves to.
    direct: Option<Box<DatabaseConfig>>,
}

impl DatabaseConfig {
    /// A builder starting from the defaults.
    pub fn builder() -> DatabaseConfigBuilder {
        DatabaseConfigBuilder::default()
    }

    /// Parses a connection string (a `postgresql://` URI or libpq `key=value` pairs) on top of
    /// the defaults. Same as `DatabaseConfig::builder().url(url).build()`.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] naming the key or field when the string cannot be parsed or a value is
    /// invalid (the message never contains the password), [`Error::Identifier`] when `schema` is
    /// not a valid identifier.
    ///
    /// [`Error::Config`]: crate::Error::Config
    /// [`Error::Identifier`]: crate::Error::Identifier
    pub fn from_url(url: &str) -> Result<Self> {
        DatabaseConfig::builder().url(url).build()
    }

    /// Reads the process environment (`DATABASE_URL`, else the libpq `PG*` variables and
    /// `DB_PASSWORD` as the fallback of `PGPASSWORD`) on top of
    /// the defaults. Same as `DatabaseConfig::builder().env().build()`.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] naming the variable (or, for `DATABASE_URL`, the key inside it) when a
    /// value is invalid; as [`DatabaseConfigBuilder::build`] otherwise.
    ///
    /// [`Error::Config`]: crate::Error::Config
    pub fn from_env() -> Result<Self> {
        DatabaseConfig::builder().env().build()
    }

    /// A builder holding every value of this config, to derive a modified one.
    ///
    /// ```
    /// let base = pgdbm::DatabaseConfig::from_url("postgresql://app@db/shop")?;
    /// let reporting = base.to_builder().schema("reporting").max_connections(2).build()?;
    /// assert_eq!(reporting.host(), "db");
    /// assert_eq!(reporting.schema(), Some("reporting"));
    /// # Ok::<(), pgdbm::Error>(())
    /// ```
    pub fn to_builder(&self) -> DatabaseConfigBuilder {
        DatabaseConfigBuilder {
            url: None,
            env: None,
            explicit: Layer {
                host: Some(self.host.clone()),
                port: Some(self.port),
                database: Some(self.database.clone()),
                user: Some(self.user.clone()),
                password: Some(self.password.clone().map(Secret)),
                schema: Some(self.schema.clone()),
                min_connections: Some(self.min_connections),
                max_connections: Some(self.max_connections),
                acquire_timeout: Some(self.acquire_timeout),
                max_queries: Some(self.max_queries),
                command_timeout: Some(self.command_timeout),
                multiplexing: Some(self.multiplexing),
                multiplexed_connections: Some(self.multiplexed_connections),
                idle_timeout: Some(self.idle_timeout),
                max_lifetime: Some(self.max_lifetime),
                connect_timeout: Some(self.connect_timeout),
                statement_timeout: Some(self.statement_timeout),
                idle_in_transaction_session_timeout: Some(self.idle_in_transaction_session_timeout),
                lock_timeout: Some(self.lock_timeout),
                application_name: Some(self.application_name.clone()),
                server_settings: self.server_settings.clone(),
                search_path_to_schema: Some(self.search_path_to_schema),
                pinned_search_path: Some(self.pinned_search_path.clone()),
                init_commands: self.init_commands.clone(),
                retry: Some(self.retry),
                ssl_mode: Some(self.ssl.mode),
                ssl_ca_file: Some(self.ssl.ca_file.clone()),
                ssl_cert_file: Some(self.ssl.cert_file.clone()),
                ssl_key_file: Some(self.ssl.key_file.clone()),
                ssl_key_password: Some(self.ssl_key_password.clone().map(Secret)),
                statement_cache_capacity: Some(self.statement_cache_capacity),
                pooler: Some(self.pooler),
                direct_url: Some(self.direct_url.clone().map(Secret)),
            },
        }
    }

    /// The connection URI with the password replaced by `***` (the `Display` text), e.g.
    /// `postgresql://app:***@db:5432/shop`. Safe to log.
    pub fn masked_url(&self) -> String {
        self.to_string()
    }

    /// Host name, IP address, or Unix socket directory (starts with `/`).
    pub fn host(&self) -> &str {
        &self.host
    }
    /// Port.
    pub fn port(&self) -> u16 {
        self.port
    }
    /// Database name.
    pub fn database(&self) -> &str {
        &self.database
    }
    /// User name.
    pub fn user(&self) -> &str {
        &self.user
    }
    /// Password, if any. Never logged.
    pub fn password(&self) -> Option<&str> {
        self.password.as_deref()
    }
    /// Schema of the handle opened with this config.
    pub fn schema(&self) -> Option<&str> {
        self.schema.as_deref()
    }
    /// Minimum idle connections kept open.
    pub fn min_connections(&self) -> u32 {
        self.min_connections
    }
    /// Maximum open connections.
    pub fn max_connections(&self) -> u32 {
        self.max_connections
    }
    /// How long an acquire waits.
    pub fn acquire_timeout(&self) -> Duration {
        self.acquire_timeout
    }
    /// Idle connections are closed after this long (None = never).
    pub fn idle_timeout(&self) -> Option<Duration> {
        self.idle_timeout
    }
    /// Connections are closed after this long (None = never).
    pub fn max_lifetime(&self) -> Option<Duration> {
        self.max_lifetime
    }
    /// Timeout of one connect attempt.
    pub fn connect_timeout(&self) -> Duration {
        self.connect_timeout
    }
    /// Server `statement_timeout` (None = off).
    pub fn statement_timeout(&self) -> Option<Duration> {
        self.statement_timeout
    }
    /// Server `idle_in_transaction_session_timeout` (None = off).
    pub fn idle_in_transaction_session_timeout(&self) -> Option<Duration> {
        self.idle_in_transaction_session_timeout
    }
    /// Server `lock_timeout` (None = off).
    pub fn lock_timeout(&self) -> Option<Duration> {
        self.lock_timeout
    }
    /// `application_name`.
    pub fn application_name(&self) -> &str {
        &self.application_name
    }
    /// Extra server settings sent at connect, in order, names unique (case-insensitively).
    pub fn server_settings(&self) -> &[(String, String)] {
        &self.server_settings
    }
    /// SQL run on every new connection, in order.
    pub fn init_commands(&self) -> &[String] {
        &self.init_commands
    }
    /// Connect retry policy.
    pub fn retry(&self) -> &RetryPolicy {
        &self.retry
    }
    /// TLS settings.
    pub fn ssl(&self) -> &SslConfig {
        &self.ssl
    }
    /// The password of an encrypted client key (`ssl_key_password`, libpq's `sslpassword`).
    /// Never logged.
    pub fn ssl_key_password(&self) -> Option<&str> {
        self.ssl_key_password.as_deref()
    }
    /// Per-connection prepared statement cache capacity (0 = no cache).
    pub fn statement_cache_capacity(&self) -> usize {
        self.statement_cache_capacity
    }
    /// All settings to send in the startup packet: the three timeouts (in ms, `0` when off),
    /// `application_name`, then `server_settings` and the [`search_path`](Self::search_path)
    /// pgdbm sets, if any.
    pub fn startup_settings(&self) -> Vec<(String, String)> {
        let mut v = pooler::guardrail_timeouts(self);
        v.push(("application_name".to_owned(), self.application_name.clone()));
        v.extend(self.session_settings());
        v
    }

    fn defaults(user: String) -> Self {
        DatabaseConfig {
            host: DEFAULT_HOST.to_owned(),
            port: DEFAULT_PORT,
            database: user.clone(),
            user,
            password: None,
            schema: None,
            min_connections: 1,
            max_connections: 10,
            acquire_timeout: Duration::from_secs(30),
            max_queries: None,
            command_timeout: None,
            multiplexing: false,
            multiplexed_connections: multiplexing::default_multiplexed_connections(),
            idle_timeout: Some(Duration::from_secs(10 * 60)),
            max_lifetime: Some(Duration::from_secs(30 * 60)),
            connect_timeout: Duration::from_secs(10),
            statement_timeout: Some(Duration::from_millis(60_000)),
            idle_in_transaction_session_timeout: Some(Duration::from_millis(60_000)),
            lock_timeout: Some(Duration::from_millis(5_000)),
            application_name: DEFAULT_APPLICATION_NAME.to_owned(),
            server_settings: Vec::new(),
            search_path_to_schema: true,
            pinned_search_path: None,
            init_commands: Vec::new(),
            retry: RetryPolicy::default(),
            ssl: SslConfig::default(),
            ssl_key_password: None,
            statement_cache_capacity: 256,
            pooler: Pooler::None,
            direct_url: None,
            direct: None,
        }
    }
}

/// `"value"`, cut to 60 characters, for error messages (never used for passwords).
fn quoted(value: &str) -> String {
    format!("{:?}", crate::error::truncate_chars(value, 60))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::test_support::{build, url};

    #[test]
    fn defaults() {
        let c = build(DatabaseConfig::builder()).unwrap();
        assert_eq!(c.host(), "localhost");
        assert_eq!(c.port(), 5432);
        assert_eq!(c.user(), "alice");
        assert_eq!(c.database(), "alice");
        assert_eq!(c.password(), None);
        assert_eq!(c.schema(), None);
        assert_eq!(c.min_connections(), 1);
        assert_eq!(c.max_connections(), 10);
        assert_eq!(c.acquire_timeout(), Duration::from_secs(30));
        assert_eq!(c.idle_timeout(), Some(Duration::from_secs(600)));
        assert_eq!(c.max_lifetime(), Some(Duration::from_secs(1800)));
        assert_eq!(c.connect_timeout(), Duration::from_secs(10));
        assert_eq!(c.statement_timeout(), Some(Duration::from_millis(60_000)));
        assert_eq!(
            c.idle_in_transaction_session_timeout(),
            Some(Duration::from_millis(60_000))
        );
        assert_eq!(c.lock_timeout(), Some(Duration::from_millis(5_000)));
        assert_eq!(c.application_name(), "pgdbm");
        assert!(c.server_settings().is_empty());
        assert!(c.init_commands().is_empty());
        assert_eq!(*c.retry(), RetryPolicy::default());
        assert_eq!(c.retry().attempts, 3);
        assert_eq!(c.retry().initial_delay, Duration::from_secs(1));
        assert_eq!(c.retry().backoff, 2.0);
        assert_eq!(c.retry().max_delay, Duration::from_secs(30));
        assert_eq!(*c.ssl(), SslConfig::default());
        assert_eq!(c.ssl().mode, SslMode::Prefer);
        assert_eq!(c.statement_cache_capacity(), 256);
        assert_eq!(
            c.startup_settings(),
            vec![
                ("statement_timeout".to_owned(), "60000".to_owned()),
                (
                    "idle_in_transaction_session_timeout".to_owned(),
                    "60000".to_owned()
                ),
                ("lock_timeout".to_owned(), "5000".to_owned()),
                ("application_name".to_owned(), "pgdbm".to_owned()),
            ]
        );
    }

    #[test]
    fn startup_settings_with_timeouts_off() {
        let c = build(
            DatabaseConfig::builder()
                .statement_timeout(None)
                .lock_timeout(None)
                .server_setting("search_path", "app"),
        )
        .unwrap();
        assert_eq!(
            c.startup_settings(),
            vec![
                ("statement_timeout".to_owned(), "0".to_owned()),
                (
                    "idle_in_transaction_session_timeout".to_owned(),
                    "60000".to_owned()
                ),
                ("lock_timeout".to_owned(), "0".to_owned()),
                ("application_name".to_owned(), "pgdbm".to_owned()),
                ("search_path".to_owned(), "app".to_owned()),
            ]
        );
    }

    #[test]
    fn to_builder_derives_a_config() {
        let base = url(
            "postgresql://u:pw@db:6000/shop?schema=a&lock_timeout=0&options=-c%20work_mem%3D1MB",
        )
        .unwrap();
        let base = base
            .to_builder()
            .init_command("SELECT 1")
            .retry(RetryPolicy::no_retry());
        let base = build(base).unwrap();

        let same = build(base.to_builder()).unwrap();
        assert_eq!(format!("{same:?}"), format!("{base:?}"));
        assert_eq!(same.password(), Some("pw"));

        let derived = build(
            base.to_builder()
                .schema("b")
                .user("other")
                .without_password()
                .server_setting("work_mem", "2MB")
                .init_command("SELECT 2"),
        )
        .unwrap();
        assert_eq!(derived.schema(), Some("b"));
        assert_eq!(derived.user(), "other");
        assert_eq!(derived.database(), "shop");
        assert_eq!(derived.password(), None);
        assert_eq!(derived.lock_timeout(), None);
        assert_eq!(
            derived.server_settings(),
            &[("work_mem".to_owned(), "2MB".to_owned())]
        );
        assert_eq!(derived.init_commands(), &["SELECT 1", "SELECT 2"]);
        assert_eq!(derived.retry().attempts, 1);

        let no_schema = build(base.to_builder().without_schema()).unwrap();
        assert_eq!(no_schema.schema(), None);
    }
}
