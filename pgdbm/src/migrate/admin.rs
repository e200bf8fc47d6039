//! Changing the ledger by hand, under the migration lock: applying one file, forgetting one,
//! recording files as applied without running them (baseline), re-recording changed checksums
//! (repair); and the newest rows of the history.
//!
//! Each change runs in one transaction under the lock: the session lock on a dedicated
//! connection, or behind a transaction pooler the transaction-level lock taken first in that
//! transaction (`xact.rs`, the protocol `apply` follows there).

use crate::error::{Error, Result};
use crate::executor::Executor;
use crate::params;

use super::ledger::HistoryEntry;
use super::report::{AppliedMigration, RepairedMigration};
use super::runner::{Migrator, check_has_statement, check_module_name};
use super::source::MigrationSource;
use super::xact::XACT_LOCK_SQL;

fn not_in_source(module: &str, file: &str) -> Error {
    Error::Migration {
        module: module.to_owned(),
        file: file.to_owned(),
        message: format!("{file} is not one of the module's migration files"),
        source: None,
    }
}

/// Ends the transaction `BEGIN` opened on `conn`: `COMMIT` after `result` is `Ok`, otherwise
/// `ROLLBACK` (a failed rollback is logged; the error returned is `result`'s).
async fn finish<T>(conn: &dyn Executor, result: Result<T>) -> Result<T> {
    match result {
        Ok(out) => {
            conn.batch_execute("COMMIT").await?;
            Ok(out)
        }
        Err(e) => {
            if let Err(rollback) = conn.batch_execute("ROLLBACK").await {
                tracing::warn!(error = %rollback, "rollback of a ledger change failed");
            }
            Err(e)
        }
    }
}

/// Runs `$body` (an expression using `$conn: &dyn Executor`) on a connection holding `$module`'s
/// migration lock, then releases the lock; evaluates to the body's result.
macro_rules! locked {
    ($self:ident, $module:expr, |$conn:ident| $body:expr) => {{
        let locked = $self.lock($module).await?;
        let mut monitored = None;
        let $conn = $self.session(&locked, &mut monitored);
        let result = $body.await;
        drop(monitored);
        locked.unlock($module).await;
        result
    }};
}

/// Runs `$body` (an expression using `$conn: &dyn Executor`) in one transaction under
/// `$module`'s migration lock (see the module docs); commits after `Ok`, rolls back otherwise,
/// and evaluates to the body's result.
macro_rules! ledger_change {
    ($self:ident, $module:expr, |$conn:ident| $body:expr) => {{
        if $self.database().pool().pooler().is_transaction() {
            $self.database().ensure_schema().await?;
            let xact = $self.begin_xact().await?;
            let mut monitored = None;
            let $conn = $self.monitored(xact.conn(), &mut monitored);
            let result = async {
                $conn.execute(XACT_LOCK_SQL, params![$module]).await?;
                $body.await
            }
            .await;
            drop(monitored);
            xact.finish(result).await
        } else {
            locked!($self, $module, |$conn| async {
                $conn.batch_execute("BEGIN").await?;
                let result = $body.await;
                finish($conn, result).await
            })
        }
    }};
}

/// The error of `apply_one` for `file` while the earlier file `pending` is not applied.
pub(super) fn earlier_pending(module: &str, file: &str, pending: &str) -> Error {
    Error::Migration {
        module: module.to_owned(),
        file: file.to_owned(),
        message: format!("the earlier migration {pending} is not applied yet; apply it first"),
        source: None,
    }
}

