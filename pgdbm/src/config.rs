//! Connection and pool configuration: [`DatabaseConfig`], built and validated by
//! [`DatabaseConfigBuilder`].
//!
//! A configuration comes from up to four layers, each overriding the one before it:
//!
//! 1. built-in defaults (see [`DatabaseConfig`]);
//! 2. the environment, when [`DatabaseConfigBuilder::env`] is called: `DATABASE_URL` if it is set,
//!    otherwise the libpq variables `PGHOST`, `PGPORT`, `PGDATABASE`, `PGUSER`, `PGPASSWORD`,
//!    `PGAPPNAME`, `PGOPTIONS`, `PGSSLMODE`, `PGSSLROOTCERT`, `PGSSLCERT`, `PGSSLKEY`,
//!    `PGCONNECT_TIMEOUT`;
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

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use percent_encoding::{AsciiSet, CONTROLS, percent_decode_str, utf8_percent_encode};

use crate::error::{Error, Result};

const DEFAULT_HOST: &str = "localhost";
const DEFAULT_PORT: u16 = 5432;
const DEFAULT_USER: &str = "postgres";
const DEFAULT_APPLICATION_NAME: &str = "pgdbm";

/// Environment variables read by [`DatabaseConfigBuilder::env`] when `DATABASE_URL` is not set,
/// with the connection-string key each stands for.
const PG_ENV_VARS: &[(&str, &str)] = &[
    ("PGHOST", "host"),
    ("PGPORT", "port"),
    ("PGDATABASE", "dbname"),
    ("PGUSER", "user"),
    ("PGPASSWORD", "password"),
    ("PGAPPNAME", "application_name"),
    ("PGOPTIONS", "options"),
    ("PGSSLMODE", "sslmode"),
    ("PGSSLROOTCERT", "sslrootcert"),
    ("PGSSLCERT", "sslcert"),
    ("PGSSLKEY", "sslkey"),
    ("PGCONNECT_TIMEOUT", "connect_timeout"),
];

/// Server settings that have a dedicated field; `server_setting` rejects them, and `-c` options
/// naming them are routed to the field.
const DEDICATED_SETTINGS: &[&str] = &[
    "statement_timeout",
    "idle_in_transaction_session_timeout",
    "lock_timeout",
    "application_name",
];

/// The largest server timeout PostgreSQL accepts (an `int` of milliseconds).
const MAX_SERVER_TIMEOUT_MS: u128 = i32::MAX as u128;

// ---------------------------------------------------------------------------------------------
// TLS and retry settings
// ---------------------------------------------------------------------------------------------

/// libpq's `sslmode`.
///
/// Parses from and displays as libpq's spelling (`disable`, `allow`, `prefer`, `require`,
/// `verify-ca`, `verify-full`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum SslMode {
    /// No TLS.
    Disable,
    /// TLS only if the server insists (treated as `prefer` by the drivers).
    Allow,
    /// TLS when the server offers it, without verification.
    #[default]
    Prefer,
    /// TLS required, server certificate not verified.
    Require,
    /// TLS required, server certificate verified against the CA (the system roots when no
    /// `ssl_ca_file` is given).
    VerifyCa,
    /// As `VerifyCa`, and the host name must match the certificate.
    VerifyFull,
}

impl SslMode {
    /// libpq's name of the mode, e.g. `"verify-full"`.
    pub fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Allow => "allow",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Some(match s.trim() {
            "disable" => SslMode::Disable,
            "allow" => SslMode::Allow,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            _ => return None,
        })
    }
}

impl fmt::Display for SslMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SslMode {
    type Err = Error;

    /// Parses libpq's spelling.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] for field `sslmode` when `s` is not one of the six modes.
    fn from_str(s: &str) -> Result<Self> {
        SslMode::parse(s).ok_or_else(|| Error::config("sslmode", bad_sslmode_message(s)))
    }
}

fn bad_sslmode_message(value: &str) -> String {
    format!(
        "invalid value {}; expected one of disable, allow, prefer, require, verify-ca, verify-full",
        quoted(value)
    )
}

/// TLS settings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SslConfig {
    /// The mode.
    pub mode: SslMode,
    /// Root certificate(s) to verify the server with (`sslrootcert`); `None` = the system roots.
    pub ca_file: Option<PathBuf>,
    /// Client certificate (`sslcert`); set together with `key_file`.
    pub cert_file: Option<PathBuf>,
    /// Client key (`sslkey`); set together with `cert_file`.
    pub key_file: Option<PathBuf>,
}

/// Connect retry with exponential backoff.
///
/// The default is 3 attempts, 1 s before the second one, doubling, at most 30 s.
///
/// ```
/// use std::time::Duration;
/// use pgdbm::RetryPolicy;
///
/// let retry = RetryPolicy::default();
/// assert_eq!(retry.delay_after(1), Duration::from_secs(1));
/// assert_eq!(retry.delay_after(2), Duration::from_secs(2));
/// assert_eq!(retry.delay_after(10), Duration::from_secs(30));
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct RetryPolicy {
    /// Total attempts (1 = no retry). Must be at least 1.
    pub attempts: u32,
    /// Delay before the second attempt.
    pub initial_delay: Duration,
    /// Multiplier applied to the delay after each attempt. Must be finite and at least 1.0.
    pub backoff: f64,
    /// Upper bound of a delay.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 3,
            initial_delay: Duration::from_secs(1),
            backoff: 2.0,
            max_delay: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// A policy with the given values; they are validated when the config is built.
    pub fn new(attempts: u32, initial_delay: Duration, backoff: f64, max_delay: Duration) -> Self {
        RetryPolicy {
            attempts,
            initial_delay,
            backoff,
            max_delay,
        }
    }

    /// A single attempt, no retry.
    pub fn no_retry() -> Self {
        RetryPolicy {
            attempts: 1,
            ..RetryPolicy::default()
        }
    }

    /// The delay after failed attempt number `attempt` (1-based):
    /// `initial_delay × backoff^(attempt − 1)`, capped at `max_delay`.
    pub fn delay_after(&self, attempt: u32) -> Duration {
        let exponent = attempt.saturating_sub(1).min(64) as i32;
        let secs = self.initial_delay.as_secs_f64() * self.backoff.powi(exponent);
        // Also catches NaN and infinity, so `from_secs_f64` cannot panic.
        if secs < self.max_delay.as_secs_f64() && secs >= 0.0 {
            Duration::from_secs_f64(secs)
        } else {
            self.max_delay
        }
    }
}

// ---------------------------------------------------------------------------------------------
// DatabaseConfig
// ---------------------------------------------------------------------------------------------

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
/// | idle timeout / max lifetime | 10 min / 30 min | — |
/// | connect timeout | 10 s | `connect_timeout` (seconds, or with a unit) |
/// | statement timeout | 60 000 ms | `statement_timeout` (ms, or with a unit; `0` = off) |
/// | idle-in-transaction timeout | 60 000 ms | `idle_in_transaction_session_timeout` (likewise) |
/// | lock timeout | 5 000 ms | `lock_timeout` (likewise) |
/// | application name | `pgdbm` | `application_name` |
/// | server settings | none | `options` (`-c name=value …`) |
/// | init commands | none | — |
/// | connect retry | 3 attempts, 1 s, ×2, ≤ 30 s | — |
/// | TLS | `prefer`, no files | `sslmode`, `sslrootcert`, `sslcert`, `sslkey` |
/// | statement cache capacity | 256 | — |
///
/// Durations in a connection string are an integer, optionally followed by a unit: `ms`, `s`,
/// `min`, `h` or `d` (`statement_timeout=30s`). An empty value is ignored, as libpq does (except
/// `application_name`, which may be empty).
///
/// Neither `Display` (`postgresql://user:***@host:5432/db`) nor `Debug` shows the password.
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
    idle_timeout: Option<Duration>,
    max_lifetime: Option<Duration>,
    connect_timeout: Duration,
    statement_timeout: Option<Duration>,
    idle_in_transaction_session_timeout: Option<Duration>,
    lock_timeout: Option<Duration>,
    application_name: String,
    server_settings: Vec<(String, String)>,
    init_commands: Vec<String>,
    retry: RetryPolicy,
    ssl: SslConfig,
    statement_cache_capacity: usize,
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
    pub fn from_url(url: &str) -> Result<Self> {
        DatabaseConfig::builder().url(url).build()
    }

    /// Reads the process environment (`DATABASE_URL`, else the libpq `PG*` variables) on top of
    /// the defaults. Same as `DatabaseConfig::builder().env().build()`.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] naming the variable (or, for `DATABASE_URL`, the key inside it) when a
    /// value is invalid; as [`DatabaseConfigBuilder::build`] otherwise.
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
                idle_timeout: Some(self.idle_timeout),
                max_lifetime: Some(self.max_lifetime),
                connect_timeout: Some(self.connect_timeout),
                statement_timeout: Some(self.statement_timeout),
                idle_in_transaction_session_timeout: Some(self.idle_in_transaction_session_timeout),
                lock_timeout: Some(self.lock_timeout),
                application_name: Some(self.application_name.clone()),
                server_settings: self.server_settings.clone(),
                init_commands: self.init_commands.clone(),
                retry: Some(self.retry),
                ssl_mode: Some(self.ssl.mode),
                ssl_ca_file: Some(self.ssl.ca_file.clone()),
                ssl_cert_file: Some(self.ssl.cert_file.clone()),
                ssl_key_file: Some(self.ssl.key_file.clone()),
                statement_cache_capacity: Some(self.statement_cache_capacity),
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
    /// Per-connection prepared statement cache capacity (0 = no cache).
    pub fn statement_cache_capacity(&self) -> usize {
        self.statement_cache_capacity
    }
    /// All settings to send in the startup packet: the three timeouts (in ms, `0` when off),
    /// `application_name`, then `server_settings`.
    pub fn startup_settings(&self) -> Vec<(String, String)> {
        let ms = |d: Option<Duration>| d.map_or(0, |d| d.as_millis()).to_string();
        let mut v = vec![
            ("statement_timeout".to_owned(), ms(self.statement_timeout)),
            (
                "idle_in_transaction_session_timeout".to_owned(),
                ms(self.idle_in_transaction_session_timeout),
            ),
            ("lock_timeout".to_owned(), ms(self.lock_timeout)),
            ("application_name".to_owned(), self.application_name.clone()),
        ];
        v.extend(self.server_settings.iter().cloned());
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
            idle_timeout: Some(Duration::from_secs(10 * 60)),
            max_lifetime: Some(Duration::from_secs(30 * 60)),
            connect_timeout: Duration::from_secs(10),
            statement_timeout: Some(Duration::from_millis(60_000)),
            idle_in_transaction_session_timeout: Some(Duration::from_millis(60_000)),
            lock_timeout: Some(Duration::from_millis(5_000)),
            application_name: DEFAULT_APPLICATION_NAME.to_owned(),
            server_settings: Vec::new(),
            init_commands: Vec::new(),
            retry: RetryPolicy::default(),
            ssl: SslConfig::default(),
            statement_cache_capacity: 256,
        }
    }

    /// Checks every value; the first problem found is returned, naming its field.
    fn validate(&self) -> Result<()> {
        let err = |field: &str, message: &str| Err(Error::config(field, message));

        for (field, value) in [
            ("host", &self.host),
            ("user", &self.user),
            ("database", &self.database),
        ] {
            if value.is_empty() {
                return err(field, "must not be empty");
            }
            if value.contains('\0') {
                return err(field, "must not contain a NUL character");
            }
        }
        if self.host.contains(',') {
            return err("host", "multiple hosts are not supported");
        }
        if self.port == 0 {
            return err("port", "must be between 1 and 65535");
        }
        if self.password.as_deref().is_some_and(|p| p.contains('\0')) {
            return err("password", "must not contain a NUL character");
        }
        if let Some(schema) = &self.schema {
            crate::template::validate_identifier("schema", schema)?;
        }

        if self.max_connections == 0 {
            return err("max_connections", "must be at least 1");
        }
        if self.min_connections > self.max_connections {
            return Err(Error::config(
                "min_connections",
                format!(
                    "{} exceeds max_connections ({})",
                    self.min_connections, self.max_connections
                ),
            ));
        }
        if self.acquire_timeout.is_zero() {
            return err("acquire_timeout", "must be greater than zero");
        }
        for (field, value) in [
            ("idle_timeout", self.idle_timeout),
            ("max_lifetime", self.max_lifetime),
        ] {
            if value.is_some_and(|d| d.is_zero()) {
                return err(field, "must be greater than zero (use None to disable it)");
            }
        }
        if self.connect_timeout.is_zero() {
            return err("connect_timeout", "must be greater than zero");
        }
        for (field, value) in [
            ("statement_timeout", self.statement_timeout),
            (
                "idle_in_transaction_session_timeout",
                self.idle_in_transaction_session_timeout,
            ),
            ("lock_timeout", self.lock_timeout),
        ] {
            if let Some(d) = value {
                if d.as_millis() == 0 {
                    return err(field, "must be at least 1 ms (use None to turn it off)");
                }
                if d.as_millis() > MAX_SERVER_TIMEOUT_MS {
                    return err(
                        field,
                        "must be at most 2147483647 ms (about 24.8 days); use None to turn it off",
                    );
                }
            }
        }
        if self.application_name.contains('\0') {
            return err("application_name", "must not contain a NUL character");
        }

        for (name, value) in &self.server_settings {
            if !is_setting_name(name) {
                return Err(Error::config(
                    "server_settings",
                    format!(
                        "invalid setting name {}; expected letters, digits, '_' and '.', not starting with a digit or '.'",
                        quoted(name)
                    ),
                ));
            }
            if let Some(dedicated) = dedicated_setting(name) {
                return Err(Error::config(
                    "server_settings",
                    format!("{dedicated} has its own setting; set it with .{dedicated}(…)"),
                ));
            }
            // The name is valid from here on, so it may be shown; the value never is.
            if value.contains('\0') {
                return Err(Error::config(
                    format!("server_settings.{name}"),
                    "must not contain a NUL character",
                ));
            }
        }
        for (i, sql) in self.init_commands.iter().enumerate() {
            if sql.trim().is_empty() {
                return Err(Error::config(
                    "init_commands",
                    format!("command {} is empty", i + 1),
                ));
            }
            if sql.contains('\0') {
                return Err(Error::config(
                    "init_commands",
                    format!("command {} contains a NUL character", i + 1),
                ));
            }
        }

        if self.retry.attempts == 0 {
            return err("retry.attempts", "must be at least 1 (1 = no retry)");
        }
        if !(self.retry.backoff.is_finite() && self.retry.backoff >= 1.0) {
            return err("retry.backoff", "must be a finite number of at least 1.0");
        }

        match (&self.ssl.cert_file, &self.ssl.key_file) {
            (Some(_), None) => {
                return err(
                    "ssl_key_file",
                    "a client certificate (ssl_cert_file) needs its key",
                );
            }
            (None, Some(_)) => {
                return err(
                    "ssl_cert_file",
                    "a client key (ssl_key_file) needs its certificate",
                );
            }
            _ => {}
        }
        Ok(())
    }
}

