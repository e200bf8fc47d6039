//! The handshake (tokio-postgres' [`MakeTlsConnect`]/[`TlsConnect`] on tokio-rustls), its
//! failures, and the TLS stream with its channel binding.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use pgdbm::BoxError;
use pgdbm::driver::TlsError;
use rustls::CertificateError;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_postgres::tls::{ChannelBinding, MakeTlsConnect, TlsConnect, TlsStream};

use super::channel_binding::server_end_point;
use super::{MakeRustls, Verification};

impl<S> MakeTlsConnect<S> for MakeRustls
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = RustlsStream<S>;
    type TlsConnect = RustlsConnect;
    type Error = BoxError;

    /// Called for every connection attempt, also without TLS (`domain` is then empty): nothing
    /// can fail here; the host name is checked in the handshake.
    fn make_tls_connect(&mut self, domain: &str) -> std::result::Result<RustlsConnect, BoxError> {
        Ok(RustlsConnect {
            maker: self.clone(),
            domain: domain.to_owned(),
        })
    }
}

/// One TLS handshake, for the host `domain`.
#[derive(Debug)]
pub(crate) struct RustlsConnect {
    maker: MakeRustls,
    domain: String,
}

impl RustlsConnect {
    /// The name sent as SNI (DNS names only) and checked by `verify-full`. In the other modes a
    /// host that is neither a DNS name nor an IP address still connects, without SNI.
    fn server_name(&self) -> std::result::Result<ServerName<'static>, BoxError> {
        match ServerName::try_from(self.domain.clone()) {
            Ok(name) => Ok(name),
            Err(_) if self.maker.verification != Verification::Full => Ok(ServerName::IpAddress(
                std::net::Ipv4Addr::UNSPECIFIED.into(),
            )),
            Err(e) => Err(Box::new(TlsError::new(format!(
                "ssl_mode verify-full: host {:?} cannot be checked against the server certificate ({e})",
                self.domain
            )))),
        }
    }

    /// A handshake failure: a [`TlsError`] (not retried) when rustls refused something, a
    /// [`HandshakeIo`] when the connection broke.
    fn failure(&self, err: io::Error) -> BoxError {
        let Some(tls) = err
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        else {
            return Box::new(HandshakeIo(err));
        };
        Box::new(TlsError::new(self.describe(tls)))
    }

    fn describe(&self, err: &rustls::Error) -> String {
        let roots = if self.maker.own_roots {
            "ssl_ca_file"
        } else {
            "the webpki (public) roots, as no ssl_ca_file is set"
        };
        match err {
            rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            ) => format!(
                "TLS: server certificate not valid for host name {:?} (ssl_mode verify-full checks it; verify-ca does not): {err}",
                self.domain
            ),
            rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer) => format!(
                "TLS: server certificate not trusted: unknown issuer (its chain does not lead to a CA in {roots}): {err}"
            ),
            rustls::Error::InvalidCertificate(_) => {
                format!("TLS: server certificate refused: {err}")
            }
            rustls::Error::AlertReceived(_) => format!(
                "TLS handshake refused by the server: {err} (check the client certificate and key, and the server's TLS settings)"
            ),
            _ => format!("TLS handshake failed: {err}"),
        }
    }
}

impl<S> TlsConnect<S> for RustlsConnect
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = RustlsStream<S>;
    type Error = BoxError;
    type Future =
        Pin<Box<dyn Future<Output = std::result::Result<RustlsStream<S>, BoxError>> + Send>>;

    fn connect(self, stream: S) -> Self::Future {
        Box::pin(async move {
            let Some(config) = self.maker.config.clone() else {
                return Err(
                    Box::new(TlsError::new("TLS is not configured for this pool")) as BoxError,
                );
            };
            let name = self.server_name()?;
            let stream = tokio_rustls::TlsConnector::from(config)
                .connect(name, stream)
                .await
                .map_err(|e| self.failure(e))?;
            Ok(RustlsStream(stream))
        })
    }
}

/// The connection broke during the TLS handshake (worth a retry, unlike a [`TlsError`]).
#[derive(Debug)]
pub(crate) struct HandshakeIo(io::Error);

impl std::fmt::Display for HandshakeIo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the connection broke during the TLS handshake: {}",
            self.0
        )
    }
}

impl std::error::Error for HandshakeIo {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

/// `true` when `err` is a failed TLS handshake (after the server agreed to TLS): libpq's `prefer`
/// then tries again without TLS.
pub(crate) fn handshake_failed(err: &tokio_postgres::Error) -> bool {
    std::error::Error::source(err).is_some_and(|s| s.is::<TlsError>() || s.is::<HandshakeIo>())
}

/// A TLS connection to the server.
#[derive(Debug)]
pub(crate) struct RustlsStream<S>(tokio_rustls::client::TlsStream<S>);

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for RustlsStream<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for RustlsStream<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.0.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> TlsStream for RustlsStream<S> {
    /// `tls-server-end-point` (RFC 5929): the hash of the server's certificate, so that
    /// SCRAM-SHA-256-PLUS binds the authentication to this TLS session.
    fn channel_binding(&self) -> ChannelBinding {
        let (_, conn) = self.0.get_ref();
        match conn
            .peer_certificates()
            .and_then(|chain| chain.first())
            .and_then(|cert| server_end_point(cert))
        {
            Some(hash) => ChannelBinding::tls_server_end_point(hash),
            None => ChannelBinding::none(),
        }
    }
}
