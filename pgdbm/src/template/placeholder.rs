//! Placeholders: finding them in the SQL text, parsing them, and the (uncached) expansion that
//! replaces them.

use super::{MAX_TEXT_IN_ERROR, Templates, validate_identifier};
use crate::error::{Error, Result, truncate_chars};

/// What a placeholder must look like, for error messages.
const EXPECTED: &str = "expected {{tables.name}}, {{tables.schema.name}} or {{schema}}";

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
    /// One left-to-right scan of `sql`, copying text and replacing placeholders.
    pub(super) fn expand_uncached(&self, sql: &str) -> Result<String> {
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

/// The tables a template names, as written in its placeholders (`name` for `{{tables.name}}`,
/// `schema.name` for `{{tables.schema.name}}`), each once, in order of first appearance. For
/// telemetry (`db.collection.name`): malformed placeholders are skipped, nothing is parsed
/// beyond the placeholders.
pub(crate) fn template_tables(sql: &str) -> Vec<&str> {
    let mut tables: Vec<&str> = Vec::new();
    let mut pos = 0;
    while let Some(offset) = sql[pos..].find("{{") {
        let inner = pos + offset + 2;
        let Some(close) = sql[inner..].find("}}") else {
            break;
        };
        let body = sql[inner..inner + close].trim_matches(|c: char| c.is_ascii_whitespace());
        match body.strip_prefix("tables.") {
            Some(path) if parse_placeholder(body, body).is_ok() => {
                if !tables.contains(&path) {
                    tables.push(path);
                }
                pos = inner + close + 2;
            }
            // Not a table placeholder (`{{schema}}`, JSON): step one brace, as expansion does.
            _ => pos = inner - 1,
        }
    }
    tables
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
    use crate::template::tests::{expand, with_schema, without_schema};

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

    #[test]
    fn tables_named_by_a_template() {
        assert_eq!(
            template_tables(
                "SELECT * FROM {{ tables.users }} u JOIN {{tables.audit.events}} e ON true \
                 JOIN {{tables.users}} v ON true WHERE x = '{\"a\": {{\"b\": 1}}}' AND {{schema}}.f()"
            ),
            ["users", "audit.events"]
        );
        assert!(template_tables("SELECT 1").is_empty());
        assert!(template_tables("SELECT {{tables.1bad}}, {{tables.}}").is_empty());
        assert!(template_tables("SELECT {{tables.users").is_empty());
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
}
