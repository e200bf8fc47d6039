//! SQL templates: `{{tables.name}}`, `{{tables.schema.name}}` and `{{schema}}`.
//!
//! Every SQL text a [`Database`](crate::Database) or [`Transaction`](crate::Transaction) runs
//! goes through its [`Templates`] first, so one module's SQL can be written once and run in
//! whatever schema the handle was given:
//!
//! | Placeholder              | With schema `billing` | Without schema          |
//! |--------------------------|-----------------------|-------------------------|
//! | `{{tables.name}}`        | `"billing".name`      | `name`                  |
//! | `{{tables.other.name}}`  | `"other".name`        | `"other".name`          |
//! | `{{schema}}`             | `"billing"`           | `public`                |
//! | `{{schema}}.`            | `"billing".`          | *(removed, dot too)*    |
//!
//! Whitespace just inside the braces is allowed (`{{ tables.users }}`). Schema and table names
//! must be plain SQL identifiers (`^[A-Za-z_][A-Za-z0-9_]{0,62}$`, see [`validate_identifier`]);
//! the handle's own schema is checked once, by [`Templates::new`].
//!
//! Anything of the form `{{` + optional whitespace + `tables` or `schema` (case-sensitive) is a
//! placeholder, and when it is malformed (`{{tables}}`, `{{tables.1abc}}`, `{{schema.x}}`, a
//! missing `}}`…) expansion fails with [`Error::Template`] naming it, rather than sending broken
//! SQL to the server. Any other text in braces — JSON literals such as `'{"a": {"b": 1}}'`,
//! `{{other}}` — is left exactly as written.
//!
//! Expansion is cached per SQL text (each [`Templates`] belongs to one schema): after the first
//! call, expanding the same text does no parsing and no allocation, and returns the same shared
//! string, which in turn lets the driver's prepared-statement cache hit. SQL without `{{` is
//! returned as is, borrowed, and never cached. Each thread also keeps its 64 most recent
//! expansions by the address of the caller's text (the text itself is compared), so a hot
//! statement is found without hashing it or taking the shared cache's lock.
//!
//! ```
//! use pgdbm::Templates;
//!
//! let billing = Templates::new(Some("billing"))?;
//! let sql = billing.expand("SELECT * FROM {{tables.invoices}} WHERE paid")?;
//! assert_eq!(&*sql, r#"SELECT * FROM "billing".invoices WHERE paid"#);
//! assert_eq!(billing.qualify("invoices")?, r#""billing".invoices"#);
//!
//! let plain = Templates::new(None)?;
//! assert_eq!(&*plain.expand("SELECT * FROM {{schema}}.{{tables.invoices}}")?, "SELECT * FROM invoices");
//!
//! assert!(plain.expand("SELECT * FROM {{tables.1abc}}").is_err());
//! # Ok::<(), pgdbm::Error>(())
//! ```

mod cache;
mod identifier;
mod placeholder;
#[cfg(test)]
mod properties;

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::Ordering;
use std::sync::{Arc, PoisonError, RwLock};

#[cfg(doc)]
use crate::error::Error;
use crate::error::Result;

use cache::{DEFAULT_CACHE_CAPACITY, NEXT_ID};
use identifier::push_quoted;
pub use identifier::{quote_identifier, validate_identifier};
pub(crate) use placeholder::template_tables;

/// Longest offending text (in characters) kept in an [`Error::Identifier`] or
/// [`Error::Template`].
const MAX_TEXT_IN_ERROR: usize = 80;

/// SQL text after template expansion: borrowed when there was nothing to expand, shared from the
/// cache otherwise. Dereferences to `str`.
#[derive(Debug, Clone)]
pub enum ExpandedSql<'a> {
    /// The input had no placeholder.
    Borrowed(&'a str),
    /// The expanded text, shared with the cache.
    Shared(Arc<str>),
}

impl std::ops::Deref for ExpandedSql<'_> {
    type Target = str;
    fn deref(&self) -> &str {
        match self {
            ExpandedSql::Borrowed(s) => s,
            ExpandedSql::Shared(s) => s,
        }
    }
}

/// Expands templates for one schema (or none), caching expansions per SQL text.
///
/// - `{{tables.name}}` → `"schema".name` (just `name` without a schema);
/// - `{{tables.other.name}}` → `"other".name`;
/// - `{{schema}}` → `"schema"` (without a schema, `{{schema}}.` is removed and a bare
///   `{{schema}}` is `public`).
///
/// Whitespace just inside the braces is allowed; a malformed `{{tables…}}`/`{{schema…}}`
/// placeholder is an [`Error::Template`]; other text in braces (JSON) is left alone. Expansions
/// are cached per SQL text (at most 4096 texts; the cache is cleared when full). A `Templates` is
/// `Send + Sync`; handles share it in an `Arc`.
pub struct Templates {
    /// The schema, as given (validated).
    schema: Option<String>,
    /// The schema quoted for SQL: `"billing"`.
    quoted_schema: Option<String>,
    /// Expansions by SQL text. Only successful expansions are stored.
    /// (Hashed with foldhash: SipHash showed in the hot path's profile; foldhash is seeded per
    /// process, and the cache is bounded, so crafted SQL cannot degrade it far.)
    cache: RwLock<HashMap<Arc<str>, Arc<str>, foldhash::fast::RandomState>>,
    /// Most entries `cache` may hold.
    cache_capacity: usize,
    /// Names this expander in the per-thread [`FRONT`](cache::FRONT) cache (unique in the process).
    id: u64,
}

