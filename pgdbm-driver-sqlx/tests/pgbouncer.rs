//! The pgdbm conformance suite through a real PgBouncer in transaction mode
//! (`pgdbm_testing::PgBouncer`, pool size 2, no ignored startup parameters): one test per check;
//! the checks that cannot apply through a transaction pooler, or that this driver does not pass
//! there yet, say why.

pgdbm_conformance::pooler_tests!(
    pgdbm_driver_sqlx::SqlxDriver,
    pgdbm_conformance::Capabilities::default().with_pooler_gaps(pgdbm_conformance::SQLX_GAPS)
);
