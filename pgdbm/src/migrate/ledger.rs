//! The migration ledger: pgdbm's `schema_migrations` table, shared with pgdbm for Python.
//!
//! ```sql
//! CREATE TABLE IF NOT EXISTS "schema".schema_migrations (
//!     id SERIAL PRIMARY KEY,
//!     filename VARCHAR(255) NOT NULL,
//!     checksum VARCHAR(64) NOT NULL,
//!     module_name VARCHAR(100),
//!     applied_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
//!     applied_by VARCHAR(100) DEFAULT CURRENT_USER,
//!     execution_time_ms INTEGER,
//!     UNIQUE(filename, module_name)
//! );
//! CREATE INDEX IF NOT EXISTS idx_schema_migrations_module
//!     ON "schema".schema_migrations (module_name, filename);
//! ```

use crate::error::{ErrorKind, Result};
use crate::executor::{Executor, ExecutorExt};
use crate::params;
use crate::template::{Templates, validate_identifier};

/// The ledger table name pgdbm (Python and Rust) uses by default.
pub const DEFAULT_LEDGER_TABLE: &str = "schema_migrations";

/// One row of the ledger, as [`Migrator::history`](super::Migrator::history) returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct HistoryEntry {
    /// The row id.
    pub id: i32,
    /// The migration file name.
    pub filename: String,
    /// The checksum recorded when it was applied.
    pub checksum: String,
    /// The module it belongs to (`None` for rows written without a module, which count for
    /// every module).
    pub module_name: Option<String>,
    /// When it was applied (server time, `TIMESTAMP` without time zone, as text
    /// `YYYY-MM-DD HH:MM:SS[.ffffff]`).
    pub applied_at: String,
    /// The database user that applied it.
    pub applied_by: Option<String>,
    /// How long it took, in milliseconds.
    pub execution_time_ms: Option<i32>,
}

/// The ledger table of one handle's schema.
#[derive(Debug, Clone)]
pub(crate) struct Ledger {
    /// Quoted, schema-qualified table name (unqualified without schema).
    pub(crate) table: String,
    /// Same, unquoted, for `to_regclass`.
    regclass: String,
    index: String,
}

impl Ledger {
    pub(crate) fn new(templates: &Templates, name: &str) -> Result<Self> {
        validate_identifier("ledger table", name)?;
        let table = templates.qualify(name)?;
        Ok(Ledger {
            regclass: table.clone(),
            table,
            index: format!("idx_{name}_module"),
        })
    }

    /// Creates the table and index if missing. Two sessions doing so at once race on the
    /// catalogs; the loser's duplicate error is ignored.
    pub(crate) async fn ensure(&self, exec: &dyn Executor) -> Result<()> {
        let create_table = format!(
            "CREATE TABLE IF NOT EXISTS {} (\n\
             id SERIAL PRIMARY KEY,\n\
             filename VARCHAR(255) NOT NULL,\n\
             checksum VARCHAR(64) NOT NULL,\n\
             module_name VARCHAR(100),\n\
             applied_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,\n\
             applied_by VARCHAR(100) DEFAULT CURRENT_USER,\n\
             execution_time_ms INTEGER,\n\
             UNIQUE(filename, module_name)\n)",
            self.table
        );
        let create_index = format!(
            "CREATE INDEX IF NOT EXISTS {} ON {} (module_name, filename)",
            self.index, self.table
        );
        for sql in [create_table, create_index] {
            match exec.batch_execute(&sql).await {
                Err(e)
                    if e.kind() == Some(ErrorKind::UniqueViolation)
                        || e.code() == Some("42P07") => {}
                other => other?,
            }
        }
        Ok(())
    }

    /// `true` when the table exists (a read-only check, for dry runs and status).
    pub(crate) async fn exists(&self, exec: &dyn Executor) -> Result<bool> {
        exec.fetch_value::<bool>(
            "SELECT to_regclass($1) IS NOT NULL",
            params![self.regclass.as_str()],
        )
        .await
    }

    /// The applied set of `module`: `(filename, checksum)` ordered by file name, including rows
    /// without a module (pgdbm's rule: `module_name = $1 OR module_name IS NULL`).
    pub(crate) async fn applied(
        &self,
        exec: &dyn Executor,
        module: &str,
    ) -> Result<Vec<(String, String)>> {
        let sql = format!(
            "SELECT filename, checksum FROM {} \
             WHERE module_name = $1 OR module_name IS NULL ORDER BY filename",
            self.table
        );
        exec.fetch_all(&sql, params![module])
            .await?
            .iter()
            .map(|row| Ok((row.get::<String>(0)?, row.get::<String>(1)?)))
            .collect()
    }

    pub(crate) async fn record(
        &self,
        exec: &dyn Executor,
        filename: &str,
        checksum: &str,
        module: &str,
        execution_time_ms: i32,
    ) -> Result<()> {
        let sql = format!(
            "INSERT INTO {} (filename, checksum, module_name, execution_time_ms) \
             VALUES ($1, $2, $3, $4)",
            self.table
        );
        exec.execute(&sql, params![filename, checksum, module, execution_time_ms])
            .await?;
        Ok(())
    }

    /// Deletes `module`'s row of `filename` (rows without a module are kept, as pgdbm for
    /// Python's `rollback_migration` does); returns how many rows went.
    pub(crate) async fn forget(
        &self,
        exec: &dyn Executor,
        module: &str,
        filename: &str,
    ) -> Result<u64> {
        let sql = format!(
            "DELETE FROM {} WHERE filename = $1 AND module_name = $2",
            self.table
        );
        exec.execute(&sql, params![filename, module]).await
    }

    /// Sets the checksum of `filename`'s row for `module` (or its row without a module).
    pub(crate) async fn set_checksum(
        &self,
        exec: &dyn Executor,
        module: &str,
        filename: &str,
        checksum: &str,
    ) -> Result<u64> {
        let sql = format!(
            "UPDATE {} SET checksum = $3 \
             WHERE filename = $1 AND (module_name = $2 OR module_name IS NULL)",
            self.table
        );
        exec.execute(&sql, params![filename, module, checksum])
            .await
    }

    /// The rows of `module` (all modules with `None`), oldest first; with `limit`, only the
    /// newest `limit` of them.
    pub(crate) async fn history(
        &self,
        exec: &dyn Executor,
        module: Option<&str>,
        limit: Option<i64>,
    ) -> Result<Vec<HistoryEntry>> {
        let sql = format!(
            "SELECT * FROM (SELECT id, filename, checksum, module_name, applied_at::text, \
             applied_by, execution_time_ms, applied_at AS at FROM {} \
             WHERE $1::text IS NULL OR module_name = $1 OR module_name IS NULL \
             ORDER BY applied_at DESC, id DESC LIMIT $2) newest ORDER BY at, id",
            self.table
        );
        exec.fetch_all(&sql, params![module, limit])
            .await?
            .iter()
            .map(|row| {
                Ok(HistoryEntry {
                    id: row.get(0)?,
                    filename: row.get(1)?,
                    checksum: row.get(2)?,
                    module_name: row.get(3)?,
                    applied_at: row.get(4)?,
                    applied_by: row.get(5)?,
                    execution_time_ms: row.get(6)?,
                })
            })
            .collect()
    }
}
