//! No bound value and no row value reaches an error's text, whatever the SQLSTATE class, the
//! quoting, or the path the statement took (the `Database` handle, the pool's own `Executor`
//! methods, a checked-out connection, a transaction, `copy_in`), nor the monitor's records or
//! `tracing` output; row mapping errors name the column and types instead of the value.

use serde::Deserialize;

use pgdbm::monitor::MonitorOptions;
use pgdbm::prelude::*;
use pgdbm::{Error, ErrorKind, Executor, Json, Result, Value};

use super::Ctx;
use crate::capture::{CaptureSession, unique_token};
use crate::support::error_texts;

/// Everything an error can show or hand out: `Display`, `Debug`, every `source()` in its chain,
/// and the text fields of a server error (which must not hold a bound value either).
fn all_texts(err: &Error) -> String {
    let mut text = error_texts(err);
    if let Some(db) = err.as_database() {
        text.push_str(&format!(
            "\n{:?} {:?} {:?} {:?} {:?} {:?} {:?}",
            db.message, db.detail, db.hint, db.schema, db.table, db.column, db.constraint
        ));
    }
    text
}

/// Asserts `secret` (compared ignoring ASCII case: the server folds identifiers) is nowhere in
/// `err`.
fn assert_hidden(what: &str, err: &Error, secret: &str) {
    let text = all_texts(err);
    assert!(
        !text
            .to_ascii_lowercase()
            .contains(&secret.to_ascii_lowercase()),
        "{what}: a value leaked into the error: {text}"
    );
}

/// A secret that contains double quotes, as the server will quote it: `x"…"y`.
fn quoted_secret() -> (String, String) {
    let secret = unique_token("SECRET-q");
    (format!("x\"{secret}\"y"), secret)
}

/// `SELECT $1::text::int4` with a value holding double quotes (`x"SECRET"y`, quoted by the
/// server as `"x"SECRET"y"`, class 22): nothing of it shows, on every path a statement can take —
/// the `Database` handle, the pool's own `Executor` methods, a checked-out connection, a
/// transaction — and the message still says what failed.
///
/// # Errors
///
/// Any unexpected query error.
pub async fn redaction_hides_quoted_values(ctx: &Ctx) -> Result<()> {
    let (value, secret) = quoted_secret();
    let sql = "SELECT $1::text::int4";
    let check = |what: &str, err: Error| {
        assert_eq!(err.kind(), Some(ErrorKind::DataException), "{what}: {err}");
        assert_hidden(what, &err, &secret);
        assert!(
            err.to_string()
                .contains("invalid input syntax for type integer"),
            "{what}: {err}"
        );
        assert!(err.to_string().contains("<hidden>"), "{what}: {err}");
    };
    let err = ctx
        .db
        .fetch_optional(sql, params![value])
        .await
        .expect_err("db");
    check("database", err);
    let err = ctx
        .pool
        .fetch_optional(sql, params![value])
        .await
        .expect_err("pool");
    check("pool", err);
    let err = ctx
        .pool
        .execute(sql, params![value])
        .await
        .expect_err("pool execute");
    check("pool execute", err);
    let conn = ctx.pool.acquire().await?;
    let err = conn
        .fetch_all(sql, params![value])
        .await
        .expect_err("connection");
    check("connection", err);
    drop(conn);
    let tx = ctx.db.begin().await?;
    let err = tx
        .fetch_one(sql, params![value])
        .await
        .expect_err("transaction");
    check("transaction", err);
    tx.rollback().await?;

    // A value read from a table, not bound: the class-22 message hides its quoted input.
    ctx.db
        .batch_execute("CREATE TABLE {{tables.raw}} (v text)")
        .await?;
    ctx.db
        .execute("INSERT INTO {{tables.raw}} VALUES ($1)", params![value])
        .await?;
    let err = ctx
        .db
        .fetch_all("SELECT v::int4 FROM {{tables.raw}}", &[])
        .await
        .expect_err("row value cast");
    assert_eq!(err.kind(), Some(ErrorKind::DataException), "{err}");
    let shown = format!("{err}\n{err:?}");
    assert!(!shown.contains(&secret), "a row value leaked: {shown}");
    Ok(())
}

