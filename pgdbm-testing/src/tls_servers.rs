//! The servers the core's TLS checks (`pgdbm::conformance::tls`) run against, set up once here
//! for every driver.

use pgdbm::conformance::{TlsCapabilities, TlsTestEnv, connector, run_tls_checks, tls_hba_lines};
use pgdbm::{Driver, Result};

use crate::{CLIENT_CERT_USER, DedicatedServer, TestCerts};

/// Two private servers for TLS tests, stopped and removed when dropped: one with TLS on
/// ([`TestCerts`] generated for it; client certificates required for [`CLIENT_CERT_USER`], a
/// `scram-sha-256` user, everyone else trusted — see
/// [`tls_hba_lines`](pgdbm::conformance::tls_hba_lines)) and one without TLS.
///
/// ```no_run
/// # async fn demo() -> pgdbm::Result<()> {
/// use pgdbm::conformance::TlsCapabilities;
/// use pgdbm_driver_tokio_postgres::TokioPostgres;
///
/// let servers = pgdbm_testing::TlsTestServers::start().await?;
/// servers.run_checks::<TokioPostgres>(TlsCapabilities::default()).await;
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
            .map_err(|e| pgdbm::Error::config("test server", format!("plain server: {e}")))??;
        Ok(TlsTestServers { certs, tls, plain })
    }

    /// The description of these servers the TLS checks take, for driver `D`.
    ///
    /// # Errors
    ///
    /// Never in practice (the socket configuration's validation).
    pub fn env<D: Driver>(&self, caps: TlsCapabilities) -> Result<TlsTestEnv> {
        Ok(TlsTestEnv {
            tls_server: self.tls.config().clone(),
            tls_socket: Some(self.tls.socket_config()?),
            plain_server: self.plain.config().clone(),
            ca_file: self.certs.ca_cert.clone(),
            other_ca_file: self.certs.other_ca_cert.clone(),
            client_cert: self.certs.client_cert.clone(),
            client_key: self.certs.client_key.clone(),
            cert_user: CLIENT_CERT_USER.to_owned(),
            connector: connector::<D>(),
            caps,
        })
    }

    /// Runs every TLS check with driver `D` and panics listing those that failed (with the TLS
    /// server's log).
    ///
    /// # Panics
    ///
    /// When a check fails or panics — this is a test helper.
    pub async fn run_checks<D: Driver>(&self, caps: TlsCapabilities) {
        let env = self.env::<D>(caps).expect("TLS test environment");
        let failed: Vec<String> = run_tls_checks(&env)
            .await
            .into_iter()
            .filter_map(|(name, outcome)| outcome.err().map(|e| format!("{name}: {e}")))
            .collect();
        if !failed.is_empty() {
            eprintln!("TLS server log:\n{}", self.tls.log());
        }
        assert!(
            failed.is_empty(),
            "TLS checks failed:\n{}",
            failed.join("\n")
        );
    }
}
