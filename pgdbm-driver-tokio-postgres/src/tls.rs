//! TLS for tokio-postgres on rustls (ring provider): libpq's `sslmode`s, client certificates and
//! SCRAM channel binding.
//!
//! tokio-postgres itself knows only `disable`, `prefer` and `require` and leaves the handshake to
//! a [`MakeTlsConnect`] implementation. This module is that implementation, and it is where the
//! certificate checks of libpq's modes live:
//!
//! | `ssl_mode` | tokio-postgres | server certificate |
//! |---|---|---|
//! | `disable` | `disable` | — |
//! | `allow`, `prefer` | `prefer` (plain if the server refuses TLS; the pool retries plain when the handshake fails) | not checked; with `ssl_ca_file`, chain checked |
//! | `require` | `require` | not checked; with `ssl_ca_file`, chain checked (libpq: as `verify-ca`) |
//! | `verify-ca` | `require` | chain checked against `ssl_ca_file` (else the webpki roots) |
//! | `verify-full` | `require` | chain and host name (DNS name or IP address) checked |
//!
//! Over a Unix socket there is never TLS, whatever the mode (as in libpq).
//!
//! The rustls [`ClientConfig`] is built once per pool ([`MakeRustls::new`]); each connection
//! only clones an `Arc`.

use std::future::Future;
use std::io;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use pgdbm::connect::TlsError;
use pgdbm::{BoxError, Error, Result, SslConfig, SslMode};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use sha2::Digest;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_postgres::config::SslMode as PgSslMode;
use tokio_postgres::tls::{ChannelBinding, MakeTlsConnect, TlsConnect, TlsStream};

use crate::pool::is_unix_socket;

/// tokio-postgres' mode for libpq's `mode` on `host`. The certificate checks of `verify-ca` and
/// `verify-full` are done by the verifier that [`MakeRustls::new`] installs.
pub(crate) fn ssl_mode(mode: SslMode, host: &str) -> PgSslMode {
    if is_unix_socket(host) {
        // libpq never negotiates TLS over a Unix socket (the server would refuse it anyway).
        return PgSslMode::Disable;
    }
    match mode {
        SslMode::Disable => PgSslMode::Disable,
        SslMode::Allow | SslMode::Prefer => PgSslMode::Prefer,
        _ => PgSslMode::Require,
    }
}

/// What the client checks of the server's certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verification {
    /// Nothing but the handshake signature (`prefer`, `require` without a root file).
    None,
    /// The chain up to a trusted root; not the host name (`verify-ca`, or a root file given).
    Chain,
    /// The chain and the host name (`verify-full`).
    Full,
}

/// The checks libpq makes in `ssl`'s mode: a root certificate file turns the weak modes into
/// `verify-ca`.
pub(crate) fn verification(ssl: &SslConfig) -> Verification {
    match ssl.mode {
        SslMode::VerifyFull => Verification::Full,
        SslMode::VerifyCa => Verification::Chain,
        _ if ssl.ca_file.is_some() => Verification::Chain,
        _ => Verification::None,
    }
}

/// tokio-postgres' TLS connector for a pool: the rustls configuration, built once.
#[derive(Clone)]
pub(crate) struct MakeRustls {
    /// `None` when this pool never uses TLS (`disable`, or a Unix socket).
    config: Option<Arc<ClientConfig>>,
    verification: Verification,
    /// `true` when the roots come from `ssl_ca_file` (for error messages).
    own_roots: bool,
}

impl std::fmt::Debug for MakeRustls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MakeRustls")
            .field("enabled", &self.config.is_some())
            .field("verification", &self.verification)
            .finish()
    }
}

impl MakeRustls {
    /// The connector for `ssl` on `host`: reads the root and client certificate files and builds
    /// the rustls configuration.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] naming the field (`ssl_ca_file`, `ssl_cert_file`, `ssl_key_file`) and
    /// the path when a file cannot be read or holds no usable PEM certificate or key.
    pub(crate) fn new(ssl: &SslConfig, host: &str) -> Result<Self> {
        let verification = verification(ssl);
        let own_roots = ssl.ca_file.is_some();
        if ssl_mode(ssl.mode, host) == PgSslMode::Disable {
            return Ok(MakeRustls {
                config: None,
                verification,
                own_roots,
            });
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let algorithms = provider.signature_verification_algorithms;
        let verifier: Arc<dyn ServerCertVerifier> = match verification {
            Verification::None => Arc::new(Verifier {
                roots: None,
                check_name: false,
                algorithms,
            }),
            Verification::Chain | Verification::Full => Arc::new(Verifier {
                roots: Some(Arc::new(root_store(ssl.ca_file.as_deref())?)),
                check_name: verification == Verification::Full,
                algorithms,
            }),
        };
        let builder = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::config("ssl_mode", format!("TLS setup failed: {e}")))?
            .dangerous()
            .with_custom_certificate_verifier(verifier);
        let config = match (&ssl.cert_file, &ssl.key_file) {
            (Some(cert), Some(key)) => {
                let chain = read_certificates("ssl_cert_file", cert)?;
                let key = read_key(key)?;
                builder.with_client_auth_cert(chain, key).map_err(|e| {
                    Error::config(
                        "ssl_key_file",
                        format!("the client key does not fit the certificate: {e}"),
                    )
                })?
            }
            // The configuration refuses a certificate without its key and vice versa.
            _ => builder.with_no_client_auth(),
        };
        Ok(MakeRustls {
            config: Some(Arc::new(config)),
            verification,
            own_roots,
        })
    }
}

