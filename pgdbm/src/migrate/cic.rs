//! After a failed `CREATE INDEX CONCURRENTLY` in a no-transaction migration.
//!
//! A `CREATE INDEX CONCURRENTLY` that fails after its catalog entry was made (a duplicate in a
//! unique index, a deadlock, a timeout) leaves the index behind, marked INVALID. With a name,
//! the next run's statement then fails with `42P07` (or, with `IF NOT EXISTS`, silently keeps
//! the invalid index) and the module is stuck until someone drops it. So when such a statement
//! fails, the runner looks the index up by name on the statement's table, and drops it with
//! `DROP INDEX CONCURRENTLY` if it is INVALID (and not being built by another session). A
//! statement without a name gets a generated one (a new one each time, so it does not block the
//! next run); the error then names the invalid index it left and how to drop it.

use crate::executor::Executor;
use crate::params;
use crate::template::quote_identifier;

/// PostgreSQL keeps the first `NAMEDATALEN - 1` bytes of an identifier.
const MAX_IDENTIFIER_BYTES: usize = 63;

/// A `CREATE [UNIQUE] INDEX CONCURRENTLY [IF NOT EXISTS] [name] ON [ONLY] table …` statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ConcurrentIndex {
    /// The index name as the server stores it (unquoted names folded to lower case, truncated
    /// to 63 bytes); `None` when the statement names no index.
    pub(super) index: Option<String>,
    /// The table, each part quoted (`"app"."users"`), for `to_regclass`: it resolves an
    /// unqualified name through the session's `search_path`, as the statement did.
    pub(super) table: String,
}

#[derive(Debug, PartialEq, Eq)]
enum Token<'a> {
    /// A keyword or an unquoted identifier, as written.
    Word(&'a str),
    /// A quoted identifier, unescaped.
    Quoted(String),
    Dot,
    Other,
}

/// The tokens of a statement, skipping whitespace and comments.
#[derive(Clone, Copy)]
struct Lexer<'a> {
    text: &'a str,
    at: usize,
}

fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b >= 0x80
}

impl<'a> Lexer<'a> {
    fn skip_blanks(&mut self) {
        let bytes = self.text.as_bytes();
        loop {
            while self.at < bytes.len() && bytes[self.at].is_ascii_whitespace() {
                self.at += 1;
            }
            if bytes[self.at..].starts_with(b"--") {
                self.at = bytes[self.at..]
                    .iter()
                    .position(|&b| b == b'\n')
                    .map_or(bytes.len(), |p| self.at + p + 1);
            } else if bytes[self.at..].starts_with(b"/*") {
                let mut depth = 0;
                while self.at < bytes.len() {
                    if bytes[self.at..].starts_with(b"/*") {
                        depth += 1;
                        self.at += 2;
                    } else if bytes[self.at..].starts_with(b"*/") {
                        depth -= 1;
                        self.at += 2;
                        if depth == 0 {
                            break;
                        }
                    } else {
                        self.at += 1;
                    }
                }
            } else {
                return;
            }
        }
    }

    fn next(&mut self) -> Option<Token<'a>> {
        self.skip_blanks();
        let bytes = self.text.as_bytes();
        let first = *bytes.get(self.at)?;
        let start = self.at;
        if first == b'"' {
            let mut out = String::new();
            let mut from = start + 1;
            loop {
                let close = from + self.text[from..].find('"')?;
                out.push_str(&self.text[from..close]);
                if bytes.get(close + 1) == Some(&b'"') {
                    out.push('"');
                    from = close + 2;
                } else {
                    self.at = close + 1;
                    return Some(Token::Quoted(out));
                }
            }
        }
        if first.is_ascii_alphabetic() || first == b'_' || first >= 0x80 {
            while self.at < bytes.len() && is_word_byte(bytes[self.at]) {
                self.at += 1;
            }
            return Some(Token::Word(&self.text[start..self.at]));
        }
        self.at += self.text[start..].chars().next().map_or(1, char::len_utf8);
        Some(if first == b'.' {
            Token::Dot
        } else {
            Token::Other
        })
    }

    fn keyword(&mut self, keyword: &str) -> Option<()> {
        match self.next()? {
            Token::Word(w) if w.eq_ignore_ascii_case(keyword) => Some(()),
            _ => None,
        }
    }
}

