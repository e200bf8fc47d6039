//! [`Migrator`]: applies a module's migrations under pgdbm's advisory lock, and inspects them
//! (status, history, dry run, verify).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::database::Database;
use crate::error::{Error, Result, truncate_chars};
use crate::executor::Executor;
use crate::monitor::Monitored;

use super::cic::ConcurrentIndex;
use super::ledger::{DEFAULT_LEDGER_TABLE, HistoryEntry, Ledger};
use super::lock::LockedConnection;
use super::module::{Module, order_modules};
use super::report::{
    AppliedMigration, MigrationReport, MigrationState, MigrationStatus, PlannedMigration,
};
use super::source::{Migration, MigrationSource};
use super::split::split_statements;

/// Applies and inspects migrations in one [`Database`] handle's schema.
///
/// The ledger table (`schema_migrations` unless changed with
/// [`with_ledger_table`](Migrator::with_ledger_table)) lives in the handle's schema, or is
/// unqualified when the handle has none.
#[derive(Debug, Clone)]
pub struct Migrator {
    pub(super) db: Database,
    pub(super) ledger: Ledger,
}

pub(super) fn check_module_name(module: &str) -> Result<()> {
    if module.is_empty() || module.chars().count() > 100 {
        return Err(Error::config(
            "module name",
            format!("{module:?} must be 1 to 100 characters (the ledger's module_name)"),
        ));
    }
    Ok(())
}

pub(super) fn migration_error(module: &str, file: &str, message: String, source: Error) -> Error {
    Error::Migration {
        module: module.to_owned(),
        file: file.to_owned(),
        message,
        source: Some(Box::new(source)),
    }
}

/// Compares the ledger with the source: the first applied file whose checksum changed is an error.
pub(super) fn check_checksums(
    module: &str,
    source: &MigrationSource,
    applied: &HashMap<String, String>,
) -> Result<()> {
    for m in source.migrations() {
        if let Some(recorded) = applied.get(m.name()) {
            if recorded != m.checksum() {
                return Err(Error::ChecksumMismatch {
                    module: module.to_owned(),
                    file: m.name().to_owned(),
                    applied: recorded.clone(),
                    current: m.checksum().to_owned(),
                });
            }
        }
    }
    Ok(())
}

/// Refuses a file that has no statement (only comments and whitespace), naming it: applying it
/// would record it as done, and adding its SQL later would change its checksum.
pub(super) fn check_has_statement(module: &str, m: &Migration) -> Result<()> {
    if !m.has_statement() {
        return Err(Error::Migration {
            module: module.to_owned(),
            file: m.name().to_owned(),
            message: format!(
                "{} has no SQL statement (only comments or whitespace); write its SQL before \
                 applying it",
                m.name()
            ),
            source: None,
        });
    }
    Ok(())
}

impl Migrator {
    /// A migrator for `db`'s schema with the default ledger table `schema_migrations`.
    pub fn new(db: &Database) -> Self {
        let ledger = Ledger::new(db.templates(), DEFAULT_LEDGER_TABLE)
            .expect("the default ledger name and the handle's schema are valid identifiers");
        Migrator {
            db: db.clone(),
            ledger,
        }
    }

    /// Uses ledger table `name` (in the handle's schema) instead of `schema_migrations`.
    ///
    /// # Errors
    ///
    /// [`Error::Identifier`] when `name` is not a valid identifier.
    pub fn with_ledger_table(mut self, name: &str) -> Result<Self> {
        self.ledger = Ledger::new(self.db.templates(), name)?;
        Ok(self)
    }

    /// The handle migrations are applied through.
    pub fn database(&self) -> &Database {
        &self.db
    }

    pub(super) fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    /// This migrator (same ledger table) on another handle, e.g. the direct connection.
    pub(super) fn on(&self, db: &Database) -> Migrator {
        Migrator {
            db: db.clone(),
            ledger: self.ledger.clone(),
        }
    }

