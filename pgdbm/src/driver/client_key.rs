//! Encrypted client keys (`ssl_key_password`): a PKCS#8 `ENCRYPTED PRIVATE KEY` (PBES2: PBKDF2 or
//! scrypt with AES-CBC, what `openssl pkcs8 -topk8` and `openssl genpkey -aes256` write)
//! decrypted once when a pool opens, for every driver. Feature `encrypted-client-keys`, switched
//! on by the drivers' `tls`.

use std::path::Path;

use pkcs8::der::pem::LineEnding;
use pkcs8::{EncryptedPrivateKeyInfo, SecretDocument};

use crate::error::{Error, Result};

/// The PEM label of an encrypted PKCS#8 key.
const ENCRYPTED_LABEL: &str = "ENCRYPTED PRIVATE KEY";

/// `true` when `pem` holds an encrypted private key (PKCS#8, or OpenSSL's legacy
/// `Proc-Type: 4,ENCRYPTED` form, which is not supported).
pub fn is_encrypted_key(pem: &[u8]) -> bool {
    let text = String::from_utf8_lossy(pem);
    text.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----")
        || text.contains("Proc-Type: 4,ENCRYPTED")
}

/// Decrypts the encrypted PKCS#8 key in `pem` (read from `path`, named in errors) with
/// `password`: the unencrypted PKCS#8 key, DER-encoded.
///
/// ```
/// use pgdbm::driver::decrypt_client_key;
/// let err = decrypt_client_key(b"not a key", "secret", "client.key".as_ref()).unwrap_err();
/// assert!(err.to_string().contains("client.key"));
/// assert!(!err.to_string().contains("secret"));
/// ```
///
/// # Errors
///
/// [`Error::Config`] naming `ssl_key_password` when the password does not decrypt the key, and
/// `ssl_key_file` when the file holds no encrypted PKCS#8 key or its encryption scheme is not
/// supported (the legacy OpenSSL form: convert it with `openssl pkcs8 -topk8`). No message
/// contains the password or key material.
pub fn decrypt_client_key(pem: &[u8], password: &str, path: &Path) -> Result<Vec<u8>> {
    Ok(decrypt(pem, password, path)?.as_bytes().to_vec())
}

/// As [`decrypt_client_key`], the result PEM-encoded (`-----BEGIN PRIVATE KEY-----`), for a
/// client library that takes PEM.
///
/// # Errors
///
/// As [`decrypt_client_key`].
pub fn decrypt_client_key_pem(pem: &[u8], password: &str, path: &Path) -> Result<String> {
    let doc = decrypt(pem, password, path)?;
    doc.to_pem("PRIVATE KEY", LineEnding::LF)
        .map(|pem| pem.to_string())
        .map_err(|_| {
            Error::config(
                "ssl_key_file",
                format!("{} cannot be re-encoded", path.display()),
            )
        })
}

fn decrypt(pem: &[u8], password: &str, path: &Path) -> Result<SecretDocument> {
    let shown = path.display();
    let not_pkcs8 = || {
        Error::config(
            "ssl_key_file",
            format!(
                "{shown} holds no PKCS#8 encrypted private key (-----BEGIN ENCRYPTED PRIVATE \
                 KEY-----); convert a legacy OpenSSL key with openssl pkcs8 -topk8"
            ),
        )
    };
    let text = std::str::from_utf8(pem).map_err(|_| not_pkcs8())?;
    let begin = format!("-----BEGIN {ENCRYPTED_LABEL}-----");
    let start = text.find(&begin).ok_or_else(not_pkcs8)?;
    let (label, doc) = pkcs8::Document::from_pem(&text[start..]).map_err(|_| not_pkcs8())?;
    if label != ENCRYPTED_LABEL {
        return Err(not_pkcs8());
    }
    let info = EncryptedPrivateKeyInfo::try_from(doc.as_bytes()).map_err(|e| {
        Error::config(
            "ssl_key_file",
            format!("{shown}: unsupported key encryption ({e}); PBES2 with AES-CBC is supported"),
        )
    })?;
    info.decrypt(password).map_err(|_| {
        Error::config(
            "ssl_key_password",
            format!("cannot decrypt {shown}: wrong ssl_key_password"),
        )
    })
}