/// `user:***@host:port/db` style; the password is never shown.
impl fmt::Display for DatabaseConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "postgresql://{}",
            utf8_percent_encode(&self.user, USERINFO)
        )?;
        if self.password.is_some() {
            f.write_str(":***")?;
        }
        f.write_str("@")?;
        let socket = self.host.starts_with('/');
        if socket {
            // The socket directory goes to the query; the authority keeps only the port.
        } else if self.host.contains(':') {
            write!(f, "[{}]", self.host)?;
        } else {
            write!(f, "{}", utf8_percent_encode(&self.host, USERINFO))?;
        }
        // A path of `.` or `..` (even percent-encoded) is a dot segment that URI parsers
        // remove: such a database name goes to the query.
        let dot_segment = matches!(self.database.as_str(), "." | "..");
        write!(f, ":{}/", self.port)?;
        if !dot_segment {
            write!(f, "{}", utf8_percent_encode(&self.database, PATH))?;
        }
        let mut sep = '?';
        if socket {
            write!(f, "{sep}host={}", utf8_percent_encode(&self.host, QUERY))?;
            sep = '&';
        }
        if dot_segment {
            write!(f, "{sep}dbname={}", self.database)?;
            sep = '&';
        }
        if let Some(schema) = &self.schema {
            write!(f, "{sep}schema={}", utf8_percent_encode(schema, QUERY))?;
        }
        Ok(())
    }
}

impl fmt::Debug for DatabaseConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DatabaseConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("database", &self.database)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("schema", &self.schema)
            .field("min_connections", &self.min_connections)
            .field("max_connections", &self.max_connections)
            .field("acquire_timeout", &self.acquire_timeout)
            .field("idle_timeout", &self.idle_timeout)
            .field("max_lifetime", &self.max_lifetime)
            .field("connect_timeout", &self.connect_timeout)
            .field("statement_timeout", &self.statement_timeout)
            .field(
                "idle_in_transaction_session_timeout",
                &self.idle_in_transaction_session_timeout,
            )
            .field("lock_timeout", &self.lock_timeout)
            .field("application_name", &self.application_name)
            .field("server_settings", &self.server_settings)
            .field("init_commands", &self.init_commands)
            .field("retry", &self.retry)
            .field("ssl", &self.ssl)
            .field("statement_cache_capacity", &self.statement_cache_capacity)
            .finish()
    }
}

/// Userinfo and host: everything outside the URI's unreserved characters and a few safe marks.
const USERINFO: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'/')
    .add(b':')
    .add(b';')
    .add(b'<')
    .add(b'=')
    .add(b'>')
    .add(b'?')
    .add(b'@')
    .add(b'[')
    .add(b'\\')
    .add(b']')
    .add(b'^')
    .add(b'`')
    .add(b'{')
    .add(b'|')
    .add(b'}');
/// The database name in the URI path.
const PATH: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'/')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'`')
    .add(b'{')
    .add(b'}');
/// A query value.
const QUERY: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'&')
    .add(b'+')
    .add(b'<')
    .add(b'=')
    .add(b'>');

// ---------------------------------------------------------------------------------------------
// Builder
// ---------------------------------------------------------------------------------------------

/// Builds a validated [`DatabaseConfig`].
///
/// Setters are infallible and chainable; all parsing and validation happens in
/// [`build`](Self::build). Precedence, independent of the order of the calls: explicit setters
/// over the connection string ([`url`](Self::url)) over the environment ([`env`](Self::env)) over
/// the defaults. Calling [`url`](Self::url) or [`env`](Self::env) again replaces the earlier
/// value; [`server_setting`](Self::server_setting) and [`init_command`](Self::init_command)
/// accumulate.
///
/// ```
/// use std::time::Duration;
/// use pgdbm::{DatabaseConfig, RetryPolicy, SslMode};
///
/// let config = DatabaseConfig::builder()
///     .host("db.internal")
///     .port(5433)
///     .user("app")
///     .password("secret")
///     .database("shop")
///     .schema("users")
///     .min_connections(2)
///     .max_connections(20)
///     .statement_timeout(None)
///     .lock_timeout(Duration::from_secs(2))
///     .server_setting("work_mem", "64MB")
///     .init_command("SET TIME ZONE 'UTC'")
///     .retry(RetryPolicy::new(5, Duration::from_millis(200), 2.0, Duration::from_secs(5)))
///     .ssl_mode(SslMode::VerifyFull)
///     .build()?;
/// assert_eq!(config.statement_timeout(), None);
/// assert_eq!(config.startup_settings()[0], ("statement_timeout".to_owned(), "0".to_owned()));
/// # Ok::<(), pgdbm::Error>(())
/// ```
#[derive(Clone, Default)]
pub struct DatabaseConfigBuilder {
    url: Option<Secret>,
    env: Option<EnvSnapshot>,
    explicit: Layer,
}

impl fmt::Debug for DatabaseConfigBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A connection string or the environment may hold a password: show only their presence.
        f.debug_struct("DatabaseConfigBuilder")
            .field("url", &self.url.as_ref().map(|_| "<set>"))
            .field("env", &self.env.as_ref().map(|_| "<read>"))
            .field("explicit", &self.explicit)
            .finish()
    }
}

impl DatabaseConfigBuilder {
    /// A builder starting from the defaults (same as [`DatabaseConfig::builder`]).
    pub fn new() -> Self {
        Self::default()
    }

    /// A connection string, parsed by [`build`](Self::build): a `postgresql://` or
    /// `postgres://` URI, or libpq `key=value` pairs (values may be single-quoted, with `\'`,
    /// `''` and `\\` escapes).
    ///
    /// Keys (as URI query parameters or pairs): `host`, `port`, `dbname`, `user`, `password`,
    /// `sslmode`, `sslrootcert`, `sslcert`, `sslkey`, `application_name`, `connect_timeout`,
    /// `options` (`-c name=value` server settings), and pgdbm's `schema`, `statement_timeout`,
    /// `idle_in_transaction_session_timeout`, `lock_timeout`, `min_connections`,
    /// `max_connections`, `acquire_timeout`. Any other key is an error. In a URI, user, password
    /// and database are percent-decoded; an empty host (`postgresql:///db`) means the default
    /// host; `?host=/var/run/postgresql` selects a Unix socket directory. Multiple hosts are not
    /// supported.
    ///
    /// Values from the connection string override the environment and are overridden by the
    /// explicit setters, whatever the order of the calls.
    pub fn url(mut self, url: impl Into<String>) -> Self {
        self.url = Some(Secret(url.into()));
        self
    }

    /// Reads the process environment now, to apply under the connection string and the explicit
    /// setters: `DATABASE_URL` if it is set and not empty; otherwise the libpq variables
    /// `PGHOST`, `PGPORT`, `PGDATABASE`, `PGUSER`, `PGPASSWORD`, `PGAPPNAME`, `PGOPTIONS`,
    /// `PGSSLMODE`, `PGSSLROOTCERT`, `PGSSLCERT`, `PGSSLKEY`, `PGCONNECT_TIMEOUT` (empty ones are
    /// ignored). When `DATABASE_URL` is used, the `PG*` variables are not read at all.
    pub fn env(self) -> Self {
        self.env_from(|name| std::env::var(name).ok())
    }

    /// As [`env`](Self::env), reading the variables through `lookup` instead of the process
    /// environment (for tests, or an environment loaded from elsewhere).
    ///
    /// ```
    /// let config = pgdbm::DatabaseConfig::builder()
    ///     .env_from(|name| (name == "PGPORT").then(|| "6543".to_owned()))
    ///     .build()?;
    /// assert_eq!(config.port(), 6543);
    /// # Ok::<(), pgdbm::Error>(())
    /// ```
    pub fn env_from(mut self, lookup: impl Fn(&str) -> Option<String>) -> Self {
        let get = |name: &str| lookup(name).filter(|v| !v.is_empty());
        self.env = Some(match get("DATABASE_URL") {
            Some(url) => EnvSnapshot::Url(Secret(url)),
            None => EnvSnapshot::Vars(
                PG_ENV_VARS
                    .iter()
                    .filter_map(|&(var, _)| get(var).map(|v| (var, Secret(v))))
                    .collect(),
            ),
        });
        self
    }