/// The server quotes its input in other classes than 22 too: `nextval($1)` on a missing name
/// (42P01, the name folded to lower case), `$1::regclass`, a unique violation's `DETAIL` (23505,
/// also from `copy_in`), a check violation's `Failing row contains (…)` (23514, long values cut
/// by the server). No such value is in any text field of the error; identifiers that are not
/// values stay (`relation "…no_such_table" does not exist`, the constraint's name).
///
/// # Errors
///
/// Any unexpected query error.
pub async fn redaction_hides_values_in_every_class(ctx: &Ctx) -> Result<()> {
    let db = &ctx.db;
    let name = unique_token("Secret_Seq").replace('-', "_");
    let err = db
        .fetch_one("SELECT nextval($1::text)", params![name])
        .await
        .expect_err("no such sequence");
    assert_eq!(err.kind(), Some(ErrorKind::UndefinedTable), "{err}");
    assert_hidden("nextval", &err, &name);
    assert!(err.to_string().contains("<hidden>"), "{err}");
    let err = ctx
        .pool
        .fetch_optional("SELECT $1::text::regclass", params![name])
        .await
        .expect_err("no such relation");
    assert_eq!(err.kind(), Some(ErrorKind::UndefinedTable), "{err}");
    assert_hidden("regclass", &err, &name);

    // An identifier that is not a value is kept, parameters or not.
    let err = db
        .fetch_all(
            "SELECT count(*) FROM {{tables.no_such_table}} WHERE $1::text IS NOT NULL",
            params![name],
        )
        .await
        .expect_err("no such table");
    assert!(err.to_string().contains("no_such_table"), "{err}");

    db.batch_execute(
        "CREATE TABLE {{tables.people}} (
            id int PRIMARY KEY, email text UNIQUE, note text CHECK (length(note) < 10))",
    )
    .await?;
    let email = unique_token("secret-mail");
    let insert = "INSERT INTO {{tables.people}} (id, email, note) VALUES ($1, $2, $3)";
    db.execute(insert, params![1i32, email, None::<String>])
        .await?;
    let err = db
        .execute(insert, params![2i32, email, None::<String>])
        .await
        .expect_err("unique");
    assert!(err.is_unique_violation(), "{err}");
    assert_hidden("unique violation", &err, &email);
    let dbe = err.as_database().expect("a server error");
    assert_eq!(dbe.constraint.as_deref(), Some("people_email_key"));
    assert!(
        dbe.detail
            .as_deref()
            .is_some_and(|d| d.contains("<hidden>")),
        "the DETAIL quoted the value, hidden: {dbe:?}"
    );

    let long = format!("{}{}", unique_token("secret-long"), "z".repeat(100));
    let err = db
        .execute(insert, params![3i32, "other", long])
        .await
        .expect_err("check");
    assert!(err.is_check_violation(), "{err}");
    assert_hidden(
        "check violation (value cut by the server)",
        &err,
        &long[..40],
    );

    let err = db
        .copy_in(
            "people",
            &["id", "email"],
            &[vec![Value::Int4(4), Value::Text(email.clone())]],
        )
        .await
        .expect_err("unique in COPY");
    assert!(err.is_unique_violation(), "{err}");
    assert_hidden("copy_in", &err, &email);
    Ok(())
}

#[derive(Debug, Deserialize, FromRow)]
#[allow(dead_code)]
struct Counter {
    n: i64,
}

#[derive(Debug, Deserialize)]
#[allow(dead_code)]
struct Settings {
    level: u8,
    mode: Mode,
}

#[derive(Debug, Deserialize)]
#[allow(dead_code)]
enum Mode {
    Fast,
    Safe,
}

