//! Guardrail checks that need a PostgreSQL server of their own (a `DedicatedServer` from
//! pgdbm-testing, never the shared test server): a server restart under load, and password
//! authentication failures that must not leak the password. The other guardrails (timeouts,
//! killed connections, lifetimes, stats, secrets) run in `tests/conformance.rs`.

use pgdbm_conformance::dedicated as guardrails;
use pgdbm_driver_sqlx::SqlxDriver;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_during_load() -> pgdbm::Result<()> {
    guardrails::restart_during_load::<SqlxDriver>().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_password() -> pgdbm::Result<()> {
    guardrails::wrong_password::<SqlxDriver>().await
}
