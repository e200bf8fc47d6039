//! What `#[derive(FromRow)]` expands to calls; not a public API (`pgdbm::__derive_support`).

use std::sync::Arc;

use super::{Column, Error, FromRow, FromValue, Result, Row, Value, take};
use crate::row::Columns;

/// One field of a derived struct read from a column: what `from_rows` plans for.
#[derive(Debug)]
pub struct Field {
    /// The column it reads.
    pub column: &'static str,
    /// The field's name.
    pub field: &'static str,
    /// A missing column gives `Default::default()`.
    pub default: bool,
}

/// The values of one row, taken field by field along a plan.
#[derive(Debug)]
pub struct Fields<'a> {
    values: Vec<Value>,
    columns: &'a [Column],
    plan: &'a [Option<usize>],
    target: &'static str,
    fields: &'static [Field],
}

impl Fields<'_> {
    /// Field number `n` (a column the plan found).
    #[inline]
    pub fn take<T: FromValue>(&mut self, n: usize) -> Result<T> {
        match self.plan[n] {
            Some(i) => take(&mut self.values, self.columns, i)
                .map_err(|e| e.in_field(|| field_name(self.target, self.fields[n].field))),
            None => Err(self.missing(n)),
        }
    }

    /// Field number `n`, `T::default()` when the row has no such column.
    #[inline]
    pub fn take_or_default<T: FromValue + Default>(&mut self, n: usize) -> Result<T> {
        match self.plan[n] {
            Some(_) => self.take(n),
            None => Ok(T::default()),
        }
    }

    #[cold]
    fn missing(&self, n: usize) -> Error {
        Error::ColumnNotFound {
            column: self.fields[n].column.to_owned(),
            available: self
                .columns
                .iter()
                .map(Column::name)
                .collect::<Vec<_>>()
                .join(", "),
            field: Some(field_name(self.target, self.fields[n].field)),
        }
    }
}

/// Where each field's column is in `columns`: `None` when missing (an error for a field
/// without `default`). `None` overall when two fields read the same column (one could not
/// move it out for the other).
fn plan(columns: &[Column], fields: &[Field]) -> Option<Vec<Option<usize>>> {
    let plan: Vec<Option<usize>> = fields
        .iter()
        .map(|f| columns.iter().position(|c| c.name() == f.column))
        .collect();
    let mut seen: Vec<usize> = plan.iter().flatten().copied().collect();
    seen.sort_unstable();
    let unique = seen.windows(2).all(|w| w[0] != w[1]);
    unique.then_some(plan)
}

/// A derived `from_rows`: the columns found once per result (again only for a row with
/// other columns), each value moved out of its row by `build`. Falls back to `from_row` per
/// row when two fields read the same column.
pub fn from_rows<T: FromRow>(
    rows: Vec<Row>,
    target: &'static str,
    fields: &'static [Field],
    build: impl Fn(&mut Fields<'_>) -> Result<T>,
) -> Result<Vec<T>> {
    let mut out = Vec::with_capacity(rows.len());
    let mut planned: Option<(Columns, Vec<Option<usize>>)> = None;
    for row in rows {
        let same = matches!(&planned, Some((c, _)) if Arc::ptr_eq(c, row.shared_columns()));
        if !same {
            let Some(plan) = plan(row.columns(), fields) else {
                out.push(T::from_row(&row)?);
                continue;
            };
            planned = Some((row.shared_columns().clone(), plan));
        }
        let (columns, plan) = planned.as_ref().expect("planned above");
        let mut values = Fields {
            values: row.into_parts().1,
            columns,
            plan,
            target,
            fields,
        };
        out.push(build(&mut values)?);
    }
    Ok(out)
}

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