    /// Applies the pending migrations of `source` for `module`, creating the schema and the
    /// ledger if needed.
    ///
    /// The whole run holds the advisory lock `hashtext('pgdbm_migration_' || module)` on one
    /// dedicated connection, so concurrent runs — other tasks, processes, or pgdbm for Python —
    /// apply each file once. A run waiting for the lock polls `pg_try_advisory_lock` in autocommit
    /// (10 ms pauses doubling to 500 ms, jittered), so it holds no snapshot while it waits and a
    /// `CREATE INDEX CONCURRENTLY` in the run holding the lock does not wait for it. The wait is
    /// bounded as a blocking `pg_advisory_lock` statement was: the session's `statement_timeout`
    /// ends it with `57014` unless a shorter `lock_timeout` is set (a wait ended by `lock_timeout`
    /// was retried). Each migration runs in its own transaction together with its ledger row; a
    /// file with a line starting `-- pgdbm:no-transaction` runs statement by statement in
    /// autocommit and is recorded after its last statement. When a `CREATE [UNIQUE] INDEX
    /// CONCURRENTLY name ON table` statement of such a file fails, the INVALID index it left
    /// (that name, on that table, not valid, not being built by another session) is dropped with
    /// `DROP INDEX CONCURRENTLY` and the error says so; without a name, the error names the
    /// invalid index left and how to drop it. Templates (`{{tables.x}}`, `{{schema}}`) are expanded
    /// for the handle's schema. Migrations are subject to the connection's `statement_timeout`
    /// (raise it in the config, or `SET LOCAL statement_timeout = 0` in a long migration).
    ///
    /// The lock is released on every path; if that cannot be done (a cancelled future, a panic,
    /// a broken connection), the connection is closed rather than returned to the pool.
    ///
    /// Behind a transaction pooler ([`Pooler::Transaction`](crate::Pooler::Transaction)) a
    /// session lock cannot work: each file then runs in a transaction of its own that first
    /// takes `pg_advisory_xact_lock` on the same key and reads the ledger again under it
    /// (pgdbm for Python ≥ 0.4.1 does the same, so both still exclude each other); a module
    /// with a pending `-- pgdbm:no-transaction` file is applied over the direct connection
    /// (`direct_url`) as above, and without one the run fails with [`Error::Pooler`] naming the
    /// file before anything is applied. [`apply_one`](Migrator::apply_one),
    /// [`forget`](Migrator::forget), [`baseline`](Migrator::baseline) and
    /// [`repair`](Migrator::repair) follow the same protocol there.
    ///
    /// # Errors
    ///
    /// * [`Error::ChecksumMismatch`] when an applied file changed; nothing is applied then.
    /// * [`Error::Migration`] naming a pending file that has no SQL statement (only comments
    ///   or whitespace); nothing is applied then.
    /// * [`Error::Migration`] naming module and file, with the server's message (and, for a
    ///   no-transaction file, which statement failed) and the server error as `source`. The run
    ///   stops there: earlier files stay applied, nothing of the failing file remains (except the
    ///   statements of a no-transaction file that ran before the failing one), and it is not
    ///   recorded.
    /// * [`Error::Config`] for an empty or too long module name; pool and server errors.
    pub async fn apply(&self, module: &str, source: &MigrationSource) -> Result<MigrationReport> {
        check_module_name(module)?;
        if self.db.pool().pooler().is_transaction() {
            return self.apply_through_pooler(module, source).await;
        }
        let started = Instant::now();
        let locked = self.lock(module).await?;
        let mut monitored = None;
        let conn = self.session(&locked, &mut monitored);
        let result = self.apply_locked(conn, module, source).await;
        drop(monitored);
        locked.unlock(module).await;
        let mut report = result?;
        report.total_time = started.elapsed();
        Ok(report)
    }

    /// Creates the handle's schema, then takes `module`'s migration lock on a dedicated
    /// connection. Dropped at any await (or without `unlock`), the connection is closed instead
    /// of pooled, which releases the lock.
    pub(super) async fn lock(&self, module: &str) -> Result<LockedConnection> {
        check_module_name(module)?;
        // A session advisory lock taken through a transaction pooler is held by whichever server
        // connection ran it: refused (runs and ledger changes take the transaction-scoped lock
        // there instead, `xact.rs`).
        crate::driver::refuse_behind_transaction_pooler(
            self.db.pool().pooler().mode(),
            "the session migration lock (a session advisory lock)",
        )?;
        self.db.ensure_schema().await?;
        LockedConnection::acquire(self.db.acquire().await?, module).await
    }

