//! Connection and pool configuration. (Stub: being written; the getter API is fixed.)

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::Result;

/// libpq's `sslmode`.
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
    /// TLS required, server certificate verified against the CA.
    VerifyCa,
    /// As `VerifyCa`, and the host name must match the certificate.
    VerifyFull,
}

/// TLS settings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SslConfig {
    /// The mode.
    pub mode: SslMode,
    /// Root certificate(s) to verify the server with (`sslrootcert`).
    pub ca_file: Option<PathBuf>,
    /// Client certificate (`sslcert`).
    pub cert_file: Option<PathBuf>,
    /// Client key (`sslkey`).
    pub key_file: Option<PathBuf>,
}

/// Connect retry with exponential backoff.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct RetryPolicy {
    /// Total attempts (1 = no retry).
    pub attempts: u32,
    /// Delay before the second attempt.
    pub initial_delay: Duration,
    /// Multiplier applied to the delay after each attempt.
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
    /// The delay after failed attempt number `attempt` (1-based).
    pub fn delay_after(&self, attempt: u32) -> Duration {
        let factor = self.backoff.powi(attempt.saturating_sub(1).min(64) as i32);
        self.initial_delay
            .mul_f64(factor.min(1e6))
            .min(self.max_delay)
    }
}

/// How to reach the server and how to pool connections.
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

impl std::fmt::Debug for DatabaseConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DatabaseConfig")
            .field("host", &self.host)
            .finish_non_exhaustive()
    }
}

impl DatabaseConfig {
    /// Parses a URL (stub).
    ///
    /// # Errors
    ///
    /// Never in the stub.
    pub fn from_url(url: &str) -> Result<Self> {
        let _ = url;
        Ok(DatabaseConfig {
            host: "localhost".into(),
            port: 5432,
            database: "postgres".into(),
            user: "postgres".into(),
            password: None,
            schema: None,
            min_connections: 1,
            max_connections: 10,
            acquire_timeout: Duration::from_secs(30),
            idle_timeout: Some(Duration::from_secs(600)),
            max_lifetime: Some(Duration::from_secs(1800)),
            connect_timeout: Duration::from_secs(10),
            statement_timeout: Some(Duration::from_secs(60)),
            idle_in_transaction_session_timeout: Some(Duration::from_secs(60)),
            lock_timeout: Some(Duration::from_secs(5)),
            application_name: "pgdbm".into(),
            server_settings: vec![],
            init_commands: vec![],
            retry: RetryPolicy::default(),
            ssl: SslConfig::default(),
            statement_cache_capacity: 256,
        })
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
    /// Idle connections are closed after this long.
    pub fn idle_timeout(&self) -> Option<Duration> {
        self.idle_timeout
    }
    /// Connections are closed after this long.
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
    /// Extra server settings sent at connect.
    pub fn server_settings(&self) -> &[(String, String)] {
        &self.server_settings
    }
    /// SQL run on every new connection.
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
    /// Unused in the stub.
    pub fn ca_path(&self) -> Option<&Path> {
        self.ssl.ca_file.as_deref()
    }
}
