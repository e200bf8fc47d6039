//! The one error type of pgdbm and its SQLSTATE classification.
//!
//! Every fallible function in pgdbm and its drivers returns [`Error`]. Its `Display` is the
//! error's own sentence; the underlying cause (a driver error, an I/O error, the last connect
//! failure behind a pool timeout) is reached through [`std::error::Error::source`].
//!
//! Error texts never contain passwords, bound parameter values or row values:
//!
//! * The server quotes its input in many messages, whatever the SQLSTATE class (`invalid input
//!   syntax for type integer: "…"`, `relation "…" does not exist` from a `nextval($1)`, the
//!   duplicated key in a unique violation's `DETAIL`…). When a statement with parameters fails,
//!   the driver hides the text of every bound value (and of every row of a `copy_in`) in all the
//!   text fields of the [`DbError`] — message, detail, hint, schema, table, column, constraint —
//!   before the error is returned, with [`Error::redact_params`] (see there for how values are
//!   found: by their text, so a non-text value the server writes differently from the client —
//!   a `timestamptz` in another time zone — may not be recognised). The fields then hold the rest
//!   of the server's text unchanged (identifiers stay: `relation "todo.events" does not exist`).
//! * `DETAIL` can also quote row values that were not parameters (`INSERT … SELECT`), so it is
//!   *not* part of the `Display` text (`Debug` shows only its length); the quoted input of a data
//!   exception (class `22`, which can be a value read from a table) is hidden from `Display` and
//!   `Debug` too (see [`DbError::redacted_message`]).
//! * A row that cannot be mapped onto a Rust type ([`Row::get`](crate::Row::get),
//!   [`FromRow`](crate::FromRow) and `fetch_*_as`, [`Row::deserialize`](crate::Row::deserialize)
//!   and `fetch_*_de`, [`Json<T>`](crate::Json))
//!   gives an [`Error::Decode`] naming the column (and the field inside it) and the expected and
//!   found types, never the value: serde's own messages, which quote values, are not used, and
//!   the message of a custom `Deserialize` implementation has the row's values hidden.
//!
//! [`Error::Database`] has no `source`; the sources of the other variants are the drivers' errors
//! for failures that are not server errors, or a pgdbm [`Error`] (a pool timeout's connect
//! failure).

use std::time::Duration;

mod build;
mod classify;
mod db_error;
mod kind;
#[cfg(test)]
mod tests;

pub use db_error::DbError;
pub use kind::ErrorKind;

/// A boxed error cause, as carried by [`Error`] variants.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// `Result` with pgdbm's [`Error`] as the default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Longest SQL text (in characters) kept in an error or a log line.
pub const MAX_SQL_IN_ERROR: usize = 200;

/// Cuts SQL text to [`MAX_SQL_IN_ERROR`] characters (on a character boundary), marking the cut.
pub fn truncate_sql(sql: &str) -> String {
    truncate_chars(sql, MAX_SQL_IN_ERROR)
}

pub(crate) fn truncate_chars(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        None => text.to_owned(),
        Some((cut, _)) => format!("{}…", &text[..cut]),
    }
}

