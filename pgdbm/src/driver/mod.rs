//! What driver crates share: the pieces of a driver that do not depend on its client library,
//! written once here so that every driver behaves the same.
//!
//! This is the driver-author API, apart from the application's (`Database`, `Transaction`,
//! values, rows, errors, configuration at the crate root): the seams a driver implements
//! ([`Connection`], [`PoolProvider`], [`Driver`]), the state every pool keeps ([`PoolState`]:
//! closed flag and waiting checkouts through a [`CheckoutGate`], the last connect failure, the
//! target), connecting with retries ([`connect_with_retry`], [`TlsError`], [`is_permanent`]),
//! the dedicated connections of a [`Listener`](crate::Listener) ([`NotificationConnector`],
//! [`NotificationConnection`]), and the rules below. A driver classifies each server type into a [`coerce::PgType`]
//! and lets [`coerce::coerce`] decide what a pgdbm [`Value`](crate::Value) becomes in that type
//! (range checks, text parsed as `uuid`, text sent as `json`); it then writes the result in its
//! own wire encoding. It builds [`DbError`](crate::DbError)s from its client's server errors with
//! [`db_error::ServerError`], checks `copy_in` rows with [`copy::check_row_width`], and keeps its
//! per-thread caches of hot statements in a [`front_cache::FrontCache`]. `numeric` is
//! written and read here for every driver ([`numeric`]), so one `decimal` feature (pgdbm's)
//! turns it on for all; so are dates and times ([`datetime`], pgdbm's `chrono`).
//!
//! When a statement's future is dropped while the server runs it, the driver follows
//! [`cancel`]'s policy: [`recover_in_background`] for a pool's own statement (cancel, wait until
//! the connection answers, pool it again or close it), a [`CancelGate`] for a checked-out
//! connection. Streams of rows ([`Executor::fetch`](crate::Executor::fetch)) are written as one
//! async block with [`row_stream()`].

pub mod array;
pub mod cancel;
mod checkout;
#[cfg(feature = "encrypted-client-keys")]
mod client_key;
pub mod coerce;
pub(crate) mod connect;
pub mod copy;
pub mod datetime;
pub mod db_error;
pub mod front_cache;
mod listen;
pub mod network;
pub mod numeric;
mod pool;
mod pool_registry;
mod pool_state;
mod pooler;
pub mod read;
pub mod row_stream;
mod server_info;
pub mod sql_scan;

pub use crate::row::Columns;
pub use cancel::{Abandoned, CancelGate, RECOVERY_LIMIT, recover, recover_in_background};
pub use checkout::CheckoutGate;
#[cfg(feature = "encrypted-client-keys")]
pub use client_key::{decrypt_client_key, decrypt_client_key_pem, is_encrypted_key};
pub use coerce::{CoerceError, Coerced, PgType, coerce};
pub use connect::{
    ConnectTarget, LastConnectError, TlsError, VALIDATE_AFTER_IDLE, connect_with_retry,
    escape_option, is_permanent,
};
pub use copy::check_row_width;
pub use db_error::ServerError;
pub use front_cache::FrontCache;
pub use listen::{NotificationConnection, NotificationConnector};
pub(crate) use pool::DiscardGuard;
pub use pool::{
    Connection, CopyStatements, Driver, PoolProvider, PoolStats, PooledConnection, SharedPool,
};
pub use pool_state::{InUse, PoolState};
pub use pooler::{
    PoolerSettings, bounded_by_client, client_timeout_error, refuse_behind_transaction_pooler,
    transaction_control,
};
pub use row_stream::{RowSender, STREAM_BUFFER, row_stream};
pub use server_info::{ServerInfo, inspect_opened_pool};

/// Builds a result column description: its name and the name of its PostgreSQL type (`int4`,
/// `text`, `_int8`…, as the server's `pg_type.typname`). Drivers call this once per result.
pub fn new_column(name: impl Into<String>, type_name: impl Into<String>) -> crate::Column {
    crate::Column::new(name, type_name)
}

/// Builds a result row from the result's columns and one value per column, in column order.
/// Drivers call this for every row they decode.
///
/// # Panics
///
/// Never in release builds; a debug assertion checks that there is one value per column.
pub fn new_row(columns: Columns, values: Vec<crate::Value>) -> crate::Row {
    crate::Row::new(columns, values)
}
pub use read::decode_own;
