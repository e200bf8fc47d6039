//! [`DatabaseConfigBuilder`]: infallible setters, then parsing and validation in `build`.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use super::layer::{
    EnvSnapshot, Layer, PASSWORD_FALLBACK_VAR, PG_ENV_VARS, PGDBM_ENV_VARS, Secret, upsert_setting,
};
use super::parse::{Origin, parse_connection_string};
use super::{DEFAULT_USER, DatabaseConfig, Pooler, RetryPolicy, SslMode};
use crate::error::Result;

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
    pub(super) url: Option<Secret>,
    pub(super) env: Option<EnvSnapshot>,
    pub(super) explicit: Layer,
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

    /// The pooler in front of the server (default [`Pooler::None`]); see [`Pooler`] for what each
    /// mode changes.
    pub fn pooler(mut self, pooler: Pooler) -> Self {
        self.explicit.pooler = Some(pooler);
        self
    }

    /// A connection string for a direct connection to the server, used behind a transaction
    /// pooler for what needs a session (see [`DatabaseConfig::direct_config`]). Settings it does
    /// not give are inherited from this configuration.
    pub fn direct_url(mut self, url: impl Into<String>) -> Self {
        self.explicit.direct_url = Some(Some(Secret(url.into())));
        self
    }

    /// No direct connection, whatever the connection string or the environment say.
    pub fn without_direct_url(mut self) -> Self {
        self.explicit.direct_url = Some(None);
        self
    }

    /// A connection string, parsed by [`build`](Self::build): a `postgresql://` or
    /// `postgres://` URI, or libpq `key=value` pairs (values may be single-quoted, with `\'`,
    /// `''` and `\\` escapes).
    ///
    /// Keys (as URI query parameters or pairs): `host`, `port`, `dbname`, `user`, `password`,
    /// `sslmode`, `sslrootcert`, `sslcert`, `sslkey`, `sslpassword`, `application_name`, `connect_timeout`,
    /// `options` (`-c name=value` server settings), and pgdbm's `schema`, `statement_timeout`,
    /// `idle_in_transaction_session_timeout`, `lock_timeout`, `min_connections`,
    /// `max_connections`, `acquire_timeout`, `max_queries`, `command_timeout`, `multiplexing`, `multiplexed_connections`, `pooler`, `direct_url`. Any other key is an error. In a URI, user, password
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
    /// ignored), and `DB_PASSWORD` (pgdbm for Python's variable) as the password when
    /// `PGPASSWORD` is not set. When `DATABASE_URL` is used, the `PG*` variables and
    /// `DB_PASSWORD` are not read at all. Passwords never appear in `Debug`, `Display` or errors.
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
        let read = |vars: &[(&'static str, &str)]| -> Vec<(&'static str, Secret)> {
            vars.iter()
                .filter_map(|&(var, _)| get(var).map(|v| (var, Secret(v))))
                .collect()
        };
        let pgdbm_vars = read(PGDBM_ENV_VARS);
        self.env = Some(match get("DATABASE_URL") {
            Some(url) => EnvSnapshot::Url(Secret(url), pgdbm_vars),
            None => {
                let mut vars = read(PG_ENV_VARS);
                if !vars.iter().any(|&(var, _)| var == "PGPASSWORD") {
                    vars.extend(read(&[PASSWORD_FALLBACK_VAR]));
                }
                EnvSnapshot::Vars(vars.into_iter().chain(pgdbm_vars).collect())
            }
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
    /// The password of an encrypted client key ([`ssl_key_file`](Self::ssl_key_file) holding a
    /// PKCS#8 `-----BEGIN ENCRYPTED PRIVATE KEY-----`, as written by `openssl pkcs8 -topk8` or
    /// `openssl genpkey -aes256`); pgdbm for Python's `ssl_key_password`, libpq's `sslpassword`
    /// (the connection-string key). The key is decrypted once when the pool opens (drivers'
    /// feature `tls`); a wrong password is [`Error::Config`](crate::Error::Config) naming
    /// `ssl_key_password`. Ignored for an unencrypted key. Never logged or shown in errors.
    pub fn ssl_key_password(mut self, password: impl Into<String>) -> Self {
        self.explicit.ssl_key_password = Some(Some(Secret(password.into())));
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
    ///
    /// [`Error::Config`]: crate::Error::Config
    /// [`Error::Identifier`]: crate::Error::Identifier
    pub fn build(&self) -> Result<DatabaseConfig> {
        self.build_with(&|name| std::env::var(name).ok())
    }

    /// `build`, reading the default user name (`USER`, `LOGNAME`) through `os_env`.
    pub(super) fn build_with(
        &self,
        os_env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<DatabaseConfig> {
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
        config.direct = config.resolve_direct_url()?.map(Box::new);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::test_support::{build, env, os, url};

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
    fn ssl_key_password_is_kept_and_never_shown() {
        let c =
            url("postgresql://h/db?sslkey=/k.pem&sslcert=/c.pem&sslpassword=k3y-s3cret").unwrap();
        assert_eq!(c.ssl_key_password(), Some("k3y-s3cret"));
        assert!(!format!("{c:?}").contains("k3y-s3cret"));
        assert!(!c.to_string().contains("k3y-s3cret"));
        let b = DatabaseConfig::builder().ssl_key_password("k3y-s3cret");
        assert!(!format!("{b:?}").contains("k3y-s3cret"));
        let c = build(b).unwrap();
        assert_eq!(
            build(c.to_builder()).unwrap().ssl_key_password(),
            Some("k3y-s3cret")
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
                ("search_path".to_owned(), "\"users\", public".to_owned()),
            ]
        );
    }
}