fn is_keyword(token: &Token<'_>, keyword: &str) -> bool {
    matches!(token, Token::Word(w) if w.eq_ignore_ascii_case(keyword))
}

/// The first `MAX_IDENTIFIER_BYTES` bytes of `name`, cut at a character boundary.
fn truncate_identifier(mut name: String) -> String {
    if name.len() > MAX_IDENTIFIER_BYTES {
        let mut end = MAX_IDENTIFIER_BYTES;
        while !name.is_char_boundary(end) {
            end -= 1;
        }
        name.truncate(end);
    }
    name
}

/// An identifier token as the server stores it: unquoted folded to lower case (ASCII only, as
/// in a UTF-8 database), both truncated.
fn identifier(token: Token<'_>) -> Option<String> {
    let name = match token {
        Token::Word(w) => w.to_ascii_lowercase(),
        Token::Quoted(q) if !q.is_empty() => q,
        _ => return None,
    };
    Some(truncate_identifier(name))
}

impl ConcurrentIndex {
    /// Recognises `CREATE [UNIQUE] INDEX CONCURRENTLY [IF NOT EXISTS] [name] ON [ONLY] table`
    /// (after leading comments; keywords in any case; quoted identifiers); `None` for anything
    /// else.
    pub(super) fn parse(statement: &str) -> Option<Self> {
        let mut lexer = Lexer {
            text: statement,
            at: 0,
        };
        lexer.keyword("create")?;
        let mut token = lexer.next()?;
        if is_keyword(&token, "unique") {
            token = lexer.next()?;
        }
        if !is_keyword(&token, "index") {
            return None;
        }
        lexer.keyword("concurrently")?;
        let mut token = lexer.next()?;
        if is_keyword(&token, "if") {
            // `if` is also a possible index name: `IF NOT EXISTS` only when NOT follows.
            let mut ahead = lexer;
            if ahead.keyword("not").is_some() {
                ahead.keyword("exists")?;
                lexer = ahead;
                token = lexer.next()?;
            }
        }
        let index = if is_keyword(&token, "on") {
            None
        } else {
            let name = identifier(token)?;
            lexer.keyword("on")?;
            Some(name)
        };
        let mut token = lexer.next()?;
        if is_keyword(&token, "only") {
            token = lexer.next()?;
        }
        let mut parts = vec![identifier(token)?];
        loop {
            let mut ahead = lexer;
            if ahead.next() != Some(Token::Dot) {
                break;
            }
            parts.push(identifier(ahead.next()?)?);
            lexer = ahead;
        }
        if parts.len() > 3 {
            return None;
        }
        let table = parts
            .iter()
            .map(|p| quote_identifier(p))
            .collect::<Vec<_>>()
            .join(".");
        Some(ConcurrentIndex { index, table })
    }

    /// For a statement without an index name: the indexes of its table before it runs (their
    /// OIDs), so that the one it leaves can be named exactly. `None` with a name, or when they
    /// cannot be read.
    pub(super) async fn indexes_before(&self, conn: &dyn Executor) -> Option<Vec<i64>> {
        if self.index.is_some() {
            return None;
        }
        let rows = conn
            .fetch_all(
                "SELECT indexrelid::bigint FROM pg_index WHERE indrelid = to_regclass($1::text)",
                params![self.table.as_str()],
            )
            .await
            .ok()?;
        rows.iter().map(|r| r.get(0).ok()).collect()
    }

    /// After the statement failed: drops the INVALID index it left (named statements), or says
    /// which one it left and how to drop it. Returns what to add to the error message (empty
    /// when nothing was left).
    pub(super) async fn clean_up(
        &self,
        conn: &dyn Executor,
        module: &str,
        file: &str,
        before: Option<Vec<i64>>,
    ) -> String {
        match &self.index {
            Some(name) => self.drop_invalid(conn, module, file, name).await,
            None => self.describe_left(conn, before).await,
        }
    }

