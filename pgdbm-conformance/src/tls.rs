//! TLS checks, written once for every driver: libpq's `sslmode`s against a real server with TLS,
//! certificate verification, client certificates, and password authentication errors.
//!
//! They run on the two servers of [`pgdbm_testing::TlsTestServers`] (one with TLS, one
//! without), shared by every TLS test of a test binary; [`tls_tests!`](crate::tls_tests) makes
//! one test per check:
//!
//! ```ignore
//! pgdbm_conformance::tls_tests!(MyDriver, pgdbm_conformance::TlsCapabilities::default());
//! ```

use std::path::PathBuf;
use std::time::{Duration, Instant};

use pgdbm::driver::Driver;
use pgdbm::{
    DatabaseConfig, DatabaseConfigBuilder, Error, ErrorKind, ExecutorExt, Result, RetryPolicy,
    SharedPool, SslMode,
};
use pgdbm_testing::{CLIENT_CERT_USER, TLS_SCRAM_USER, TlsTestServers};

use crate::support::error_chain;
use crate::{Connector, connector};

/// The password of [`TLS_SCRAM_USER`] (made up for the test; the checks assert it never shows in an error).
const SCRAM_PASSWORD: &str = "Scram-pw-7f3a91";

/// The servers and files the TLS checks run against.
pub struct TlsTestEnv {
    /// A server with TLS on, reached as host `localhost` (the only name its certificate is
    /// valid for), whose `pg_hba.conf` holds [`tls_hba_lines`](pgdbm_testing::tls_hba_lines): the user of this config (a
    /// superuser) is trusted with and without TLS. Its certificate is signed by `ca_file`, and it
    /// trusts client certificates signed by `ca_file`.
    pub tls_server: DatabaseConfig,
    /// The same server over its Unix socket, if it has one (there is never TLS over a socket).
    pub tls_socket: Option<DatabaseConfig>,
    /// A server without TLS; its user is trusted.
    pub plain_server: DatabaseConfig,
    /// The CA that signed the server's and the client's certificates (PEM).
    pub ca_file: PathBuf,
    /// A CA that signed nothing the server uses (PEM).
    pub other_ca_file: PathBuf,
    /// A client certificate (PEM) for `cert_user`, signed by `ca_file`.
    pub client_cert: PathBuf,
    /// Its private key (PEM).
    pub client_key: PathBuf,
    /// The role named in the client certificate (its common name); the checks create it.
    pub cert_user: String,
    /// Opens a pool with the driver under test (see [`connector`]).
    pub connector: Connector,
    /// Where the driver's TLS differs from libpq (all `true` for a driver that matches it).
    pub caps: TlsCapabilities,
}

/// Where a driver's TLS may legitimately differ from libpq. A check that meets a capability the
/// driver lacks asserts what the driver does instead — which must never be weaker than libpq —
/// and says so on standard error; nothing is skipped silently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct TlsCapabilities {
    /// `verify-ca` (and `require` with a root file) check the chain but not the host name, as
    /// libpq does. Without it the driver must refuse a certificate not valid for the host name
    /// in those modes (stricter than libpq).
    pub verify_ca_skips_host_name: bool,
    /// `prefer` with a root file verifies the certificate as `verify-ca` does and, when the
    /// handshake fails, connects without TLS, as libpq does. Without it the driver must still
    /// connect over TLS (unverified, as `prefer` without a root file).
    pub prefer_verifies_and_falls_back: bool,
}

impl Default for TlsCapabilities {
    fn default() -> Self {
        TlsCapabilities {
            verify_ca_skips_host_name: true,
            prefer_verifies_and_falls_back: true,
        }
    }
}

impl TlsTestEnv {
    /// The description of `servers` for driver `D`.
    ///
    /// # Errors
    ///
    /// Never in practice (the socket configuration's validation).
    pub fn new<D: Driver>(servers: &TlsTestServers, caps: TlsCapabilities) -> Result<TlsTestEnv> {
        Ok(TlsTestEnv {
            tls_server: servers.tls.config().clone(),
            tls_socket: Some(servers.tls.socket_config()?),
            plain_server: servers.plain.config().clone(),
            ca_file: servers.certs.ca_cert.clone(),
            other_ca_file: servers.certs.other_ca_cert.clone(),
            client_cert: servers.certs.client_cert.clone(),
            client_key: servers.certs.client_key.clone(),
            cert_user: CLIENT_CERT_USER.to_owned(),
            connector: connector::<D>(),
            caps,
        })
    }
}

