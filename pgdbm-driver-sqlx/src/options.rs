//! What the pool's connections open with: sqlx's connect options for a [`DatabaseConfig`], and
//! the pool options with the hooks that check idle connections and run the init commands.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use pgdbm::{DatabaseConfig, Result};
use sqlx::ConnectOptions as _;
use sqlx::Connection as _;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use crate::stats::Shared;
use crate::tls;

/// sqlx's connect options for `config`.
///
/// # Errors
///
/// [`Error::Config`] for TLS settings this build cannot honour or certificate files that cannot
/// be read (see [`tls::apply`]).
pub(crate) fn connect_options(config: &DatabaseConfig) -> Result<PgConnectOptions> {
    let mut opts = PgConnectOptions::new_without_pgpass();
    opts = if config.host().starts_with('/') {
        opts.socket(config.host())
    } else {
        opts.host(config.host())
    };
    opts = opts
        .port(config.port())
        .database(config.database())
        .username(config.user())
        .application_name(config.application_name())
        // sqlx learns parameter types from its statement cache: keep at least one entry so that
        // no unnamed statement piles up (0 = "no cache" is treated as 1).
        .statement_cache_capacity(config.statement_cache_capacity().max(1))
        // Tracing spans are made by the pgdbm core, once for every driver.
        .disable_statement_logging();
    // Behind a pooler there are none, and sqlx would send an empty `options` for an empty list
    // (PgBouncer refuses the parameter): only set when there is something to send.
    let options: Vec<(String, String)> = config
        .startup_options()
        .into_iter()
        .map(|(k, v)| (k, pgdbm::driver::escape_option(&v)))
        .collect();
    if !options.is_empty() {
        opts = opts.options(options);
    }
    if config.pooler() != pgdbm::Pooler::None {
        // PgBouncer refuses startup parameters it does not track, and sqlx sends this one by
        // default; pgdbm reads floats in binary, where it changes nothing.
        opts = opts.extra_float_digits(None);
    }
    if let Some(password) = config.password() {
        opts = opts.password(password);
    }
    tls::apply(opts, config, &|name| std::env::var(name).ok())
}

/// The `before_acquire` hook's answer for a connection used recently: keep it. Zero-sized, so
/// boxing it does not allocate.
struct StillValid;

impl std::future::Future for StillValid {
    type Output = std::result::Result<bool, sqlx::Error>;

    fn poll(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        std::task::Poll::Ready(Ok(true))
    }
}

/// sqlx's pool options for `config`: its sizes and timeouts, a ping before handing out a
/// connection idle for [`pgdbm::driver::VALIDATE_AFTER_IDLE`], and `commands` run on each new
/// connection (a failure recorded in `shared` as the last connect error).
pub(crate) fn pool_options(
    config: &DatabaseConfig,
    shared: &Arc<Shared>,
    commands: &Arc<[String]>,
) -> PgPoolOptions {
    let (shared, commands) = (Arc::clone(shared), Arc::clone(commands));
    PgPoolOptions::new()
        .max_connections(config.max_connections())
        .min_connections(config.min_connections())
        .acquire_timeout(config.acquire_timeout())
        .idle_timeout(config.idle_timeout())
        .max_lifetime(config.max_lifetime())
        // No ping at every acquire (sqlx's default): only a connection idle for a while may
        // have been closed by the server unnoticed (sqlx reads the socket only when it
        // runs a statement), so only such a one is pinged, and replaced if it is gone.
        .test_before_acquire(false)
        .before_acquire(|conn, meta| {
            if meta.idle_for < pgdbm::driver::VALIDATE_AFTER_IDLE {
                // The common case, at every acquire under load: a zero-sized future, so
                // sqlx's box for the hook's answer allocates nothing.
                return Box::pin(StillValid);
            }
            Box::pin(async move {
                match conn.ping().await {
                    Ok(()) => Ok(true),
                    Err(e) => {
                        tracing::debug!(error = %e, "pgdbm: an idle pooled connection is gone, replacing it");
                        Ok(false)
                    }
                }
            })
        })
        .after_connect(move |conn, _meta| {
            let shared = Arc::clone(&shared);
            let commands = Arc::clone(&commands);
            Box::pin(async move {
                let mut result = Ok(());
                for sql in commands.iter() {
                    if let Err(e) =
                        sqlx::Executor::execute(&mut *conn, sqlx::raw_sql(sql)).await
                    {
                        result = Err(crate::error::map(e, sql));
                        break;
                    }
                }
                match result {
                    Ok(()) => {
                        shared.created.fetch_add(1, Ordering::Relaxed);
                        shared.state.connect_succeeded();
                        Ok(())
                    }
                    Err(e) => {
                        shared.state.connect_failed(&e);
                        Err(sqlx::Error::Configuration(Box::new(e)))
                    }
                }
            })
        })
}

