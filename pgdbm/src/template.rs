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

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

use crate::driver::front_cache::{FrontCache, str_key};
use crate::error::{Error, Result, truncate_chars};

/// Longest identifier PostgreSQL keeps (`NAMEDATALEN - 1`).
const MAX_IDENTIFIER_LEN: usize = 63;

/// Longest offending text (in characters) kept in an [`Error::Identifier`] or
/// [`Error::Template`].
const MAX_TEXT_IN_ERROR: usize = 80;

/// Distinct SQL texts whose expansion a [`Templates`] keeps. When the cache is full it is
/// cleared before the next insertion, so dynamically built SQL cannot grow memory forever while
/// the hot, repeated statements are back in the cache after their next use.
const DEFAULT_CACHE_CAPACITY: usize = 4096;

/// What a placeholder must look like, for error messages.
const EXPECTED: &str = "expected {{tables.name}}, {{tables.schema.name}} or {{schema}}";

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

/// Validates a SQL identifier: it must match `^[A-Za-z_][A-Za-z0-9_]{0,62}$`.
///
/// `kind` says what the identifier names (`"schema"`, `"table"`, `"column"`…) and appears in the
/// error. Only identifiers that pass can be put into SQL text by pgdbm.
///
/// ```
/// use pgdbm::validate_identifier;
///
/// assert!(validate_identifier("table", "user_accounts").is_ok());
/// assert!(validate_identifier("table", "users; DROP TABLE users").is_err());
/// ```
///
/// # Errors
///
/// [`Error::Identifier`] naming `kind`, the value (cut to 80 characters) and the reason: it is
/// empty, does not start with a letter or underscore, contains anything other than ASCII
/// letters, digits and underscores, or is longer than 63 characters.
pub fn validate_identifier(kind: &'static str, value: &str) -> Result<()> {
    let reason = identifier_problem(value);
    match reason {
        None => Ok(()),
        Some(reason) => Err(Error::Identifier {
            kind,
            value: truncate_chars(value, MAX_TEXT_IN_ERROR),
            reason,
        }),
    }
}

/// Why `value` is not a valid identifier, or `None` when it is.
fn identifier_problem(value: &str) -> Option<&'static str> {
    let bytes = value.as_bytes();
    let Some(&first) = bytes.first() else {
        return Some("is empty");
    };
    if !(first.is_ascii_alphabetic() || first == b'_') {
        return Some("must start with a letter or underscore");
    }
    if !bytes[1..]
        .iter()
        .all(|&b| b.is_ascii_alphanumeric() || b == b'_')
    {
        return Some("may contain only letters, digits and underscores");
    }
    // All ASCII from here on, so bytes are characters.
    if bytes.len() > MAX_IDENTIFIER_LEN {
        return Some("is longer than 63 characters");
    }
    None
}

/// Quotes an identifier for SQL: `users` → `"users"`.
///
/// Embedded double quotes are doubled (`a"b` → `"a""b"`), so the result is always a single
/// quoted identifier even for text that [`validate_identifier`] would reject; validate first
/// anyway.
///
/// ```
/// assert_eq!(pgdbm::quote_identifier("billing"), "\"billing\"");
/// ```
pub fn quote_identifier(ident: &str) -> String {
    let mut out = String::with_capacity(ident.len() + 2);
    push_quoted(&mut out, ident);
    out
}

/// Appends `ident` to `out` as a quoted identifier.
fn push_quoted(out: &mut String, ident: &str) {
    out.push('"');
    for (i, part) in ident.split('"').enumerate() {
        if i > 0 {
            out.push_str("\"\"");
        }
        out.push_str(part);
    }
    out.push('"');
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
    /// Names this expander in the per-thread [`FRONT`] cache (unique in the process).
    id: u64,
}

/// Source of [`Templates::id`].
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// One recent expansion, in [`FRONT`].
struct FrontEntry {
    /// The [`Templates::id`] that expanded it.
    owner: u64,
    /// The SQL as written.
    source: Arc<str>,
    expanded: Arc<str>,
}

