//! Applying migrations through a transaction pooler, where a session advisory lock cannot work
//! (it stays with whichever server connection ran it): each file runs in a transaction of its
//! own that first takes `pg_advisory_xact_lock(hashtext('pgdbm_migration_' || module))` and
//! reads the ledger again under it, skipping the file if another run applied it meanwhile.
//! This is pgdbm for Python's (≥ 0.4.1) protocol, and the same lock key as the session lock
//! runs without a pooler take, so all of them exclude each other.
//!
//! A `-- pgdbm:no-transaction` file cannot run inside such a transaction: a module with one
//! pending is applied entirely over the direct connection (`direct_url`), under the session
//! lock, as without a pooler; without a `direct_url` the run fails before anything is applied.

use std::time::{Duration, Instant};

use crate::database::Database;
use crate::driver::{DiscardGuard, PooledConnection};
use crate::error::{Error, Result};
use crate::executor::Executor;
use crate::monitor::Monitored;
use crate::params;

use super::report::{AppliedMigration, MigrationReport};
use super::runner::{Migrator, migration_error};
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
        if let Some(m) = source
            .migrations()
            .iter()
            .find(|m| m.no_transaction() && !applied.contains_key(m.name()))
        {
            let pooler = self.database().pool().pooler();
            let what = format!(
                "migration {module}/{} (-- pgdbm:no-transaction: it cannot run inside a \
                 transaction, and only a transaction holds a server connection behind a \
                 transaction pooler)",
                m.name()
            );
            let pool = pooler.connect_direct(&what).await?;
            let direct = Database::new(pool.clone(), self.database().schema())?;
            let direct = match self.database().monitor() {
                Some(monitor) => direct.with_monitor(monitor.clone()),
                None => direct,
            };
            let result = Box::pin(self.on(&direct).apply(module, source)).await;
            pool.close().await;
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
            match self.apply_one_locked(conn, module, m).await? {
                Some(duration) => {
                    tracing::info!(
                        module,
                        file = m.name(),
                        ms = duration.as_millis() as u64,
                        "migration applied"
                    );
                    report.applied.push(AppliedMigration {
                        file: m.name().to_owned(),
                        checksum: m.checksum().to_owned(),
                        duration,
                    });
                }
                None => report.skipped.push(m.name().to_owned()),
            }
        }
        report.total_time = started.elapsed();
        Ok(report)
    }

    /// Runs file `m` in a transaction on `conn` under the transaction-level lock; `None` when
    /// another run applied it meanwhile.
    async fn apply_one_locked(
        &self,
        conn: PooledConnection,
        module: &str,
        m: &Migration,
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
        let monitored;
        let exec: &dyn Executor = match self.database().monitor() {
            Some(monitor) => {
                monitored = Monitored::new(&**guard.conn(), monitor.clone());
                &monitored
            }
            None => &**guard.conn(),
        };
        let outcome = async {
            exec.execute(XACT_LOCK_SQL, params![module]).await?;
            // Under the lock: applied by another run meanwhile?
            let now = self.ledger().applied(exec, module).await?;
            if let Some((_, recorded)) = now.iter().find(|(f, _)| f == file) {
                if recorded != m.checksum() {
                    return Err(Error::ChecksumMismatch {
                        module: module.to_owned(),
                        file: file.to_owned(),
                        applied: recorded.clone(),
                        current: m.checksum().to_owned(),
                    });
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
