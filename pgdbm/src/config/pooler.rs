//! The connection pooler in front of the server ([`Pooler`]), the direct connection for what a
//! transaction pooler cannot carry, and how each mode turns the guardrail settings into SQL.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use super::DatabaseConfig;
use super::parse::{Origin, parse_connection_string};
use crate::error::{Error, Result};

/// What sits between pgdbm and PostgreSQL.
///
/// | mode | startup `options` | the guardrail timeouts | statements | session state |
/// |---|---|---|---|---|
/// | `none` | sent | in the startup packet | named, cached per connection | used (session advisory locks, …) |
/// | `session` | not sent (PgBouncer refuses them) | `SET` once per connection | named, cached | used |
/// | `transaction` | not sent | `SET LOCAL` in every transaction pgdbm opens; `statement_timeout` also enforced client side for autocommit statements | unnamed, in one round trip | none: what needs a session is refused or goes to [`direct_url`](DatabaseConfig::direct_config) |
///
/// Set it with [`DatabaseConfigBuilder::pooler`](crate::DatabaseConfigBuilder::pooler), the
/// connection-string key `pooler` (`?pooler=transaction`), the environment variable
/// `PGDBM_POOLER` or `pooler = "transaction"` in `pgdbm.toml`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Pooler {
    /// pgdbm talks to PostgreSQL directly (the default).
    #[default]
    None,
    /// A pooler in session mode (PgBouncer `pool_mode = session`): one server connection per
    /// client connection, but no startup `options`.
    Session,
    /// A pooler in transaction mode (PgBouncer `pool_mode = transaction`, PgCat, Supavisor, RDS
    /// Proxy): consecutive transactions — and autocommit statements — may run on different server
    /// connections, so pgdbm keeps no state in a server session between transactions.
    Transaction,
}

impl Pooler {
    /// The name used in connection strings and `pgdbm.toml`.
    pub fn as_str(self) -> &'static str {
        match self {
            Pooler::None => "none",
            Pooler::Session => "session",
            Pooler::Transaction => "transaction",
        }
    }

    /// `true` when a server session may change between transactions (transaction mode).
    pub fn is_transaction(self) -> bool {
        self == Pooler::Transaction
    }
}

impl fmt::Display for Pooler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Pooler {
    type Err = Error;

    /// `none`, `session` or `transaction` (ASCII case-insensitive).
    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "none" | "" => Ok(Pooler::None),
            "session" => Ok(Pooler::Session),
            "transaction" => Ok(Pooler::Transaction),
            _ => Err(Error::config(
                "pooler",
                format!(
                    "invalid pooler {:?}; expected none, session or transaction",
                    s.chars().take(40).collect::<String>()
                ),
            )),
        }
    }
}

/// The three guardrail timeouts (in ms, `0` when off), as `(name, value)` pairs.
pub(super) fn guardrail_timeouts(config: &DatabaseConfig) -> Vec<(String, String)> {
    let ms = |d: Option<Duration>| d.map_or(0, |d| d.as_millis()).to_string();
    vec![
        ("statement_timeout".to_owned(), ms(config.statement_timeout)),
        (
            "idle_in_transaction_session_timeout".to_owned(),
            ms(config.idle_in_transaction_session_timeout),
        ),
        ("lock_timeout".to_owned(), ms(config.lock_timeout)),
    ]
}

/// The guardrail timeouts, then `server_settings` and the `search_path` pgdbm sets.
fn guardrails(config: &DatabaseConfig) -> Vec<(String, String)> {
    let mut v = guardrail_timeouts(config);
    v.extend(config.session_settings());
    v
}

