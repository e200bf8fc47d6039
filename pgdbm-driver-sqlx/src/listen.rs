//! Listener connections ([`pgdbm::Listener`]) on sqlx's `PgListener`: each one on a private
//! one-connection `PgPool` with the pool's connect options and init commands, outside the
//! application's pool. sqlx's own reconnect is switched off: a lost connection is reported, and
//! the pgdbm core reconnects and re-subscribes.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use pgdbm::driver::{NotificationConnection, NotificationConnector};
use pgdbm::{BoxError, DatabaseConfig, Error, Notification, Result};
use sqlx::postgres::{PgConnectOptions, PgListener, PgPool, PgPoolOptions};

use crate::error::{connect_cause, map};

/// Opens listener connections with the settings of a pool (or of a config).
pub(crate) struct ListenConnector {
    config: DatabaseConfig,
    opts: PgConnectOptions,
    init_commands: Arc<[String]>,
}

impl std::fmt::Debug for ListenConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ListenConnector")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl ListenConnector {
    /// The connector for `config`, connecting with `opts` (built from it).
    pub(crate) fn new(config: &DatabaseConfig, opts: PgConnectOptions) -> Self {
        ListenConnector {
            config: config.clone(),
            opts,
            init_commands: config.init_commands().into(),
        }
    }

    /// The connector of a wrapped `PgPool`: its connect options, no init commands (its
    /// `after_connect` hook is the application's and does not apply), the default retry
    /// policy and connect timeout.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] when the pool's target cannot be described as a config.
    pub(crate) fn for_wrapped(opts: PgConnectOptions) -> Result<Self> {
        let host = opts
            .get_socket()
            .map_or_else(|| opts.get_host().to_owned(), |s| s.display().to_string());
        let config = DatabaseConfig::builder()
            .host(host)
            .port(opts.get_port())
            .database(opts.get_database().unwrap_or("postgres"))
            .user(opts.get_username())
            .build()?;
        Ok(ListenConnector {
            config,
            opts,
            init_commands: Arc::new([]),
        })
    }

    async fn open(&self) -> std::result::Result<SqlxListenConnection, BoxError> {
        let timeout = self.config.connect_timeout();
        let commands = self.init_commands.clone();
        let pool = PgPoolOptions::new()
            .max_connections(1)
            .min_connections(0)
            .max_lifetime(None)
            .idle_timeout(None)
            .acquire_timeout(timeout)
            .test_before_acquire(false)
            .after_connect(move |conn, _meta| {
                let commands = commands.clone();
                Box::pin(async move {
                    for sql in commands.iter() {
                        sqlx::Executor::execute(&mut *conn, sqlx::raw_sql(sql)).await?;
                    }
                    Ok(())
                })
            })
            .connect_lazy_with(self.opts.clone());
        match PgListener::connect_with(&pool).await {
            Ok(mut listener) => {
                listener.ignore_pool_close_event(true);
                listener.eager_reconnect(false);
                Ok(SqlxListenConnection {
                    listener,
                    pool,
                    lost: None,
                })
            }
            // sqlx retries a refused connect silently until the deadline: say why it failed.
            Err(sqlx::Error::PoolTimedOut) => {
                let probe = timeout.min(Duration::from_secs(2));
                crate::probe::probe(&self.opts, &self.init_commands, probe).await?;
                Err(format!("connect timed out after {timeout:?}").into())
            }
            Err(e) => Err(connect_cause(e)),
        }
    }
}

#[async_trait]
impl NotificationConnector for ListenConnector {
    fn config(&self) -> &DatabaseConfig {
        &self.config
    }

    async fn connect(&self) -> std::result::Result<Box<dyn NotificationConnection>, BoxError> {
        Ok(Box::new(self.open().await?))
    }
}

/// One listener connection: a `PgListener` on its private pool.
pub(crate) struct SqlxListenConnection {
    listener: PgListener,
    pool: PgPool,
    /// Why the connection ended, once it did: it is not used again (sqlx would reconnect).
    lost: Option<String>,
}

impl std::fmt::Debug for SqlxListenConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlxListenConnection")
            .field("lost", &self.lost)
            .finish_non_exhaustive()
    }
}

impl SqlxListenConnection {
    /// `Err` when the connection has ended.
    fn check(&self, sql: &str) -> Result<()> {
        match &self.lost {
            Some(reason) => Err(ended(sql, reason)),
            None => Ok(()),
        }
    }

    /// Maps an error, noting a lost connection.
    fn fail(&mut self, err: sqlx::Error, sql: &str) -> Error {
        let err = map(err, sql);
        if err.is_connection_error() {
            self.lost = Some(err.to_string());
        }
        err
    }
}

/// The error of a connection that has ended.
fn ended(sql: &str, reason: &str) -> Error {
    Error::connection_lost(
        sql,
        format!("the listener's connection ended: {reason}"),
        None,
    )
}

#[async_trait]
impl NotificationConnection for SqlxListenConnection {
    async fn execute(&mut self, sql: &str) -> Result<()> {
        self.check(sql)?;
        let run = sqlx::Executor::execute(&mut self.listener, sqlx::raw_sql(sql));
        match run.await {
            Ok(_) => Ok(()),
            Err(e) => Err(self.fail(e, sql)),
        }
    }

    async fn next_notification(&mut self) -> Result<Notification> {
        self.check("")?;
        // Cancel safe: sqlx reads whole messages only, keeping partial ones in its buffer.
        match self.listener.try_recv().await {
            Ok(Some(n)) => Ok(Notification::new(
                n.channel(),
                n.payload(),
                i32::try_from(n.process_id()).unwrap_or(i32::MAX),
            )),
            Ok(None) => {
                let reason = "the server closed the connection";
                self.lost = Some(reason.to_owned());
                Err(ended("", reason))
            }
            Err(e) => {
                // Whatever failed, this connection is done with.
                self.lost = Some(e.to_string());
                Err(map(e, ""))
            }
        }
    }

    async fn backend_pid(&mut self) -> Result<i32> {
        const SQL: &str = "SELECT pg_catalog.pg_backend_pid()";
        self.check(SQL)?;
        let run = sqlx::Executor::fetch_one(&mut self.listener, sqlx::query(SQL));
        match run
            .await
            .and_then(|row| sqlx::Row::try_get::<i32, _>(&row, 0))
        {
            Ok(pid) => Ok(pid),
            Err(e) => Err(self.fail(e, SQL)),
        }
    }
}

impl Drop for SqlxListenConnection {
    /// Closes the private pool, so the connection is closed (not kept idle) once the
    /// `PgListener` returns it.
    fn drop(&mut self) {
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let pool = self.pool.clone();
            runtime.spawn(async move { pool.close().await });
        }
    }
}
