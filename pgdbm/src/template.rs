//! SQL templates: `{{tables.name}}`, `{{tables.schema.name}}` and `{{schema}}`. (Being written.)

use std::borrow::Cow;
use std::sync::Arc;

use crate::error::Result;

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

/// Validates a SQL identifier (`^[A-Za-z_][A-Za-z0-9_]{0,62}$`).
///
/// # Errors
///
/// [`Error::Identifier`](crate::Error::Identifier) naming `kind` and the reason.
pub fn validate_identifier(kind: &'static str, value: &str) -> Result<()> {
    let _ = (kind, value);
    Ok(())
}

/// Quotes a validated identifier: `users` → `"users"`.
pub fn quote_identifier(ident: &str) -> String {
    format!("\"{ident}\"")
}

/// Expands templates for one schema (or none), caching expansions per SQL text.
#[derive(Debug)]
pub struct Templates {
    schema: Option<String>,
}

impl Templates {
    /// Creates an expander for `schema`.
    ///
    /// # Errors
    ///
    /// [`Error::Identifier`](crate::Error::Identifier) when `schema` is not a valid identifier.
    pub fn new(schema: Option<&str>) -> Result<Self> {
        Ok(Templates {
            schema: schema.map(str::to_owned),
        })
    }

    /// The schema, if any.
    pub fn schema(&self) -> Option<&str> {
        self.schema.as_deref()
    }

    /// Expands the placeholders of `sql`.
    ///
    /// # Errors
    ///
    /// [`Error::Template`](crate::Error::Template) naming a malformed placeholder.
    pub fn expand<'a>(&self, sql: &'a str) -> Result<ExpandedSql<'a>> {
        Ok(ExpandedSql::Borrowed(sql))
    }

    /// `table` qualified with this handle's schema: `"schema".table`, or `table` without schema.
    ///
    /// # Errors
    ///
    /// [`Error::Identifier`](crate::Error::Identifier) when `table` is not a valid identifier.
    pub fn qualify(&self, table: &str) -> Result<String> {
        let _ = Cow::Borrowed(table);
        Ok(table.to_owned())
    }
}
