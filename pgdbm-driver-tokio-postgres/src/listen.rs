//! Listener connections ([`pgdbm::Listener`]): opened with the pool's settings (TLS, server
//! settings, init commands, connect timeout), outside the pool. The connection's message stream
//! is polled inline (`Connection::poll_message`), not by a task: notifications are read when
//! the listener asks for one, or kept in order while a statement runs on the connection.

use std::collections::VecDeque;
use std::future::{Future, poll_fn};
use std::pin::pin;
use std::task::{Context, Poll};

use async_trait::async_trait;
use pgdbm::driver::{NotificationConnection, NotificationConnector};
use pgdbm::{BoxError, DatabaseConfig, Error, Notification, Result};
use tokio_postgres::{AsyncMessage, Client};

use crate::error::map;
use crate::manager::{RawConnection, connect_raw};
use crate::settings::{Tls, pg_config, plain_fallback, tls};

/// Opens listener connections with the settings of a pool (or of a config).
pub(crate) struct ListenConnector {
    config: DatabaseConfig,
    pg: tokio_postgres::Config,
    tls: Tls,
    plain: Option<tokio_postgres::Config>,
}

impl std::fmt::Debug for ListenConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ListenConnector")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl ListenConnector {
    /// The connector for `config`.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] as for the pool: TLS modes this build cannot honour, unreadable
    /// certificate files.
    pub(crate) fn new(config: &DatabaseConfig) -> Result<Self> {
        let pg = pg_config(config)?;
        Ok(Self::with_parts(config, pg, tls(config)?))
    }

    /// The connector for a pool that already built its settings and TLS connector.
    pub(crate) fn with_parts(
        config: &DatabaseConfig,
        pg: tokio_postgres::Config,
        tls: Tls,
    ) -> Self {
        ListenConnector {
            config: config.clone(),
            plain: plain_fallback(&pg),
            pg,
            tls,
        }
    }

    async fn open(&self) -> std::result::Result<PgListenConnection, BoxError> {
        let (client, connection) = connect_raw(&self.pg, &self.tls, self.plain.as_ref()).await?;
        let mut conn = PgListenConnection {
            client,
            connection,
            backlog: VecDeque::new(),
            lost: None,
        };
        for sql in self.config.init_commands() {
            conn.execute(sql)
                .await
                .map_err(|e| Box::new(e) as BoxError)?;
        }
        Ok(conn)
    }
}

#[async_trait]
impl NotificationConnector for ListenConnector {
    fn config(&self) -> &DatabaseConfig {
        &self.config
    }

    async fn connect(&self) -> std::result::Result<Box<dyn NotificationConnection>, BoxError> {
        let timeout = self.config.connect_timeout();
        match tokio::time::timeout(timeout, self.open()).await {
            Ok(conn) => Ok(Box::new(conn?)),
            Err(_) => Err(format!(
                "connect timed out after {timeout:?} (TCP, TLS, startup and authentication)"
            )
            .into()),
        }
    }
}

/// One listener connection: the client for statements, the connection polled for messages.
pub(crate) struct PgListenConnection {
    client: Client,
    connection: RawConnection,
    /// Notifications read while a statement ran, oldest first.
    backlog: VecDeque<Notification>,
    /// Why the connection ended, once it did (it is not polled again).
    lost: Option<String>,
}

impl std::fmt::Debug for PgListenConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgListenConnection")
            .field("backlog", &self.backlog.len())
            .field("lost", &self.lost)
            .finish_non_exhaustive()
    }
}

/// Reads the connection's messages until it has nothing more for now: notifications go to
/// `backlog`, notices are dropped, the end of the connection is noted in `lost`.
fn pump(
    connection: &mut RawConnection,
    backlog: &mut VecDeque<Notification>,
    lost: &mut Option<String>,
    cx: &mut Context<'_>,
) {
    while lost.is_none() {
        match connection.poll_message(cx) {
            Poll::Ready(Some(Ok(AsyncMessage::Notification(n)))) => {
                backlog.push_back(Notification::new(n.channel(), n.payload(), n.process_id()));
            }
            Poll::Ready(Some(Ok(_))) => {}
            Poll::Ready(Some(Err(e))) => *lost = Some(e.to_string()),
            Poll::Ready(None) => *lost = Some("the server closed the connection".to_owned()),
            Poll::Pending => return,
        }
    }
}

/// Runs a client request to completion while the connection is polled (it carries the
/// request), keeping the notifications that arrive meanwhile. If the connection ends first, the
/// request is given up (its answer can never come): [`Error::ConnectionLost`].
async fn drive<T>(
    connection: &mut RawConnection,
    backlog: &mut VecDeque<Notification>,
    lost: &mut Option<String>,
    sql: &str,
    request: impl Future<Output = std::result::Result<T, tokio_postgres::Error>>,
) -> Result<T> {
    let mut request = pin!(request);
    poll_fn(|cx| {
        pump(connection, backlog, lost, cx);
        if let Poll::Ready(out) = request.as_mut().poll(cx) {
            return Poll::Ready(out.map_err(|e| map(e, sql)));
        }
        match lost {
            Some(reason) => Poll::Ready(Err(ended(sql, reason))),
            None => Poll::Pending,
        }
    })
    .await
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
impl NotificationConnection for PgListenConnection {
    async fn execute(&mut self, sql: &str) -> Result<()> {
        let PgListenConnection {
            client,
            connection,
            backlog,
            lost,
        } = self;
        drive(connection, backlog, lost, sql, client.batch_execute(sql)).await
    }

    async fn next_notification(&mut self) -> Result<Notification> {
        poll_fn(|cx| {
            if self.backlog.is_empty() {
                pump(&mut self.connection, &mut self.backlog, &mut self.lost, cx);
            }
            if let Some(n) = self.backlog.pop_front() {
                return Poll::Ready(Ok(n));
            }
            match &self.lost {
                Some(reason) => Poll::Ready(Err(ended("", reason))),
                None => Poll::Pending,
            }
        })
        .await
    }

    async fn backend_pid(&mut self) -> Result<i32> {
        const SQL: &str = "SELECT pg_catalog.pg_backend_pid()";
        let PgListenConnection {
            client,
            connection,
            backlog,
            lost,
        } = self;
        let row = drive(connection, backlog, lost, SQL, client.query_one(SQL, &[])).await?;
        row.try_get::<_, i32>(0).map_err(|e| map(e, SQL))
    }
}
