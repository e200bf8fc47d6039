//! The guardrail checks that need a server of their own ([`server_restart_during_load`],
//! [`wrong_password_stays_secret`]), each on a new [`DedicatedServer`]: one call in a driver's
//! `tests/guardrails.rs`.

use pgdbm::Result;
use pgdbm::driver::Driver;
use pgdbm_testing::DedicatedServer;

use crate::{ServerControl, server_restart_during_load, wrong_password_stays_secret};

#[async_trait::async_trait]
impl ServerControl for DedicatedServer {
    async fn stop(&self) -> Result<()> {
        DedicatedServer::stop(self).await
    }
    async fn start(&self) -> Result<()> {
        DedicatedServer::start(self).await
    }
}

/// [`server_restart_during_load`] with driver `D` on a new [`DedicatedServer`] (the shared test
/// server is never stopped).
///
/// # Errors
///
/// When the server cannot be started; the check's own error, with the server log appended.
pub async fn restart_during_load<D: Driver>() -> Result<()> {
    let server = DedicatedServer::builder().start().await?;
    server_restart_during_load::<D>(server.config().clone(), &server)
        .await
        .map_err(|e| with_log(e, &server))
}

/// [`wrong_password_stays_secret`] with driver `D` on a new [`DedicatedServer`] whose superuser
/// has a password (`scram-sha-256` over TCP).
///
/// # Errors
///
/// When the server cannot be started; the check's own error, with the server log appended.
pub async fn wrong_password<D: Driver>() -> Result<()> {
    let server = DedicatedServer::builder()
        .password("the-right-pw-4Kq9")
        .start()
        .await?;
    wrong_password_stays_secret::<D>(server.config().clone())
        .await
        .map_err(|e| with_log(e, &server))
}

fn with_log(err: pgdbm::Error, server: &DedicatedServer) -> pgdbm::Error {
    pgdbm::Error::test_setup(
        "guardrail check",
        format!("{err} ({err:?})\nserver log:\n{}", server.log()),
    )
}
