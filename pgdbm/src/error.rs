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
//!   [`Row::deserialize`](crate::Row::deserialize), `fetch_*_as`, [`Json<T>`](crate::Json))
//!   gives an [`Error::Decode`] naming the column (and the field inside it) and the expected and
//!   found types, never the value: serde's own messages, which quote values, are not used, and
//!   the message of a custom `Deserialize` implementation has the row's values hidden.
//!
//! [`Error::Database`] has no `source`; the sources of the other variants are the drivers' errors
//! for failures that are not server errors, or a pgdbm [`Error`] (a pool timeout's connect
//! failure).

use std::time::Duration;

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
    RowNotFound {
        /// The SQL text, cut to [`MAX_SQL_IN_ERROR`] characters.
        sql: String,
    },

    /// A row has no column of that name or index.
    #[error("no column {column} in row (columns: {available})")]
    ColumnNotFound {
        /// The column name or index asked for.
        column: String,
        /// The columns the row has, comma separated.
        available: String,
    },

    /// A column value could not be turned into the requested Rust type.
    #[error("cannot decode column {column}: expected {expected}, found {actual}")]
    Decode {
        /// The column name (or index when unnamed).
        column: String,
        /// The Rust type asked for.
        expected: String,
        /// The value actually there (its SQL type, or `NULL`).
        actual: String,
    },

    /// A parameter could not be sent as the type the statement expects.
    #[error("cannot bind parameter ${index}: {message}")]
    Encode {
        /// 1-based parameter position (`$1` is 1).
        index: usize,
        /// Why, without the value itself.
        message: String,
    },

    /// The statement expects a different number of parameters than were given.
    #[error("statement expects {expected} parameter(s), {actual} given (sql: {sql})")]
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
    UnsupportedType {
        /// The column name.
        column: String,
        /// The PostgreSQL type name.
        type_name: String,
    },

    /// No connection became available within the pool's acquire timeout.
    #[error("timed out after {waited:?} waiting for a pooled connection")]
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

    /// A connection could not be opened.
    #[error("cannot connect to {host}:{port}/{database} after {attempts} attempt(s)")]
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
    Config {
        /// The field or connection-string key.
        field: String,
        /// What is wrong with it (never the password itself).
        message: String,
    },

    /// A schema, table or other identifier is not a valid SQL identifier.
    #[error("invalid {kind} identifier {value:?}: {reason}")]
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

    /// The operation is not supported by this driver or in this state.
    #[error("unsupported: {0}")]
    Unsupported(String),

    /// An I/O error outside of a connection (reading a migration file…).
    #[error("{context}")]
    Io {
        /// What was being done.
        context: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// The classification of a server error, or `None` for errors that did not come from the server.
    pub fn kind(&self) -> Option<ErrorKind> {
        self.as_database().map(|db| db.kind)
    }

    /// The server error, if this is one.
    pub fn as_database(&self) -> Option<&DbError> {
        match self {
            Error::Database(db) => Some(db),
            Error::Migration {
                source: Some(inner),
                ..
            } => inner.as_database(),
            // A server that refused the connection (bad password, unknown database) said why.
            Error::Connect { source, .. } => source.downcast_ref::<Error>()?.as_database(),
            Error::PoolTimeout {
                source: Some(inner),
                ..
            } => inner.as_database(),
            _ => None,
        }
    }

    /// The SQLSTATE code of a server error.
    pub fn code(&self) -> Option<&str> {
        self.as_database().map(|db| db.code.as_str())
    }

    /// `true` for a unique-constraint violation (`23505`).
    pub fn is_unique_violation(&self) -> bool {
        self.kind() == Some(ErrorKind::UniqueViolation)
    }

    /// `true` for a foreign-key violation (`23503`).
    pub fn is_foreign_key_violation(&self) -> bool {
        self.kind() == Some(ErrorKind::ForeignKeyViolation)
    }

    /// `true` for a NOT NULL violation (`23502`).
    pub fn is_not_null_violation(&self) -> bool {
        self.kind() == Some(ErrorKind::NotNullViolation)
    }

    /// `true` for a CHECK constraint violation (`23514`).
    pub fn is_check_violation(&self) -> bool {
        self.kind() == Some(ErrorKind::CheckViolation)
    }

    /// `true` for a serialization failure (`40001`): retry the transaction.
    pub fn is_serialization_failure(&self) -> bool {
        self.kind() == Some(ErrorKind::SerializationFailure)
    }

    /// `true` for a detected deadlock (`40P01`): retry the transaction.
    pub fn is_deadlock(&self) -> bool {
        self.kind() == Some(ErrorKind::DeadlockDetected)
    }

    /// `true` when the server canceled the statement (`57014`), e.g. by `statement_timeout`.
    pub fn is_query_canceled(&self) -> bool {
        self.kind() == Some(ErrorKind::QueryCanceled)
    }

    /// `true` when a lock could not be taken in time (`55P03`), e.g. by `lock_timeout`.
    pub fn is_lock_timeout(&self) -> bool {
        self.kind() == Some(ErrorKind::LockNotAvailable)
    }

    /// `true` for pool timeouts.
    pub fn is_pool_timeout(&self) -> bool {
        matches!(self, Error::PoolTimeout { .. })
    }

    /// `true` when the statement failed because there is no usable connection to the server:
    /// the connection was lost ([`Error::ConnectionLost`]), the server ended the session
    /// ([`ErrorKind::ConnectionFailure`]: shutdown, `pg_terminate_backend`…, or
    /// [`ErrorKind::IdleInTransactionTimeout`]), no connection could be opened
    /// ([`Error::Connect`]), or an acquire timed out after a connect failure
    /// ([`Error::PoolTimeout`] with a cause). Such errors are transient when the server comes
    /// back: the pool replaces broken connections by itself.
    pub fn is_connection_error(&self) -> bool {
        match self {
            Error::ConnectionLost { .. } | Error::Connect { .. } => true,
            Error::PoolTimeout { source, .. } => source.is_some(),
            _ => matches!(
                self.kind(),
                Some(ErrorKind::ConnectionFailure | ErrorKind::IdleInTransactionTimeout)
            ),
        }
    }

    /// `true` when retrying the whole transaction may succeed (serialization failure or deadlock).
    pub fn is_retryable(&self) -> bool {
        matches!(
            self.kind(),
            Some(ErrorKind::SerializationFailure | ErrorKind::DeadlockDetected)
        )
    }

    /// Builds a [`Error::Query`] with the SQL cut to size.
    pub fn query(sql: &str, message: impl Into<String>, source: Option<BoxError>) -> Self {
        Error::Query {
            sql: truncate_sql(sql),
            message: message.into(),
            source,
        }
    }

    /// Builds a [`Error::ConnectionLost`] with the SQL cut to size.
    pub fn connection_lost(
        sql: &str,
        message: impl Into<String>,
        source: Option<BoxError>,
    ) -> Self {
        Error::ConnectionLost {
            sql: truncate_sql(sql),
            message: message.into(),
            source,
        }
    }

    /// Builds a [`Error::Config`].
    pub fn config(field: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Config {
            field: field.into(),
            message: message.into(),
        }
    }

    /// Builds a [`Error::Decode`].
    pub fn decode(
        column: impl Into<String>,
        expected: impl Into<String>,
        actual: impl Into<String>,
    ) -> Self {
        Error::Decode {
            column: column.into(),
            expected: expected.into(),
            actual: actual.into(),
        }
    }

    /// Hides the text of each bound parameter wherever it appears in the error: in every text
    /// field of a server error (message, detail, hint, schema, table, column, constraint — not
    /// the SQL, which is the caller's) and in the message of [`Error::Query`] and
    /// [`Error::ConnectionLost`]. Other errors pass through. Drivers call this on every error of
    /// a statement run with parameters, before returning it.
    ///
    /// A value is looked for as its text rendering (strings as they are, numbers, dates,
    /// UUIDs, `\x…` hex for bytea, each array element, each string and number inside JSON), also
    /// trimmed and without double quotes, ignoring ASCII case (the server folds identifiers); a
    /// value of fewer than 8 characters only where it stands as a whole word (so a value `1` does
    /// not hide every `1` of the message), a longer one wherever it appears, also cut short (the
    /// server cuts long values in some `DETAIL`s). Each occurrence becomes `<hidden>`.
    ///
    /// ```
    /// use pgdbm::{DbError, Error, params};
    /// let err = Error::from(DbError::new("42P01", "relation \"secret_seq\" does not exist"));
    /// let err = err.redact_params(params!["SECRET_SEQ"]);
    /// assert_eq!(err.as_database().unwrap().message, "relation \"<hidden>\" does not exist");
    /// ```
    #[must_use]
    pub fn redact_params(self, params: crate::value::Params<'_>) -> Self {
        if params.is_empty() || !self.has_redactable_text() {
            return self;
        }
        let mut secrets = crate::redact::Secrets::default();
        for param in params {
            secrets.add_value(&param.to_param());
        }
        self.redact_with(&secrets)
    }

    /// As [`Error::redact_params`], for values given as [`Value`](crate::Value)s (e.g. the rows of
    /// a `copy_in`).
    #[must_use]
    pub fn redact_values<'v>(self, values: impl IntoIterator<Item = &'v crate::Value>) -> Self {
        if !self.has_redactable_text() {
            return self;
        }
        let mut secrets = crate::redact::Secrets::default();
        for value in values {
            secrets.add_value(value);
        }
        self.redact_with(&secrets)
    }

    fn has_redactable_text(&self) -> bool {
        matches!(
            self,
            Error::Database(_) | Error::Query { .. } | Error::ConnectionLost { .. }
        )
    }

    fn redact_with(mut self, secrets: &crate::redact::Secrets) -> Self {
        if secrets.is_empty() {
            return self;
        }
        match &mut self {
            Error::Database(db) => db.hide(secrets),
            Error::Query { message, .. } | Error::ConnectionLost { message, .. } => {
                secrets.hide_in(message);
            }
            _ => {}
        }
        self
    }

    /// Adds the SQL text to a server error that has none yet; other errors pass through.
    pub fn with_sql(mut self, sql: &str) -> Self {
        if let Error::Database(db) = &mut self {
            if db.sql.is_none() {
                db.sql = Some(truncate_sql(sql));
            }
        }
        self
    }
}