impl std::fmt::Debug for TlsTestEnv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsTestEnv")
            .field("tls_server", &self.tls_server)
            .field("plain_server", &self.plain_server)
            .field("ca_file", &self.ca_file)
            .field("cert_user", &self.cert_user)
            .finish_non_exhaustive()
    }
}

/// A retry policy under which a retried failure would show: 3 attempts, 300 ms apart.
fn visible_retries() -> RetryPolicy {
    RetryPolicy::new(
        3,
        Duration::from_millis(300),
        1.0,
        Duration::from_millis(300),
    )
}

fn config(
    base: &DatabaseConfig,
    change: impl FnOnce(DatabaseConfigBuilder) -> DatabaseConfigBuilder,
) -> Result<DatabaseConfig> {
    change(
        base.to_builder()
            .min_connections(1)
            .max_connections(2)
            .connect_timeout(Duration::from_secs(10))
            .retry(visible_retries()),
    )
    .build()
}

/// Whether the pool's session uses TLS, as the server sees it.
async fn uses_tls(pool: &SharedPool) -> Result<bool> {
    pool.fetch_value::<bool>(
        "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
        &[],
    )
    .await
}

/// Connects with `config`, checks whether TLS is used (when `tls` is given), closes.
async fn connects(env: &TlsTestEnv, what: &str, config: DatabaseConfig, tls: Option<bool>) {
    let pool = match (env.connector)(config).await {
        Ok(pool) => pool,
        Err(e) => panic!("{what}: expected to connect, got: {}", error_chain(&e)),
    };
    let used = uses_tls(&pool)
        .await
        .unwrap_or_else(|e| panic!("{what}: pg_stat_ssl: {}", error_chain(&e)));
    if let Some(expected) = tls {
        assert_eq!(used, expected, "{what}: TLS in use");
    }
    pool.close().await;
}

/// The connect error of `config`, which must fail after one attempt (not retried), and its
/// text with all sources, lowercased.
async fn refused(env: &TlsTestEnv, what: &str, config: DatabaseConfig) -> (Error, String) {
    let err = match (env.connector)(config).await {
        Ok(pool) => {
            let tls = uses_tls(&pool).await;
            pool.close().await;
            panic!("{what}: expected a connect error, but connected (TLS in use: {tls:?})");
        }
        Err(e) => e,
    };
    let text = error_chain(&err);
    eprintln!("  {what}: refused as expected: {text}");
    match &err {
        Error::Connect { attempts, .. } => {
            assert_eq!(*attempts, 1, "{what}: must not be retried: {text}");
        }
        _ => panic!("{what}: expected Error::Connect, got: {text} ({err:?})"),
    }
    (err, text.to_lowercase())
}

/// Creates the roles the checks log in as (idempotent; safe when checks run at once).
async fn ensure_roles(env: &TlsTestEnv) -> Result<()> {
    pgdbm::validate_identifier("role", &env.cert_user)?;
    let admin = (env.connector)(config(&env.tls_server, |b| b.ssl_mode(SslMode::Prefer))?).await?;
    let sql = format!(
        "DO $$ BEGIN
           PERFORM pg_advisory_xact_lock(hashtext('pgdbm_tls_roles'));
           IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{cert}') THEN
             CREATE ROLE \"{cert}\" LOGIN;
           END IF;
           IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{scram}') THEN
             CREATE ROLE \"{scram}\" LOGIN PASSWORD '{pw}';
           END IF;
         END $$",
        cert = env.cert_user,
        scram = TLS_SCRAM_USER,
        pw = SCRAM_PASSWORD,
    );
    let result = admin.batch_execute(&sql).await;
    admin.close().await;
    result
}

