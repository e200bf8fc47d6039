//! `EXPLAIN (FORMAT JSON)` plans: [`Database::explain`], [`Database::explain_analyze`].

use std::fmt;

use crate::database::Database;
use crate::error::{Error, Result};
use crate::executor::{Executor, ExecutorExt};
use crate::transaction::Transaction;
use crate::value::{Params, Value};

/// A query plan from `EXPLAIN (FORMAT JSON)`, with a few figures pulled out of it.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Explain {
    /// The plan document: the object with `"Plan"` (and, analyzed, `"Planning Time"`,
    /// `"Execution Time"`) that PostgreSQL returns as the single element of its JSON array.
    pub plan: serde_json::Value,
    /// `true` for `EXPLAIN ANALYZE` (the statement ran, then was rolled back).
    pub analyzed: bool,
    /// The top node's type, e.g. `"Seq Scan"`, `"Index Scan"`, `"ModifyTable"`.
    pub node_type: String,
    /// The top node's relation, when it scans one.
    pub relation: Option<String>,
    /// The planner's total cost of the top node.
    pub total_cost: f64,
    /// The planner's row estimate of the top node.
    pub plan_rows: f64,
    /// Analyzed: the top node's actual total time in milliseconds.
    pub actual_time_ms: Option<f64>,
    /// Analyzed: the top node's actual rows.
    pub actual_rows: Option<f64>,
    /// Analyzed: the statement's execution time in milliseconds.
    pub execution_time_ms: Option<f64>,
}

impl Explain {
    fn from_json(doc: serde_json::Value, analyzed: bool) -> Result<Self> {
        let doc = match doc {
            serde_json::Value::Array(mut items) if !items.is_empty() => items.swap_remove(0),
            other => other,
        };
        let Some(top) = doc.get("Plan") else {
            return Err(Error::Unsupported(
                "EXPLAIN returned a document without \"Plan\"".into(),
            ));
        };
        let num = |v: &serde_json::Value, key: &str| v.get(key).and_then(serde_json::Value::as_f64);
        Ok(Explain {
            node_type: top
                .get("Node Type")
                .and_then(serde_json::Value::as_str)
                .unwrap_or("?")
                .to_owned(),
            relation: top
                .get("Relation Name")
                .and_then(serde_json::Value::as_str)
                .map(str::to_owned),
            total_cost: num(top, "Total Cost").unwrap_or(0.0),
            plan_rows: num(top, "Plan Rows").unwrap_or(0.0),
            actual_time_ms: num(top, "Actual Total Time"),
            actual_rows: num(top, "Actual Rows"),
            execution_time_ms: num(&doc, "Execution Time"),
            analyzed,
            plan: doc,
        })
    }

    /// A one-line summary: `Seq Scan on t (cost 35.50, rows 2550; actual 0.012 ms, 3 rows; execution 0.040 ms)`.
    pub fn summary(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for Explain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.node_type)?;
        if let Some(rel) = &self.relation {
            write!(f, " on {rel}")?;
        }
        write!(f, " (cost {:.2}, rows {}", self.total_cost, self.plan_rows)?;
        if let (Some(t), Some(r)) = (self.actual_time_ms, self.actual_rows) {
            write!(f, "; actual {t:.3} ms, {r} rows")?;
        }
        if let Some(t) = self.execution_time_ms {
            write!(f, "; execution {t:.3} ms")?;
        }
        f.write_str(")")
    }
}

/// Runs `EXPLAIN (FORMAT JSON[, ANALYZE, BUFFERS]) sql` on `exec` (which expands templates if it
/// is a [`Database`] or [`Transaction`]). With `analyze` the statement really runs: use
/// [`Database::explain_analyze`] for statements that write, which rolls them back.
///
/// # Errors
///
/// The server's error for a statement it cannot plan (e.g. SQLSTATE 42601 for a syntax error),
/// parameter errors, pool errors.
pub async fn explain_on(
    exec: &dyn Executor,
    sql: &str,
    params: Params<'_>,
    analyze: bool,
) -> Result<Explain> {
    let options = if analyze {
        "FORMAT JSON, ANALYZE, BUFFERS"
    } else {
        "FORMAT JSON"
    };
    let text = format!("EXPLAIN ({options}) {sql}");
    let row = exec.fetch_one(&text, params).await?;
    let doc = match row.value(0)? {
        Value::Json(j) => j.clone(),
        Value::Text(t) => serde_json::from_str(t).map_err(|e| {
            Error::query(&text, format!("EXPLAIN returned invalid JSON: {e}"), None)
        })?,
        other => {
            return Err(Error::decode(
                "QUERY PLAN",
                "json",
                other.type_description(),
            ));
        }
    };
    Explain::from_json(doc, analyze)
}

impl Database {
    /// The plan of `sql` (templates expanded, parameters bound as they would be), without
    /// running it: `EXPLAIN (FORMAT JSON)`.
    ///
    /// ```no_run
    /// # async fn demo(db: pgdbm::Database) -> pgdbm::Result<()> {
    /// use pgdbm::params;
    /// let plan = db.explain("SELECT * FROM {{tables.users}} WHERE id = $1", params![7]).await?;
    /// println!("{plan}"); // e.g. "Index Scan on users (cost 8.17, rows 1)"
    /// println!("{:#}", plan.plan); // the whole JSON plan
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// As [`explain_on`].
    pub async fn explain(&self, sql: &str, params: Params<'_>) -> Result<Explain> {
        explain_on(self, sql, params, false).await
    }

    /// Runs `sql` under `EXPLAIN (FORMAT JSON, ANALYZE, BUFFERS)` inside a transaction that is
    /// always rolled back, so a write statement leaves nothing behind (sequences advanced by it
    /// stay advanced, as with any rollback).
    ///
    /// # Errors
    ///
    /// As [`explain_on`]; the error of `BEGIN`/`ROLLBACK`.
    pub async fn explain_analyze(&self, sql: &str, params: Params<'_>) -> Result<Explain> {
        let tx = self.begin().await?;
        let result = explain_on(&tx, sql, params, true).await;
        let undo = tx.rollback().await;
        let plan = result?;
        undo?;
        Ok(plan)
    }
}

impl Transaction {
    /// The plan of `sql` inside this transaction, without running it.
    ///
    /// # Errors
    ///
    /// As [`explain_on`].
    pub async fn explain(&self, sql: &str, params: Params<'_>) -> Result<Explain> {
        explain_on(self, sql, params, false).await
    }

    /// Runs `sql` under `EXPLAIN ANALYZE` in a savepoint of this transaction that is rolled back
    /// afterwards (this level goes on; use it from [`Database::explain_analyze`] for a
    /// transaction of its own).
    ///
    /// # Errors
    ///
    /// As [`explain_on`]; the error of `SAVEPOINT`/`ROLLBACK TO`.
    pub async fn explain_analyze(&self, sql: &str, params: Params<'_>) -> Result<Explain> {
        let sp = self.begin().await?;
        let result = explain_on(&sp, sql, params, true).await;
        let undo = sp.rollback().await;
        let plan = result?;
        undo?;
        Ok(plan)
    }
}