    /// Host name, IP address (an IPv6 address may be bracketed), or Unix socket directory
    /// (a path starting with `/`).
    pub fn host(mut self, host: impl Into<String>) -> Self {
        self.explicit.host = Some(host.into());
        self
    }
    /// Port (1–65535).
    pub fn port(mut self, port: u16) -> Self {
        self.explicit.port = Some(port);
        self
    }
    /// Database name (default: the user name).
    pub fn database(mut self, database: impl Into<String>) -> Self {
        self.explicit.database = Some(database.into());
        self
    }
    /// User name.
    pub fn user(mut self, user: impl Into<String>) -> Self {
        self.explicit.user = Some(user.into());
        self
    }
    /// Password.
    pub fn password(mut self, password: impl Into<String>) -> Self {
        self.explicit.password = Some(Some(Secret(password.into())));
        self
    }
    /// Removes a password set by an earlier layer (connection string, environment,
    /// [`DatabaseConfig::to_builder`]).
    pub fn without_password(mut self) -> Self {
        self.explicit.password = Some(None);
        self
    }
    /// Schema of the handle opened with this config; must be a valid identifier.
    pub fn schema(mut self, schema: impl Into<String>) -> Self {
        self.explicit.schema = Some(Some(schema.into()));
        self
    }
    /// Removes a schema set by an earlier layer.
    pub fn without_schema(mut self) -> Self {
        self.explicit.schema = Some(None);
        self
    }
    /// Minimum idle connections kept open (at most `max_connections`).
    pub fn min_connections(mut self, n: u32) -> Self {
        self.explicit.min_connections = Some(n);
        self
    }
    /// Maximum open connections (at least 1).
    pub fn max_connections(mut self, n: u32) -> Self {
        self.explicit.max_connections = Some(n);
        self
    }
    /// How long an acquire waits for a connection (greater than zero).
    pub fn acquire_timeout(mut self, timeout: Duration) -> Self {
        self.explicit.acquire_timeout = Some(timeout);
        self
    }
    /// Idle connections are closed after this long (`None` = never).
    pub fn idle_timeout(mut self, timeout: impl Into<Option<Duration>>) -> Self {
        self.explicit.idle_timeout = Some(timeout.into());
        self
    }
    /// Connections are closed after this long (`None` = never).
    pub fn max_lifetime(mut self, lifetime: impl Into<Option<Duration>>) -> Self {
        self.explicit.max_lifetime = Some(lifetime.into());
        self
    }
    /// Timeout of one connect attempt (greater than zero).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.explicit.connect_timeout = Some(timeout);
        self
    }
    /// Server `statement_timeout` (`None` = off; whole milliseconds, at least 1 ms).
    pub fn statement_timeout(mut self, timeout: impl Into<Option<Duration>>) -> Self {
        self.explicit.statement_timeout = Some(timeout.into());
        self
    }
    /// Server `idle_in_transaction_session_timeout` (`None` = off; at least 1 ms).
    pub fn idle_in_transaction_session_timeout(
        mut self,
        timeout: impl Into<Option<Duration>>,
    ) -> Self {
        self.explicit.idle_in_transaction_session_timeout = Some(timeout.into());
        self
    }
    /// Server `lock_timeout` (`None` = off; at least 1 ms).
    pub fn lock_timeout(mut self, timeout: impl Into<Option<Duration>>) -> Self {
        self.explicit.lock_timeout = Some(timeout.into());
        self
    }
    /// `application_name` shown in `pg_stat_activity`.
    pub fn application_name(mut self, name: impl Into<String>) -> Self {
        self.explicit.application_name = Some(name.into());
        self
    }
    /// Adds a server setting sent at connect (`work_mem`, `search_path`, …), replacing an earlier
    /// one of the same name. The name must match `^[A-Za-z_][A-Za-z0-9_.]*$` and must not be one
    /// of the settings with a setter of their own (the three timeouts, `application_name`).
    pub fn server_setting(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        upsert_setting(
            &mut self.explicit.server_settings,
            name.into(),
            value.into(),
        );
        self
    }
    /// Adds SQL to run on every new connection, after the earlier ones.
    pub fn init_command(mut self, sql: impl Into<String>) -> Self {
        self.explicit.init_commands.push(sql.into());
        self
    }
    /// Connect retry policy.
    pub fn retry(mut self, retry: RetryPolicy) -> Self {
        self.explicit.retry = Some(retry);
        self
    }
    /// TLS mode.
    pub fn ssl_mode(mut self, mode: SslMode) -> Self {
        self.explicit.ssl_mode = Some(mode);
        self
    }
    /// Root certificate(s) to verify the server with (`verify-ca` / `verify-full` use the system
    /// roots without it).
    pub fn ssl_ca_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.explicit.ssl_ca_file = Some(Some(path.into()));
        self
    }
    /// Client certificate; needs [`ssl_key_file`](Self::ssl_key_file).
    pub fn ssl_cert_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.explicit.ssl_cert_file = Some(Some(path.into()));
        self
    }
    /// Client key; needs [`ssl_cert_file`](Self::ssl_cert_file).
    pub fn ssl_key_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.explicit.ssl_key_file = Some(Some(path.into()));
        self
    }
    /// Per-connection prepared statement cache capacity (0 = no cache).
    pub fn statement_cache_capacity(mut self, capacity: usize) -> Self {
        self.explicit.statement_cache_capacity = Some(capacity);
        self
    }

    /// Parses the environment snapshot and the connection string, applies the explicit setters,
    /// and validates the result.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] whose `field` names the setting (`max_connections`, `retry.backoff`,
    /// `ssl_key_file`, …), the connection-string key (`port`, `sslmode`, …), the environment
    /// variable (`PGPORT`, …), or `url` / `DATABASE_URL` for a string that cannot be parsed at
    /// all. [`Error::Identifier`] when the schema is not a valid identifier. No message contains
    /// the password or the connection string.
    pub fn build(&self) -> Result<DatabaseConfig> {
        self.build_with(&|name| std::env::var(name).ok())
    }

    /// `build`, reading the default user name (`USER`, `LOGNAME`) through `os_env`.
    fn build_with(&self, os_env: &dyn Fn(&str) -> Option<String>) -> Result<DatabaseConfig> {
        let mut config = DatabaseConfig::defaults(default_user(os_env));
        let mut database = None;
        if let Some(env) = &self.env {
            env.to_layer()?.apply_to(&mut config, &mut database);
        }
        if let Some(url) = &self.url {
            parse_connection_string(&url.0, Origin::Url)?.apply_to(&mut config, &mut database);
        }
        self.explicit.apply_to(&mut config, &mut database);
        config.database = database.unwrap_or_else(|| config.user.clone());
        config.validate()?;
        Ok(config)
    }
}

/// libpq's rule for the default user: the OS user.
fn default_user(os_env: &dyn Fn(&str) -> Option<String>) -> String {
    ["USER", "LOGNAME"]
        .into_iter()
        .find_map(|name| os_env(name).filter(|v| !v.is_empty()))
        .unwrap_or_else(|| DEFAULT_USER.to_owned())
}

// ---------------------------------------------------------------------------------------------
// Layers
// ---------------------------------------------------------------------------------------------

/// A string that may hold a password: its `Debug` never shows it.
#[derive(Clone)]
struct Secret(String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"***\"")
    }
}

/// The environment as read by [`DatabaseConfigBuilder::env_from`].
#[derive(Clone)]
enum EnvSnapshot {
    /// `DATABASE_URL`.
    Url(Secret),
    /// The non-empty `PG*` variables.
    Vars(Vec<(&'static str, Secret)>),
}

impl EnvSnapshot {
    fn to_layer(&self) -> Result<Layer> {
        match self {
            EnvSnapshot::Url(url) => parse_connection_string(&url.0, Origin::DatabaseUrl),
            EnvSnapshot::Vars(vars) => {
                let mut layer = Layer::default();
                for (var, value) in vars {
                    let key = PG_ENV_VARS
                        .iter()
                        .find(|(v, _)| v == var)
                        .map_or("", |&(_, key)| key);
                    apply_param(&mut layer, key, &value.0, var, Origin::Env)?;
                }
                Ok(layer)
            }
        }
    }
}

/// Values set by one source; `None` = not set by it. `Option<Option<_>>` fields can also be
/// set to "none".
#[derive(Debug, Clone, Default)]
struct Layer {
    host: Option<String>,
    port: Option<u16>,
    database: Option<String>,
    user: Option<String>,
    password: Option<Option<Secret>>,
    schema: Option<Option<String>>,
    min_connections: Option<u32>,
    max_connections: Option<u32>,
    acquire_timeout: Option<Duration>,
    idle_timeout: Option<Option<Duration>>,
    max_lifetime: Option<Option<Duration>>,
    connect_timeout: Option<Duration>,
    statement_timeout: Option<Option<Duration>>,
    idle_in_transaction_session_timeout: Option<Option<Duration>>,
    lock_timeout: Option<Option<Duration>>,
    application_name: Option<String>,
    server_settings: Vec<(String, String)>,
    init_commands: Vec<String>,
    retry: Option<RetryPolicy>,
    ssl_mode: Option<SslMode>,
    ssl_ca_file: Option<Option<PathBuf>>,
    ssl_cert_file: Option<Option<PathBuf>>,
    ssl_key_file: Option<Option<PathBuf>>,
    statement_cache_capacity: Option<usize>,
}

impl Layer {
    /// Overrides `config` with what this layer sets. The database is collected apart, since its
    /// default (the user name) is only known at the end.
    fn apply_to(&self, config: &mut DatabaseConfig, database: &mut Option<String>) {
        fn set<T: Clone>(target: &mut T, value: &Option<T>) {
            if let Some(v) = value {
                *target = v.clone();
            }
        }
        if let Some(host) = &self.host {
            // `[::1]` → `::1`, the form the drivers expect.
            config.host = match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
                Some(inner) => inner.to_owned(),
                None => host.clone(),
            };
        }
        set(&mut config.port, &self.port);
        if self.database.is_some() {
            database.clone_from(&self.database);
        }
        set(&mut config.user, &self.user);
        if let Some(password) = &self.password {
            config.password = password.as_ref().map(|p| p.0.clone());
        }
        set(&mut config.schema, &self.schema);
        set(&mut config.min_connections, &self.min_connections);
        set(&mut config.max_connections, &self.max_connections);
        set(&mut config.acquire_timeout, &self.acquire_timeout);
        set(&mut config.idle_timeout, &self.idle_timeout);
        set(&mut config.max_lifetime, &self.max_lifetime);
        set(&mut config.connect_timeout, &self.connect_timeout);
        set(&mut config.statement_timeout, &self.statement_timeout);
        set(
            &mut config.idle_in_transaction_session_timeout,
            &self.idle_in_transaction_session_timeout,
        );
        set(&mut config.lock_timeout, &self.lock_timeout);
        set(&mut config.application_name, &self.application_name);
        for (name, value) in &self.server_settings {
            upsert_setting(&mut config.server_settings, name.clone(), value.clone());
        }
        config
            .init_commands
            .extend(self.init_commands.iter().cloned());
        set(&mut config.retry, &self.retry);
        set(&mut config.ssl.mode, &self.ssl_mode);
        set(&mut config.ssl.ca_file, &self.ssl_ca_file);
        set(&mut config.ssl.cert_file, &self.ssl_cert_file);
        set(&mut config.ssl.key_file, &self.ssl_key_file);
        set(
            &mut config.statement_cache_capacity,
            &self.statement_cache_capacity,
        );
    }
}

/// Adds a setting or replaces the value of the one with the same (case-insensitive) name.
fn upsert_setting(settings: &mut Vec<(String, String)>, name: String, value: String) {
    match settings
        .iter_mut()
        .find(|(n, _)| n.eq_ignore_ascii_case(&name))
    {
        Some(existing) => *existing = (name, value),
        None => settings.push((name, value)),
    }
}

fn is_setting_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
}

fn dedicated_setting(name: &str) -> Option<&'static str> {
    DEDICATED_SETTINGS
        .iter()
        .copied()
        .find(|d| d.eq_ignore_ascii_case(name))
}

// ---------------------------------------------------------------------------------------------
// Connection strings
// ---------------------------------------------------------------------------------------------

/// Where a value came from, for error messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Origin {
    /// [`DatabaseConfigBuilder::url`].
    Url,
    /// The `DATABASE_URL` variable.
    DatabaseUrl,
    /// A `PG*` variable (the variable is the error's field).
    Env,
}

impl Origin {
    /// The field naming the whole string, for errors that concern no single key.
    fn whole(self) -> &'static str {
        match self {
            Origin::Url => "url",
            Origin::DatabaseUrl | Origin::Env => "DATABASE_URL",
        }
    }

    fn suffix(self) -> &'static str {
        match self {
            Origin::DatabaseUrl => " (in DATABASE_URL)",
            Origin::Url | Origin::Env => "",
        }
    }

    fn error(self, field: &str, message: impl fmt::Display) -> Error {
        Error::config(field, format!("{message}{}", self.suffix()))
    }
}

/// One `key=value` of a connection string. `after_password` marks the pair right after an
/// unquoted (kv form) or query (URI) password: when the password had an unescaped space or `&`,
/// this "key" is really the rest of the password, so its errors must not quote it.
struct Param {
    key: String,
    value: String,
    after_password: bool,
}

fn parse_connection_string(s: &str, origin: Origin) -> Result<Layer> {
    let s = s.trim();
    let lower = s.get(..13).unwrap_or(s).to_ascii_lowercase();
    let params = if lower.starts_with("postgresql://") || lower.starts_with("postgres://") {
        parse_uri(s, origin)?
    } else if s.is_empty() {
        return Err(origin.error(origin.whole(), "the connection string is empty"));
    } else if s.find("://").is_some_and(|i| !s[..i].contains(['=', ' '])) {
        return Err(origin.error(
            origin.whole(),
            "unsupported URI scheme; expected postgresql:// or postgres://",
        ));
    } else if s.contains('=') {
        parse_key_value(s, origin)?
    } else {
        return Err(origin.error(
            origin.whole(),
            "not a connection string; expected a postgresql:// URI or key=value pairs",
        ));
    };
    let mut layer = Layer::default();
    for param in params {
        let result = apply_param(&mut layer, &param.key, &param.value, &param.key, origin);
        if param.after_password {
            result.map_err(|_| {
                origin.error(
                    "password",
                    "invalid text after the password; quote a password that contains spaces \
                     (password='…') or percent-encode it in a URI",
                )
            })?;
        } else {
            result?;
        }
    }
    Ok(layer)
}

