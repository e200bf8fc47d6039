//! The `search_path` a pool's connections get: the module's (`"<schema>", public` for a config
//! with a schema, pgdbm for Python's behaviour, unless turned off with
//! [`search_path_to_schema(false)`](super::DatabaseConfigBuilder::search_path_to_schema)), or a
//! pinned one ([`pin_search_path`](super::DatabaseConfigBuilder::pin_search_path), Python's
//! `shared_pool_search_path`), or the one given as a server setting.

use super::{DatabaseConfig, DatabaseConfigBuilder};
use crate::error::{Error, Result};
use crate::template::quote_identifier;

/// Settings that take a list, which `SET name = 'a, b'` would read as one quoted element (the
/// server double-quotes a string literal given to a `GUC_LIST_QUOTE` setting): they are set with
/// `set_config`, which reads the value as the startup packet does.
const LIST_SETTINGS: &[&str] = &["search_path", "temp_tablespaces"];

/// `true` for a setting whose value is a list (see [`LIST_SETTINGS`]).
pub(super) fn is_list_setting(name: &str) -> bool {
    LIST_SETTINGS.iter().any(|s| s.eq_ignore_ascii_case(name))
}

/// The entries of a `search_path` as the server reports or takes it: split at commas, trimmed.
/// The server echoes a startup value verbatim but reports a `SET` one with its own spacing, so
/// two paths are the same when their entries are.
pub(crate) fn search_path_entries(search_path: &str) -> Vec<&str> {
    search_path.split(',').map(str::trim).collect()
}

/// Checks a path to pin: one or more plain identifiers (`^[A-Za-z_][A-Za-z0-9_]{0,62}$`),
/// separated by commas — what needs no quoting in the startup packet or a `SET`.
pub(super) fn validate_pin(path: &str) -> Result<()> {
    let plain = |e: &str| {
        let mut chars = e.chars();
        e.len() <= 63
            && chars
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
    };
    if search_path_entries(path).into_iter().all(plain) {
        return Ok(());
    }
    Err(Error::config(
        "pin_search_path",
        format!(
            "invalid search_path {}; expected a comma-separated list of plain identifiers \
             (letters, digits and underscores, not starting with a digit), e.g. pg_catalog",
            super::quoted(path)
        ),
    ))
}

impl DatabaseConfigBuilder {
    /// Whether a pool opened with a schema sets `search_path = "<schema>", public` on its
    /// connections (default `true`, pgdbm for Python's behaviour: unqualified table names then
    /// resolve to the module's schema first, then `public`). `false` leaves the server's
    /// `search_path` alone, so only `{{tables.x}}` templates reach the schema — as with a shared
    /// pool, whose config has no schema. A `search_path` given with
    /// [`server_setting`](Self::server_setting) or [`pin_search_path`](Self::pin_search_path)
    /// replaces it.
    ///
    /// Without a pooler it travels in the startup packet (so it survives `RESET ALL` and costs
    /// no round trip); behind a session pooler it is `SET` once per connection; behind a
    /// transaction pooler, where a session setting would leak to other clients, it is set for
    /// each transaction pgdbm opens (`set_config(…, true)` with the guardrails' `SET LOCAL`s) and
    /// autocommit statements run with the server's `search_path`: use templates there.
    ///
    /// ```
    /// let config = pgdbm::DatabaseConfig::from_url("postgresql://app@db/shop?schema=todo")?;
    /// assert_eq!(config.search_path().as_deref(), Some("\"todo\", public"));
    /// let config = config.to_builder().search_path_to_schema(false).build()?;
    /// assert_eq!(config.search_path(), None);
    /// # Ok::<(), pgdbm::Error>(())
    /// ```
    pub fn search_path_to_schema(mut self, on: bool) -> Self {
        self.explicit.search_path_to_schema = Some(on);
        self
    }
    /// Pins `search_path` on every connection of the pool (pgdbm for Python's
    /// `shared_pool_search_path`), e.g. `"pg_catalog"`: a shared pool serves modules in several
    /// schemas, so no schema can own its connections' `search_path`; with a path that resolves
    /// no user schema, a table name written without `{{tables.x}}` fails loudly (`42P01`)
    /// instead of resolving through the server's default. Built-in functions and types stay
    /// reachable (`pg_catalog` is always searched). Use e.g. `"public"` when extension objects
    /// are referenced unqualified.
    ///
    /// The pin is verified when the pool opens: the driver's `connect` reads the effective
    /// `search_path` back and fails with [`Error::Config`](crate::Error::Config) naming
    /// `pin_search_path` (and both paths) when it differs — a proxy that drops startup
    /// parameters, or a transaction pooler (the pin is then only set in the transactions pgdbm
    /// opens: pin it for the role instead, `ALTER ROLE … SET search_path = …`, which the check
    /// accepts). It replaces the schema's `search_path` ([`search_path_to_schema`]); a
    /// `search_path` server setting next to it is a conflict (an error at
    /// [`build`](Self::build)). The value is a comma-separated list of plain identifiers.
    ///
    /// [`search_path_to_schema`]: Self::search_path_to_schema
    pub fn pin_search_path(mut self, search_path: impl Into<String>) -> Self {
        self.explicit.pinned_search_path = Some(Some(search_path.into()));
        self
    }
    /// No pinned `search_path`, whatever an earlier layer said.
    pub fn without_pinned_search_path(mut self) -> Self {
        self.explicit.pinned_search_path = Some(None);
        self
    }
}