/// Everything that can go wrong in pgdbm.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The server answered a statement with an error (it carries a SQLSTATE).
    #[error("{0}")]
    Database(Box<DbError>),

    /// A statement could not be run for a reason other than a server error (the connection broke,
    /// a protocol error…). The cause is in `source`.
    #[error("query failed: {message} (sql: {sql})")]
    #[non_exhaustive]
    Query {
        /// The SQL text, cut to [`MAX_SQL_IN_ERROR`] characters. Never parameter values.
        sql: String,
        /// What went wrong, in a few words.
        message: String,
        /// The driver's error, if any.
        #[source]
        source: Option<BoxError>,
    },

    /// The connection to the server was lost (closed by the server, reset, a network failure)
    /// before or while a statement ran. The statement may or may not have taken effect; the
    /// connection is not reused. The cause is in `source`.
    #[error("the connection to the server was lost: {message} (sql: {sql})")]
    #[non_exhaustive]
    ConnectionLost {
        /// The SQL text, cut to [`MAX_SQL_IN_ERROR`] characters. Never parameter values.
        sql: String,
        /// What happened, in a few words.
        message: String,
        /// The driver's error, if any.
        #[source]
        source: Option<BoxError>,
    },

    /// `fetch_one` (or a similar call) found no row.
    #[error("query returned no rows (sql: {sql})")]
    #[non_exhaustive]
    RowNotFound {
        /// The SQL text, cut to [`MAX_SQL_IN_ERROR`] characters.
        sql: String,
    },

    /// A row has no column of that name or index.
    #[error("no column {column}{} in row (columns: {available})", for_field(.field.as_deref()))]
    #[non_exhaustive]
    ColumnNotFound {
        /// The column name or index asked for.
        column: String,
        /// The columns the row has, comma separated.
        available: String,
        /// The Rust field the column was read for, when a [`FromRow`](crate::FromRow)
        /// implementation read it: `User.email` for a struct field, `(i64, String).1` for a
        /// tuple element.
        field: Option<String>,
    },

    /// A column value could not be turned into the requested Rust type.
    #[error(
        "cannot decode column {column}{}: expected {expected}, found {actual}",
        for_field(.field.as_deref())
    )]
    #[non_exhaustive]
    Decode {
        /// The column name (or index when unnamed).
        column: String,
        /// The Rust type asked for.
        expected: String,
        /// The value actually there (its SQL type, or `NULL`).
        actual: String,
        /// The Rust field the column was read for, when a [`FromRow`](crate::FromRow)
        /// implementation read it: `User.email` for a struct field, `(i64, String).1` for a
        /// tuple element.
        field: Option<String>,
    },

    /// A parameter could not be sent as the type the statement expects.
    #[error("cannot bind parameter ${index}: {message}")]
    #[non_exhaustive]
    Encode {
        /// 1-based parameter position (`$1` is 1).
        index: usize,
        /// Why, without the value itself.
        message: String,
    },

    /// The statement expects a different number of parameters than were given.
    #[error("statement expects {expected} parameter(s), {actual} given (sql: {sql})")]
    #[non_exhaustive]
    ParameterCount {
        /// `$n` placeholders in the statement.
        expected: usize,
        /// Parameters given.
        actual: usize,
        /// The SQL text, cut to [`MAX_SQL_IN_ERROR`] characters.
        sql: String,
    },

    /// The server returned a column type pgdbm cannot decode.
    #[error(
        "column {column} has type {type_name}, which pgdbm cannot decode; cast it in SQL (e.g. {column}::text)"
    )]
    #[non_exhaustive]
    UnsupportedType {
        /// The column name.
        column: String,
        /// The PostgreSQL type name.
        type_name: String,
    },

    /// No connection became available within the pool's acquire timeout.
    #[error("timed out after {waited:?} waiting for a pooled connection")]
    #[non_exhaustive]
    PoolTimeout {
        /// How long the caller waited.
        waited: Duration,
        /// The last error seen while opening a connection, if one failed.
        #[source]
        source: Option<Box<Error>>,
    },

    /// The pool was closed.
    #[error("the connection pool is closed")]
    PoolClosed,

    /// A statement of a handle with a per-call bound
    /// ([`Database::with_timeout`](crate::Database::with_timeout),
    /// [`Transaction::with_timeout`](crate::Transaction::with_timeout)) did not finish in time:
    /// its future was dropped, which cancels it on the server. [`Error::kind`] is
    /// [`ErrorKind::QueryCanceled`] (as for the server's own `statement_timeout`), and
    /// [`Error::is_timeout`] is `true`.
    #[error("the statement did not finish within {limit:?} and was cancelled (sql: {sql})")]
    #[non_exhaustive]
    Timeout {
        /// The bound that ran out.
        limit: Duration,
        /// The SQL text, cut to [`MAX_SQL_IN_ERROR`] characters. Never parameter values.
        sql: String,
    },

    /// A connection could not be opened.
    #[error("cannot connect to {host}:{port}/{database} after {attempts} attempt(s)")]
    #[non_exhaustive]
    Connect {
        /// Host (or socket directory) tried.
        host: String,
        /// Port tried.
        port: u16,
        /// Database name.
        database: String,
        /// Attempts made.
        attempts: u32,
        /// The last failure.
        #[source]
        source: BoxError,
    },

    /// A configuration value is invalid.
    #[error("invalid configuration for {field}: {message}")]
    #[non_exhaustive]
    Config {
        /// The field or connection-string key.
        field: String,
        /// What is wrong with it (never the password itself).
        message: String,
    },

    /// A schema, table or other identifier is not a valid SQL identifier.
    #[error("invalid {kind} identifier {value:?}: {reason}")]
    #[non_exhaustive]
    Identifier {
        /// What the identifier names (`schema`, `table`, …).
        kind: &'static str,
        /// The offending text (cut to 80 characters).
        value: String,
        /// Why it is rejected.
        reason: &'static str,
    },

    /// A `{{…}}` template placeholder is malformed.
    #[error("malformed template placeholder {placeholder}: {message}")]
    #[non_exhaustive]
    Template {
        /// The placeholder as written.
        placeholder: String,
        /// What is wrong with it.
        message: String,
    },

    /// A transaction was used after it finished, or misused otherwise.
    #[error("transaction error: {0}")]
    Transaction(String),

    /// A migration failed.
    #[error("migration {module}/{file} failed: {message}")]
    #[non_exhaustive]
    Migration {
        /// The module name.
        module: String,
        /// The migration file name.
        file: String,
        /// What happened.
        message: String,
        /// The underlying error.
        #[source]
        source: Option<Box<Error>>,
    },

    /// An applied migration's file changed since it was applied.
    #[error(
        "migration {module}/{file} was changed after it was applied: ledger checksum {applied}, file checksum {current}"
    )]
    #[non_exhaustive]
    ChecksumMismatch {
        /// The module name.
        module: String,
        /// The migration file name.
        file: String,
        /// Checksum stored in the ledger.
        applied: String,
        /// Checksum of the file now.
        current: String,
    },

    /// Something that cannot work through the configured connection pooler (a session advisory
    /// lock, `LISTEN`, a `-- pgdbm:no-transaction` migration behind a transaction pooler): the
    /// message names the pooler mode, what was refused and the alternative (`direct_url`).
    #[error("{what} cannot run through a connection pooler in {mode} mode: {alternative}")]
    #[non_exhaustive]
    Pooler {
        /// The configured pooler mode.
        mode: crate::config::Pooler,
        /// What was refused.
        what: String,
        /// What to do instead.
        alternative: String,
    },

    /// The operation is not supported by this driver or in this state.
    #[error("unsupported: {0}")]
    Unsupported(String),

    /// Modules cannot be put in dependency order: two have the same name, one depends on a module
    /// that is not in the set, or their dependencies form a cycle (the message names it:
    /// `a -> b -> a`).
    #[error("cannot order the modules: {message}")]
    #[non_exhaustive]
    ModuleOrder {
        /// What is wrong, naming the modules.
        message: String,
    },

    /// A test environment could not be set up: a test server that did not start, a fixture of
    /// the wrong shape, a check on a dedicated server that failed (with the server's log). Used
    /// by `pgdbm-testing` and `pgdbm-conformance`.
    #[error("{what}: {message}")]
    #[non_exhaustive]
    TestSetup {
        /// What was being set up (`test server`, `fixture path/to/file.json`, …).
        what: String,
        /// What went wrong.
        message: String,
    },

    /// An I/O error outside of a connection (reading a migration file…).
    #[error("{context}")]
    #[non_exhaustive]
    Io {
        /// What was being done.
        context: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

/// ` for field User.email` in the texts of [`Error::Decode`] and [`Error::ColumnNotFound`].
fn for_field(field: Option<&str>) -> String {
    field.map_or_else(String::new, |f| format!(" for field {f}"))
}

impl From<DbError> for Error {
    fn from(db: DbError) -> Self {
        Error::Database(Box::new(db))
    }
}
