//! Validation of a built [`DatabaseConfig`]: the first problem found, naming its field.

use super::{DatabaseConfig, quoted};
use crate::error::{Error, Result};

/// Server settings that have a dedicated field; `server_setting` rejects them, and `-c` options
/// naming them are routed to the field.
const DEDICATED_SETTINGS: &[&str] = &[
    "statement_timeout",
    "idle_in_transaction_session_timeout",
    "lock_timeout",
    "application_name",
];

/// The largest server timeout PostgreSQL accepts (an `int` of milliseconds).
const MAX_SERVER_TIMEOUT_MS: u128 = i32::MAX as u128;

impl DatabaseConfig {
    /// Checks every value; the first problem found is returned, naming its field.
    pub(super) fn validate(&self) -> Result<()> {
        let err = |field: &str, message: &str| Err(Error::config(field, message));

        for (field, value) in [
            ("host", &self.host),
            ("user", &self.user),
            ("database", &self.database),
        ] {
            if value.is_empty() {
                return err(field, "must not be empty");
            }
            if value.contains('\0') {
                return err(field, "must not contain a NUL character");
            }
        }
        if self.host.contains(',') {
            return err("host", "multiple hosts are not supported");
        }
        if self.port == 0 {
            return err("port", "must be between 1 and 65535");
        }
        if self.password.as_deref().is_some_and(|p| p.contains('\0')) {
            return err("password", "must not contain a NUL character");
        }
        if let Some(schema) = &self.schema {
            crate::template::validate_identifier("schema", schema)?;
        }
        if let Some(pin) = &self.pinned_search_path {
            super::search_path::validate_pin(pin)?;
            if self
                .server_settings
                .iter()
                .any(|(name, _)| name.eq_ignore_ascii_case("search_path"))
            {
                return err(
                    "pin_search_path",
                    "conflicts with the search_path server setting; give one of them",
                );
            }
        }

        if self.max_connections == 0 {
            return err("max_connections", "must be at least 1");
        }
        if self.min_connections > self.max_connections {
            return Err(Error::config(
                "min_connections",
                format!(
                    "{} exceeds max_connections ({})",
                    self.min_connections, self.max_connections
                ),
            ));
        }
        if self.multiplexed_connections == 0 {
            return err("multiplexed_connections", "must be at least 1");
        }
        if self.acquire_timeout.is_zero() {
            return err("acquire_timeout", "must be greater than zero");
        }
        for (field, value) in [
            ("idle_timeout", self.idle_timeout),
            ("max_lifetime", self.max_lifetime),
        ] {
            if value.is_some_and(|d| d.is_zero()) {
                return err(field, "must be greater than zero (use None to disable it)");
            }
        }
        if self.connect_timeout.is_zero() {
            return err("connect_timeout", "must be greater than zero");
        }
        for (field, value) in [
            ("statement_timeout", self.statement_timeout),
            (
                "idle_in_transaction_session_timeout",
                self.idle_in_transaction_session_timeout,
            ),
            ("lock_timeout", self.lock_timeout),
        ] {
            if let Some(d) = value {
                if d.as_millis() == 0 {
                    return err(field, "must be at least 1 ms (use None to turn it off)");
                }
                if d.as_millis() > MAX_SERVER_TIMEOUT_MS {
                    return err(
                        field,
                        "must be at most 2147483647 ms (about 24.8 days); use None to turn it off",
                    );
                }
            }
        }
        if self.application_name.contains('\0') {
            return err("application_name", "must not contain a NUL character");
        }

        for (name, value) in &self.server_settings {
            if !is_setting_name(name) {
                return Err(Error::config(
                    "server_settings",
                    format!(
                        "invalid setting name {}; expected letters, digits, '_' and '.', not starting with a digit or '.'",
                        quoted(name)
                    ),
                ));
            }
            if let Some(dedicated) = dedicated_setting(name) {
                return Err(Error::config(
                    "server_settings",
                    format!("{dedicated} has its own setting; set it with .{dedicated}(…)"),
                ));
            }
            // The name is valid from here on, so it may be shown; the value never is.
            if value.contains('\0') {
                return Err(Error::config(
                    format!("server_settings.{name}"),
                    "must not contain a NUL character",
                ));
            }
        }
        for (i, sql) in self.init_commands.iter().enumerate() {
            if sql.trim().is_empty() {
                return Err(Error::config(
                    "init_commands",
                    format!("command {} is empty", i + 1),
                ));
            }
            if sql.contains('\0') {
                return Err(Error::config(
                    "init_commands",
                    format!("command {} contains a NUL character", i + 1),
                ));
            }
        }

        if self.retry.attempts == 0 {
            return err("retry.attempts", "must be at least 1 (1 = no retry)");
        }
        if !(self.retry.backoff.is_finite() && self.retry.backoff >= 1.0) {
            return err("retry.backoff", "must be a finite number of at least 1.0");
        }

        match (&self.ssl.cert_file, &self.ssl.key_file) {
            (Some(_), None) => {
                return err(
                    "ssl_key_file",
                    "a client certificate (ssl_cert_file) needs its key",
                );
            }
            (None, Some(_)) => {
                return err(
                    "ssl_cert_file",
                    "a client key (ssl_key_file) needs its certificate",
                );
            }
            _ => {}
        }
        Ok(())
    }
}

pub(super) fn is_setting_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
}

