//! Shared pieces for driver crates: connecting with retry and backoff, the connect error that
//! names its target, the record of the last connect failure behind a pool timeout, the marker
//! for TLS failures that are not worth a retry ([`TlsError`]), and escaping for libpq's
//! `options` string; and the gate every checkout passes ([`CheckoutGate`]: tasks waiting now, woken
//! when the pool closes). Written once here so every driver behaves the same.

use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;

use crate::config::DatabaseConfig;
use crate::error::{BoxError, Error, ErrorKind, Result};

/// A pooled connection that has been idle at least this long is checked before it is handed
/// out, by drivers that cannot otherwise tell whether the server closed it: a round trip (sqlx's
/// `ping`), after which a dead connection is replaced instead of failing the caller's statement.
/// Connections in steady use skip the check, so it costs nothing on the hot path. (The
/// tokio-postgres driver needs no round trip: its connection task notices a closed socket by
/// itself, and checkout skips closed connections.)
pub const VALIDATE_AFTER_IDLE: Duration = Duration::from_secs(1);

/// Where a pool connects, for error messages (never the password).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectTarget {
    /// Host name, IP address or socket directory.
    pub host: String,
    /// Port.
    pub port: u16,
    /// Database name.
    pub database: String,
    /// Role (user name); it never appears in errors.
    pub user: String,
}

impl ConnectTarget {
    /// The target of `config`.
    pub fn new(config: &DatabaseConfig) -> Self {
        ConnectTarget {
            host: config.host().to_owned(),
            port: config.port(),
            database: config.database().to_owned(),
            user: config.user().to_owned(),
        }
    }

    /// An [`Error::Connect`] for this target.
    pub fn error(&self, attempts: u32, source: BoxError) -> Error {
        Error::Connect {
            host: self.host.clone(),
            port: self.port,
            database: self.database.clone(),
            attempts,
            source,
        }
    }
}

/// The last connect failure of a pool (rendered: it names no password), so that a pool timeout
/// can say why no connection could be made.
#[derive(Debug, Default)]
pub struct LastConnectError(Mutex<Option<String>>);

impl LastConnectError {
    /// Records the outcome of a connect attempt (`None` after a success).
    pub fn record(&self, failure: Option<String>) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = failure;
    }

    /// The last failure, if the last attempt failed.
    pub fn get(&self) -> Option<String> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// An [`Error::PoolTimeout`] whose source is the last connect failure, if any.
    pub fn pool_timeout(&self, target: &ConnectTarget, waited: Duration) -> Error {
        Error::PoolTimeout {
            waited,
            source: self.get().map(|msg| Box::new(target.error(1, msg.into()))),
        }
    }
}

/// A TLS failure at connect that retrying cannot fix: the server's certificate was refused
/// (untrusted issuer, wrong host name, expired…), the handshake ended with a TLS alert, or the
/// server does not support TLS where the `ssl_mode` requires it.
///
/// Drivers return it as the source of [`Error::Connect`], so that [`connect_with_retry`] gives
/// up at once ([`is_permanent`]) and the message says what failed. A connection that breaks
/// during the handshake (an I/O error) is not a `TlsError`: that may be worth a retry.
///
/// ```
/// use pgdbm::BoxError;
/// use pgdbm::driver::{TlsError, is_permanent};
///
/// let cause: BoxError = Box::new(TlsError::new("server certificate not trusted: unknown issuer"));
/// assert!(is_permanent(&cause));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsError {
    message: String,
}

impl TlsError {
    /// A TLS failure described by `message` (a sentence saying what failed; no secrets).
    pub fn new(message: impl Into<String>) -> Self {
        TlsError {
            message: message.into(),
        }
    }

