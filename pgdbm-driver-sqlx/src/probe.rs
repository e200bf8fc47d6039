//! Finding out why the pool cannot connect: sqlx's pool retries refused connects silently until
//! its acquire timeout, so on a timeout the driver makes one connect of its own and gives
//! [`Error::PoolTimeout`] that cause. The same direct connect makes the pool's first connection
//! with retries.

use std::time::Duration;

use pgdbm::{BoxError, Error};
use sqlx::ConnectOptions as _;
use sqlx::Connection as _;
use sqlx::postgres::PgConnectOptions;

use crate::conn;
use crate::error::connect_cause;
use crate::pool::SqlxPool;
use crate::stats::Shared;

/// Runs the init commands on a new connection.
async fn init(conn: &mut sqlx::PgConnection, commands: &[String]) -> Result<(), Error> {
    for sql in commands {
        conn::batch_execute(conn, sql).await?;
    }
    Ok(())
}

/// One direct connect attempt (with the init commands), closed again: used to make the first
/// connection with retries and to find out why the pool cannot connect. Returns the server's
/// version number.
pub(crate) async fn probe(
    opts: &PgConnectOptions,
    commands: &[String],
    timeout: Duration,
) -> Result<Option<u32>, BoxError> {
    let mut conn = match tokio::time::timeout(timeout, opts.connect()).await {
        Ok(Ok(conn)) => conn,
        Ok(Err(e)) => return Err(connect_cause(e)),
        Err(_) => return Err(format!("connect timed out after {timeout:?}").into()),
    };
    let version = conn.server_version_num();
    let result = init(&mut conn, commands).await;
    let _ = conn.close().await;
    result
        .map(|()| version)
        .map_err(|e| Box::new(e) as BoxError)
}

impl Shared {
    /// `true` (and the time noted) when a full pool has not probed the server for a second.
    fn probe_due(&self) -> bool {
        let mut last = self.last_probe.lock().unwrap_or_else(|p| p.into_inner());
        let now = std::time::Instant::now();
        if last.is_some_and(|t| now.duration_since(t) < Duration::from_secs(1)) {
            return false;
        }
        *last = Some(now);
        true
    }
}

impl SqlxPool {
    /// The pgdbm error for sqlx's failed acquire; a timeout is given the cause a probe finds.
    pub(crate) async fn acquire_error(&self, err: sqlx::Error) -> Error {
        let shared = self.shared();
        let pool = self.inner();
        match err {
            sqlx::Error::PoolClosed => Error::PoolClosed,
            sqlx::Error::PoolTimedOut => {
                shared
                    .timed_out
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if pgdbm::driver::PoolProvider::is_closed(self) {
                    return Error::PoolClosed;
                }
                let mut last = shared.state.last_connect_error();
                // sqlx retries refused connections silently until the deadline: find out why it
                // could not connect, when the pool is not full — or when it is, at most once a
                // second, since sqlx counts connections it is still trying to open in its size
                // (all of them, while the server is down). The failure is recorded until a
                // connect succeeds.
                if last.is_none()
                    && (pool.size() < pool.options().get_max_connections() || shared.probe_due())
                {
                    let opts = pool.connect_options();
                    let timeout = self.connect_timeout().min(Duration::from_secs(2));
                    let attempt = probe(&opts, self.init_commands(), timeout);
                    if let Err(cause) = shared.state.timed_connect(attempt).await {
                        shared.state.connect_failed(&cause);
                        last = Some(cause.to_string());
                    }
                }
                Error::pool_timeout(
                    pool.options().get_acquire_timeout(),
                    last.map(|msg| shared.state.connect_error(1, msg.into())),
                )
            }
            other => {
                let cause = connect_cause(other);
                shared.state.connect_failed(&cause);
                shared.state.connect_error(1, cause)
            }
        }
    }
}