/// A server error: SQLSTATE, message and the fields PostgreSQL reports with it.
///
/// Its `Display` and `Debug` texts never show input values: the values bound to the statement are
/// hidden in every field by the driver ([`Error::redact_params`]); `DETAIL` (which can also quote
/// row values that were not parameters) is left out of `Display` and shown only by length in
/// `Debug`; and the quoted input in the message of a data exception (class `22`, e.g. `invalid
/// input syntax for type integer: "…"`, possibly a value read from a table) is replaced by
/// `"<hidden>"` ([`DbError::redacted_message`]). Apart from the hidden parameter values, the
/// fields hold the server's text.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DbError {
    /// The five-character SQLSTATE, e.g. `23505`.
    pub code: String,
    /// Its classification.
    pub kind: ErrorKind,
    /// Severity as the server reports it (`ERROR`, `FATAL`…).
    pub severity: String,
    /// The primary message.
    pub message: String,
    /// The server's `DETAIL`. It may quote row values, so it is not shown by `Display`.
    pub detail: Option<String>,
    /// The server's `HINT`.
    pub hint: Option<String>,
    /// The schema of the object involved.
    pub schema: Option<String>,
    /// The table involved.
    pub table: Option<String>,
    /// The column involved.
    pub column: Option<String>,
    /// The constraint involved.
    pub constraint: Option<String>,
    /// The statement that failed, cut to [`MAX_SQL_IN_ERROR`] characters.
    pub sql: Option<String>,
}

