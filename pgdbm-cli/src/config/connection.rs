//! Which connection a command uses, and where it came from.
//!
//! In order: `--database-url`; the environment of the config file when one was selected
//! (`--env`/`PGDBM_ENV`, or `--config`/`PGDBM_CONFIG`); an exported `DATABASE_URL`; the config
//! file's default environment; the libpq variables and defaults. The default user is the OS
//! user the process runs as (by uid, as libpq does), whatever `$USER` says.

use std::fmt;

use pgdbm::{DatabaseConfig, DatabaseConfigBuilder, SslMode};

use super::file::{Environment, Port};
use super::{expand, expand_opt};
use crate::error::{CliError, CliResult};

/// Where the target came from, as commands state it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TargetSource {
    /// `--database-url`.
    Flag,
    /// The `DATABASE_URL` variable.
    DatabaseUrl,
    /// `[environments.<name>]` of the config file.
    Environment {
        /// The file as given.
        file: String,
        /// The environment.
        name: String,
    },
    /// The `PG*` variables and libpq's defaults.
    Libpq,
}

impl fmt::Display for TargetSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TargetSource::Flag => f.write_str("--database-url"),
            TargetSource::DatabaseUrl => f.write_str("DATABASE_URL"),
            TargetSource::Environment { file, name } => write!(f, "{file} [environments.{name}]"),
            TargetSource::Libpq => f.write_str("the PG* variables and libpq defaults"),
        }
    }
}

/// The OS user the process runs as (effective uid → name), libpq's default user.
pub(crate) fn os_user() -> Option<String> {
    whoami::username().ok().filter(|u| !u.is_empty())
}

/// `true` when connection string `s` (URI or `key=value`) names a user.
fn names_user(s: &str) -> bool {
    let s = s.trim();
    if let Some(rest) = s
        .strip_prefix("postgresql://")
        .or_else(|| s.strip_prefix("postgres://"))
    {
        let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let authority = &rest[..authority_end];
        if let Some((userinfo, _)) = authority.rsplit_once('@') {
            if !userinfo.split(':').next().unwrap_or("").is_empty() {
                return true;
            }
        }
        let query = rest[authority_end..].split_once('?').map_or("", |(_, q)| q);
        return query.split('&').any(|p| {
            p.split_once('=')
                .is_some_and(|(k, v)| k == "user" && !v.is_empty())
        });
    }
    s.split_whitespace().any(|pair| {
        pair.split_once('=')
            .is_some_and(|(k, v)| k.trim() == "user" && !v.trim().is_empty())
    })
}

/// Connection string `url` (URI or `key=value`) with parameter `key=value` added.
fn with_param(url: &str, key: &str, value: &str) -> String {
    if !(url.starts_with("postgresql://") || url.starts_with("postgres://")) {
        let quoted = value.replace('\\', "\\\\").replace('\'', "\\'");
        return format!("{url} {key}='{quoted}'");
    }
    let encoded: String = value
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}{key}={encoded}")
}

/// What the command line and the shell say about the target.
#[derive(Debug)]
pub(super) struct Inputs<'a> {
    pub(super) flag_url: Option<&'a str>,
    pub(super) env_url: Option<&'a str>,
    pub(super) environment: Option<(&'a Environment, &'a str)>,
    pub(super) file_label: &'a str,
    /// The file's text, for the line and column of a conflicting key.
    pub(super) text: &'a str,
    pub(super) environment_selected: bool,
}

/// The connection and its source; `Err` with the message when the settings are invalid (only
/// commands that connect report it).
pub(super) type Built = (Result<DatabaseConfig, String>, TargetSource);

/// Builds the connection from `inputs` (see the module docs for the order).
pub(super) fn build(inputs: &Inputs<'_>) -> CliResult<Built> {
    let (mut builder, source, user_given) = if let Some(url) = inputs.flag_url {
        (
            DatabaseConfig::builder().url(url),
            TargetSource::Flag,
            names_user(url),
        )
    } else if let (true, Some((env, name))) = (inputs.environment_selected, inputs.environment) {
        environment(env, name, inputs.file_label, inputs.text)?
    } else if let Some(url) = inputs.env_url {
        (
            DatabaseConfig::builder().url(url),
            TargetSource::DatabaseUrl,
            names_user(url),
        )
    } else if let Some((env, name)) = inputs.environment {
        environment(env, name, inputs.file_label, inputs.text)?
    } else {
        let pg_user = std::env::var("PGUSER").is_ok_and(|u| !u.is_empty());
        (
            DatabaseConfig::builder().env(),
            TargetSource::Libpq,
            pg_user,
        )
    };
    if !user_given {
        if let Some(user) = os_user() {
            builder = builder.user(user);
        }
    }
    if matches!(source, TargetSource::Flag | TargetSource::DatabaseUrl) {
        // As libpq: PGPASSWORD when the URL has none.
        if let Ok(pw) = std::env::var("PGPASSWORD") {
            if builder.build().is_ok_and(|c| c.password().is_none()) {
                builder = builder.password(pw);
            }
        }
    }
    // The command needs few connections: one for the migration lock, one for reads.
    builder = builder.min_connections(0).max_connections(4);
    Ok((builder.build().map_err(|e| e.to_string()), source))
}

