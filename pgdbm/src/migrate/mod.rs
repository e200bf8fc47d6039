//! Migrations, compatible with pgdbm for Python's ledger.
//!
//! A [`MigrationSource`] is an ordered set of `*.sql` files: read from a directory at run time
//! ([`MigrationSource::from_dir`]), embedded in a crate at compile time
//! ([`embed_migrations!`](crate::embed_migrations)), or built from `(name, sql)` pairs
//! ([`MigrationSource::from_pairs`]). A [`Migrator`] applies one into a
//! [`Database`](crate::Database) handle's schema and records each file in the ledger table
//! `schema_migrations` (see [`ledger`](self#the-ledger)); [`Database::migrate`](crate::Database::migrate)
//! does so for a [`Module`](crate::Module).
//!
//! # The ledger
//!
//! The table, its columns, unique key and index, the checksum ([`checksum`]: SHA-256 of the raw
//! text with CRLF → LF, trimmed), the per-module applied set (`module_name = $1 OR module_name
//! IS NULL`) and the advisory lock key (`hashtext('pgdbm_migration_' || module)`) are exactly
//! pgdbm for Python's, so a Python and a Rust service can share a database module by module.
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

mod admin;
mod cic;
mod create;
mod ledger;
mod lock;
/// `Module` and `order_modules`, re-exported at the crate root (`pgdbm::Module`).
pub(crate) mod module;
mod report;
mod runner;
mod source;
mod split;
mod xact;

pub use create::{MigrationNaming, create_migration};
pub use ledger::{DEFAULT_LEDGER_TABLE, HistoryEntry};
pub use report::{
    AppliedMigration, MigrationReport, MigrationState, MigrationStatus, PlannedMigration,
    RepairedMigration,
};
pub use runner::Migrator;
pub use source::{Migration, MigrationSource, checksum};
pub use split::NO_TRANSACTION_MARKER;
