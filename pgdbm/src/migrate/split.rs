//! Splitting a `-- pgdbm:no-transaction` migration into statements, and spotting that marker.
//!
//! The splitter cuts at `;` outside of anything quoted or commented: `'…'` strings (with `''`),
//! `E'…'` strings (with backslash escapes too), `"…"` identifiers (with `""`), `$$…$$` and
//! `$tag$…$tag$` bodies, `--` line comments and `/* … */` block comments (which nest, as in
//! PostgreSQL). Pieces holding nothing but whitespace and comments are dropped.

/// The marker line that makes a migration run statement by statement, outside a transaction.
pub const NO_TRANSACTION_MARKER: &str = "-- pgdbm:no-transaction";

/// `true` when a line of `sql` starts (after indentation) with [`NO_TRANSACTION_MARKER`].
pub(crate) fn is_no_transaction(sql: &str) -> bool {
    sql.lines()
        .any(|line| line.trim_start().starts_with(NO_TRANSACTION_MARKER))
}

fn is_ident_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b >= 0x80
}

/// The end (exclusive) of a dollar-quote tag starting at `start` (a `$`), if there is one there:
/// `$$` or `$name$` where `name` is an identifier (not starting with a digit).
fn dollar_tag_end(bytes: &[u8], start: usize) -> Option<usize> {
    let mut i = start + 1;
    if bytes.get(i).is_some_and(u8::is_ascii_digit) {
        return None;
    }
    while let Some(&b) = bytes.get(i) {
        if b == b'$' {
            return Some(i + 1);
        }
        if !is_ident_byte(b) {
            return None;
        }
        i += 1;
    }
    None
}

/// Splits `sql` into its statements, each trimmed and without its terminating `;`.
pub(crate) fn split_statements(sql: &str) -> Vec<&str> {
    let bytes = sql.as_bytes();
    let mut out = Vec::new();
    let mut start = 0;
    let mut has_code = false;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        match b {
            b'\'' => {
                let escapes = i > 0
                    && matches!(bytes[i - 1], b'E' | b'e')
                    && (i < 2 || !is_ident_byte(bytes[i - 2]));
                i = skip_quoted(bytes, i + 1, b'\'', escapes);
                has_code = true;
                continue;
            }
            b'"' => {
                i = skip_quoted(bytes, i + 1, b'"', false);
                has_code = true;
                continue;
            }
            b'-' if bytes.get(i + 1) == Some(&b'-') => {
                i = bytes[i..]
                    .iter()
                    .position(|&c| c == b'\n')
                    .map_or(bytes.len(), |p| i + p + 1);
                continue;
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                i = skip_block_comment(bytes, i + 2);
                continue;
            }
            b'$' if i == 0 || !is_ident_byte(bytes[i - 1]) => {
                if let Some(tag_end) = dollar_tag_end(bytes, i) {
                    let tag = &bytes[i..tag_end];
                    i = find(bytes, tag_end, tag).map_or(bytes.len(), |p| p + tag.len());
                    has_code = true;
                    continue;
                }
                has_code = true;
            }
            b';' => {
                if has_code {
                    out.push(sql[start..i].trim());
                }
                start = i + 1;
                has_code = false;
            }
            _ if !b.is_ascii_whitespace() => has_code = true,
            _ => {}
        }
        i += 1;
    }
    if has_code {
        out.push(sql[start..].trim());
    }
    out
}

/// Skips a quoted run whose opening quote was just before `i`; returns the index after the
/// closing quote (doubled quotes continue the run; with `escapes`, so does a backslash escape).
fn skip_quoted(bytes: &[u8], mut i: usize, quote: u8, escapes: bool) -> usize {
    while i < bytes.len() {
        let b = bytes[i];
        if escapes && b == b'\\' {
            i += 2;
            continue;
        }
        if b == quote {
            if bytes.get(i + 1) == Some(&quote) {
                i += 2;
                continue;
            }
            return i + 1;
        }
        i += 1;
    }
    bytes.len()
}

