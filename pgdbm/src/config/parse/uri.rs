//! `postgresql://` / `postgres://` URIs, split with the `url` crate.

use percent_encoding::percent_decode_str;

use super::{Origin, Param};
use crate::config::DEFAULT_HOST;
use crate::error::Result;

/// Splits a `postgresql://` URI into parameters with the `url` crate. Authority values come
/// first, so a query parameter of the same name overrides them.
pub(super) fn parse_uri(s: &str, origin: Origin) -> Result<Vec<Param>> {
    let err = |field: &str, message: &str| origin.error(field, message);

    // What the `url` crate cannot say: several hosts, or an empty host next to a user or a port
    // (`postgresql://user@/db?host=/tmp`, which libpq accepts and `url` rejects).
    let after_scheme = s.find("://").map_or(0, |i| i + 3);
    let authority_len = s[after_scheme..]
        .find(['/', '?', '#'])
        .unwrap_or(s.len() - after_scheme);
    let authority = &s[after_scheme..after_scheme + authority_len];
    let host_start = authority.rfind('@').map_or(0, |i| i + 1);
    let host_port = &authority[host_start..];
    if host_port.contains(',') {
        return Err(err("host", "multiple hosts are not supported"));
    }
    let empty_host = host_port.is_empty() || host_port.starts_with(':');
    let parsed = if empty_host && !authority.is_empty() {
        let at = after_scheme + host_start;
        url::Url::parse(&format!("{}{DEFAULT_HOST}{}", &s[..at], &s[at..]))
    } else {
        url::Url::parse(s)
    };
    let url = parsed.map_err(|e| {
        use url::ParseError as P;
        match e {
            P::InvalidPort => err(
                "port",
                "invalid port number (characters such as '/', '#', '?' or '@' in the user name \
                 or password must be percent-encoded)",
            ),
            P::EmptyHost
            | P::IdnaError
            | P::InvalidIpv4Address
            | P::InvalidIpv6Address
            | P::InvalidDomainCharacter => err("host", &format!("invalid host: {e}")),
            _ => err(origin.whole(), &format!("invalid URI: {e}")),
        }
    })?;
    if url.fragment().is_some() {
        return Err(err(
            origin.whole(),
            "a URI fragment ('#…') is not allowed; percent-encode '#' as %23",
        ));
    }

    let decode = |field: &str, raw: &str| -> Result<String> {
        percent_decode_str(raw)
            .decode_utf8()
            .map(|v| v.into_owned())
            .map_err(|_| err(field, "percent-encoded value is not valid UTF-8"))
    };
    let param = |key: &str, value: String| Param {
        key: key.to_owned(),
        value,
        after_password: false,
    };
    let mut params = Vec::new();
    if !url.username().is_empty() {
        params.push(param("user", decode("user", url.username())?));
    }
    if let Some(password) = url.password() {
        params.push(param("password", decode("password", password)?));
    }
    if !empty_host {
        match url.host() {
            Some(url::Host::Domain(domain)) => params.push(param("host", decode("host", domain)?)),
            Some(url::Host::Ipv4(addr)) => params.push(param("host", addr.to_string())),
            Some(url::Host::Ipv6(addr)) => params.push(param("host", addr.to_string())),
            None => {}
        }
    }
    if let Some(port) = url.port() {
        params.push(param("port", port.to_string()));
    }
    let path = url.path().strip_prefix('/').unwrap_or(url.path());
    if !path.is_empty() {
        params.push(param("dbname", decode("dbname", path)?));
    }

    let mut after_password = false;
    for pair in url
        .query()
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
    {
        let Some((key, value)) = pair.split_once('=') else {
            if after_password {
                return Err(err(
                    "password",
                    "invalid text after the password; percent-encode '&' in a password as %26",
                ));
            }
            return Err(err(
                origin.whole(),
                "a query parameter has no '=' (expected key=value)",
            ));
        };
        let key = decode(origin.whole(), key)?;
        // Right after a password, the "key" may be the rest of it: not a field to name.
        let value = decode(if after_password { "password" } else { &key }, value)?;
        let is_password = key == "password";
        params.push(Param {
            key,
            value,
            after_password,
        });
        after_password = is_password;
    }
    Ok(params)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::config::test_support::{build, field, url};
    use crate::config::{DatabaseConfig, SslMode};

    #[test]
    fn uri_with_percent_encoded_parts() {
        let c = url(
            "postgresql://my%20user:p%40ss%3Aw%2Fo%25rd+x@db.example.com:6543/my%20db?sslmode=verify-full",
        )
        .unwrap();
        assert_eq!(c.user(), "my user");
        // `+` is a plain character in libpq URIs, not a space.
        assert_eq!(c.password(), Some("p@ss:w/o%rd+x"));
        assert_eq!(c.host(), "db.example.com");
        assert_eq!(c.port(), 6543);
        assert_eq!(c.database(), "my db");
        assert_eq!(c.ssl().mode, SslMode::VerifyFull);

        // An unencoded '@' in the password still works (the last '@' ends the user info).
        let c = url("postgres://u:p@ss@h/db").unwrap();
        assert_eq!(c.password(), Some("p@ss"));
        assert_eq!(c.host(), "h");
    }

    #[test]
    fn uri_short_forms_and_sockets() {
        let c = url("postgresql://").unwrap();
        assert_eq!(
            (c.host(), c.port(), c.database()),
            ("localhost", 5432, "alice")
        );

        let c = url("postgresql:///shop").unwrap();
        assert_eq!((c.host(), c.database()), ("localhost", "shop"));

        let c = url("postgresql://db/").unwrap();
        assert_eq!((c.host(), c.database()), ("db", "alice"));

        let c = url("postgresql://u@/shop?host=/var/run/postgresql").unwrap();
        assert_eq!(c.host(), "/var/run/postgresql");
        assert_eq!((c.user(), c.database()), ("u", "shop"));

        let c = url("postgresql://:5433/shop").unwrap();
        assert_eq!((c.host(), c.port()), ("localhost", 5433));

        let c = url("postgresql://u:pw@:5433/shop?host=%2Ftmp").unwrap();
        assert_eq!(
            (c.host(), c.port(), c.password()),
            ("/tmp", 5433, Some("pw"))
        );

        let c = url("postgresql://%2Fvar%2Frun%2Fpostgresql/shop").unwrap();
        assert_eq!(c.host(), "/var/run/postgresql");

        // Query values override the authority.
        let c = url("postgresql://a:1@h1:1111/d1?host=h2&port=2222&user=b&dbname=d2").unwrap();
        assert_eq!(
            (c.host(), c.port(), c.user(), c.database()),
            ("h2", 2222, "b", "d2")
        );
    }

    #[test]
    fn uri_ipv6_host() {
        let c = url("postgresql://u:pw@[::1]:5433/db").unwrap();
        assert_eq!(c.host(), "::1");
        assert_eq!(c.port(), 5433);
        assert_eq!(c.to_string(), "postgresql://u:***@[::1]:5433/db");

        let c = url("postgresql://[2001:db8::42]/db").unwrap();
        assert_eq!(c.host(), "2001:db8::42");

        let c = build(DatabaseConfig::builder().host("[::1]")).unwrap();
        assert_eq!(c.host(), "::1");

        assert_eq!(field(url("postgresql://[::1/db")), "host");
    }

    #[test]
    fn uri_query_keys() {
        let c = url(
            "postgresql://h/db?application_name=billing%20worker&connect_timeout=5\
             &sslmode=require&sslrootcert=/etc/ca.pem&sslcert=/etc/c.pem&sslkey=/etc/k.pem\
             &schema=billing&statement_timeout=30s&lock_timeout=0\
             &idle_in_transaction_session_timeout=1500&min_connections=2&max_connections=4\
             &acquire_timeout=2min&password=pw",
        )
        .unwrap();
        assert_eq!(c.application_name(), "billing worker");
        assert_eq!(c.connect_timeout(), Duration::from_secs(5));
        assert_eq!(c.ssl().mode, SslMode::Require);
        assert_eq!(c.ssl().ca_file.as_deref(), Some("/etc/ca.pem".as_ref()));
        assert_eq!(c.ssl().cert_file.as_deref(), Some("/etc/c.pem".as_ref()));
        assert_eq!(c.ssl().key_file.as_deref(), Some("/etc/k.pem".as_ref()));
        assert_eq!(c.schema(), Some("billing"));
        assert_eq!(c.statement_timeout(), Some(Duration::from_secs(30)));
        assert_eq!(c.lock_timeout(), None);
        assert_eq!(
            c.idle_in_transaction_session_timeout(),
            Some(Duration::from_millis(1500))
        );
        assert_eq!((c.min_connections(), c.max_connections()), (2, 4));
        assert_eq!(c.acquire_timeout(), Duration::from_secs(120));
        assert_eq!(c.password(), Some("pw"));

        // Empty values are ignored; an empty application_name is kept.
        let c = url("postgresql://h/db?port=&sslmode=&application_name=").unwrap();
        assert_eq!((c.port(), c.ssl().mode), (5432, SslMode::Prefer));
        assert_eq!(c.application_name(), "");
    }
}