/// Reads the whole file, as an [`Error::Config`] for `field` on failure.
fn read_file(field: &str, path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path)
        .map_err(|e| Error::config(field, format!("cannot read {}: {e}", path.display())))
}

/// All certificates in a PEM file (at least one).
fn read_certificates(field: &str, path: &Path) -> Result<Vec<CertificateDer<'static>>> {
    let pem = read_file(field, path)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| {
            Error::config(
                field,
                format!("{} is not a valid PEM file: {e}", path.display()),
            )
        })?;
    if certs.is_empty() {
        return Err(Error::config(
            field,
            format!(
                "no PEM certificate (-----BEGIN CERTIFICATE-----) in {}",
                path.display()
            ),
        ));
    }
    Ok(certs)
}

/// The client's private key: PKCS#8, PKCS#1 (RSA) or SEC1 (EC), unencrypted PEM.
fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>> {
    let pem = read_file("ssl_key_file", path)?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| {
        let what = if pem.windows(9).any(|w| w == b"ENCRYPTED") {
            "an encrypted private key, which is not supported (decrypt it, e.g. with openssl pkey)"
                .to_owned()
        } else {
            match e {
                rustls::pki_types::pem::Error::NoItemsFound => {
                    "no PEM private key (PKCS#8, PKCS#1 or SEC1)".to_owned()
                }
                e => format!("no valid PEM private key ({e})"),
            }
        };
        Error::config("ssl_key_file", format!("{} holds {what}", path.display()))
    })
}

/// The trusted roots: the certificates of `ca_file`, or the webpki (Mozilla) roots without one.
fn root_store(ca_file: Option<&Path>) -> Result<RootCertStore> {
    let Some(path) = ca_file else {
        return Ok(RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        });
    };
    let mut roots = RootCertStore::empty();
    for cert in read_certificates("ssl_ca_file", path)? {
        roots.add(cert).map_err(|e| {
            Error::config(
                "ssl_ca_file",
                format!("{} holds an unusable certificate: {e}", path.display()),
            )
        })?;
    }
    Ok(roots)
}

