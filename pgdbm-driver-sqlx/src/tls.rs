//! TLS: pgdbm's [`SslConfig`](pgdbm::SslConfig) onto sqlx's `PgConnectOptions` (mode, root
//! certificate, client certificate and key), with the files checked before the first connect.
//!
//! sqlx reads the certificate files lazily, during each TLS handshake, and reports a missing one
//! as a bare I/O error without its path; the files are therefore read here once when the pool is
//! opened, so that a wrong path is an [`Error::Config`] naming the setting and the path.

use std::path::Path;

use pgdbm::{DatabaseConfig, Error, Result, SslMode};
use sqlx::postgres::{PgConnectOptions, PgSslMode};

/// Looks up an environment variable (the process environment, or a test's).
pub(crate) type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

/// The sqlx mode for `mode` on a TCP connection. `has_ca` says whether a root certificate file is
/// configured: with one, libpq's `require` verifies the chain like `verify-ca`, and so does this
/// driver.
///
/// # Errors
///
/// [`Error::Config`] naming `ssl_mode` for `require`/`verify-ca`/`verify-full` when the crate is
/// built without its `tls` feature.
pub(crate) fn sqlx_mode(mode: SslMode, has_ca: bool) -> Result<PgSslMode> {
    let verified = match mode {
        SslMode::Disable => return Ok(PgSslMode::Disable),
        // sqlx has no working `allow` (its `Allow` never tries TLS): `prefer` is the nearest.
        SslMode::Allow | SslMode::Prefer => return Ok(PgSslMode::Prefer),
        SslMode::Require if has_ca => PgSslMode::VerifyCa,
        SslMode::Require => PgSslMode::Require,
        SslMode::VerifyCa => PgSslMode::VerifyCa,
        SslMode::VerifyFull => PgSslMode::VerifyFull,
        other => {
            return Err(Error::config(
                "ssl_mode",
                format!("TLS mode {other} is not supported by the sqlx driver"),
            ));
        }
    };
    if cfg!(feature = "tls") {
        Ok(verified)
    } else {
        Err(Error::config(
            "ssl_mode",
            format!(
                "TLS mode {mode} needs the `tls` feature of pgdbm-driver-sqlx (on by default), \
                 which this build does not have; use disable or prefer, or enable the feature"
            ),
        ))
    }
}

/// Applies the TLS settings of `config` to `opts`. `env` is the environment sqlx itself reads
/// (`PGSSLCERT`/`PGSSLKEY`, see below).
///
/// * A Unix-socket host gets `disable`: libpq ignores `sslmode` there (the server never offers
///   TLS on a socket).
/// * Every file that is set is read now (for `disable`: none) and must hold PEM data of the
///   right kind.
/// * sqlx's `PgConnectOptions` starts from the process environment (`PGSSLROOTCERT`,
///   `PGSSLCERT`, `PGSSLKEY`) whatever pgdbm's config says. Without `ssl_ca_file` the root
///   certificate is set to an empty bundle, so that only the configuration decides. The client
///   certificate cannot be unset: when the config has none but the environment names one, those
///   files are checked like the config's (the error names the variable).
///
/// # Errors
///
/// [`Error::Config`] naming `ssl_mode` (see [`sqlx_mode`]), `ssl_ca_file`, `ssl_cert_file`,
/// `ssl_key_file`, `PGSSLCERT` or `PGSSLKEY`, with the path and the reason.
pub(crate) fn apply(
    opts: PgConnectOptions,
    config: &DatabaseConfig,
    env: Env<'_>,
) -> Result<PgConnectOptions> {
    let ssl = config.ssl();
    if ssl.mode == SslMode::Disable || config.host().starts_with('/') {
        return Ok(opts.ssl_mode(PgSslMode::Disable));
    }
    let mut opts = opts.ssl_mode(sqlx_mode(ssl.mode, ssl.ca_file.is_some())?);
    opts = match &ssl.ca_file {
        Some(path) => {
            check_pem(path, "ssl_ca_file", Pem::Certificate)?;
            opts.ssl_root_cert(path)
        }
        None => opts.ssl_root_cert_from_pem(Vec::new()),
    };
    if let (Some(cert), Some(key)) = (&ssl.cert_file, &ssl.key_file) {
        check_pem(cert, "ssl_cert_file", Pem::Certificate)?;
        #[cfg(feature = "tls")]
        if let Some(password) = config.ssl_key_password() {
            // An encrypted key is decrypted here and handed to sqlx inline (sqlx has no
            // sslpassword); an unencrypted one is read by sqlx from its file.
            let pem = std::fs::read(key).map_err(|e| {
                Error::config(
                    "ssl_key_file",
                    format!("cannot read '{}': {e}", key.display()),
                )
            })?;
            if pgdbm::driver::is_encrypted_key(&pem) {
                let decrypted = pgdbm::driver::decrypt_client_key_pem(&pem, password, key)?;
                return Ok(opts
                    .ssl_client_cert(cert)
                    .ssl_client_key_from_pem(decrypted));
            }
        }
        check_pem(key, "ssl_key_file", Pem::PrivateKey)?;
        return Ok(opts.ssl_client_cert(cert).ssl_client_key(key));
    }
    // No client certificate: `DatabaseConfigBuilder::build` refuses a certificate without its
    // key and a key without its certificate.
    check_ambient_identity(env)?;
    Ok(opts)
}

