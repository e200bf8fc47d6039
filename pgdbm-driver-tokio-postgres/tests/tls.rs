//! The TLS checks of pgdbm-conformance, one test each, against two private servers shared by
//! this test binary, one with TLS and one without (`pgdbm_testing::TlsTestServers::shared`),
//! stopped and removed once it exits. The driver behaves as libpq in every check: no capability
//! is switched off.

#![cfg(feature = "tls")]

pgdbm_conformance::tls_tests!(
    pgdbm_driver_tokio_postgres::TokioPostgres,
    pgdbm_conformance::TlsCapabilities::default()
);