    /// What failed.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl std::fmt::Display for TlsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for TlsError {}

/// `true` for connect failures that retrying cannot fix: authentication, an unknown database,
/// invalid settings (the server's SQLSTATE classes 28, 3D, 42 and 22023), a configuration the
/// driver finds wanting ([`Error::Config`], e.g. no password where the server asks for one), and
/// [`TlsError`]s.
pub fn is_permanent(cause: &BoxError) -> bool {
    if cause.is::<TlsError>() {
        return true;
    }
    cause.downcast_ref::<Error>().is_some_and(|e| {
        matches!(e, Error::Config { .. })
            || matches!(
                e.kind(),
                Some(ErrorKind::InvalidAuthorization | ErrorKind::InvalidCatalogName)
            )
            || e.code()
                .is_some_and(|c| c.starts_with("42") || c == "22023")
    })
}

/// Runs `attempt` until it succeeds, following the config's [`RetryPolicy`](crate::RetryPolicy):
/// a failed attempt is retried after the policy's delay, except a [permanent](is_permanent) one.
///
/// # Errors
///
/// [`Error::Connect`] naming the target and the attempts made, with the last cause as source.
pub async fn connect_with_retry<T, F, Fut>(config: &DatabaseConfig, mut attempt: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = std::result::Result<T, BoxError>>,
{
    let retry = config.retry();
    let mut made = 0;
    loop {
        made += 1;
        match attempt().await {
            Ok(value) => return Ok(value),
            Err(cause) if made < retry.attempts && !is_permanent(&cause) => {
                let delay = retry.delay_after(made);
                tracing::warn!(
                    attempt = made,
                    host = %config.host(),
                    port = config.port(),
                    error = %cause,
                    "pgdbm: connect failed, retrying in {delay:?}"
                );
                tokio::time::sleep(delay).await;
            }
            Err(cause) => return Err(ConnectTarget::new(config).error(made, cause)),
        }
    }
}

/// The characters PostgreSQL splits a startup `options` string at: C's `isspace` in the C
/// locale (space, `\t`, `\n`, `\v`, `\f`, `\r`). The server's `pg_split_opts` (postinit.c)
/// ends a word at any of them unless it is escaped with a backslash.
pub(crate) const OPTION_WHITESPACE: [char; 6] = [' ', '\t', '\n', '\u{0b}', '\u{0c}', '\r'];

/// Escapes a value for libpq's `options` string (`-c name=value`): every character the server
/// splits words at (C's `isspace`: space, `\t`, `\n`, `\v`, `\f`, `\r`) and the backslash
/// get a backslash, so the value arrives whole and can never add a setting of its own. (A NUL cannot travel in the startup
/// packet at all: [`DatabaseConfigBuilder::build`](crate::DatabaseConfigBuilder::build) refuses
/// it.)
///
/// ```
/// use pgdbm::driver::escape_option;
///
/// assert_eq!(escape_option("a\t-c\tx=1"), "a\\\t-c\\\tx=1");
/// assert_eq!(escape_option(r"C:\dir name"), r"C:\\dir\ name");
/// ```
pub fn escape_option(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        if c == '\\' || OPTION_WHITESPACE.contains(&c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{DbError, RetryPolicy};

    #[test]
    fn escaping() {
        assert_eq!(escape_option(r"a b\c"), r"a\ b\\c");
        // Every character the server splits `options` at, not just the space.
        assert_eq!(
            escape_option("v\t-c\tstatement_timeout=7"),
            "v\\\t-c\\\tstatement_timeout=7"
        );
        for ws in [' ', '\t', '\n', '\u{0b}', '\u{0c}', '\r'] {
            assert_eq!(escape_option(&format!("a{ws}b")), format!("a\\{ws}b"));
        }
        // Not C whitespace: left alone.
        assert_eq!(escape_option("a\u{a0}b\u{2028}"), "a\u{a0}b\u{2028}");
    }

    #[test]
    fn auth_failures_are_permanent() {
        let auth: BoxError = Box::new(Error::from(DbError::new(
            "28P01",
            "password authentication failed",
        )));
        let refused: BoxError = "connection refused".into();
        let tls: BoxError = Box::new(TlsError::new("unknown issuer"));
        assert!(is_permanent(&auth));
        assert!(!is_permanent(&refused));
        assert!(is_permanent(&tls));
    }

    #[tokio::test]
    async fn retries_then_names_the_target() {
        let config = DatabaseConfig::builder()
            .host("db.invalid")
            .port(6543)
            .database("app")
            .retry(RetryPolicy::new(
                3,
                Duration::from_millis(1),
                2.0,
                Duration::from_millis(5),
            ))
            .build()
            .expect("valid config");
        let mut calls = 0;
        let err = connect_with_retry(&config, || {
            calls += 1;
            async { Err::<(), BoxError>("refused".into()) }
        })
        .await
        .expect_err("never connects");
        assert_eq!(calls, 3);
        let text = err.to_string();
        assert!(
            text.contains("db.invalid:6543/app") && text.contains("3 attempt"),
            "{text}"
        );

        let mut calls = 0;
        let err = connect_with_retry(&config, || {
            calls += 1;
            async {
                Err::<(), BoxError>(Box::new(Error::from(DbError::new("28P01", "bad password"))))
            }
        })
        .await
        .expect_err("auth fails");
        assert_eq!(calls, 1, "authentication failures are not retried");
        assert_eq!(err.kind(), Some(ErrorKind::InvalidAuthorization));
    }
}

/// Property: whatever a value holds, the server's own split of the `options` string gives back
/// exactly the settings that were written.
#[cfg(test)]
mod properties {
    use super::escape_option;
    use proptest::prelude::*;

    /// C's `isspace` in the C locale.
    fn c_isspace(b: u8) -> bool {
        matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
    }

    /// A model of PostgreSQL's `pg_split_opts` (src/backend/utils/init/postinit.c), byte by
    /// byte: skip leading spaces; a word runs to the next unescaped space; a backslash escapes
    /// the next byte and is dropped.
    fn pg_split_opts(opts: &[u8]) -> Vec<Vec<u8>> {
        let mut words = Vec::new();
        let mut i = 0;
        while i < opts.len() {
            while i < opts.len() && c_isspace(opts[i]) {
                i += 1;
            }
            if i == opts.len() {
                break;
            }
            let mut word = Vec::new();
            let mut last_was_escape = false;
            while i < opts.len() {
                let b = opts[i];
                if c_isspace(b) && !last_was_escape {
                    break;
                }
                if !last_was_escape && b == b'\\' {
                    last_was_escape = true;
                } else {
                    last_was_escape = false;
                    word.push(b);
                }
                i += 1;
            }
            words.push(word);
        }
        words
    }

    /// What the server makes of the words: `-c` then `name=value`, split at the first `=`.
    fn settings_of(words: Vec<Vec<u8>>) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let mut words = words.into_iter();
        while let Some(word) = words.next() {
            assert_eq!(word, b"-c", "every word pair starts with -c");
            let item = words.next().expect("-c is followed by name=value");
            let eq = item.iter().position(|&b| b == b'=').expect("name=value");
            out.push((
                String::from_utf8(item[..eq].to_vec()).expect("utf-8 name"),
                String::from_utf8(item[eq + 1..].to_vec()).expect("utf-8 value"),
            ));
        }
        out
    }

    /// Values rich in what matters (every C space, backslashes, `=`, `-c`), plus any other
    /// character except NUL (refused when the config is built).
    fn value() -> impl Strategy<Value = String> {
        let special = prop::sample::select(vec![
            ' ', '\t', '\n', '\u{0b}', '\u{0c}', '\r', '\\', '=', '-', 'c', '\u{a0}', '\u{85}',
        ]);
        let any_char = any::<char>().prop_filter("no NUL", |c| *c != '\0');
        prop::collection::vec(prop_oneof![3 => special, 1 => any_char], 0..24)
            .prop_map(|chars| chars.into_iter().collect())
    }

    fn settings() -> impl Strategy<Value = Vec<(String, String)>> {
        prop::collection::vec(("[A-Za-z_][A-Za-z0-9_.]{0,12}", value()), 1..5)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2048))]

        /// How both drivers write the options string (`-c name=value`, joined by spaces).
        #[test]
        fn server_split_gives_back_the_settings(settings in settings()) {
            let options = settings
                .iter()
                .map(|(k, v)| format!("-c {}={}", k, escape_option(v)))
                .collect::<Vec<_>>()
                .join(" ");
            prop_assert_eq!(settings_of(pg_split_opts(options.as_bytes())), settings);
        }
    }

    /// The model itself splits where the server does (so the property above can fail).
    #[test]
    fn model_splits_at_every_c_space() {
        assert_eq!(
            settings_of(pg_split_opts(b"-c a=v\t-c\tb=7\x0b-c\x0cc=\\ x\\\\")),
            [
                ("a".to_owned(), "v".to_owned()),
                ("b".to_owned(), "7".to_owned()),
                ("c".to_owned(), " x\\".to_owned())
            ]
        );
    }
}
