//! Certificates for TLS tests, generated when the test runs (nothing secret is committed).

use std::path::{Path, PathBuf};

use pgdbm::Result;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};

use crate::server::config_error;

/// The user name in [`TestCerts`]' client certificate (its common name), for
/// `hostssl … cert` rules: PostgreSQL maps the certificate to the role of that name.
pub const CLIENT_CERT_USER: &str = "certuser";

/// A test PKI, generated with rcgen (ECDSA P-256) into a temporary directory that is removed
/// when this value is dropped:
///
/// * a CA (`ca_cert`), trusted by the server for client certificates;
/// * a server certificate for the DNS name `localhost` **only** (no IP address, so connecting
///   to `127.0.0.1` with `verify-full` must fail), signed by the CA;
/// * a client certificate with common name [`CLIENT_CERT_USER`], signed by the CA;
/// * an unrelated CA (`other_ca_cert`) that signed nothing the server uses, to check that an
///   untrusted chain is refused.
///
/// Files are PEM; keys are PKCS#8 with mode 0600. The PEM texts are in the `*_pem` fields too.
pub struct TestCerts {
    _dir: tempfile::TempDir,
    /// The CA certificate (the root to trust).
    pub ca_cert: PathBuf,
    /// The server certificate (`localhost`).
    pub server_cert: PathBuf,
    /// The server's private key.
    pub server_key: PathBuf,
    /// The client certificate (common name [`CLIENT_CERT_USER`]).
    pub client_cert: PathBuf,
    /// The client's private key.
    pub client_key: PathBuf,
    /// A CA certificate that did not sign the server's certificate.
    pub other_ca_cert: PathBuf,
    /// `ca_cert` as PEM text.
    pub ca_cert_pem: String,
    /// `server_cert` as PEM text.
    pub server_cert_pem: String,
    /// `server_key` as PEM text.
    pub server_key_pem: String,
}

impl std::fmt::Debug for TestCerts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestCerts")
            .field("dir", &self._dir.path())
            .finish_non_exhaustive()
    }
}

fn tls_error(what: &str, e: impl std::fmt::Display) -> pgdbm::Error {
    config_error(format!("test certificates: {what}: {e}"))
}

fn ca_params(name: &str) -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, name);
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params
}

fn leaf_params(
    common_name: &str,
    dns_names: &[&str],
    usage: ExtendedKeyUsagePurpose,
) -> Result<CertificateParams> {
    let names: Vec<String> = dns_names.iter().map(|s| (*s).to_owned()).collect();
    let mut params = CertificateParams::new(names).map_err(|e| tls_error("parameters", e))?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    params.distinguished_name = dn;
    params.is_ca = IsCa::NoCa;
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![usage];
    params.use_authority_key_identifier_extension = true;
    Ok(params)
}

fn write(dir: &Path, name: &str, text: &str, private: bool) -> Result<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(name);
    let fail = |e: std::io::Error| tls_error(&format!("writing {}", path.display()), e);
    std::fs::write(&path, text).map_err(fail)?;
    if private {
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).map_err(fail)?;
    }
    Ok(path)
}

/// A copy of a private key encrypted with a password (PKCS#8, PBES2 with AES-256-CBC), removed
/// when dropped ([`encrypt_key`]).
#[derive(Debug)]
pub struct EncryptedKey {
    path: tempfile::TempPath,
}

impl EncryptedKey {
    /// The PEM file (`-----BEGIN ENCRYPTED PRIVATE KEY-----`, mode 0600).
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Encrypts the PEM private key at `key` with `password` into a new file next to it, with
/// `openssl pkcs8 -topk8 -v2 aes-256-cbc` (the password reaches openssl through its
/// environment, not its command line).
///
/// # Errors
///
/// [`Error::Config`](pgdbm::Error::Config) when `openssl` is missing or fails, or the file
/// cannot be made.
pub fn encrypt_key(key: &Path, password: &str) -> Result<EncryptedKey> {
    let dir = key.parent().unwrap_or(Path::new("."));
    let file = tempfile::Builder::new()
        .prefix("encrypted-")
        .suffix(".key")
        .tempfile_in(dir)
        .map_err(|e| tls_error("encrypted key file", e))?
        .into_temp_path();
    let out = std::process::Command::new("openssl")
        .args(["pkcs8", "-topk8", "-v2", "aes-256-cbc", "-passout"])
        .arg("env:PGDBM_TEST_KEY_PASSWORD")
        .arg("-in")
        .arg(key)
        .arg("-out")
        .arg(&*file)
        .env("PGDBM_TEST_KEY_PASSWORD", password)
        .output()
        .map_err(|e| tls_error("running openssl (is it installed?)", e))?;
    if !out.status.success() {
        return Err(tls_error(
            "openssl pkcs8 -topk8",
            String::from_utf8_lossy(&out.stderr).trim(),
        ));
    }
    Ok(EncryptedKey { path: file })
}

impl TestCerts {
    /// Generates the CA, server and client certificates and the unrelated CA.
    ///
    /// # Errors
    ///
    /// [`Error::Config`](pgdbm::Error::Config) when a key or certificate cannot be made or
    /// the files cannot be written.
    pub fn generate() -> Result<TestCerts> {
        let gen_key = || KeyPair::generate().map_err(|e| tls_error("key", e));

        let ca_key = gen_key()?;
        let ca = ca_params("pgdbm test CA");
        let ca_cert = ca.self_signed(&ca_key).map_err(|e| tls_error("CA", e))?;
        let issuer = Issuer::new(ca, ca_key);

        let server_key = gen_key()?;
        let server_cert = leaf_params(
            "localhost",
            &["localhost"],
            ExtendedKeyUsagePurpose::ServerAuth,
        )?
        .signed_by(&server_key, &issuer)
        .map_err(|e| tls_error("server certificate", e))?;

        let client_key = gen_key()?;
        let client_cert = leaf_params(CLIENT_CERT_USER, &[], ExtendedKeyUsagePurpose::ClientAuth)?
            .signed_by(&client_key, &issuer)
            .map_err(|e| tls_error("client certificate", e))?;

        let other_key = gen_key()?;
        let other_ca = ca_params("pgdbm untrusted test CA")
            .self_signed(&other_key)
            .map_err(|e| tls_error("other CA", e))?;

        let dir = tempfile::Builder::new()
            .prefix("pgdbm-certs-")
            .tempdir()
            .map_err(|e| tls_error("temporary directory", e))?;
        let d = dir.path();
        let ca_cert_pem = ca_cert.pem();
        let server_cert_pem = server_cert.pem();
        let server_key_pem = server_key.serialize_pem();
        Ok(TestCerts {
            ca_cert: write(d, "ca.crt", &ca_cert_pem, false)?,
            server_cert: write(d, "server.crt", &server_cert_pem, false)?,
            server_key: write(d, "server.key", &server_key_pem, true)?,
            client_cert: write(d, "client.crt", &client_cert.pem(), false)?,
            client_key: write(d, "client.key", &client_key.serialize_pem(), true)?,
            other_ca_cert: write(d, "other-ca.crt", &other_ca.pem(), false)?,
            ca_cert_pem,
            server_cert_pem,
            server_key_pem,
            _dir: dir,
        })
    }
}
