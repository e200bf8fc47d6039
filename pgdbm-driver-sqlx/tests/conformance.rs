//! The whole pgdbm conformance suite (pgdbm-conformance) against a real server found by
//! pgdbm-testing, through `Arc<dyn PoolProvider>`: one test per check. No capability is switched
//! off: sqlx passes every check.

// sqlx keeps a connection's cancel key to itself: the driver closes a connection whose statement
// was abandoned (the server then stops the statement) instead of cancelling it.
pgdbm_conformance::conformance_tests!(
    pgdbm_driver_sqlx::SqlxDriver,
    pgdbm_conformance::Capabilities::default()
        .closes_cancelled_connections()
        .refuses_max_queries()
        .refuses_multiplexing()
);
