//! Secrets kept out of logs and errors: bound values and passwords never show up in an error's
//! text or in `tracing` output.

use std::sync::Arc;
use std::time::Duration;

use pgdbm::driver::Driver;
use pgdbm::monitor::MonitorOptions;
use pgdbm::prelude::*;
use pgdbm::{DatabaseConfig, Error, ErrorKind, Result, RetryPolicy, SharedPool};

use crate::Ctx;
use crate::capture::{CaptureSession, unique_token};
use crate::support::error_texts;

/// Asserts that none of `secrets` is in `errors` (their `Display`, `Debug` and causes) or in
/// `lines` (captured tracing output).
fn assert_no_secrets(secrets: &[&str], errors: &[(&str, Error)], lines: &[String]) {
    for (what, err) in errors {
        let text = error_texts(err);
        for secret in secrets {
            assert!(
                !text.contains(secret),
                "{what}: a secret leaked into the error: {text}"
            );
        }
    }
    for line in lines {
        for secret in secrets {
            assert!(
                !line.contains(secret),
                "a secret leaked into tracing output: {line}"
            );
        }
    }
}

/// No bound parameter value and no password appears in any error text (`Display`, `Debug`, the
/// whole source chain) or in any `tracing` output (spans and events of every task, at every
/// level, captured by a global subscriber), across: a unique violation (whose `DETAIL` quotes
/// the value), data exceptions whose server message quotes the input (an invalid enum label, a
/// failed `::int` cast, invalid JSON), a client-side bind error, failures inside a transaction
/// and through a monitored handle (default options; its history and error records included), a
/// statement canceled by `statement_timeout`, slow-query warnings, and connect failures with a
/// password (refused, retried with warnings).
///
/// A wrong password against a server that checks it is [`wrong_password_stays_secret`]
/// (password authentication needs a server of the test's own).
///
/// # Errors
///
/// Any unexpected query error.
pub async fn secrets_stay_out_of_logs_and_errors(ctx: &Ctx) -> Result<()> {
    let secret = unique_token("s3cr3t-param");
    let password = unique_token("s3cr3t-pw");
    let session = CaptureSession::open("secrets_stay_out_of_logs_and_errors");
    let errors = session
        .run(secret_failures(ctx, &secret, &password))
        .await?;
    let lines = session.lines();
    drop(session);
    assert!(
        lines.iter().any(|l| l.contains("pgdbm.query")),
        "the capture saw no pgdbm span: {lines:#?}"
    );
    assert!(
        lines.iter().any(|l| l.contains("connect failed")),
        "the capture saw no connect warning: {lines:#?}"
    );
    assert_no_secrets(&[&secret, &password], &errors, &lines);
    Ok(())
}

async fn secret_failures(
    ctx: &Ctx,
    secret: &str,
    password: &str,
) -> Result<Vec<(&'static str, Error)>> {
    let db = &ctx.db;
    db.batch_execute(
        "CREATE TYPE {{schema}}.mood AS ENUM ('calm');
         CREATE TABLE {{tables.secrets}} (
            id int PRIMARY KEY, email text UNIQUE, mood {{schema}}.mood, doc jsonb, n int)",
    )
    .await?;
    let mut errors = Vec::new();
    let insert = "INSERT INTO {{tables.secrets}} (id, email) VALUES ($1, $2)";
    db.execute(insert, params![1i32, secret]).await?;

    let err = db
        .execute(insert, params![2i32, secret])
        .await
        .expect_err("unique");
    assert!(err.is_unique_violation(), "{err}");
    let detail = err.as_database().and_then(|d| d.detail.clone());
    assert!(
        detail.is_some_and(|d| d.contains("<hidden>")),
        "the server's DETAIL should quote the value (that is what must not leak), hidden"
    );
    errors.push(("unique violation", err));

    let err = db
        .execute(
            "INSERT INTO {{tables.secrets}} (id, mood) VALUES ($1, $2)",
            params![3i32, secret],
        )
        .await
        .expect_err("not an enum label");
    assert_eq!(err.kind(), Some(ErrorKind::DataException), "{err}");
    assert!(
        err.as_database()
            .is_some_and(|d| d.message.contains("<hidden>")),
        "the server's message should quote the value (that is what must not leak), hidden: {err:?}"
    );
    errors.push(("invalid enum label", err));

    let cast = "SELECT $1::text::int4";
    let err = db
        .fetch_optional(cast, params![secret])
        .await
        .expect_err("not an integer");
    assert_eq!(err.kind(), Some(ErrorKind::DataException), "{err}");
    errors.push(("failed cast", err));

    let err = db
        .execute(
            "INSERT INTO {{tables.secrets}} (id, doc) VALUES ($1, $2)",
            params![4i32, secret],
        )
        .await
        .expect_err("not JSON");
    errors.push(("invalid json", err));

    let err = db
        .execute(
            "INSERT INTO {{tables.secrets}} (id, n) VALUES ($1, $2)",
            params![5i32, secret],
        )
        .await
        .expect_err("text into int");
    errors.push(("bind error", err));

    let tx = db.begin().await?;
    let err = tx
        .fetch_optional(cast, params![secret])
        .await
        .expect_err("not an integer");
    errors.push(("in a transaction", err));
    let err = tx
        .execute(insert, params![6i32, secret])
        .await
        .expect_err("aborted");
    errors.push(("aborted transaction", err));
    tx.rollback().await?;

    let monitored = db.monitored(MonitorOptions::default().slow_query_threshold(Duration::ZERO));
    monitored
        .fetch_optional("SELECT $1::text", params![secret])
        .await?;
    let err = monitored
        .execute(insert, params![2i32, secret])
        .await
        .expect_err("unique");
    errors.push(("monitored unique violation", err));
    let err = monitored
        .fetch_optional(cast, params![secret])
        .await
        .expect_err("not an integer");
    errors.push(("monitored failed cast", err));
    let monitor = monitored.monitor().expect("monitored handle");
    let records = format!(
        "{:?}{:?}{:?}",
        monitor.history(),
        monitor.errors(),
        monitored.metrics()
    );
    assert!(
        !records.contains(secret),
        "a parameter value leaked into the monitor's records"
    );

    // A pool whose config has a password (the test server may not ask for it).
    let config = ctx.config_with(|b| {
        b.password(password)
            .statement_timeout(Duration::from_millis(100))
            .max_connections(1)
    })?;
    assert!(!format!("{config:?}").contains(password));
    assert!(!config.masked_url().contains(password));
    let pool = ctx.connect(config).await?;
    let err = pool
        .fetch_optional("SELECT pg_sleep(2), $1::text", params![secret])
        .await
        .expect_err("canceled");
    assert!(err.is_query_canceled(), "{err}");
    errors.push(("statement timeout", err));
    pool.close().await;
    let err = pool
        .fetch_optional("SELECT $1::text", params![secret])
        .await
        .expect_err("closed");
    errors.push(("closed pool", err));

    // Refused connects with a password, retried (each retry is logged at warn).
    let config = ctx.config_with(|b| {
        b.host("127.0.0.1")
            .port(1)
            .password(password)
            .connect_timeout(Duration::from_secs(2))
            .retry(RetryPolicy::new(
                2,
                Duration::from_millis(10),
                2.0,
                Duration::from_millis(50),
            ))
    })?;
    let err = ctx.connect(config).await.expect_err("nothing listens");
    errors.push(("refused connect", err));
    Ok(errors)
}

