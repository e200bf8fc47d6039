//! bb8's connection manager: opens tokio-postgres connections (bounded by the connect timeout,
//! with `prefer`'s plain fallback and the init commands), checks them at checkout for free, and
//! keeps the state the pool shares with it.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use bb8::ManageConnection;
use pgdbm::driver::{PoolState, TlsError};
use pgdbm::{BoxError, Error, Result};

use crate::cancel::CancelTarget;
use crate::conn::PgConn;
use crate::error::db_error;
use crate::settings::{Tls, handshake_failed};

/// State shared by the manager and the pool.
#[derive(Debug)]
pub(crate) struct Shared {
    /// Closed flag and waiting checkouts.
    pub(crate) state: PoolState,
    /// Connections made outside bb8 (the first one, handed to it with `add`), and those of them
    /// closed at once: bb8 counts neither.
    pub(crate) made_outside: AtomicU64,
    pub(crate) closed_outside: AtomicU64,
}

/// bb8's connection manager: opens tokio-postgres connections with the configured settings.
pub(crate) struct Manager {
    pub(crate) pg: tokio_postgres::Config,
    pub(crate) tls: Tls,
    /// For `prefer`/`allow`: the same settings without TLS, tried when the TLS handshake fails
    /// (libpq does the same).
    pub(crate) plain: Option<tokio_postgres::Config>,
    /// Behind a session pooler: the guardrail settings as `SET`s, run before the init commands.
    pub(crate) connect_sql: Option<String>,
    pub(crate) init_commands: Vec<String>,
    /// Where the cancel requests of its connections go.
    pub(crate) cancel_target: Arc<CancelTarget>,
    pub(crate) cache_capacity: usize,
    /// `max_queries`: statements a connection runs before it is recycled.
    pub(crate) max_statements: Option<u64>,
    /// Behind a transaction pooler: unnamed statements only (see `unnamed.rs`).
    pub(crate) unnamed: bool,
    /// Bounds a whole connect attempt: TCP, TLS, startup, authentication and init commands
    /// (tokio-postgres' own `connect_timeout` covers the TCP connect only).
    pub(crate) connect_timeout: Duration,
    pub(crate) shared: Arc<Shared>,
}

impl std::fmt::Debug for Manager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Manager")
            .field("target", self.shared.state.target())
            .finish_non_exhaustive()
    }
}

impl Manager {
    /// One connect attempt, bounded as a whole by the connect timeout (as libpq's
    /// `connect_timeout`), so a server that accepts and never answers cannot hang it.
    pub(crate) async fn open(&self) -> std::result::Result<PgConn, BoxError> {
        match tokio::time::timeout(self.connect_timeout, self.establish()).await {
            Ok(result) => result,
            Err(_) => Err(format!(
                "connect timed out after {:?} (TCP, TLS, startup and authentication)",
                self.connect_timeout
            )
            .into()),
        }
    }

    /// One connect attempt, with the init commands run on the new connection.
    async fn establish(&self) -> std::result::Result<PgConn, BoxError> {
        let (client, connection) = connect_raw(&self.pg, &self.tls, self.plain.as_ref()).await?;
        let task = tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "pgdbm: connection closed with an error");
            }
        });
        for sql in self.connect_sql.iter().chain(&self.init_commands) {
            client
                .batch_execute(sql)
                .await
                .map_err(|e| Box::new(crate::error::map(e, sql)) as BoxError)?;
        }
        Ok(PgConn::new(
            client,
            task.abort_handle(),
            self.cache_capacity,
            self.unnamed,
            self.tls.clone(),
            Arc::clone(&self.cancel_target),
            self.max_statements,
        ))
    }
}

/// A connection of the server's, whose message stream the caller drives (a pool's connection
/// spawns it as a task, a listener's polls it for notifications).
pub(crate) type RawConnection = tokio_postgres::Connection<
    tokio_postgres::Socket,
    <Tls as tokio_postgres::tls::MakeTlsConnect<tokio_postgres::Socket>>::Stream,
>;

/// Connects with `pg` (TLS as its mode says), then, for `prefer`/`allow`, with `plain` when
/// the TLS handshake failed (as libpq does).
#[cfg_attr(not(feature = "tls"), allow(clippy::clone_on_copy))] // `NoTls` is `Copy`
pub(crate) async fn connect_raw(
    pg: &tokio_postgres::Config,
    tls: &Tls,
    plain: Option<&tokio_postgres::Config>,
) -> std::result::Result<(tokio_postgres::Client, RawConnection), BoxError> {
    match pg.connect(tls.clone()).await {
        Ok(pair) => Ok(pair),
        Err(e) => match plain {
            Some(plain) if handshake_failed(&e) => {
                tracing::debug!(
                    error = %connect_cause(e),
                    "pgdbm: TLS handshake failed, connecting without TLS (ssl_mode prefer)"
                );
                plain.connect(tls.clone()).await.map_err(connect_cause)
            }
            _ => Err(connect_cause(e)),
        },
    }
}

/// The cause of a failed connect: the server's own error when it sent one (an authentication
/// failure says so), a [`TlsError`] when TLS failed for good (a refused certificate, a server
/// without TLS where it is required), the driver's error otherwise.
fn connect_cause(err: tokio_postgres::Error) -> BoxError {
    if let Some(db) = err.as_db_error() {
        return Box::new(Error::from(db_error(db)));
    }
    if let Some(source) = std::error::Error::source(&err) {
        if let Some(tls) = source.downcast_ref::<TlsError>() {
            return Box::new(tls.clone());
        }
        // tokio-postgres' own words when the server asks for a password the config lacks:
        // a configuration error, which retrying cannot fix.
        if source.to_string() == "password missing" {
            return Box::new(Error::config(
                "password",
                "the server asks for a password and none is configured",
            ));
        }
        // tokio-postgres' own words when the server answers the TLS request with "no".
        if source.to_string() == "server does not support TLS" {
            return Box::new(TlsError::new(
                "the server does not support TLS, and ssl_mode (require, verify-ca or \
                 verify-full) requires it",
            ));
        }
    }
    Box::new(err)
}

impl ManageConnection for Manager {
    type Connection = PgConn;
    type Error = Error;

    async fn connect(&self) -> Result<PgConn> {
        if self.shared.state.is_closed() {
            return Err(Error::PoolClosed);
        }
        match self.shared.state.timed_connect(self.open()).await {
            Ok(conn) => {
                self.shared.state.connect_succeeded();
                Ok(conn)
            }
            Err(cause) => {
                self.shared.state.connect_failed(&cause);
                Err(self.shared.state.connect_error(1, cause))
            }
        }
    }

    /// Run at every checkout (`test_on_check_out`), so it must stay free: no round trip, only
    /// whether the connection's task has seen the socket close (a backend ended by
    /// `pg_terminate_backend`, a server restart). Such a connection is dropped and the next idle
    /// one (or a new one) is handed out instead, so the caller's statement does not fail on it.
    async fn is_valid(&self, conn: &mut PgConn) -> Result<()> {
        if conn.is_broken() {
            return Err(Error::connection_lost(
                "",
                "the pooled connection was closed while idle",
                None,
            ));
        }
        Ok(())
    }

    fn has_broken(&self, conn: &mut PgConn) -> bool {
        self.shared.state.is_closed() || conn.is_broken()
    }
}
