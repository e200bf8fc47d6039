//! Splitting a `-- pgdbm:no-transaction` migration into statements, and spotting that marker.
//!
//! The splitter cuts at `;` outside of anything quoted or commented: `'…'` strings (with `''`),
//! `E'…'` strings (with backslash escapes too), `"…"` identifiers (with `""`), `$$…$$` and
//! `$tag$…$tag$` bodies, `--` line comments and `/* … */` block comments (which nest, as in
//! PostgreSQL). Pieces holding nothing but whitespace and comments are dropped.

use crate::driver::sql_scan::{Opaque, skip_opaque};

/// The marker line that makes a migration run statement by statement, outside a transaction.
pub const NO_TRANSACTION_MARKER: &str = "-- pgdbm:no-transaction";

/// `true` when a line of `sql` starts (after indentation) with [`NO_TRANSACTION_MARKER`].
pub(crate) fn is_no_transaction(sql: &str) -> bool {
    sql.lines()
        .any(|line| line.trim_start().starts_with(NO_TRANSACTION_MARKER))
}

/// `s` without the whitespace around it, as the server's scanner sees whitespace (ASCII only:
/// a no-break space is part of a token, and a piece of nothing else is not a statement).
fn trim_sql(s: &str) -> &str {
    s.trim_matches(|c: char| c.is_ascii_whitespace())
}