/// Skips a (nested) block comment whose `/*` ended just before `i`.
fn skip_block_comment(bytes: &[u8], mut i: usize) -> usize {
    let mut depth = 1;
    while i < bytes.len() {
        if bytes[i] == b'/' && bytes.get(i + 1) == Some(&b'*') {
            depth += 1;
            i += 2;
        } else if bytes[i] == b'*' && bytes.get(i + 1) == Some(&b'/') {
            depth -= 1;
            i += 2;
            if depth == 0 {
                return i;
            }
        } else {
            i += 1;
        }
    }
    bytes.len()
}

fn find(haystack: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    haystack
        .get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| from + p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simple_statements() {
        assert_eq!(
            split_statements("CREATE TABLE a (x int);\nINSERT INTO a VALUES (1);  "),
            ["CREATE TABLE a (x int)", "INSERT INTO a VALUES (1)"]
        );
        assert_eq!(split_statements("SELECT 1"), ["SELECT 1"]);
        assert!(split_statements("  ;; \n -- nothing\n /* here */ ;").is_empty());
    }

    #[test]
    fn quotes_and_escapes() {
        assert_eq!(
            split_statements("SELECT 'a;''b'; SELECT E'c\\';d'; SELECT \"x;\"\"y\" FROM t"),
            [
                "SELECT 'a;''b'",
                "SELECT E'c\\';d'",
                "SELECT \"x;\"\"y\" FROM t"
            ]
        );
        // A plain string does not treat a backslash as an escape (standard_conforming_strings).
        assert_eq!(
            split_statements("SELECT 'a\\'; SELECT 2"),
            ["SELECT 'a\\'", "SELECT 2"]
        );
        // `e'` after an identifier character is not an escape string prefix.
        assert_eq!(
            split_statements("SELECT some'x\\'; SELECT 2"),
            ["SELECT some'x\\'", "SELECT 2"]
        );
    }

    #[test]
    fn dollar_bodies() {
        let sql = "CREATE FUNCTION f() RETURNS int AS $$ SELECT 1; $$ LANGUAGE sql;\n\
                   CREATE FUNCTION g() RETURNS int AS $body$ BEGIN RETURN 1; END; $body$ LANGUAGE plpgsql;\n\
                   SELECT $1::int";
        let parts = split_statements(sql);
        assert_eq!(parts.len(), 3, "{parts:?}");
        assert!(parts[0].ends_with("LANGUAGE sql"));
        assert!(parts[1].contains("$body$ BEGIN RETURN 1; END; $body$"));
        assert_eq!(parts[2], "SELECT $1::int");
        // Nested different tags.
        assert_eq!(
            split_statements("SELECT $a$ $b$ ; $b$ $a$; SELECT 2").len(),
            2
        );
    }

    #[test]
    fn comments() {
        let sql = "-- first; not a split\nSELECT 1 /* a; /* nested; */ still; */ + 1;\n\
                   SELECT 2 -- trailing;\n;";
        assert_eq!(
            split_statements(sql),
            [
                "-- first; not a split\nSELECT 1 /* a; /* nested; */ still; */ + 1",
                "SELECT 2 -- trailing;"
            ]
        );
    }

    #[test]
    fn unterminated_runs_to_the_end() {
        assert_eq!(split_statements("SELECT 'abc; def"), ["SELECT 'abc; def"]);
        assert_eq!(split_statements("SELECT $$x; y"), ["SELECT $$x; y"]);
    }

    #[test]
    fn marker() {
        assert!(is_no_transaction(
            "-- pgdbm:no-transaction\nCREATE INDEX CONCURRENTLY i ON t (x);"
        ));
        assert!(is_no_transaction(
            "SELECT 1;\n  -- pgdbm:no-transaction here\n"
        ));
        assert!(!is_no_transaction("SELECT '-- pgdbm:no-transaction'"));
    }
}