/// Checks the client certificate sqlx takes from `PGSSLCERT`/`PGSSLKEY` on its own.
fn check_ambient_identity(env: Env<'_>) -> Result<()> {
    match (env("PGSSLCERT"), env("PGSSLKEY")) {
        (None, None) => Ok(()),
        (Some(_), None) => Err(Error::config(
            "PGSSLKEY",
            "PGSSLCERT is set in the environment, where sqlx reads it on its own, and needs \
             PGSSLKEY too: set both (or ssl_cert_file and ssl_key_file), or unset PGSSLCERT",
        )),
        (None, Some(_)) => Err(Error::config(
            "PGSSLCERT",
            "PGSSLKEY is set in the environment, where sqlx reads it on its own, and needs \
             PGSSLCERT too: set both (or ssl_cert_file and ssl_key_file), or unset PGSSLKEY",
        )),
        (Some(cert), Some(key)) => {
            // sqlx takes a value that looks like PEM as the certificate itself.
            if !is_inline_pem(&cert) {
                check_pem(Path::new(&cert), "PGSSLCERT", Pem::Certificate)?;
            }
            if !is_inline_pem(&key) {
                check_pem(Path::new(&key), "PGSSLKEY", Pem::PrivateKey)?;
            }
            Ok(())
        }
    }
}

fn is_inline_pem(value: &str) -> bool {
    let value = value.trim();
    value.starts_with("-----BEGIN") && value.ends_with("-----")
}

/// What a file must hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pem {
    Certificate,
    PrivateKey,
}

