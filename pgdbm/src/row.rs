//! Rows returned by queries, independent of the driver.

use std::sync::Arc;

use serde::de::DeserializeOwned;

use crate::error::{Error, Result};
use crate::redact::Secrets;
use crate::value::{FromValue, Value};

/// A result column: its name and the name of its PostgreSQL type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    name: String,
    type_name: String,
}

impl Column {
    /// Builds a column description (drivers use [`pgdbm::driver::new_column`](crate::driver::new_column)).
    pub(crate) fn new(name: impl Into<String>, type_name: impl Into<String>) -> Self {
        Column {
            name: name.into(),
            type_name: type_name.into(),
        }
    }

    /// The column name (its alias in the select list).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The PostgreSQL type name (`int4`, `text`, `_int8`…).
    pub fn type_name(&self) -> &str {
        &self.type_name
    }
}

/// The columns of a result, shared by all its rows.
pub type Columns = Arc<[Column]>;

/// Identifies a column: by name (`&str`) or by 0-based position (`usize`).
pub trait ColumnIndex: std::fmt::Display {
    /// The position of this column in `columns`, if it exists.
    fn index_in(&self, columns: &[Column]) -> Option<usize>;
}

impl ColumnIndex for usize {
    fn index_in(&self, columns: &[Column]) -> Option<usize> {
        (*self < columns.len()).then_some(*self)
    }
}

impl ColumnIndex for &str {
    fn index_in(&self, columns: &[Column]) -> Option<usize> {
        columns.iter().position(|c| c.name == *self)
    }
}

impl ColumnIndex for String {
    fn index_in(&self, columns: &[Column]) -> Option<usize> {
        self.as_str().index_in(columns)
    }
}

/// One row of a result.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    columns: Columns,
    values: Vec<Value>,
}

impl Row {
    /// Builds a row; `values` has one entry per column (drivers use
    /// [`pgdbm::driver::new_row`](crate::driver::new_row)).
    pub(crate) fn new(columns: Columns, values: Vec<Value>) -> Self {
        debug_assert_eq!(columns.len(), values.len());
        Row { columns, values }
    }

    /// The columns of this row.
    pub fn columns(&self) -> &[Column] {
        &self.columns
    }

    /// The number of columns.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// `true` when the row has no columns.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// The raw values, in column order.
    pub fn values(&self) -> &[Value] {
        &self.values
    }

    /// Consumes the row, returning its values.
    pub fn into_values(self) -> Vec<Value> {
        self.values
    }

    /// The columns as shared by all rows of the result (compared by address to see that two
    /// rows come from the same result).
    pub(crate) fn shared_columns(&self) -> &Columns {
        &self.columns
    }

    /// Consumes the row, returning its columns and values.
    pub(crate) fn into_parts(self) -> (Columns, Vec<Value>) {
        (self.columns, self.values)
    }