impl DbError {
    /// Builds a server error from its SQLSTATE and message; the other fields start empty.
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        let code = code.into();
        DbError {
            kind: ErrorKind::from_sqlstate(&code),
            code,
            severity: "ERROR".to_owned(),
            message: message.into(),
            detail: None,
            hint: None,
            schema: None,
            table: None,
            column: None,
            constraint: None,
            sql: None,
        }
    }
}

impl DbError {
    /// The message as `Display` shows it: for a data exception (class `22`), everything from the
    /// first double quote to the last one is replaced by `"<hidden>"` (to the end of the message
    /// when there is only one), since the server quotes the rejected input there — which may be
    /// a value read from a table, and may itself contain double quotes.
    pub fn redacted_message(&self) -> std::borrow::Cow<'_, str> {
        if !self.code.starts_with("22") {
            return std::borrow::Cow::Borrowed(&self.message);
        }
        let (Some(first), Some(last)) = (self.message.find('"'), self.message.rfind('"')) else {
            return std::borrow::Cow::Borrowed(&self.message);
        };
        let rest = if last > first {
            &self.message[last + 1..]
        } else {
            ""
        };
        std::borrow::Cow::Owned(format!(
            "{}\"{}\"{rest}",
            &self.message[..first],
            crate::redact::HIDDEN
        ))
    }

    /// Hides `secrets` in every text field (not the SQL).
    fn hide(&mut self, secrets: &crate::redact::Secrets) {
        secrets.hide_in(&mut self.message);
        secrets.hide_in_opt(&mut self.detail);
        secrets.hide_in_opt(&mut self.hint);
        secrets.hide_in_opt(&mut self.schema);
        secrets.hide_in_opt(&mut self.table);
        secrets.hide_in_opt(&mut self.column);
        secrets.hide_in_opt(&mut self.constraint);
    }
}

