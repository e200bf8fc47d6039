//! Mapping tokio-postgres errors onto pgdbm's [`Error`].

use std::error::Error as _;

use pgdbm::driver::ServerError;
use pgdbm::{DbError, Error};

use crate::bind::BindError;

/// Maps an error of a statement (`sql` is kept, cut to size, never the parameters): server
/// errors to [`Error::Database`], a closed connection or an I/O failure to
/// [`Error::ConnectionLost`].
pub(crate) fn map(err: tokio_postgres::Error, sql: &str) -> Error {
    if let Some(db) = err.as_db_error() {
        return Error::from(db_error(db)).with_sql(sql);
    }
    if let Some(bind) = err.source().and_then(|s| s.downcast_ref::<BindError>()) {
        let index = parameter_index(&err).unwrap_or(0);
        return Error::encode(index, bind.0.clone());
    }
    if err.is_closed() {
        return Error::connection_lost(sql, "the connection is closed", Some(Box::new(err)));
    }
    if err
        .source()
        .is_some_and(|s| s.downcast_ref::<std::io::Error>().is_some())
    {
        let message = err.to_string();
        return Error::connection_lost(sql, message, Some(Box::new(err)));
    }
    let message = err.to_string();
    Error::query(sql, message, Some(Box::new(err)))
}

/// tokio-postgres reports a failed parameter as "error serializing parameter N" (0-based).
fn parameter_index(err: &tokio_postgres::Error) -> Option<usize> {
    let text = err.to_string();
    let rest = text.strip_prefix("error serializing parameter ")?;
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse::<usize>().ok().map(|i| i + 1)
}

/// The server error's fields as pgdbm's [`DbError`].
pub(crate) fn db_error(db: &tokio_postgres::error::DbError) -> DbError {
    ServerError {
        code: db.code().code(),
        message: db.message(),
        severity: db.severity(),
        detail: db.detail(),
        hint: db.hint(),
        schema: db.schema(),
        table: db.table(),
        column: db.column(),
        constraint: db.constraint(),
    }
    .to_db_error()
}