/// `SET [LOCAL] name = 'value'; …` for `settings`, values quoted as string literals (names are
/// plain words with dots, checked when the config was built). A list setting (`search_path`) is
/// set with `set_config(name, value, is_local)` instead: `SET` would read the literal as one
/// element of the list.
fn set_statements(settings: &[(String, String)], local: bool) -> String {
    let scope = if local { "SET LOCAL " } else { "SET " };
    settings
        .iter()
        .map(|(name, value)| {
            let value = value.replace('\'', "''");
            if super::search_path::is_list_setting(name) {
                format!("SELECT pg_catalog.set_config('{name}', '{value}', {local})")
            } else {
                format!("{scope}{name} = '{value}'")
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

impl DatabaseConfig {
    /// Resolves `direct_url` on top of this (validated) configuration: what it sets overrides,
    /// the rest is inherited; no pooler, no further direct URL.
    pub(super) fn resolve_direct_url(&self) -> Result<Option<DatabaseConfig>> {
        let Some(url) = &self.direct_url else {
            return Ok(None);
        };
        let layer = parse_connection_string(url, Origin::DirectUrl)?;
        if layer.pooler.is_some_and(|p| p != Pooler::None) || layer.direct_url.is_some() {
            return Err(Error::config(
                "direct_url",
                "a direct URL must not set pooler or direct_url itself",
            ));
        }
        let mut direct = self.clone();
        direct.pooler = Pooler::None;
        direct.direct_url = None;
        direct.direct = None;
        let mut database = Some(direct.database.clone());
        layer.apply_to(&mut direct, &mut database);
        if let Some(database) = database {
            direct.database = database;
        }
        direct.validate()?;
        Ok(Some(direct))
    }

    /// The pooler in front of the server (default [`Pooler::None`]).
    pub fn pooler(&self) -> Pooler {
        self.pooler
    }

    /// The configuration of the direct connection (`direct_url`), for what cannot run through a
    /// transaction pooler: migrations marked `-- pgdbm:no-transaction`, `CREATE DATABASE`,
    /// listeners. It inherits every setting of this configuration that `direct_url` does not
    /// set, with [`Pooler::None`]. `None` when no `direct_url` is configured.
    pub fn direct_config(&self) -> Option<&DatabaseConfig> {
        self.direct.as_deref()
    }

    /// The settings to send as the startup parameter `options` (`-c name=value`): the three
    /// guardrail timeouts (in ms, `0` when off) and `server_settings` — none behind a pooler,
    /// which refuses the parameter (they are applied with [`connect_sql`](Self::connect_sql) or
    /// [`transaction_prelude`](Self::transaction_prelude) instead).
    pub fn startup_options(&self) -> Vec<(String, String)> {
        match self.pooler {
            Pooler::None => guardrails(self),
            Pooler::Session | Pooler::Transaction => Vec::new(),
        }
    }

    /// SQL a driver runs once on every new connection before the init commands: the guardrail
    /// settings as `SET` statements behind a session pooler, nothing otherwise.
    pub fn connect_sql(&self) -> Option<String> {
        match self.pooler {
            Pooler::Session => Some(set_statements(&guardrails(self), false)),
            Pooler::None | Pooler::Transaction => None,
        }
    }

    /// SQL pgdbm runs right after `BEGIN` of every transaction it opens: the guardrail settings as
    /// `SET LOCAL` statements behind a transaction pooler (where a session setting would leak to
    /// other clients), nothing otherwise.
    pub fn transaction_prelude(&self) -> Option<String> {
        match self.pooler {
            Pooler::Transaction => Some(set_statements(&guardrails(self), true)),
            Pooler::None | Pooler::Session => None,
        }
    }

    /// The client-side bound on autocommit statements: the configured `statement_timeout` behind
    /// a transaction pooler (where the server setting cannot be carried), `None` otherwise.
    pub fn client_statement_timeout(&self) -> Option<Duration> {
        match self.pooler {
            Pooler::Transaction => self.statement_timeout,
            Pooler::None | Pooler::Session => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::test_support::url;

    #[test]
    fn parses_the_three_modes() {
        assert_eq!("none".parse::<Pooler>().unwrap(), Pooler::None);
        assert_eq!("Session".parse::<Pooler>().unwrap(), Pooler::Session);
        assert_eq!(
            "TRANSACTION".parse::<Pooler>().unwrap(),
            Pooler::Transaction
        );
        let err = "statement".parse::<Pooler>().unwrap_err();
        assert!(matches!(err, Error::Config { ref field, .. } if field == "pooler"));
        assert!(err.to_string().contains("none, session or transaction"));
    }

    #[test]
    fn transaction_mode_sends_no_options_and_sets_local() {
        let c = url("postgresql://app@db/shop?pooler=transaction&lock_timeout=2s").unwrap();
        assert_eq!(c.pooler(), Pooler::Transaction);
        assert!(c.startup_options().is_empty());
        assert_eq!(c.connect_sql(), None);
        assert_eq!(
            c.transaction_prelude().unwrap(),
            "SET LOCAL statement_timeout = '60000'; \
             SET LOCAL idle_in_transaction_session_timeout = '60000'; \
             SET LOCAL lock_timeout = '2000'"
        );
        assert_eq!(
            c.client_statement_timeout(),
            Some(Duration::from_millis(60_000))
        );
    }

    #[test]
    fn session_mode_sets_once_per_connection() {
        let c = url("host=db pooler=session options='-c work_mem=1MB'").unwrap();
        assert!(c.startup_options().is_empty());
        assert_eq!(c.transaction_prelude(), None);
        let sql = c.connect_sql().unwrap();
        assert!(
            sql.starts_with("SET statement_timeout = '60000'; "),
            "{sql}"
        );
        assert!(sql.ends_with("SET work_mem = '1MB'"), "{sql}");
        assert_eq!(c.client_statement_timeout(), None);
    }

    #[test]
    fn without_pooler_everything_goes_in_the_startup_packet() {
        let c = url("postgresql://app@db/shop").unwrap();
        assert_eq!(c.pooler(), Pooler::None);
        assert_eq!(c.startup_options().len(), 3);
        assert_eq!((c.connect_sql(), c.transaction_prelude()), (None, None));
    }

    #[test]
    fn setting_values_are_quoted() {
        let c = url("host=db pooler=transaction options='-c work_mem=a\\'b -c search_path=a\\'b'")
            .unwrap();
        let sql = c.transaction_prelude().unwrap();
        assert!(
            sql.ends_with(
                "SET LOCAL work_mem = 'a''b'; \
                 SELECT pg_catalog.set_config('search_path', 'a''b', true)"
            ),
            "{sql}"
        );
    }

    #[test]
    fn direct_url_inherits_and_has_no_pooler() {
        let c = url(
            "postgresql://app:pw@bouncer:6432/shop?pooler=transaction&schema=s\
             &direct_url=postgresql%3A%2F%2Fdb%3A5432",
        )
        .unwrap();
        let direct = c.direct_config().unwrap();
        assert_eq!((direct.host(), direct.port()), ("db", 5432));
        assert_eq!((direct.user(), direct.password()), ("app", Some("pw")));
        assert_eq!(direct.database(), "shop");
        assert_eq!(direct.schema(), Some("s"));
        assert_eq!(direct.pooler(), Pooler::None);
        assert!(direct.direct_config().is_none());
        // Neither form shows a password.
        assert!(!format!("{c:?}").contains("pw"));
        assert!(!c.to_string().contains("pw"));
    }

    #[test]
    fn a_bad_direct_url_names_the_key() {
        let err = url("postgresql://bouncer/shop?direct_url=mysql%3A%2F%2Fx").unwrap_err();
        assert!(err.to_string().contains("direct_url"), "{err}");
    }
}
