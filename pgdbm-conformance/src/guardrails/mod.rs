//! Guardrails: server-side timeouts, pools under stress (killed connections, an unreachable
//! database, lifetimes, stats under load, a server restart) and secrets kept out of logs and
//! errors.
//!
//! Most checks run on the shared test server through the `conformance_tests!` macro. Two need a
//! server of their own: [`server_restart_during_load`] (stops and starts the server through a
//! [`ServerControl`]) and [`wrong_password_stays_secret`] (needs password authentication).
//! Driver crates run them on a `pgdbm_testing::DedicatedServer` through
//! [`dedicated`](crate::dedicated).

mod connection_loss;
mod lifetimes;
mod pool_stats;
mod restart;
mod secrets;
mod timeouts;

pub use connection_loss::*;
pub use lifetimes::*;
pub use pool_stats::*;
pub use restart::*;
pub use secrets::*;
pub use timeouts::*;