thread_local! {
    /// Recent expansions by where the caller's text lives. A hot statement is usually the same
    /// string at the same address (a literal, or a string the caller keeps), so finding it here
    /// costs a comparison of the text instead of hashing it and taking the cache's lock. The
    /// address only picks the slot: an entry is used only when its expander and its text are
    /// equal to the caller's, so a stale or colliding entry is never wrong, only replaced.
    static FRONT: FrontCache<FrontEntry> = const { FrontCache::new() };
}

/// The [`FRONT`] slot of `sql` (by address and length) for expander `owner`.
fn front_slot(owner: u64, sql: &str) -> usize {
    FrontCache::<FrontEntry>::slot(str_key(owner, sql))
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

/// A parsed placeholder.
enum Placeholder<'s> {
    /// `{{schema}}`.
    Schema,
    /// `{{tables.name}}` (`schema` is `None`) or `{{tables.schema.name}}`.
    Table {
        schema: Option<&'s str>,
        name: &'s str,
    },
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

    /// Expands the placeholders of `sql`.
    ///
    /// Text without `{{` is returned borrowed, untouched. Otherwise the expansion is cached: the
    /// same text expanded again returns the same shared string without parsing or allocating.
    ///
    /// ```
    /// # use pgdbm::{ExpandedSql, Templates};
    /// let t = Templates::new(Some("app"))?;
    /// assert!(matches!(t.expand("SELECT 1")?, ExpandedSql::Borrowed(_)));
    /// assert_eq!(&*t.expand("SELECT {{schema}}")?, r#"SELECT "app""#);
    /// # Ok::<(), pgdbm::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Template`] naming the first malformed `{{tables…}}` or `{{schema…}}`
    /// placeholder (including one that is never closed, and one whose schema or table name is
    /// not a valid identifier). Errors are not cached.
    pub fn expand<'a>(&self, sql: &'a str) -> Result<ExpandedSql<'a>> {
        let slot = front_slot(self.id, sql);
        let recent = FRONT.with(|front| {
            front.get(slot, |e| {
                (e.owner == self.id && *e.source == *sql).then(|| Arc::clone(&e.expanded))
            })
        });
        if let Some(expanded) = recent {
            return Ok(ExpandedSql::Shared(expanded));
        }
        if !sql.contains("{{") {
            return Ok(ExpandedSql::Borrowed(sql));
        }
        let hit = self
            .cache
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get_key_value(sql)
            .map(|(source, expanded)| (Arc::clone(source), Arc::clone(expanded)));
        if let Some((source, expanded)) = hit {
            self.remember(slot, source, Arc::clone(&expanded));
            return Ok(ExpandedSql::Shared(expanded));
        }
        let expanded: Arc<str> = Arc::from(self.expand_uncached(sql)?);
        if self.cache_capacity == 0 {
            return Ok(ExpandedSql::Shared(expanded));
        }
        let mut cache = self.cache.write().unwrap_or_else(PoisonError::into_inner);
        if let Some(raced) = cache.get(sql) {
            // Another thread expanded the same text meanwhile: hand out its copy, so every
            // caller sees one shared string.
            return Ok(ExpandedSql::Shared(Arc::clone(raced)));
        }
        if cache.len() >= self.cache_capacity {
            cache.clear();
        }
        let source: Arc<str> = Arc::from(sql);
        cache.insert(Arc::clone(&source), Arc::clone(&expanded));
        drop(cache);
        self.remember(slot, source, Arc::clone(&expanded));
        Ok(ExpandedSql::Shared(expanded))
    }

    /// Keeps an expansion in this thread's [`FRONT`] cache.
    fn remember(&self, slot: usize, source: Arc<str>, expanded: Arc<str>) {
        FRONT.with(|front| {
            front.put(
                slot,
                FrontEntry {
                    owner: self.id,
                    source,
                    expanded,
                },
            );
        });
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

    /// One left-to-right scan of `sql`, copying text and replacing placeholders.
    fn expand_uncached(&self, sql: &str) -> Result<String> {
        let mut out = String::with_capacity(sql.len() + 32);
        // `sql[..copied]` is already in `out` (or deliberately dropped).
        let mut copied = 0;
        // Where to look for the next `{{`.
        let mut pos = 0;
        while let Some(offset) = sql[pos..].find("{{") {
            let start = pos + offset;
            let inner = start + 2;
            let body_start = inner + leading_whitespace(&sql[inner..]);
            let rest = &sql[body_start..];
            if !(rest.starts_with("tables") || rest.starts_with("schema")) {
                // Not ours (e.g. JSON). Step one brace so `{{{tables.x}}}` still finds its
                // placeholder.
                pos = start + 1;
                continue;
            }
            let Some(close) = sql[inner..].find("}}") else {
                return Err(template_error(&sql[start..], "is not closed with }}"));
            };
            let end = inner + close + 2;
            let written = &sql[start..end];
            let body = sql[inner..inner + close].trim_matches(|c: char| c.is_ascii_whitespace());
            out.push_str(&sql[copied..start]);
            copied = end;
            match parse_placeholder(written, body)? {
                Placeholder::Schema => match &self.quoted_schema {
                    Some(q) => out.push_str(q),
                    None if sql[end..].starts_with('.') => copied = end + 1,
                    None => out.push_str("public"),
                },
                Placeholder::Table { schema, name } => self.push_table(&mut out, schema, name),
            }
            pos = copied;
        }
        out.push_str(&sql[copied..]);
        Ok(out)
    }
}

