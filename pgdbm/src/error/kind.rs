//! [`ErrorKind`]: what a SQLSTATE means.

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
