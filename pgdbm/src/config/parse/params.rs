//! One parameter of a connection string (or the key a `PG*` variable stands for) applied to a
//! [`Layer`]: durations, counts, TLS files, and libpq's `options` (`-c name=value`).

use std::path::PathBuf;
use std::time::Duration;

use super::{Origin, is_plain_word};
use crate::config::layer::{Layer, Secret, upsert_setting};
use crate::config::quoted;
use crate::config::tls::{SslMode, bad_sslmode_message};
use crate::config::validate::{dedicated_setting, is_setting_name};
use crate::error::Result;

#[derive(Clone, Copy)]
enum Unit {
    Millis,
    Seconds,
}

/// An integer with an optional unit (`ms`, `s`, `min`, `h`, `d`); a bare number is in
/// `default_unit`. `None` when malformed or too large.
fn parse_duration(value: &str, default_unit: Unit) -> Option<Duration> {
    let value = value.trim();
    let digits = value
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(value.len());
    if digits == 0 {
        return None;
    }
    let number: u64 = value[..digits].parse().ok()?;
    let ms_per_unit: u64 = match value[digits..].trim_start() {
        "" => match default_unit {
            Unit::Millis => 1,
            Unit::Seconds => 1_000,
        },
        "ms" => 1,
        "s" => 1_000,
        "min" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return None,
    };
    number.checked_mul(ms_per_unit).map(Duration::from_millis)
}

/// Applies one connection-string key (or the key an environment variable stands for).
/// Errors name `field`: the key, or the environment variable.
pub(in crate::config) fn apply_param(
    layer: &mut Layer,
    key: &str,
    value: &str,
    field: &str,
    origin: Origin,
) -> Result<()> {
    let err = |message: String| Err(origin.error(field, message));
    // libpq ignores empty values; application_name may legitimately be empty.
    if value.is_empty() && key != "application_name" {
        return match key {
            "host"
            | "port"
            | "dbname"
            | "user"
            | "password"
            | "sslmode"
            | "sslrootcert"
            | "sslcert"
            | "sslkey"
            | "sslpassword"
            | "connect_timeout"
            | "options"
            | "schema"
            | "statement_timeout"
            | "idle_in_transaction_session_timeout"
            | "lock_timeout"
            | "min_connections"
            | "max_connections"
            | "acquire_timeout"
            | "max_queries"
            | "command_timeout"
            | "multiplexing"
            | "multiplexed_connections"
            | "pooler"
            | "direct_url" => Ok(()),
            _ => unknown_key(key, field, origin),
        };
    }
    let duration = |unit: Unit, unit_name: &str| {
        parse_duration(value, unit).ok_or_else(|| {
            origin.error(
                field,
                format!(
                    "invalid duration {}; expected an integer number of {unit_name}, or one with \
                     a unit (ms, s, min, h, d)",
                    quoted(value)
                ),
            )
        })
    };
    let count = || {
        value.trim().parse::<u32>().map_err(|_| {
            origin.error(
                field,
                format!(
                    "invalid number {}; expected a non-negative integer",
                    quoted(value)
                ),
            )
        })
    };
    let path = || Some(Some(PathBuf::from(value)));
    match key {
        // A list of hosts, or of ports (one per host), is libpq's multi-host form.
        "host" | "port" if value.contains(',') => {
            return err("multiple hosts are not supported".to_owned());
        }
        "host" => layer.host = Some(value.to_owned()),
        "port" => match value.trim().parse::<u16>() {
            Ok(port) => layer.port = Some(port),
            Err(_) => return err(format!("invalid port number {}", quoted(value))),
        },
        "dbname" => layer.database = Some(value.to_owned()),
        "user" => layer.user = Some(value.to_owned()),
        "password" => layer.password = Some(Some(Secret(value.to_owned()))),
        "sslmode" => match SslMode::parse(value) {
            Some(mode) => layer.ssl_mode = Some(mode),
            None => return err(bad_sslmode_message(value)),
        },
        "sslrootcert" => layer.ssl_ca_file = path(),
        "sslcert" => layer.ssl_cert_file = path(),
        "sslkey" => layer.ssl_key_file = path(),
        "sslpassword" => layer.ssl_key_password = Some(Some(Secret(value.to_owned()))),
        "application_name" => layer.application_name = Some(value.to_owned()),
        "connect_timeout" => layer.connect_timeout = Some(duration(Unit::Seconds, "seconds")?),
        "acquire_timeout" => layer.acquire_timeout = Some(duration(Unit::Seconds, "seconds")?),
        "command_timeout" => {
            let d = duration(Unit::Seconds, "seconds")?;
            layer.command_timeout = Some((!d.is_zero()).then_some(d));
        }
        "statement_timeout" | "idle_in_transaction_session_timeout" | "lock_timeout" => {
            let d = duration(Unit::Millis, "milliseconds")?;
            let d = (!d.is_zero()).then_some(d);
            match key {
                "statement_timeout" => layer.statement_timeout = Some(d),
                "lock_timeout" => layer.lock_timeout = Some(d),
                _ => layer.idle_in_transaction_session_timeout = Some(d),
            }
        }
        "min_connections" => layer.min_connections = Some(count()?),
        "max_connections" => layer.max_connections = Some(count()?),
        "max_queries" => match value.trim().parse::<u64>() {
            Ok(n) => layer.max_queries = Some((n > 0).then_some(n)),
            Err(_) => {
                return err(format!(
                    "invalid number {}; expected a non-negative integer (0 = no limit)",
                    quoted(value)
                ));
            }
        },
        "multiplexed_connections" => layer.multiplexed_connections = Some(count()?),
        "multiplexing" => match value.trim().to_ascii_lowercase().as_str() {
            "true" | "on" | "yes" | "1" => layer.multiplexing = Some(true),
            "false" | "off" | "no" | "0" => layer.multiplexing = Some(false),
            _ => {
                return err(format!(
                    "invalid value {}; expected true or false",
                    quoted(value)
                ));
            }
        },
        "schema" => layer.schema = Some(Some(value.to_owned())),
        "pooler" => match value.parse() {
            Ok(pooler) => layer.pooler = Some(pooler),
            Err(_) => {
                return err(format!(
                    "invalid pooler {}; expected none, session or transaction",
                    quoted(value)
                ));
            }
        },
        "direct_url" => layer.direct_url = Some(Some(Secret(value.to_owned()))),
        "options" => {
            for (name, setting) in parse_options(value).map_err(|m| origin.error(field, m))? {
                match dedicated_setting(&name) {
                    Some(dedicated) => {
                        apply_param(layer, dedicated, &setting, dedicated, origin)?;
                    }
                    None => upsert_setting(&mut layer.server_settings, name, setting),
                }
            }
        }
        _ => return unknown_key(key, field, origin),
    }
    Ok(())
}

