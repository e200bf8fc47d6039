//! A statement whose future was dropped while the server runs it (a timeout, a `select!`, a
//! client gone): stopping it on the server and getting the connection back, written once for
//! every driver.
//!
//! Two situations, two tools:
//!
//! * **A pool's own statement** (the connection was lent to that one statement): the driver
//!   hands the connection to [`recover_in_background`] through the [`Abandoned`] trait. A
//!   background task sends the server a cancel request, then runs trivial round trips on the
//!   connection until it answers one cleanly (rolling back a transaction the cancelled script
//!   left aborted), and only then gives it back to the pool. Anything else — the cancel cannot
//!   be sent, the connection fails, [`RECOVERY_LIMIT`] passes — closes it instead. Until then
//!   the connection stays checked out: nobody else is handed it.
//! * **A checked-out connection** (a transaction's, or `Database::acquire`'s): the owner keeps
//!   the connection, so only the cancel is sent, by [`CancelGate::cancel_in_background`]. The
//!   owner's next statement waits in [`CancelGate::pass`] until the cancel request has been
//!   taken by the server, so the cancel can only hit the abandoned statement, never the next
//!   one — its `ROLLBACK`, say, which then no longer waits for the abandoned statement to end.
//!
//! Why a statement sent after the cancel was delivered is safe: the server signals the backend
//! before it answers the cancel request, and a backend that receives the signal while it is not
//! running a statement drops it when it reads the next command. So the cancel ends the abandoned
//! statement (`57014`), or nothing.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::error::{Error, Result};

/// How long the background work for an abandoned statement may take (cancel, then the round
/// trips that show the connection idle) before the connection is closed instead.
pub const RECOVERY_LIMIT: Duration = Duration::from_secs(5);

/// The SQLSTATE of a statement sent inside a transaction that an error aborted.
const IN_FAILED_TRANSACTION: &str = "25P02";

/// A pooled connection whose statement was abandoned, as a driver lets
/// [`recover_in_background`] work on it.
pub trait Abandoned: Send + 'static {
    /// Asks the server to cancel what runs on this connection, through another channel (a
    /// protocol cancel request). Resolves once the server has taken the request.
    ///
    /// # Errors
    ///
    /// When the request could not be delivered; the connection is then closed.
    fn cancel(&self) -> impl Future<Output = Result<()>> + Send;

    /// Runs `sql` (a simple-protocol statement without parameters) on the connection, after
    /// whatever was sent on it before.
    ///
    /// # Errors
    ///
    /// The server's error, or a connection error.
    fn run(&mut self, sql: &'static str) -> impl Future<Output = Result<()>> + Send;

    /// Gives the connection back: to the pool when `clean` (idle, outside any transaction),
    /// closed otherwise.
    fn release(self, clean: bool);
}

/// Cancels the abandoned statement of `conn` and waits until the connection answers a trivial
/// round trip cleanly: `true` when it may be pooled again, `false` when it must be closed. At
/// most [`RECOVERY_LIMIT`].
pub async fn recover<A: Abandoned>(conn: &mut A) -> bool {
    let work = async {
        conn.cancel().await?;
        for _ in 0..3 {
            match conn.run("SELECT 1").await {
                Ok(()) => return Ok(true),
                // The abandoned script opened a transaction and the cancel aborted it.
                Err(e) if e.code() == Some(IN_FAILED_TRANSACTION) => {
                    conn.run("ROLLBACK").await?;
                }
                // The probe itself was cancelled (cannot happen as explained in the module
                // docs, but a pooler in between may deliver cancels late): try again.
                Err(e) if e.is_query_canceled() => {}
                Err(e) => return Err(e),
            }
        }
        Ok::<_, Error>(false)
    };
    match tokio::time::timeout(RECOVERY_LIMIT, work).await {
        Ok(Ok(clean)) => clean,
        Ok(Err(e)) => {
            tracing::debug!(error = %e, "pgdbm: closing a connection whose abandoned statement could not be cancelled");
            false
        }
        Err(_) => {
            tracing::debug!(
                "pgdbm: closing a connection whose abandoned statement did not end within {RECOVERY_LIMIT:?}"
            );
            false
        }
    }
}

/// Runs [`recover`] for `conn` on a background task, then [`Abandoned::release`]s it. Without a
/// tokio runtime (a drop outside one) the connection is released as not clean, i.e. closed.
pub fn recover_in_background<A: Abandoned>(mut conn: A) {
    match tokio::runtime::Handle::try_current() {
        Ok(rt) => {
            rt.spawn(async move {
                let clean = recover(&mut conn).await;
                conn.release(clean);
            });
        }
        Err(_) => conn.release(false),
    }
}

/// Where the statements of one checked-out connection wait while a cancel request for an
/// abandoned statement on it is on its way (see the [module docs](self)).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use pgdbm::driver::CancelGate;
/// let gate = CancelGate::new();
/// gate.pass().await; // nothing pending: one atomic load
/// let (tx, rx) = tokio::sync::oneshot::channel::<()>();
/// assert!(gate.cancel_in_background(async move {
///     let _ = rx.await; // the cancel request, delivered when the server answers
///     Ok(())
/// }));
/// assert!(gate.is_pending());
/// tx.send(()).unwrap();
/// gate.pass().await; // returns once the cancel was delivered
/// assert!(!gate.is_pending());
/// # }
/// ```
#[derive(Debug, Default)]
pub struct CancelGate {
    pending: Arc<AtomicBool>,
    lock: Arc<tokio::sync::Mutex<()>>,
}

