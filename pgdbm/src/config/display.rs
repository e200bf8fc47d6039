//! `Display` (the masked URI) and `Debug` of [`DatabaseConfig`]: neither shows the password.

use std::fmt;

use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};

use super::DatabaseConfig;

/// `user:***@host:port/db` style; the password is never shown.
impl fmt::Display for DatabaseConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "postgresql://{}",
            utf8_percent_encode(&self.user, USERINFO)
        )?;
        if self.password.is_some() {
            f.write_str(":***")?;
        }
        f.write_str("@")?;
        let socket = self.host.starts_with('/');
        if socket {
            // The socket directory goes to the query; the authority keeps only the port.
        } else if self.host.contains(':') {
            write!(f, "[{}]", self.host)?;
        } else {
            write!(f, "{}", utf8_percent_encode(&self.host, USERINFO))?;
        }
        // A path of `.` or `..` (even percent-encoded) is a dot segment that URI parsers
        // remove: such a database name goes to the query.
        let dot_segment = matches!(self.database.as_str(), "." | "..");
        write!(f, ":{}/", self.port)?;
        if !dot_segment {
            write!(f, "{}", utf8_percent_encode(&self.database, PATH))?;
        }
        let mut sep = '?';
        if socket {
            write!(f, "{sep}host={}", utf8_percent_encode(&self.host, QUERY))?;
            sep = '&';
        }
        if dot_segment {
            write!(f, "{sep}dbname={}", self.database)?;
            sep = '&';
        }
        if let Some(schema) = &self.schema {
            write!(f, "{sep}schema={}", utf8_percent_encode(schema, QUERY))?;
            sep = '&';
        }
        if self.pooler != super::Pooler::None {
            write!(f, "{sep}pooler={}", self.pooler)?;
        }
        Ok(())
    }
}

impl fmt::Debug for DatabaseConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DatabaseConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("database", &self.database)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("schema", &self.schema)
            .field("min_connections", &self.min_connections)
            .field("max_connections", &self.max_connections)
            .field("acquire_timeout", &self.acquire_timeout)
            .field("max_queries", &self.max_queries)
            .field("command_timeout", &self.command_timeout)
            .field("multiplexing", &self.multiplexing)
            .field("multiplexed_connections", &self.multiplexed_connections)
            .field("idle_timeout", &self.idle_timeout)
            .field("max_lifetime", &self.max_lifetime)
            .field("connect_timeout", &self.connect_timeout)
            .field("statement_timeout", &self.statement_timeout)
            .field(
                "idle_in_transaction_session_timeout",
                &self.idle_in_transaction_session_timeout,
            )
            .field("lock_timeout", &self.lock_timeout)
            .field("application_name", &self.application_name)
            .field("server_settings", &self.server_settings)
            .field("search_path_to_schema", &self.search_path_to_schema)
            .field("pinned_search_path", &self.pinned_search_path)
            .field("init_commands", &self.init_commands)
            .field("retry", &self.retry)
            .field("ssl", &self.ssl)
            .field(
                "ssl_key_password",
                &self.ssl_key_password.as_ref().map(|_| "***"),
            )
            .field("statement_cache_capacity", &self.statement_cache_capacity)
            .field("pooler", &self.pooler)
            .field("direct", &self.direct.as_ref().map(ToString::to_string))
            .finish()
    }
}

/// Userinfo and host: everything outside the URI's unreserved characters and a few safe marks.
pub(super) const USERINFO: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'/')
    .add(b':')
    .add(b';')
    .add(b'<')
    .add(b'=')
    .add(b'>')
    .add(b'?')
    .add(b'@')
    .add(b'[')
    .add(b'\\')
    .add(b']')
    .add(b'^')
    .add(b'`')
    .add(b'{')
    .add(b'|')
    .add(b'}');
/// The database name in the URI path.
const PATH: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'/')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'`')
    .add(b'{')
    .add(b'}');
/// A query value.
const QUERY: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'&')
    .add(b'+')
    .add(b'<')
    .add(b'=')
    .add(b'>');

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::test_support::{build, env, url};

    #[test]
    fn display_forms() {
        let c = build(DatabaseConfig::builder()).unwrap();
        assert_eq!(c.to_string(), "postgresql://alice@localhost:5432/alice");

        let c = url("postgresql://a%40b:pw@/my%20db?host=/var/run/postgresql").unwrap();
        assert_eq!(
            c.to_string(),
            "postgresql://a%40b:***@:5432/my%20db?host=/var/run/postgresql"
        );
        // The displayed URI parses back to the same place.
        let back = url(&c.to_string()).unwrap();
        assert_eq!(
            (back.host(), back.port(), back.user(), back.database()),
            ("/var/run/postgresql", 5432, "a@b", "my db")
        );

        let c = build(DatabaseConfig::builder().host("/tmp").schema("s")).unwrap();
        assert_eq!(
            c.to_string(),
            "postgresql://alice@:5432/alice?host=/tmp&schema=s"
        );
    }

    #[test]
    fn password_never_shown() {
        let secret = "Sup3rS3cret";
        let c = url(&format!("postgresql://app:{secret}@db:5432/shop?schema=s")).unwrap();
        assert_eq!(c.password(), Some(secret));
        let shown = [
            c.to_string(),
            c.masked_url(),
            format!("{c:?}"),
            format!("{c:#?}"),
            format!("{:?}", c.to_builder()),
            format!(
                "{:?}",
                DatabaseConfig::builder().url(format!("postgresql://u:{secret}@h"))
            ),
            format!("{:?}", DatabaseConfig::builder().password(secret)),
            format!(
                "{:?}",
                DatabaseConfig::builder().env_from(env(&[("PGPASSWORD", secret)]))
            ),
        ];
        for text in &shown {
            assert!(!text.contains(secret), "{text}");
        }
        assert_eq!(c.to_string(), "postgresql://app:***@db:5432/shop?schema=s");
        assert!(format!("{c:?}").contains(r#"password: Some("***")"#));

        // Errors, even when the password broke the parse.
        for s in [
            format!("postgresql://app:{secret}@db:badport/shop"),
            format!("postgresql://app:{secret}/x@db/shop"),
            format!("postgresql://app:{secret}#x@db/shop"),
            format!("postgresql://app:{secret}@db/shop?sslmode={secret}x"),
            format!("postgresql://app@db/shop?password={secret}&x&y"),
            format!("postgresql://app@db/shop?password=a&{secret}=1"),
            format!("postgresql://app@db/shop?password={secret}%FF"),
            format!("host=db password={secret} x"),
            format!("host=db password=a {secret}=1"),
            format!("host=db password=a {secret}"),
            format!("host=db password='{secret}"),
            format!("host=db password=a port={secret}"),
            format!("mysql://app:{secret}@db/shop"),
            format!("postgresql://app:{secret}@db/shop#x"),
            format!("postgresql://app:{secret}@[db/shop"),
        ] {
            let err = url(&s).expect_err(&s);
            let text = format!("{err} {err:?}");
            let visible = s.contains(&format!("sslmode={secret}"));
            assert!(visible || !text.contains(secret), "{s}: {text}");
        }
        let vars = env(&[("DATABASE_URL", "postgresql://u:Sup3rS3cret@h:x/db")]);
        let err = build(DatabaseConfig::builder().env_from(vars)).unwrap_err();
        assert!(!format!("{err} {err:?}").contains(secret));
    }
}