/// Length in bytes of the ASCII whitespace at the start of `text`.
fn leading_whitespace(text: &str) -> usize {
    text.bytes().take_while(u8::is_ascii_whitespace).count()
}

/// Parses the trimmed `body` of a placeholder written as `written`.
fn parse_placeholder<'s>(written: &str, body: &'s str) -> Result<Placeholder<'s>> {
    if body == "schema" {
        return Ok(Placeholder::Schema);
    }
    if body.starts_with("schema") {
        return Err(template_error(written, "expected exactly {{schema}}"));
    }
    let Some(path) = body.strip_prefix("tables.") else {
        let message = if body == "tables" {
            format!("names no table; {EXPECTED}")
        } else {
            EXPECTED.to_owned()
        };
        return Err(template_error(written, message));
    };
    let mut parts = path.split('.');
    let (schema, name) = match (parts.next(), parts.next(), parts.next()) {
        (Some(name), None, _) => (None, name),
        (Some(schema), Some(name), None) => (Some(schema), name),
        _ => {
            return Err(template_error(
                written,
                format!("has too many dotted parts; {EXPECTED}"),
            ));
        }
    };
    if path.is_empty() {
        return Err(template_error(
            written,
            format!("names no table; {EXPECTED}"),
        ));
    }
    if let Some(s) = schema {
        validate_identifier("schema", s).map_err(|e| template_error(written, e.to_string()))?;
    }
    validate_identifier("table", name).map_err(|e| template_error(written, e.to_string()))?;
    Ok(Placeholder::Table { schema, name })
}

