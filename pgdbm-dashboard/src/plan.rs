//! The plan of a statement the monitor recorded, without its parameters and without running it.
//!
//! The recorded text has placeholders (`$1`…) and no values, so a plain `EXPLAIN` cannot plan
//! it. Instead, in a read-only transaction bounded by `statement_timeout`:
//!
//! 1. `SET LOCAL plan_cache_mode = force_generic_plan` — the plan that does not depend on values;
//! 2. `PREPARE` the statement (one statement only: the extended protocol refuses several), its
//!    templates expanded with the schema it ran in;
//! 3. `EXPLAIN (FORMAT JSON) EXECUTE` it with `NULL` for every parameter, in a savepoint: with a
//!    generic plan the values play no part (the plan shows `$1`…); never `ANALYZE`;
//! 4. `DEALLOCATE` it, and roll everything back.
//!
//! The work runs on a task of its own, so a request that goes away midway does not leave the
//! prepared statement on a pooled connection.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use pgdbm::monitor::Explain;
use pgdbm::prelude::*;
use pgdbm::{Database, Error, Result};

/// Statement kinds `PREPARE` accepts.
const PLANNABLE: [&str; 8] = [
    "select", "insert", "update", "delete", "with", "values", "merge", "table",
];

/// Whether `sql` starts with a statement kind that has a plan (comments and parentheses skipped).
pub(crate) fn is_plannable(sql: &str) -> bool {
    let mut rest = sql.trim_start();
    loop {
        if let Some(after) = rest.strip_prefix("--") {
            rest = after.split_once('\n').map_or("", |(_, r)| r).trim_start();
        } else if let Some(after) = rest.strip_prefix("/*") {
            rest = after.split_once("*/").map_or("", |(_, r)| r).trim_start();
        } else if let Some(after) = rest.strip_prefix('(') {
            rest = after.trim_start();
        } else {
            break;
        }
    }
    let word: String = rest
        .chars()
        .take_while(char::is_ascii_alphabetic)
        .collect::<String>()
        .to_ascii_lowercase();
    PLANNABLE.contains(&word.as_str())
}

/// The generic plan of `sql` (a template text the monitor recorded) on `db`'s pool, its
/// templates expanded with `db`'s schema. `db` should not be monitored (the steps would be
/// recorded).
///
/// # Errors
///
/// [`Error::Unsupported`] for a statement that has no plan; the server's error (e.g. a table
/// that no longer exists, or `57014` past `timeout`); pool errors.
pub(crate) async fn generic_plan(db: Database, sql: String, timeout: Duration) -> Result<Explain> {
    if !is_plannable(&sql) {
        return Err(Error::Unsupported(
            "only SELECT, INSERT, UPDATE, DELETE, MERGE, VALUES and WITH statements have a plan"
                .into(),
        ));
    }
    let work = tokio::spawn(async move { plan_in_transaction(&db, &sql, timeout).await });
    match work.await {
        Ok(result) => result,
        Err(e) => Err(Error::Unsupported(format!("the plan task failed: {e}"))),
    }
}

async fn plan_in_transaction(db: &Database, sql: &str, timeout: Duration) -> Result<Explain> {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let name = format!(
        "pgdbm_dashboard_plan_{}",
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    let tx = db.begin().await?;
    tx.execute("SET TRANSACTION READ ONLY", &[]).await?;
    let ms = timeout.as_millis().clamp(1, i32::MAX as u128);
    tx.execute(&format!("SET LOCAL statement_timeout = {ms}"), &[])
        .await?;
    tx.execute("SET LOCAL plan_cache_mode = force_generic_plan", &[])
        .await?;
    tx.execute(&format!("PREPARE {name} AS {sql}"), &[]).await?;
    let explained = explain_prepared(&tx, &name).await;
    let deallocated = tx.execute(&format!("DEALLOCATE {name}"), &[]).await;
    let rolled_back = tx.rollback().await;
    let plan = explained?;
    deallocated?;
    rolled_back?;
    Ok(plan)
}

/// `EXPLAIN EXECUTE name(NULL, …)` in a savepoint, so that a failure leaves the transaction
/// usable for `DEALLOCATE`.
async fn explain_prepared(tx: &Transaction, name: &str) -> Result<Explain> {
    let sp = tx.begin().await?;
    let result = async {
        let count: i32 = sp
            .fetch_value(
                "SELECT cardinality(parameter_types) FROM pg_prepared_statements WHERE name = $1",
                params![name],
            )
            .await?;
        let nulls = vec!["NULL"; usize::try_from(count).unwrap_or(0)].join(", ");
        let execute = if nulls.is_empty() {
            format!("EXECUTE {name}")
        } else {
            format!("EXECUTE {name}({nulls})")
        };
        pgdbm::monitor::explain_on(&sp, &execute, &[], false).await
    }
    .await;
    let undo = sp.rollback().await;
    let plan = result?;
    undo?;
    Ok(plan)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plannable_statements() {
        assert!(is_plannable("SELECT 1"));
        assert!(is_plannable(
            "  -- why\n /* how */ (select 1) union (select 2)"
        ));
        assert!(is_plannable("WITH x AS (SELECT 1) SELECT * FROM x"));
        assert!(is_plannable("insert into t values ($1)"));
        assert!(!is_plannable("BEGIN"));
        assert!(!is_plannable("CREATE TABLE t (id int)"));
        assert!(!is_plannable("EXPLAIN ANALYZE SELECT 1"));
        assert!(!is_plannable(""));
    }
}