    /// The locked connection, wrapped in `slot` when the handle is monitored (so that its
    /// statements are recorded too).
    pub(super) fn session<'a: 'b, 'b>(
        &self,
        locked: &'a LockedConnection,
        slot: &'b mut Option<Monitored<&'a dyn Executor>>,
    ) -> &'b dyn Executor {
        self.monitored(locked.conn(), slot)
    }

    /// `conn`, wrapped in `slot` when the handle is monitored.
    pub(super) fn monitored<'a: 'b, 'b>(
        &self,
        conn: &'a dyn Executor,
        slot: &'b mut Option<Monitored<&'a dyn Executor>>,
    ) -> &'b dyn Executor {
        match self.db.monitor() {
            Some(monitor) => slot.insert(Monitored::new(conn, monitor.clone())),
            None => conn,
        }
    }

    async fn apply_locked(
        &self,
        conn: &dyn Executor,
        module: &str,
        source: &MigrationSource,
    ) -> Result<MigrationReport> {
        let applied = self.checked_applied_locked(conn, module, source).await?;
        for m in source.migrations() {
            if !applied.contains_key(m.name()) {
                check_has_statement(module, m)?;
            }
        }
        let mut report = MigrationReport {
            module: module.to_owned(),
            ..MigrationReport::default()
        };
        for m in source.migrations() {
            if applied.contains_key(m.name()) {
                report.skipped.push(m.name().to_owned());
                continue;
            }
            let duration = self.run_file(conn, module, m).await?;
            report
                .applied
                .push(AppliedMigration::logged(module, m, duration));
        }
        Ok(report)
    }

    /// Runs one file and records it (in its transaction, unless it is a no-transaction file).
    pub(super) async fn run_file(
        &self,
        conn: &dyn Executor,
        module: &str,
        m: &Migration,
    ) -> Result<Duration> {
        let file = m.name();
        let fail = |message: String, e: Error| migration_error(module, file, message, e);
        let sql = self
            .db
            .templates()
            .expand(m.sql())
            .map_err(|e| fail(e.to_string(), e))?;
        let started = Instant::now();
        let millis = |d: Duration| i32::try_from(d.as_millis()).unwrap_or(i32::MAX);
        if m.no_transaction() {
            for (i, statement) in split_statements(&sql).into_iter().enumerate() {
                let index = ConcurrentIndex::parse(statement);
                let before = match &index {
                    Some(index) => index.indexes_before(conn).await,
                    None => None,
                };
                if let Err(e) = conn.batch_execute(statement).await {
                    let mut message = format!(
                        "statement {} ({}) failed: {e}",
                        i + 1,
                        truncate_chars(statement, 80)
                    );
                    if let Some(index) = &index {
                        message.push_str(&index.clean_up(conn, module, file, before).await);
                    }
                    return Err(fail(message, e));
                }
            }
            let elapsed = started.elapsed();
            self.ledger
                .record(conn, file, m.checksum(), module, millis(elapsed))
                .await
                .map_err(|e| fail(format!("recording it in the ledger failed: {e}"), e))?;
            return Ok(elapsed);
        }
        conn.batch_execute("BEGIN").await?;
        let mut elapsed = Duration::ZERO;
        let outcome = async {
            conn.batch_execute(&sql).await?;
            elapsed = started.elapsed();
            self.ledger
                .record(conn, file, m.checksum(), module, millis(elapsed))
                .await?;
            conn.batch_execute("COMMIT").await
        }
        .await;
        match outcome {
            Ok(()) => Ok(elapsed),
            Err(e) => {
                if let Err(rollback) = conn.batch_execute("ROLLBACK").await {
                    tracing::warn!(error = %rollback, "rollback of a failed migration failed");
                }
                Err(fail(e.to_string(), e))
            }
        }
    }

    /// Applies `module`'s migrations (see [`apply`](Migrator::apply)).
    ///
    /// # Errors
    ///
    /// As [`apply`](Migrator::apply).
    pub async fn apply_module(&self, module: &dyn Module) -> Result<MigrationReport> {
        self.apply(module.name(), &module.migrations()).await
    }

    /// Applies several modules in dependency order (see [`order_modules`]), one after the other,
    /// stopping at the first error.
    ///
    /// # Errors
    ///
    /// [`Error::ModuleOrder`] for a dependency cycle (naming it), an unknown dependency or a
    /// duplicate module name, before anything is applied; otherwise as
    /// [`apply`](Migrator::apply).
    pub async fn apply_modules(&self, modules: &[&dyn Module]) -> Result<Vec<MigrationReport>> {
        let ordered = order_modules(modules)?;
        let mut reports = Vec::with_capacity(ordered.len());
        for module in ordered {
            reports.push(self.apply_module(module).await?);
        }
        Ok(reports)
    }

    /// The applied set of `module`, read-only: empty when the ledger does not exist.
    pub(super) async fn read_applied(&self, module: &str) -> Result<Vec<(String, String)>> {
        check_module_name(module)?;
        if !self.ledger.exists(&self.db).await? {
            return Ok(Vec::new());
        }
        self.ledger.applied(&self.db, module).await
    }

    /// `module`'s applied files (file name → checksum), read-only, after checking that none of
    /// them changed in `source`.
    pub(super) async fn checked_applied(
        &self,
        module: &str,
        source: &MigrationSource,
    ) -> Result<HashMap<String, String>> {
        let applied: HashMap<String, String> =
            self.read_applied(module).await?.into_iter().collect();
        check_checksums(module, source, &applied)?;
        Ok(applied)
    }

    /// As [`checked_applied`](Self::checked_applied), on the connection holding the migration
    /// lock, creating the ledger first if it does not exist.
    pub(super) async fn checked_applied_locked(
        &self,
        conn: &dyn Executor,
        module: &str,
        source: &MigrationSource,
    ) -> Result<HashMap<String, String>> {
        self.ledger.ensure(conn).await?;
        let applied: HashMap<String, String> = self
            .ledger
            .applied(conn, module)
            .await?
            .into_iter()
            .collect();
        check_checksums(module, source, &applied)?;
        Ok(applied)
    }

    /// The state of every file of `source` for `module` (applied, pending, changed), then the
    /// ledger rows whose file is no longer in the source. Read-only.
    ///
    /// # Errors
    ///
    /// Pool and server errors.
    pub async fn status(
        &self,
        module: &str,
        source: &MigrationSource,
    ) -> Result<Vec<MigrationStatus>> {
        let applied = self.read_applied(module).await?;
        let by_name: HashMap<&str, &str> = applied
            .iter()
            .map(|(f, c)| (f.as_str(), c.as_str()))
            .collect();
        let mut out: Vec<MigrationStatus> = source
            .migrations()
            .iter()
            .map(|m| MigrationStatus {
                file: m.name().to_owned(),
                state: match by_name.get(m.name()) {
                    None => MigrationState::Pending,
                    Some(c) if *c == m.checksum() => MigrationState::Applied,
                    Some(c) => MigrationState::Changed {
                        applied: (*c).to_owned(),
                        current: m.checksum().to_owned(),
                    },
                },
            })
            .collect();
        out.extend(
            applied
                .iter()
                .filter(|(f, _)| source.get(f).is_none())
                .map(|(f, _)| MigrationStatus {
                    file: f.clone(),
                    state: MigrationState::MissingFromSource,
                }),
        );
        Ok(out)
    }

    /// What [`apply`](Migrator::apply) would run now, with the expanded SQL. Nothing is written,
    /// not even the ledger table.
    ///
    /// # Errors
    ///
    /// [`Error::ChecksumMismatch`] when an applied file changed (apply would refuse);
    /// [`Error::Migration`] for a malformed template or a pending file without a statement;
    /// pool and server errors.
    pub async fn dry_run(
        &self,
        module: &str,
        source: &MigrationSource,
    ) -> Result<Vec<PlannedMigration>> {
        let applied = self.checked_applied(module, source).await?;
        source
            .migrations()
            .iter()
            .filter(|m| !applied.contains_key(m.name()))
            .map(|m| {
                check_has_statement(module, m)?;
                let sql = self
                    .db
                    .templates()
                    .expand(m.sql())
                    .map_err(|e| migration_error(module, m.name(), e.to_string(), e))?;
                Ok(PlannedMigration {
                    file: m.name().to_owned(),
                    checksum: m.checksum().to_owned(),
                    no_transaction: m.no_transaction(),
                    sql: sql.to_string(),
                })
            })
            .collect()
    }

    /// Checks that every applied file of `source` still has its recorded checksum, read-only.
    /// Returns how many applied files were checked.
    ///
    /// # Errors
    ///
    /// [`Error::ChecksumMismatch`] for the first changed file; pool and server errors.
    pub async fn verify(&self, module: &str, source: &MigrationSource) -> Result<usize> {
        let applied = self.checked_applied(module, source).await?;
        Ok(source
            .migrations()
            .iter()
            .filter(|m| applied.contains_key(m.name()))
            .count())
    }

    /// The ledger rows, oldest first: those of `module` (and rows without a module) or, with
    /// `None`, all of them. Empty when the ledger does not exist. Read-only.
    ///
    /// # Errors
    ///
    /// Pool and server errors.
    pub async fn history(&self, module: Option<&str>) -> Result<Vec<HistoryEntry>> {
        if !self.ledger.exists(&self.db).await? {
            return Ok(Vec::new());
        }
        self.ledger.history(&self.db, module, None).await
    }
}

impl Database {
    /// A [`Migrator`] for this handle's schema.
    pub fn migrator(&self) -> Migrator {
        Migrator::new(self)
    }

    /// Applies `module`'s migrations into this handle's schema (created if needed).
    ///
    /// ```no_run
    /// # async fn demo(db: pgdbm::Database, users: impl pgdbm::Module) -> pgdbm::Result<()> {
    /// let report = db.migrate(&users).await?;
    /// for m in &report.applied {
    ///     println!("applied {} in {:?}", m.file, m.duration);
    /// }
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// As [`Migrator::apply`].
    pub async fn migrate(&self, module: &dyn Module) -> Result<MigrationReport> {
        self.migrator().apply_module(module).await
    }

    /// Applies several modules into this handle's schema, in dependency order.
    ///
    /// # Errors
    ///
    /// As [`Migrator::apply_modules`].
    pub async fn migrate_all(&self, modules: &[&dyn Module]) -> Result<Vec<MigrationReport>> {
        self.migrator().apply_modules(modules).await
    }
}