/// Every mode connects to a TLS server where libpq would, and uses TLS unless disabled: the
/// weak modes without checking the certificate (the test CA is in no public root store), the
/// verifying ones with the CA; a root file makes `prefer`/`require` verify (as `verify-ca`).
///
/// # Errors
///
/// Setup failures; the checks themselves panic with a message.
pub async fn tls_modes_connect(env: &TlsTestEnv) -> Result<()> {
    let server = &env.tls_server;
    let cases = [
        (SslMode::Disable, false, Some(false)),
        // libpq's `allow` tries without TLS first; drivers may treat it as `prefer`.
        (SslMode::Allow, false, None),
        (SslMode::Prefer, false, Some(true)),
        (SslMode::Require, false, Some(true)),
        (SslMode::Prefer, true, Some(true)),
        (SslMode::Require, true, Some(true)),
        (SslMode::VerifyCa, true, Some(true)),
        (SslMode::VerifyFull, true, Some(true)),
    ];
    for (mode, with_ca, tls) in cases {
        let cfg = config(server, |b| {
            let b = b.ssl_mode(mode);
            if with_ca {
                b.ssl_ca_file(&env.ca_file)
            } else {
                b
            }
        })?;
        let what = format!("sslmode={mode} (root file: {with_ca})");
        connects(env, &what, cfg, tls).await;
    }
    // The same through the connection string.
    let url = format!(
        "postgresql://{}@localhost:{}/{}?sslmode=verify-full&sslrootcert={}",
        server.user(),
        server.port(),
        server.database(),
        env.ca_file.display()
    );
    let cfg = DatabaseConfig::builder()
        .url(&url)
        .min_connections(1)
        .max_connections(2)
        .retry(visible_retries())
        .build()?;
    assert_eq!(cfg.ssl().mode, SslMode::VerifyFull);
    connects(env, "sslmode=verify-full in the URL", cfg, Some(true)).await;
    Ok(())
}

/// The certificate is for `localhost` only: through `127.0.0.1`, `verify-full` refuses it
/// (saying the name does not match, without retrying), `require` without a root file connects,
/// and so do `verify-ca` and `require` with it — or, for a driver without
/// [`TlsCapabilities::verify_ca_skips_host_name`], they are refused for the name too.
///
/// # Errors
///
/// Setup failures; the checks themselves panic with a message.
pub async fn tls_verify_full_checks_host_name(env: &TlsTestEnv) -> Result<()> {
    let by_ip = |mode| {
        config(&env.tls_server, |b| {
            b.host("127.0.0.1").ssl_mode(mode).ssl_ca_file(&env.ca_file)
        })
    };
    let (_, text) = refused(env, "verify-full to 127.0.0.1", by_ip(SslMode::VerifyFull)?).await;
    assert!(
        text.contains("certificate") && text.contains("name") && text.contains("127.0.0.1"),
        "the error should say the certificate is not valid for the name: {text}"
    );
    let require_unverified = config(&env.tls_server, |b| {
        b.host("127.0.0.1").ssl_mode(SslMode::Require)
    })?;
    connects(
        env,
        "require without a root file to 127.0.0.1",
        require_unverified,
        Some(true),
    )
    .await;
    if env.caps.verify_ca_skips_host_name {
        for mode in [SslMode::VerifyCa, SslMode::Require] {
            let what = format!("{mode} with the CA to 127.0.0.1");
            connects(env, &what, by_ip(mode)?, Some(true)).await;
        }
    } else {
        eprintln!(
            "  declared gap: this driver's verify-ca also checks the host name; asserting that \
             it refuses 127.0.0.1 instead"
        );
        for mode in [SslMode::VerifyCa, SslMode::Require] {
            let what = format!("{mode} with the CA to 127.0.0.1");
            let (_, text) = refused(env, &what, by_ip(mode)?).await;
            assert!(text.contains("name"), "{what}: {text}");
        }
        let by_name = config(&env.tls_server, |b| {
            b.ssl_mode(SslMode::VerifyCa).ssl_ca_file(&env.ca_file)
        })?;
        connects(env, "verify-ca to localhost", by_name, Some(true)).await;
    }
    Ok(())
}

