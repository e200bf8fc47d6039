//! Keeping values out of error texts: each bound value's text hidden wherever the server quoted it.
//!
//! The server quotes its input in many messages, whatever their SQLSTATE class: `invalid input
//! syntax for type integer: "…"` (22P02), `relation "…" does not exist` (42P01, from a
//! `$1::regclass` or `nextval($1)`), `Key (email)=(…) already exists.` (23505's `DETAIL`),
//! `Failing row contains (…)` (23502/23514, each value cut to 64 bytes)… Only the client knows
//! which parts of such a text are values it sent, so the driver hides them (through
//! [`Error::redact_params`](crate::Error::redact_params)) before the error is handed out.
//!
//! How a value is found in a text:
//!
//! * its text rendering (strings as they are; numbers, dates, UUIDs, `\x…` hex for bytea; every
//!   element of an array and every string and number inside JSON), also trimmed and with its
//!   double quotes removed (an identifier the server parsed out of it loses them);
//! * compared ignoring ASCII case (the server folds unquoted identifiers to lower case);
//! * a value of fewer than [`SHORT_VALUE`] characters only where it stands as a whole word (not
//!   next to a letter, digit or `_`), so that a value `1` or `a` does not hide every digit or
//!   letter of the message;
//! * a longer value by its first [`KEY_BYTES`] bytes, the hidden part then extended as far as the
//!   text goes on matching the value: PostgreSQL cuts long values in some texts.

use std::borrow::Cow;
use std::collections::HashSet;

use crate::value::Value;

/// What a hidden value is replaced with.
pub(crate) const HIDDEN: &str = "<hidden>";

/// Values shorter than this (in characters) are hidden only where they stand as a whole word.
pub(crate) const SHORT_VALUE: usize = 8;

/// A long value is found by this many of its first bytes (at most; cut on a character boundary).
/// PostgreSQL cuts each value of a `Failing row contains (…)` line at 64 bytes.
pub(crate) const KEY_BYTES: usize = 48;

/// The texts to hide.
#[derive(Debug, Default)]
pub(crate) struct Secrets {
    texts: Vec<String>,
    seen: HashSet<String>,
}

impl Secrets {
    /// `true` when there is nothing to hide.
    pub(crate) fn is_empty(&self) -> bool {
        self.texts.is_empty()
    }

    /// Adds the text renderings of a value (nothing for `NULL` and booleans).
    pub(crate) fn add_value(&mut self, value: &Value) {
        match value {
            Value::Null | Value::Bool(_) => {}
            Value::Int2(v) => self.add_text(&v.to_string()),
            Value::Int4(v) => self.add_text(&v.to_string()),
            Value::Int8(v) => self.add_text(&v.to_string()),
            Value::Float4(v) => self.add_text(&v.to_string()),
            Value::Float8(v) => self.add_text(&v.to_string()),
            Value::Text(v) => self.add_text(v),
            Value::Bytea(v) => {
                let mut hex = String::with_capacity(2 + 2 * v.len());
                hex.push_str("\\x");
                for b in v {
                    hex.push_str(&format!("{b:02x}"));
                }
                self.add_text(&hex);
            }
            Value::Json(v) => self.add_json(v),
            Value::Uuid(v) => self.add_text(&v.to_string()),
            #[cfg(feature = "chrono")]
            Value::Date(v) => self.add_text(&v.to_string()),
            #[cfg(feature = "chrono")]
            Value::Time(v) => self.add_text(&v.to_string()),
            #[cfg(feature = "chrono")]
            Value::Timestamp(v) => self.add_text(&v.to_string()),
            #[cfg(feature = "chrono")]
            Value::TimestampTz(v) => {
                self.add_text(&v.to_string());
                self.add_text(&v.naive_utc().to_string());
            }
            #[cfg(feature = "decimal")]
            Value::Numeric(v) => self.add_text(&v.to_string()),
            Value::Interval(v) => {
                self.add_text(&v.microseconds.to_string());
                if v.days != 0 {
                    self.add_text(&format!("{} days", v.days));
                }
                if v.months != 0 {
                    self.add_text(&format!("{} mons", v.months));
                }
            }
            // A special value of the type, like a boolean: nothing of the caller's.
            #[cfg(feature = "chrono")]
            Value::Infinity { .. } => {}
            Value::Array { items, .. } => {
                for item in items {
                    self.add_value(item);
                }
            }
        }
    }

