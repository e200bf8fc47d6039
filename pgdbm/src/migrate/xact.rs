//! Migrations through a transaction pooler, where a session advisory lock cannot work (it stays
//! with whichever server connection ran it): each file — and each change of the ledger by hand
//! (`forget`, `baseline`, `repair`, see `admin.rs`) — runs in a transaction of its own that first
//! takes `pg_advisory_xact_lock(hashtext('pgdbm_migration_' || module))` and reads the ledger
//! again under it, skipping a file another run applied meanwhile. This is pgdbm for Python's
//! (≥ 0.4.1) protocol, and the same lock key as the session lock runs without a pooler take, so
//! all of them exclude each other.
//!
//! A `-- pgdbm:no-transaction` file cannot run inside such a transaction: a module with one
//! pending (for `apply_one`: that file) is applied over the direct connection (`direct_url`),
//! under the session lock, as without a pooler; without a `direct_url` the run fails before
//! anything is applied.

use std::time::{Duration, Instant};

use crate::database::Database;
use crate::driver::{DiscardGuard, PooledConnection};
use crate::error::{Error, Result};
use crate::executor::Executor;
use crate::params;

use super::admin::earlier_pending;
use super::report::{AppliedMigration, MigrationReport};
use super::runner::{Migrator, check_has_statement, migration_error};
use super::source::{Migration, MigrationSource};

/// pgdbm for Python's transaction-level lock, the same key as the session lock.
pub(crate) const XACT_LOCK_SQL: &str =
    "SELECT pg_advisory_xact_lock(hashtext('pgdbm_migration_' || $1))";

impl Migrator {
    /// [`Migrator::apply`] behind a transaction pooler (see the module docs).
    pub(super) async fn apply_through_pooler(
        &self,
        module: &str,
        source: &MigrationSource,
    ) -> Result<MigrationReport> {
        let started = Instant::now();
        // Read-only first: a changed file, or a no-transaction file without a direct
        // connection, fails before anything is created or applied.
        let applied = self.checked_applied(module, source).await?;
        for m in source.migrations() {
            if !applied.contains_key(m.name()) {
                check_has_statement(module, m)?;
            }
        }
        if let Some(m) = source
            .migrations()
            .iter()
            .find(|m| m.no_transaction() && !applied.contains_key(m.name()))
        {
            let direct = self.direct(module, m).await?;
            let result = Box::pin(self.on(&direct).apply(module, source)).await;
            direct.pool().close().await;
            return result;
        }
        self.database().ensure_schema().await?;
        self.ledger().ensure(self.database()).await?;
        let mut report = MigrationReport {
            module: module.to_owned(),
            ..MigrationReport::default()
        };
        for m in source.migrations() {
            if applied.contains_key(m.name()) {
                report.skipped.push(m.name().to_owned());
                continue;
            }
            let conn = self.database().acquire().await?;
            match self.apply_one_locked(conn, module, m, &[]).await? {
                Some(duration) => report
                    .applied
                    .push(AppliedMigration::logged(module, m, duration)),
                None => report.skipped.push(m.name().to_owned()),
            }
        }
        report.total_time = started.elapsed();
        Ok(report)
    }

    /// [`Migrator::apply_one`] behind a transaction pooler: file `m` (of `source`) in a
    /// transaction of its own under the transaction-level lock, every earlier file of `source`
    /// checked applied under it; a no-transaction file over the direct connection.
    pub(super) async fn apply_one_through_pooler(
        &self,
        module: &str,
        source: &MigrationSource,
        m: &Migration,
    ) -> Result<Option<AppliedMigration>> {
        let file = m.name();
        // Read-only first, as `apply`: nothing is created for a refused file.
        let applied = self.checked_applied(module, source).await?;
        if applied.contains_key(file) {
            return Ok(None);
        }
        let all = source.migrations();
        let earlier = &all[..all.iter().position(|e| e.name() == file).unwrap_or(0)];
        if let Some(pending) = earlier.iter().find(|e| !applied.contains_key(e.name())) {
            return Err(earlier_pending(module, file, pending.name()));
        }
        check_has_statement(module, m)?;
        if m.no_transaction() {
            let direct = self.direct(module, m).await?;
            let result = Box::pin(self.on(&direct).apply_one(module, source, file)).await;
            direct.pool().close().await;
            return result;
        }
        self.database().ensure_schema().await?;
        self.ledger().ensure(self.database()).await?;
        let conn = self.database().acquire().await?;
        let Some(duration) = self.apply_one_locked(conn, module, m, earlier).await? else {
            return Ok(None);
        };
        Ok(Some(AppliedMigration::logged(module, m, duration)))
    }

    /// A handle like this migrator's on a pool of direct connections (`direct_url`), for
    /// no-transaction file `m`; close its pool after use.
    async fn direct(&self, module: &str, m: &Migration) -> Result<Database> {
        let what = format!(
            "migration {module}/{} (-- pgdbm:no-transaction: it cannot run inside a \
             transaction, and only a transaction holds a server connection behind a \
             transaction pooler)",
            m.name()
        );
        let pool = self
            .database()
            .pool()
            .pooler()
            .connect_direct(&what)
            .await?;
        let direct = Database::new(pool.clone(), self.database().schema());
        let direct = match direct {
            Ok(direct) => direct,
            Err(e) => {
                pool.close().await;
                return Err(e);
            }
        };
        Ok(match self.database().monitor() {
            Some(monitor) => direct.with_monitor(monitor.clone()),
            None => direct,
        })
    }