/// A server certificate not signed by the trusted CA is refused by `verify-full`, `verify-ca`
/// and `require` with that root file (saying the issuer is unknown, without retrying), and by
/// `verify-ca` without a root file (the test CA is not a public root). `prefer` falls back to a
/// connection without TLS, as libpq does when the handshake fails (a driver without
/// [`TlsCapabilities::prefer_verifies_and_falls_back`] connects over TLS, unverified).
///
/// # Errors
///
/// Setup failures; the checks themselves panic with a message.
pub async fn tls_untrusted_ca_refused(env: &TlsTestEnv) -> Result<()> {
    for mode in [SslMode::VerifyFull, SslMode::VerifyCa, SslMode::Require] {
        let cfg = config(&env.tls_server, |b| {
            b.ssl_mode(mode).ssl_ca_file(&env.other_ca_file)
        })?;
        let (_, text) = refused(env, &format!("{mode} with the other CA"), cfg).await;
        assert!(
            text.contains("certificate") && (text.contains("issuer") || text.contains("trust")),
            "{mode}: the error should say the certificate is not trusted: {text}"
        );
    }
    let cfg = config(&env.tls_server, |b| b.ssl_mode(SslMode::VerifyCa))?;
    let (_, text) = refused(env, "verify-ca without a root file", cfg).await;
    assert!(text.contains("certificate"), "{text}");

    let cfg = config(&env.tls_server, |b| {
        b.ssl_mode(SslMode::Prefer).ssl_ca_file(&env.other_ca_file)
    })?;
    if env.caps.prefer_verifies_and_falls_back {
        connects(env, "prefer with the other CA", cfg, Some(false)).await;
    } else {
        eprintln!(
            "  declared gap: this driver's prefer does not verify against the root file; \
             asserting that it connects over TLS, unverified, instead"
        );
        connects(env, "prefer with the other CA", cfg, Some(true)).await;
    }
    Ok(())
}

/// Against a server without TLS: `require` (and `verify-full`) fail at once saying the server
/// does not support TLS; `prefer` and `disable` connect without it.
///
/// # Errors
///
/// Setup failures; the checks themselves panic with a message.
pub async fn tls_plain_server(env: &TlsTestEnv) -> Result<()> {
    let server = &env.plain_server;
    for mode in [SslMode::Require, SslMode::VerifyFull] {
        let cfg = config(server, |b| b.ssl_mode(mode).ssl_ca_file(&env.ca_file))?;
        let (_, text) = refused(env, &format!("{mode} against a server without TLS"), cfg).await;
        assert!(
            (text.contains("tls") || text.contains("ssl")) && text.contains("not support"),
            "{mode}: the error should say the server does not support TLS: {text}"
        );
    }
    for mode in [SslMode::Prefer, SslMode::Allow, SslMode::Disable] {
        let cfg = config(server, |b| b.ssl_mode(mode))?;
        connects(
            env,
            &format!("{mode} to a server without TLS"),
            cfg,
            Some(false),
        )
        .await;
    }
    Ok(())
}

/// There is never TLS over a Unix socket, whatever the mode (as in libpq): `require` and
/// `verify-full` connect through the TLS server's socket without TLS. Skipped (saying so) when
/// the environment has no socket.
///
/// # Errors
///
/// Setup failures; the checks themselves panic with a message.
pub async fn tls_unix_socket_without_tls(env: &TlsTestEnv) -> Result<()> {
    let Some(socket) = &env.tls_socket else {
        eprintln!("tls_unix_socket_without_tls: skipped, no Unix socket in the environment");
        return Ok(());
    };
    for mode in [SslMode::Require, SslMode::VerifyFull] {
        let cfg = config(socket, |b| b.ssl_mode(mode).ssl_ca_file(&env.ca_file))?;
        connects(env, &format!("{mode} over a Unix socket"), cfg, Some(false)).await;
    }
    Ok(())
}

