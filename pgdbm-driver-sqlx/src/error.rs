//! Mapping sqlx errors onto pgdbm's [`Error`].

use pgdbm::{DbError, Error};
use sqlx::postgres::PgDatabaseError;

/// Maps an error of a statement (`sql` is kept, cut to size, never the parameters).
pub(crate) fn map(err: sqlx::Error, sql: &str) -> Error {
    match err {
        sqlx::Error::Database(db) => match db.try_downcast_ref::<PgDatabaseError>() {
            Some(pg) => Error::from(db_error(pg)).with_sql(sql),
            None => Error::query(sql, db.message().to_owned(), Some(Box::new(db))),
        },
        sqlx::Error::PoolClosed => Error::PoolClosed,
        sqlx::Error::Io(io) => Error::query(
            sql,
            format!("the connection failed: {io}"),
            Some(Box::new(io)),
        ),
        other => Error::query(sql, other.to_string(), Some(Box::new(other))),
    }
}

/// The server error's fields as pgdbm's [`DbError`].
pub(crate) fn db_error(db: &PgDatabaseError) -> DbError {
    let mut out = DbError::new(db.code(), db.message());
    out.severity = format!("{:?}", db.severity()).to_ascii_uppercase();
    out.detail = db.detail().map(str::to_owned);
    out.hint = db.hint().map(str::to_owned);
    out.schema = db.schema().map(str::to_owned);
    out.table = db.table().map(str::to_owned);
    out.column = db.column().map(str::to_owned);
    out.constraint = db.constraint().map(str::to_owned);
    out
}

/// The cause of a failed connect: the server's own error when it sent one (an authentication
/// failure says so), sqlx's error otherwise.
pub(crate) fn connect_cause(err: sqlx::Error) -> pgdbm::BoxError {
    if let sqlx::Error::Database(db) = &err {
        if let Some(pg) = db.try_downcast_ref::<PgDatabaseError>() {
            return Box::new(Error::from(db_error(pg)));
        }
    }
    Box::new(err)
}
