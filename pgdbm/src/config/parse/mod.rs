//! Connection strings: a `postgresql://` URI ([`uri`]) or libpq `key=value` pairs
//! ([`key_value`]), split into parameters that [`params`] applies to a [`Layer`].

mod key_value;
mod params;
mod uri;

use std::fmt;

use key_value::parse_key_value;
pub(super) use params::apply_param;
#[cfg(test)]
pub(super) use params::parse_options;
use uri::parse_uri;

use super::layer::Layer;
use crate::error::{Error, Result};

/// Where a value came from, for error messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Origin {
    /// [`DatabaseConfigBuilder::url`].
    Url,
    /// The `DATABASE_URL` variable.
    DatabaseUrl,
    /// A `PG*` variable (the variable is the error's field).
    Env,
    /// The `direct_url` setting.
    DirectUrl,
}

impl Origin {
    /// The field naming the whole string, for errors that concern no single key.
    fn whole(self) -> &'static str {
        match self {
            Origin::Url => "url",
            Origin::DatabaseUrl | Origin::Env => "DATABASE_URL",
            Origin::DirectUrl => "direct_url",
        }
    }

    fn suffix(self) -> &'static str {
        match self {
            Origin::DatabaseUrl => " (in DATABASE_URL)",
            Origin::DirectUrl => " (in direct_url)",
            Origin::Url | Origin::Env => "",
        }
    }

    fn error(self, field: &str, message: impl fmt::Display) -> Error {
        Error::config(field, format!("{message}{}", self.suffix()))
    }
}

/// One `key=value` of a connection string. `after_password` marks the pair right after an
/// unquoted (kv form) or query (URI) password: when the password had an unescaped space or `&`,
/// this "key" is really the rest of the password, so its errors must not quote it.
struct Param {
    key: String,
    value: String,
    after_password: bool,
}

pub(super) fn parse_connection_string(s: &str, origin: Origin) -> Result<Layer> {
    let s = s.trim();
    let lower = s.get(..13).unwrap_or(s).to_ascii_lowercase();
    let params = if lower.starts_with("postgresql://") || lower.starts_with("postgres://") {
        parse_uri(s, origin)?
    } else if s.is_empty() {
        return Err(origin.error(origin.whole(), "the connection string is empty"));
    } else if s.find("://").is_some_and(|i| !s[..i].contains(['=', ' '])) {
        return Err(origin.error(
            origin.whole(),
            "unsupported URI scheme; expected postgresql:// or postgres://",
        ));
    } else if s.contains('=') {
        parse_key_value(s, origin)?
    } else {
        return Err(origin.error(
            origin.whole(),
            "not a connection string; expected a postgresql:// URI or key=value pairs",
        ));
    };
    let mut layer = Layer::default();
    for param in params {
        let result = apply_param(&mut layer, &param.key, &param.value, &param.key, origin);
        if param.after_password {
            result.map_err(|_| {
                origin.error(
                    "password",
                    "invalid text after the password; quote a password that contains spaces \
                     (password='…') or percent-encode it in a URI",
                )
            })?;
        } else {
            result?;
        }
    }
    Ok(layer)
}

fn is_plain_word(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DatabaseConfig;
    use crate::config::test_support::{build, env, field, url};

    #[test]
    fn multiple_hosts_are_rejected() {
        for s in [
            "postgresql://h1,h2/db",
            "postgresql://h1:5432,h2:5433/db",
            "postgresql://u:pw@h1,h2/db",
            "postgresql:///db?host=h1,h2",
            "postgresql://h/db?port=1,2",
            "host=h1,h2 dbname=db",
        ] {
            let err = url(s).unwrap_err();
            assert!(
                err.to_string().contains("multiple hosts are not supported"),
                "{s}: {err}"
            );
            let Error::Config { field, .. } = err else {
                panic!()
            };
            assert!(field == "host" || field == "port", "{s}: {field}");
        }
        let vars = env(&[("PGHOST", "a,b")]);
        assert_eq!(
            field(build(DatabaseConfig::builder().env_from(vars))),
            "PGHOST"
        );
        assert_eq!(field(build(DatabaseConfig::builder().host("a,b"))), "host");
    }

    #[test]
    fn pieces_of_an_unquoted_password_never_show() {
        // `password=correct horse=battery staple`: every word after the password may be a
        // piece of it (found by `properties::passwords_never_show`).
        for s in [
            "password=PWa PWb=c PWd",
            "password=PWa PWb=c PWd='x",
            "host=h password=PWa PWb PWc",
            "postgresql://u@h/db?password=PWa&PWb=%aa",
        ] {
            let err = DatabaseConfig::from_url(s).expect_err("not a valid string");
            let shown = format!("{err} {err:?}");
            assert!(!shown.contains("PW"), "{s}: {shown}");
        }
    }
}
