//! pgdbm behind a real PgBouncer in transaction mode (`pgdbm_testing::PgBouncer`: pool size 2,
//! `ignore_startup_parameters` empty): the checks that only mean something through a pooler
//! (named `pooler_*`; each routes its own pools through the test binary's PgBouncer, whatever
//! context it is given), and the list of suite checks that cannot apply through one
//! ([`pooler_exclusion`]).

use std::time::Duration;

use pgdbm::prelude::*;
use pgdbm::{Database, Error, Pooler, Result};

use crate::Ctx;

/// Why check `name` does not apply when the whole suite runs through a transaction pooler
/// ([`pooler_tests!`](crate::pooler_tests)), or `None` when it runs there too.
pub fn pooler_exclusion(name: &str) -> Option<&'static str> {
    const SERVER_SESSION: &str = "it looks at the server session of the client's own connection \
        (pg_backend_pid, pg_stat_activity, pg_terminate_backend); behind a transaction pooler a \
        client has no server session of its own";
    Some(match name {
        n if n.starts_with("pooler_") => "it routes its own pools through PgBouncer",
        "statement_cache_prepares_once" => {
            "there is no statement cache behind a transaction pooler, by design \
             (pooler_statements_are_unnamed checks that none is prepared)"
        }
        "server_settings_applied"
        | "server_setting_values_arrive_verbatim"
        | "server_setting_cannot_add_settings" => {
            "server settings are session settings: behind a transaction pooler they are SET \
             LOCAL in the transactions pgdbm opens (pooler_transactions_carry_the_guardrails), \
             not set for autocommit statements"
        }
        "lock_timeout_is_typed" => {
            "it expects lock_timeout on an autocommit statement, which a transaction pooler \
             cannot carry (transactions pgdbm opens have it: \
             pooler_transactions_carry_the_guardrails)"
        }
        "integer_binding" => {
            "integers are declared int8 behind a transaction pooler (no server round trip to \
             learn the parameter types), so an out-of-range value is the server's 22003 instead \
             of the client's Encode error"
        }
        "bad_parameters" => {
            "parameter types are declared by the client behind a transaction pooler, so a \
             count mismatch is found by the server (pooler_parameter_count_is_typed checks the \
             error)"
        }
        "statement_timeout_cancels"
        | "terminated_connections_replaced"
        | "max_lifetime_honoured"
        | "acquire_timeout_names_connect_error" => SERVER_SESSION,
        "blocking_queries_found" | "cancelled_statement_is_not_reused_busy" => {
            "it needs three server connections at once (a lock holder, a waiter and an \
             observer); PgBouncer's pool has two"
        }
        "migrate_lock_wait_bounded_and_cancellable"
        | "migrate_lock_waiter_holds_no_snapshot"
        | "migrate_concurrent_runs_with_concurrent_index" => {
            "it checks the session-lock protocol of migrations without a pooler; behind a \
             transaction pooler each file takes pg_advisory_xact_lock in its own transaction \
             (pooler_migrators_race checks it)"
        }
        _ => return None,
    })
}

/// A database handle through PgBouncer on the check's schema, with `change` applied to the
/// configuration.
async fn pooled(
    ctx: &Ctx,
    change: impl FnOnce(pgdbm::DatabaseConfigBuilder) -> pgdbm::DatabaseConfigBuilder,
) -> Result<Database> {
    let config = ctx.pooled_config_with(change).await?;
    assert_eq!(config.pooler(), Pooler::Transaction);
    Database::owning(ctx.connect(config).await?, Some(&ctx.schema))
}

/// pgdbm connects through a PgBouncer that refuses the startup parameter `options`
/// (`ignore_startup_parameters` empty), and `application_name` still reaches the server.
///
/// # Errors
///
/// Any unexpected query error.
pub async fn pooler_connects_without_options(ctx: &Ctx) -> Result<()> {
    let db = pooled(ctx, |b| b.application_name("pgdbm_pooler_app")).await?;
    let one: i32 = db.fetch_value("SELECT 1", &[]).await?;
    assert_eq!(one, 1);
    let app: String = db
        .fetch_value("SELECT current_setting('application_name')", &[])
        .await?;
    assert_eq!(app, "pgdbm_pooler_app");
    db.close().await;
    Ok(())
}

