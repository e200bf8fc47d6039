//! What driver crates share: the pieces of a driver that do not depend on its client library,
//! written once here so that every driver behaves the same.
//!
//! This is the driver-author API. A driver classifies each server type into a [`coerce::PgType`]
//! and lets [`coerce::coerce`] decide what a pgdbm [`Value`](crate::Value) becomes in that type
//! (range checks, text parsed as `uuid`, text sent as `json`); it then writes the result in its
//! own wire encoding. It builds [`DbError`](crate::DbError)s from its client's server errors with
//! [`db_error::ServerError`], checks `copy_in` rows with [`copy::check_row_width`], and keeps its
//! per-thread caches of hot statements in a [`front_cache::FrontCache`].

pub mod coerce;
pub mod copy;
pub mod db_error;
pub mod front_cache;

pub use coerce::{CoerceError, Coerced, PgType, coerce};
pub use copy::check_row_width;
pub use db_error::ServerError;
pub use front_cache::FrontCache;