impl CancelGate {
    /// A gate with no cancel pending.
    pub fn new() -> Self {
        Self::default()
    }

    /// `true` while a cancel request is on its way.
    pub fn is_pending(&self) -> bool {
        self.pending.load(Ordering::Acquire)
    }

    /// Returns once no cancel request is on its way: at once (one atomic load) in the common
    /// case. Call it before sending each statement on the connection.
    pub async fn pass(&self) {
        if self.is_pending() {
            drop(self.lock.lock().await);
        }
    }

    /// Runs `cancel` (delivering a cancel request for the connection's running statement) on a
    /// background task, bounded by [`RECOVERY_LIMIT`]; [`pass`](CancelGate::pass) waits until
    /// it finished. `false` (and nothing sent) without a tokio runtime or when a cancel is
    /// already on its way.
    pub fn cancel_in_background<F>(&self, cancel: F) -> bool
    where
        F: Future<Output = Result<()>> + Send + 'static,
    {
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return false;
        };
        let Ok(guard) = self.lock.clone().try_lock_owned() else {
            return false;
        };
        self.pending.store(true, Ordering::Release);
        let pending = self.pending.clone();
        rt.spawn(async move {
            match tokio::time::timeout(RECOVERY_LIMIT, cancel).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    tracing::debug!(error = %e, "pgdbm: the cancel request for an abandoned statement failed");
                }
                Err(_) => tracing::debug!("pgdbm: the cancel request for an abandoned statement timed out"),
            }
            pending.store(false, Ordering::Release);
            drop(guard);
        });
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// A connection that records what recovery ran on it, answering each statement from a script.
    struct Scripted {
        answers: Vec<Result<()>>,
        ran: Arc<Mutex<Vec<&'static str>>>,
        released: Arc<Mutex<Option<bool>>>,
        cancel_ok: bool,
    }

    impl Abandoned for Scripted {
        async fn cancel(&self) -> Result<()> {
            self.ran.lock().unwrap().push("cancel");
            if self.cancel_ok {
                Ok(())
            } else {
                Err(Error::query("", "refused", None))
            }
        }
        async fn run(&mut self, sql: &'static str) -> Result<()> {
            self.ran.lock().unwrap().push(sql);
            if self.answers.is_empty() {
                Ok(())
            } else {
                self.answers.remove(0)
            }
        }
        fn release(self, clean: bool) {
            *self.released.lock().unwrap() = Some(clean);
        }
    }

    fn db_error(code: &str) -> Error {
        crate::DbError::new(code, "server said no").into()
    }

    async fn run(answers: Vec<Result<()>>, cancel_ok: bool) -> (Vec<&'static str>, Option<bool>) {
        let ran = Arc::default();
        let released = Arc::default();
        let conn = Scripted {
            answers,
            ran: Arc::clone(&ran),
            released: Arc::clone(&released),
            cancel_ok,
        };
        recover_in_background(conn);
        for _ in 0..100 {
            if released.lock().unwrap().is_some() {
                break;
            }
            tokio::task::yield_now().await;
        }
        let ran = ran.lock().unwrap().clone();
        let released = *released.lock().unwrap();
        (ran, released)
    }

    #[tokio::test]
    async fn a_clean_round_trip_pools_the_connection() {
        assert_eq!(
            run(vec![], true).await,
            (vec!["cancel", "SELECT 1"], Some(true))
        );
    }

    #[tokio::test]
    async fn an_aborted_transaction_is_rolled_back_first() {
        let (ran, released) = run(vec![Err(db_error("25P02"))], true).await;
        assert_eq!(ran, ["cancel", "SELECT 1", "ROLLBACK", "SELECT 1"]);
        assert_eq!(released, Some(true));
    }

    #[tokio::test]
    async fn a_cancelled_probe_is_tried_again() {
        let (ran, released) = run(vec![Err(db_error("57014"))], true).await;
        assert_eq!(ran, ["cancel", "SELECT 1", "SELECT 1"]);
        assert_eq!(released, Some(true));
    }

    #[tokio::test]
    async fn failures_close_the_connection() {
        assert_eq!(run(vec![], false).await, (vec!["cancel"], Some(false)));
        let (_, released) = run(vec![Err(db_error("08006"))], true).await;
        assert_eq!(released, Some(false));
        let canceled = || Err(db_error("57014"));
        let (ran, released) = run(vec![canceled(), canceled(), canceled()], true).await;
        assert_eq!(ran.len(), 4);
        assert_eq!(released, Some(false));
    }

    #[test]
    fn without_a_runtime_the_connection_is_closed() {
        let released = Arc::new(Mutex::new(None));
        recover_in_background(Scripted {
            answers: vec![],
            ran: Arc::default(),
            released: Arc::clone(&released),
            cancel_ok: true,
        });
        assert_eq!(*released.lock().unwrap(), Some(false));
        assert!(!CancelGate::new().cancel_in_background(async { Ok(()) }));
    }
}