impl Migrator {
    /// Applies file `file` of `source` alone, if it is pending, under the migration lock (see
    /// [`apply`](Migrator::apply) for the lock, transactions and templates). Returns `None` when
    /// it was applied already (by another process, say).
    ///
    /// Every earlier file of `source` must be applied first, so files still run in order;
    /// calling this for each pending file in turn is [`apply`](Migrator::apply) with a report
    /// after every file. Behind a transaction pooler it follows `apply`'s protocol there: the
    /// file runs in a transaction of its own under `pg_advisory_xact_lock`, which checks the
    /// ledger again; a `-- pgdbm:no-transaction` file runs over `direct_url`.
    ///
    /// ```no_run
    /// # async fn demo(db: pgdbm::Database, source: pgdbm::MigrationSource) -> pgdbm::Result<()> {
    /// let migrator = db.migrator();
    /// for planned in migrator.dry_run("users", &source).await? {
    ///     if let Some(done) = migrator.apply_one("users", &source, &planned.file).await? {
    ///         println!("applied {} in {:?}", done.file, done.duration);
    ///     }
    /// }
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Migration`] when `file` is not in `source`, when an earlier file is pending, when
    /// the file has no SQL statement, or when it fails (as [`apply`](Migrator::apply));
    /// [`Error::ChecksumMismatch`] when an applied file changed; pool and server errors.
    pub async fn apply_one(
        &self,
        module: &str,
        source: &MigrationSource,
        file: &str,
    ) -> Result<Option<AppliedMigration>> {
        let Some(migration) = source.get(file) else {
            return Err(not_in_source(module, file));
        };
        check_module_name(module)?;
        if self.database().pool().pooler().is_transaction() {
            return self
                .apply_one_through_pooler(module, source, migration)
                .await;
        }
        locked!(self, module, |conn| async {
            let applied = self.checked_applied_locked(conn, module, source).await?;
            if applied.contains_key(file) {
                return Ok(None);
            }
            if let Some(earlier) = source
                .migrations()
                .iter()
                .take_while(|m| m.name() != file)
                .find(|m| !applied.contains_key(m.name()))
            {
                return Err(earlier_pending(module, file, earlier.name()));
            }
            check_has_statement(module, migration)?;
            let duration = self.run_file(conn, module, migration).await?;
            Ok(Some(AppliedMigration::logged(module, migration, duration)))
        })
    }

    /// Removes `module`'s ledger row of `file`, so that the next run applies the file again.
    /// Nothing the file did is undone. This is pgdbm for Python's `rollback_migration`: rows
    /// written without a module are kept. Holds the migration lock, so it never races a run
    /// (behind a transaction pooler, `pg_advisory_xact_lock` in the transaction that removes the
    /// row, as [`apply`](Migrator::apply) there).
    /// Returns whether a row was removed (`false` also when the ledger does not exist).
    ///
    /// ```no_run
    /// # async fn demo(db: pgdbm::Database) -> pgdbm::Result<()> {
    /// if !db.migrator().forget("users", "003_add_index.sql").await? {
    ///     println!("003_add_index.sql was not applied");
    /// }
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Config`] for an invalid module name; pool and server errors.
    pub async fn forget(&self, module: &str, file: &str) -> Result<bool> {
        check_module_name(module)?;
        if !self.ledger.exists(&self.db).await? {
            return Ok(false);
        }
        ledger_change!(self, module, |conn| async {
            Ok(self.ledger.forget(conn, module, file).await? > 0)
        })
    }

    /// Records the files of `source` — all of them, or those up to and including `up_to` — as
    /// applied without running them, for adopting a database whose schema already exists. Files
    /// already applied are left as they are. The rows are written in one transaction under the
    /// migration lock (behind a transaction pooler, `pg_advisory_xact_lock` taken first in that
    /// transaction), with `execution_time_ms` 0; the schema and the ledger are created if
    /// needed. Returns the files recorded now, in order.
    ///
    /// ```no_run
    /// # async fn demo(db: pgdbm::Database, source: pgdbm::MigrationSource) -> pgdbm::Result<()> {
    /// // The tables of 001 and 002 were created by hand before pgdbm was used.
    /// let recorded = db.migrator().baseline("users", &source, Some("002_seed.sql")).await?;
    /// assert!(recorded.len() <= 2);
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Migration`] when `up_to` is not a file of `source`;
    /// [`Error::ChecksumMismatch`] when an applied file changed; pool and server errors.
    pub async fn baseline(
        &self,
        module: &str,
        source: &MigrationSource,
        up_to: Option<&str>,
    ) -> Result<Vec<String>> {
        let files = match up_to {
            None => source.migrations(),
            Some(last) => {
                let Some(i) = source.migrations().iter().position(|m| m.name() == last) else {
                    return Err(not_in_source(module, last));
                };
                &source.migrations()[..=i]
            }
        };
        check_module_name(module)?;
        ledger_change!(self, module, |conn| async {
            let applied = self.checked_applied_locked(conn, module, source).await?;
            let mut recorded = Vec::new();
            for m in files.iter().filter(|m| !applied.contains_key(m.name())) {
                self.ledger
                    .record(conn, m.name(), m.checksum(), module, 0)
                    .await?;
                recorded.push(m.name().to_owned());
            }
            Ok(recorded)
        })
    }

    /// Re-records the checksum of every applied file of `source` that changed since it was
    /// applied (a comment fixed, say), so that runs accept it again; the file is not run.
    /// Returns each row changed with both checksums. The rows are read and updated in one
    /// transaction under the migration lock (behind a transaction pooler,
    /// `pg_advisory_xact_lock` taken first in it). Only use it when the change does not need to
    /// run: a real
    /// change belongs in a new migration.
    ///
    /// ```no_run
    /// # async fn demo(db: pgdbm::Database, source: pgdbm::MigrationSource) -> pgdbm::Result<()> {
    /// for r in db.migrator().repair("users", &source).await? {
    ///     println!("{}: {} -> {}", r.file, r.old_checksum, r.new_checksum);
    /// }
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Config`] for an invalid module name; pool and server errors.
    pub async fn repair(
        &self,
        module: &str,
        source: &MigrationSource,
    ) -> Result<Vec<RepairedMigration>> {
        check_module_name(module)?;
        if !self.ledger.exists(&self.db).await? {
            return Ok(Vec::new());
        }
        ledger_change!(self, module, |conn| async {
            let applied = self.ledger.applied(conn, module).await?;
            let changed: Vec<RepairedMigration> = applied
                .into_iter()
                .filter_map(|(file, old)| {
                    let m = source.get(&file)?;
                    (m.checksum() != old).then(|| RepairedMigration {
                        new_checksum: m.checksum().to_owned(),
                        file,
                        old_checksum: old,
                    })
                })
                .collect();
            for r in &changed {
                self.ledger
                    .set_checksum(conn, module, &r.file, &r.new_checksum)
                    .await?;
                tracing::info!(module, file = %r.file, "migration checksum re-recorded");
            }
            Ok(changed)
        })
    }

    /// The newest `limit` ledger rows of `module` (and rows without a module) or, with `None`,
    /// of all modules, oldest first (pgdbm for Python's `get_migration_history(limit)` lists
    /// the same rows newest first). Empty when the ledger does not exist. Read-only.
    ///
    /// # Errors
    ///
    /// Pool and server errors.
    pub async fn recent_history(
        &self,
        module: Option<&str>,
        limit: usize,
    ) -> Result<Vec<HistoryEntry>> {
        if !self.ledger.exists(&self.db).await? {
            return Ok(Vec::new());
        }
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.ledger.history(&self.db, module, Some(limit)).await
    }
}
