//! Questions about an [`Error`]: its server error, SQLSTATE and class, and whether retrying or
//! reconnecting may help.

use super::{DbError, Error, ErrorKind};

impl Error {
    /// The classification of a server error, or `None` for errors that did not come from the
    /// server — except [`Error::Timeout`], a statement pgdbm cancelled when its per-call bound ran
    /// out, which is [`ErrorKind::QueryCanceled`] like the server's own `statement_timeout`.
    pub fn kind(&self) -> Option<ErrorKind> {
        if let Error::Timeout { .. } = self {
            return Some(ErrorKind::QueryCanceled);
        }
        self.as_database().map(|db| db.kind)
    }

    /// `true` for [`Error::Timeout`]: a per-call bound ran out (client side, or the server's
    /// `statement_timeout` that a bounded transaction set, once the bound had passed).
    pub fn is_timeout(&self) -> bool {
        matches!(self, Error::Timeout { .. })
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

    /// `true` when the statement was canceled (`57014`), e.g. by `statement_timeout`, or by
    /// pgdbm when a per-call bound ran out ([`Error::Timeout`]).
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
}
