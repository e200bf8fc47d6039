//! The whole pgdbm conformance suite against a real server, through `Arc<dyn PoolProvider>`.
//! The server comes from pgdbm-testing: `PGDBM_TEST_URL`, …, or a throwaway server.

pgdbm::conformance_tests!(
    pgdbm_driver_tokio_postgres::TokioPostgres,
    pgdbm::conformance::Capabilities::default(),
    server = pgdbm_testing::server_config
);