impl std::fmt::Debug for DbError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        struct Hidden(usize);
        impl std::fmt::Debug for Hidden {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "<{} characters hidden>", self.0)
            }
        }
        f.debug_struct("DbError")
            .field("code", &self.code)
            .field("kind", &self.kind)
            .field("severity", &self.severity)
            .field("message", &self.redacted_message())
            .field(
                "detail",
                &self.detail.as_ref().map(|d| Hidden(d.chars().count())),
            )
            .field("hint", &self.hint)
            .field("schema", &self.schema)
            .field("table", &self.table)
            .field("column", &self.column)
            .field("constraint", &self.constraint)
            .field("sql", &self.sql)
            .finish()
    }
}

impl std::fmt::Display for DbError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: {} (SQLSTATE {}",
            self.severity,
            self.redacted_message(),
            self.code
        )?;
        if let Some(constraint) = &self.constraint {
            write!(f, ", constraint {constraint}")?;
        }
        f.write_str(")")?;
        if let Some(hint) = &self.hint {
            write!(f, "; hint: {hint}")?;
        }
        if let Some(sql) = &self.sql {
            write!(f, " (sql: {sql})")?;
        }
        Ok(())
    }
}

impl From<DbError> for Error {
    fn from(db: DbError) -> Self {
        Error::Database(Box::new(db))
    }
}

/// What a server error means, from its SQLSTATE.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// `23505`
    UniqueViolation,
    /// `23503`
    ForeignKeyViolation,
    /// `23502`
    NotNullViolation,
    /// `23514`
    CheckViolation,
    /// `23P01`
    ExclusionViolation,
    /// `40001`
    SerializationFailure,
    /// `40P01`
    DeadlockDetected,
    /// `57014`, e.g. `statement_timeout` or a cancel request.
    QueryCanceled,
    /// `55P03`, e.g. `lock_timeout`.
    LockNotAvailable,
    /// `25P03`: the server ended an idle transaction.
    IdleInTransactionTimeout,
    /// `42601`
    SyntaxError,
    /// `42P01`
    UndefinedTable,
    /// `42703`
    UndefinedColumn,
    /// `42883`
    UndefinedFunction,
    /// `42P07`
    DuplicateTable,
    /// `42501`
    InsufficientPrivilege,
    /// Class `28`: authentication failed (wrong password, no `pg_hba.conf` entry…).
    InvalidAuthorization,
    /// `3D000`
    InvalidCatalogName,
    /// Class `08`, `57P01`–`57P03` and `57P05` (`idle_session_timeout`): the connection is gone
    /// or the server is shutting down.
    ConnectionFailure,
    /// Class `22`: bad data (out of range, invalid text representation…).
    DataException,
    /// Any other SQLSTATE.
    Other,
}

