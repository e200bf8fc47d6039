//! Multiplexing (the tokio-postgres driver's shared, pipelined connections): the setters on
//! [`DatabaseConfigBuilder`] and accessors on [`DatabaseConfig`]. What runs shared and what runs
//! on an exclusive connection is told in the crate docs' "Multiplexing" section.

use super::{DatabaseConfig, DatabaseConfigBuilder};

/// The default number of shared connections: the machine's CPUs (at least 1).
pub(super) fn default_multiplexed_connections() -> u32 {
    std::thread::available_parallelism()
        .map(|n| u32::try_from(n.get()).unwrap_or(u32::MAX))
        .unwrap_or(1)
        .max(1)
}

impl DatabaseConfigBuilder {
    /// Runs autocommit statements on a small set of shared connections, pipelined there, instead
    /// of checking out an exclusive connection for each (off by default). Transactions, COPY,
    /// listeners, `acquire()`, streams and statements that change or depend on session state
    /// still get an exclusive connection from the pool; see the crate docs' "Multiplexing"
    /// section for the rules and their limits. Connection-string key `multiplexing`
    /// (`true`/`false`, also `on`/`off`, `yes`/`no`, `1`/`0`), environment variable
    /// `PGDBM_MULTIPLEXING`.
    ///
    /// Honoured by the tokio-postgres driver (not behind a transaction pooler, where statements
    /// always run exclusive). The sqlx driver refuses it
    /// ([`Error::Config`](crate::Error::Config) naming `multiplexing` when the pool opens).
    ///
    /// ```
    /// let config = pgdbm::DatabaseConfig::from_url("postgresql://app@db/shop?multiplexing=true")?;
    /// assert!(config.multiplexing());
    /// # Ok::<(), pgdbm::Error>(())
    /// ```
    pub fn multiplexing(mut self, on: bool) -> Self {
        self.explicit.multiplexing = Some(on);
        self
    }

    /// How many shared connections multiplexing opens (default: the number of CPUs, at least 1;
    /// `0` is refused when the config is built). They come on top of `max_connections`.
    /// Connection-string key `multiplexed_connections`, environment variable
    /// `PGDBM_MULTIPLEXED_CONNECTIONS`.
    pub fn multiplexed_connections(mut self, n: u32) -> Self {
        self.explicit.multiplexed_connections = Some(n);
        self
    }
}

impl DatabaseConfig {
    /// Whether autocommit statements run multiplexed on shared connections. Set it with
    /// [`DatabaseConfigBuilder::multiplexing`].
    pub fn multiplexing(&self) -> bool {
        self.multiplexing
    }

    /// How many shared connections multiplexing opens. See
    /// [`DatabaseConfigBuilder::multiplexed_connections`].
    pub fn multiplexed_connections(&self) -> u32 {
        self.multiplexed_connections
    }
}

#[cfg(test)]
mod tests {
    use crate::DatabaseConfig;
    use crate::config::test_support::{build, url};

    #[test]
    fn multiplexing_from_setter_url_and_env() {
        let c = build(DatabaseConfig::builder()).unwrap();
        assert!(!c.multiplexing());
        assert!(c.multiplexed_connections() >= 1);
        let c = build(
            DatabaseConfig::builder()
                .multiplexing(true)
                .multiplexed_connections(3),
        );
        let c = c.unwrap();
        assert!(c.multiplexing());
        assert_eq!(c.multiplexed_connections(), 3);
        let again = build(c.to_builder()).unwrap();
        assert!(again.multiplexing());
        assert_eq!(again.multiplexed_connections(), 3);
        let c = url("postgresql://h/db?multiplexing=true&multiplexed_connections=2").unwrap();
        assert!(c.multiplexing());
        assert_eq!(c.multiplexed_connections(), 2);
        assert!(url("host=h multiplexing=on").unwrap().multiplexing());
        assert!(!url("host=h multiplexing=0").unwrap().multiplexing());
        // The explicit setter wins over the connection string.
        let c = build(
            DatabaseConfig::builder()
                .url("host=h multiplexing=true")
                .multiplexing(false),
        );
        assert!(!c.unwrap().multiplexing());
        // The environment, through DATABASE_URL.
        let c = DatabaseConfig::builder()
            .env_from(|name| {
                (name == "DATABASE_URL").then(|| "postgresql://h/db?multiplexing=yes".to_owned())
            })
            .build()
            .unwrap();
        assert!(c.multiplexing());
        // pgdbm's own variables.
        let c = DatabaseConfig::builder()
            .env_from(|name| match name {
                "PGDBM_MULTIPLEXING" => Some("true".to_owned()),
                "PGDBM_MULTIPLEXED_CONNECTIONS" => Some("4".to_owned()),
                _ => None,
            })
            .build()
            .unwrap();
        assert!(c.multiplexing());
        assert_eq!(c.multiplexed_connections(), 4);
    }

    #[test]
    fn bad_multiplexing_values_name_the_key() {
        let err = url("postgresql://h/db?multiplexing=sometimes").unwrap_err();
        assert!(matches!(err, crate::Error::Config { ref field, .. } if field == "multiplexing"));
        let err = url("postgresql://h/db?multiplexed_connections=many").unwrap_err();
        assert!(
            matches!(err, crate::Error::Config { ref field, .. } if field == "multiplexed_connections")
        );
        let err = build(DatabaseConfig::builder().multiplexed_connections(0)).unwrap_err();
        assert!(
            matches!(err, crate::Error::Config { ref field, .. } if field == "multiplexed_connections")
        );
    }
}
