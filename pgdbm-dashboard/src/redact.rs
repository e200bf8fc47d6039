//! What the page does to SQL texts before showing them: string literals hidden where they may
//! hold values or secrets.
//!
//! - Other sessions' statements (`pg_stat_activity`: blocking and long-running queries) may have
//!   values written into their text by clients that do not bind parameters, so every string
//!   literal is shown as `'…'`.
//! - The application's own statement texts (the monitor's, which never hold bound values) are
//!   shown as written, except that a statement mentioning `password` has its literals hidden too
//!   (`ALTER ROLE … PASSWORD '…'`).

/// `sql` with every string literal (`'…'`, `E'…'`, dollar-quoted `$tag$…$tag$`) replaced by
/// `'…'`. An unterminated literal (a text cut short) is hidden to its end.
pub(crate) fn mask_literals(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut rest = sql;
    while let Some(pos) = rest.find(['\'', '$']) {
        out.push_str(&rest[..pos]);
        let tail = &rest[pos..];
        if let Some(literal) = tail.strip_prefix('\'') {
            // After `E` (or any word ending in e: hiding too much is the safe side).
            let escapes = out.ends_with(['E', 'e']);
            out.push_str("'…'");
            rest = skip_quoted(literal, escapes);
        } else if let Some((tag_len, body)) = dollar_tag(tail) {
            out.push_str("'…'");
            let tag = &tail[..tag_len];
            rest = match body.find(tag) {
                Some(end) => &body[end + tag.len()..],
                None => "",
            };
        } else {
            // `$1`, or a `$` inside an identifier.
            out.push('$');
            rest = &tail[1..];
        }
    }
    out.push_str(rest);
    out
}

/// After an opening `'`: what follows the closing one (`''` is a quote inside; in an `E'…'`
/// literal, `escapes`, so is `\'`).
fn skip_quoted(s: &str, escapes: bool) -> &str {
    let mut chars = s.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' if escapes => {
                chars.next();
            }
            '\'' if s[i + 1..].starts_with('\'') => {
                chars.next();
            }
            '\'' => return &s[i + 1..],
            _ => {}
        }
    }
    ""
}

/// `$tag$` or `$$` at the start of `s`: the tag's length and what follows it.
fn dollar_tag(s: &str) -> Option<(usize, &str)> {
    let inner = &s[1..];
    let end = inner.find('$')?;
    let tag = &inner[..end];
    let valid = tag
        .chars()
        .enumerate()
        .all(|(i, c)| c == '_' || c.is_alphabetic() || (i > 0 && c.is_ascii_digit()));
    valid.then(|| (end + 2, &s[end + 2..]))
}

/// The application's statement text as shown: literals hidden only when it mentions a password.
pub(crate) fn mask_secrets(sql: &str) -> String {
    if sql.to_ascii_lowercase().contains("password") {
        mask_literals(sql)
    } else {
        sql.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_hidden() {
        assert_eq!(
            mask_literals("SELECT * FROM t WHERE a = 'x''y' AND b = $1"),
            "SELECT * FROM t WHERE a = '…' AND b = $1"
        );
        assert_eq!(mask_literals("SELECT E'a\\'"), "SELECT E'…'");
        assert_eq!(mask_literals("SELECT E'pa\\'ss', 1"), "SELECT E'…', 1");
        assert_eq!(mask_literals("SELECT 'a\\', 1"), "SELECT '…', 1");
        assert_eq!(mask_literals("SELECT $$ secret $$, 2"), "SELECT '…', 2");
        assert_eq!(mask_literals("SELECT $t$ a $ b $t$"), "SELECT '…'");
        assert_eq!(mask_literals("SELECT 'cut sho"), "SELECT '…'");
        assert_eq!(mask_literals("SELECT $1, $2"), "SELECT $1, $2");
        assert_eq!(mask_literals("SELECT ab$c"), "SELECT ab$c");
    }

    #[test]
    fn passwords_hidden() {
        assert_eq!(
            mask_secrets("ALTER ROLE app PASSWORD 'hunter2'"),
            "ALTER ROLE app PASSWORD '…'"
        );
        assert_eq!(
            mask_secrets("SELECT * FROM t WHERE s = 'open'"),
            "SELECT * FROM t WHERE s = 'open'"
        );
    }
}
