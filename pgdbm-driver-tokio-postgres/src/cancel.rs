//! Cancel requests whose delivery is confirmed.
//!
//! tokio-postgres' `CancelToken::cancel_query` returns as soon as the request is written: the
//! server may signal the backend later, when a statement sent after the cancel already runs —
//! which it would then cancel instead (the conformance check
//! `cancel_never_hits_a_later_statement` catches exactly that). The server closes a cancel
//! connection only after it has signalled the backend, so [`CancelTarget::cancel`] hands
//! tokio-postgres a socket whose shutdown also waits until the server closed it: when it
//! returns, the signal has been sent, and a statement sent afterwards is never hit by it (see
//! `pgdbm::driver::cancel`).

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use pgdbm::{Error, Result};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_postgres::CancelToken;
use tokio_postgres::tls::MakeTlsConnect;

use crate::error::map;
use crate::host::is_unix_socket;
use crate::settings::Tls;

/// Where cancel requests go: the server's host (or socket directory) and port.
#[derive(Debug)]
pub(crate) struct CancelTarget {
    pub(crate) host: String,
    pub(crate) port: u16,
}

const WHAT: &str = "(cancel request)";

fn io_error(err: io::Error) -> Error {
    Error::connection_lost(
        WHAT,
        "cannot reach the server to cancel a statement",
        Some(Box::new(err)),
    )
}

impl CancelTarget {
    /// Sends `token`'s cancel request (with TLS when the connection used it) and returns once
    /// the server closed the cancel connection, i.e. after it signalled the backend.
    pub(crate) async fn cancel(&self, token: &CancelToken, tls: Tls) -> Result<()> {
        if is_unix_socket(&self.host) {
            #[cfg(unix)]
            {
                let path = format!("{}/.s.PGSQL.{}", self.host, self.port);
                let stream = tokio::net::UnixStream::connect(path)
                    .await
                    .map_err(io_error)?;
                return send(token, tls, &self.host, stream).await;
            }
            #[cfg(not(unix))]
            return Err(io_error(io::Error::other(
                "Unix sockets are not supported here",
            )));
        }
        let stream = tokio::net::TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(io_error)?;
        stream.set_nodelay(true).map_err(io_error)?;
        send(token, tls, &self.host, stream).await
    }
}

async fn send<S>(token: &CancelToken, mut tls: Tls, host: &str, stream: S) -> Result<()>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let connect =
        MakeTlsConnect::<UntilClosed<S>>::make_tls_connect(&mut tls, host).map_err(|e| {
            Error::query(
                WHAT,
                "cannot set up TLS for a cancel request",
                Some(boxed(e)),
            )
        })?;
    token
        .cancel_query_raw(UntilClosed::new(stream), connect)
        .await
        .map_err(|e| map(e, WHAT))
}

/// The TLS connector's error, boxed (it is already one with TLS, `NoTlsError` without).
fn boxed(err: impl Into<pgdbm::BoxError>) -> pgdbm::BoxError {
    err.into()
}

/// A socket whose shutdown returns only once the peer closed it (or the connection failed).
struct UntilClosed<S> {
    inner: S,
    shut: bool,
}

impl<S> UntilClosed<S> {
    fn new(inner: S) -> Self {
        UntilClosed { inner, shut: false }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for UntilClosed<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for UntilClosed<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if !this.shut {
            // A failed shutdown (the server was quicker) is as good as done.
            let _ = ready!(Pin::new(&mut this.inner).poll_shutdown(cx));
            this.shut = true;
        }
        let mut scratch = [0u8; 64];
        loop {
            let mut buf = ReadBuf::new(&mut scratch);
            match ready!(Pin::new(&mut this.inner).poll_read(cx, &mut buf)) {
                Ok(()) if buf.filled().is_empty() => return Poll::Ready(Ok(())),
                Ok(()) => {}
                // Reset by the server as it went away: closed all the same.
                Err(_) => return Poll::Ready(Ok(())),
            }
        }
    }
}