impl ErrorKind {
    /// Classifies a SQLSTATE.
    pub fn from_sqlstate(code: &str) -> Self {
        match code {
            "23505" => ErrorKind::UniqueViolation,
            "23503" => ErrorKind::ForeignKeyViolation,
            "23502" => ErrorKind::NotNullViolation,
            "23514" => ErrorKind::CheckViolation,
            "23P01" => ErrorKind::ExclusionViolation,
            "40001" => ErrorKind::SerializationFailure,
            "40P01" => ErrorKind::DeadlockDetected,
            "57014" => ErrorKind::QueryCanceled,
            "55P03" => ErrorKind::LockNotAvailable,
            "25P03" => ErrorKind::IdleInTransactionTimeout,
            "42601" => ErrorKind::SyntaxError,
            "42P01" => ErrorKind::UndefinedTable,
            "42703" => ErrorKind::UndefinedColumn,
            "42883" => ErrorKind::UndefinedFunction,
            "42P07" => ErrorKind::DuplicateTable,
            "42501" => ErrorKind::InsufficientPrivilege,
            "3D000" => ErrorKind::InvalidCatalogName,
            "57P01" | "57P02" | "57P03" | "57P05" => ErrorKind::ConnectionFailure,
            c if c.starts_with("28") => ErrorKind::InvalidAuthorization,
            c if c.starts_with("08") => ErrorKind::ConnectionFailure,
            c if c.starts_with("22") => ErrorKind::DataException,
            _ => ErrorKind::Other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlstate_kinds() {
        assert_eq!(
            ErrorKind::from_sqlstate("23505"),
            ErrorKind::UniqueViolation
        );
        assert_eq!(
            ErrorKind::from_sqlstate("28P01"),
            ErrorKind::InvalidAuthorization
        );
        assert_eq!(
            ErrorKind::from_sqlstate("08006"),
            ErrorKind::ConnectionFailure
        );
        assert_eq!(ErrorKind::from_sqlstate("22003"), ErrorKind::DataException);
        assert_eq!(ErrorKind::from_sqlstate("XX000"), ErrorKind::Other);
    }

    #[test]
    fn display_hides_detail() {
        let mut db = DbError::new("23505", "duplicate key value violates unique constraint");
        db.detail = Some("Key (email)=(secret@example.com) already exists.".into());
        db.constraint = Some("users_email_key".into());
        let err = Error::from(db).with_sql("INSERT INTO users VALUES ($1)");
        let text = err.to_string();
        assert!(err.is_unique_violation());
        assert!(text.contains("users_email_key"), "{text}");
        assert!(!text.contains("secret@example.com"), "{text}");
        assert!(text.contains("INSERT INTO users"), "{text}");
    }

    #[test]
    fn data_exception_values_are_hidden() {
        let mut db = DbError::new("22P02", "invalid input syntax for type integer: \"s3cr3t\"");
        db.detail = Some("Token \"s3cr3t\" is invalid.".into());
        let err = Error::from(db.clone());
        for text in [err.to_string(), format!("{err:?}"), format!("{db:?}")] {
            assert!(!text.contains("s3cr3t"), "{text}");
            assert!(
                text.contains("invalid input syntax for type integer"),
                "{text}"
            );
        }
        assert!(err.to_string().contains("\"<hidden>\""), "{err}");
        assert!(
            db.message.contains("s3cr3t"),
            "the field keeps the server's text"
        );
        let other = DbError::new("42P01", "relation \"missing\" does not exist");
        assert_eq!(other.redacted_message(), other.message);
    }

    /// The texts an error shows: `Display`, `Debug`, and every `source()` in its chain.
    fn shown(err: &Error) -> Vec<String> {
        let mut texts = vec![err.to_string(), format!("{err:?}")];
        let mut source = std::error::Error::source(err);
        while let Some(s) = source {
            texts.push(s.to_string());
            texts.push(format!("{s:?}"));
            source = s.source();
        }
        texts
    }

    #[test]
    fn data_exception_quotes_inside_the_value() {
        let db = DbError::new(
            "22P02",
            "invalid input syntax for type integer: \"x\"SECRET\"y\"",
        );
        assert_eq!(
            db.redacted_message(),
            "invalid input syntax for type integer: \"<hidden>\""
        );
        let one = DbError::new("22P02", "invalid input: \"SECRET");
        assert_eq!(one.redacted_message(), "invalid input: \"<hidden>\"");
        let none = DbError::new("22012", "division by zero");
        assert_eq!(none.redacted_message(), "division by zero");
        for text in shown(&Error::from(db)) {
            assert!(!text.contains("SECRET"), "{text}");
        }
    }

    #[test]
    fn bound_values_are_hidden_in_every_class_and_field() {
        let mut db = DbError::new("42P01", "relation \"secret_seq_name\" does not exist");
        db.hint = Some("Is \"secret_seq_name\" right?".into());
        let err = Error::from(db)
            .with_sql("SELECT nextval($1::text)")
            .redact_params(crate::params!["SECRET_SEQ_NAME", 5i32]);
        let db = err.as_database().unwrap();
        assert_eq!(db.message, "relation \"<hidden>\" does not exist");
        assert_eq!(db.hint.as_deref(), Some("Is \"<hidden>\" right?"));
        assert_eq!(db.sql.as_deref(), Some("SELECT nextval($1::text)"));
        for text in shown(&err) {
            assert!(!text.to_lowercase().contains("secret"), "{text}");
        }

        let mut db = DbError::new(
            "23505",
            "duplicate key value violates unique constraint \"u\"",
        );
        db.detail = Some("Key (email)=(alice@secret.example) already exists.".into());
        db.constraint = Some("u".into());
        let err = Error::from(db).redact_params(crate::params![1i64, "alice@secret.example"]);
        let db = err.as_database().unwrap();
        assert_eq!(
            db.detail.as_deref(),
            Some("Key (email)=(<hidden>) already exists.")
        );
        assert_eq!(
            db.constraint.as_deref(),
            Some("u"),
            "a one-letter name stays"
        );

        let err = Error::query("SELECT $1", "failed near s3cr3t-value", None)
            .redact_params(crate::params!["s3cr3t-value"]);
        assert!(!err.to_string().contains("s3cr3t"), "{err}");

        let rows = [vec![crate::Value::Text("copy-secret-1".into())]];
        let err = Error::from(DbError::new("23514", "row (copy-secret-1) fails"))
            .redact_values(rows.iter().flatten());
        assert!(!err.to_string().contains("copy-secret"), "{err}");
    }

    #[test]
    fn short_values_and_no_params_keep_the_message() {
        let message = "value too long for type character varying(10) in \"todo.events\"";
        let err =
            Error::from(DbError::new("22001", message)).redact_params(crate::params![1i32, "e"]);
        assert_eq!(err.as_database().unwrap().message, message);
        let missing = "relation \"todo.events\" does not exist";
        let err = Error::from(DbError::new("42P01", missing)).redact_params(crate::params![]);
        assert_eq!(err.as_database().unwrap().message, missing);
        assert!(err.to_string().contains("todo.events"), "{err}");
        let err = Error::from(DbError::new("42P01", missing)).redact_params(crate::params!["x"]);
        assert!(err.to_string().contains("todo.events"), "{err}");
        let err = Error::Encode {
            index: 1,
            message: "text is not a valid uuid".into(),
        }
        .redact_params(crate::params!["text"]);
        assert_eq!(
            err.to_string(),
            "cannot bind parameter $1: text is not a valid uuid"
        );
    }

    #[test]
    fn connection_errors() {
        let lost = Error::connection_lost("SELECT 1", "the connection is closed", None);
        assert!(lost.is_connection_error());
        assert!(Error::from(DbError::new("57P01", "terminating connection")).is_connection_error());
        assert!(Error::from(DbError::new("25P03", "idle in transaction")).is_connection_error());
        assert!(!Error::from(DbError::new("57014", "canceled")).is_connection_error());
        let bare_timeout = Error::PoolTimeout {
            waited: Duration::from_secs(1),
            source: None,
        };
        assert!(!bare_timeout.is_connection_error());
    }

    #[test]
    fn sql_is_truncated_on_char_boundary() {
        let sql = "é".repeat(500);
        let cut = truncate_sql(&sql);
        assert_eq!(cut.chars().count(), MAX_SQL_IN_ERROR + 1);
        assert!(cut.ends_with('…'));
    }
}