    /// Adds a JSON document: its compact text, and every string and number in it (object keys
    /// are left out: they are mostly field names).
    pub(crate) fn add_json(&mut self, json: &serde_json::Value) {
        if matches!(
            json,
            serde_json::Value::Array(_) | serde_json::Value::Object(_)
        ) {
            self.add_text(&json.to_string());
        }
        self.add_json_leaves(json);
    }

    fn add_json_leaves(&mut self, json: &serde_json::Value) {
        match json {
            serde_json::Value::Null | serde_json::Value::Bool(_) => {}
            serde_json::Value::Number(n) => self.add_text(&n.to_string()),
            serde_json::Value::String(s) => self.add_text(s),
            serde_json::Value::Array(items) => {
                for item in items {
                    self.add_json_leaves(item);
                }
            }
            serde_json::Value::Object(map) => {
                for item in map.values() {
                    self.add_json_leaves(item);
                }
            }
        }
    }

    /// Adds a text, trimmed, and without its double quotes.
    pub(crate) fn add_text(&mut self, text: &str) {
        self.push(text);
        self.push(text.trim());
        if text.contains('"') {
            self.push(&text.replace('"', ""));
        }
    }

    fn push(&mut self, text: &str) {
        if !text.is_empty() && !self.seen.contains(text) {
            self.seen.insert(text.to_owned());
            self.texts.push(text.to_owned());
        }
    }

    /// `text` with every occurrence of a secret replaced by [`HIDDEN`].
    pub(crate) fn hide<'t>(&self, text: &'t str) -> Cow<'t, str> {
        let ranges = self.ranges(text);
        if ranges.is_empty() {
            return Cow::Borrowed(text);
        }
        let mut out = String::with_capacity(text.len());
        let mut at = 0;
        for (start, end) in ranges {
            out.push_str(&text[at..start]);
            out.push_str(HIDDEN);
            at = end;
        }
        out.push_str(&text[at..]);
        Cow::Owned(out)
    }

    /// Hides the secrets in `field`, in place.
    pub(crate) fn hide_in(&self, field: &mut String) {
        if let Cow::Owned(hidden) = self.hide(field) {
            *field = hidden;
        }
    }

    /// Hides the secrets in an optional field, in place.
    pub(crate) fn hide_in_opt(&self, field: &mut Option<String>) {
        if let Some(field) = field {
            self.hide_in(field);
        }
    }

    /// The byte ranges of `text` to hide, sorted, merged where they overlap or touch.
    fn ranges(&self, text: &str) -> Vec<(usize, usize)> {
        let mut ranges = Vec::new();
        for secret in &self.texts {
            find(text, secret, &mut ranges);
        }
        ranges.sort_unstable();
        let mut merged: Vec<(usize, usize)> = Vec::with_capacity(ranges.len());
        for (start, end) in ranges {
            match merged.last_mut() {
                Some(last) if start <= last.1 => last.1 = last.1.max(end),
                _ => merged.push((start, end)),
            }
        }
        merged
    }
}

