//! [`FromRow`]: how a result row becomes a Rust value.

use crate::error::Result;
use crate::row::Row;

/// A type that can be built from one result [`Row`].
///
/// The typed fetch methods (`fetch_all_as`, `fetch_one_as`, …) and streams of typed rows use it.
/// Implement it by hand for full control:
///
/// ```
/// use pgdbm::{FromRow, Row, Result};
///
/// struct User {
///     id: i64,
///     email: String,
/// }
///
/// impl FromRow for User {
///     fn from_row(row: &Row) -> Result<Self> {
///         Ok(User { id: row.get("id")?, email: row.get("email")? })
///     }
/// }
/// ```
pub trait FromRow: Sized {
    /// Builds `Self` from `row`.
    ///
    /// # Errors
    ///
    /// [`Error::ColumnNotFound`](crate::Error::ColumnNotFound) for a missing column and
    /// [`Error::Decode`](crate::Error::Decode) for a value that does not fit; neither carries the
    /// value itself.
    fn from_row(row: &Row) -> Result<Self>;
}

impl FromRow for Row {
    fn from_row(row: &Row) -> Result<Self> {
        Ok(row.clone())
    }
}
