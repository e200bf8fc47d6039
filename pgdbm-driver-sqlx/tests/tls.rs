//! The TLS checks of pgdbm-conformance with the sqlx driver, one test each, against two private
//! servers shared by this test binary, one with TLS and one without
//! (`pgdbm_testing::TlsTestServers::shared`), stopped and removed once it exits.
//!
//! Two capabilities are declared off, for documented gaps of sqlx 0.8 (see the crate docs,
//! "Where sqlx 0.8 differs from libpq"); the checks then assert what sqlx does instead, which is
//! never weaker than libpq: `verify-ca` (and `require` with a root file) also check the host
//! name (sqlx issue #3793), and `prefer` neither verifies against the root file nor falls back
//! to plain text when the handshake fails.

#![cfg(feature = "tls")]

use pgdbm_conformance::TlsCapabilities;

/// sqlx's TLS capabilities.
fn sqlx_caps() -> TlsCapabilities {
    let mut caps = TlsCapabilities::default();
    caps.verify_ca_skips_host_name = false;
    caps.prefer_verifies_and_falls_back = false;
    caps
}

pgdbm_conformance::tls_tests!(pgdbm_driver_sqlx::SqlxDriver, sqlx_caps());
