//! Scanning SQL text as PostgreSQL's lexer sees it, for code that looks for something in a
//! statement (a `;` between statements, a `$1::type` cast) and must not find it inside a string,
//! a quoted identifier, a comment or a dollar-quoted body.
//!
//! [`skip_opaque`] recognises those at a position: `'…'` strings (a doubled quote stays inside),
//! `E'…'` strings (backslash escapes too), `"…"` identifiers, `--` line comments, nested
//! `/* … */` block comments, and `$$…$$` / `$tag$…$tag$` bodies (a `$` right after an
//! identifier byte, or followed by a digit, starts none: `a$b`, `$1`).

/// What [`skip_opaque`] passed over, with the index right after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opaque {
    /// A comment: not code.
    Comment(usize),
    /// A string, quoted identifier or dollar-quoted body: code, whose content is not.
    Quoted(usize),
}

/// `true` for a byte that continues an identifier (ASCII letters, digits, `_`, and any non-ASCII
/// byte). PostgreSQL also allows `$` after the first character, which a caller scanning words
/// adds itself.
pub fn is_ident_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b >= 0x80
}

/// If a string, quoted identifier, comment or dollar-quoted body starts at `i` in `bytes`, what
/// it is and the index after it (the end of `bytes` when it is not closed).
pub fn skip_opaque(bytes: &[u8], i: usize) -> Option<Opaque> {
    let after_ident = i > 0 && is_ident_byte(bytes[i - 1]);
    match *bytes.get(i)? {
        b'\'' => {
            let escapes = after_ident
                && matches!(bytes[i - 1], b'E' | b'e')
                && (i < 2 || !is_ident_byte(bytes[i - 2]));
            Some(Opaque::Quoted(skip_quoted(bytes, i + 1, b'\'', escapes)))
        }
        b'"' => Some(Opaque::Quoted(skip_quoted(bytes, i + 1, b'"', false))),
        b'-' if bytes.get(i + 1) == Some(&b'-') => Some(Opaque::Comment(
            find(bytes, i, b"\n").map_or(bytes.len(), |end| end + 1),
        )),
        b'/' if bytes.get(i + 1) == Some(&b'*') => {
            Some(Opaque::Comment(skip_block_comment(bytes, i + 2)))
        }
        b'$' if !after_ident => {
            let tag_end = dollar_tag_end(bytes, i)?;
            let tag = &bytes[i..tag_end];
            Some(Opaque::Quoted(
                find(bytes, tag_end, tag).map_or(bytes.len(), |end| end + tag.len()),
            ))
        }
        _ => None,
    }
}

/// The end (exclusive) of a dollar-quote tag starting at `start` (a `$`), if there is one there:
/// `$$` or `$name$` where `name` is an identifier not starting with a digit.
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

/// The index after a quoted run whose opening quote was just before `i` (doubled quotes continue
/// the run; with `escapes`, so does a backslash escape).
fn skip_quoted(bytes: &[u8], mut i: usize, quote: u8, escapes: bool) -> usize {
    while i < bytes.len() {
        let b = bytes[i];
        if escapes && b == b'\\' {
            i += 2;
        } else if b == quote {
            if bytes.get(i + 1) != Some(&quote) {
                return i + 1;
            }
            i += 2;
        } else {
            i += 1;
        }
    }
    bytes.len()
}

/// The index after a (nested) block comment whose `/*` ended just before `i`.
fn skip_block_comment(bytes: &[u8], mut i: usize) -> usize {
    let mut depth = 1;
    while i < bytes.len() {
        if bytes[i..].starts_with(b"/*") {
            depth += 1;
            i += 2;
        } else if bytes[i..].starts_with(b"*/") {
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

/// The first index at or after `from` where `needle` starts.
pub fn find(haystack: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    haystack
        .get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| from + p)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn skip(sql: &str, i: usize) -> Option<Opaque> {
        skip_opaque(sql.as_bytes(), i)
    }

    #[test]
    fn quoted_runs_and_comments_are_passed_over() {
        assert_eq!(skip("'a''b' x", 0), Some(Opaque::Quoted(6)));
        assert_eq!(skip(r"E'a\'b' x", 1), Some(Opaque::Quoted(7)));
        assert_eq!(skip(r"'a\' x", 0), Some(Opaque::Quoted(4)));
        assert_eq!(skip("\"a\"\"b\" x", 0), Some(Opaque::Quoted(6)));
        assert_eq!(skip("-- c\nx", 0), Some(Opaque::Comment(5)));
        assert_eq!(skip("/* a /* b */ c */x", 0), Some(Opaque::Comment(17)));
        assert_eq!(skip("$f$ ; $f$x", 0), Some(Opaque::Quoted(9)));
        assert_eq!(skip("$$;$$x", 0), Some(Opaque::Quoted(5)));
        assert_eq!(skip("x $$a$$", 2), Some(Opaque::Quoted(7)));
    }

    #[test]
    fn parameters_and_identifier_dollars_are_code() {
        assert_eq!(skip("$1::int", 0), None);
        assert_eq!(skip("a$b$ c", 1), None);
        assert_eq!(skip("x - y", 2), None);
        assert_eq!(skip("x / y", 2), None);
        assert_eq!(skip("", 0), None);
    }
}
