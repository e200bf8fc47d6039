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
//! The rustls [`ClientConfig`] is built once per pool ([`MakeRustls::with_key_password`]); each connection
//! only clones an `Arc`.
//!
//! Here: the modes and [`MakeRustls`]; `files.rs` reads the certificate and key files,
//! `verifier.rs` checks the server certificate per mode, `connect.rs` is the handshake and the
//! stream, `channel_binding.rs` the SCRAM `tls-server-end-point` hash.

mod channel_binding;
mod connect;
mod files;
#[cfg(test)]
mod tests;
mod verifier;

use std::sync::Arc;

use pgdbm::{Error, Result, SslConfig, SslMode};
use rustls::ClientConfig;
use rustls::client::danger::ServerCertVerifier;
use tokio_postgres::config::SslMode as PgSslMode;

pub(crate) use connect::handshake_failed;
use files::{read_certificates, read_key, root_store};
use verifier::Verifier;

use crate::host::is_unix_socket;

/// tokio-postgres' mode for libpq's `mode` on `host`. The certificate checks of `verify-ca` and
/// `verify-full` are done by the verifier that [`MakeRustls::with_key_password`] installs.
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
    #[cfg(test)]
    pub(crate) fn new(ssl: &SslConfig, host: &str) -> Result<Self> {
        Self::with_key_password(ssl, host, None)
    }

    /// As `new`, decrypting an encrypted client key with `key_password` (`ssl_key_password`).
    ///
    /// # Errors
    ///
    /// As `new`; [`Error::Config`] naming `ssl_key_password` when it does not decrypt the key.
    pub(crate) fn with_key_password(
        ssl: &SslConfig,
        host: &str,
        key_password: Option<&str>,
    ) -> Result<Self> {
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
                let key = read_key(key, key_password)?;
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