/// Splits a `postgresql://` URI into parameters with the `url` crate. Authority values come
/// first, so a query parameter of the same name overrides them.
fn parse_uri(s: &str, origin: Origin) -> Result<Vec<Param>> {
    let err = |field: &str, message: &str| origin.error(field, message);

    // What the `url` crate cannot say: several hosts, or an empty host next to a user or a port
    // (`postgresql://user@/db?host=/tmp`, which libpq accepts and `url` rejects).
    let after_scheme = s.find("://").map_or(0, |i| i + 3);
    let authority_len = s[after_scheme..]
        .find(['/', '?', '#'])
        .unwrap_or(s.len() - after_scheme);
    let authority = &s[after_scheme..after_scheme + authority_len];
    let host_start = authority.rfind('@').map_or(0, |i| i + 1);
    let host_port = &authority[host_start..];
    if host_port.contains(',') {
        return Err(err("host", "multiple hosts are not supported"));
    }
    let empty_host = host_port.is_empty() || host_port.starts_with(':');
    let parsed = if empty_host && !authority.is_empty() {
        let at = after_scheme + host_start;
        url::Url::parse(&format!("{}{DEFAULT_HOST}{}", &s[..at], &s[at..]))
    } else {
        url::Url::parse(s)
    };
    let url = parsed.map_err(|e| {
        use url::ParseError as P;
        match e {
            P::InvalidPort => err(
                "port",
                "invalid port number (characters such as '/', '#', '?' or '@' in the user name \
                 or password must be percent-encoded)",
            ),
            P::EmptyHost
            | P::IdnaError
            | P::InvalidIpv4Address
            | P::InvalidIpv6Address
            | P::InvalidDomainCharacter => err("host", &format!("invalid host: {e}")),
            _ => err(origin.whole(), &format!("invalid URI: {e}")),
        }
    })?;
    if url.fragment().is_some() {
        return Err(err(
            origin.whole(),
            "a URI fragment ('#…') is not allowed; percent-encode '#' as %23",
        ));
    }

    let decode = |field: &str, raw: &str| -> Result<String> {
        percent_decode_str(raw)
            .decode_utf8()
            .map(|v| v.into_owned())
            .map_err(|_| err(field, "percent-encoded value is not valid UTF-8"))
    };
    let param = |key: &str, value: String| Param {
        key: key.to_owned(),
        value,
        after_password: false,
    };
    let mut params = Vec::new();
    if !url.username().is_empty() {
        params.push(param("user", decode("user", url.username())?));
    }
    if let Some(password) = url.password() {
        params.push(param("password", decode("password", password)?));
    }
    if !empty_host {
        match url.host() {
            Some(url::Host::Domain(domain)) => params.push(param("host", decode("host", domain)?)),
            Some(url::Host::Ipv4(addr)) => params.push(param("host", addr.to_string())),
            Some(url::Host::Ipv6(addr)) => params.push(param("host", addr.to_string())),
            None => {}
        }
    }
    if let Some(port) = url.port() {
        params.push(param("port", port.to_string()));
    }
    let path = url.path().strip_prefix('/').unwrap_or(url.path());
    if !path.is_empty() {
        params.push(param("dbname", decode("dbname", path)?));
    }

    let mut after_password = false;
    for pair in url
        .query()
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
    {
        let Some((key, value)) = pair.split_once('=') else {
            if after_password {
                return Err(err(
                    "password",
                    "invalid text after the password; percent-encode '&' in a password as %26",
                ));
            }
            return Err(err(
                origin.whole(),
                "a query parameter has no '=' (expected key=value)",
            ));
        };
        let key = decode(origin.whole(), key)?;
        // Right after a password, the "key" may be the rest of it: not a field to name.
        let value = decode(if after_password { "password" } else { &key }, value)?;
        let is_password = key == "password";
        params.push(Param {
            key,
            value,
            after_password,
        });
        after_password = is_password;
    }
    Ok(params)
}

/// Tokenizes libpq's `key=value` form: pairs separated by whitespace, whitespace allowed around
/// `=`, values either bare (ending at whitespace) or single-quoted. A backslash escapes the next
/// character in both; inside quotes `''` also stands for one quote (an extension of libpq).
fn parse_key_value(s: &str, origin: Origin) -> Result<Vec<Param>> {
    let chars: Vec<char> = s.chars().collect();
    let len = chars.len();
    let mut i = 0;
    let mut params = Vec::new();
    let mut after_bare_password = false;
    // After an unquoted password, any word may be a piece of it (`password=a b=c d`): words
    // are no longer quoted in errors, nor named as the field.
    let mut bare_password_seen = false;
    let skip_whitespace = |i: &mut usize| {
        while *i < len && chars[*i].is_whitespace() {
            *i += 1;
        }
    };
    loop {
        skip_whitespace(&mut i);
        if i == len {
            break;
        }
        let start = i;
        while i < len && !chars[i].is_whitespace() && chars[i] != '=' {
            i += 1;
        }
        let key: String = chars[start..i].iter().collect();
        skip_whitespace(&mut i);
        if i == len || chars[i] != '=' {
            return Err(if after_bare_password {
                origin.error(
                    "password",
                    "invalid text after the password; quote a password that contains spaces \
                     (password='…')",
                )
            } else if is_plain_word(&key) && !bare_password_seen {
                origin.error(
                    origin.whole(),
                    format!("missing '=' after {key} (expected key=value)"),
                )
            } else {
                origin.error(origin.whole(), "a word without '=' (expected key=value)")
            });
        }
        if key.is_empty() {
            return Err(origin.error(origin.whole(), "missing key before '='"));
        }
        i += 1; // '='
        skip_whitespace(&mut i);

        let mut value = String::new();
        let quoted = i < len && chars[i] == '\'';
        if quoted {
            i += 1;
            loop {
                if i == len {
                    let field = if bare_password_seen || !is_plain_word(&key) {
                        origin.whole()
                    } else {
                        &key
                    };
                    return Err(origin.error(field, "unterminated quoted value (missing ')"));
                }
                match chars[i] {
                    '\\' if i + 1 < len => {
                        value.push(chars[i + 1]);
                        i += 2;
                    }
                    '\'' if i + 1 < len && chars[i + 1] == '\'' => {
                        value.push('\'');
                        i += 2;
                    }
                    '\'' => {
                        i += 1;
                        break;
                    }
                    c => {
                        value.push(c);
                        i += 1;
                    }
                }
            }
        } else {
            while i < len && !chars[i].is_whitespace() {
                if chars[i] == '\\' {
                    // libpq drops a trailing lone backslash.
                    if i + 1 < len {
                        value.push(chars[i + 1]);
                    }
                    i = (i + 2).min(len);
                } else {
                    value.push(chars[i]);
                    i += 1;
                }
            }
        }
        let is_password = key == "password";
        params.push(Param {
            key,
            value,
            after_password: after_bare_password,
        });
        after_bare_password = is_password && !quoted;
        bare_password_seen |= after_bare_password;
    }
    Ok(params)
}

