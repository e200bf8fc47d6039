//! The certificate and key files of a pool, read once when it opens.

use std::path::Path;

use pgdbm::{Error, Result};
use rustls::RootCertStore;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// Reads the whole file, as an [`Error::Config`] for `field` on failure.
pub(super) fn read_file(field: &str, path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path)
        .map_err(|e| Error::config(field, format!("cannot read {}: {e}", path.display())))
}

/// All certificates in a PEM file (at least one).
pub(super) fn read_certificates(field: &str, path: &Path) -> Result<Vec<CertificateDer<'static>>> {
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

/// The client's private key: PKCS#8, PKCS#1 (RSA) or SEC1 (EC) PEM, or an encrypted PKCS#8 key
/// decrypted with `password` (`ssl_key_password`).
pub(super) fn read_key(path: &Path, password: Option<&str>) -> Result<PrivateKeyDer<'static>> {
    let pem = read_file("ssl_key_file", path)?;
    if pgdbm::driver::is_encrypted_key(&pem) {
        let Some(password) = password else {
            return Err(Error::config(
                "ssl_key_file",
                format!(
                    "{} holds an encrypted private key: set ssl_key_password (sslpassword)",
                    path.display()
                ),
            ));
        };
        let der = pgdbm::driver::decrypt_client_key(&pem, password, path)?;
        return Ok(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(der)));
    }
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| {
        let what = {
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
pub(super) fn root_store(ca_file: Option<&Path>) -> Result<RootCertStore> {
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
