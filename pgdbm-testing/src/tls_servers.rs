//! The servers of the TLS checks (pgdbm-conformance's `tls` module), set up once here for every
//! driver.

use pgdbm::Result;
use tokio::sync::OnceCell;

use crate::{CLIENT_CERT_USER, DedicatedServer, TestCerts};

/// The role [`tls_hba_lines`] lets in with a password (`scram-sha-256`) only.
pub const TLS_SCRAM_USER: &str = "pgdbm_tls_scram";

/// The `pg_hba.conf` lines (after `local all all trust`) of the TLS server of
/// [`TlsTestServers`]: `cert_user` only with a client certificate over TLS, [`TLS_SCRAM_USER`]
/// with a password (`scram-sha-256`, with or without TLS), everyone else trusted.
pub fn tls_hba_lines(cert_user: &str) -> Vec<String> {
    vec![
        format!("hostssl all {cert_user} all cert"),
        format!("host all {cert_user} all reject"),
        format!("host all {TLS_SCRAM_USER} all scram-sha-256"),
        "host all all all trust".to_owned(),
    ]
}

static SHARED: OnceCell<TlsTestServers> = OnceCell::const_new();

/// Two private servers for TLS tests, stopped and removed when dropped: one with TLS on
/// ([`TestCerts`] generated for it; client certificates required for [`CLIENT_CERT_USER`], a
/// `scram-sha-256` user, everyone else trusted — see [`tls_hba_lines`]) and one without TLS.
///
/// ```no_run
/// # async fn demo() -> pgdbm::Result<()> {
/// // One pair for the whole test binary (started by the first test that asks):
/// let servers = pgdbm_testing::TlsTestServers::shared().await?;
/// let config = servers.tls.config(); // postgres@localhost:<port>/postgres, TLS available
/// # let _ = config;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct TlsTestServers {
    /// The certificates (the TLS server's, a client's, and an unrelated CA).
    pub certs: TestCerts,
    /// The server with TLS.
    pub tls: DedicatedServer,
    /// The server without TLS.
    pub plain: DedicatedServer,
}

impl TlsTestServers {
    /// Generates the certificates and starts both servers.
    ///
    /// # Errors
    ///
    /// As [`TestCerts::generate`] and [`DedicatedServerBuilder::start`](crate::DedicatedServerBuilder::start).
    pub async fn start() -> Result<TlsTestServers> {
        let certs = TestCerts::generate()?;
        // Both start at once (each takes about a second).
        let plain = tokio::spawn(DedicatedServer::builder().start());
        let tls = DedicatedServer::builder()
            .tls(&certs)
            .hba(tls_hba_lines(CLIENT_CERT_USER))
            .start()
            .await?;
        let plain = plain
            .await
            .map_err(|e| pgdbm::Error::test_setup("test server", format!("plain server: {e}")))??;
        Ok(TlsTestServers { certs, tls, plain })
    }

    /// One pair of servers for the whole test process, started by the first call (each test has
    /// its own runtime; the servers are processes of their own, usable from any of them). Never
    /// dropped: the servers' watcher processes stop and remove them once the test process has
    /// exited.
    ///
    /// # Errors
    ///
    /// As [`TlsTestServers::start`]; a later call tries again.
    pub async fn shared() -> Result<&'static TlsTestServers> {
        SHARED.get_or_try_init(TlsTestServers::start).await
    }
}
