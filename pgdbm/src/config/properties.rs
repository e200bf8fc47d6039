//! Properties of the connection-string parsers, the rendering and the secrecy of passwords.

use crate::test_support::chars;
use percent_encoding::utf8_percent_encode;
use proptest::prelude::*;

use super::DatabaseConfig;
use super::display::USERINFO;
use super::layer::PG_ENV_VARS;
use super::parse::parse_options;

/// Up to `max` of `tokens` or arbitrary characters, concatenated.
fn text(tokens: Vec<&'static str>, max: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            4 => prop::sample::select(tokens).prop_map(str::to_owned),
            1 => prop::collection::vec(any::<char>(), 0..4).prop_map(String::from_iter),
        ],
        0..max,
    )
    .prop_map(|parts| parts.concat())
}

const KEYS: [&str; 12] = [
    "host",
    "port",
    "dbname",
    "user",
    "password",
    "sslmode",
    "options",
    "schema",
    "statement_timeout",
    "max_connections",
    "application_name",
    "bogus",
];

/// Connection strings of either form, rich in what their parsers branch on.
fn connection_string() -> impl Strategy<Value = String> {
    let mut tokens = vec![
        "postgresql://",
        "postgres://",
        "http://",
        "@",
        ":",
        "/",
        "?",
        "&",
        "#",
        "%",
        "%2F",
        "%zz",
        "%C3",
        "%00",
        "[",
        "]",
        "[::1]",
        ",",
        "=",
        "'",
        "''",
        "\\",
        " ",
        "\t",
        "\n",
        "5432",
        "99999",
        "-c ",
        "--a-b=1",
        "x=1",
        "=",
        "1s",
        "ms",
        "é",
        "localhost",
        "/tmp",
    ];
    tokens.extend(KEYS);
    text(tokens, 16)
}

/// A password: every piece (pieces are split at a space or `&`, as a careless string would
/// be) carries the marker, so no piece of it can show unnoticed.
fn password() -> impl Strategy<Value = String> {
    prop::collection::vec(
        (
            chars("abc'\\\"=:@/?#%+é", 6),
            prop::sample::select(vec!["", " ", "&", "  "]),
        ),
        1..4,
    )
    .prop_map(|pieces| {
        pieces
            .into_iter()
            .enumerate()
            .map(|(i, (tail, sep))| {
                let sep = if i == 0 { "" } else { sep };
                format!("{sep}PWMARK{tail}")
            })
            .collect()
    })
}

/// `password` written into a connection string among junk, in various ways.
fn with_password() -> impl Strategy<Value = (String, String)> {
    let junk = || {
        text(
            KEYS.iter()
                .copied()
                .chain(["=", " ", "'", "&", "x", "1"])
                .collect(),
            6,
        )
    };
    // Whole pairs before a key=value password: an open quote or a trailing `key=` would
    // (as in libpq) make the password part of another value, and then it is none.
    let pairs = prop::collection::vec(
        (
            prop::sample::select(KEYS.to_vec()),
            prop::collection::vec(
                prop::sample::select(vec!['a', '1', ':', '/', '-', 'é']),
                1..4,
            )
            .prop_map(String::from_iter),
        ),
        0..3,
    )
    .prop_map(|pairs| {
        pairs
            .into_iter()
            .map(|(k, v)| format!("{k}={v} "))
            .collect::<String>()
    });
    (password(), junk(), pairs, junk(), 0..6u8).prop_map(|(pw, before, pairs, after, form)| {
        let quoted = pw.replace('\\', "\\\\").replace('\'', "\\'");
        let encoded = utf8_percent_encode(&pw, USERINFO).to_string();
        let s = match form {
            0 => format!("{pairs}password={pw} {after}"),
            1 => format!("{pairs}password='{quoted}' {after}"),
            // Unencoded, as people write them; `/`, `?` and `#` end the authority early,
            // for libpq too, and then the rest of the password is no longer one.
            2 if !pw.contains(['/', '?', '#']) => format!("postgresql://u:{pw}@h/db?{after}"),
            2 | 3 => format!("postgresql://u:{encoded}@h/db?{after}"),
            4 => format!("postgresql://u@h/db?{before}&password={pw}&{after}"),
            _ => format!("postgresql://u@h/db?password={encoded}&{after}"),
        };
        (s, pw)
    })
}

fn host() -> impl Strategy<Value = String> {
    prop_oneof![
        (
            chars("abcxyz", 1),
            chars("abz019-", 8),
            prop::collection::vec(chars("ab09", 3), 0..3)
        )
            .prop_map(|(first, rest, labels)| {
                let mut host = format!("{first}{rest}");
                if first.is_empty() {
                    host.insert(0, 'h');
                }
                for label in labels.into_iter().filter(|l| !l.is_empty()) {
                    host.push('.');
                    host.push_str(&label);
                }
                host
            }),
        any::<std::net::Ipv4Addr>().prop_map(|a| a.to_string()),
        any::<std::net::Ipv6Addr>().prop_map(|a| a.to_string()),
        // A Unix socket directory: anything after the slash but a comma or NUL.
        prop::collection::vec(
            any::<char>().prop_filter("socket path", |c| !matches!(c, ',' | '\0')),
            0..12
        )
        .prop_map(|c| format!("/{}", String::from_iter(c))),
    ]
}