/// Inside a transaction pgdbm opens through the pooler, the guardrails and server settings are
/// in force (`SET LOCAL` right after `BEGIN`), and they do not leak to the server connection
/// afterwards.
///
/// # Errors
///
/// Any unexpected query error.
pub async fn pooler_transactions_carry_the_guardrails(ctx: &Ctx) -> Result<()> {
    let db = pooled(ctx, |b| {
        b.statement_timeout(Some(Duration::from_millis(4_321)))
            .lock_timeout(Some(Duration::from_millis(1_234)))
            .server_setting("work_mem", "3MB")
    })
    .await?;
    let tx = db.begin().await?;
    let timeout: String = tx.fetch_value("SHOW statement_timeout", &[]).await?;
    assert_eq!(timeout, "4321ms");
    let lock: String = tx.fetch_value("SHOW lock_timeout", &[]).await?;
    assert_eq!(lock, "1234ms");
    let work_mem: String = tx.fetch_value("SHOW work_mem", &[]).await?;
    assert_eq!(work_mem, "3MB");
    tx.commit().await?;
    // Outside, on whatever server connection: the server's own defaults, not the SET LOCALs.
    for _ in 0..4 {
        let timeout: String = db.fetch_value("SHOW statement_timeout", &[]).await?;
        assert_ne!(
            timeout, "4321ms",
            "a SET LOCAL leaked out of its transaction"
        );
    }
    db.close().await;
    Ok(())
}

/// A transaction through the pooler keeps its server connection: a row it locked stays locked
/// for other clients until it commits.
///
/// # Errors
///
/// Any unexpected query error.
pub async fn pooler_transactions_hold_their_server(ctx: &Ctx) -> Result<()> {
    let db = pooled(ctx, |b| b.max_connections(3)).await?;
    db.batch_execute(
        "CREATE TABLE {{tables.held}} (id int PRIMARY KEY, v int NOT NULL);
         INSERT INTO {{tables.held}} VALUES (1, 0)",
    )
    .await?;
    let holder = db.begin().await?;
    holder
        .execute("UPDATE {{tables.held}} SET v = 1 WHERE id = $1", params![1])
        .await?;
    for _ in 0..3 {
        let err = db
            .fetch_optional(
                "SELECT v FROM {{tables.held}} WHERE id = $1 FOR UPDATE NOWAIT",
                params![1],
            )
            .await
            .expect_err("the holder's row lock is held");
        assert_eq!(err.code(), Some("55P03"), "{err}");
        let v: i32 = holder
            .fetch_value("SELECT v FROM {{tables.held}} WHERE id = $1", params![1])
            .await?;
        assert_eq!(v, 1, "the holder sees its own update");
    }
    holder.commit().await?;
    let v: i32 = db
        .fetch_value(
            "SELECT v FROM {{tables.held}} WHERE id = $1 FOR UPDATE NOWAIT",
            params![1],
        )
        .await?;
    assert_eq!(v, 1);
    db.close().await;
    Ok(())
}

/// No statement is ever prepared under a name on the server connections behind the pooler, so
/// none is missing or duplicated when the next statement lands on another one.
///
/// # Errors
///
/// Any unexpected query error.
pub async fn pooler_statements_are_unnamed(ctx: &Ctx) -> Result<()> {
    let db = pooled(ctx, |b| b).await?;
    db.batch_execute("CREATE TABLE {{tables.u}} (id int, note text, tag uuid)")
        .await?;
    for i in 0..20 {
        db.execute(
            "INSERT INTO {{tables.u}} VALUES ($1, $2, $3)",
            params![i, format!("n{i}"), "6f1c2a1e-0d1b-4c57-9a53-1d5f0b0f1a2b"],
        )
        .await?;
        let tx = db.begin().await?;
        let named: i64 = tx
            .fetch_value("SELECT count(*) FROM pg_prepared_statements", &[])
            .await?;
        assert_eq!(named, 0, "a named statement on a server connection");
        tx.commit().await?;
    }
    let n: i64 = db
        .fetch_value(
            "SELECT count(*) FROM {{tables.u}} WHERE tag IS NOT NULL",
            &[],
        )
        .await?;
    assert_eq!(n, 20);
    db.close().await;
    Ok(())
}

/// A wrong number of parameters through the pooler is still an error, and never a connection
/// failure.
///
/// # Errors
///
/// Any unexpected query error.
pub async fn pooler_parameter_count_is_typed(ctx: &Ctx) -> Result<()> {
    let db = pooled(ctx, |b| b).await?;
    db.batch_execute("CREATE TABLE {{tables.p}} (id int, name text)")
        .await?;
    let err = db
        .execute("INSERT INTO {{tables.p}} VALUES ($1, $2)", params![1i32])
        .await
        .expect_err("one parameter for two");
    assert!(
        matches!(err, Error::ParameterCount { .. }),
        "{err} ({err:?})"
    );
    assert!(!err.is_connection_error(), "{err:?}");
    let one: i32 = db.fetch_value("SELECT 1", &[]).await?;
    assert_eq!(one, 1);
    db.close().await;
    Ok(())
}