/// An [`Error::Template`] for the placeholder `written` (cut to 80 characters).
fn template_error(written: &str, message: impl Into<String>) -> Error {
    Error::Template {
        placeholder: truncate_chars(written, MAX_TEXT_IN_ERROR),
        message: message.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const _: () = {
        const fn assert_send_sync<T: Send + Sync + fmt::Debug>() {}
        assert_send_sync::<Templates>();
        assert_send_sync::<ExpandedSql<'static>>();
    };

    fn with_schema() -> Templates {
        Templates::new(Some("app")).unwrap()
    }

    fn without_schema() -> Templates {
        Templates::new(None).unwrap()
    }

    fn expand(t: &Templates, sql: &str) -> String {
        t.expand(sql).unwrap().to_string()
    }

    /// Expands `sql`, expecting a template error; returns its `Display`.
    fn template_err(t: &Templates, sql: &str) -> (String, String) {
        match t.expand(sql) {
            Err(e @ Error::Template { .. }) => {
                let Error::Template { placeholder, .. } = &e else {
                    unreachable!()
                };
                (placeholder.clone(), e.to_string())
            }
            other => panic!("expected a template error for {sql:?}, got {other:?}"),
        }
    }

    fn identifier_reason(value: &str) -> &'static str {
        match validate_identifier("table", value) {
            Err(Error::Identifier { kind, reason, .. }) => {
                assert_eq!(kind, "table");
                reason
            }
            other => panic!("expected an identifier error for {value:?}, got {other:?}"),
        }
    }

    #[test]
    fn tables_with_schema() {
        let t = with_schema();
        assert_eq!(
            expand(
                &t,
                "SELECT * FROM {{tables.users}} u JOIN {{tables.orders}} o ON true"
            ),
            r#"SELECT * FROM "app".users u JOIN "app".orders o ON true"#
        );
    }

    #[test]
    fn tables_without_schema() {
        let t = without_schema();
        assert_eq!(
            expand(&t, "SELECT * FROM {{tables.users}}"),
            "SELECT * FROM users"
        );
    }

    #[test]
    fn explicit_schema() {
        for t in [with_schema(), without_schema()] {
            assert_eq!(
                expand(&t, "INSERT INTO {{tables.audit.events}} VALUES (1)"),
                r#"INSERT INTO "audit".events VALUES (1)"#
            );
        }
    }

    #[test]
    fn schema_placeholder() {
        let t = with_schema();
        assert_eq!(
            expand(&t, "SET search_path TO {{schema}}; SELECT {{schema}}.f()"),
            r#"SET search_path TO "app"; SELECT "app".f()"#
        );
        let t = without_schema();
        assert_eq!(
            expand(&t, "SET search_path TO {{schema}}; SELECT {{schema}}.f()"),
            "SET search_path TO public; SELECT f()"
        );
        assert_eq!(
            expand(&t, "CREATE TABLE {{schema}}.{{tables.users}} ()"),
            "CREATE TABLE users ()"
        );
    }

    #[test]
    fn whitespace_inside_braces() {
        let t = with_schema();
        assert_eq!(
            expand(
                &t,
                "SELECT * FROM {{ tables.users }}, {{  tables.x.y\t}}, {{ schema }}.t"
            ),
            r#"SELECT * FROM "app".users, "x".y, "app".t"#
        );
        let t = without_schema();
        assert_eq!(
            expand(&t, "SELECT {{ schema }}.f(), {{ schema }}"),
            "SELECT f(), public"
        );
    }

    #[test]
    fn other_braces_left_alone() {
        let t = with_schema();
        for sql in [
            r#"SELECT '{"a": {"b": 1}}'::jsonb"#,
            r#"SELECT '{{"a": 1}}'"#,
            "SELECT '{{other}}'",
            "SELECT '{{ not_a_placeholder }}'",
            "SELECT '{{Tables.x}}', '{{'",
        ] {
            assert_eq!(expand(&t, sql), sql);
        }
        assert_eq!(
            expand(&t, r#"SELECT '{"a": {"b": 1}}', * FROM {{tables.users}}"#),
            r#"SELECT '{"a": {"b": 1}}', * FROM "app".users"#
        );
        assert_eq!(
            expand(&t, "SELECT '{{{tables.x}}}'"),
            r#"SELECT '{"app".x}'"#
        );
        assert_eq!(expand(&t, "{{tables.a}}{{tables.b}}"), r#""app".a"app".b"#);
    }

    #[test]
    fn non_ascii_text_is_kept() {
        let t = with_schema();
        assert_eq!(
            expand(&t, "SELECT 'héllo ✓ {{' FROM {{tables.users}} -- ünïcode"),
            r#"SELECT 'héllo ✓ {{' FROM "app".users -- ünïcode"#
        );
    }

    #[test]
    fn malformed_placeholders_are_errors() {
        for t in [with_schema(), without_schema()] {
            for (sql, placeholder) in [
                ("SELECT * FROM {{tables.}}", "{{tables.}}"),
                ("SELECT * FROM {{tables}}", "{{tables}}"),
                ("SELECT * FROM {{ tables }}", "{{ tables }}"),
                ("SELECT * FROM {{tables.a.b.c}}", "{{tables.a.b.c}}"),
                ("SELECT * FROM {{tables.1abc}}", "{{tables.1abc}}"),
                ("SELECT * FROM {{tables.a; drop}}", "{{tables.a; drop}}"),
                ("SELECT * FROM {{tables.a.}}", "{{tables.a.}}"),
                ("SELECT * FROM {{tables..a}}", "{{tables..a}}"),
                ("SELECT * FROM {{tablesx}}", "{{tablesx}}"),
                ("SELECT * FROM {{tables-a}}", "{{tables-a}}"),
                ("SELECT * FROM {{schema.x}}", "{{schema.x}}"),
                ("SELECT * FROM {{schemas}}", "{{schemas}}"),
                ("SELECT * FROM {{tables.users", "{{tables.users"),
                ("SELECT * FROM {{ schema", "{{ schema"),
            ] {
                let (got, display) = template_err(&t, sql);
                assert_eq!(got, placeholder, "{sql}");
                assert!(display.contains(placeholder), "{display}");
            }
        }
    }

    #[test]
    fn error_messages_are_clear() {
        let t = with_schema();
        let (_, display) = template_err(&t, "SELECT * FROM {{tables.1abc}}");
        assert!(
            display.contains("must start with a letter or underscore"),
            "{display}"
        );
        let (_, display) = template_err(&t, "SELECT * FROM {{tables.users");
        assert!(display.contains("not closed"), "{display}");
        let (_, display) = template_err(&t, "{{tables.a.b.c}}");
        assert!(display.contains("too many"), "{display}");
    }

    #[test]
    fn long_unclosed_placeholder_is_cut() {
        let t = with_schema();
        let sql = format!("SELECT * FROM {{{{tables.users WHERE {}", "x".repeat(500));
        let (placeholder, _) = template_err(&t, &sql);
        assert!(placeholder.starts_with("{{tables.users WHERE"));
        assert!(placeholder.chars().count() <= MAX_TEXT_IN_ERROR + 1);
    }

    #[test]
    fn errors_are_not_cached() {
        let t = with_schema();
        assert!(t.expand("{{tables.1}}").is_err());
        assert!(t.expand("{{tables.1}}").is_err());
        assert_eq!(t.cache.read().unwrap().len(), 0);
    }

    #[test]
    fn identifiers() {
        assert!(validate_identifier("table", "users").is_ok());
        assert!(validate_identifier("table", "_x1").is_ok());
        assert!(validate_identifier("table", "Users_2").is_ok());
        assert!(validate_identifier("table", &"a".repeat(63)).is_ok());
        assert_eq!(
            identifier_reason("a; drop"),
            "may contain only letters, digits and underscores"
        );
        assert_eq!(
            identifier_reason(&"a".repeat(64)),
            "is longer than 63 characters"
        );
        assert_eq!(
            identifier_reason("1abc"),
            "must start with a letter or underscore"
        );
        assert_eq!(identifier_reason(""), "is empty");
        assert_eq!(
            identifier_reason("é"),
            "must start with a letter or underscore"
        );
        assert_eq!(
            identifier_reason("a\"b"),
            "may contain only letters, digits and underscores"
        );
    }

    #[test]
    fn identifier_error_value_is_cut() {
        let long = "-".repeat(1000);
        match validate_identifier("column", &long) {
            Err(e @ Error::Identifier { .. }) => {
                let Error::Identifier { kind, value, .. } = &e else {
                    unreachable!()
                };
                assert_eq!(*kind, "column");
                assert!(value.chars().count() <= MAX_TEXT_IN_ERROR + 1);
                assert!(e.to_string().contains("column"));
            }
            other => panic!("{other:?}"),
        }
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
    fn quoting() {
        assert_eq!(quote_identifier("users"), "\"users\"");
        assert_eq!(quote_identifier("a\"b"), "\"a\"\"b\"");
        assert_eq!(quote_identifier("\""), "\"\"\"\"");
        assert_eq!(quote_identifier(""), "\"\"");
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

    #[test]
    fn no_placeholder_is_borrowed() {
        let t = with_schema();
        let sql = "SELECT '{\"a\": 1}' FROM users";
        match t.expand(sql).unwrap() {
            ExpandedSql::Borrowed(s) => assert!(std::ptr::eq(s, sql)),
            ExpandedSql::Shared(_) => panic!("expected Borrowed"),
        }
        assert_eq!(t.cache.read().unwrap().len(), 0);
    }

    #[test]
    fn cache_hit_shares_the_string() {
        let t = with_schema();
        let sql = "SELECT * FROM {{tables.users}}";
        let (ExpandedSql::Shared(a), ExpandedSql::Shared(b)) =
            (t.expand(sql).unwrap(), t.expand(sql).unwrap())
        else {
            panic!("expected Shared");
        };
        assert!(Arc::ptr_eq(&a, &b));
        // Brace text that is not a placeholder is cached too.
        let (ExpandedSql::Shared(a), ExpandedSql::Shared(b)) = (
            t.expand("SELECT '{{x}}'").unwrap(),
            t.expand("SELECT '{{x}}'").unwrap(),
        ) else {
            panic!("expected Shared");
        };
        assert!(Arc::ptr_eq(&a, &b));
    }

    #[test]
    fn cache_is_per_schema() {
        let a = Templates::new(Some("a")).unwrap();
        let b = Templates::new(Some("b")).unwrap();
        let sql = "SELECT * FROM {{tables.t}}";
        assert_eq!(expand(&a, sql), r#"SELECT * FROM "a".t"#);
        assert_eq!(expand(&b, sql), r#"SELECT * FROM "b".t"#);
        assert_eq!(expand(&a, sql), r#"SELECT * FROM "a".t"#);
    }

    #[test]
    fn the_front_cache_compares_the_text_not_just_its_address() {
        let t = with_schema();
        // The same buffer (same address and length) holding another text, as a freed and
        // reused string would.
        let mut sql = String::from("SELECT * FROM {{tables.aa}}");
        assert_eq!(expand(&t, &sql), r#"SELECT * FROM "app".aa"#);
        let address = sql.as_ptr();
        sql.replace_range(.., "SELECT * FROM {{tables.bb}}");
        assert_eq!(sql.as_ptr(), address);
        assert_eq!(expand(&t, &sql), r#"SELECT * FROM "app".bb"#);
        // Text without placeholders in that buffer now.
        sql.replace_range(.., "SELECT * FROM plain_table_xx");
        assert!(matches!(t.expand(&sql).unwrap(), ExpandedSql::Borrowed(_)));
        // And another expander on the very same string.
        let other = Templates::new(Some("other")).unwrap();
        sql.replace_range(.., "SELECT * FROM {{tables.bb}}");
        assert_eq!(expand(&other, &sql), r#"SELECT * FROM "other".bb"#);
        assert_eq!(expand(&t, &sql), r#"SELECT * FROM "app".bb"#);
    }

    #[test]
    fn cache_is_bounded() {
        let t = Templates::with_cache_capacity(Some("app"), 8).unwrap();
        for i in 0..100 {
            let sql = format!("SELECT {i} FROM {{{{tables.users}}}}");
            assert_eq!(expand(&t, &sql), format!(r#"SELECT {i} FROM "app".users"#));
            assert!(t.cache.read().unwrap().len() <= 8);
        }
        // The most recent text is cached after a clear.
        let sql = "SELECT 99 FROM {{tables.users}}";
        assert!(t.cache.read().unwrap().contains_key(sql));

        let default = with_schema();
        for i in 0..(DEFAULT_CACHE_CAPACITY + 10) {
            default
                .expand(&format!("SELECT {i}, {{{{schema}}}}"))
                .unwrap();
        }
        assert!(default.cache.read().unwrap().len() <= DEFAULT_CACHE_CAPACITY);

        let none = Templates::with_cache_capacity(None, 0).unwrap();
        assert_eq!(expand(&none, "{{tables.t}}"), "t");
        assert_eq!(none.cache.read().unwrap().len(), 0);
    }

    #[test]
    fn poisoned_cache_still_works() {
        let t = Arc::new(with_schema());
        let t2 = Arc::clone(&t);
        let _ = std::thread::spawn(move || {
            let _guard = t2.cache.write().unwrap();
            panic!("poison the lock");
        })
        .join();
        assert!(t.cache.is_poisoned());
        let sql = "SELECT * FROM {{tables.users}}";
        assert_eq!(expand(&t, sql), r#"SELECT * FROM "app".users"#);
        assert_eq!(expand(&t, sql), r#"SELECT * FROM "app".users"#);
        assert!(format!("{t:?}").contains("app"));
    }

    #[test]
    fn shared_across_threads() {
        let t = Arc::new(with_schema());
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let t = Arc::clone(&t);
                std::thread::spawn(move || {
                    (0..200)
                        .map(|_| t.expand("SELECT {{tables.x}}").unwrap().to_string())
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        for h in handles {
            for s in h.join().unwrap() {
                assert_eq!(s, r#"SELECT "app".x"#);
            }
        }
    }
}

/// Properties of the expander on generated and arbitrary text.
#[cfg(test)]
mod properties {
    use super::{ExpandedSql, Templates};
    use proptest::prelude::*;

    /// Strings of up to `max` characters of `alphabet`.
    fn chars(alphabet: &str, max: usize) -> impl Strategy<Value = String> + use<> {
        let alphabet: Vec<char> = alphabet.chars().collect();
        prop::collection::vec(prop::sample::select(alphabet), 0..=max)
            .prop_map(|c| c.into_iter().collect())
    }

    /// Text around placeholders: braces (single, double, JSON-like), the words `tables` and
    /// `schema`, dots, whitespace, non-ASCII.
    fn plain() -> impl Strategy<Value = String> {
        prop::collection::vec(
            prop::sample::select(vec![
                "{",
                "}",
                "{{",
                "}}",
                "{{other}}",
                "{\"a\": {\"b\": 1}}",
                "tables",
                "schema",
                " ",
                "\t",
                "\n",
                ".",
                "x",
                "'",
                "é",
                "✓",
                "SELECT ",
                "{{ ",
                "{{Tables.x}}",
                "}}}",
            ]),
            0..8,
        )
        .prop_map(|parts| parts.concat())
    }

    /// `text` with every `{{` that (after whitespace) runs into `tables`/`schema` broken by a
    /// `_` before the word, which cannot make a new `{{`: so it holds no placeholder.
    fn without_placeholders(mut text: String) -> String {
        while let Some(at) = placeholder_start(&text) {
            text.insert(at, '_');
        }
        text
    }

    /// Where `tables`/`schema` starts right after a `{{` and ASCII whitespace, if anywhere.
    fn placeholder_start(text: &str) -> Option<usize> {
        // Overlapping: in `{{{tables` the placeholder starts at the second brace.
        (0..text.len()).find_map(|at| {
            if !text.as_bytes()[at..].starts_with(b"{{") {
                return None;
            }
            let body = at + 2;
            let word = body
                + text[body..]
                    .bytes()
                    .take_while(u8::is_ascii_whitespace)
                    .count();
            let rest = &text[word..];
            (rest.starts_with("tables") || rest.starts_with("schema")).then_some(word)
        })
    }

    #[derive(Debug, Clone)]
    enum Segment {
        Plain(String),
        Schema,
        Table(Option<String>, String),
    }

    fn identifier() -> impl Strategy<Value = String> {
        (
            prop::sample::select(vec!['a', 'Z', '_']),
            chars("az_09Q", 8),
        )
            .prop_map(|(first, rest)| format!("{first}{rest}"))
    }

    /// A placeholder written with optional whitespace inside the braces.
    fn placeholder() -> impl Strategy<Value = (Segment, String)> {
        let ws = || chars(" \t\n", 2);
        let segment = prop_oneof![
            Just(Segment::Schema),
            (prop::option::of(identifier()), identifier())
                .prop_map(|(schema, name)| Segment::Table(schema, name)),
        ];
        (ws(), segment, ws()).prop_map(|(a, segment, b)| {
            let body = match &segment {
                Segment::Schema => "schema".to_owned(),
                Segment::Table(None, name) => format!("tables.{name}"),
                Segment::Table(Some(schema), name) => format!("tables.{schema}.{name}"),
                Segment::Plain(_) => unreachable!(),
            };
            (segment, format!("{{{{{a}{body}{b}}}}}"))
        })
    }

    /// What the expander must make of `segments`: plain text copied byte for byte, each
    /// placeholder replaced by its qualified name (`{{schema}}` without a schema is `public`,
    /// or nothing, dot included, when a dot follows).
    fn model(schema: Option<&str>, segments: &[(Segment, String)]) -> String {
        let mut out = String::new();
        for (i, (segment, _)) in segments.iter().enumerate() {
            let bare_schema =
                |j: usize| schema.is_none() && matches!(segments[j].0, Segment::Schema);
            match segment {
                Segment::Plain(text) if i > 0 && bare_schema(i - 1) => {
                    out.push_str(text.strip_prefix('.').unwrap_or(text));
                }
                Segment::Plain(text) => out.push_str(text),
                Segment::Schema => match schema {
                    Some(s) => out.push_str(&format!("\"{s}\"")),
                    None => {
                        let dot_follows = matches!(
                            segments.get(i + 1),
                            Some((Segment::Plain(next), _)) if next.starts_with('.')
                        );
                        if !dot_follows {
                            out.push_str("public");
                        }
                    }
                },
                Segment::Table(explicit, name) => match explicit.as_deref().or(schema) {
                    Some(s) => out.push_str(&format!("\"{s}\".{name}")),
                    None => out.push_str(name),
                },
            }
        }
        out
    }

    /// Segments: plain text and placeholders, adjacent plain texts merged.
    fn segments() -> impl Strategy<Value = Vec<(Segment, String)>> {
        prop::collection::vec(
            prop_oneof![
                plain().prop_map(|t| (Segment::Plain(t.clone()), t)),
                placeholder(),
            ],
            0..8,
        )
        .prop_map(|segments| {
            let mut merged: Vec<(Segment, String)> = Vec::new();
            for (segment, written) in segments {
                if let (Segment::Plain(_), Some((Segment::Plain(prev), prev_written))) =
                    (&segment, merged.last_mut())
                {
                    prev.push_str(&written);
                    prev_written.push_str(&written);
                    continue;
                }
                merged.push((segment, written));
            }
            for (segment, written) in &mut merged {
                if let Segment::Plain(text) = segment {
                    *text = without_placeholders(std::mem::take(text));
                    written.clone_from(text);
                }
            }
            merged
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2048))]

        /// Only placeholders change: the text around them comes back byte for byte, each
        /// placeholder becomes its qualified name.
        #[test]
        fn only_placeholders_change(
            segments in segments(),
            schema in prop::option::of(identifier()),
        ) {
            let sql: String = segments.iter().map(|(_, written)| written.as_str()).collect();
            let expected = model(schema.as_deref(), &segments);
            let t = Templates::new(schema.as_deref()).unwrap();
            match t.expand(&sql) {
                Ok(got) => prop_assert_eq!(&*got, expected.as_str(), "sql: {:?}", sql),
                Err(e) => prop_assert!(false, "{:?} failed: {}", sql, e),
            }
        }

        /// Any text: an expansion or an error, never a panic (with and without a schema).
        #[test]
        fn never_panics(sql in prop::collection::vec(
            prop_oneof![
                3 => prop::sample::select(vec![
                    "{{", "}}", "{", "}", "tables", "schema", ".", " ", "\t", "a", "1", "é", "_",
                    "tables.", "{{ tables.", "{{schema", "..",
                ]).prop_map(str::to_owned),
                1 => prop::collection::vec(any::<char>(), 0..6).prop_map(String::from_iter),
            ],
            0..16,
        ).prop_map(|parts| parts.concat())) {
            for schema in [None, Some("app")] {
                let t = Templates::new(schema).unwrap();
                let _ = t.expand(&sql);
            }
        }

        /// Text without `{{` comes back as it is, borrowed.
        #[test]
        fn text_without_placeholders_is_untouched(
            sql in prop::collection::vec(any::<char>(), 0..40).prop_map(|c| {
                let mut s: String = c.into_iter().collect();
                while s.contains("{{") {
                    s = s.replace("{{", "{");
                }
                s
            })
        ) {
            let t = Templates::new(Some("app")).unwrap();
            let got = t.expand(&sql).unwrap();
            prop_assert!(matches!(got, ExpandedSql::Borrowed(s) if s == sql));
        }
    }
}
