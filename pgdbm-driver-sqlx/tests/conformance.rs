//! The whole pgdbm conformance suite against a real server, through `Arc<dyn PoolProvider>`.

pgdbm::conformance_tests!(pgdbm_driver_sqlx::SqlxDriver);
