//! Assertions and helpers: row counts, table existence, truncation, table snapshots, and
//! transactions that always roll back.

use std::collections::HashMap;
use std::future::Future;

use pgdbm::prelude::*;
use pgdbm::{Executor, Result};

/// `users` → `{{tables.users}}`, `other.users` → `{{tables.other.users}}`, both validated.
pub(crate) fn table_ref(table: &str) -> Result<String> {
    match table.split_once('.') {
        Some((schema, name)) => {
            pgdbm::validate_identifier("schema", schema)?;
            pgdbm::validate_identifier("table", name)?;
            Ok(format!("{{{{tables.{schema}.{name}}}}}"))
        }
        None => {
            pgdbm::validate_identifier("table", table)?;
            Ok(format!("{{{{tables.{table}}}}}"))
        }
    }
}

/// The number of rows in `table` (in the handle's schema; `schema.table` names another).
///
/// # Errors
///
/// [`Error::Identifier`](pgdbm::Error::Identifier) for a bad name; the server's error (e.g. the
/// table does not exist).
pub async fn count_rows(db: &(impl Executor + ?Sized), table: &str) -> Result<i64> {
    let sql = format!("SELECT count(*) FROM {}", table_ref(table)?);
    db.fetch_value::<i64>(&sql, &[]).await
}

/// The number of rows of `table` matching `condition` (a SQL boolean expression, which may use
/// `$1`, `$2`, … bound to `params`): `count_rows_where(&db, "users", "active AND age > $1",
/// params![30])`. The condition is SQL written by the test, never a value: values go in
/// `params`.
///
/// # Errors
///
/// [`Error::Identifier`](pgdbm::Error::Identifier) for a bad table name; the server's error (an
/// invalid condition, a missing table).
pub async fn count_rows_where(
    db: &(impl Executor + ?Sized),
    table: &str,
    condition: &str,
    params: pgdbm::Params<'_>,
) -> Result<i64> {
    let sql = format!(
        "SELECT count(*) FROM {} WHERE {condition}",
        table_ref(table)?
    );
    db.fetch_value::<i64>(&sql, params).await
}

/// `true` when `table` exists (a table, view, materialized view or foreign table) in the
/// handle's schema, or in `schema` when written `schema.table`.
///
/// # Errors
///
/// [`Error::Identifier`](pgdbm::Error::Identifier) for a bad name; query errors.
pub async fn table_exists(db: &Database, table: &str) -> Result<bool> {
    db.table_exists(table).await
}

/// `TRUNCATE … RESTART IDENTITY CASCADE` of `tables` in one statement.
///
/// # Errors
///
/// [`Error::Identifier`](pgdbm::Error::Identifier) for a bad name; the server's error.
pub async fn truncate(db: &(impl Executor + ?Sized), tables: &[&str]) -> Result<()> {
    if tables.is_empty() {
        return Ok(());
    }
    let list = tables
        .iter()
        .map(|t| table_ref(t))
        .collect::<Result<Vec<_>>>()?
        .join(", ");
    db.batch_execute(&format!("TRUNCATE {list} RESTART IDENTITY CASCADE"))
        .await
}

/// The rows of a table at one moment, each as its `to_jsonb` text, sorted: comparable across
/// any column types and independent of row order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableSnapshot {
    /// The table as given.
    pub table: String,
    /// Each row as JSON text, sorted.
    pub rows: Vec<String>,
}

/// What changed in a table since a [`TableSnapshot`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TableDiff {
    /// Rows present now and not before (JSON text).
    pub added: Vec<String>,
    /// Rows present before and not now (a changed row is one removed and one added).
    pub removed: Vec<String>,
}

impl TableDiff {
    /// `true` when nothing changed.
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty()
    }
}

/// Takes a [`TableSnapshot`] of `table`.
///
/// # Errors
///
/// [`Error::Identifier`](pgdbm::Error::Identifier) for a bad name; the server's error.
pub async fn snapshot_table(db: &(impl Executor + ?Sized), table: &str) -> Result<TableSnapshot> {
    let sql = format!("SELECT to_jsonb(t)::text FROM {} AS t", table_ref(table)?);
    let mut rows = Vec::new();
    for row in db.fetch_all(&sql, &[]).await? {
        rows.push(row.get::<String>(0)?);
    }
    rows.sort();
    Ok(TableSnapshot {
        table: table.to_owned(),
        rows,
    })
}

/// Compares `table` now with `before`.
///
/// # Errors
///
/// As [`snapshot_table`].
pub async fn table_diff(
    db: &(impl Executor + ?Sized),
    before: &TableSnapshot,
) -> Result<TableDiff> {
    let now = snapshot_table(db, &before.table).await?;
    let mut counts: HashMap<&str, i64> = HashMap::new();
    for r in &before.rows {
        *counts.entry(r).or_default() += 1;
    }
    let mut diff = TableDiff::default();
    for r in &now.rows {
        match counts.get_mut(r.as_str()) {
            Some(n) if *n > 0 => *n -= 1,
            _ => diff.added.push(r.clone()),
        }
    }
    for r in &before.rows {
        if let Some(n) = counts.get_mut(r.as_str()) {
            if *n > 0 {
                *n -= 1;
                diff.removed.push(r.clone());
            }
        }
    }
    Ok(diff)
}

/// Panics (listing added and removed rows) when `before.table` differs from `before`.
///
/// # Panics
///
/// When the table changed, or cannot be read.
pub async fn assert_table_unchanged(db: &(impl Executor + ?Sized), before: &TableSnapshot) {
    let diff = match table_diff(db, before).await {
        Ok(d) => d,
        Err(e) => panic!(
            "assert_table_unchanged({}): cannot read the table: {e}",
            before.table
        ),
    };
    if !diff.is_empty() {
        panic!(
            "table {} changed:\n  added ({}):\n    {}\n  removed ({}):\n    {}",
            before.table,
            diff.added.len(),
            diff.added.join("\n    "),
            diff.removed.len(),
            diff.removed.join("\n    ")
        );
    }
}

/// Runs `f` in a transaction that is always rolled back, whatever `f` returns: nothing it does
/// is visible afterwards. Inside, `tx.begin()`/`tx.transaction(…)` are savepoints, so code
/// that commits its own (nested) transactions can be tested this way too.
///
/// # Errors
///
/// When the transaction cannot begin; `f`'s error; the rollback's error.
pub async fn rollback_after<T, F, Fut>(db: &Database, f: F) -> Result<T>
where
    F: FnOnce(Transaction) -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let tx = db.begin().await?;
    let result = f(tx.clone()).await;
    let rolled_back = tx.rollback().await;
    let value = result?;
    rolled_back?;
    Ok(value)
}

/// A transaction that can only be rolled back: dropped (or [`finish`](RollbackOnly::finish)ed),
/// everything done through it is undone. Derefs to [`Transaction`].
#[derive(Debug)]
pub struct RollbackOnly {
    tx: Transaction,
}

impl RollbackOnly {
    /// Begins one on `db`.
    ///
    /// # Errors
    ///
    /// When no connection can be acquired or `BEGIN` fails.
    pub async fn begin(db: &Database) -> Result<Self> {
        Ok(RollbackOnly {
            tx: db.begin().await?,
        })
    }

    /// Rolls back now (dropping does the same in the background).
    ///
    /// # Errors
    ///
    /// The server's error for `ROLLBACK`.
    pub async fn finish(self) -> Result<()> {
        self.tx.rollback().await
    }
}

impl std::ops::Deref for RollbackOnly {
    type Target = Transaction;
    fn deref(&self) -> &Transaction {
        &self.tx
    }
}