/// A wrong password never shows up — nor the right one — in the connect error (`Display`,
/// `Debug`, causes) or in `tracing` output, and the failure is typed
/// ([`ErrorKind::InvalidAuthorization`], not retried); the same holds when the password of a
/// running pool's role changes and a new connection is refused (a pool timeout or connect error
/// naming the authentication failure).
///
/// `config` must reach a server of the test's own that checks passwords (e.g. `scram-sha-256`),
/// as a superuser, with the right password; the role's password is changed and restored.
///
/// # Errors
///
/// Any unexpected error.
pub async fn wrong_password_stays_secret<D: Driver>(config: DatabaseConfig) -> Result<()> {
    let right = config
        .password()
        .expect("the config must carry the password")
        .to_owned();
    let wrong = unique_token("wrong-pw");
    let changed = unique_token("changed-pw");
    let session = CaptureSession::open("wrong_password_stays_secret");
    let errors = session
        .run(password_failures::<D>(&config, &wrong, &changed))
        .await?;
    let lines = session.lines();
    drop(session);
    assert_no_secrets(&[&right, &wrong, &changed], &errors, &lines);
    Ok(())
}

async fn password_failures<D: Driver>(
    config: &DatabaseConfig,
    wrong: &str,
    changed: &str,
) -> Result<Vec<(&'static str, Error)>> {
    let mut errors = Vec::new();
    let retry = RetryPolicy::new(3, Duration::from_millis(10), 2.0, Duration::from_millis(50));
    let bad = config.to_builder().password(wrong).retry(retry).build()?;
    let err = crate::assert_err!(D::connect(&bad).await, Error::Connect { .. });
    assert_eq!(err.kind(), Some(ErrorKind::InvalidAuthorization), "{err}");
    assert!(err.to_string().contains("1 attempt"), "retried: {err}");
    errors.push(("wrong password", err));

    let none = config
        .to_builder()
        .without_password()
        .retry(retry)
        .build()?;
    let err = crate::assert_err!(D::connect(&none).await, Error::Connect { .. });
    // Retrying cannot make a password appear: one attempt, and the error says what is missing.
    assert!(err.to_string().contains("1 attempt"), "retried: {err}");
    let text = error_texts(&err).to_lowercase();
    assert!(
        text.contains("password"),
        "should name the password: {text}"
    );
    errors.push(("no password", err));

    let pool_config = config
        .to_builder()
        .max_connections(1)
        .min_connections(0)
        .acquire_timeout(Duration::from_secs(1))
        .build()?;
    let pool: SharedPool = Arc::new(D::connect(&pool_config).await?);
    let err = pool
        .fetch_optional("SELECT 1/0", &[])
        .await
        .expect_err("division by zero");
    errors.push(("query error", err));

    // The role's password changes under the running pool; its next new connection is refused.
    let user = pool_config.user().replace('"', "\"\"");
    let right = config.password().unwrap_or_default().replace('\'', "''");
    pool.batch_execute(&format!("ALTER ROLE \"{user}\" PASSWORD '{changed}'"))
        .await?;
    let mut conn = pool.acquire().await?;
    conn.discard();
    drop(conn);
    let err = pool
        .fetch_optional("SELECT 1", &[])
        .await
        .expect_err("the password changed");
    assert!(err.is_connection_error(), "{err} ({err:?})");
    let text = error_texts(&err);
    assert!(
        text.contains("password authentication failed"),
        "the cause is missing: {text}"
    );
    errors.push(("password changed", err));
    pool.close().await;

    let fixed = config.to_builder().password(changed).build()?;
    let admin: SharedPool = Arc::new(D::connect(&fixed).await?);
    admin
        .batch_execute(&format!("ALTER ROLE \"{user}\" PASSWORD '{right}'"))
        .await?;
    admin.close().await;
    Ok(errors)
}