/// The settings of `[environments.<name>]`; conflicting keys are errors.
fn environment(
    e: &Environment,
    name: &str,
    file: &str,
    text: &str,
) -> CliResult<(DatabaseConfigBuilder, TargetSource, bool)> {
    let table = format!("environments.{name}");
    let key = |field: &str| format!("{table}.{field}");
    let conflict = |a: &str, b: &str, why: &str| {
        let place = super::at(file, text, &table, b);
        CliError::new(format!("{place}[{table}] sets both `{a}` and `{b}`; {why}"))
    };
    if e.url.is_some() && e.connection_string.is_some() {
        return Err(conflict(
            "url",
            "connection_string",
            "they are the same setting (connection_string is pgdbm for Python's other name for url): keep one",
        ));
    }
    let url_key = if e.url.is_some() {
        "url"
    } else {
        "connection_string"
    };
    let url = match &e.url {
        Some(_) => expand_opt(&e.url, &key("url"))?,
        None => expand_opt(&e.connection_string, &key("connection_string"))?,
    };
    if url.is_some() {
        for (field, set) in [
            ("host", e.host.is_some()),
            ("port", e.port.is_some()),
            ("database", e.database.is_some()),
            ("user", e.user.is_some()),
        ] {
            if set {
                return Err(conflict(
                    url_key,
                    field,
                    "give either a URL or host/port/database/user, not both",
                ));
            }
        }
    }
    if e.ssl_enabled == Some(true) && e.ssl_mode.as_deref().is_some_and(|m| m == "disable") {
        return Err(conflict(
            "ssl_enabled",
            "ssl_mode",
            "ssl_enabled = true asks for TLS and ssl_mode = \"disable\" turns it off",
        ));
    }
    // An environment without a server of its own takes the libpq variables (PGHOST…).
    let bare = url.is_none() && e.host.is_none() && e.database.is_none();
    let mut builder = if bare {
        DatabaseConfig::builder().env()
    } else {
        DatabaseConfig::builder()
    };
    let mut user_given =
        e.user.is_some() || (bare && std::env::var("PGUSER").is_ok_and(|u| !u.is_empty()));
    let mut url_text = url.clone();
    if let Some(v) = expand_opt(&e.pooler, &key("pooler"))? {
        url_text = Some(with_param(
            url_text.as_deref().unwrap_or("postgresql://"),
            "pooler",
            &v,
        ));
    }
    if let Some(v) = expand_opt(&e.direct_url, &key("direct_url"))? {
        url_text = Some(with_param(
            url_text.as_deref().unwrap_or("postgresql://"),
            "direct_url",
            &v,
        ));
    }
    if let Some(u) = &url {
        user_given |= names_user(u);
    }
    if let Some(u) = url_text {
        builder = builder.url(u);
    }
    if let Some(v) = expand_opt(&e.host, &key("host"))? {
        builder = builder.host(v);
    }
    match &e.port {
        Some(Port::Number(p)) => builder = builder.port(*p),
        Some(Port::Text(t)) => {
            let v = expand(t, &key("port"))?;
            let p = v.trim().parse::<u16>().map_err(|_| {
                CliError::new(format!(
                    "invalid config value for {}: not a port number",
                    key("port")
                ))
            })?;
            builder = builder.port(p);
        }
        None => {}
    }
    if let Some(v) = expand_opt(&e.database, &key("database"))? {
        builder = builder.database(v);
    }
    if let Some(v) = expand_opt(&e.user, &key("user"))? {
        builder = builder.user(v);
    }
    if let Some(v) = expand_opt(&e.password, &key("password"))? {
        if url.is_some() && builder.build().is_ok_and(|c| c.password().is_some()) {
            return Err(conflict(
                url_key,
                "password",
                "the URL already has a password: keep one",
            ));
        }
        builder = builder.password(v);
    }
    if e.ssl_enabled == Some(true) {
        builder = builder.ssl_mode(SslMode::Require);
    }
    if let Some(v) = expand_opt(&e.ssl_mode, &key("ssl_mode"))? {
        let mode = v
            .parse::<SslMode>()
            .map_err(|err| CliError::with_source(format!("invalid {}", key("ssl_mode")), err))?;
        builder = builder.ssl_mode(mode);
    }
    if let Some(v) = expand_opt(&e.ssl_ca_file, &key("ssl_ca_file"))? {
        builder = builder.ssl_ca_file(v);
    }
    if let Some(v) = expand_opt(&e.ssl_cert_file, &key("ssl_cert_file"))? {
        builder = builder.ssl_cert_file(v);
    }
    if let Some(v) = expand_opt(&e.ssl_key_file, &key("ssl_key_file"))? {
        builder = builder.ssl_key_file(v);
    }
    let source = TargetSource::Environment {
        file: file.to_owned(),
        name: name.to_owned(),
    };
    Ok((builder, source, user_given))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_in_connection_strings() {
        assert!(names_user("postgresql://alice@h/db"));
        assert!(names_user("postgres://alice:pw@h:5432/db"));
        assert!(names_user("postgresql://h/db?user=alice"));
        assert!(!names_user("postgresql://h/db"));
        assert!(!names_user("postgresql://:pw@h/db"));
        assert!(!names_user("postgresql:///db?sslmode=disable"));
        assert!(names_user("host=h user=alice dbname=db"));
        assert!(!names_user("host=h dbname=db"));
    }

    #[test]
    fn parameters_are_added_encoded() {
        assert_eq!(
            with_param("postgresql://h/db", "pooler", "pgbouncer"),
            "postgresql://h/db?pooler=pgbouncer"
        );
        assert_eq!(
            with_param(
                "postgresql://h/db?sslmode=require",
                "direct_url",
                "postgresql://x/y"
            ),
            "postgresql://h/db?sslmode=require&direct_url=postgresql%3A%2F%2Fx%2Fy"
        );
        assert_eq!(
            with_param("host=h dbname=d", "pooler", "it's"),
            "host=h dbname=d pooler='it\\'s'"
        );
    }
}
