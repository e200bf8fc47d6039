//! Server errors are classified by SQLSTATE and carry their context without leaking values.

use pgdbm::prelude::*;
use pgdbm::{Error, ErrorKind, Result};

use super::Ctx;

/// Unique, foreign-key, not-null and check violations, syntax errors and undefined tables map to
/// their [`ErrorKind`]; constraint and table names are kept; `DETAIL` (which quotes values) is not
/// in the message; long SQL is cut.
///
/// # Errors
///
/// Any unexpected query error.
pub async fn database_errors_are_classified(ctx: &Ctx) -> Result<()> {
    let db = &ctx.db;
    db.batch_execute(
        "CREATE TABLE {{tables.parent}} (id int PRIMARY KEY);
         CREATE TABLE {{tables.child}} (
            id int PRIMARY KEY,
            parent int REFERENCES {{tables.parent}} (id),
            email text NOT NULL UNIQUE,
            age int CHECK (age >= 0))",
    )
    .await?;
    db.execute("INSERT INTO {{tables.parent}} VALUES (1)", &[])
        .await?;
    let insert = "INSERT INTO {{tables.child}} VALUES ($1, $2, $3, $4)";
    db.execute(insert, params![1i32, 1i32, "private@example.com", 3i32])
        .await?;

    let err = db
        .execute(insert, params![2i32, 1i32, "private@example.com", 3i32])
        .await
        .expect_err("unique");
    assert!(err.is_unique_violation(), "{err}");
    let dbe = err.as_database().expect("a server error");
    assert_eq!(dbe.constraint.as_deref(), Some("child_email_key"));
    assert_eq!(dbe.table.as_deref(), Some("child"));
    // The DETAIL quotes the duplicated value; bound values are hidden in every field.
    assert_eq!(
        dbe.detail.as_deref(),
        Some("Key (email)=(<hidden>) already exists.")
    );
    assert!(
        !err.to_string().contains("private@example.com"),
        "value leaked: {err}"
    );
    assert!(err.to_string().contains("23505"), "{err}");

    let fk = db
        .execute(insert, params![3i32, 9i32, "b", 1i32])
        .await
        .expect_err("fk");
    assert!(fk.is_foreign_key_violation(), "{fk}");
    let nn = db
        .execute(insert, params![4i32, 1i32, None::<String>, 1i32])
        .await
        .expect_err("not null");
    assert!(nn.is_not_null_violation(), "{nn}");
    let ck = db
        .execute(insert, params![5i32, 1i32, "c", -1i32])
        .await
        .expect_err("check");
    assert!(ck.is_check_violation(), "{ck}");
    let syntax = db.execute("SELEC 1", &[]).await.expect_err("syntax");
    assert_eq!(syntax.kind(), Some(ErrorKind::SyntaxError));
    let missing = db
        .fetch_all("SELECT * FROM {{tables.no_such_table}}", &[])
        .await
        .expect_err("undefined table");
    assert_eq!(missing.kind(), Some(ErrorKind::UndefinedTable));

    let long_sql = format!("SELECT 1/0 AS x{}", " ".repeat(1000));
    let err = db
        .execute(&long_sql, &[])
        .await
        .expect_err("division by zero");
    assert_eq!(err.kind(), Some(ErrorKind::DataException));
    assert!(
        err.to_string().len() < 600,
        "SQL not truncated: {}",
        err.to_string().len()
    );
    assert!(matches!(err, Error::Database(_)));
    Ok(())
}
