//! The builder's layers: what one source (the environment, the connection string, the explicit
//! setters) sets, and how a layer overrides a config.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use super::parse::{Origin, apply_param, parse_connection_string};
use super::{DatabaseConfig, Pooler, RetryPolicy, SslMode};
use crate::error::Result;

/// Environment variables read by [`DatabaseConfigBuilder::env`] when `DATABASE_URL` is not set,
/// with the connection-string key each stands for.
pub(super) const PG_ENV_VARS: &[(&str, &str)] = &[
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

/// The password variable read when `PGPASSWORD` is not set (pgdbm for Python's name), with the
/// key it stands for. Like the `PG*` variables, it is not read when `DATABASE_URL` is used.
pub(super) const PASSWORD_FALLBACK_VAR: (&str, &str) = ("DB_PASSWORD", "password");

/// pgdbm's own environment variables, read with either of the above, with the connection-string
/// key each stands for.
pub(super) const PGDBM_ENV_VARS: &[(&str, &str)] = &[
    ("PGDBM_POOLER", "pooler"),
    ("PGDBM_DIRECT_URL", "direct_url"),
    ("PGDBM_MULTIPLEXING", "multiplexing"),
    ("PGDBM_MULTIPLEXED_CONNECTIONS", "multiplexed_connections"),
];

/// A string that may hold a password: its `Debug` never shows it.
#[derive(Clone)]
pub(super) struct Secret(pub(super) String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"***\"")
    }
}

