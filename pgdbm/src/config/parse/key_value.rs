//! libpq's `key=value` form.

use super::{Origin, Param, is_plain_word};
use crate::error::Result;

/// Tokenizes libpq's `key=value` form: pairs separated by whitespace, whitespace allowed around
/// `=`, values either bare (ending at whitespace) or single-quoted. A backslash escapes the next
/// character in both; inside quotes `''` also stands for one quote (an extension of libpq).
pub(super) fn parse_key_value(s: &str, origin: Origin) -> Result<Vec<Param>> {
    let chars: Vec<char> = s.chars().collect();
    let len = chars.len();
    let mut i = 0;
    let mut params = Vec::new();
    let mut after_bare_password = false;
    // After an unquoted password, any word may be a piece of it (`password=a b=c d`): words
    // are no longer quoted in errors, nor named as the field.
    let mut bare_password_seen = false;
    let skip_whitespace = |i: &mut usize| {
        while *i < len && chars[*i].is_whitespace() {
            *i += 1;
        }
    };
    loop {
        skip_whitespace(&mut i);
        if i == len {
            break;
        }
        let start = i;
        while i < len && !chars[i].is_whitespace() && chars[i] != '=' {
            i += 1;
        }
        let key: String = chars[start..i].iter().collect();
        skip_whitespace(&mut i);
        if i == len || chars[i] != '=' {
            return Err(if after_bare_password {
                origin.error(
                    "password",
                    "invalid text after the password; quote a password that contains spaces \
                     (password='…')",
                )
            } else if is_plain_word(&key) && !bare_password_seen {
                origin.error(
                    origin.whole(),
                    format!("missing '=' after {key} (expected key=value)"),
                )
            } else {
                origin.error(origin.whole(), "a word without '=' (expected key=value)")
            });
        }
        if key.is_empty() {
            return Err(origin.error(origin.whole(), "missing key before '='"));
        }
        i += 1; // '='
        skip_whitespace(&mut i);

        let mut value = String::new();
        let quoted = i < len && chars[i] == '\'';
        if quoted {
            i += 1;
            loop {
                if i == len {
                    let field = if bare_password_seen || !is_plain_word(&key) {
                        origin.whole()
                    } else {
                        &key
                    };
                    return Err(origin.error(field, "unterminated quoted value (missing ')"));
                }
                match chars[i] {
                    '\\' if i + 1 < len => {
                        value.push(chars[i + 1]);
                        i += 2;
                    }
                    '\'' if i + 1 < len && chars[i + 1] == '\'' => {
                        value.push('\'');
                        i += 2;
                    }
                    '\'' => {
                        i += 1;
                        break;
                    }
                    c => {
                        value.push(c);
                        i += 1;
                    }
                }
            }
        } else {
            while i < len && !chars[i].is_whitespace() {
                if chars[i] == '\\' {
                    // libpq drops a trailing lone backslash.
                    if i + 1 < len {
                        value.push(chars[i + 1]);
                    }
                    i = (i + 2).min(len);
                } else {
                    value.push(chars[i]);
                    i += 1;
                }
            }
        }
        let is_password = key == "password";
        params.push(Param {
            key,
            value,
            after_password: after_bare_password,
        });
        after_bare_password = is_password && !quoted;
        bare_password_seen |= after_bare_password;
    }
    Ok(params)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SslMode;
    use crate::config::test_support::url;
    use crate::error::Error;

    #[test]
    fn key_value_form() {
        let c = url(
            r"host=db.internal port = 6543 dbname= app user =u password='it''s a \'quote\' and \\' sslmode=require",
        )
        .unwrap();
        assert_eq!(c.host(), "db.internal");
        assert_eq!(c.port(), 6543);
        assert_eq!(c.database(), "app");
        assert_eq!(c.user(), "u");
        assert_eq!(c.password(), Some(r"it's a 'quote' and \"));
        assert_eq!(c.ssl().mode, SslMode::Require);

        let c = url("  host=/tmp\tapplication_name=''  dbname='my db'  ").unwrap();
        assert_eq!(c.host(), "/tmp");
        assert_eq!(c.application_name(), "");
        assert_eq!(c.database(), "my db");

        // Bare values: a backslash escapes the next character; quotes inside are literal.
        let c = url(r"password=a\ b'c\\d dbname=x").unwrap();
        assert_eq!(c.password(), Some(r"a b'c\d"));
        assert_eq!(c.database(), "x");

        // Quoted values may be followed directly by the next pair; the last duplicate wins.
        let c = url("dbname='a'user=b dbname=c").unwrap();
        assert_eq!((c.database(), c.user()), ("c", "b"));

        // A trailing `key=` has an empty value (ignored).
        let c = url("dbname=app port=").unwrap();
        assert_eq!(c.port(), 5432);
    }

    #[test]
    fn key_value_tokenizer() {
        let kv = |s: &str| {
            parse_key_value(s, Origin::Url).map(|ps| {
                ps.into_iter()
                    .map(|p| (p.key, p.value, p.after_password))
                    .collect::<Vec<_>>()
            })
        };
        let pair = |k: &str, v: &str| (k.to_owned(), v.to_owned(), false);
        assert_eq!(kv("").unwrap(), vec![]);
        assert_eq!(kv("a=1").unwrap(), vec![pair("a", "1")]);
        assert_eq!(
            kv(" a = 1  b=\t2 ").unwrap(),
            vec![pair("a", "1"), pair("b", "2")]
        );
        assert_eq!(kv("a='' b=2").unwrap(), vec![pair("a", ""), pair("b", "2")]);
        assert_eq!(kv("a='x y'").unwrap(), vec![pair("a", "x y")]);
        assert_eq!(kv(r"a='x\'y'").unwrap(), vec![pair("a", "x'y")]);
        assert_eq!(kv("a='x''y'").unwrap(), vec![pair("a", "x'y")]);
        assert_eq!(kv(r"a='x\\'").unwrap(), vec![pair("a", r"x\")]);
        assert_eq!(kv(r"a='\n'").unwrap(), vec![pair("a", "n")]);
        assert_eq!(kv(r"a=x\").unwrap(), vec![pair("a", "x")]);
        assert_eq!(kv("a=é=ü").unwrap(), vec![pair("a", "é=ü")]);
        // As in libpq, whitespace after '=' is skipped, so `a= b=1` gives a the value "b=1".
        assert_eq!(kv("a= b=1").unwrap(), vec![pair("a", "b=1")]);
        assert_eq!(
            kv("password=x y=1").unwrap(),
            vec![
                pair("password", "x"),
                ("y".to_owned(), "1".to_owned(), true)
            ]
        );
        assert_eq!(
            kv("password='x' y=1").unwrap(),
            vec![pair("password", "x"), pair("y", "1")]
        );

        let err_field = |s: &str| match kv(s) {
            Err(Error::Config { field, .. }) => field,
            other => panic!("{s}: {:?}", other.map(|v| v.len())),
        };
        assert_eq!(err_field("a='unterminated"), "a");
        assert_eq!(err_field(r"a='ends with escape\'"), "a");
        assert_eq!(err_field("=1"), "url");
        assert_eq!(err_field("a=1 b"), "url");
        assert_eq!(err_field("a=1 b c=2"), "url");
        assert!(
            kv("a=1 b")
                .unwrap_err()
                .to_string()
                .contains("missing '=' after b")
        );
    }
}
