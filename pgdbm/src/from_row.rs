//! [`FromRow`]: how a result row becomes a Rust value — by hand, derived for a struct, or for a
//! tuple.

use crate::error::{Error, Result};
use crate::row::Row;
use crate::value::FromValue;

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
}

impl FromRow for Row {
    fn from_row(row: &Row) -> Result<Self> {
        Ok(row.clone())
    }
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

/// What `#[derive(FromRow)]` expands to calls; not a public API.
#[doc(hidden)]
pub mod derive_support {
    use super::{Error, FromRow, FromValue, Result, Row};

    /// `Struct.field`, built only when an error needs it.
    #[cold]
    fn field_name(target: &str, field: &str) -> String {
        format!("{target}.{field}")
    }

    /// The column `column` of `row` as field `target.field`.
    #[inline]
    pub fn column<T: FromValue>(
        row: &Row,
        column: &str,
        target: &'static str,
        field: &'static str,
    ) -> Result<T> {
        row.get::<T>(column)
            .map_err(|e| e.in_field(|| field_name(target, field)))
    }

    /// As [`column`], with `T::default()` when the row has no such column.
    #[inline]
    pub fn column_or_default<T: FromValue + Default>(
        row: &Row,
        column: &str,
        target: &'static str,
        field: &'static str,
    ) -> Result<T> {
        match row.get::<T>(column) {
            Ok(v) => Ok(v),
            Err(Error::ColumnNotFound { .. }) => Ok(T::default()),
            Err(e) => Err(e.in_field(|| field_name(target, field))),
        }
    }

    /// A flattened field: `T` built from the whole row.
    #[inline]
    pub fn flatten<T: FromRow>(row: &Row, target: &'static str, field: &'static str) -> Result<T> {
        T::from_row(row).map_err(|e| e.in_field(|| field_name(target, field)))
    }
}

#[cfg(test)]
mod tests {
    use super::FromRow;
    use crate::error::Error;
    use crate::row::{Column, Row};
    use crate::value::Value;

    fn row() -> Row {
        Row::new(
            vec![Column::new("id", "int8"), Column::new("name", "text")].into(),
            vec![Value::Int8(5), Value::Text("ann".into())],
        )
    }

    #[test]
    fn tuples_read_by_position_and_ignore_extra_columns() {
        assert_eq!(<(i64,)>::from_row(&row()).unwrap(), (5,));
        assert_eq!(
            <(i64, String)>::from_row(&row()).unwrap(),
            (5, "ann".to_owned())
        );
        assert_eq!(
            <(Option<i32>, Option<String>)>::from_row(&row()).unwrap(),
            (Some(5), Some("ann".to_owned()))
        );
    }

    #[test]
    fn a_row_shorter_than_the_tuple_names_the_missing_position() {
        let err = <(i64, String, bool)>::from_row(&row()).unwrap_err();
        assert!(
            matches!(&err, Error::ColumnNotFound { column, field: Some(f), .. }
                if column == "2" && f == "(i64, String, bool).2"),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            "no column 2 for field (i64, String, bool).2 in row (columns: id, name)"
        );
        let empty = Row::new(Vec::new().into(), Vec::new());
        let err = <(i64,)>::from_row(&empty).unwrap_err();
        assert_eq!(
            err.to_string(),
            "no column 0 for field (i64,).0 in row (columns: )"
        );
    }

    #[test]
    fn a_mismatched_element_names_column_element_and_types_not_the_value() {
        let row = Row::new(
            vec![Column::new("id", "int8"), Column::new("name", "text")].into(),
            vec![Value::Int8(5), Value::Text("Zq-secret-42".into())],
        );
        let err = <(i64, i64)>::from_row(&row).unwrap_err();
        assert!(matches!(err, Error::Decode { .. }), "{err:?}");
        let text = format!("{err} {err:?}");
        assert_eq!(
            err.to_string(),
            "cannot decode column name for field (i64, i64).1: expected i64, found text"
        );
        assert!(!text.contains("Zq-secret-42"), "{text}");
    }

    #[test]
    fn twelve_elements() {
        let columns: Vec<Column> = (0..12).map(|i| Column::new(format!("c{i}"), "int4")).collect();
        let values = (0..12).map(Value::Int4).collect();
        let row = Row::new(columns.into(), values);
        type Twelve = (i32, i32, i32, i32, i32, i32, i32, i32, i32, i32, i32, i64);
        let t = Twelve::from_row(&row).unwrap();
        assert_eq!((t.0, t.5, t.11), (0, 5, 11));
    }

    #[derive(pgdbm::FromRow, Debug, PartialEq)]
    struct Named<T> {
        #[pgdbm(rename = "id")]
        key: T,
        #[pgdbm(default)]
        missing: Vec<String>,
        #[pgdbm(flatten)]
        inner: Inner,
        r#type: Option<String>,
    }

    #[derive(pgdbm::FromRow, Debug, PartialEq)]
    struct Inner {
        name: String,
    }

    #[test]
    fn derive_with_rename_default_flatten_option_and_a_type_parameter() {
        let row = Row::new(
            vec![
                Column::new("id", "int8"),
                Column::new("name", "text"),
                Column::new("type", "text"),
            ]
            .into(),
            vec![Value::Int8(5), Value::Text("ann".into()), Value::Null],
        );
        assert_eq!(
            Named::<i64>::from_row(&row).unwrap(),
            Named {
                key: 5,
                missing: Vec::new(),
                inner: Inner { name: "ann".into() },
                r#type: None,
            }
        );
        let err = Named::<String>::from_row(&row).unwrap_err();
        assert_eq!(
            err.to_string(),
            "cannot decode column id for field Named.key: expected String, found bigint"
        );
    }

    #[test]
    fn derive_errors_name_the_innermost_struct_and_field() {
        let row = Row::new(
            vec![Column::new("id", "int8"), Column::new("name", "int4")].into(),
            vec![Value::Int8(5), Value::Int4(77_123)],
        );
        let err = Named::<i64>::from_row(&row).unwrap_err();
        assert_eq!(
            err.to_string(),
            "cannot decode column name for field Inner.name: expected String, found integer"
        );
        assert!(!format!("{err:?}").contains("77123"), "{err:?}");
        let row = Row::new(vec![Column::new("id", "int8")].into(), vec![Value::Int8(5)]);
        let err = Named::<i64>::from_row(&row).unwrap_err();
        assert_eq!(
            err.to_string(),
            "no column name for field Inner.name in row (columns: id)"
        );
    }

    #[test]
    fn the_innermost_field_is_kept() {
        let err = Error::decode("c", "i64", "text")
            .in_field(|| "Inner.x".to_owned())
            .in_field(|| "Outer.inner".to_owned());
        assert_eq!(
            err.to_string(),
            "cannot decode column c for field Inner.x: expected i64, found text"
        );
        let other = Error::PoolClosed.in_field(|| unreachable!("only for decode errors"));
        assert!(matches!(other, Error::PoolClosed));
    }
}