/// The server certificate check of one mode. Handshake signatures are always verified (that is
/// what proves the server holds the certificate's key, and what channel binding relies on).
#[derive(Debug)]
struct Verifier {
    /// `None`: the certificate itself is accepted unchecked (`prefer`/`require`).
    roots: Option<Arc<RootCertStore>>,
    check_name: bool,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        let Some(roots) = &self.roots else {
            return Ok(ServerCertVerified::assertion());
        };
        let cert = ParsedCertificate::try_from(end_entity)?;
        rustls::client::verify_server_cert_signed_by_trust_anchor(
            &cert,
            roots,
            intermediates,
            now,
            self.algorithms.all,
        )?;
        if self.check_name {
            rustls::client::verify_server_name(&cert, server_name)?;
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

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

/// RFC 5929's `tls-server-end-point` value of a DER certificate: its hash with the hash function
/// of its signature algorithm, SHA-256 when that is MD5 or SHA-1. `None` for algorithms without
/// a hash of their own (Ed25519, Ed448: PostgreSQL cannot bind to them either) and unparsable
/// certificates; authentication then goes on without channel binding.
pub(crate) fn server_end_point(der: &[u8]) -> Option<Vec<u8>> {
    Some(match signature_hash(der)? {
        Hash::Sha224 => sha2::Sha224::digest(der).to_vec(),
        Hash::Sha256 => sha2::Sha256::digest(der).to_vec(),
        Hash::Sha384 => sha2::Sha384::digest(der).to_vec(),
        Hash::Sha512 => sha2::Sha512::digest(der).to_vec(),
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hash {
    Sha224,
    Sha256,
    Sha384,
    Sha512,
}

/// `1.2.840.113549.1.1` (PKCS#1) and `1.2.840.10045.4` (ECDSA signatures), DER-encoded.
const PKCS1: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01];
const ECDSA: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04];
/// `2.16.840.1.101.3.4.2` (NIST hash functions) and `1.3.14.3.2.26` (SHA-1).
const NIST_HASH: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02];
const SHA1: &[u8] = &[0x2b, 0x0e, 0x03, 0x02, 0x1a];

/// The hash function for channel binding of the certificate's `signatureAlgorithm`.
fn signature_hash(der: &[u8]) -> Option<Hash> {
    // Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm AlgorithmIdentifier, … }
    let (cert, _) = der_item(der, 0x30)?;
    let (_, rest) = der_item(cert, 0x30)?;
    let (algorithm, _) = der_item(rest, 0x30)?;
    let (oid, params) = der_item(algorithm, 0x06)?;
    if let Some(last) = oid.strip_prefix(PKCS1) {
        return match last {
            [4 | 5] => Some(Hash::Sha256), // MD5, SHA-1 → SHA-256
            [11] => Some(Hash::Sha256),
            [12] => Some(Hash::Sha384),
            [13] => Some(Hash::Sha512),
            [14] => Some(Hash::Sha224),
            [10] => pss_hash(params), // RSASSA-PSS: the hash is in the parameters
            _ => None,
        };
    }
    match oid.strip_prefix(ECDSA)? {
        [1] => Some(Hash::Sha256), // ecdsa-with-SHA1 → SHA-256
        [3, 1] => Some(Hash::Sha224),
        [3, 2] => Some(Hash::Sha256),
        [3, 3] => Some(Hash::Sha384),
        [3, 4] => Some(Hash::Sha512),
        _ => None,
    }
}

/// RSASSA-PSS-params ::= SEQUENCE { hashAlgorithm [0] AlgorithmIdentifier DEFAULT sha1, … }
fn pss_hash(params: &[u8]) -> Option<Hash> {
    let (params, _) = der_item(params, 0x30)?;
    let Some((hash, _)) = der_item(params, 0xa0) else {
        return Some(Hash::Sha256); // SHA-1 by default → SHA-256
    };
    let (algorithm, _) = der_item(hash, 0x30)?;
    let (oid, _) = der_item(algorithm, 0x06)?;
    if oid == SHA1 {
        return Some(Hash::Sha256);
    }
    match oid.strip_prefix(NIST_HASH)? {
        [1] => Some(Hash::Sha256),
        [2] => Some(Hash::Sha384),
        [3] => Some(Hash::Sha512),
        [4] => Some(Hash::Sha224),
        _ => None,
    }
}

/// The contents of the DER item at the start of `input` if its tag is `tag`, and what follows.
fn der_item(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let (&first, rest) = input.split_first()?;
    if first != tag {
        return None;
    }
    let (&len, rest) = rest.split_first()?;
    let (len, rest) = if len < 0x80 {
        (usize::from(len), rest)
    } else {
        let n = usize::from(len & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        (len, &rest[n..])
    };
    (rest.len() >= len).then(|| rest.split_at(len))
}

#[cfg(test)]
mod tests {
    use super::*;
    use pgdbm::DatabaseConfig;
    use std::path::PathBuf;

    fn ssl(
        change: impl FnOnce(pgdbm::DatabaseConfigBuilder) -> pgdbm::DatabaseConfigBuilder,
    ) -> SslConfig {
        change(DatabaseConfig::builder().host("localhost"))
            .build()
            .expect("valid config")
            .ssl()
            .clone()
    }

    #[test]
    fn modes_map_like_libpq() {
        let cases = [
            (SslMode::Disable, PgSslMode::Disable),
            (SslMode::Allow, PgSslMode::Prefer),
            (SslMode::Prefer, PgSslMode::Prefer),
            (SslMode::Require, PgSslMode::Require),
            (SslMode::VerifyCa, PgSslMode::Require),
            (SslMode::VerifyFull, PgSslMode::Require),
        ];
        for (mode, expected) in cases {
            assert_eq!(ssl_mode(mode, "db.example.com"), expected, "{mode}");
            assert_eq!(
                ssl_mode(mode, "/var/run/postgresql"),
                PgSslMode::Disable,
                "no TLS over a Unix socket ({mode})"
            );
        }
    }

    #[test]
    fn verification_per_mode() {
        let v = |mode, ca: Option<&str>| {
            verification(&ssl(|b| {
                let b = b.ssl_mode(mode);
                match ca {
                    Some(ca) => b.ssl_ca_file(ca),
                    None => b,
                }
            }))
        };
        assert_eq!(v(SslMode::Prefer, None), Verification::None);
        assert_eq!(v(SslMode::Require, None), Verification::None);
        assert_eq!(v(SslMode::VerifyCa, None), Verification::Chain);
        assert_eq!(v(SslMode::VerifyFull, None), Verification::Full);
        // A root certificate file makes libpq verify the chain in the weak modes too.
        assert_eq!(v(SslMode::Prefer, Some("/ca.pem")), Verification::Chain);
        assert_eq!(v(SslMode::Require, Some("/ca.pem")), Verification::Chain);
        assert_eq!(v(SslMode::VerifyFull, Some("/ca.pem")), Verification::Full);
    }

    #[test]
    fn disabled_and_unix_sockets_read_no_files() {
        let missing = "/nonexistent/pgdbm/ca.pem";
        let off = ssl(|b| b.ssl_mode(SslMode::Disable).ssl_ca_file(missing));
        assert!(MakeRustls::new(&off, "localhost").unwrap().config.is_none());
        let socket = ssl(|b| b.ssl_mode(SslMode::VerifyFull).ssl_ca_file(missing));
        assert!(
            MakeRustls::new(&socket, "/tmp").unwrap().config.is_none(),
            "no TLS over a Unix socket, so no certificate is read"
        );
    }

    #[test]
    fn no_files_needed_for_the_default_modes() {
        for mode in [
            SslMode::Prefer,
            SslMode::Require,
            SslMode::VerifyCa,
            SslMode::VerifyFull,
        ] {
            let tls = MakeRustls::new(&ssl(|b| b.ssl_mode(mode)), "localhost").expect("builds");
            assert!(tls.config.is_some(), "{mode}");
        }
    }

    /// A directory of its own for one test, removed on drop.
    struct TempDir(tempfile::TempDir);

    impl TempDir {
        fn new(name: &str) -> Self {
            let prefix = format!("pgdbm-tls-test-{name}-");
            TempDir(
                tempfile::Builder::new()
                    .prefix(&prefix)
                    .tempdir()
                    .expect("temp dir"),
            )
        }
        fn file(&self, name: &str, text: &str) -> PathBuf {
            let path = self.0.path().join(name);
            std::fs::write(&path, text).expect("write");
            path
        }
    }

    fn config_error(result: Result<MakeRustls>) -> (String, String) {
        match result {
            Err(Error::Config { field, message }) => (field, message),
            other => panic!("expected a config error, got {other:?}"),
        }
    }

    #[test]
    fn missing_file_names_field_and_path() {
        let path = "/nonexistent/pgdbm/root.crt";
        let (field, message) = config_error(MakeRustls::new(
            &ssl(|b| b.ssl_mode(SslMode::VerifyFull).ssl_ca_file(path)),
            "localhost",
        ));
        assert_eq!(field, "ssl_ca_file");
        assert!(message.contains(path), "{message}");

        let (field, message) = config_error(MakeRustls::new(
            &ssl(|b| {
                b.ssl_mode(SslMode::Require)
                    .ssl_cert_file("/nonexistent/pgdbm/client.crt")
                    .ssl_key_file("/nonexistent/pgdbm/client.key")
            }),
            "localhost",
        ));
        assert_eq!(field, "ssl_cert_file");
        assert!(
            message.contains("/nonexistent/pgdbm/client.crt"),
            "{message}"
        );
    }

    #[test]
    fn files_without_pem_are_refused() {
        let dir = TempDir::new("pem");
        let junk = dir.file("junk.crt", "this is not a certificate\n");
        let broken = dir.file(
            "broken.crt",
            "-----BEGIN CERTIFICATE-----\nnot base64 !!\n-----END CERTIFICATE-----\n",
        );
        let garbage_der = dir.file(
            "garbage.crt",
            "-----BEGIN CERTIFICATE-----\nAAECAwQF\n-----END CERTIFICATE-----\n",
        );
        for (file, hint) in [(&junk, "no PEM certificate"), (&broken, "not a valid PEM")] {
            let (field, message) = config_error(MakeRustls::new(
                &ssl(|b| b.ssl_mode(SslMode::VerifyCa).ssl_ca_file(file)),
                "localhost",
            ));
            assert_eq!(field, "ssl_ca_file");
            assert!(
                message.contains(&file.display().to_string()) && message.contains(hint),
                "{message}"
            );
        }
        let (field, message) = config_error(MakeRustls::new(
            &ssl(|b| b.ssl_mode(SslMode::VerifyCa).ssl_ca_file(&garbage_der)),
            "localhost",
        ));
        assert_eq!(field, "ssl_ca_file");
        assert!(message.contains("unusable certificate"), "{message}");

        // A certificate file given as the key: no key in it.
        let (field, message) = config_error(MakeRustls::new(
            &ssl(|b| {
                b.ssl_mode(SslMode::Require)
                    .ssl_cert_file(&garbage_der)
                    .ssl_key_file(&junk)
            }),
            "localhost",
        ));
        assert_eq!(field, "ssl_key_file");
        assert!(message.contains("no PEM private key"), "{message}");

        let encrypted = dir.file(
            "enc.key",
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAECAwQF\n-----END ENCRYPTED PRIVATE KEY-----\n",
        );
        let (field, message) = config_error(MakeRustls::new(
            &ssl(|b| {
                b.ssl_mode(SslMode::Require)
                    .ssl_cert_file(&garbage_der)
                    .ssl_key_file(&encrypted)
            }),
            "localhost",
        ));
        assert_eq!(field, "ssl_key_file");
        assert!(message.contains("encrypted"), "{message}");
    }

    #[test]
    fn certificate_without_key_is_refused_by_the_config() {
        let err = DatabaseConfig::builder()
            .ssl_cert_file("/client.crt")
            .build()
            .expect_err("a certificate needs its key");
        assert!(matches!(err, Error::Config { ref field, .. } if field == "ssl_key_file"));
    }

    /// A DER certificate skeleton: SEQUENCE { tbs SEQUENCE {}, AlgorithmIdentifier, BIT STRING }.
    fn cert_with_algorithm(algorithm: &[u8]) -> Vec<u8> {
        let mut body = vec![0x30, 0x00];
        body.extend_from_slice(algorithm);
        body.extend_from_slice(&[0x03, 0x01, 0x00]);
        let mut der = vec![0x30, u8::try_from(body.len()).unwrap()];
        der.extend(body);
        der
    }

    fn algorithm(oid: &[u8], params: &[u8]) -> Vec<u8> {
        let mut content = vec![0x06, u8::try_from(oid.len()).unwrap()];
        content.extend_from_slice(oid);
        content.extend_from_slice(params);
        let mut out = vec![0x30, u8::try_from(content.len()).unwrap()];
        out.extend(content);
        out
    }

    #[test]
    fn channel_binding_hash_follows_rfc_5929() {
        let oid = |prefix: &[u8], tail: &[u8]| [prefix, tail].concat();
        let null = [0x05, 0x00];
        let cases: [(Vec<u8>, Option<Hash>); 8] = [
            (algorithm(&oid(PKCS1, &[11]), &null), Some(Hash::Sha256)),
            (algorithm(&oid(PKCS1, &[12]), &null), Some(Hash::Sha384)),
            (algorithm(&oid(PKCS1, &[13]), &null), Some(Hash::Sha512)),
            (algorithm(&oid(PKCS1, &[5]), &null), Some(Hash::Sha256)),
            (algorithm(&oid(ECDSA, &[3, 2]), &[]), Some(Hash::Sha256)),
            (algorithm(&oid(ECDSA, &[3, 3]), &[]), Some(Hash::Sha384)),
            // Ed25519: no hash of its own.
            (algorithm(&[0x2b, 0x65, 0x70], &[]), None),
            // RSASSA-PSS with SHA-512 in its parameters.
            (
                algorithm(&oid(PKCS1, &[10]), &{
                    let hash = algorithm(&oid(NIST_HASH, &[3]), &null);
                    let mut tagged = vec![0xa0, u8::try_from(hash.len()).unwrap()];
                    tagged.extend(hash);
                    let mut params = vec![0x30, u8::try_from(tagged.len()).unwrap()];
                    params.extend(tagged);
                    params
                }),
                Some(Hash::Sha512),
            ),
        ];
        for (alg, expected) in cases {
            let der = cert_with_algorithm(&alg);
            assert_eq!(signature_hash(&der), expected, "{alg:02x?}");
        }
        let der = cert_with_algorithm(&algorithm(&oid(ECDSA, &[3, 2]), &[]));
        assert_eq!(
            server_end_point(&der),
            Some(sha2::Sha256::digest(&der).to_vec())
        );
        // Truncated or garbage input: no binding, no panic.
        assert_eq!(signature_hash(&der[..der.len() - 4]), None);
        assert_eq!(signature_hash(&der[..5]), None);
        assert_eq!(signature_hash(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff]), None);
        assert_eq!(signature_hash(&[]), None);
    }
}