/// A row that does not fit the Rust type: `fetch_one_as`/`fetch_all_as`/`fetch_optional_as`
/// (`FromRow`) and `fetch_one_de`/`fetch_all_de`/`fetch_optional_de` (serde) over a text column
/// read into an `i64` field, and `Json<T>` over a document whose field has the wrong type or an
/// unknown enum variant. The error names the column (and field) and both types —
/// `cannot decode column n for field Counter.n: expected i64, found text`, `cannot decode column
/// n: expected i64, found a string` — never the value.
///
/// # Errors
///
/// Any unexpected query error.
pub async fn redaction_row_mapping_names_types_not_values(ctx: &Ctx) -> Result<()> {
    let db = &ctx.db;
    let secret = unique_token("SECRET-row");
    db.batch_execute("CREATE TABLE {{tables.rows}} (n text, doc jsonb, other jsonb)")
        .await?;
    db.execute(
        "INSERT INTO {{tables.rows}} VALUES ($1, $2, $3)",
        params![
            secret,
            serde_json::json!({"level": secret, "mode": "Fast"}),
            serde_json::json!({"level": 1, "mode": secret})
        ],
    )
    .await?;
    let select = "SELECT n FROM {{tables.rows}}";
    let errors = [
        (
            "fetch_one_as",
            db.fetch_one_as::<Counter>(select, &[]).await.unwrap_err(),
        ),
        (
            "fetch_all_as",
            db.fetch_all_as::<Counter>(select, &[]).await.unwrap_err(),
        ),
        (
            "fetch_optional_as",
            db.fetch_optional_as::<Counter>(select, &[])
                .await
                .unwrap_err(),
        ),
        (
            "pool fetch_one_as",
            ctx.pool
                .fetch_one_as::<Counter>("SELECT $1::text AS n", params![secret])
                .await
                .unwrap_err(),
        ),
    ];
    for (what, err) in &errors {
        assert!(matches!(err, Error::Decode { .. }), "{what}: {err:?}");
        assert_hidden(what, err, &secret);
        assert_eq!(
            err.to_string(),
            "cannot decode column n for field Counter.n: expected i64, found text",
            "{what}"
        );
    }
    let errors = [
        (
            "fetch_one_de",
            db.fetch_one_de::<Counter>(select, &[]).await.unwrap_err(),
        ),
        (
            "fetch_all_de",
            db.fetch_all_de::<Counter>(select, &[]).await.unwrap_err(),
        ),
        (
            "fetch_optional_de",
            db.fetch_optional_de::<Counter>(select, &[])
                .await
                .unwrap_err(),
        ),
        (
            "pool fetch_one_de",
            ctx.pool
                .fetch_one_de::<Counter>("SELECT $1::text AS n", params![secret])
                .await
                .unwrap_err(),
        ),
    ];
    for (what, err) in &errors {
        assert!(matches!(err, Error::Decode { .. }), "{what}: {err:?}");
        assert_hidden(what, err, &secret);
        assert_eq!(
            err.to_string(),
            "cannot decode column n: expected i64, found a string",
            "{what}"
        );
    }

    let row = db
        .fetch_one("SELECT doc, other FROM {{tables.rows}}", &[])
        .await?;
    let err = row.get::<Json<Settings>>("doc").unwrap_err();
    assert_hidden("Json<T> field of the wrong type", &err, &secret);
    let text = err.to_string();
    assert!(
        text.contains("column doc") && text.contains("`level`") && text.contains("u8"),
        "{text}"
    );
    let err = row.get::<Json<Settings>>("other").unwrap_err();
    assert_hidden("Json<T> unknown variant", &err, &secret);
    assert!(
        err.to_string().contains("`mode`") && err.to_string().contains("Fast"),
        "{err}"
    );
    Ok(())
}

/// The monitor records a failed statement's error text, and `tracing` output is captured while
/// statements fail with values in their server messages: no value shows in either.
///
/// # Errors
///
/// Any unexpected query error.
pub async fn redaction_monitor_and_logs(ctx: &Ctx) -> Result<()> {
    let (value, secret) = quoted_secret();
    let name = unique_token("Secret_Mon").replace('-', "_");
    let session = CaptureSession::open("redaction_monitor_and_logs");
    let monitored = ctx.db.monitored(MonitorOptions::default());
    let errors = session
        .run(async {
            let a = monitored
                .fetch_optional("SELECT $1::text::int4", params![value])
                .await
                .expect_err("cast");
            let b = monitored
                .fetch_optional("SELECT nextval($1::text)", params![name])
                .await
                .expect_err("nextval");
            [a, b]
        })
        .await;
    let lines = session.lines();
    drop(session);
    for err in &errors {
        assert_hidden("monitored", err, &secret);
        assert_hidden("monitored", err, &name);
    }
    let monitor = monitored.monitor().expect("a monitored handle");
    let recorded = monitor.errors();
    assert_eq!(recorded.len(), 2, "{recorded:?}");
    let records = format!(
        "{recorded:?}{:?}{:?}",
        monitor.history(),
        monitored.metrics()
    )
    .to_ascii_lowercase();
    for s in [&secret, &name] {
        assert!(
            !records.contains(&s.to_ascii_lowercase()),
            "a value leaked into the monitor's records: {records}"
        );
    }
    for line in &lines {
        let line = line.to_ascii_lowercase();
        for s in [&secret, &name] {
            assert!(
                !line.contains(&s.to_ascii_lowercase()),
                "a value leaked into tracing output: {line}"
            );
        }
    }
    Ok(())
}
