//! [`Settings`]: what the binary reads from its environment.

use std::net::IpAddr;
use std::time::Duration;

use pgdbm::DatabaseConfig;

use crate::{DashboardToken, todo};

/// The service's settings.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Address to listen on (`HOST`, default `127.0.0.1`).
    pub host: IpAddr,
    /// Port to listen on (`PORT`, default 3000; 0 picks a free one, logged at start).
    pub port: u16,
    /// The database, scoped to schema [`todo::SCHEMA`].
    pub database: DatabaseConfig,
    /// Statements at least this slow are logged (`SLOW_QUERY_MS`, default 200).
    pub slow_query_threshold: Duration,
    /// The operators' token for the dashboard at `/_pgdbm` (`DASHBOARD_TOKEN`); without one
    /// the dashboard is not served.
    pub dashboard_token: Option<DashboardToken>,
}

/// How long a request waits for a connection before it answers 503 (pgdbm's default, 30 s,
/// would hold requests that long while the database is down).
pub const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

impl Settings {
    /// Reads `HOST`, `PORT`, `SLOW_QUERY_MS`, `DASHBOARD_TOKEN` and the database from `DATABASE_URL`, else the
    /// libpq variables (`PGHOST`, `PGUSER`, …) and their defaults (`localhost:5432`, the OS
    /// user), with database `postgres` when neither `DATABASE_URL` nor `PGDATABASE` names one,
    /// and an acquire timeout of [`ACQUIRE_TIMEOUT`].
    ///
    /// # Errors
    ///
    /// A message naming the variable whose value cannot be read (never a password).
    pub fn from_env() -> Result<Self, String> {
        let host = parse_var("HOST", "127.0.0.1")?;
        let port = parse_var("PORT", "3000")?;
        let slow_ms: u64 = parse_var("SLOW_QUERY_MS", "200")?;
        let mut builder = DatabaseConfig::builder().env();
        if std::env::var_os("DATABASE_URL").is_none() && std::env::var_os("PGDATABASE").is_none() {
            builder = builder.database("postgres");
        }
        let database = builder
            .schema(todo::SCHEMA)
            .application_name("todo-app")
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .build()
            .map_err(|e| format!("database settings: {e}"))?;
        Ok(Settings {
            host,
            port,
            database,
            slow_query_threshold: Duration::from_millis(slow_ms),
            dashboard_token: std::env::var("DASHBOARD_TOKEN")
                .ok()
                .and_then(DashboardToken::new),
        })
    }
}

fn parse_var<T: std::str::FromStr>(name: &str, default: &str) -> Result<T, String> {
    let value = std::env::var(name).unwrap_or_else(|_| default.to_owned());
    value
        .trim()
        .parse()
        .map_err(|_| format!("{name} is not valid: expected {}", expected(name)))
}

fn expected(name: &str) -> &'static str {
    match name {
        "HOST" => "an IP address",
        "PORT" => "a port number (0-65535)",
        _ => "a whole number",
    }
}
