//! Two pool settings pgdbm for Python has: `max_queries` (a connection is recycled after that many
//! statements) and `command_timeout` (the default client-side bound of every call): their
//! setters on [`DatabaseConfigBuilder`] and accessors on [`DatabaseConfig`].

use std::time::Duration;

use super::{DatabaseConfig, DatabaseConfigBuilder};

impl DatabaseConfigBuilder {
    /// Recycles connections: one that has run `n` statements is closed when it goes back to the
    /// pool, and a new one opens when needed (`None`, the default, or `0` = never; pgdbm for
    /// Python's `max_queries`, whose default is 50 000). Every statement counts, including
    /// `BEGIN`/`COMMIT` and those in transactions; a connection checked out when it reaches the
    /// limit is closed when it is returned. Connection-string key `max_queries`.
    ///
    /// Honoured by the tokio-postgres driver. The sqlx driver refuses it
    /// ([`Error::Config`](crate::Error::Config) naming `max_queries` when the pool opens): sqlx 0.8
    /// gives a pooled connection no identity or storage that a count could follow across
    /// checkouts.
    pub fn max_queries(mut self, n: impl Into<Option<u64>>) -> Self {
        self.explicit.max_queries = Some(n.into().filter(|&n| n > 0));
        self
    }
    /// A default client-side bound on each call (`None`, the default, = none; pgdbm for Python's
    /// `command_timeout`): every [`Database`](crate::Database) handle on a pool opened with this
    /// config bounds its calls by it, unless the handle has its own
    /// ([`Database::with_timeout`](crate::Database::with_timeout), which replaces it). It is the
    /// per-call bound of `with_timeout` in every respect: past it the call's future is dropped —
    /// the statement is cancelled on the server, its connection is not reused busy — and the
    /// call returns [`Error::Timeout`](crate::Error::Timeout); a transaction begun through such a
    /// handle runs `SET LOCAL statement_timeout` to it. Streams and checked-out connections are
    /// not bounded by it. Connection-string key `command_timeout` (seconds, or with a unit).
    ///
    /// ```
    /// use std::time::Duration;
    /// let config = pgdbm::DatabaseConfig::from_url("postgresql://app@db/shop?command_timeout=5s")?;
    /// assert_eq!(config.command_timeout(), Some(Duration::from_secs(5)));
    /// # Ok::<(), pgdbm::Error>(())
    /// ```
    pub fn command_timeout(mut self, timeout: impl Into<Option<Duration>>) -> Self {
        self.explicit.command_timeout = Some(timeout.into().filter(|t| !t.is_zero()));
        self
    }
}

impl DatabaseConfig {
    /// A connection is closed, instead of going back to the pool, once it has run this many
    /// statements (None = never; pgdbm for Python's `max_queries`). Set it with
    /// [`DatabaseConfigBuilder::max_queries`].
    pub fn max_queries(&self) -> Option<u64> {
        self.max_queries
    }

    /// The default client-side bound of each call of a [`Database`](crate::Database) handle on
    /// a pool opened with this config (None = none; pgdbm for Python's `command_timeout`). See
    /// [`DatabaseConfigBuilder::command_timeout`].
    pub fn command_timeout(&self) -> Option<Duration> {
        self.command_timeout
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::DatabaseConfig;
    use crate::config::test_support::{build, url};

    #[test]
    fn max_queries_from_setter_and_url() {
        assert_eq!(
            build(DatabaseConfig::builder()).unwrap().max_queries(),
            None
        );
        let c = build(DatabaseConfig::builder().max_queries(100)).unwrap();
        assert_eq!(c.max_queries(), Some(100));
        assert_eq!(build(c.to_builder()).unwrap().max_queries(), Some(100));
        let c = build(DatabaseConfig::builder().max_queries(0)).unwrap();
        assert_eq!(c.max_queries(), None);
        assert_eq!(
            url("postgresql://h/db?max_queries=5")
                .unwrap()
                .max_queries(),
            Some(5)
        );
        assert_eq!(url("host=h max_queries=0").unwrap().max_queries(), None);
        // The explicit setter wins over the connection string, also to turn it off.
        let c = build(
            DatabaseConfig::builder()
                .url("host=h max_queries=5")
                .max_queries(None),
        );
        assert_eq!(c.unwrap().max_queries(), None);
        let err = url("postgresql://h/db?max_queries=lots").unwrap_err();
        assert!(matches!(err, crate::Error::Config { ref field, .. } if field == "max_queries"));
    }

    #[test]
    fn command_timeout_from_setter_and_url() {
        assert_eq!(
            build(DatabaseConfig::builder()).unwrap().command_timeout(),
            None
        );
        let c = build(DatabaseConfig::builder().command_timeout(Duration::from_millis(1500)));
        let c = c.unwrap();
        assert_eq!(c.command_timeout(), Some(Duration::from_millis(1500)));
        assert_eq!(
            build(c.to_builder()).unwrap().command_timeout(),
            c.command_timeout()
        );
        let c = url("postgresql://h/db?command_timeout=3").unwrap();
        assert_eq!(c.command_timeout(), Some(Duration::from_secs(3)));
        let c = url("host=h command_timeout=250ms").unwrap();
        assert_eq!(c.command_timeout(), Some(Duration::from_millis(250)));
        assert_eq!(
            url("host=h command_timeout=0").unwrap().command_timeout(),
            None
        );
        let c = build(
            DatabaseConfig::builder()
                .url("host=h command_timeout=3")
                .command_timeout(None),
        );
        assert_eq!(c.unwrap().command_timeout(), None);
        let err = url("host=h command_timeout=soon").unwrap_err();
        assert!(
            matches!(err, crate::Error::Config { ref field, .. } if field == "command_timeout")
        );
    }
}
