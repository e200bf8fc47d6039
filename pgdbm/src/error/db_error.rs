//! [`DbError`]: a server error with its SQLSTATE and fields, shown without input values.

use super::ErrorKind;

/// A server error: SQLSTATE, message and the fields PostgreSQL reports with it.
///
/// Its `Display` and `Debug` texts never show input values: the values bound to the statement are
/// hidden in every field by the driver ([`Error::redact_params`](super::Error::redact_params)); `DETAIL` (which can also quote
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
    /// The statement that failed, cut to [`MAX_SQL_IN_ERROR`](crate::MAX_SQL_IN_ERROR) characters.
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
    pub(super) fn hide(&mut self, secrets: &crate::redact::Secrets) {
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