pub(super) fn dedicated_setting(name: &str) -> Option<&'static str> {
    DEDICATED_SETTINGS
        .iter()
        .copied()
        .find(|d| d.eq_ignore_ascii_case(name))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::config::test_support::{build, field, url};
    use crate::config::{DatabaseConfigBuilder, RetryPolicy, SslMode};

    #[test]
    fn every_validation_error_names_its_field() {
        let b = DatabaseConfig::builder;
        let ms = Duration::from_millis;
        let cases: Vec<(&str, DatabaseConfigBuilder)> = vec![
            ("host", b().host("")),
            ("host", b().host("a\0b")),
            ("port", b().port(0)),
            ("port", b().url("postgresql://h:0/db")),
            ("database", b().database("")),
            ("user", b().user("")),
            ("password", b().password("a\0b")),
            ("max_connections", b().max_connections(0)),
            ("min_connections", b().min_connections(11)),
            ("min_connections", b().min_connections(3).max_connections(2)),
            ("acquire_timeout", b().acquire_timeout(Duration::ZERO)),
            ("idle_timeout", b().idle_timeout(Duration::ZERO)),
            ("max_lifetime", b().max_lifetime(Duration::ZERO)),
            ("connect_timeout", b().connect_timeout(Duration::ZERO)),
            ("statement_timeout", b().statement_timeout(Duration::ZERO)),
            (
                "statement_timeout",
                b().statement_timeout(Duration::from_micros(999)),
            ),
            (
                "idle_in_transaction_session_timeout",
                b().idle_in_transaction_session_timeout(ms(i32::MAX as u64 + 1)),
            ),
            (
                "lock_timeout",
                b().lock_timeout(Duration::from_secs(30 * 86_400)),
            ),
            ("application_name", b().application_name("a\0")),
            ("server_settings", b().server_setting("1abc", "x")),
            ("server_settings", b().server_setting("", "x")),
            ("server_settings", b().server_setting("work-mem", "x")),
            ("server_settings", b().server_setting("a b", "x")),
            (
                "server_settings",
                b().server_setting("Statement_Timeout", "1"),
            ),
            (
                "server_settings",
                b().server_setting("application_name", "x"),
            ),
            (
                "server_settings.work_mem",
                b().server_setting("work_mem", "a\0"),
            ),
            ("init_commands", b().init_command("  ")),
            ("init_commands", b().init_command("SELECT '\0'")),
            (
                "retry.attempts",
                b().retry(RetryPolicy::new(0, ms(1), 2.0, ms(1))),
            ),
            (
                "retry.backoff",
                b().retry(RetryPolicy::new(3, ms(1), 0.5, ms(1))),
            ),
            (
                "retry.backoff",
                b().retry(RetryPolicy::new(3, ms(1), f64::NAN, ms(1))),
            ),
            (
                "retry.backoff",
                b().retry(RetryPolicy::new(3, ms(1), f64::INFINITY, ms(1))),
            ),
            ("ssl_key_file", b().ssl_cert_file("/c.pem")),
            ("ssl_cert_file", b().ssl_key_file("/k.pem")),
            ("sslmode", b().url("sslmode=on")),
        ];
        for (expected, builder) in cases {
            assert_eq!(field(build(builder.clone())), expected, "{builder:?}");
        }

        // Boundaries that are fine.
        for builder in [
            b().min_connections(10).max_connections(10),
            b().statement_timeout(ms(1)),
            b().lock_timeout(ms(i32::MAX as u64)),
            b().retry(RetryPolicy::new(1, Duration::ZERO, 1.0, Duration::ZERO)),
            b().server_setting("_x.y_1", "")
                .server_setting("pg_stat_statements.track", "all"),
            b().ssl_mode(SslMode::VerifyFull),
            b().ssl_mode(SslMode::VerifyCa),
            b().ssl_cert_file("/c").ssl_key_file("/k"),
        ] {
            assert!(build(builder.clone()).is_ok(), "{builder:?}");
        }
    }

    #[test]
    fn nul_in_a_setting_value_names_the_setting_not_the_value() {
        let err = DatabaseConfig::builder()
            .server_setting("app.note", "sEcReT\0value")
            .build()
            .expect_err("a NUL cannot travel in the startup packet");
        let Error::Config { field, .. } = &err else {
            panic!("expected a config error, got {err:?}");
        };
        assert_eq!(field, "server_settings.app.note");
        for text in [err.to_string(), format!("{err:?}")] {
            assert!(!text.contains("sEcReT"), "{text}");
        }
        // Also when it comes through `options`.
        let err = DatabaseConfig::builder()
            .url("host=h options='-c app.note=sEcReT\\\0'")
            .build()
            .expect_err("a NUL cannot travel in the startup packet");
        assert!(
            matches!(&err, Error::Config { field, .. } if field == "server_settings.app.note"),
            "{err:?}"
        );
        assert!(!format!("{err} {err:?}").contains("sEcReT"), "{err:?}");
    }

    #[test]
    fn invalid_schema_is_rejected() {
        // The identifier rules live in `template::validate_identifier`.
        for schema in ["users", "_x1", "Billing"] {
            assert_eq!(
                build(DatabaseConfig::builder().schema(schema))
                    .unwrap()
                    .schema(),
                Some(schema)
            );
        }
        for schema in ["1users", "a-b", "a b", "x\"; DROP", ""] {
            let err = build(DatabaseConfig::builder().schema(schema)).unwrap_err();
            assert!(
                matches!(err, Error::Identifier { kind: "schema", .. }),
                "{schema}: {err:?}"
            );
        }
        let err = url("postgresql://h/db?schema=1bad").unwrap_err();
        assert!(matches!(err, Error::Identifier { kind: "schema", .. }));
    }
}