/// A role allowed only with a client certificate (`hostssl … cert`) is refused without one (an
/// authentication error, not retried) and logs in with the right certificate and key.
///
/// # Errors
///
/// Setup failures; the checks themselves panic with a message.
pub async fn tls_client_certificate(env: &TlsTestEnv) -> Result<()> {
    ensure_roles(env).await?;
    let as_cert_user = |with_cert: bool, mode| {
        config(&env.tls_server, |b| {
            let b = b
                .user(&env.cert_user)
                .without_password()
                .ssl_mode(mode)
                .ssl_ca_file(&env.ca_file);
            if with_cert {
                b.ssl_cert_file(&env.client_cert)
                    .ssl_key_file(&env.client_key)
            } else {
                b
            }
        })
    };
    let (err, text) = refused(
        env,
        "certificate user without a certificate",
        as_cert_user(false, SslMode::VerifyFull)?,
    )
    .await;
    assert_eq!(
        err.kind(),
        Some(ErrorKind::InvalidAuthorization),
        "the server's refusal (SQLSTATE 28000) should be the cause: {text}"
    );
    assert!(text.contains("certificate"), "{text}");

    for mode in [SslMode::VerifyFull, SslMode::Require] {
        let cfg = as_cert_user(true, mode)?;
        let what = format!("certificate user with the client certificate ({mode})");
        let pool = match (env.connector)(cfg).await {
            Ok(pool) => pool,
            Err(e) => panic!("{what}: expected to connect, got: {}", error_chain(&e)),
        };
        let user: String = pool.fetch_value("SELECT current_user::text", &[]).await?;
        assert_eq!(user, env.cert_user, "{what}");
        assert!(uses_tls(&pool).await?, "{what}: TLS in use");
        pool.close().await;
    }
    Ok(())
}

/// An encrypted client key (PKCS#8, AES-256-CBC, made with openssl from the test client key):
/// with `ssl_key_password` the certificate user logs in; a wrong password is an
/// [`Error::Config`] naming `ssl_key_password` whose text holds neither password, and no
/// password names the setting to use. Debug of the config never shows the password.
///
/// # Errors
///
/// Setup failures (openssl missing); the checks themselves panic with a message.
pub async fn tls_encrypted_client_key(env: &TlsTestEnv) -> Result<()> {
    ensure_roles(env).await?;
    let password = "Key-pw-3b9d41";
    let encrypted = pgdbm_testing::encrypt_key(&env.client_key, password)?;
    let pem = std::fs::read_to_string(encrypted.path())
        .map_err(|e| Error::io("reading the encrypted key", e))?;
    assert!(
        pem.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----"),
        "not encrypted"
    );
    let with_key = |password: Option<&str>| {
        config(&env.tls_server, |b| {
            let b = b
                .user(&env.cert_user)
                .without_password()
                .ssl_mode(SslMode::VerifyFull)
                .ssl_ca_file(&env.ca_file)
                .ssl_cert_file(&env.client_cert)
                .ssl_key_file(encrypted.path());
            match password {
                Some(p) => b.ssl_key_password(p),
                None => b,
            }
        })
    };

    let cfg = with_key(Some(password))?;
    assert!(
        !format!("{cfg:?}").contains(password),
        "Debug shows the key password"
    );
    let pool = match (env.connector)(cfg).await {
        Ok(pool) => pool,
        Err(e) => panic!(
            "encrypted client key: expected to connect, got: {}",
            error_chain(&e)
        ),
    };
    let user: String = pool.fetch_value("SELECT current_user::text", &[]).await?;
    assert_eq!(user, env.cert_user);
    assert!(uses_tls(&pool).await?);
    pool.close().await;

    let wrong = "Wrong-key-pw-c81e07";
    let err = match (env.connector)(with_key(Some(wrong))?).await {
        Ok(pool) => {
            pool.close().await;
            panic!("a wrong key password connected");
        }
        Err(e) => e,
    };
    let text = format!("{} {err:?}", error_chain(&err));
    assert!(
        matches!(err, Error::Config { ref field, .. } if field == "ssl_key_password"),
        "{text}"
    );
    assert!(!text.contains(wrong) && !text.contains(password), "{text}");

    let err = match (env.connector)(with_key(None)?).await {
        Ok(pool) => {
            pool.close().await;
            panic!("an encrypted key without its password connected");
        }
        Err(e) => e,
    };
    let text = error_chain(&err);
    assert!(
        matches!(err, Error::Config { ref field, .. } if field == "ssl_key_file"),
        "{text}"
    );
    assert!(text.contains("ssl_key_password"), "{text}");
    Ok(())
}