/// Names of anything but NUL, never empty.
fn name() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            2 => prop::sample::select(vec![
                ' ', '%', '/', ':', '@', '?', '#', '&', '=', '+', '[', ']', '\\', '\'', '"',
                '.', 'a', 'Z', '0', 'é',
            ]),
            1 => any::<char>().prop_filter("no NUL", |c| *c != '\0'),
        ],
        1..12,
    )
    .prop_map(String::from_iter)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    /// Any connection string (URI or key=value), as the url or as `DATABASE_URL`: a config
    /// or an error, never a panic.
    #[test]
    fn connection_strings_never_panic(s in connection_string()) {
        let _ = DatabaseConfig::builder().url(s.as_str()).build_with(&|_| None);
        let _ = DatabaseConfig::builder()
            .env_from(|name| (name == "DATABASE_URL").then(|| s.clone()))
            .build_with(&|_| None);
    }

    /// Any value in any of the `PG*` variables: a config or an error, never a panic.
    #[test]
    fn environment_never_panics(
        var in prop::sample::select(PG_ENV_VARS.iter().map(|(v, _)| *v).collect::<Vec<_>>()),
        value in connection_string(),
    ) {
        let _ = DatabaseConfig::builder()
            .env_from(|name| (name == var).then(|| value.clone()))
            .build_with(&|_| None);
    }

    /// A config rendered as its URI (`Display`) parses back to the same host, port, user,
    /// database and schema — percent-encoding, IPv6 brackets and socket directories
    /// included. The password is shown as `***`, never as itself.
    #[test]
    fn rendered_uri_parses_back(
        host in host(),
        port in 1..=u16::MAX,
        user in name(),
        database in name(),
        schema in prop::option::of("[a-z_][a-z0-9_]{0,10}"),
        password in prop::option::of(password()),
    ) {
        let mut b = DatabaseConfig::builder().host(host).port(port).user(user).database(database);
        if let Some(s) = &schema {
            b = b.schema(s.as_str());
        }
        if let Some(p) = &password {
            b = b.password(p.as_str());
        }
        let config = b.build_with(&|_| None).expect("valid fields");
        let rendered = config.to_string();
        let back = DatabaseConfig::builder()
            .url(rendered.as_str())
            .build_with(&|_| None);
        let back = match back {
            Ok(back) => back,
            Err(e) => return Err(TestCaseError::fail(format!("{rendered}: {e}"))),
        };
        prop_assert_eq!(back.host(), config.host(), "{}", rendered);
        prop_assert_eq!(back.port(), config.port());
        prop_assert_eq!(back.user(), config.user(), "{}", rendered);
        prop_assert_eq!(back.database(), config.database(), "{}", rendered);
        prop_assert_eq!(back.schema(), config.schema());
        prop_assert_eq!(back.password(), password.as_ref().map(|_| "***"));
        prop_assert!(!rendered.contains("PWMARK"));
        let debug = format!("{:?} {:?}", config, config.to_builder());
        prop_assert!(!debug.contains("PWMARK"), "{}", debug);
    }

    /// A password written into a connection string among junk never shows: not in the
    /// error (`Display` or `Debug`), not in the config or the builder (`Display`, `Debug`).
    #[test]
    fn passwords_never_show((s, pw) in with_password()) {
        let builder = DatabaseConfig::builder().url(s.as_str());
        let env = DatabaseConfig::builder()
            .env_from(|name| (name == "DATABASE_URL").then(|| s.clone()));
        let pg_env = DatabaseConfig::builder().env_from(|name| match name {
            "PGPASSWORD" => Some(pw.clone()),
            // Errors elsewhere: the password must not show in them either.
            "PGPORT" => Some("5x".to_owned()),
            "PGOPTIONS" => Some("-c a.b=1 junk".to_owned()),
            _ => None,
        });
        for b in [builder, env, pg_env] {
            let shown = match b.build_with(&|_| None) {
                Ok(c) => format!("{c} {c:?} {b:?}"),
                Err(e) => format!("{e} {e:?} {b:?}"),
            };
            prop_assert!(!shown.contains("PWMARK"), "{:?} shows the password: {}", s, shown);
        }
    }

    /// `options` written the way the drivers write them (`-c name=value`, values escaped
    /// with `escape_option`) parse back to the same settings, whatever the values hold.
    #[test]
    fn options_parse_back(
        settings in prop::collection::vec(
            (
                "[a-z_][a-z0-9_.]{0,10}",
                prop::collection::vec(
                    prop_oneof![
                        2 => prop::sample::select(vec![
                            ' ', '\t', '\n', '\u{0b}', '\u{0c}', '\r', '\\', '=', '-', '\u{a0}',
                            '\u{2028}', '\u{85}', '\'',
                        ]),
                        1 => any::<char>().prop_filter("no NUL", |c| *c != '\0'),
                    ],
                    0..12,
                ).prop_map(String::from_iter),
            ),
            0..4,
        ),
    ) {
        let options = settings
            .iter()
            .map(|(k, v)| format!("-c {}={}", k, crate::driver::connect::escape_option(v)))
            .collect::<Vec<_>>()
            .join(" ");
        prop_assert_eq!(parse_options(&options), Ok(settings));
    }
}
