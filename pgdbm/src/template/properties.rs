//! Properties of the expander on generated and arbitrary text.

use super::{ExpandedSql, Templates};
use crate::test_support::chars;
use proptest::prelude::*;

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
        let bare_schema = |j: usize| schema.is_none() && matches!(segments[j].0, Segment::Schema);
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