    /// A connection of the handle's pool inside a transaction of its own (`BEGIN` with the
    /// pooler's guardrails), for work under the transaction-level lock.
    pub(super) async fn begin_xact(&self) -> Result<XactConnection> {
        let conn = self.database().acquire().await?;
        // Until the transaction has ended, a dropped future closes the connection (which ends
        // the transaction and releases the lock) instead of pooling it.
        let guard = DiscardGuard::new(conn);
        let begin = match self.database().pool().pooler().transaction_prelude() {
            Some(prelude) => format!("BEGIN; {prelude}"),
            None => "BEGIN".to_owned(),
        };
        guard.conn().batch_execute(&begin).await?;
        Ok(XactConnection(guard))
    }

    /// Runs file `m` in a transaction on `conn` under the transaction-level lock; `None` when
    /// another run applied it meanwhile. Each file of `earlier` must be applied (unchanged) by
    /// then.
    async fn apply_one_locked(
        &self,
        conn: PooledConnection,
        module: &str,
        m: &Migration,
        earlier: &[Migration],
    ) -> Result<Option<Duration>> {
        let file = m.name();
        let sql = self
            .database()
            .templates()
            .expand(m.sql())
            .map_err(|e| migration_error(module, file, e.to_string(), e))?;
        // Until the transaction has ended, a dropped future closes the connection (which ends
        // the transaction and releases the lock) instead of pooling it.
        let mut guard = DiscardGuard::new(conn);
        let begin = match self.database().pool().pooler().transaction_prelude() {
            Some(prelude) => format!("BEGIN; {prelude}"),
            None => "BEGIN".to_owned(),
        };
        guard.conn().batch_execute(&begin).await?;
        let mut monitored = None;
        let exec = self.monitored(&**guard.conn(), &mut monitored);
        let outcome = async {
            exec.execute(XACT_LOCK_SQL, params![module]).await?;
            // Under the lock: applied by another run meanwhile? Earlier files still there?
            let now = self.ledger().applied(exec, module).await?;
            let recorded = |name: &str| now.iter().find(|(f, _)| f == name).map(|(_, c)| c);
            let changed = |e: &Migration, applied: &str| Error::ChecksumMismatch {
                module: module.to_owned(),
                file: e.name().to_owned(),
                applied: applied.to_owned(),
                current: e.checksum().to_owned(),
            };
            for e in earlier {
                match recorded(e.name()) {
                    None => return Err(earlier_pending(module, file, e.name())),
                    Some(applied) if applied != e.checksum() => return Err(changed(e, applied)),
                    Some(_) => {}
                }
            }
            if let Some(applied) = recorded(file) {
                if applied != m.checksum() {
                    return Err(changed(m, applied));
                }
                return Ok(None);
            }
            let started = Instant::now();
            exec.batch_execute(&sql)
                .await
                .map_err(|e| migration_error(module, file, e.to_string(), e))?;
            let elapsed = started.elapsed();
            let millis = i32::try_from(elapsed.as_millis()).unwrap_or(i32::MAX);
            self.ledger()
                .record(exec, file, m.checksum(), module, millis)
                .await
                .map_err(|e| {
                    migration_error(
                        module,
                        file,
                        format!("recording it in the ledger failed: {e}"),
                        e,
                    )
                })?;
            Ok(Some(elapsed))
        }
        .await;
        drop(monitored);
        match outcome {
            Ok(done) => {
                let commit = guard.conn().batch_execute("COMMIT").await;
                // Ended either way (a refused COMMIT rolls back): reusable.
                drop(guard.keep());
                commit.map_err(|e| migration_error(module, file, e.to_string(), e))?;
                Ok(done)
            }
            Err(e) => {
                if guard.conn().batch_execute("ROLLBACK").await.is_ok() {
                    drop(guard.keep());
                }
                Err(e)
            }
        }
    }
}

/// A connection inside a transaction of its own ([`Migrator::begin_xact`]). Dropped before
/// [`finish`](XactConnection::finish) (an error, a panic, a cancelled future), the connection is
/// closed instead of pooled, which ends the transaction and releases its lock.
pub(super) struct XactConnection(DiscardGuard);

impl XactConnection {
    pub(super) fn conn(&self) -> &dyn Executor {
        &**self.0.conn()
    }

    /// Ends the transaction: `COMMIT` after `result` is `Ok`, otherwise `ROLLBACK` (the error
    /// returned is then `result`'s). The connection is pooled again once the transaction ended.
    pub(super) async fn finish<T>(mut self, result: Result<T>) -> Result<T> {
        match result {
            Ok(out) => {
                let commit = self.0.conn().batch_execute("COMMIT").await;
                // Ended either way (a refused COMMIT rolls back): reusable.
                drop(self.0.keep());
                commit.map(|()| out)
            }
            Err(e) => {
                if self.0.conn().batch_execute("ROLLBACK").await.is_ok() {
                    drop(self.0.keep());
                }
                Err(e)
            }
        }
    }
}
