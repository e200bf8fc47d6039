//! Waiting for a pooled connection, written once for every driver: how many tasks wait right now,
//! and waking every one of them the moment the pool closes.
//!
//! A driver wraps its own checkout future in [`CheckoutGate::checkout`]. A checkout that is ready
//! at its first poll (an idle connection was there) costs one branch; one that has to wait counts
//! in [`CheckoutGate::waiting`] until it gets a connection, fails, or is dropped (a cancelled
//! caller stops counting at once), and ends with [`Error::PoolClosed`] as soon as
//! [`CheckoutGate::close`] is called.

use std::future::{Future, poll_fn};
use std::pin::{Pin, pin};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::task::Poll;

use tokio::sync::Notify;

use crate::error::{Error, Result};

/// The closed flag and the waiting tasks of one pool.
///
/// A driver passes its own checkout future, pinned where it is (`std::pin::pin!`, so it is not
/// moved again on the hot path), to [`CheckoutGate::checkout`]. A checkout that is ready
/// at its first poll costs one branch; one that has to wait counts in
/// [`CheckoutGate::waiting`] until it gets a connection, fails, or is dropped, and ends with
/// [`Error::PoolClosed`] as soon as [`CheckoutGate::close`] is called.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use std::pin::pin;
/// use pgdbm::driver::CheckoutGate;
/// let gate = CheckoutGate::new();
/// // An idle connection: ready at once, nobody counted as waiting.
/// assert_eq!(gate.checkout(pin!(async { 7 })).await.unwrap(), 7);
/// // A checkout that never finishes ends when the pool closes.
/// let never = pin!(std::future::pending::<()>());
/// let waiter = gate.checkout(never);
/// let (result, ()) = tokio::join!(waiter, async {
///     tokio::task::yield_now().await;
///     assert_eq!(gate.waiting(), 1);
///     gate.close();
/// });
/// assert!(matches!(result, Err(pgdbm::Error::PoolClosed)));
/// assert_eq!(gate.waiting(), 0);
/// # }
/// ```
#[derive(Debug, Default)]
pub struct CheckoutGate {
    closed: AtomicBool,
    waiting: AtomicU32,
    on_close: Notify,
}

impl CheckoutGate {
    /// An open gate with nobody waiting.
    pub fn new() -> Self {
        Self::default()
    }

    /// `true` once [`close`](CheckoutGate::close) was called.
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Closes the gate and wakes every waiting checkout (each ends with
    /// [`Error::PoolClosed`]). Returns `true` for the call that closed it, `false` when it was
    /// closed already.
    pub fn close(&self) -> bool {
        let first = !self.closed.swap(true, Ordering::AcqRel);
        self.on_close.notify_waiters();
        first
    }

    /// Tasks waiting for a connection now.
    pub fn waiting(&self) -> u32 {
        self.waiting.load(Ordering::Relaxed)
    }

    /// Runs a driver's checkout future `checkout`, counted as waiting from its second poll on
    /// and ended by [`close`](CheckoutGate::close).
    ///
    /// # Errors
    ///
    /// [`Error::PoolClosed`] when the gate is closed before or while waiting; otherwise `Ok` with
    /// what `checkout` returned (the driver's own result).
    pub async fn checkout<F: Future>(&self, mut checkout: Pin<&mut F>) -> Result<F::Output> {
        if self.is_closed() {
            return Err(Error::PoolClosed);
        }
        let first = poll_fn(|cx| Poll::Ready(checkout.as_mut().poll(cx))).await;
        if let Poll::Ready(result) = first {
            return Ok(result);
        }
        let _counted = Waiting::start(&self.waiting);
        let mut closed = pin!(self.on_close.notified());
        closed.as_mut().enable();
        if self.is_closed() {
            return Err(Error::PoolClosed);
        }
        poll_fn(|cx| {
            if let Poll::Ready(result) = checkout.as_mut().poll(cx) {
                return Poll::Ready(Ok(result));
            }
            match closed.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Err(Error::PoolClosed)),
                Poll::Pending => Poll::Pending,
            }
        })
        .await
    }
}

/// One task counted as waiting, until it is dropped.
struct Waiting<'a>(&'a AtomicU32);

impl<'a> Waiting<'a> {
    fn start(count: &'a AtomicU32) -> Self {
        count.fetch_add(1, Ordering::Relaxed);
        Waiting(count)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test(flavor = "current_thread")]
    async fn a_cancelled_waiter_stops_counting() {
        let gate = CheckoutGate::new();
        for _ in 0..10 {
            let waited = tokio::time::timeout(
                Duration::from_millis(1),
                gate.checkout(pin!(std::future::pending::<()>())),
            )
            .await;
            assert!(waited.is_err(), "timed out");
        }
        assert_eq!(gate.waiting(), 0);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn closed_gate_refuses_at_once() {
        let gate = CheckoutGate::new();
        assert!(gate.close());
        assert!(!gate.close());
        let result = gate.checkout(pin!(async { 1 })).await;
        assert!(matches!(result, Err(Error::PoolClosed)));
    }
}
