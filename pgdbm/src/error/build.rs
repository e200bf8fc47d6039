//! Building [`Error`]s (the constructors drivers and other crates use, since the struct
//! variants are `#[non_exhaustive]`) and hiding bound values in them.

use super::{BoxError, Error, truncate_sql};

impl Error {
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

    /// Builds an [`Error::Encode`] for parameter `index` (1-based); `message` says why, never
    /// the value.
    pub fn encode(index: usize, message: impl Into<String>) -> Self {
        Error::Encode {
            index,
            message: message.into(),
        }
    }

    /// Builds an [`Error::ParameterCount`] with the SQL cut to size.
    pub fn parameter_count(expected: usize, actual: usize, sql: &str) -> Self {
        Error::ParameterCount {
            expected,
            actual,
            sql: truncate_sql(sql),
        }
    }

    /// Builds an [`Error::RowNotFound`] with the SQL cut to size.
    pub fn row_not_found(sql: &str) -> Self {
        Error::RowNotFound {
            sql: truncate_sql(sql),
        }
    }

    /// Builds an [`Error::UnsupportedType`].
    pub fn unsupported_type(column: impl Into<String>, type_name: impl Into<String>) -> Self {
        Error::UnsupportedType {
            column: column.into(),
            type_name: type_name.into(),
        }
    }

    /// Builds an [`Error::Timeout`]: `sql` did not finish within `limit`.
    pub fn timeout(limit: std::time::Duration, sql: &str) -> Self {
        Error::Timeout {
            limit,
            sql: truncate_sql(sql),
        }
    }

    /// Builds an [`Error::PoolTimeout`]; `source` is the last connect failure, if any.
    pub fn pool_timeout(waited: std::time::Duration, source: Option<Error>) -> Self {
        Error::PoolTimeout {
            waited,
            source: source.map(Box::new),
        }
    }

    /// Builds an [`Error::Connect`].
    pub fn connect(
        host: impl Into<String>,
        port: u16,
        database: impl Into<String>,
        attempts: u32,
        source: BoxError,
    ) -> Self {
        Error::Connect {
            host: host.into(),
            port,
            database: database.into(),
            attempts,
            source,
        }
    }

    /// Builds an [`Error::Io`]: `context` says what was being done.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }

    /// Builds an [`Error::ModuleOrder`].
    pub fn module_order(message: impl Into<String>) -> Self {
        Error::ModuleOrder {
            message: message.into(),
        }
    }

    /// Builds an [`Error::TestSetup`].
    pub fn test_setup(what: impl Into<String>, message: impl Into<String>) -> Self {
        Error::TestSetup {
            what: what.into(),
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
            field: None,
        }
    }

    /// Names the Rust field a column was read for (`User.email`, `(i64, String).1`) in an
    /// [`Error::Decode`] or [`Error::ColumnNotFound`] that does not name one yet; other errors,
    /// and errors that already name a field (a nested, more precise one), pass through.
    /// [`FromRow`](crate::FromRow) implementations call it; the derive does.
    pub fn in_field(mut self, field: impl FnOnce() -> String) -> Self {
        if let Error::Decode {
            field: f @ None, ..
        }
        | Error::ColumnNotFound {
            field: f @ None, ..
        } = &mut self
        {
            *f = Some(field());
        }
        self
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