    async fn drop_invalid(
        &self,
        conn: &dyn Executor,
        module: &str,
        file: &str,
        name: &str,
    ) -> String {
        let found = conn
            .fetch_optional(
                "SELECT n.nspname::text, i.indisvalid, \
                        EXISTS (SELECT 1 FROM pg_stat_progress_create_index p \
                                WHERE p.index_relid = c.oid AND p.pid <> pg_backend_pid()) \
                 FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid \
                 JOIN pg_namespace n ON n.oid = c.relnamespace \
                 WHERE i.indrelid = to_regclass($1::text) AND c.relname::text = $2",
                params![self.table.as_str(), name],
            )
            .await;
        let row = match found {
            Ok(Some(row)) => row,
            // No such index on that table: nothing was left.
            Ok(None) => return String::new(),
            Err(e) => {
                return format!(
                    "; could not check whether it left an INVALID index {} on {} ({e}): if \
                     `SELECT indisvalid FROM pg_index WHERE indexrelid = '<schema>.{}'::regclass` \
                     says false, drop it with `DROP INDEX CONCURRENTLY IF EXISTS <schema>.{};`",
                    quote_identifier(name),
                    self.table,
                    quote_identifier(name),
                    quote_identifier(name),
                );
            }
        };
        let (schema, valid, building) = match (row.get::<String>(0), row.get(1), row.get(2)) {
            (Ok(s), Ok(v), Ok(b)) => (s, v, b),
            _ => return String::new(),
        };
        if valid {
            // Not ours to drop (e.g. `42P07`: the name was taken by a valid index).
            return String::new();
        }
        let qualified = format!("{}.{}", quote_identifier(&schema), quote_identifier(name));
        let drop = format!("DROP INDEX CONCURRENTLY IF EXISTS {qualified}");
        if building {
            return format!(
                "; the INVALID index {qualified} on {} is being built by another session, so it \
                 was left alone (if that build fails too, drop it with `{drop};`)",
                self.table
            );
        }
        match conn.batch_execute(&drop).await {
            Ok(()) => {
                tracing::warn!(
                    module,
                    file,
                    index = %qualified,
                    "dropped the INVALID index a failed CREATE INDEX CONCURRENTLY left"
                );
                format!(
                    "; dropped the INVALID index {qualified} it left behind (a failed CREATE \
                     INDEX CONCURRENTLY leaves its index INVALID, and it would make the next \
                     run fail with 42P07)"
                )
            }
            Err(e) => format!(
                "; it left the INVALID index {qualified}, which could not be dropped ({e}): \
                 drop it with `{drop};` before the next run"
            ),
        }
    }

