//! The core's TLS checks (`pgdbm::conformance::tls`) with the sqlx driver, against two private
//! servers, one with TLS and one without (`pgdbm_testing::TlsTestServers`), stopped and removed
//! at the end.
//!
//! Two capabilities are declared off, for documented gaps of sqlx 0.8 (see the crate docs,
//! "Where sqlx 0.8 differs from libpq"); the checks then assert what sqlx does instead, which is
//! never weaker than libpq: `verify-ca` (and `require` with a root file) also check the host
//! name (sqlx issue #3793), and `prefer` neither verifies against the root file nor falls back
//! to plain text when the handshake fails.

#![cfg(feature = "tls")]

use pgdbm::conformance::TlsCapabilities;
use pgdbm_driver_sqlx::SqlxDriver;
use pgdbm_testing::TlsTestServers;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_checks() -> pgdbm::Result<()> {
    let servers = TlsTestServers::start().await?;
    let mut caps = TlsCapabilities::default();
    caps.verify_ca_skips_host_name = false;
    caps.prefer_verifies_and_falls_back = false;
    servers.run_checks::<SqlxDriver>(caps).await;
    Ok(())
}
