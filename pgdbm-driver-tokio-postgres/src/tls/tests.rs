//! The TLS module's unit tests: modes, files, channel binding.

#[allow(clippy::wildcard_imports)]
use super::channel_binding::*;
use super::*;
use pgdbm::DatabaseConfig;
use sha2::Digest;
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
        Err(Error::Config { field, message, .. }) => (field, message),
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
