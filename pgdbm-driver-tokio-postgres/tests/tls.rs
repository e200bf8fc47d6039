//! The core's TLS checks (`pgdbm::conformance::tls`) against two private servers, one with TLS
//! and one without (`pgdbm_testing::TlsTestServers`), stopped and removed at the end. The driver
//! behaves as libpq in every check: no capability is switched off.

#![cfg(feature = "tls")]

use pgdbm::conformance::TlsCapabilities;
use pgdbm_driver_tokio_postgres::TokioPostgres;
use pgdbm_testing::TlsTestServers;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_checks() -> pgdbm::Result<()> {
    let servers = TlsTestServers::start().await?;
    servers
        .run_checks::<TokioPostgres>(TlsCapabilities::default())
        .await;
    Ok(())
}
