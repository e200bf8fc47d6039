//! Reading rows: each column from its binary format into a [`Value`], with the result's plan
//! (columns and readers) kept per thread for the statements in use.

use std::sync::Arc;

use pgdbm::driver::Columns;
use pgdbm::driver::front_cache::FrontCache;
use pgdbm::{Error, Result, Row, Value};
use sqlx::ValueRef as _;
use sqlx::postgres::PgRow;
use sqlx::postgres::types::Oid;
use sqlx::{Column as _, Row as _};

use crate::types::{self, Reader};
use crate::wire;

/// The pgdbm column list of a result.
pub(crate) fn columns(row: &PgRow) -> Columns {
    row.columns()
        .iter()
        .map(|c| pgdbm::driver::new_column(c.name(), types::type_name(c.type_info())))
        .collect::<Vec<_>>()
        .into()
}

/// The decoding plan of a result whose columns are all of built-in types: its pgdbm columns and
/// one reader per column, all derived from the columns' names and type OIDs only.
pub(crate) struct Shape {
    cols: Columns,
    oids: Vec<Oid>,
    readers: Vec<Reader>,
}

impl Shape {
    /// The plan for `row`'s columns, or `None` when some column is not of a built-in type or has
    /// no reader (the row-by-row path then handles it exactly as before).
    fn build(row: &PgRow) -> Option<Shape> {
        let oids = row
            .columns()
            .iter()
            .map(|c| {
                let ti = c.type_info();
                ti.oid().filter(|_| types::is_builtin(ti))
            })
            .collect::<Option<Vec<_>>>()?;
        let readers = row
            .columns()
            .iter()
            .map(|c| types::reader(c.type_info(), c.name()).ok())
            .collect::<Option<Vec<_>>>()?;
        Some(Shape {
            cols: columns(row),
            oids,
            readers,
        })
    }

    /// `true` when `row` has exactly these column names and type OIDs (so this plan is the one
    /// [`Shape::build`] would make for it).
    fn matches(&self, row: &PgRow) -> bool {
        let cols = row.columns();
        cols.len() == self.cols.len()
            && cols
                .iter()
                .zip(self.cols.iter().zip(&self.oids))
                .all(|(c, (col, oid))| c.type_info().oid() == Some(*oid) && c.name() == col.name())
    }
}

thread_local! {
    /// Recently used plans, by a hash of where sqlx keeps the result's column list (its
    /// statement's metadata, shared by every execution of a cached statement). A plan is used
    /// only after checking it against the row's column names and types, so a stale or colliding
    /// entry is never wrong, only replaced.
    static SHAPES: FrontCache<(usize, Arc<Shape>)> = const { FrontCache::new() };
}

/// The plan for a result whose first row is `row` (from the cache when it still fits).
pub(crate) fn shape(row: &PgRow) -> Option<Arc<Shape>> {
    let key = row.columns().as_ptr() as usize;
    let slot = FrontCache::<(usize, Arc<Shape>)>::slot(key as u64);
    let cached = SHAPES.with(|slots| {
        slots.get(slot, |(k, shape)| {
            (*k == key && shape.matches(row)).then(|| Arc::clone(shape))
        })
    });
    if cached.is_some() {
        return cached;
    }
    let shape = Arc::new(Shape::build(row)?);
    SHAPES.with(|slots| slots.put(slot, (key, Arc::clone(&shape))));
    Some(shape)
}

/// Converts one row with a plan that [`Shape::matches`] it.
pub(crate) fn decode_with(row: &PgRow, shape: &Shape) -> Result<Row> {
    decode_values(row, &shape.cols, |i| Ok(shape.readers[i]))
}

/// Converts the rows of one result (all of the same columns).
pub(crate) fn decode_rows<'r>(rows: impl Iterator<Item = &'r PgRow>) -> Result<Vec<Row>> {
    let mut rows = rows.peekable();
    let Some(first) = rows.peek() else {
        return Ok(Vec::new());
    };
    match shape(first) {
        Some(shape) => rows.map(|r| decode_with(r, &shape)).collect(),
        None => {
            let cols = columns(first);
            rows.map(|r| decode(r, &cols)).collect()
        }
    }
}

/// Converts one row, finding each column's reader from its type.
pub(crate) fn decode(row: &PgRow, cols: &Columns) -> Result<Row> {
    decode_values(row, cols, |i| {
        types::reader(row.columns()[i].type_info(), cols[i].name())
    })
}

/// Converts one row, reading column `i` with `reader_of(i)`.
fn decode_values(
    row: &PgRow,
    cols: &Columns,
    reader_of: impl Fn(usize) -> Result<Reader>,
) -> Result<Row> {
    let mut values = Vec::with_capacity(cols.len());
    for (i, col) in cols.iter().enumerate() {
        let (name, type_name) = (col.name(), col.type_name());
        let reader = reader_of(i)?;
        let raw = row
            .try_get_raw(i)
            .map_err(|e| Error::decode(name, type_name, e.to_string()))?;
        if raw.is_null() {
            values.push(Value::Null);
            continue;
        }
        let bytes = raw
            .as_bytes()
            .map_err(|e| Error::decode(name, type_name, e.to_string()))?;
        let value = match reader {
            Reader::Scalar(ty) => wire::decode_scalar(ty, bytes),
            Reader::Array(ty) => wire::decode_array(ty, bytes),
        }
        .map_err(|e| Error::decode(name, type_name, format!("undecodable data ({e})")))?;
        values.push(value);
    }
    Ok(pgdbm::driver::new_row(Arc::clone(cols), values))
}