fn unknown_key(key: &str, field: &str, origin: Origin) -> Result<()> {
    if is_plain_word(key) {
        Err(origin.error(field, format!("unknown key {key}")))
    } else {
        Err(origin.error(origin.whole(), "unknown key (not a plain word)"))
    }
}

/// Parses libpq's `options`: `-c name=value`, `-cname=value` or `--name=value` items separated
/// by whitespace (a backslash escapes the next character). The message never quotes a value.
pub(in crate::config) fn parse_options(
    options: &str,
) -> std::result::Result<Vec<(String, String)>, String> {
    // Split into words first.
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = options.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(next) = chars.next() {
                    word.push(next);
                }
                in_word = true;
            }
            // The server's own rule (`pg_split_opts`): only C's `isspace` ends a word.
            c if crate::driver::connect::OPTION_WHITESPACE.contains(&c) => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            c => {
                word.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        words.push(word);
    }

    let mut settings = Vec::new();
    let mut words = words.into_iter();
    while let Some(word) = words.next() {
        let item = if word == "-c" {
            words
                .next()
                .ok_or_else(|| "'-c' at the end, without name=value".to_owned())?
        } else if let Some(rest) = word.strip_prefix("--") {
            // `--work-mem=64MB` is `-c work_mem=64MB`.
            match rest.split_once('=') {
                Some((name, value)) => format!("{}={value}", name.replace('-', "_")),
                None => rest.to_owned(),
            }
        } else if let Some(rest) = word.strip_prefix("-c") {
            rest.to_owned()
        } else {
            return Err("only '-c name=value' settings are supported".to_owned());
        };
        let Some((name, value)) = item.split_once('=') else {
            return Err("a '-c' setting has no '=' (expected -c name=value)".to_owned());
        };
        if !is_setting_name(name) {
            return Err("invalid setting name in '-c name=value'".to_owned());
        }
        settings.push((name.to_owned(), value.to_owned()));
    }
    Ok(settings)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DatabaseConfig;
    use crate::config::test_support::{field, message, url};

    #[test]
    fn unknown_keys_are_rejected() {
        assert_eq!(
            field(url("postgresql://h/db?sslmode=require&target=x")),
            "target"
        );
        assert!(message(url("postgresql://h/db?frobnicate=1")).contains("unknown key frobnicate"));
        assert_eq!(field(url("host=h frobnicate=1")), "frobnicate");
        assert_eq!(field(url("host=h frobnicate=")), "frobnicate");
        // Keys are case-sensitive, as in libpq.
        assert_eq!(field(url("HOST=h")), "HOST");
        assert_eq!(field(url("postgresql://h/db?a%20b=1")), "url");
    }

    #[test]
    fn bad_values_name_their_key() {
        assert_eq!(field(url("postgresql://h:99999/db")), "port");
        assert_eq!(field(url("postgresql://h:abc/db")), "port");
        assert_eq!(field(url("postgresql://h/db?port=x")), "port");
        assert_eq!(field(url("port=-1")), "port");
        assert_eq!(field(url("postgresql://h/db?sslmode=requir")), "sslmode");
        assert!(message(url("sslmode=requir")).contains("verify-full"));
        assert_eq!(field(url("connect_timeout=ten")), "connect_timeout");
        assert_eq!(field(url("connect_timeout=5 parsecs")), "url");
        assert_eq!(field(url("connect_timeout='5 parsecs'")), "connect_timeout");
        assert_eq!(field(url("statement_timeout=1.5s")), "statement_timeout");
        assert_eq!(
            field(url("lock_timeout=99999999999999999999")),
            "lock_timeout"
        );
        assert_eq!(field(url("min_connections=-1")), "min_connections");
        assert_eq!(field(url("max_connections=many")), "max_connections");
        assert_eq!(field(url("acquire_timeout=0")), "acquire_timeout");
        assert_eq!(field(url("connect_timeout=0")), "connect_timeout");
        assert_eq!(field(url("postgresql://h/db#frag")), "url");
        assert_eq!(field(url("postgresql://h/db?novalue")), "url");
        assert_eq!(field(url("postgresql://h/db?dbname=%FF")), "dbname");
        assert_eq!(field(url("mysql://u:pw@h/db")), "url");
        assert_eq!(field(url("just some words")), "url");
        assert_eq!(field(url("   ")), "url");
        // Server-side maximum of a timeout.
        assert_eq!(field(url("statement_timeout=25d")), "statement_timeout");
        assert!(url("statement_timeout=24d").is_ok());
    }

    #[test]
    fn durations() {
        let s = |v: &str| parse_duration(v, Unit::Seconds);
        let m = |v: &str| parse_duration(v, Unit::Millis);
        assert_eq!(s("5"), Some(Duration::from_secs(5)));
        assert_eq!(m("5"), Some(Duration::from_millis(5)));
        assert_eq!(m(" 250 ms "), Some(Duration::from_millis(250)));
        assert_eq!(m("2s"), Some(Duration::from_secs(2)));
        assert_eq!(m("3min"), Some(Duration::from_secs(180)));
        assert_eq!(m("1h"), Some(Duration::from_secs(3600)));
        assert_eq!(m("1d"), Some(Duration::from_secs(86_400)));
        assert_eq!(m("0"), Some(Duration::ZERO));
        for bad in [
            "",
            "s",
            "-1",
            "1.5",
            "1 sec",
            "1m",
            "ms5",
            "18446744073709551615d",
        ] {
            assert_eq!(m(bad), None, "{bad}");
        }
    }

    #[test]
    fn options_become_server_settings() {
        let c = url(
            "postgresql://h/db?options=-c%20work_mem%3D64MB%20-csearch_path%3Dapp,public\
             %20--jit-above-cost%3D10%20-c%20statement_timeout%3D5s%20-c%20geqo=off",
        )
        .unwrap();
        assert_eq!(
            c.server_settings(),
            &[
                ("work_mem".to_owned(), "64MB".to_owned()),
                ("search_path".to_owned(), "app,public".to_owned()),
                ("jit_above_cost".to_owned(), "10".to_owned()),
                ("geqo".to_owned(), "off".to_owned()),
            ]
        );
        // A dedicated setting is routed to its field, not duplicated.
        assert_eq!(c.statement_timeout(), Some(Duration::from_secs(5)));

        let c = url(r"options='-c application_name=my\\ app -c DateStyle=ISO'").unwrap();
        assert_eq!(c.application_name(), "my app");
        assert_eq!(
            c.server_settings(),
            &[("DateStyle".to_owned(), "ISO".to_owned())]
        );

        assert_eq!(field(url("options='-X'")), "options");
        assert_eq!(field(url("options='-c'")), "options");
        assert_eq!(field(url("options='-c work_mem'")), "options");
        assert_eq!(field(url("options='-c 1bad=x'")), "options");
        assert_eq!(
            field(url("options='-c statement_timeout=soon'")),
            "statement_timeout"
        );
    }

    #[test]
    fn options_split_only_at_c_whitespace() {
        // The server keeps a no-break space or a line separator inside a word.
        let c = DatabaseConfig::builder()
            .url("host=h options='-c app.a=x\u{a0}y -c\u{0b}app.b=z\u{2028}'")
            .build()
            .expect("valid options");
        assert_eq!(
            c.server_settings(),
            [
                ("app.a".to_owned(), "x\u{a0}y".to_owned()),
                ("app.b".to_owned(), "z\u{2028}".to_owned())
            ]
        );
    }
}