/// Reads `path` and checks it holds PEM data of `kind` (the content is never shown).
fn check_pem(path: &Path, field: &str, kind: Pem) -> Result<()> {
    let shown = path.display();
    let data = std::fs::read(path)
        .map_err(|e| Error::config(field, format!("cannot read '{shown}': {e}")))?;
    let text = String::from_utf8_lossy(&data);
    match kind {
        Pem::Certificate if !text.contains("-----BEGIN CERTIFICATE-----") => Err(Error::config(
            field,
            format!("'{shown}' holds no PEM certificate (-----BEGIN CERTIFICATE-----)"),
        )),
        Pem::PrivateKey
            if text.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----")
                || text.contains("Proc-Type: 4,ENCRYPTED") =>
        {
            Err(Error::config(
                field,
                format!(
                    "'{shown}' holds an encrypted private key: set ssl_key_password \
                     (sslpassword) with the tls feature on, or decrypt it"
                ),
            ))
        }
        Pem::PrivateKey if !(text.contains("-----BEGIN ") && text.contains("PRIVATE KEY-----")) => {
            Err(Error::config(
                field,
                format!("'{shown}' holds no PEM private key (-----BEGIN PRIVATE KEY-----)"),
            ))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    const CERT: &str = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
    const KEY: &str = "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n";

    /// A directory of its own for one test, removed on drop.
    struct Dir(tempfile::TempDir);

    impl Dir {
        fn new(name: &str) -> Self {
            let prefix = format!("pgdbm-sqlx-tls-{name}-");
            Dir(tempfile::Builder::new()
                .prefix(&prefix)
                .tempdir()
                .expect("temp dir"))
        }

        fn file(&self, name: &str, content: &str) -> PathBuf {
            let path = self.0.path().join(name);
            std::fs::write(&path, content).expect("write");
            path
        }
    }

    fn no_env(_: &str) -> Option<String> {
        None
    }

    fn from_url(url: &str) -> DatabaseConfig {
        DatabaseConfig::builder()
            .url(url)
            .build()
            .expect("valid config")
    }

    fn options(config: &DatabaseConfig) -> Result<PgConnectOptions> {
        apply(PgConnectOptions::new_without_pgpass(), config, &no_env)
    }

    /// The `Debug` text of the options (these tests set no password).
    fn debug(opts: &PgConnectOptions) -> String {
        format!("{opts:?}")
    }

    #[test]
    fn modes_without_files() {
        for (mode, expected) in [
            ("disable", PgSslMode::Disable),
            ("allow", PgSslMode::Prefer),
            ("prefer", PgSslMode::Prefer),
            ("require", PgSslMode::Require),
            ("verify-ca", PgSslMode::VerifyCa),
            ("verify-full", PgSslMode::VerifyFull),
        ] {
            let config = from_url(&format!("postgresql://u@db.example/app?sslmode={mode}"));
            let supported = cfg!(feature = "tls") || !mode.starts_with(['r', 'v']);
            match options(&config) {
                Ok(opts) => {
                    assert!(supported, "{mode} needs the tls feature");
                    assert_eq!(
                        format!("{:?}", opts.get_ssl_mode()),
                        format!("{expected:?}"),
                        "{mode}"
                    );
                    if mode != "disable" {
                        // The environment's PGSSLROOTCERT is replaced by an empty bundle.
                        assert!(
                            debug(&opts).contains("ssl_root_cert: Some(Inline([]))"),
                            "{mode}: {opts:?}"
                        );
                    }
                }
                Err(err) => {
                    assert!(!supported, "{mode}: {err}");
                    assert!(
                        matches!(&err, Error::Config { field, .. } if field == "ssl_mode"),
                        "{err}"
                    );
                    assert!(err.to_string().contains("`tls` feature"), "{err}");
                }
            }
        }
    }

    #[test]
    fn require_with_a_root_certificate_verifies_like_libpq() {
        assert_eq!(
            format!("{:?}", sqlx_mode(SslMode::Require, true).ok()),
            format!("{:?}", cfg!(feature = "tls").then_some(PgSslMode::VerifyCa))
        );
        assert!(matches!(
            sqlx_mode(SslMode::Prefer, true),
            Ok(PgSslMode::Prefer)
        ));
    }

    #[cfg(feature = "tls")]
    #[test]
    fn files_are_passed_through() {
        let dir = Dir::new("pass");
        let ca = dir.file("root.crt", CERT);
        let cert = dir.file("client.crt", CERT);
        let key = dir.file("client.key", KEY);
        let config = DatabaseConfig::builder()
            .host("db.example")
            .ssl_mode(SslMode::VerifyFull)
            .ssl_ca_file(&ca)
            .ssl_cert_file(&cert)
            .ssl_key_file(&key)
            .build()
            .expect("valid config");
        let opts = options(&config).expect("options");
        assert!(matches!(opts.get_ssl_mode(), PgSslMode::VerifyFull));
        let text = debug(&opts);
        for (field, path) in [
            ("ssl_root_cert", &ca),
            ("ssl_client_cert", &cert),
            ("ssl_client_key", &key),
        ] {
            let expected = format!("{field}: Some(File({:?}))", path);
            assert!(text.contains(&expected), "{expected} in {text}");
        }

        // The connection-string keys, and `require` with a root certificate.
        let url = format!(
            "postgresql://u@db.example/app?sslmode=require&sslrootcert={}&sslcert={}&sslkey={}",
            ca.display(),
            cert.display(),
            key.display()
        );
        let opts = options(&from_url(&url)).expect("options");
        assert!(matches!(opts.get_ssl_mode(), PgSslMode::VerifyCa));
        assert!(debug(&opts).contains(&format!("ssl_root_cert: Some(File({ca:?}))")));

        // Client certificate without a root certificate (mutual TLS under `require`).
        let config = DatabaseConfig::builder()
            .host("db.example")
            .ssl_mode(SslMode::Require)
            .ssl_cert_file(&cert)
            .ssl_key_file(&key)
            .build()
            .expect("valid config");
        let opts = options(&config).expect("options");
        assert!(matches!(opts.get_ssl_mode(), PgSslMode::Require));
        assert!(debug(&opts).contains(&format!("ssl_client_key: Some(File({key:?}))")));
    }

    /// A mode that reads the files in this build.
    fn tls_mode() -> SslMode {
        if cfg!(feature = "tls") {
            SslMode::VerifyFull
        } else {
            SslMode::Prefer
        }
    }

    #[test]
    fn bad_files_name_the_field_and_path() {
        let dir = Dir::new("bad");
        let cert = dir.file("client.crt", CERT);
        let key = dir.file("client.key", KEY);
        let missing = dir.0.path().join("missing.crt");
        let not_pem = dir.file("garbage.crt", "not a certificate");
        let encrypted = dir.file(
            "enc.key",
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\nx\n-----END ENCRYPTED PRIVATE KEY-----\n",
        );
        let base = || {
            DatabaseConfig::builder()
                .host("db.example")
                .ssl_mode(tls_mode())
        };
        let cases = [
            (
                base().ssl_ca_file(&missing),
                "ssl_ca_file",
                &missing,
                "cannot read",
            ),
            (
                base().ssl_ca_file(&not_pem),
                "ssl_ca_file",
                &not_pem,
                "no PEM certificate",
            ),
            (
                base().ssl_cert_file(&missing).ssl_key_file(&key),
                "ssl_cert_file",
                &missing,
                "cannot read",
            ),
            (
                base().ssl_cert_file(&cert).ssl_key_file(&missing),
                "ssl_key_file",
                &missing,
                "cannot read",
            ),
            (
                base().ssl_cert_file(&cert).ssl_key_file(&cert),
                "ssl_key_file",
                &cert,
                "no PEM private key",
            ),
            (
                base().ssl_cert_file(&cert).ssl_key_file(&encrypted),
                "ssl_key_file",
                &encrypted,
                "encrypted",
            ),
        ];
        for (builder, expected_field, path, reason) in cases {
            let config = builder.build().expect("valid config");
            let err = options(&config).expect_err("bad file");
            let text = err.to_string();
            assert!(
                matches!(&err, Error::Config { field, .. } if field == expected_field),
                "{text}"
            );
            assert!(text.contains(&path.display().to_string()), "{text}");
            assert!(text.contains(reason), "{text}");
        }
    }

    #[test]
    fn files_are_not_read_when_tls_is_off() {
        let missing = std::env::temp_dir().join("pgdbm-sqlx-tls-never-there.crt");
        for config in [
            DatabaseConfig::builder()
                .host("db.example")
                .ssl_mode(SslMode::Disable)
                .ssl_ca_file(&missing),
            // libpq ignores sslmode on Unix sockets.
            DatabaseConfig::builder()
                .host("/var/run/postgresql")
                .ssl_mode(SslMode::VerifyFull)
                .ssl_ca_file(&missing),
        ] {
            let opts = options(&config.build().expect("valid config")).expect("options");
            assert!(matches!(opts.get_ssl_mode(), PgSslMode::Disable));
        }
    }

    #[test]
    fn the_environment_client_certificate_is_checked() {
        let dir = Dir::new("env");
        let cert = dir.file("client.crt", CERT).display().to_string();
        let key = dir.file("client.key", KEY).display().to_string();
        let missing = dir.0.path().join("gone.key").display().to_string();
        let config = DatabaseConfig::builder()
            .host("db.example")
            .ssl_mode(tls_mode())
            .build()
            .expect("valid config");
        let run = |vars: &[(&str, &str)]| {
            let vars: Vec<(String, String)> = vars
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect();
            let env =
                move |name: &str| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
            apply(PgConnectOptions::new_without_pgpass(), &config, &env)
        };
        assert!(run(&[("PGSSLCERT", &cert), ("PGSSLKEY", &key)]).is_ok());
        assert!(run(&[("PGSSLCERT", CERT), ("PGSSLKEY", KEY)]).is_ok());
        let err = run(&[("PGSSLCERT", &cert), ("PGSSLKEY", &missing)]).expect_err("missing");
        assert!(
            matches!(&err, Error::Config { field, .. } if field == "PGSSLKEY"),
            "{err}"
        );
        assert!(err.to_string().contains(&missing), "{err}");
        let err = run(&[("PGSSLCERT", &cert)]).expect_err("no key");
        assert!(
            matches!(&err, Error::Config { field, .. } if field == "PGSSLKEY"),
            "{err}"
        );
    }
}
