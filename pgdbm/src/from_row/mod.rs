//! [`FromRow`]: how a result row becomes a Rust value — by hand, derived for a struct, or for a
//! tuple. What the derive expands to calls is in `derive_support`.

use crate::error::{Error, Result};
use crate::row::{Column, Row};
use crate::value::{FromValue, Value};

#[doc(hidden)]
pub mod derive_support;

/// A type that can be built from one result [`Row`].
///
/// The typed fetch methods ([`fetch_all_as`](crate::ExecutorExt::fetch_all_as),
/// [`fetch_one_as`](crate::ExecutorExt::fetch_one_as),
/// [`fetch_optional_as`](crate::ExecutorExt::fetch_optional_as)) and streams of typed rows use
/// it. Three ways to have it:
///
/// * **`#[derive(FromRow)]`** on a struct with named fields: each field reads the column of its
///   name (see below);
/// * **tuples** of 1 to 12 [`FromValue`] types read the columns by position: `(i64, String)` is
///   columns 0 and 1 (further columns are ignored; a row with fewer columns is an
///   [`Error::ColumnNotFound`] naming the missing position);
/// * **by hand**, for full control:
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
///
/// # The derive
///
/// ```
/// use pgdbm::{FromRow, Json};
///
/// #[derive(FromRow)]
/// struct User {
///     id: i64,
///     #[pgdbm(rename = "email_address")] // reads the column `email_address`
///     email: String,
///     nickname: Option<String>,          // NULL → None (NULL into a non-Option is an error)
///     #[pgdbm(default)]                  // no such column in the row → Default::default()
///     login_count: i64,
///     #[pgdbm(flatten)]                  // built from the same row by its own FromRow
///     audit: Audit,
///     prefs: Json<Prefs>,                // a json/jsonb column through serde
/// }
///
/// #[derive(FromRow)]
/// struct Audit {
///     created_by: String,
/// }
///
/// #[derive(serde::Deserialize)]
/// struct Prefs {
///     theme: String,
/// }
/// ```
///
/// Every field type implements [`FromValue`] (a flattened one [`FromRow`], a defaulted one also
/// `Default`). Generic structs work; each type parameter used in a field gets the bound its
/// field needs. The derived code is what a hand-written `row.get("column")` per field would be;
/// the only addition is on the error path.
///
/// A field that cannot be read gives an [`Error::Decode`] (or [`Error::ColumnNotFound`]) naming
/// the column, the struct and field, the Rust type wanted and the PostgreSQL type found —
/// `cannot decode column email_address for field User.email: expected String, found integer` —
/// never the value. A field of a flattened struct is named by its own struct.
///
/// The derive accepts structs with named fields only:
///
/// ```compile_fail
/// #[derive(pgdbm::FromRow)]
/// struct Pair(i64, String); // error: use a tuple `(i64, String)` to read columns by position
/// ```
///
/// ```compile_fail
/// #[derive(pgdbm::FromRow)]
/// enum Status { Active, Closed } // error: an enum has no columns to map
/// ```
///
/// ```compile_fail
/// #[derive(pgdbm::FromRow)]
/// struct User {
///     #[pgdbm(rename = "e", flatten)] // error: flatten reads no column of its own
///     email: String,
/// }
/// ```
pub trait FromRow: Sized {
    /// Builds `Self` from `row`.
    ///
    /// # Errors
    ///
    /// [`Error::ColumnNotFound`] for a missing column and [`Error::Decode`] for a value that
    /// does not fit; neither carries the value itself.
    fn from_row(row: &Row) -> Result<Self>;

    /// Builds one `Self` per row of a whole result, in order: what
    /// [`fetch_all_as`](crate::ExecutorExt::fetch_all_as) calls. The default calls
    /// [`from_row`](FromRow::from_row) for each row. The derive (for a struct without
    /// `flatten` fields) and the tuples override it to find each column once per result rather
    /// than once per row, and to move strings, bytes, JSON and arrays out of the rows
    /// ([`FromValue::from_owned_value`]) instead of copying them.
    ///
    /// # Errors
    ///
    /// The first row's error, as [`from_row`](FromRow::from_row) would give it.
    fn from_rows(rows: Vec<Row>) -> Result<Vec<Self>> {
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            out.push(Self::from_row(row)?);
        }
        Ok(out)
    }
}

impl FromRow for Row {
    fn from_row(row: &Row) -> Result<Self> {
        Ok(row.clone())
    }

    fn from_rows(rows: Vec<Row>) -> Result<Vec<Self>> {
        Ok(rows)
    }
}

/// Moves column `i` (which exists) out of `values` as a `T`; the error names the column.
#[inline]
fn take<T: FromValue>(values: &mut [Value], columns: &[Column], i: usize) -> Result<T> {
    T::from_owned_value(std::mem::replace(&mut values[i], Value::Null))
        .map_err(|actual| Error::decode(columns[i].name(), T::type_name(), actual))
}

/// `(i64, String).1` or `(i64,).0`: the tuple element an error is about.
fn tuple_element_name(types: &[String], index: usize) -> String {
    let trailing = if types.len() == 1 { "," } else { "" };
    format!("({}{trailing}).{index}", types.join(", "))
}

macro_rules! tuple_from_row {
    ($($t:ident $i:tt),+) => {
        impl<$($t: FromValue),+> FromRow for ($($t,)+) {
            #[inline]
            fn from_row(row: &Row) -> Result<Self> {
                let types = || [$($t::type_name()),+];
                Ok(($(
                    row.get::<$t>($i)
                        .map_err(|e| e.in_field(|| tuple_element_name(&types(), $i)))?,
                )+))
            }

            fn from_rows(rows: Vec<Row>) -> Result<Vec<Self>> {
                const WIDTH: usize = [$($i),+].len();
                let types = || [$($t::type_name()),+];
                let mut out = Vec::with_capacity(rows.len());
                for row in rows {
                    if row.len() < WIDTH {
                        // The error naming the missing position.
                        out.push(Self::from_row(&row)?);
                        continue;
                    }
                    let (columns, mut values) = row.into_parts();
                    out.push(($(
                        take::<$t>(&mut values, &columns, $i)
                            .map_err(|e| e.in_field(|| tuple_element_name(&types(), $i)))?,
                    )+));
                }
                Ok(out)
            }
        }
    };
}

tuple_from_row!(A 0);
tuple_from_row!(A 0, B 1);
tuple_from_row!(A 0, B 1, C 2);
tuple_from_row!(A 0, B 1, C 2, D 3);
tuple_from_row!(A 0, B 1, C 2, D 3, E 4);
tuple_from_row!(A 0, B 1, C 2, D 3, E 4, F 5);
tuple_from_row!(A 0, B 1, C 2, D 3, E 4, F 5, G 6);
tuple_from_row!(A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7);
tuple_from_row!(A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8);
tuple_from_row!(A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9);
tuple_from_row!(A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9, K 10);
tuple_from_row!(A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9, K 10, L 11);

#[cfg(test)]
mod tests;
