//! Guardrail checks that need a PostgreSQL server of their own (a `DedicatedServer` from
//! pgdbm-testing, never the shared test server): a server restart under load, and password
//! authentication failures that must not leak the password. The other guardrails (timeouts,
//! killed connections, lifetimes, stats, secrets) run in `tests/conformance.rs`.

use pgdbm::conformance::{ServerControl, server_restart_during_load, wrong_password_stays_secret};
use pgdbm_testing::DedicatedServer;

type Driver = pgdbm_driver_sqlx::SqlxDriver;

/// Stops and starts the dedicated server for the restart check.
struct Control<'a>(&'a DedicatedServer);

#[async_trait::async_trait]
impl ServerControl for Control<'_> {
    async fn stop(&self) -> pgdbm::Result<()> {
        self.0.stop().await
    }
    async fn start(&self) -> pgdbm::Result<()> {
        self.0.start().await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_during_load() {
    let server = DedicatedServer::builder()
        .start()
        .await
        .expect("cannot start a dedicated PostgreSQL server");
    if let Err(e) =
        server_restart_during_load::<Driver>(server.config().clone(), &Control(&server)).await
    {
        panic!(
            "server_restart_during_load failed: {e} ({e:?})\nserver log:\n{}",
            server.log()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_password() {
    let server = DedicatedServer::builder()
        .password("the-right-pw-4Kq9")
        .start()
        .await
        .expect("cannot start a dedicated PostgreSQL server");
    if let Err(e) = wrong_password_stays_secret::<Driver>(server.config().clone()).await {
        panic!("wrong_password_stays_secret failed: {e} ({e:?})");
    }
}
