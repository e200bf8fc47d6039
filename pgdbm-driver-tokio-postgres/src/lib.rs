//! The tokio-postgres + bb8 driver for [pgdbm](pgdbm) (docs being written).

mod bind;
mod conn;
mod decode;
mod error;
mod pool;

pub use conn::TokioPostgresConnection;
pub use pool::{TokioPostgres, TokioPostgresPool};

pub use bb8;
pub use tokio_postgres;
