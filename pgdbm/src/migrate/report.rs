//! What a migration run and the inspections report.

use std::time::Duration;

/// One migration applied by a run.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AppliedMigration {
    /// The file name.
    pub file: String,
    /// The checksum recorded in the ledger.
    pub checksum: String,
    /// How long it took (the ledger's `execution_time_ms`).
    pub duration: Duration,
}

impl AppliedMigration {
    /// The record of `migration` of `module`, applied in `duration`, logged as applied.
    pub(crate) fn logged(module: &str, migration: &super::Migration, duration: Duration) -> Self {
        tracing::info!(
            module,
            file = migration.name(),
            ms = duration.as_millis() as u64,
            "migration applied"
        );
        AppliedMigration {
            file: migration.name().to_owned(),
            checksum: migration.checksum().to_owned(),
            duration,
        }
    }
}

/// What a run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct MigrationReport {
    /// The module (ledger key).
    pub module: String,
    /// The migrations applied now, in order.
    pub applied: Vec<AppliedMigration>,
    /// The migrations that were already applied.
    pub skipped: Vec<String>,
    /// Wall time of the whole run, lock wait included.
    pub total_time: Duration,
}

/// The state of one migration file, as [`Migrator::status`](crate::Migrator::status) reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MigrationState {
    /// In the source and in the ledger with the same checksum.
    Applied,
    /// In the source, not yet applied.
    Pending,
    /// Applied, but the file changed since: applying would fail with
    /// [`Error::ChecksumMismatch`](crate::Error::ChecksumMismatch).
    Changed {
        /// Checksum in the ledger.
        applied: String,
        /// Checksum of the file now.
        current: String,
    },
    /// In the ledger, no longer in the source.
    MissingFromSource,
}

/// One file's [`MigrationState`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct MigrationStatus {
    /// The file name.
    pub file: String,
    /// Its state.
    pub state: MigrationState,
}

/// A migration a run would apply, as [`Migrator::dry_run`](crate::Migrator::dry_run) reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PlannedMigration {
    /// The file name.
    pub file: String,
    /// Its checksum.
    pub checksum: String,
    /// `true` when it would run statement by statement outside a transaction.
    pub no_transaction: bool,
    /// Its SQL after template expansion.
    pub sql: String,
}

/// A ledger row whose checksum [`Migrator::repair`](crate::Migrator::repair) re-recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RepairedMigration {
    /// The file name.
    pub file: String,
    /// The checksum the ledger had.
    pub old_checksum: String,
    /// The checksum of the file now, recorded instead.
    pub new_checksum: String,
}