impl DatabaseConfig {
    /// The `search_path` pgdbm gives the connections of a pool opened with this config, if any:
    /// the pinned one ([`pinned_search_path`](Self::pinned_search_path)); else, for a config with
    /// a schema, `"<schema>", public` (unless
    /// [`search_path_to_schema(false)`](super::DatabaseConfigBuilder::search_path_to_schema)).
    /// `None` when a `search_path` is given as a server setting (that one is sent as it is) or
    /// neither applies.
    pub fn search_path(&self) -> Option<String> {
        if self
            .server_settings
            .iter()
            .any(|(name, _)| name.eq_ignore_ascii_case("search_path"))
        {
            return None;
        }
        if let Some(pin) = &self.pinned_search_path {
            return Some(pin.clone());
        }
        match &self.schema {
            Some(schema) if self.search_path_to_schema => {
                Some(format!("{}, public", quote_identifier(schema)))
            }
            _ => None,
        }
    }

    /// `true` when a pool opened with this config sets the module's `search_path`
    /// (`"<schema>", public`) on its connections: the default for a config with a schema.
    pub fn search_path_to_schema(&self) -> bool {
        self.search_path_to_schema
    }

    /// The `search_path` pinned on the pool's connections and verified when it opens
    /// ([`DatabaseConfigBuilder::pin_search_path`](super::DatabaseConfigBuilder::pin_search_path)).
    pub fn pinned_search_path(&self) -> Option<&str> {
        self.pinned_search_path.as_deref()
    }

    /// `server_settings`, plus the `search_path` of [`search_path`](Self::search_path) when
    /// there is one: what connections are given, after the guardrail timeouts.
    pub(super) fn session_settings(&self) -> Vec<(String, String)> {
        let mut v = self.server_settings.clone();
        if let Some(path) = self.search_path() {
            v.push(("search_path".to_owned(), path));
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Pooler;
    use crate::config::test_support::{build, url};

    #[test]
    fn a_schema_puts_itself_first_on_the_search_path() {
        let c = url("postgresql://app@db/shop?schema=todo").unwrap();
        assert!(c.search_path_to_schema());
        assert_eq!(c.search_path().as_deref(), Some("\"todo\", public"));
        let last = c.startup_options().pop().unwrap();
        assert_eq!(
            last,
            ("search_path".to_owned(), "\"todo\", public".to_owned())
        );
        assert_eq!(c.startup_settings().pop().unwrap(), last);

        // No schema, or turned off: nothing.
        assert_eq!(url("postgresql://app@db/shop").unwrap().search_path(), None);
        let off = build(c.to_builder().search_path_to_schema(false)).unwrap();
        assert!(!off.search_path_to_schema());
        assert_eq!(off.search_path(), None);
        assert!(
            off.startup_options()
                .iter()
                .all(|(n, _)| n != "search_path")
        );
        assert!(!build(off.to_builder()).unwrap().search_path_to_schema());

        // An explicit server setting is sent as it is, once.
        let own = build(c.to_builder().server_setting("search_path", "a, b")).unwrap();
        assert_eq!(own.search_path(), None);
        let paths: Vec<_> = own
            .startup_options()
            .into_iter()
            .filter(|(n, _)| n == "search_path")
            .collect();
        assert_eq!(paths, vec![("search_path".to_owned(), "a, b".to_owned())]);
    }

    #[test]
    fn behind_poolers_the_path_is_set_with_set_config() {
        let session = url("postgresql://app@db/shop?schema=todo&pooler=session").unwrap();
        let sql = session.connect_sql().unwrap();
        assert!(
            sql.ends_with("SELECT pg_catalog.set_config('search_path', '\"todo\", public', false)"),
            "{sql}"
        );
        let tx = build(session.to_builder().pooler(Pooler::Transaction)).unwrap();
        let sql = tx.transaction_prelude().unwrap();
        assert!(
            sql.ends_with("SELECT pg_catalog.set_config('search_path', '\"todo\", public', true)"),
            "{sql}"
        );
    }

    #[test]
    fn a_pin_replaces_the_schema_path_and_is_checked() {
        let c = build(
            crate::DatabaseConfig::builder()
                .schema("todo")
                .pin_search_path("pg_catalog"),
        )
        .unwrap();
        assert_eq!(c.pinned_search_path(), Some("pg_catalog"));
        assert_eq!(c.search_path().as_deref(), Some("pg_catalog"));
        assert_eq!(
            build(c.to_builder()).unwrap().pinned_search_path(),
            Some("pg_catalog")
        );
        let off = build(c.to_builder().without_pinned_search_path()).unwrap();
        assert_eq!(off.search_path().as_deref(), Some("\"todo\", public"));
        assert!(build(crate::DatabaseConfig::builder().pin_search_path("a, b_2")).is_ok());

        for bad in ["", "a,,b", "\"x\"", "a b", "1a", "$user"] {
            let err = build(crate::DatabaseConfig::builder().pin_search_path(bad)).unwrap_err();
            assert!(
                matches!(err, Error::Config { ref field, .. } if field == "pin_search_path"),
                "{bad}: {err:?}"
            );
        }
        let err = build(
            crate::DatabaseConfig::builder()
                .pin_search_path("pg_catalog")
                .server_setting("search_path", "public"),
        )
        .unwrap_err();
        assert!(err.to_string().contains("conflicts"), "{err}");
    }

    #[test]
    fn entries_ignore_spacing() {
        assert_eq!(search_path_entries("a,b"), search_path_entries("a, b"));
        assert_eq!(search_path_entries(" pg_catalog "), vec!["pg_catalog"]);
    }
}