/// Splits `sql` into its statements, each trimmed (of ASCII whitespace) and without its
/// terminating `;`.
pub(crate) fn split_statements(sql: &str) -> Vec<&str> {
    let bytes = sql.as_bytes();
    let mut out = Vec::new();
    let mut start = 0;
    let mut has_code = false;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        match skip_opaque(bytes, i) {
            Some(Opaque::Comment(next)) => {
                i = next;
                continue;
            }
            Some(Opaque::Quoted(next)) => {
                i = next;
                has_code = true;
                continue;
            }
            None => {}
        }
        match b {
            b';' => {
                if has_code {
                    out.push(trim_sql(&sql[start..i]));
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
        out.push(trim_sql(&sql[start..]));
    }
    out
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
    fn only_ascii_whitespace_is_trimmed() {
        // The server's scanner reads a no-break space as part of a token: it is code, and stays.
        assert_eq!(split_statements(";\u{a0}"), ["\u{a0}"]);
        assert_eq!(
            split_statements("SELECT 1 AS a\u{a0}; SELECT 2"),
            ["SELECT 1 AS a\u{a0}", "SELECT 2"]
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

/// Properties of the splitter on generated scripts and on arbitrary text.
#[cfg(test)]
mod properties {
    use super::split_statements;
    use crate::test_support::chars;
    use proptest::prelude::*;

    /// Where `piece` (a slice of `sql`) starts in `sql`.
    fn offset(sql: &str, piece: &str) -> usize {
        piece.as_ptr() as usize - sql.as_ptr() as usize
    }

    /// A fragment of a statement, and whether it is code (a statement of comments only is not
    /// one).
    fn fragment() -> impl Strategy<Value = (String, bool)> {
        let plain = prop::sample::select(vec![
            "SELECT", "x", "1", "+", "(", ")", ",", "e", "E", "$1", "::int", "a.b", "*", "/", "-",
            "é",
        ])
        .prop_map(|s| (s.to_owned(), true));
        // Inside quotes and comments: semicolons and every other quote/comment opener.
        let tricky = || chars("ab ;\"$/*\\-", 8);
        let single = prop::collection::vec(prop_oneof![tricky(), Just("''".to_owned())], 0..4)
            .prop_map(|parts| (format!("'{}'", parts.concat()), true));
        let escape_string = prop::collection::vec(
            prop_oneof![
                chars("ab ;\"$/*-", 6),
                Just("''".to_owned()),
                Just("\\'".to_owned()),
                Just("\\\\".to_owned()),
                Just("\\;".to_owned()),
            ],
            0..4,
        )
        .prop_map(|parts| (format!("E'{}'", parts.concat()), true));
        let ident = prop::collection::vec(
            prop_oneof![chars("ab ;'$/*\\-", 8), Just("\"\"".to_owned())],
            0..4,
        )
        .prop_map(|parts| (format!("\"{}\"", parts.concat()), true));
        let dollar = (
            prop::sample::select(vec!["", "a", "_x1", "tag"]),
            chars("ab ;'\"$/*\\-", 16),
        )
            .prop_filter("the body does not close the tag", |(tag, body)| {
                let close = format!("${tag}$");
                !format!("{body}$").contains(&close)
            })
            .prop_map(|(tag, body)| (format!("${tag}${body}${tag}$"), true));
        let line_comment = chars("ab ;'\"$/*\\-", 10).prop_map(|s| (format!("--{s}\n"), false));
        let block_comment = block_comment().prop_map(|s| (s, false));
        prop_oneof![
            4 => plain,
            2 => single,
            1 => escape_string,
            2 => ident,
            2 => dollar,
            1 => line_comment,
            1 => block_comment,
        ]
    }

    /// `/* … */` with `;` and other openers inside, nested up to three deep.
    fn block_comment() -> impl Strategy<Value = String> {
        let leaf = chars("ab ;'\"$\\-", 8).prop_map(|s| format!("/*{s}*/"));
        leaf.prop_recursive(3, 12, 3, |inner| {
            (
                chars("ab ;'\"$\\-", 4),
                prop::collection::vec(inner, 1..3),
                chars("ab ;'\"$\\-", 4),
            )
                .prop_map(|(a, nested, b)| format!("/*{a}{}{b}*/", nested.concat()))
        })
    }

    /// A statement (its fragments joined by spaces) and whether it holds code.
    fn statement() -> impl Strategy<Value = (String, bool)> {
        prop::collection::vec(fragment(), 1..7).prop_map(|fragments| {
            let code = fragments.iter().any(|(_, code)| *code);
            let text = fragments
                .into_iter()
                .map(|(text, _)| text)
                .collect::<Vec<_>>()
                .join(" ");
            (text, code)
        })
    }

    /// Whitespace and semicolons between statements (at least one `;`).
    fn separator() -> impl Strategy<Value = String> {
        (chars(" \t\r\n", 3), 1..3usize, chars(" \t\r\n", 3))
            .prop_map(|(a, n, b)| format!("{a}{}{b}", ";".repeat(n)))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1024))]

        /// A script made of statements whose quotes, dollar bodies and comments hold `;` is cut
        /// exactly between the statements: the splitter returns each statement that holds code,
        /// trimmed and without its `;`, and drops those of comments only.
        #[test]
        fn cuts_only_between_statements(
            statements in prop::collection::vec((statement(), separator()), 1..6),
            lead in chars(" \t\n", 2),
            last_terminated in any::<bool>(),
        ) {
            let mut script = lead;
            for (i, ((text, _), sep)) in statements.iter().enumerate() {
                script.push_str(text);
                if i + 1 < statements.len() || last_terminated {
                    script.push_str(sep);
                }
            }
            let expected: Vec<&str> = statements
                .iter()
                .filter(|((_, code), _)| *code)
                .map(|((text, _), _)| text.trim())
                .collect();
            prop_assert_eq!(split_statements(&script), expected);
        }

        /// On any text: no panic; each piece is a non-empty, trimmed slice of the script, in
        /// order; the script is the pieces with, between them, only whitespace, `;` and
        /// comments — at least one `;` between two pieces, none of it code; and splitting the
        /// pieces joined by `\n;\n` gives them back.
        #[test]
        fn pieces_rebuild_the_script(
            sql in prop::collection::vec(
                prop_oneof![
                    3 => prop::sample::select(vec![
                        ";", "'", "\"", "$", "$$", "$a$", "--", "/*", "*/", "\n", " ", "E'", "\\",
                        "''", "x", "1", "\u{a0}", "\u{0b}", "é",
                    ]).prop_map(str::to_owned),
                    1 => prop::collection::vec(any::<char>(), 0..6).prop_map(String::from_iter),
                ],
                0..24,
            ).prop_map(|parts| parts.concat())
        ) {
            let pieces = split_statements(&sql);
            let mut end = 0;
            for (i, piece) in pieces.iter().enumerate() {
                let start = offset(&sql, piece);
                prop_assert!(start >= end && start + piece.len() <= sql.len());
                prop_assert!(!piece.is_empty(), "empty piece in {:?}", pieces);
                prop_assert_eq!(*piece, piece.trim_matches(|c: char| c.is_ascii_whitespace()));
                let gap = &sql[end..start];
                prop_assert!(split_statements(gap).is_empty(), "code between pieces: {:?}", gap);
                if i > 0 {
                    prop_assert!(gap.contains(';'), "no ';' between pieces: {:?}", gap);
                }
                end = start + piece.len();
            }
            prop_assert!(split_statements(&sql[end..]).is_empty());
            let joined = pieces.join("\n;\n");
            prop_assert_eq!(split_statements(&joined), pieces);
        }
    }
}