    /// The raw value of a column.
    ///
    /// # Errors
    ///
    /// [`Error::ColumnNotFound`] when there is no such column.
    pub fn value(&self, column: impl ColumnIndex) -> Result<&Value> {
        match column.index_in(&self.columns) {
            Some(i) => Ok(&self.values[i]),
            None => Err(Error::ColumnNotFound {
                column: column.to_string(),
                available: self
                    .columns
                    .iter()
                    .map(|c| c.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                field: None,
            }),
        }
    }

    /// Reads a column as `T`: `row.get::<i64>("id")`, `row.get::<Option<String>>(1)`.
    ///
    /// # Errors
    ///
    /// [`Error::ColumnNotFound`] for an unknown column; [`Error::Decode`] naming the column, the
    /// requested type and the actual one when the value does not fit (including `NULL` read into a
    /// non-`Option` type).
    pub fn get<T: FromValue>(&self, column: impl ColumnIndex) -> Result<T> {
        let value = self.value(&column)?;
        T::from_value(value).map_err(|actual| {
            let name = match column.index_in(&self.columns) {
                Some(i) => self.columns[i].name.clone(),
                None => column.to_string(),
            };
            Error::decode(name, T::type_name(), actual)
        })
    }

    /// The row as a JSON object keyed by column name.
    pub fn to_json(&self) -> serde_json::Value {
        let map = self
            .columns
            .iter()
            .zip(&self.values)
            .map(|(c, v)| (c.name.clone(), v.to_json()))
            .collect();
        serde_json::Value::Object(map)
    }

    /// Maps the row onto any `serde::Deserialize` type whose fields are named like the columns
    /// (the row is seen as a JSON object, see [`Row::to_json`]).
    ///
    /// # Errors
    ///
    /// [`Error::Decode`] when a field is missing or a value does not fit. It names the column
    /// (and the path inside it, e.g. `doc.items[2]`) with the expected and found types —
    /// `cannot decode column n: expected i64, found a string` — never the value itself.
    pub fn deserialize<T: DeserializeOwned>(&self) -> Result<T> {
        crate::de::from_json(self.to_json(), true).map_err(|e| {
            let path = e.path();
            if let (Some((expected, found)), false) = (e.mismatch(), path.is_empty()) {
                return Error::decode(path, expected, found);
            }
            let mut secrets = Secrets::default();
            for value in &self.values {
                secrets.add_value(value);
            }
            Error::decode(
                if path.is_empty() {
                    "(row)".to_owned()
                } else {
                    path
                },
                std::any::type_name::<T>(),
                format!("a row that does not match: {}", e.message(&secrets)),
            )
        })
    }
}

impl<C: ColumnIndex + ?Sized> ColumnIndex for &C {
    fn index_in(&self, columns: &[Column]) -> Option<usize> {
        (**self).index_in(columns)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row() -> Row {
        Row::new(
            vec![Column::new("id", "int8"), Column::new("name", "text")].into(),
            vec![Value::Int8(5), Value::Null],
        )
    }

    #[test]
    fn get_by_name_and_index() {
        let r = row();
        assert_eq!(r.get::<i64>("id").unwrap(), 5);
        assert_eq!(r.get::<i32>(0).unwrap(), 5);
        assert_eq!(r.get::<Option<String>>("name").unwrap(), None);
    }

    #[test]
    fn null_into_non_option_names_column_and_types() {
        let err = row().get::<String>("name").unwrap_err().to_string();
        assert!(
            err.contains("name") && err.contains("String") && err.contains("NULL"),
            "{err}"
        );
    }

    #[test]
    fn unknown_column_lists_available() {
        let err = row().get::<i64>("nope").unwrap_err().to_string();
        assert!(err.contains("nope") && err.contains("id, name"), "{err}");
        assert!(matches!(
            row().get::<i64>(9),
            Err(Error::ColumnNotFound { .. })
        ));
    }

    #[test]
    fn deserialize_struct() {
        #[derive(serde::Deserialize)]
        struct U {
            id: i64,
            name: Option<String>,
        }
        let u: U = row().deserialize().unwrap();
        assert_eq!((u.id, u.name), (5, None));
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        struct Bad {
            id: String,
        }
        assert!(matches!(
            row().deserialize::<Bad>(),
            Err(Error::Decode { .. })
        ));
    }

    #[test]
    fn mapping_errors_name_the_column_not_the_value() {
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        struct N {
            n: i64,
        }
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        struct Doc {
            level: u8,
        }
        let r = Row::new(
            vec![Column::new("n", "text"), Column::new("doc", "jsonb")].into(),
            vec![
                Value::Text("SECRET".into()),
                Value::Json(serde_json::json!({"level": "SECRET-json"})),
            ],
        );
        let err = r.deserialize::<N>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "cannot decode column n: expected i64, found a string"
        );
        assert!(!format!("{err:?}").contains("SECRET"), "{err:?}");
        let err = r.get::<crate::Json<Doc>>("doc").unwrap_err();
        let text = format!("{err} {err:?}");
        assert!(!text.contains("SECRET"), "{text}");
        assert!(
            text.contains("column doc") && text.contains("at `level`: expected u8, found a string"),
            "{text}"
        );
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        struct Missing {
            other: i64,
        }
        let err = r.deserialize::<Missing>().unwrap_err().to_string();
        assert!(err.contains("missing field `other`"), "{err}");
    }
}