impl fmt::Debug for Templates {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let cached = self
            .cache
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .len();
        f.debug_struct("Templates")
            .field("schema", &self.schema)
            .field("cached", &cached)
            .field("cache_capacity", &self.cache_capacity)
            .finish()
    }
}

impl Templates {
    /// Creates an expander for `schema` (`None`: tables are left unqualified and resolved through
    /// the connection's `search_path`).
    ///
    /// # Errors
    ///
    /// [`Error::Identifier`] when `schema` is not a valid identifier (see
    /// [`validate_identifier`]).
    pub fn new(schema: Option<&str>) -> Result<Self> {
        Self::with_cache_capacity(schema, DEFAULT_CACHE_CAPACITY)
    }

    /// [`Templates::new`] with a given cache bound.
    fn with_cache_capacity(schema: Option<&str>, cache_capacity: usize) -> Result<Self> {
        if let Some(s) = schema {
            validate_identifier("schema", s)?;
        }
        Ok(Templates {
            schema: schema.map(str::to_owned),
            quoted_schema: schema.map(quote_identifier),
            cache: RwLock::new(HashMap::default()),
            cache_capacity,
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
        })
    }

    /// The schema, if any.
    pub fn schema(&self) -> Option<&str> {
        self.schema.as_deref()
    }

    /// `table` qualified with this handle's schema: `"schema".table`, or `table` without schema.
    /// `other.table` names its schema explicitly and becomes `"other".table`.
    ///
    /// ```
    /// # use pgdbm::Templates;
    /// let t = Templates::new(Some("app"))?;
    /// assert_eq!(t.qualify("users")?, r#""app".users"#);
    /// assert_eq!(t.qualify("audit.events")?, r#""audit".events"#);
    /// assert_eq!(Templates::new(None)?.qualify("users")?, "users");
    /// # Ok::<(), pgdbm::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Identifier`] when `table` (or the schema written before its dot) is not a valid
    /// identifier.
    pub fn qualify(&self, table: &str) -> Result<String> {
        let (schema, name) = match table.split_once('.') {
            Some((schema, name)) => {
                validate_identifier("schema", schema)?;
                (Some(schema), name)
            }
            None => (None, table),
        };
        validate_identifier("table", name)?;
        let mut out =
            String::with_capacity(table.len() + 3 + self.schema.as_ref().map_or(0, String::len));
        self.push_table(&mut out, schema, name);
        Ok(out)
    }

    /// Appends the qualified table name to `out`: explicit schema first, then the handle's.
    fn push_table(&self, out: &mut String, schema: Option<&str>, name: &str) {
        if let Some(s) = schema {
            push_quoted(out, s);
            out.push('.');
        } else if let Some(q) = &self.quoted_schema {
            out.push_str(q);
            out.push('.');
        }
        out.push_str(name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;

    const _: () = {
        const fn assert_send_sync<T: Send + Sync + fmt::Debug>() {}
        assert_send_sync::<Templates>();
        assert_send_sync::<ExpandedSql<'static>>();
    };

    pub(super) fn with_schema() -> Templates {
        Templates::new(Some("app")).unwrap()
    }

    pub(super) fn without_schema() -> Templates {
        Templates::new(None).unwrap()
    }

    pub(super) fn expand(t: &Templates, sql: &str) -> String {
        t.expand(sql).unwrap().to_string()
    }

    #[test]
    fn new_validates_schema() {
        for bad in ["", "a; drop", "1abc", &"s".repeat(64)] {
            assert!(matches!(
                Templates::new(Some(bad)),
                Err(Error::Identifier { kind: "schema", .. })
            ));
        }
        assert_eq!(with_schema().schema(), Some("app"));
        assert_eq!(without_schema().schema(), None);
    }

    #[test]
    fn qualify() {
        let t = with_schema();
        assert_eq!(t.qualify("users").unwrap(), r#""app".users"#);
        assert_eq!(t.qualify("other.users").unwrap(), r#""other".users"#);
        let t = without_schema();
        assert_eq!(t.qualify("users").unwrap(), "users");
        assert_eq!(t.qualify("other.users").unwrap(), r#""other".users"#);
        for bad in ["", "1abc", "a; drop", "a.b.c", ".users", "users.", "x.1"] {
            assert!(
                matches!(t.qualify(bad), Err(Error::Identifier { .. })),
                "{bad}"
            );
        }
    }
}
