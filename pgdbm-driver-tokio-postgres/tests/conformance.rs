//! The whole pgdbm conformance suite (pgdbm-conformance) against a real server found by
//! pgdbm-testing, through `Arc<dyn PoolProvider>`: one test per check.

pgdbm_conformance::conformance_tests!(pgdbm_driver_tokio_postgres::TokioPostgres);