/// Password authentication (`scram-sha-256`), with TLS (where drivers may bind the session to
/// the certificate, SCRAM-SHA-256-PLUS) and without: the right password logs in; a wrong one
/// is an [`Error::Connect`] caused by the server's `28P01` error, after one attempt, at once
/// under the default retry policy (well under its 1 s delay), not a pool timeout, and no error
/// text contains the password.
///
/// # Errors
///
/// Setup failures; the checks themselves panic with a message.
pub async fn tls_password_authentication(env: &TlsTestEnv) -> Result<()> {
    ensure_roles(env).await?;
    let wrong_password = "Wrong-pw-52c8e0";
    for (mode, tls) in [(SslMode::Require, true), (SslMode::Disable, false)] {
        let as_scram_user = |password: &str| {
            env.tls_server
                .to_builder()
                .user(TLS_SCRAM_USER)
                .password(password)
                .ssl_mode(mode)
                .min_connections(1)
                .max_connections(2)
                .retry(RetryPolicy::default())
                .build()
        };
        connects(
            env,
            &format!("{mode}: the right password"),
            as_scram_user(SCRAM_PASSWORD)?,
            Some(tls),
        )
        .await;

        let what = format!("{mode}: a wrong password");
        let started = Instant::now();
        let result = (env.connector)(as_scram_user(wrong_password)?).await;
        let elapsed = started.elapsed();
        let err = match result {
            Ok(pool) => {
                pool.close().await;
                panic!("{what}: connected");
            }
            Err(e) => e,
        };
        let text = error_chain(&err);
        assert!(
            matches!(err, Error::Connect { attempts: 1, .. }),
            "{what}: expected Error::Connect after 1 attempt, got: {text} ({err:?})"
        );
        assert!(!err.is_pool_timeout(), "{what}: {text}");
        assert_eq!(err.code(), Some("28P01"), "{what}: {text}");
        assert_eq!(err.kind(), Some(ErrorKind::InvalidAuthorization), "{what}");
        assert!(
            text.to_lowercase()
                .contains("password authentication failed"),
            "{what}: the error should say so: {text}"
        );
        assert!(
            elapsed < Duration::from_secs(1),
            "{what}: took {elapsed:?}, expected an immediate failure"
        );
        let debug = format!("{err:?}");
        for secret in [wrong_password, SCRAM_PASSWORD] {
            assert!(
                !text.contains(secret) && !debug.contains(secret),
                "{what}: the error shows a password: {text}"
            );
        }
    }
    Ok(())
}

/// Unreadable or wrong TLS files are configuration errors naming the field and the path, found
/// when the pool opens (before any connection), not panics and not connect errors.
///
/// # Errors
///
/// Setup failures; the checks themselves panic with a message.
pub async fn tls_bad_files(env: &TlsTestEnv) -> Result<()> {
    let missing = env.ca_file.with_file_name("pgdbm-no-such-file.crt");
    let cases = [
        (
            "a missing root file",
            "ssl_ca_file",
            missing.clone(),
            config(&env.tls_server, |b| {
                b.ssl_mode(SslMode::VerifyFull).ssl_ca_file(&missing)
            })?,
        ),
        (
            "a key as the root file",
            "ssl_ca_file",
            env.client_key.clone(),
            config(&env.tls_server, |b| {
                b.ssl_mode(SslMode::VerifyFull).ssl_ca_file(&env.client_key)
            })?,
        ),
        (
            "a missing client certificate",
            "ssl_cert_file",
            missing.clone(),
            config(&env.tls_server, |b| {
                b.ssl_mode(SslMode::Require)
                    .ssl_cert_file(&missing)
                    .ssl_key_file(&env.client_key)
            })?,
        ),
        (
            "a certificate as the client key",
            "ssl_key_file",
            env.client_cert.clone(),
            config(&env.tls_server, |b| {
                b.ssl_mode(SslMode::Require)
                    .ssl_cert_file(&env.client_cert)
                    .ssl_key_file(&env.client_cert)
            })?,
        ),
    ];
    for (what, expected_field, path, cfg) in cases {
        match (env.connector)(cfg).await {
            Err(Error::Config { field, message, .. }) => {
                assert_eq!(field, expected_field, "{what}: {message}");
                assert!(
                    message.contains(&path.display().to_string()),
                    "{what}: the message should name {}: {message}",
                    path.display()
                );
            }
            Err(other) => panic!(
                "{what}: expected Error::Config, got: {}",
                error_chain(&other)
            ),
            Ok(pool) => {
                pool.close().await;
                panic!("{what}: connected");
            }
        }
    }
    Ok(())
}
