//! SQL identifiers: [`validate_identifier`] (what pgdbm accepts to put into SQL text) and
//! [`quote_identifier`].

use super::MAX_TEXT_IN_ERROR;
use crate::error::{Error, Result, truncate_chars};

/// Longest identifier PostgreSQL keeps (`NAMEDATALEN - 1`).
const MAX_IDENTIFIER_LEN: usize = 63;

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
pub(super) fn push_quoted(out: &mut String, ident: &str) {
    out.push('"');
    for (i, part) in ident.split('"').enumerate() {
        if i > 0 {
            out.push_str("\"\"");
        }
        out.push_str(part);
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn quoting() {
        assert_eq!(quote_identifier("users"), "\"users\"");
        assert_eq!(quote_identifier("a\"b"), "\"a\"\"b\"");
        assert_eq!(quote_identifier("\""), "\"\"\"\"");
        assert_eq!(quote_identifier(""), "\"\"");
    }
}