/// The environment as read by [`DatabaseConfigBuilder::env_from`].
#[derive(Clone)]
pub(super) enum EnvSnapshot {
    /// `DATABASE_URL`, and the non-empty `PGDBM_*` variables.
    Url(Secret, Vec<(&'static str, Secret)>),
    /// The non-empty `PG*` and `PGDBM_*` variables.
    Vars(Vec<(&'static str, Secret)>),
}

impl EnvSnapshot {
    pub(super) fn to_layer(&self) -> Result<Layer> {
        match self {
            EnvSnapshot::Url(url, vars) => {
                let mut layer = parse_connection_string(&url.0, Origin::DatabaseUrl)?;
                apply_vars(&mut layer, vars)?;
                Ok(layer)
            }
            EnvSnapshot::Vars(vars) => {
                let mut layer = Layer::default();
                apply_vars(&mut layer, vars)?;
                Ok(layer)
            }
        }
    }
}

/// Applies environment variables, each as the connection-string key it stands for.
fn apply_vars(layer: &mut Layer, vars: &[(&'static str, Secret)]) -> Result<()> {
    for (var, value) in vars {
        let key = PG_ENV_VARS
            .iter()
            .chain(PGDBM_ENV_VARS)
            .chain(std::iter::once(&PASSWORD_FALLBACK_VAR))
            .find(|(v, _)| v == var)
            .map_or("", |&(_, key)| key);
        apply_param(layer, key, &value.0, var, Origin::Env)?;
    }
    Ok(())
}

/// Values set by one source; `None` = not set by it. `Option<Option<_>>` fields can also be
/// set to "none".
#[derive(Debug, Clone, Default)]
pub(super) struct Layer {
    pub(super) host: Option<String>,
    pub(super) port: Option<u16>,
    pub(super) database: Option<String>,
    pub(super) user: Option<String>,
    pub(super) password: Option<Option<Secret>>,
    pub(super) schema: Option<Option<String>>,
    pub(super) min_connections: Option<u32>,
    pub(super) max_connections: Option<u32>,
    pub(super) acquire_timeout: Option<Duration>,
    pub(super) max_queries: Option<Option<u64>>,
    pub(super) command_timeout: Option<Option<Duration>>,
    pub(super) multiplexing: Option<bool>,
    pub(super) multiplexed_connections: Option<u32>,
    pub(super) idle_timeout: Option<Option<Duration>>,
    pub(super) max_lifetime: Option<Option<Duration>>,
    pub(super) connect_timeout: Option<Duration>,
    pub(super) statement_timeout: Option<Option<Duration>>,
    pub(super) idle_in_transaction_session_timeout: Option<Option<Duration>>,
    pub(super) lock_timeout: Option<Option<Duration>>,
    pub(super) application_name: Option<String>,
    pub(super) server_settings: Vec<(String, String)>,
    pub(super) search_path_to_schema: Option<bool>,
    pub(super) pinned_search_path: Option<Option<String>>,
    pub(super) init_commands: Vec<String>,
    pub(super) retry: Option<RetryPolicy>,
    pub(super) ssl_mode: Option<SslMode>,
    pub(super) ssl_ca_file: Option<Option<PathBuf>>,
    pub(super) ssl_cert_file: Option<Option<PathBuf>>,
    pub(super) ssl_key_file: Option<Option<PathBuf>>,
    pub(super) ssl_key_password: Option<Option<Secret>>,
    pub(super) statement_cache_capacity: Option<usize>,
    pub(super) pooler: Option<Pooler>,
    pub(super) direct_url: Option<Option<Secret>>,
}

impl Layer {
    /// Overrides `config` with what this layer sets. The database is collected apart, since its
    /// default (the user name) is only known at the end.
    pub(super) fn apply_to(&self, config: &mut DatabaseConfig, database: &mut Option<String>) {
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
        set(&mut config.max_queries, &self.max_queries);
        set(&mut config.command_timeout, &self.command_timeout);
        set(&mut config.multiplexing, &self.multiplexing);
        set(
            &mut config.multiplexed_connections,
            &self.multiplexed_connections,
        );
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
        set(
            &mut config.search_path_to_schema,
            &self.search_path_to_schema,
        );
        set(&mut config.pinned_search_path, &self.pinned_search_path);
        config
            .init_commands
            .extend(self.init_commands.iter().cloned());
        set(&mut config.retry, &self.retry);
        set(&mut config.ssl.mode, &self.ssl_mode);
        set(&mut config.ssl.ca_file, &self.ssl_ca_file);
        set(&mut config.ssl.cert_file, &self.ssl_cert_file);
        set(&mut config.ssl.key_file, &self.ssl_key_file);
        if let Some(password) = &self.ssl_key_password {
            config.ssl_key_password = password.as_ref().map(|p| p.0.clone());
        }
        set(
            &mut config.statement_cache_capacity,
            &self.statement_cache_capacity,
        );
        set(&mut config.pooler, &self.pooler);
        if let Some(direct_url) = &self.direct_url {
            config.direct_url = direct_url.as_ref().map(|url| url.0.clone());
        }
    }
}

/// Adds a setting or replaces the value of the one with the same (case-insensitive) name.
pub(super) fn upsert_setting(settings: &mut Vec<(String, String)>, name: String, value: String) {
    match settings
        .iter_mut()
        .find(|(n, _)| n.eq_ignore_ascii_case(&name))
    {
        Some(existing) => *existing = (name, value),
        None => settings.push((name, value)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::test_support::{build, env, field, message};

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
    fn env_db_password_is_the_fallback_after_pgpassword() {
        let c =
            build(DatabaseConfig::builder().env_from(env(&[("DB_PASSWORD", "fallback")]))).unwrap();
        assert_eq!(c.password(), Some("fallback"));

        let vars = env(&[("PGPASSWORD", "pg_pw"), ("DB_PASSWORD", "fallback")]);
        let c = build(DatabaseConfig::builder().env_from(vars)).unwrap();
        assert_eq!(c.password(), Some("pg_pw"));

        // An empty PGPASSWORD counts as unset.
        let vars = env(&[("PGPASSWORD", ""), ("DB_PASSWORD", "fallback")]);
        let c = build(DatabaseConfig::builder().env_from(vars)).unwrap();
        assert_eq!(c.password(), Some("fallback"));

        // Like the PG* variables, it is not read when DATABASE_URL is used.
        let vars = env(&[
            ("DATABASE_URL", "postgresql://u@h/db"),
            ("DB_PASSWORD", "fallback"),
        ]);
        let c = build(DatabaseConfig::builder().env_from(vars)).unwrap();
        assert_eq!(c.password(), None);

        // Never shown by the builder or the config.
        let builder = DatabaseConfig::builder().env_from(env(&[("DB_PASSWORD", "s3cr3t-value")]));
        assert!(!format!("{builder:?}").contains("s3cr3t-value"));
        let c = build(builder).unwrap();
        assert!(!format!("{c:?}").contains("s3cr3t-value"));
        assert!(!c.to_string().contains("s3cr3t-value"));
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
}
