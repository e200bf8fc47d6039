//! The whole pgdbm conformance suite against a real server (found by pgdbm-testing), through
//! `Arc<dyn PoolProvider>`. No capability is switched off: sqlx passes every check.

pgdbm::conformance_tests!(
    pgdbm_driver_sqlx::SqlxDriver,
    pgdbm::conformance::Capabilities::default(),
    server = pgdbm_testing::server_config
);
