//! Unit tests of the error type: classification, texts, redaction.

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
    let err = Error::from(DbError::new("22001", message)).redact_params(crate::params![1i32, "e"]);
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
