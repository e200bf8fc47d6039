//! What a pool's connections are opened with, derived once from the [`DatabaseConfig`]: the
//! tokio-postgres settings, the TLS connector, the plain fallback of `prefer`, and bb8's reaper
//! rate.

use std::time::Duration;

use pgdbm::driver::escape_option;
use pgdbm::{DatabaseConfig, Result};

use crate::host::is_unix_socket;
#[cfg(not(feature = "tls"))]
use pgdbm::Error;

#[cfg(feature = "tls")]
pub(crate) use crate::tls::MakeRustls as Tls;
#[cfg(not(feature = "tls"))]
pub(crate) use tokio_postgres::NoTls as Tls;

pub(crate) fn pg_config(config: &DatabaseConfig) -> Result<tokio_postgres::Config> {
    let mut pg = tokio_postgres::Config::new();
    if is_unix_socket(config.host()) {
        pg.host_path(config.host());
    } else {
        pg.host(config.host());
    }
    pg.port(config.port())
        .dbname(config.database())
        .user(config.user())
        .application_name(config.application_name())
        .connect_timeout(config.connect_timeout());
    if let Some(password) = config.password() {
        pg.password(password);
    }
    pg.ssl_mode(ssl_mode(config)?);
    // Behind a pooler there are none: PgBouncer refuses the parameter `options` (the settings
    // then go by `SET` at connect or `SET LOCAL` per transaction, see `DatabaseConfig`).
    let options: Vec<String> = config
        .startup_options()
        .into_iter()
        .map(|(k, v)| format!("-c {}={}", k, escape_option(&v)))
        .collect();
    if !options.is_empty() {
        pg.options(options.join(" "));
    }
    Ok(pg)
}

/// tokio-postgres' TLS mode for the configuration (see `tls.rs` for the certificate checks).
#[cfg(feature = "tls")]
fn ssl_mode(config: &DatabaseConfig) -> Result<tokio_postgres::config::SslMode> {
    Ok(crate::tls::ssl_mode(config.ssl().mode, config.host()))
}

/// Without the `tls` feature: `prefer` falls back to plain connections, what needs TLS is refused.
#[cfg(not(feature = "tls"))]
fn ssl_mode(config: &DatabaseConfig) -> Result<tokio_postgres::config::SslMode> {
    use pgdbm::SslMode;
    use tokio_postgres::config::SslMode as PgSslMode;
    Ok(match config.ssl().mode {
        _ if is_unix_socket(config.host()) => PgSslMode::Disable,
        SslMode::Disable => PgSslMode::Disable,
        SslMode::Allow | SslMode::Prefer => PgSslMode::Prefer,
        mode => {
            return Err(Error::config(
                "ssl_mode",
                format!(
                    "ssl_mode {mode} needs TLS, which this build of pgdbm-driver-tokio-postgres \
                     lacks (enable its `tls` feature)"
                ),
            ));
        }
    })
}

/// The TLS connector of a pool, built once.
#[cfg(feature = "tls")]
pub(crate) fn tls(config: &DatabaseConfig) -> Result<Tls> {
    Tls::with_key_password(config.ssl(), config.host(), config.ssl_key_password())
}

#[cfg(not(feature = "tls"))]
pub(crate) fn tls(_config: &DatabaseConfig) -> Result<Tls> {
    Ok(Tls)
}

/// `pg` without TLS, when a failed handshake is to be followed by a plain attempt (`prefer`).
pub(crate) fn plain_fallback(pg: &tokio_postgres::Config) -> Option<tokio_postgres::Config> {
    use tokio_postgres::config::SslMode as PgSslMode;
    (cfg!(feature = "tls") && pg.get_ssl_mode() == PgSslMode::Prefer).then(|| {
        let mut plain = pg.clone();
        plain.ssl_mode(PgSslMode::Disable);
        plain
    })
}

/// `true` when the TLS handshake failed after the server agreed to TLS.
pub(crate) fn handshake_failed(err: &tokio_postgres::Error) -> bool {
    #[cfg(feature = "tls")]
    return crate::tls::handshake_failed(err);
    #[cfg(not(feature = "tls"))]
    {
        let _ = err;
        false
    }
}

/// How often bb8 closes idle connections past `idle_timeout` or `max_lifetime`: bb8's default
/// (30 s) would keep a connection up to 30 s past a shorter limit, so half the shorter limit,
/// between 10 ms and 30 s.
pub(crate) fn reaper_rate(config: &DatabaseConfig) -> Duration {
    [config.idle_timeout(), config.max_lifetime()]
        .into_iter()
        .flatten()
        .map(|limit| limit / 2)
        .min()
        .unwrap_or(Duration::from_secs(30))
        .clamp(Duration::from_millis(10), Duration::from_secs(30))
}