/// How often the server checks, while it runs a statement, that the client is still there
/// (`client_connection_check_interval`, PostgreSQL 14 and later). A connection whose statement
/// was abandoned is closed (see `Busy` in `conn.rs`); this is how quickly the server then stops
/// the statement.
pub const CLIENT_CHECK_INTERVAL: Duration = Duration::from_millis(100);

/// `opts` with [`CLIENT_CHECK_INTERVAL`] among the startup settings, when the server knows the
/// setting (version 14 or later) and the configuration does not set it already.
pub(crate) fn with_client_check(
    opts: PgConnectOptions,
    config: &DatabaseConfig,
    server_version: Option<u32>,
) -> PgConnectOptions {
    const NAME: &str = "client_connection_check_interval";
    let known = server_version.is_some_and(|v| v >= 140_000);
    // Behind a pooler no startup `options` may be sent at all.
    let pooled = config.pooler() != pgdbm::Pooler::None;
    if !known || pooled || config.startup_settings().iter().any(|(k, _)| k == NAME) {
        return opts;
    }
    opts.options([(NAME, CLIENT_CHECK_INTERVAL.as_millis().to_string())])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(not(feature = "tls"))]
    #[test]
    fn tls_modes_without_a_backend_are_a_config_error() {
        use pgdbm::Error;
        let config = DatabaseConfig::builder()
            .url("postgresql://u:pw@db.example:5433/app?sslmode=require")
            .build()
            .expect("valid config");
        let err = connect_options(&config).expect_err("require needs TLS");
        assert!(
            matches!(&err, Error::Config { field, .. } if field == "ssl_mode"),
            "{err}"
        );
        assert!(!err.to_string().contains("pw"), "{err}");
    }

    #[cfg(feature = "tls")]
    #[test]
    fn tls_modes_with_the_backend() {
        let config = DatabaseConfig::builder()
            .url("postgresql://u:pw@db.example:5433/app?sslmode=require")
            .build()
            .expect("valid config");
        let opts = connect_options(&config).expect("require is supported");
        assert!(matches!(
            opts.get_ssl_mode(),
            sqlx::postgres::PgSslMode::Require
        ));
    }

    #[test]
    fn options_carry_the_config() {
        let config = DatabaseConfig::builder()
            .url("postgresql://u@db.example:5433/app?sslmode=disable")
            .server_setting("search_path", "a, b")
            .application_name("svc")
            .build()
            .expect("valid config");
        let opts = connect_options(&config).expect("options");
        assert_eq!(opts.get_host(), "db.example");
        assert_eq!(opts.get_port(), 5433);
        assert_eq!(opts.get_database(), Some("app"));
        assert_eq!(opts.get_username(), "u");
        assert_eq!(opts.get_application_name(), Some("svc"));
        let options = opts.get_options().unwrap_or_default();
        assert!(options.contains("-c statement_timeout=60000"), "{options}");
        assert!(options.contains("-c search_path=a,\\ b"), "{options}");
        let socket = DatabaseConfig::builder()
            .host("/var/run/postgresql")
            .build()
            .expect("valid config");
        let opts = connect_options(&socket).expect("options");
        assert_eq!(
            opts.get_socket()
                .map(|p| p.display().to_string())
                .as_deref(),
            Some("/var/run/postgresql")
        );
    }
}