    async fn describe_left(&self, conn: &dyn Executor, before: Option<Vec<i64>>) -> String {
        let rows = conn
            .fetch_all(
                "SELECT n.nspname::text, c.relname::text, c.oid::bigint \
                 FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid \
                 JOIN pg_namespace n ON n.oid = c.relnamespace \
                 WHERE i.indrelid = to_regclass($1::text) AND NOT i.indisvalid ORDER BY c.oid",
                params![self.table.as_str()],
            )
            .await;
        let rows = match rows {
            Ok(rows) => rows,
            Err(e) => {
                return format!(
                    "; it may have left an INVALID index on {} (could not check: {e}): find it \
                     with `SELECT indexrelid::regclass FROM pg_index WHERE NOT indisvalid` and \
                     drop it with DROP INDEX CONCURRENTLY",
                    self.table
                );
            }
        };
        let mut out = String::new();
        for row in &rows {
            let (Ok(schema), Ok(name), Ok(oid)) = (
                row.get::<String>(0),
                row.get::<String>(1),
                row.get::<i64>(2),
            ) else {
                continue;
            };
            let new = before.as_ref().is_none_or(|b| !b.contains(&oid));
            if !new {
                continue;
            }
            let qualified = format!("{}.{}", quote_identifier(&schema), quote_identifier(&name));
            let left = if before.is_some() {
                "it left"
            } else {
                "it may have left"
            };
            out.push_str(&format!(
                "; {left} the INVALID index {qualified} (the statement names no index, so it is \
                 not dropped automatically): drop it with \
                 `DROP INDEX CONCURRENTLY IF EXISTS {qualified};`"
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(sql: &str) -> Option<(Option<String>, String)> {
        ConcurrentIndex::parse(sql).map(|c| (c.index, c.table))
    }

    fn named(index: &str, table: &str) -> Option<(Option<String>, String)> {
        Some((Some(index.to_owned()), table.to_owned()))
    }

    #[test]
    fn plain_and_unique() {
        assert_eq!(
            parse("CREATE INDEX CONCURRENTLY idx ON t (x)"),
            named("idx", "\"t\"")
        );
        assert_eq!(
            parse("create unique index concurrently Users_Email ON App.Users USING btree (email)"),
            named("users_email", "\"app\".\"users\"")
        );
        assert_eq!(
            parse("CREATE INDEX CONCURRENTLY IF NOT EXISTS i ON ONLY s.t(x)"),
            named("i", "\"s\".\"t\"")
        );
    }

    #[test]
    fn quoted_identifiers_and_expanded_templates() {
        assert_eq!(
            parse(r#"CREATE UNIQUE INDEX CONCURRENTLY "My ""Idx""" ON "app".users (v)"#),
            named("My \"Idx\"", "\"app\".\"users\"")
        );
        assert_eq!(
            parse(r#"CREATE INDEX CONCURRENTLY "ON" ON "we.ird"."Ta ble" (x)"#),
            named("ON", "\"we.ird\".\"Ta ble\"")
        );
        assert_eq!(
            parse("CREATE INDEX CONCURRENTLY i ON db.s.t (x)"),
            named("i", "\"db\".\"s\".\"t\"")
        );
        assert_eq!(
            parse("CREATE INDEX CONCURRENTLY i ON a . b (x)"),
            named("i", "\"a\".\"b\"")
        );
    }

    #[test]
    fn leading_comments_and_layout() {
        let sql = "-- pgdbm:no-transaction\n/* a /* nested */ comment */\n\tCREATE\nINDEX\n\
                   CONCURRENTLY -- why\n idx\nON t(x)";
        assert_eq!(parse(sql), named("idx", "\"t\""));
    }

    #[test]
    fn without_a_name() {
        assert_eq!(
            parse("CREATE INDEX CONCURRENTLY ON t (x)"),
            Some((None, "\"t\"".to_owned()))
        );
        assert_eq!(
            parse("CREATE UNIQUE INDEX CONCURRENTLY ON ONLY \"s\".\"T\" (x)"),
            Some((None, "\"s\".\"T\"".to_owned()))
        );
    }

    #[test]
    fn if_as_a_name() {
        assert_eq!(
            parse("CREATE INDEX CONCURRENTLY if ON t (x)"),
            named("if", "\"t\"")
        );
        assert_eq!(
            parse("CREATE INDEX CONCURRENTLY IF NOT EXISTS ON t (x)"),
            Some((None, "\"t\"".to_owned()))
        );
    }

    #[test]
    fn long_names_are_truncated_as_the_server_does() {
        let long = "a".repeat(70);
        assert_eq!(
            parse(&format!("CREATE INDEX CONCURRENTLY {long} ON t (x)")),
            named(&"a".repeat(63), "\"t\"")
        );
        // Cut at a character boundary: 31 two-byte characters, then 62 bytes.
        let wide = "é".repeat(40);
        let (index, _) = parse(&format!("CREATE INDEX CONCURRENTLY \"{wide}\" ON t (x)")).unwrap();
        assert_eq!(index.unwrap(), "é".repeat(31));
    }

    #[test]
    fn other_statements_are_not_recognised() {
        for sql in [
            "CREATE INDEX idx ON t (x)",
            "CREATE UNIQUE INDEX idx ON t (x)",
            "CREATE TABLE t (x int)",
            "REINDEX INDEX CONCURRENTLY idx",
            "DROP INDEX CONCURRENTLY idx",
            "SELECT 'CREATE INDEX CONCURRENTLY i ON t (x)'",
            "-- CREATE INDEX CONCURRENTLY i ON t (x)\nSELECT 1",
            "CREATE INDEX CONCURRENTLY s.i ON t (x)",
            "CREATE INDEX CONCURRENTLY \"\" ON t (x)",
            "CREATE INDEX CONCURRENTLY i ON (x)",
            "CREATE INDEX CONCURRENTLY \"unterminated ON t (x)",
            "CREATE INDEX CONCURRENTLY IF NOT i ON t (x)",
            "CREATE INDEX CONCURRENTLY i ON a.b.c.d (x)",
            "CREATE INDEX CONCURRENTLY",
            "",
        ] {
            assert_eq!(parse(sql), None, "{sql}");
        }
    }
}
