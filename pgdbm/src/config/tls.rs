//! TLS settings: libpq's `sslmode` ([`SslMode`]) and the certificate files ([`SslConfig`]).

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use super::quoted;
use crate::error::{Error, Result};

/// libpq's `sslmode`.
///
/// Parses from and displays as libpq's spelling (`disable`, `allow`, `prefer`, `require`,
/// `verify-ca`, `verify-full`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum SslMode {
    /// No TLS.
    Disable,
    /// TLS only if the server insists (treated as `prefer` by the drivers).
    Allow,
    /// TLS when the server offers it, without verification.
    #[default]
    Prefer,
    /// TLS required, server certificate not verified.
    Require,
    /// TLS required, server certificate verified against the CA (the system roots when no
    /// `ssl_ca_file` is given).
    VerifyCa,
    /// As `VerifyCa`, and the host name must match the certificate.
    VerifyFull,
}

impl SslMode {
    /// libpq's name of the mode, e.g. `"verify-full"`.
    pub fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Allow => "allow",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }

    pub(super) fn parse(s: &str) -> Option<Self> {
        Some(match s.trim() {
            "disable" => SslMode::Disable,
            "allow" => SslMode::Allow,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            _ => return None,
        })
    }
}

impl fmt::Display for SslMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SslMode {
    type Err = Error;

    /// Parses libpq's spelling.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] for field `sslmode` when `s` is not one of the six modes.
    fn from_str(s: &str) -> Result<Self> {
        SslMode::parse(s).ok_or_else(|| Error::config("sslmode", bad_sslmode_message(s)))
    }
}

pub(super) fn bad_sslmode_message(value: &str) -> String {
    format!(
        "invalid value {}; expected one of disable, allow, prefer, require, verify-ca, verify-full",
        quoted(value)
    )
}

/// TLS settings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SslConfig {
    /// The mode.
    pub mode: SslMode,
    /// Root certificate(s) to verify the server with (`sslrootcert`); `None` = the system roots.
    pub ca_file: Option<PathBuf>,
    /// Client certificate (`sslcert`); set together with `key_file`.
    pub cert_file: Option<PathBuf>,
    /// Client key (`sslkey`); set together with `cert_file`.
    pub key_file: Option<PathBuf>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ssl_mode_names() {
        for mode in [
            SslMode::Disable,
            SslMode::Allow,
            SslMode::Prefer,
            SslMode::Require,
            SslMode::VerifyCa,
            SslMode::VerifyFull,
        ] {
            assert_eq!(mode.as_str().parse::<SslMode>().unwrap(), mode);
            assert_eq!(mode.to_string(), mode.as_str());
        }
        let err = "verify_full".parse::<SslMode>().unwrap_err();
        assert!(matches!(err, Error::Config { ref field, .. } if field == "sslmode"));
    }
}
