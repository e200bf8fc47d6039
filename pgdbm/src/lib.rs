//! pgdbm (crate docs being written).

mod config;
mod database;
mod error;
mod executor;
mod pool;
mod row;
mod template;
mod transaction;
mod value;

pub use config::{DatabaseConfig, DatabaseConfigBuilder, RetryPolicy, SslConfig, SslMode};
pub use database::Database;
pub use error::{BoxError, DbError, Error, ErrorKind, MAX_SQL_IN_ERROR, Result, truncate_sql};
pub use executor::{Executor, ExecutorExt};
pub use pool::{Connection, Driver, PoolProvider, PoolStats, PooledConnection, SharedPool};
pub use row::{Column, ColumnIndex, Columns, Row};
pub use template::{ExpandedSql, Templates, quote_identifier, validate_identifier};
pub use transaction::Transaction;
pub use value::{ArrayElement, FromValue, Json, Kind, Params, ToParam, Value};

/// The traits and macro most code needs: `use pgdbm::prelude::*;`.
pub mod prelude {
    pub use crate::executor::{Executor, ExecutorExt};
    pub use crate::params;
    pub use crate::{Database, Transaction};
}

#[cfg(feature = "conformance")]
pub mod conformance;
