//! A server error's fields, as every driver's client library reports them, mapped onto pgdbm's
//! [`DbError`] in one place.

use crate::DbError;

/// The fields of an `ErrorResponse`, borrowed from the driver's own error type.
///
/// ```
/// use pgdbm::driver::ServerError;
/// let db = ServerError {
///     code: "23505",
///     message: "duplicate key value violates unique constraint \"users_pkey\"",
///     severity: "ERROR",
///     constraint: Some("users_pkey"),
///     ..ServerError::default()
/// }
/// .to_db_error();
/// assert_eq!(db.kind, pgdbm::ErrorKind::UniqueViolation);
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct ServerError<'a> {
    /// The SQLSTATE.
    pub code: &'a str,
    /// The primary message.
    pub message: &'a str,
    /// `ERROR`, `FATAL`… as the server spells it (upper case).
    pub severity: &'a str,
    /// `DETAIL` (may quote row values: [`DbError`] keeps it out of `Display`).
    pub detail: Option<&'a str>,
    /// `HINT`.
    pub hint: Option<&'a str>,
    /// The schema of the object involved.
    pub schema: Option<&'a str>,
    /// The table involved.
    pub table: Option<&'a str>,
    /// The column involved.
    pub column: Option<&'a str>,
    /// The constraint involved.
    pub constraint: Option<&'a str>,
}

impl ServerError<'_> {
    /// The [`DbError`] (its `kind` from the SQLSTATE, no SQL yet: see
    /// [`Error::with_sql`](crate::Error::with_sql)).
    pub fn to_db_error(&self) -> DbError {
        let mut out = DbError::new(self.code, self.message);
        out.severity = self.severity.to_owned();
        out.detail = self.detail.map(str::to_owned);
        out.hint = self.hint.map(str::to_owned);
        out.schema = self.schema.map(str::to_owned);
        out.table = self.table.map(str::to_owned);
        out.column = self.column.map(str::to_owned);
        out.constraint = self.constraint.map(str::to_owned);
        out
    }
}

impl From<ServerError<'_>> for DbError {
    fn from(fields: ServerError<'_>) -> Self {
        fields.to_db_error()
    }
}