fn is_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Pushes the ranges of `text` where `secret` stands (see the module docs).
fn find(text: &str, secret: &str, out: &mut Vec<(usize, usize)>) {
    let short = secret.chars().nth(SHORT_VALUE - 1).is_none();
    let key = if short || secret.len() <= KEY_BYTES {
        secret
    } else {
        let mut cut = KEY_BYTES;
        while !secret.is_char_boundary(cut) {
            cut -= 1;
        }
        &secret[..cut]
    };
    let (hay, needle) = (text.as_bytes(), key.as_bytes());
    if needle.len() > hay.len() {
        return;
    }
    let first_word = secret.chars().next().is_some_and(is_word);
    let last_word = secret.chars().next_back().is_some_and(is_word);
    let mut start = 0;
    while start + needle.len() <= hay.len() {
        if !text.is_char_boundary(start)
            || !hay[start..start + needle.len()].eq_ignore_ascii_case(needle)
        {
            start += 1;
            continue;
        }
        let mut end = start + needle.len();
        if short {
            let before = text[..start].chars().next_back().is_some_and(is_word);
            let after = text[end..].chars().next().is_some_and(is_word);
            if (first_word && before) || (last_word && after) {
                start += 1;
                continue;
            }
        } else {
            let rest = &secret.as_bytes()[needle.len()..];
            let more = rest
                .iter()
                .zip(&hay[end..])
                .take_while(|(a, b)| a.eq_ignore_ascii_case(b))
                .count();
            end += more;
            while !text.is_char_boundary(end) {
                end -= 1;
            }
        }
        out.push((start, end));
        start = end.max(start + 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secrets(values: &[Value]) -> Secrets {
        let mut s = Secrets::default();
        for v in values {
            s.add_value(v);
        }
        s
    }

    fn text(v: &str) -> Value {
        Value::Text(v.to_owned())
    }

    #[test]
    fn quotes_inside_a_value() {
        let s = secrets(&[text("x\"SECRET\"y")]);
        let out = s.hide("invalid input syntax for type integer: \"x\"SECRET\"y\"");
        assert_eq!(out, "invalid input syntax for type integer: \"<hidden>\"");
    }

    #[test]
    fn folded_and_unquoted_identifiers() {
        let s = secrets(&[text("SecretSeq_42")]);
        assert_eq!(
            s.hide("relation \"secretseq_42\" does not exist"),
            "relation \"<hidden>\" does not exist"
        );
        // The value with its quotes is found as it is; without them, as the server parsed it.
        let s = secrets(&[text("\"My Secret Seq\"")]);
        assert_eq!(
            s.hide("relation \"My Secret Seq\" does not exist"),
            "relation <hidden> does not exist"
        );
        assert_eq!(
            s.hide("relation \"public.My Secret Seq\" does not exist"),
            "relation \"public.<hidden>\" does not exist"
        );
        let s = secrets(&[text("  padded-secret ")]);
        assert_eq!(s.hide("value \"padded-secret\""), "value \"<hidden>\"");
    }

    #[test]
    fn values_in_detail_lines() {
        let s = secrets(&[Value::Int4(7), text("alice@example.com")]);
        assert_eq!(
            s.hide("Key (id, email)=(7, alice@example.com) already exists."),
            "Key (id, email)=(<hidden>, <hidden>) already exists."
        );
    }

    #[test]
    fn long_values_cut_by_the_server() {
        let long = format!("SECRET{}", "x".repeat(100));
        let s = secrets(&[text(&long)]);
        let cut = &long[..64];
        let detail = format!("Failing row contains (1, {cut}...).");
        assert_eq!(s.hide(&detail), "Failing row contains (1, <hidden>...).");
    }

    #[test]
    fn short_values_only_as_whole_words() {
        let s = secrets(&[Value::Int4(1), text("a")]);
        let message = "value too long for type character varying(10) at a1 and 1 or \"a\"";
        assert_eq!(
            s.hide(message),
            "value too long for type character varying(10) at a1 and <hidden> or \"<hidden>\""
        );
        // A long value is hidden wherever it appears.
        let s = secrets(&[text("s3cr3tvalue")]);
        assert_eq!(s.hide("xs3cr3tvaluex"), "x<hidden>x");
    }

    #[test]
    fn json_arrays_and_bytes() {
        let s = secrets(&[
            Value::Json(serde_json::json!({"k": ["deep-secret", 12345]})),
            Value::Array {
                element: crate::Kind::Text,
                items: vec![text("elem-secret"), Value::Null],
            },
            Value::Bytea(vec![0xde, 0xad]),
        ]);
        assert_eq!(
            s.hide("a deep-secret, 12345, elem-secret and \\xdead"),
            "a <hidden>, <hidden>, <hidden> and <hidden>"
        );
    }

    #[test]
    fn nothing_to_hide() {
        let s = secrets(&[Value::Null, Value::Bool(true)]);
        assert!(s.is_empty());
        let message = "relation \"todo.events\" does not exist";
        assert!(matches!(s.hide(message), Cow::Borrowed(t) if t == message));
        let s = secrets(&[text("other")]);
        assert_eq!(s.hide(message), message);
    }

    #[test]
    fn a_value_named_hidden_does_not_loop() {
        let s = secrets(&[text("<hidden>"), text("hidden")]);
        assert_eq!(s.hide("x <hidden> y"), "x <hidden> y");
    }

    #[test]
    fn multibyte_text() {
        let s = secrets(&[text("géheimnis-ü")]);
        assert_eq!(s.hide("« géheimnis-ü »"), "« <hidden> »");
        let long = "é".repeat(60);
        let s = secrets(&[text(&long)]);
        assert_eq!(s.hide(&format!("a{long}b")), "a<hidden>b");
    }
}
