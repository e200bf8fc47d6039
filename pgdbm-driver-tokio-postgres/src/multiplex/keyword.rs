//! Which statements may run on a shared connection, by their leading keyword.
//!
//! An allow-list: statements whose leading keyword is one of [`SHARED`] (reads, writes, DDL
//! other than `CREATE TEMP`/`TEMPORARY`, `SHOW`, `NOTIFY`, …) run shared; anything else —
//! `SET`/`RESET`, `LISTEN`/`UNLISTEN`, `PREPARE`/`EXECUTE`/`DEALLOCATE`,
//! `DECLARE`/`FETCH`/`MOVE`/`CLOSE`, `BEGIN`/`START`/`COMMIT`/`ROLLBACK`/`SAVEPOINT`/`RELEASE`/
//! `END`/`ABORT`/`PREPARE TRANSACTION`, `LOCK`, `DISCARD`, `COPY`, `LOAD`, `DO`, `CALL`, and any
//! keyword not listed — runs on an exclusive connection. What a function call does to the
//! session inside a `SELECT` (`pg_advisory_lock(…)`, `set_config(…, false)`) cannot be seen
//! here: see the crate docs' "Multiplexing" section.

/// Leading keywords of statements that neither change nor depend on session state.
const SHARED: &[&str] = &[
    "SELECT", "INSERT", "UPDATE", "DELETE", "MERGE", "WITH", "VALUES", "TABLE", "SHOW", "NOTIFY",
    "EXPLAIN", "CREATE", "ALTER", "DROP", "TRUNCATE", "COMMENT", "GRANT", "REVOKE", "ANALYZE",
    "ANALYSE", "VACUUM", "REINDEX", "REFRESH", "CLUSTER",
];

/// `true` when `sql` may run multiplexed on a shared connection (see the module docs).
pub(crate) fn may_share(sql: &str) -> bool {
    let mut words = Words(sql.as_bytes());
    let Some(first) = words.next() else {
        return false;
    };
    if !SHARED
        .iter()
        .any(|k| k.as_bytes().eq_ignore_ascii_case(first))
    {
        return false;
    }
    if first.eq_ignore_ascii_case(b"CREATE") {
        // CREATE [OR REPLACE] [GLOBAL | LOCAL] {TEMP | TEMPORARY} …: session-scoped.
        for word in words.take(4) {
            if word.eq_ignore_ascii_case(b"TEMP") || word.eq_ignore_ascii_case(b"TEMPORARY") {
                return false;
            }
            let modifier = [&b"OR"[..], b"REPLACE", b"GLOBAL", b"LOCAL"]
                .iter()
                .any(|m| m.eq_ignore_ascii_case(word));
            if !modifier {
                break;
            }
        }
    }
    true
}

/// The words at the start of a statement: runs of ASCII letters and `_`, with whitespace,
/// `--` and (nested) `/* */` comments and opening parentheses skipped between them. Stops at
/// anything else (a quote, a digit, a symbol).
struct Words<'a>(&'a [u8]);

impl<'a> Iterator for Words<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let s = &mut self.0;
        loop {
            match s {
                [c, rest @ ..] if c.is_ascii_whitespace() || *c == b'(' => *s = rest,
                [b'-', b'-', rest @ ..] => {
                    let end = rest.iter().position(|&c| c == b'\n').unwrap_or(rest.len());
                    *s = &rest[end..];
                }
                [b'/', b'*', rest @ ..] => *s = skip_block_comment(rest),
                _ => break,
            }
        }
        let len = s
            .iter()
            .position(|c| !(c.is_ascii_alphabetic() || *c == b'_'))
            .unwrap_or(s.len());
        if len == 0 {
            return None;
        }
        let (word, rest) = s.split_at(len);
        *s = rest;
        Some(word)
    }
}

/// The text after a block comment whose opening `/*` was just read (comments nest in SQL); an
/// unterminated comment takes the rest.
fn skip_block_comment(mut s: &[u8]) -> &[u8] {
    let mut depth = 1usize;
    while depth > 0 {
        match s {
            [] => return s,
            [b'*', b'/', rest @ ..] => {
                depth -= 1;
                s = rest;
            }
            [b'/', b'*', rest @ ..] => {
                depth += 1;
                s = rest;
            }
            [_, rest @ ..] => s = rest,
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::may_share;

    #[test]
    fn data_statements_and_ddl_are_shared() {
        for sql in [
            "SELECT 1",
            "  select $1::int",
            "-- a comment\nSELECT 1",
            "/* a /* nested */ comment */ INSERT INTO t VALUES (1)",
            "(SELECT 1) UNION (SELECT 2)",
            "WITH x AS (SELECT 1) SELECT * FROM x",
            "update t set a = 1",
            "DELETE FROM t",
            "VALUES (1)",
            "CREATE TABLE t (id int)",
            "CREATE OR REPLACE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 1'",
            "CREATE UNLOGGED TABLE t (id int)",
            "NOTIFY ch, 'x'",
            "SHOW search_path",
            "EXPLAIN SELECT 1",
        ] {
            assert!(may_share(sql), "{sql}");
        }
    }

    #[test]
    fn session_statements_are_exclusive() {
        for sql in [
            "SET search_path TO x",
            "set local statement_timeout = 5",
            "RESET ALL",
            "LISTEN ch",
            "UNLISTEN *",
            "PREPARE p AS SELECT 1",
            "EXECUTE p",
            "DEALLOCATE p",
            "DECLARE c CURSOR FOR SELECT 1",
            "FETCH 1 FROM c",
            "MOVE c",
            "CLOSE c",
            "BEGIN",
            "start transaction",
            "COMMIT",
            "ROLLBACK",
            "SAVEPOINT s",
            "RELEASE s",
            "END",
            "ABORT",
            "LOCK TABLE t",
            "CREATE TEMP TABLE t (id int)",
            "create temporary table t (id int)",
            "CREATE GLOBAL TEMPORARY TABLE t (id int)",
            "CREATE OR REPLACE TEMP VIEW v AS SELECT 1",
            "DISCARD ALL",
            "COPY t FROM STDIN",
            "LOAD 'auto_explain'",
            "DO $$ BEGIN PERFORM 1; END $$",
            "CALL p()",
            "",
            "   ",
            "-- only a comment",
            "/* unterminated",
            "'quoted'",
            "SELECTED",
        ] {
            assert!(!may_share(sql), "{sql}");
        }
    }
}