fn is_plain_word(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// `"value"`, cut to 60 characters, for error messages (never used for passwords).
fn quoted(value: &str) -> String {
    format!("{:?}", crate::error::truncate_chars(value, 60))
}

#[derive(Clone, Copy)]
enum Unit {
    Millis,
    Seconds,
}

/// An integer with an optional unit (`ms`, `s`, `min`, `h`, `d`); a bare number is in
/// `default_unit`. `None` when malformed or too large.
fn parse_duration(value: &str, default_unit: Unit) -> Option<Duration> {
    let value = value.trim();
    let digits = value
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(value.len());
    if digits == 0 {
        return None;
    }
    let number: u64 = value[..digits].parse().ok()?;
    let ms_per_unit: u64 = match value[digits..].trim_start() {
        "" => match default_unit {
            Unit::Millis => 1,
            Unit::Seconds => 1_000,
        },
        "ms" => 1,
        "s" => 1_000,
        "min" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return None,
    };
    number.checked_mul(ms_per_unit).map(Duration::from_millis)
}

/// Applies one connection-string key (or the key an environment variable stands for).
/// Errors name `field`: the key, or the environment variable.
fn apply_param(
    layer: &mut Layer,
    key: &str,
    value: &str,
    field: &str,
    origin: Origin,
) -> Result<()> {
    let err = |message: String| Err(origin.error(field, message));
    // libpq ignores empty values; application_name may legitimately be empty.
    if value.is_empty() && key != "application_name" {
        return match key {
            "host"
            | "port"
            | "dbname"
            | "user"
            | "password"
            | "sslmode"
            | "sslrootcert"
            | "sslcert"
            | "sslkey"
            | "connect_timeout"
            | "options"
            | "schema"
            | "statement_timeout"
            | "idle_in_transaction_session_timeout"
            | "lock_timeout"
            | "min_connections"
            | "max_connections"
            | "acquire_timeout" => Ok(()),
            _ => unknown_key(key, field, origin),
        };
    }
    let duration = |unit: Unit, unit_name: &str| {
        parse_duration(value, unit).ok_or_else(|| {
            origin.error(
                field,
                format!(
                    "invalid duration {}; expected an integer number of {unit_name}, or one with \
                     a unit (ms, s, min, h, d)",
                    quoted(value)
                ),
            )
        })
    };
    let count = || {
        value.trim().parse::<u32>().map_err(|_| {
            origin.error(
                field,
                format!(
                    "invalid number {}; expected a non-negative integer",
                    quoted(value)
                ),
            )
        })
    };
    let path = || Some(Some(PathBuf::from(value)));
    match key {
        "host" => {
            if value.contains(',') {
                return err("multiple hosts are not supported".to_owned());
            }
            layer.host = Some(value.to_owned());
        }
        "port" => {
            if value.contains(',') {
                return err("multiple hosts are not supported".to_owned());
            }
            match value.trim().parse::<u16>() {
                Ok(port) => layer.port = Some(port),
                Err(_) => return err(format!("invalid port number {}", quoted(value))),
            }
        }
        "dbname" => layer.database = Some(value.to_owned()),
        "user" => layer.user = Some(value.to_owned()),
        "password" => layer.password = Some(Some(Secret(value.to_owned()))),
        "sslmode" => match SslMode::parse(value) {
            Some(mode) => layer.ssl_mode = Some(mode),
            None => return err(bad_sslmode_message(value)),
        },
        "sslrootcert" => layer.ssl_ca_file = path(),
        "sslcert" => layer.ssl_cert_file = path(),
        "sslkey" => layer.ssl_key_file = path(),
        "application_name" => layer.application_name = Some(value.to_owned()),
        "connect_timeout" => layer.connect_timeout = Some(duration(Unit::Seconds, "seconds")?),
        "acquire_timeout" => layer.acquire_timeout = Some(duration(Unit::Seconds, "seconds")?),
        "statement_timeout" | "idle_in_transaction_session_timeout" | "lock_timeout" => {
            let d = duration(Unit::Millis, "milliseconds")?;
            let d = (!d.is_zero()).then_some(d);
            match key {
                "statement_timeout" => layer.statement_timeout = Some(d),
                "lock_timeout" => layer.lock_timeout = Some(d),
                _ => layer.idle_in_transaction_session_timeout = Some(d),
            }
        }
        "min_connections" => layer.min_connections = Some(count()?),
        "max_connections" => layer.max_connections = Some(count()?),
        "schema" => layer.schema = Some(Some(value.to_owned())),
        "options" => {
            for (name, setting) in parse_options(value).map_err(|m| origin.error(field, m))? {
                match dedicated_setting(&name) {
                    Some(dedicated) => {
                        apply_param(layer, dedicated, &setting, dedicated, origin)?;
                    }
                    None => upsert_setting(&mut layer.server_settings, name, setting),
                }
            }
        }
        _ => return unknown_key(key, field, origin),
    }
    Ok(())
}

fn unknown_key(key: &str, field: &str, origin: Origin) -> Result<()> {
    if is_plain_word(key) {
        Err(origin.error(field, format!("unknown key {key}")))
    } else {
        Err(origin.error(origin.whole(), "unknown key (not a plain word)"))
    }
}

/// Parses libpq's `options`: `-c name=value`, `-cname=value` or `--name=value` items separated
/// by whitespace (a backslash escapes the next character). The message never quotes a value.
fn parse_options(options: &str) -> std::result::Result<Vec<(String, String)>, String> {
    // Split into words first.
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = options.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(next) = chars.next() {
                    word.push(next);
                }
                in_word = true;
            }
            // The server's own rule (`pg_split_opts`): only C's `isspace` ends a word.
            c if crate::connect::OPTION_WHITESPACE.contains(&c) => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            c => {
                word.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        words.push(word);
    }

    let mut settings = Vec::new();
    let mut words = words.into_iter();
    while let Some(word) = words.next() {
        let item = if word == "-c" {
            words
                .next()
                .ok_or_else(|| "'-c' at the end, without name=value".to_owned())?
        } else if let Some(rest) = word.strip_prefix("--") {
            // `--work-mem=64MB` is `-c work_mem=64MB`.
            match rest.split_once('=') {
                Some((name, value)) => format!("{}={value}", name.replace('-', "_")),
                None => rest.to_owned(),
            }
        } else if let Some(rest) = word.strip_prefix("-c") {
            rest.to_owned()
        } else {
            return Err("only '-c name=value' settings are supported".to_owned());
        };
        let Some((name, value)) = item.split_once('=') else {
            return Err("a '-c' setting has no '=' (expected -c name=value)".to_owned());
        };
        if !is_setting_name(name) {
            return Err("invalid setting name in '-c name=value'".to_owned());
        }
        settings.push((name.to_owned(), value.to_owned()));
    }
    Ok(settings)
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// A fixed OS environment, so results do not depend on who runs the tests.
    fn os(user: Option<&str>) -> impl Fn(&str) -> Option<String> {
        let user = user.map(str::to_owned);
        move |name| (name == "USER").then(|| user.clone()).flatten()
    }

    fn build(builder: DatabaseConfigBuilder) -> Result<DatabaseConfig> {
        builder.build_with(&os(Some("alice")))
    }

    fn url(s: &str) -> Result<DatabaseConfig> {
        build(DatabaseConfig::builder().url(s))
    }

    fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name| map.get(name).cloned()
    }

    /// The field of a `Config` error (panics on anything else).
    #[track_caller]
    fn field(result: Result<DatabaseConfig>) -> String {
        match result {
            Err(Error::Config { field, .. }) => field,
            Err(other) => panic!("expected a Config error, got {other:?}"),
            Ok(config) => panic!("expected an error, got {config:?}"),
        }
    }

    #[track_caller]
    fn message(result: Result<DatabaseConfig>) -> String {
        result.expect_err("expected an error").to_string()
    }

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
    fn default_user_follows_libpq() {
        let only_logname = |name: &str| (name == "LOGNAME").then(|| "bob".to_owned());
        let c = DatabaseConfig::builder().build_with(&only_logname).unwrap();
        assert_eq!((c.user(), c.database()), ("bob", "bob"));

        let c = DatabaseConfig::builder().build_with(&os(None)).unwrap();
        assert_eq!((c.user(), c.database()), ("postgres", "postgres"));

        let c = DatabaseConfig::builder().build_with(&os(Some(""))).unwrap();
        assert_eq!(c.user(), "postgres");

        // The database defaults to the *configured* user, not the OS user.
        let c = build(DatabaseConfig::builder().user("carol")).unwrap();
        assert_eq!((c.user(), c.database()), ("carol", "carol"));
        let c = url("postgresql://dave@db").unwrap();
        assert_eq!((c.user(), c.database()), ("dave", "dave"));
    }

    #[test]
    fn uri_with_percent_encoded_parts() {
        let c = url(
            "postgresql://my%20user:p%40ss%3Aw%2Fo%25rd+x@db.example.com:6543/my%20db?sslmode=verify-full",
        )
        .unwrap();
        assert_eq!(c.user(), "my user");
        // `+` is a plain character in libpq URIs, not a space.
        assert_eq!(c.password(), Some("p@ss:w/o%rd+x"));
        assert_eq!(c.host(), "db.example.com");
        assert_eq!(c.port(), 6543);
        assert_eq!(c.database(), "my db");
        assert_eq!(c.ssl().mode, SslMode::VerifyFull);

        // An unencoded '@' in the password still works (the last '@' ends the user info).
        let c = url("postgres://u:p@ss@h/db").unwrap();
        assert_eq!(c.password(), Some("p@ss"));
        assert_eq!(c.host(), "h");
    }

    #[test]
    fn uri_short_forms_and_sockets() {
        let c = url("postgresql://").unwrap();
        assert_eq!(
            (c.host(), c.port(), c.database()),
            ("localhost", 5432, "alice")
        );

        let c = url("postgresql:///shop").unwrap();
        assert_eq!((c.host(), c.database()), ("localhost", "shop"));

        let c = url("postgresql://db/").unwrap();
        assert_eq!((c.host(), c.database()), ("db", "alice"));

        let c = url("postgresql://u@/shop?host=/var/run/postgresql").unwrap();
        assert_eq!(c.host(), "/var/run/postgresql");
        assert_eq!((c.user(), c.database()), ("u", "shop"));

        let c = url("postgresql://:5433/shop").unwrap();
        assert_eq!((c.host(), c.port()), ("localhost", 5433));

        let c = url("postgresql://u:pw@:5433/shop?host=%2Ftmp").unwrap();
        assert_eq!(
            (c.host(), c.port(), c.password()),
            ("/tmp", 5433, Some("pw"))
        );

        let c = url("postgresql://%2Fvar%2Frun%2Fpostgresql/shop").unwrap();
        assert_eq!(c.host(), "/var/run/postgresql");

        // Query values override the authority.
        let c = url("postgresql://a:1@h1:1111/d1?host=h2&port=2222&user=b&dbname=d2").unwrap();
        assert_eq!(
            (c.host(), c.port(), c.user(), c.database()),
            ("h2", 2222, "b", "d2")
        );
    }

    #[test]
    fn uri_ipv6_host() {
        let c = url("postgresql://u:pw@[::1]:5433/db").unwrap();
        assert_eq!(c.host(), "::1");
        assert_eq!(c.port(), 5433);
        assert_eq!(c.to_string(), "postgresql://u:***@[::1]:5433/db");

        let c = url("postgresql://[2001:db8::42]/db").unwrap();
        assert_eq!(c.host(), "2001:db8::42");

        let c = build(DatabaseConfig::builder().host("[::1]")).unwrap();
        assert_eq!(c.host(), "::1");

        assert_eq!(field(url("postgresql://[::1/db")), "host");
    }

    #[test]
    fn uri_query_keys() {
        let c = url(
            "postgresql://h/db?application_name=billing%20worker&connect_timeout=5\
             &sslmode=require&sslrootcert=/etc/ca.pem&sslcert=/etc/c.pem&sslkey=/etc/k.pem\
             &schema=billing&statement_timeout=30s&lock_timeout=0\
             &idle_in_transaction_session_timeout=1500&min_connections=2&max_connections=4\
             &acquire_timeout=2min&password=pw",
        )
        .unwrap();
        assert_eq!(c.application_name(), "billing worker");
        assert_eq!(c.connect_timeout(), Duration::from_secs(5));
        assert_eq!(c.ssl().mode, SslMode::Require);
        assert_eq!(c.ssl().ca_file.as_deref(), Some("/etc/ca.pem".as_ref()));
        assert_eq!(c.ssl().cert_file.as_deref(), Some("/etc/c.pem".as_ref()));
        assert_eq!(c.ssl().key_file.as_deref(), Some("/etc/k.pem".as_ref()));
        assert_eq!(c.schema(), Some("billing"));
        assert_eq!(c.statement_timeout(), Some(Duration::from_secs(30)));
        assert_eq!(c.lock_timeout(), None);
        assert_eq!(
            c.idle_in_transaction_session_timeout(),
            Some(Duration::from_millis(1500))
        );
        assert_eq!((c.min_connections(), c.max_connections()), (2, 4));
        assert_eq!(c.acquire_timeout(), Duration::from_secs(120));
        assert_eq!(c.password(), Some("pw"));

        // Empty values are ignored; an empty application_name is kept.
        let c = url("postgresql://h/db?port=&sslmode=&application_name=").unwrap();
        assert_eq!((c.port(), c.ssl().mode), (5432, SslMode::Prefer));
        assert_eq!(c.application_name(), "");
    }

    #[test]
    fn options_become_server_settings() {
        let c = url(
            "postgresql://h/db?options=-c%20work_mem%3D64MB%20-csearch_path%3Dapp,public\
             %20--jit-above-cost%3D10%20-c%20statement_timeout%3D5s%20-c%20geqo=off",
        )
        .unwrap();
        assert_eq!(
            c.server_settings(),
            &[
                ("work_mem".to_owned(), "64MB".to_owned()),
                ("search_path".to_owned(), "app,public".to_owned()),
                ("jit_above_cost".to_owned(), "10".to_owned()),
                ("geqo".to_owned(), "off".to_owned()),
            ]
        );
        // A dedicated setting is routed to its field, not duplicated.
        assert_eq!(c.statement_timeout(), Some(Duration::from_secs(5)));

        let c = url(r"options='-c application_name=my\\ app -c DateStyle=ISO'").unwrap();
        assert_eq!(c.application_name(), "my app");
        assert_eq!(
            c.server_settings(),
            &[("DateStyle".to_owned(), "ISO".to_owned())]
        );

        assert_eq!(field(url("options='-X'")), "options");
        assert_eq!(field(url("options='-c'")), "options");
        assert_eq!(field(url("options='-c work_mem'")), "options");
        assert_eq!(field(url("options='-c 1bad=x'")), "options");
        assert_eq!(
            field(url("options='-c statement_timeout=soon'")),
            "statement_timeout"
        );
    }

    #[test]
    fn unknown_keys_are_rejected() {
        assert_eq!(
            field(url("postgresql://h/db?sslmode=require&target=x")),
            "target"
        );
        assert!(message(url("postgresql://h/db?frobnicate=1")).contains("unknown key frobnicate"));
        assert_eq!(field(url("host=h frobnicate=1")), "frobnicate");
        assert_eq!(field(url("host=h frobnicate=")), "frobnicate");
        // Keys are case-sensitive, as in libpq.
        assert_eq!(field(url("HOST=h")), "HOST");
        assert_eq!(field(url("postgresql://h/db?a%20b=1")), "url");
    }

    #[test]
    fn multiple_hosts_are_rejected() {
        for s in [
            "postgresql://h1,h2/db",
            "postgresql://h1:5432,h2:5433/db",
            "postgresql://u:pw@h1,h2/db",
            "postgresql:///db?host=h1,h2",
            "postgresql://h/db?port=1,2",
            "host=h1,h2 dbname=db",
        ] {
            let err = url(s).unwrap_err();
            assert!(
                err.to_string().contains("multiple hosts are not supported"),
                "{s}: {err}"
            );
            let Error::Config { field, .. } = err else {
                panic!()
            };
            assert!(field == "host" || field == "port", "{s}: {field}");
        }
        let vars = env(&[("PGHOST", "a,b")]);
        assert_eq!(
            field(build(DatabaseConfig::builder().env_from(vars))),
            "PGHOST"
        );
        assert_eq!(field(build(DatabaseConfig::builder().host("a,b"))), "host");
    }

    #[test]
    fn bad_values_name_their_key() {
        assert_eq!(field(url("postgresql://h:99999/db")), "port");
        assert_eq!(field(url("postgresql://h:abc/db")), "port");
        assert_eq!(field(url("postgresql://h/db?port=x")), "port");
        assert_eq!(field(url("port=-1")), "port");
        assert_eq!(field(url("postgresql://h/db?sslmode=requir")), "sslmode");
        assert!(message(url("sslmode=requir")).contains("verify-full"));
        assert_eq!(field(url("connect_timeout=ten")), "connect_timeout");
        assert_eq!(field(url("connect_timeout=5 parsecs")), "url");
        assert_eq!(field(url("connect_timeout='5 parsecs'")), "connect_timeout");
        assert_eq!(field(url("statement_timeout=1.5s")), "statement_timeout");
        assert_eq!(
            field(url("lock_timeout=99999999999999999999")),
            "lock_timeout"
        );
        assert_eq!(field(url("min_connections=-1")), "min_connections");
        assert_eq!(field(url("max_connections=many")), "max_connections");
        assert_eq!(field(url("acquire_timeout=0")), "acquire_timeout");
        assert_eq!(field(url("connect_timeout=0")), "connect_timeout");
        assert_eq!(field(url("postgresql://h/db#frag")), "url");
        assert_eq!(field(url("postgresql://h/db?novalue")), "url");
        assert_eq!(field(url("postgresql://h/db?dbname=%FF")), "dbname");
        assert_eq!(field(url("mysql://u:pw@h/db")), "url");
        assert_eq!(field(url("just some words")), "url");
        assert_eq!(field(url("   ")), "url");
        // Server-side maximum of a timeout.
        assert_eq!(field(url("statement_timeout=25d")), "statement_timeout");
        assert!(url("statement_timeout=24d").is_ok());
    }

    #[test]
    fn key_value_form() {
        let c = url(
            r"host=db.internal port = 6543 dbname= app user =u password='it''s a \'quote\' and \\' sslmode=require",
        )
        .unwrap();
        assert_eq!(c.host(), "db.internal");
        assert_eq!(c.port(), 6543);
        assert_eq!(c.database(), "app");
        assert_eq!(c.user(), "u");
        assert_eq!(c.password(), Some(r"it's a 'quote' and \"));
        assert_eq!(c.ssl().mode, SslMode::Require);

        let c = url("  host=/tmp\tapplication_name=''  dbname='my db'  ").unwrap();
        assert_eq!(c.host(), "/tmp");
        assert_eq!(c.application_name(), "");
        assert_eq!(c.database(), "my db");

        // Bare values: a backslash escapes the next character; quotes inside are literal.
        let c = url(r"password=a\ b'c\\d dbname=x").unwrap();
        assert_eq!(c.password(), Some(r"a b'c\d"));
        assert_eq!(c.database(), "x");

        // Quoted values may be followed directly by the next pair; the last duplicate wins.
        let c = url("dbname='a'user=b dbname=c").unwrap();
        assert_eq!((c.database(), c.user()), ("c", "b"));

        // A trailing `key=` has an empty value (ignored).
        let c = url("dbname=app port=").unwrap();
        assert_eq!(c.port(), 5432);
    }

    #[test]
    fn key_value_tokenizer() {
        let kv = |s: &str| {
            parse_key_value(s, Origin::Url).map(|ps| {
                ps.into_iter()
                    .map(|p| (p.key, p.value, p.after_password))
                    .collect::<Vec<_>>()
            })
        };
        let pair = |k: &str, v: &str| (k.to_owned(), v.to_owned(), false);
        assert_eq!(kv("").unwrap(), vec![]);
        assert_eq!(kv("a=1").unwrap(), vec![pair("a", "1")]);
        assert_eq!(
            kv(" a = 1  b=\t2 ").unwrap(),
            vec![pair("a", "1"), pair("b", "2")]
        );
        assert_eq!(kv("a='' b=2").unwrap(), vec![pair("a", ""), pair("b", "2")]);
        assert_eq!(kv("a='x y'").unwrap(), vec![pair("a", "x y")]);
        assert_eq!(kv(r"a='x\'y'").unwrap(), vec![pair("a", "x'y")]);
        assert_eq!(kv("a='x''y'").unwrap(), vec![pair("a", "x'y")]);
        assert_eq!(kv(r"a='x\\'").unwrap(), vec![pair("a", r"x\")]);
        assert_eq!(kv(r"a='\n'").unwrap(), vec![pair("a", "n")]);
        assert_eq!(kv(r"a=x\").unwrap(), vec![pair("a", "x")]);
        assert_eq!(kv("a=é=ü").unwrap(), vec![pair("a", "é=ü")]);
        // As in libpq, whitespace after '=' is skipped, so `a= b=1` gives a the value "b=1".
        assert_eq!(kv("a= b=1").unwrap(), vec![pair("a", "b=1")]);
        assert_eq!(
            kv("password=x y=1").unwrap(),
            vec![
                pair("password", "x"),
                ("y".to_owned(), "1".to_owned(), true)
            ]
        );
        assert_eq!(
            kv("password='x' y=1").unwrap(),
            vec![pair("password", "x"), pair("y", "1")]
        );

        let err_field = |s: &str| match kv(s) {
            Err(Error::Config { field, .. }) => field,
            other => panic!("{s}: {:?}", other.map(|v| v.len())),
        };
        assert_eq!(err_field("a='unterminated"), "a");
        assert_eq!(err_field(r"a='ends with escape\'"), "a");
        assert_eq!(err_field("=1"), "url");
        assert_eq!(err_field("a=1 b"), "url");
        assert_eq!(err_field("a=1 b c=2"), "url");
        assert!(
            kv("a=1 b")
                .unwrap_err()
                .to_string()
                .contains("missing '=' after b")
        );
    }

    #[test]
    fn env_database_url_wins_over_pg_vars() {
        let vars = env(&[
            (
                "DATABASE_URL",
                "postgresql://url_user:pw@url-host:7000/url_db",
            ),
            ("PGHOST", "pg-host"),
            ("PGPORT", "8000"),
            ("PGUSER", "pg_user"),
            ("PGPASSWORD", "pg_pw"),
        ]);
        let c = build(DatabaseConfig::builder().env_from(vars)).unwrap();
        assert_eq!(c.host(), "url-host");
        assert_eq!(c.port(), 7000);
        assert_eq!(c.user(), "url_user");
        assert_eq!(c.password(), Some("pw"));
        assert_eq!(c.database(), "url_db");

        // An empty DATABASE_URL counts as unset.
        let vars = env(&[("DATABASE_URL", ""), ("PGHOST", "pg-host")]);
        let c = build(DatabaseConfig::builder().env_from(vars)).unwrap();
        assert_eq!(c.host(), "pg-host");
    }

    #[test]
    fn env_pg_vars() {
        let vars = env(&[
            ("PGHOST", "/var/run/postgresql"),
            ("PGPORT", "5555"),
            ("PGDATABASE", "shop"),
            ("PGUSER", "svc"),
            ("PGPASSWORD", "hunter2"),
            ("PGAPPNAME", "worker"),
            ("PGOPTIONS", "-c work_mem=8MB"),
            ("PGSSLMODE", "verify-ca"),
            ("PGSSLROOTCERT", "/ca.pem"),
            ("PGSSLCERT", "/c.pem"),
            ("PGSSLKEY", "/k.pem"),
            ("PGCONNECT_TIMEOUT", "3"),
            ("PGSCHEMA", "ignored"),
        ]);
        let c = build(DatabaseConfig::builder().env_from(vars)).unwrap();
        assert_eq!(c.host(), "/var/run/postgresql");
        assert_eq!(c.port(), 5555);
        assert_eq!(c.database(), "shop");
        assert_eq!(c.user(), "svc");
        assert_eq!(c.password(), Some("hunter2"));
        assert_eq!(c.application_name(), "worker");
        assert_eq!(
            c.server_settings(),
            &[("work_mem".to_owned(), "8MB".to_owned())]
        );
        assert_eq!(c.ssl().mode, SslMode::VerifyCa);
        assert_eq!(c.ssl().ca_file.as_deref(), Some("/ca.pem".as_ref()));
        assert_eq!(c.ssl().cert_file.as_deref(), Some("/c.pem".as_ref()));
        assert_eq!(c.ssl().key_file.as_deref(), Some("/k.pem".as_ref()));
        assert_eq!(c.connect_timeout(), Duration::from_secs(3));
        assert_eq!(c.schema(), None);

        // PGUSER without PGDATABASE: the database follows the user.
        let c = build(DatabaseConfig::builder().env_from(env(&[("PGUSER", "svc")]))).unwrap();
        assert_eq!(c.database(), "svc");

        // Empty variables are ignored.
        let c = build(DatabaseConfig::builder().env_from(env(&[("PGPORT", "")]))).unwrap();
        assert_eq!(c.port(), 5432);

        // Nothing set: the defaults.
        let c = build(DatabaseConfig::builder().env_from(env(&[]))).unwrap();
        assert_eq!((c.host(), c.port(), c.user()), ("localhost", 5432, "alice"));
    }

    #[test]
    fn env_errors_name_the_variable() {
        let b = |vars: &[(&str, &str)]| build(DatabaseConfig::builder().env_from(env(vars)));
        assert_eq!(field(b(&[("PGPORT", "x")])), "PGPORT");
        assert_eq!(field(b(&[("PGSSLMODE", "on")])), "PGSSLMODE");
        assert_eq!(
            field(b(&[("PGCONNECT_TIMEOUT", "soon")])),
            "PGCONNECT_TIMEOUT"
        );
        assert_eq!(field(b(&[("PGOPTIONS", "-X")])), "PGOPTIONS");
        // Inside DATABASE_URL: the key, and the message says where.
        let r = b(&[("DATABASE_URL", "postgresql://h/db?sslmode=x")]);
        assert!(
            message(b(&[("DATABASE_URL", "postgresql://h/db?sslmode=x")])).contains("DATABASE_URL")
        );
        assert_eq!(field(r), "sslmode");
        assert_eq!(field(b(&[("DATABASE_URL", "nonsense")])), "DATABASE_URL");
    }

    #[test]
    fn layers_explicit_over_url_over_env_whatever_the_order() {
        let vars = || {
            env(&[
                ("PGHOST", "env-host"),
                ("PGPORT", "1111"),
                ("PGUSER", "env_user"),
                ("PGAPPNAME", "env-app"),
            ])
        };
        let s = "postgresql://url_user:url_pw@url-host:2222/url_db?application_name=url-app";
        let a = DatabaseConfig::builder()
            .port(3333)
            .password("explicit_pw")
            .url(s)
            .env_from(vars());
        let b = DatabaseConfig::builder()
            .env_from(vars())
            .url(s)
            .port(3333)
            .password("explicit_pw");
        for builder in [a, b] {
            let c = build(builder).unwrap();
            assert_eq!(c.port(), 3333);
            assert_eq!(c.password(), Some("explicit_pw"));
            assert_eq!(c.host(), "url-host");
            assert_eq!(c.user(), "url_user");
            assert_eq!(c.database(), "url_db");
            assert_eq!(c.application_name(), "url-app");
        }

        // Env values survive where the URL is silent.
        let c = build(
            DatabaseConfig::builder()
                .env_from(vars())
                .url("postgresql:///db"),
        )
        .unwrap();
        assert_eq!(
            (c.host(), c.port(), c.user()),
            ("env-host", 1111, "env_user")
        );

        // The last url() wins.
        let c = url("postgresql://h1/db").unwrap();
        assert_eq!(c.host(), "h1");
        let c = build(DatabaseConfig::builder().url("host=h1").url("host=h2")).unwrap();
        assert_eq!(c.host(), "h2");

        // Explicit setters override URL timeouts, including turning them off.
        let c = build(
            DatabaseConfig::builder()
                .statement_timeout(None)
                .url("statement_timeout=10 lock_timeout=20"),
        )
        .unwrap();
        assert_eq!(c.statement_timeout(), None);
        assert_eq!(c.lock_timeout(), Some(Duration::from_millis(20)));

        // Server settings merge by name, explicit last.
        let c = build(
            DatabaseConfig::builder()
                .server_setting("WORK_MEM", "1GB")
                .server_setting("jit", "off")
                .url("options='-c work_mem=4MB -c geqo=off'"),
        )
        .unwrap();
        assert_eq!(
            c.server_settings(),
            &[
                ("WORK_MEM".to_owned(), "1GB".to_owned()),
                ("geqo".to_owned(), "off".to_owned()),
                ("jit".to_owned(), "off".to_owned()),
            ]
        );
    }

    #[test]
    fn explicit_builder() {
        let retry = RetryPolicy::new(5, Duration::from_millis(100), 1.5, Duration::from_secs(2));
        let c = build(
            DatabaseConfig::builder()
                .host("db")
                .port(5433)
                .database("shop")
                .user("u")
                .password("p")
                .schema("users")
                .min_connections(0)
                .max_connections(20)
                .acquire_timeout(Duration::from_secs(1))
                .idle_timeout(None)
                .max_lifetime(Duration::from_secs(60))
                .connect_timeout(Duration::from_secs(2))
                .statement_timeout(Duration::from_secs(1))
                .idle_in_transaction_session_timeout(None)
                .lock_timeout(Some(Duration::from_millis(250)))
                .application_name("app")
                .server_setting("work_mem", "64MB")
                .server_setting("work_mem", "128MB")
                .init_command("SET TIME ZONE 'UTC'")
                .init_command("SELECT 1")
                .retry(retry)
                .ssl_mode(SslMode::VerifyFull)
                .ssl_ca_file("/ca.pem")
                .ssl_cert_file("/c.pem")
                .ssl_key_file("/k.pem")
                .statement_cache_capacity(0),
        )
        .unwrap();
        assert_eq!(
            (c.host(), c.port(), c.database(), c.user()),
            ("db", 5433, "shop", "u")
        );
        assert_eq!((c.password(), c.schema()), (Some("p"), Some("users")));
        assert_eq!((c.min_connections(), c.max_connections()), (0, 20));
        assert_eq!(c.acquire_timeout(), Duration::from_secs(1));
        assert_eq!(c.idle_timeout(), None);
        assert_eq!(c.max_lifetime(), Some(Duration::from_secs(60)));
        assert_eq!(c.connect_timeout(), Duration::from_secs(2));
        assert_eq!(
            c.server_settings(),
            &[("work_mem".to_owned(), "128MB".to_owned())]
        );
        assert_eq!(c.init_commands(), &["SET TIME ZONE 'UTC'", "SELECT 1"]);
        assert_eq!(*c.retry(), retry);
        assert_eq!(c.ssl().mode, SslMode::VerifyFull);
        assert_eq!(c.statement_cache_capacity(), 0);
        assert_eq!(
            c.startup_settings(),
            vec![
                ("statement_timeout".to_owned(), "1000".to_owned()),
                (
                    "idle_in_transaction_session_timeout".to_owned(),
                    "0".to_owned()
                ),
                ("lock_timeout".to_owned(), "250".to_owned()),
                ("application_name".to_owned(), "app".to_owned()),
                ("work_mem".to_owned(), "128MB".to_owned()),
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
    fn every_validation_error_names_its_field() {
        let b = DatabaseConfig::builder;
        let ms = Duration::from_millis;
        let cases: Vec<(&str, DatabaseConfigBuilder)> = vec![
            ("host", b().host("")),
            ("host", b().host("a\0b")),
            ("port", b().port(0)),
            ("port", b().url("postgresql://h:0/db")),
            ("database", b().database("")),
            ("user", b().user("")),
            ("password", b().password("a\0b")),
            ("max_connections", b().max_connections(0)),
            ("min_connections", b().min_connections(11)),
            ("min_connections", b().min_connections(3).max_connections(2)),
            ("acquire_timeout", b().acquire_timeout(Duration::ZERO)),
            ("idle_timeout", b().idle_timeout(Duration::ZERO)),
            ("max_lifetime", b().max_lifetime(Duration::ZERO)),
            ("connect_timeout", b().connect_timeout(Duration::ZERO)),
            ("statement_timeout", b().statement_timeout(Duration::ZERO)),
            (
                "statement_timeout",
                b().statement_timeout(Duration::from_micros(999)),
            ),
            (
                "idle_in_transaction_session_timeout",
                b().idle_in_transaction_session_timeout(ms(i32::MAX as u64 + 1)),
            ),
            (
                "lock_timeout",
                b().lock_timeout(Duration::from_secs(30 * 86_400)),
            ),
            ("application_name", b().application_name("a\0")),
            ("server_settings", b().server_setting("1abc", "x")),
            ("server_settings", b().server_setting("", "x")),
            ("server_settings", b().server_setting("work-mem", "x")),
            ("server_settings", b().server_setting("a b", "x")),
            (
                "server_settings",
                b().server_setting("Statement_Timeout", "1"),
            ),
            (
                "server_settings",
                b().server_setting("application_name", "x"),
            ),
            (
                "server_settings.work_mem",
                b().server_setting("work_mem", "a\0"),
            ),
            ("init_commands", b().init_command("  ")),
            ("init_commands", b().init_command("SELECT '\0'")),
            (
                "retry.attempts",
                b().retry(RetryPolicy::new(0, ms(1), 2.0, ms(1))),
            ),
            (
                "retry.backoff",
                b().retry(RetryPolicy::new(3, ms(1), 0.5, ms(1))),
            ),
            (
                "retry.backoff",
                b().retry(RetryPolicy::new(3, ms(1), f64::NAN, ms(1))),
            ),
            (
                "retry.backoff",
                b().retry(RetryPolicy::new(3, ms(1), f64::INFINITY, ms(1))),
            ),
            ("ssl_key_file", b().ssl_cert_file("/c.pem")),
            ("ssl_cert_file", b().ssl_key_file("/k.pem")),
            ("sslmode", b().url("sslmode=on")),
        ];
        for (expected, builder) in cases {
            assert_eq!(field(build(builder.clone())), expected, "{builder:?}");
        }

        // Boundaries that are fine.
        for builder in [
            b().min_connections(10).max_connections(10),
            b().statement_timeout(ms(1)),
            b().lock_timeout(ms(i32::MAX as u64)),
            b().retry(RetryPolicy::new(1, Duration::ZERO, 1.0, Duration::ZERO)),
            b().server_setting("_x.y_1", "")
                .server_setting("pg_stat_statements.track", "all"),
            b().ssl_mode(SslMode::VerifyFull),
            b().ssl_mode(SslMode::VerifyCa),
            b().ssl_cert_file("/c").ssl_key_file("/k"),
        ] {
            assert!(build(builder.clone()).is_ok(), "{builder:?}");
        }
    }

    #[test]
    fn nul_in_a_setting_value_names_the_setting_not_the_value() {
        let err = DatabaseConfig::builder()
            .server_setting("app.note", "sEcReT\0value")
            .build()
            .expect_err("a NUL cannot travel in the startup packet");
        let Error::Config { field, .. } = &err else {
            panic!("expected a config error, got {err:?}");
        };
        assert_eq!(field, "server_settings.app.note");
        for text in [err.to_string(), format!("{err:?}")] {
            assert!(!text.contains("sEcReT"), "{text}");
        }
        // Also when it comes through `options`.
        let err = DatabaseConfig::builder()
            .url("host=h options='-c app.note=sEcReT\\\0'")
            .build()
            .expect_err("a NUL cannot travel in the startup packet");
        assert!(
            matches!(&err, Error::Config { field, .. } if field == "server_settings.app.note"),
            "{err:?}"
        );
        assert!(!format!("{err} {err:?}").contains("sEcReT"), "{err:?}");
    }

    #[test]
    fn pieces_of_an_unquoted_password_never_show() {
        // `password=correct horse=battery staple`: every word after the password may be a
        // piece of it (found by `properties::passwords_never_show`).
        for s in [
            "password=PWa PWb=c PWd",
            "password=PWa PWb=c PWd='x",
            "host=h password=PWa PWb PWc",
            "postgresql://u@h/db?password=PWa&PWb=%aa",
        ] {
            let err = DatabaseConfig::from_url(s).expect_err("not a valid string");
            let shown = format!("{err} {err:?}");
            assert!(!shown.contains("PW"), "{s}: {shown}");
        }
    }

    #[test]
    fn options_split_only_at_c_whitespace() {
        // The server keeps a no-break space or a line separator inside a word.
        let c = DatabaseConfig::builder()
            .url("host=h options='-c app.a=x\u{a0}y -c\u{0b}app.b=z\u{2028}'")
            .build()
            .expect("valid options");
        assert_eq!(
            c.server_settings(),
            [
                ("app.a".to_owned(), "x\u{a0}y".to_owned()),
                ("app.b".to_owned(), "z\u{2028}".to_owned())
            ]
        );
    }

    #[test]
    fn invalid_schema_is_rejected() {
        // The identifier rules live in `template::validate_identifier`.
        for schema in ["users", "_x1", "Billing"] {
            assert_eq!(
                build(DatabaseConfig::builder().schema(schema))
                    .unwrap()
                    .schema(),
                Some(schema)
            );
        }
        for schema in ["1users", "a-b", "a b", "x\"; DROP", ""] {
            let err = build(DatabaseConfig::builder().schema(schema)).unwrap_err();
            assert!(
                matches!(err, Error::Identifier { kind: "schema", .. }),
                "{schema}: {err:?}"
            );
        }
        let err = url("postgresql://h/db?schema=1bad").unwrap_err();
        assert!(matches!(err, Error::Identifier { kind: "schema", .. }));
    }

    #[test]
    fn password_never_shown() {
        let secret = "Sup3rS3cret";
        let c = url(&format!("postgresql://app:{secret}@db:5432/shop?schema=s")).unwrap();
        assert_eq!(c.password(), Some(secret));
        let shown = [
            c.to_string(),
            c.masked_url(),
            format!("{c:?}"),
            format!("{c:#?}"),
            format!("{:?}", c.to_builder()),
            format!(
                "{:?}",
                DatabaseConfig::builder().url(format!("postgresql://u:{secret}@h"))
            ),
            format!("{:?}", DatabaseConfig::builder().password(secret)),
            format!(
                "{:?}",
                DatabaseConfig::builder().env_from(env(&[("PGPASSWORD", secret)]))
            ),
        ];
        for text in &shown {
            assert!(!text.contains(secret), "{text}");
        }
        assert_eq!(c.to_string(), "postgresql://app:***@db:5432/shop?schema=s");
        assert!(format!("{c:?}").contains(r#"password: Some("***")"#));

        // Errors, even when the password broke the parse.
        for s in [
            format!("postgresql://app:{secret}@db:badport/shop"),
            format!("postgresql://app:{secret}/x@db/shop"),
            format!("postgresql://app:{secret}#x@db/shop"),
            format!("postgresql://app:{secret}@db/shop?sslmode={secret}x"),
            format!("postgresql://app@db/shop?password={secret}&x&y"),
            format!("postgresql://app@db/shop?password=a&{secret}=1"),
            format!("postgresql://app@db/shop?password={secret}%FF"),
            format!("host=db password={secret} x"),
            format!("host=db password=a {secret}=1"),
            format!("host=db password=a {secret}"),
            format!("host=db password='{secret}"),
            format!("host=db password=a port={secret}"),
            format!("mysql://app:{secret}@db/shop"),
            format!("postgresql://app:{secret}@db/shop#x"),
            format!("postgresql://app:{secret}@[db/shop"),
        ] {
            let err = url(&s).expect_err(&s);
            let text = format!("{err} {err:?}");
            let visible = s.contains(&format!("sslmode={secret}"));
            assert!(visible || !text.contains(secret), "{s}: {text}");
        }
        let vars = env(&[("DATABASE_URL", "postgresql://u:Sup3rS3cret@h:x/db")]);
        let err = build(DatabaseConfig::builder().env_from(vars)).unwrap_err();
        assert!(!format!("{err} {err:?}").contains(secret));
    }

    #[test]
    fn display_forms() {
        let c = build(DatabaseConfig::builder()).unwrap();
        assert_eq!(c.to_string(), "postgresql://alice@localhost:5432/alice");

        let c = url("postgresql://a%40b:pw@/my%20db?host=/var/run/postgresql").unwrap();
        assert_eq!(
            c.to_string(),
            "postgresql://a%40b:***@:5432/my%20db?host=/var/run/postgresql"
        );
        // The displayed URI parses back to the same place.
        let back = url(&c.to_string()).unwrap();
        assert_eq!(
            (back.host(), back.port(), back.user(), back.database()),
            ("/var/run/postgresql", 5432, "a@b", "my db")
        );

        let c = build(DatabaseConfig::builder().host("/tmp").schema("s")).unwrap();
        assert_eq!(
            c.to_string(),
            "postgresql://alice@:5432/alice?host=/tmp&schema=s"
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

    #[test]
    fn ssl_mode_names() {
        for mode in [
            SslMode::Disable,
            SslMode::Allow,
            SslMode::Prefer,
            SslMode::Require,
            SslMode::VerifyCa,
            SslMode::VerifyFull,
        ] {
            assert_eq!(mode.as_str().parse::<SslMode>().unwrap(), mode);
            assert_eq!(mode.to_string(), mode.as_str());
        }
        let err = "verify_full".parse::<SslMode>().unwrap_err();
        assert!(matches!(err, Error::Config { ref field, .. } if field == "sslmode"));
    }

    #[test]
    fn durations() {
        let s = |v: &str| parse_duration(v, Unit::Seconds);
        let m = |v: &str| parse_duration(v, Unit::Millis);
        assert_eq!(s("5"), Some(Duration::from_secs(5)));
        assert_eq!(m("5"), Some(Duration::from_millis(5)));
        assert_eq!(m(" 250 ms "), Some(Duration::from_millis(250)));
        assert_eq!(m("2s"), Some(Duration::from_secs(2)));
        assert_eq!(m("3min"), Some(Duration::from_secs(180)));
        assert_eq!(m("1h"), Some(Duration::from_secs(3600)));
        assert_eq!(m("1d"), Some(Duration::from_secs(86_400)));
        assert_eq!(m("0"), Some(Duration::ZERO));
        for bad in [
            "",
            "s",
            "-1",
            "1.5",
            "1 sec",
            "1m",
            "ms5",
            "18446744073709551615d",
        ] {
            assert_eq!(m(bad), None, "{bad}");
        }
    }

    #[test]
    fn retry_delays() {
        let r = RetryPolicy::default();
        assert_eq!(r.delay_after(0), Duration::from_secs(1));
        assert_eq!(r.delay_after(1), Duration::from_secs(1));
        assert_eq!(r.delay_after(3), Duration::from_secs(4));
        assert_eq!(r.delay_after(6), Duration::from_secs(30));
        assert_eq!(r.delay_after(u32::MAX), Duration::from_secs(30));
        // Extreme values saturate instead of panicking.
        let r = RetryPolicy::new(3, Duration::MAX, 1e300, Duration::from_secs(7));
        assert_eq!(r.delay_after(64), Duration::from_secs(7));
        let r = RetryPolicy::new(3, Duration::from_secs(1), f64::NAN, Duration::from_secs(7));
        assert_eq!(r.delay_after(2), Duration::from_secs(7));
        assert_eq!(RetryPolicy::no_retry().attempts, 1);
    }
}

/// Properties of the connection-string parsers, the rendering and the secrecy of passwords.
#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    /// Strings of up to `max` characters of `alphabet`.
    fn chars(alphabet: &str, max: usize) -> impl Strategy<Value = String> + use<> {
        let alphabet: Vec<char> = alphabet.chars().collect();
        prop::collection::vec(prop::sample::select(alphabet), 0..=max)
            .prop_map(|c| c.into_iter().collect())
    }

    /// Up to `max` of `tokens` or arbitrary characters, concatenated.
    fn text(tokens: Vec<&'static str>, max: usize) -> impl Strategy<Value = String> {
        prop::collection::vec(
            prop_oneof![
                4 => prop::sample::select(tokens).prop_map(str::to_owned),
                1 => prop::collection::vec(any::<char>(), 0..4).prop_map(String::from_iter),
            ],
            0..max,
        )
        .prop_map(|parts| parts.concat())
    }

    const KEYS: [&str; 12] = [
        "host",
        "port",
        "dbname",
        "user",
        "password",
        "sslmode",
        "options",
        "schema",
        "statement_timeout",
        "max_connections",
        "application_name",
        "bogus",
    ];

    /// Connection strings of either form, rich in what their parsers branch on.
    fn connection_string() -> impl Strategy<Value = String> {
        let mut tokens = vec![
            "postgresql://",
            "postgres://",
            "http://",
            "@",
            ":",
            "/",
            "?",
            "&",
            "#",
            "%",
            "%2F",
            "%zz",
            "%C3",
            "%00",
            "[",
            "]",
            "[::1]",
            ",",
            "=",
            "'",
            "''",
            "\\",
            " ",
            "\t",
            "\n",
            "5432",
            "99999",
            "-c ",
            "--a-b=1",
            "x=1",
            "=",
            "1s",
            "ms",
            "é",
            "localhost",
            "/tmp",
        ];
        tokens.extend(KEYS);
        text(tokens, 16)
    }

    /// A password: every piece (pieces are split at a space or `&`, as a careless string would
    /// be) carries the marker, so no piece of it can show unnoticed.
    fn password() -> impl Strategy<Value = String> {
        prop::collection::vec(
            (
                chars("abc'\\\"=:@/?#%+é", 6),
                prop::sample::select(vec!["", " ", "&", "  "]),
            ),
            1..4,
        )
        .prop_map(|pieces| {
            pieces
                .into_iter()
                .enumerate()
                .map(|(i, (tail, sep))| {
                    let sep = if i == 0 { "" } else { sep };
                    format!("{sep}PWMARK{tail}")
                })
                .collect()
        })
    }

    /// `password` written into a connection string among junk, in various ways.
    fn with_password() -> impl Strategy<Value = (String, String)> {
        let junk = || {
            text(
                KEYS.iter()
                    .copied()
                    .chain(["=", " ", "'", "&", "x", "1"])
                    .collect(),
                6,
            )
        };
        // Whole pairs before a key=value password: an open quote or a trailing `key=` would
        // (as in libpq) make the password part of another value, and then it is none.
        let pairs = prop::collection::vec(
            (
                prop::sample::select(KEYS.to_vec()),
                prop::collection::vec(
                    prop::sample::select(vec!['a', '1', ':', '/', '-', 'é']),
                    1..4,
                )
                .prop_map(String::from_iter),
            ),
            0..3,
        )
        .prop_map(|pairs| {
            pairs
                .into_iter()
                .map(|(k, v)| format!("{k}={v} "))
                .collect::<String>()
        });
        (password(), junk(), pairs, junk(), 0..6u8).prop_map(|(pw, before, pairs, after, form)| {
            let quoted = pw.replace('\\', "\\\\").replace('\'', "\\'");
            let encoded = utf8_percent_encode(&pw, USERINFO).to_string();
            let s = match form {
                0 => format!("{pairs}password={pw} {after}"),
                1 => format!("{pairs}password='{quoted}' {after}"),
                // Unencoded, as people write them; `/`, `?` and `#` end the authority early,
                // for libpq too, and then the rest of the password is no longer one.
                2 if !pw.contains(['/', '?', '#']) => format!("postgresql://u:{pw}@h/db?{after}"),
                2 | 3 => format!("postgresql://u:{encoded}@h/db?{after}"),
                4 => format!("postgresql://u@h/db?{before}&password={pw}&{after}"),
                _ => format!("postgresql://u@h/db?password={encoded}&{after}"),
            };
            (s, pw)
        })
    }

    fn host() -> impl Strategy<Value = String> {
        prop_oneof![
            (
                chars("abcxyz", 1),
                chars("abz019-", 8),
                prop::collection::vec(chars("ab09", 3), 0..3)
            )
                .prop_map(|(first, rest, labels)| {
                    let mut host = format!("{first}{rest}");
                    if first.is_empty() {
                        host.insert(0, 'h');
                    }
                    for label in labels.into_iter().filter(|l| !l.is_empty()) {
                        host.push('.');
                        host.push_str(&label);
                    }
                    host
                }),
            any::<std::net::Ipv4Addr>().prop_map(|a| a.to_string()),
            any::<std::net::Ipv6Addr>().prop_map(|a| a.to_string()),
            // A Unix socket directory: anything after the slash but a comma or NUL.
            prop::collection::vec(
                any::<char>().prop_filter("socket path", |c| !matches!(c, ',' | '\0')),
                0..12
            )
            .prop_map(|c| format!("/{}", String::from_iter(c))),
        ]
    }

    /// Names of anything but NUL, never empty.
    fn name() -> impl Strategy<Value = String> {
        prop::collection::vec(
            prop_oneof![
                2 => prop::sample::select(vec![
                    ' ', '%', '/', ':', '@', '?', '#', '&', '=', '+', '[', ']', '\\', '\'', '"',
                    '.', 'a', 'Z', '0', 'é',
                ]),
                1 => any::<char>().prop_filter("no NUL", |c| *c != '\0'),
            ],
            1..12,
        )
        .prop_map(String::from_iter)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2048))]

        /// Any connection string (URI or key=value), as the url or as `DATABASE_URL`: a config
        /// or an error, never a panic.
        #[test]
        fn connection_strings_never_panic(s in connection_string()) {
            let _ = DatabaseConfig::builder().url(s.as_str()).build_with(&|_| None);
            let _ = DatabaseConfig::builder()
                .env_from(|name| (name == "DATABASE_URL").then(|| s.clone()))
                .build_with(&|_| None);
        }

        /// Any value in any of the `PG*` variables: a config or an error, never a panic.
        #[test]
        fn environment_never_panics(
            var in prop::sample::select(PG_ENV_VARS.iter().map(|(v, _)| *v).collect::<Vec<_>>()),
            value in connection_string(),
        ) {
            let _ = DatabaseConfig::builder()
                .env_from(|name| (name == var).then(|| value.clone()))
                .build_with(&|_| None);
        }

        /// A config rendered as its URI (`Display`) parses back to the same host, port, user,
        /// database and schema — percent-encoding, IPv6 brackets and socket directories
        /// included. The password is shown as `***`, never as itself.
        #[test]
        fn rendered_uri_parses_back(
            host in host(),
            port in 1..=u16::MAX,
            user in name(),
            database in name(),
            schema in prop::option::of("[a-z_][a-z0-9_]{0,10}"),
            password in prop::option::of(password()),
        ) {
            let mut b = DatabaseConfig::builder().host(host).port(port).user(user).database(database);
            if let Some(s) = &schema {
                b = b.schema(s.as_str());
            }
            if let Some(p) = &password {
                b = b.password(p.as_str());
            }
            let config = b.build_with(&|_| None).expect("valid fields");
            let rendered = config.to_string();
            let back = DatabaseConfig::builder()
                .url(rendered.as_str())
                .build_with(&|_| None);
            let back = match back {
                Ok(back) => back,
                Err(e) => return Err(TestCaseError::fail(format!("{rendered}: {e}"))),
            };
            prop_assert_eq!(back.host(), config.host(), "{}", rendered);
            prop_assert_eq!(back.port(), config.port());
            prop_assert_eq!(back.user(), config.user(), "{}", rendered);
            prop_assert_eq!(back.database(), config.database(), "{}", rendered);
            prop_assert_eq!(back.schema(), config.schema());
            prop_assert_eq!(back.password(), password.as_ref().map(|_| "***"));
            prop_assert!(!rendered.contains("PWMARK"));
            let debug = format!("{:?} {:?}", config, config.to_builder());
            prop_assert!(!debug.contains("PWMARK"), "{}", debug);
        }

        /// A password written into a connection string among junk never shows: not in the
        /// error (`Display` or `Debug`), not in the config or the builder (`Display`, `Debug`).
        #[test]
        fn passwords_never_show((s, pw) in with_password()) {
            let builder = DatabaseConfig::builder().url(s.as_str());
            let env = DatabaseConfig::builder()
                .env_from(|name| (name == "DATABASE_URL").then(|| s.clone()));
            let pg_env = DatabaseConfig::builder().env_from(|name| match name {
                "PGPASSWORD" => Some(pw.clone()),
                // Errors elsewhere: the password must not show in them either.
                "PGPORT" => Some("5x".to_owned()),
                "PGOPTIONS" => Some("-c a.b=1 junk".to_owned()),
                _ => None,
            });
            for b in [builder, env, pg_env] {
                let shown = match b.build_with(&|_| None) {
                    Ok(c) => format!("{c} {c:?} {b:?}"),
                    Err(e) => format!("{e} {e:?} {b:?}"),
                };
                prop_assert!(!shown.contains("PWMARK"), "{:?} shows the password: {}", s, shown);
            }
        }

        /// `options` written the way the drivers write them (`-c name=value`, values escaped
        /// with `escape_option`) parse back to the same settings, whatever the values hold.
        #[test]
        fn options_parse_back(
            settings in prop::collection::vec(
                (
                    "[a-z_][a-z0-9_.]{0,10}",
                    prop::collection::vec(
                        prop_oneof![
                            2 => prop::sample::select(vec![
                                ' ', '\t', '\n', '\u{0b}', '\u{0c}', '\r', '\\', '=', '-', '\u{a0}',
                                '\u{2028}', '\u{85}', '\'',
                            ]),
                            1 => any::<char>().prop_filter("no NUL", |c| *c != '\0'),
                        ],
                        0..12,
                    ).prop_map(String::from_iter),
                ),
                0..4,
            ),
        ) {
            let options = settings
                .iter()
                .map(|(k, v)| format!("-c {}={}", k, crate::connect::escape_option(v)))
                .collect::<Vec<_>>()
                .join(" ");
            prop_assert_eq!(parse_options(&options), Ok(settings));
        }
    }
}
