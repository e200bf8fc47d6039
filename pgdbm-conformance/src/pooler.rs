//! pgdbm behind a real PgBouncer in transaction mode (`pgdbm_testing::PgBouncer`: pool size 2,
//! `ignore_startup_parameters` empty): the checks that only mean something through a pooler
//! (named `pooler_*`; each routes its own pools through the test binary's PgBouncer, whatever
//! context it is given), and the list of suite checks that cannot apply through one
//! ([`pooler_exclusion`]).

use std::time::Duration;

use pgdbm::prelude::*;
use pgdbm::{Database, Error, Pooler, Result, Row};

use crate::Ctx;

/// Why check `name` does not apply when the whole suite runs through a transaction pooler
/// ([`pooler_tests!`](crate::pooler_tests)), or `None` when it runs there too.
pub fn pooler_exclusion(name: &str) -> Option<&'static str> {
    const SERVER_SESSION: &str = "it looks at the server session of the client's own connection \
        (pg_backend_pid, pg_stat_activity, pg_terminate_backend); behind a transaction pooler a \
        client has no server session of its own";
    const LISTENER: &str = "a Listener needs a server session of its own and is refused \
        behind a transaction pooler (listener_refuses_a_transaction_pooler checks the refusal)";
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
        // OPEN: with sqlx through PgBouncer a discarded connection is not reported closed
        // within the check's 2 s (created 3, closed 0, size 3); not understood yet.
        "pool_counters_add_up" => {
            "OPEN, not a design limit: through PgBouncer the sqlx pool does not report a \
             discarded connection closed within the check's bound; to be investigated"
        }
        "health_check_fresh_pool" => {
            "it expects a healthy report, which behind a transaction pooler needs a server-side \
             statement_timeout for autocommit statements; the test server has none, so the \
             report is degraded by design (pooler_health_check_names_the_missing_guardrail)"
        }
        "statement_timeout_cancels"
        | "max_queries_recycles_the_connection"
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
        n if n.starts_with("listener_") && n != "listener_refuses_a_transaction_pooler" => LISTENER,
        "notify_in_transaction_is_delivered_on_commit"
        | "notify_payload_is_never_recorded"
        | "cancelled_listener_recv_loses_nothing" => LISTENER,
        "migrate_apply_one_in_order"
        | "migrate_baseline_forget_repair"
        | "migrate_file_without_statement_is_refused"
        | "migrate_ledger_changes_take_the_lock"
        | "migrate_recent_history"
        | "cancelled_ledger_changes_leak_nothing" => {
            "OPEN: forget/baseline/repair/apply_one take the session migration lock, which is \
             refused behind a transaction pooler (Error::Pooler); they do not yet run over \
             direct_url by themselves as apply does"
        }
        "cancel_never_hits_a_later_statement"
        | "dropped_statement_is_cancelled_on_the_server"
        | "cut_script_leaves_no_transaction"
        | "with_timeout_gives_a_typed_error"
        | "command_timeout_bounds_every_call"
        | "cancelled_bounded_calls_leak_nothing"
        | "cancelled_statement_in_transaction_aborts_it"
        | "fetch_streams_rows_in_order"
        | "dropped_stream_cancels_the_rest"
        | "cancelled_streams_leak_nothing"
        | "streams_are_monitored" => {
            "OPEN: the cancellation of abandoned statements, per-call timeouts and row streams \
             are not yet integrated with the transaction-pooler mode (streams use named \
             statements; recovery after a cancel waits on a server connection the pooler may \
             have moved)"
        }
        "domains_and_their_arrays"
        | "enum_parameters_and_columns"
        | "infinite_dates_and_timestamps"
        | "interval_values"
        | "money_as_minor_units"
        | "multi_dimensional_arrays"
        | "network_types_as_text"
        | "numeric_parameters"
        | "timestamp_kinds_explained" => {
            "OPEN: behind a transaction pooler tokio-postgres declares parameter types from the \
             values (unnamed one-round-trip statements); the newer types (interval, enums, \
             domains, infinity, network, money, numeric from floats, nested arrays) are not yet \
             declared on that path"
        }
        "enum_unknown_label_is_a_decode_error" => {
            "OPEN: a result column of a type tokio-postgres does not know by OID (an enum, its \
             array) makes it look the type up with named statements in two exchanges, which a \
             transaction pooler may run on two server connections (`prepared statement \"sN\" \
             does not exist`)"
        }
        "second_pool_to_same_database_and_role_warns" => {
            "it logs in as a role of its own, which the test PgBouncer's auth_file does not list \
             (the registry is the same with or without a pooler)"
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

/// No statement prepared under a name is left on the server connections behind the pooler
/// between statements, so none is missing or duplicated when the next statement lands on
/// another one.
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
        // (A driver may prepare the statement it runs under a name for the time of that
        // statement: not counted.)
        let named: i64 = tx
            .fetch_value(
                "SELECT count(*) FROM pg_prepared_statements                  WHERE statement NOT LIKE '%pg_prepared_statements%'",
                &[],
            )
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

/// Migration files that each record their one run in table `runs`.
fn counted_source(files: usize) -> Result<pgdbm::MigrationSource> {
    let mut pairs = vec![(
        "001_runs.sql".to_owned(),
        "CREATE TABLE {{tables.runs}} (file text NOT NULL);\
         INSERT INTO {{tables.runs}} VALUES ('001_runs.sql');"
            .to_owned(),
    )];
    for i in 2..=files {
        let name = format!("{i:03}_step.sql");
        pairs.push((
            name.clone(),
            format!(
                "SELECT pg_sleep(0.01); CREATE TABLE {{{{tables.t{i}}}}} (id int);\
                 INSERT INTO {{{{tables.runs}}}} VALUES ('{name}');"
            ),
        ));
    }
    pgdbm::MigrationSource::from_pairs(pairs)
}

/// What a pgdbm for Python (≥ 0.4.1) service does behind a transaction pooler, written with
/// plain statements: per file, a transaction that takes the transaction-level lock, reads the
/// ledger and applies the file if it is missing.
async fn python_style_racer(
    db: &Database,
    module: &str,
    source: &pgdbm::MigrationSource,
) -> Result<usize> {
    let mut applied = 0;
    for m in source.migrations() {
        let tx = db.begin().await?;
        tx.execute(
            "SELECT pg_advisory_xact_lock(hashtext('pgdbm_migration_' || $1))",
            params![module],
        )
        .await?;
        let exists = tx
            .fetch_optional(
                "SELECT 1 FROM {{tables.schema_migrations}} \
                 WHERE filename = $1 AND (module_name = $2 OR module_name IS NULL)",
                params![m.name(), module],
            )
            .await;
        let exists = match exists {
            Ok(row) => row.is_some(),
            // No ledger yet: the Rust run creates it first; try again next time.
            Err(e) if e.code() == Some("42P01") => {
                tx.rollback().await?;
                return Ok(applied);
            }
            Err(e) => return Err(e),
        };
        if !exists {
            tx.batch_execute(m.sql()).await?;
            tx.execute(
                "INSERT INTO {{tables.schema_migrations}} (filename, checksum, module_name) \
                 VALUES ($1, $2, $3)",
                params![m.name(), m.checksum(), module],
            )
            .await?;
            applied += 1;
        }
        tx.commit().await?;
    }
    Ok(applied)
}

/// Four migrators through the pooler (two pools, two tasks each) and a racer using the raw
/// transaction-level lock protocol as pgdbm for Python does apply each file exactly once.
///
/// # Errors
///
/// Any unexpected query or migration error.
pub async fn pooler_migrators_race(ctx: &Ctx) -> Result<()> {
    let module = format!("pooler_race_{}", ctx.schema);
    let module = &module[..module.len().min(90)];
    let source = counted_source(8)?;
    let a = pooled(ctx, |b| b.max_connections(4)).await?;
    let b = pooled(ctx, |b| b.max_connections(4)).await?;
    // The ledger must exist for the Python-style racer (pgdbm for Python creates it too).
    a.migrator().apply(module, &counted_source(1)?).await?;
    let mut tasks = Vec::new();
    for db in [&a, &b, &a, &b] {
        let db = db.clone();
        let source = source.clone();
        let module = module.to_owned();
        tasks.push(tokio::spawn(async move {
            db.migrator()
                .apply(&module, &source)
                .await
                .map(|r| r.applied.len())
        }));
    }
    let python = {
        let db = b.clone();
        let source = source.clone();
        let module = module.to_owned();
        tokio::spawn(async move { python_style_racer(&db, &module, &source).await })
    };
    let mut applied = 0;
    for task in tasks {
        applied += task.await.expect("migrator panicked")?;
    }
    applied += python.await.expect("racer panicked")?;
    assert_eq!(applied, 7, "files 002–008 applied once in all");
    let per_file: Vec<Row> = a
        .fetch_all(
            "SELECT file, count(*) FROM {{tables.runs}} GROUP BY file HAVING count(*) <> 1",
            &[],
        )
        .await?;
    assert!(
        per_file.is_empty(),
        "a file ran more than once: {per_file:?}"
    );
    let ledger: i64 = a
        .fetch_value(
            "SELECT count(*) FROM {{tables.schema_migrations}} WHERE module_name = $1",
            params![module],
        )
        .await?;
    assert_eq!(ledger, 8);
    // No lock left behind on any server connection.
    let locks: i64 = a
        .fetch_value(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' \
             AND objid = hashtext('pgdbm_migration_' || $1)::oid",
            params![module],
        )
        .await?;
    assert_eq!(locks, 0);
    a.close().await;
    b.close().await;
    Ok(())
}

/// A `-- pgdbm:no-transaction` migration through a transaction pooler: without a direct
/// connection the run fails before anything is applied, naming the file and `direct_url`; with
/// one it is applied there.
///
/// # Errors
///
/// Any unexpected query or migration error.
pub async fn pooler_no_transaction_migration_uses_direct_url(ctx: &Ctx) -> Result<()> {
    let source = pgdbm::MigrationSource::from_pairs(vec![
        ("001_t.sql", "CREATE TABLE {{tables.nt}} (id int);"),
        (
            "002_index.sql",
            "-- pgdbm:no-transaction\nVACUUM {{tables.nt}};\nINSERT INTO {{tables.nt}} VALUES (1);",
        ),
    ])?;
    let module = format!("pooler_nt_{}", ctx.schema);
    let module = &module[..module.len().min(90)];
    // Without a direct_url.
    let config = ctx.pooled_config_with(|b| b).await?;
    let without = config.to_builder().without_direct_url().build()?;
    let db = Database::owning(ctx.connect(without).await?, Some(&ctx.schema))?;
    let err = db
        .migrator()
        .apply(module, &source)
        .await
        .expect_err("a no-transaction file needs the direct connection");
    assert!(matches!(err, Error::Pooler { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains("002_index.sql") && text.contains("direct_url"),
        "{text}"
    );
    let table: bool = db
        .fetch_value(
            "SELECT to_regclass($1) IS NOT NULL",
            params![format!("{}.nt", ctx.schema)],
        )
        .await?;
    assert!(!table, "nothing may be applied before the error");
    db.close().await;
    // With one (what PgBouncer::route sets).
    let db = pooled(ctx, |b| b).await?;
    let report = db.migrator().apply(module, &source).await?;
    assert_eq!(report.applied.len(), 2);
    // VACUUM cannot run inside a transaction: it ran on the direct connection.
    let rows: i64 = db
        .fetch_value("SELECT count(*) FROM {{tables.nt}}", &[])
        .await?;
    assert_eq!(rows, 1);
    db.close().await;
    Ok(())
}

/// Eight clients, 1,000 mixed statements and transactions each, through the pooler's two
/// server connections: no error, and every acknowledged write is there.
///
/// # Errors
///
/// Any query error.
pub async fn pooler_mixed_load(ctx: &Ctx) -> Result<()> {
    let db = pooled(ctx, |b| b.max_connections(8)).await?;
    db.batch_execute(
        "CREATE TABLE {{tables.load}} (client int, n int, note text, tag uuid, doc jsonb, \
         PRIMARY KEY (client, n))",
    )
    .await?;
    let mut tasks = Vec::new();
    for client in 0..8i32 {
        let db = db.clone();
        tasks.push(tokio::spawn(async move {
            let mut written = 0i64;
            for n in 0..1_000i32 {
                match n % 5 {
                    0 | 1 => {
                        db.execute(
                            "INSERT INTO {{tables.load}} VALUES ($1, $2, $3, $4, $5)",
                            params![
                                client,
                                n,
                                format!("c{client}n{n}"),
                                "0e4b5a3c-7f7e-4a53-9b7a-0f3a8b0c5d11",
                                serde_json::json!({"n": n})
                            ],
                        )
                        .await?;
                        written += 1;
                    }
                    2 => {
                        let got: Option<String> = db
                            .fetch_optional(
                                "SELECT note FROM {{tables.load}} WHERE client = $1 AND n = $2",
                                params![client, n - 1],
                            )
                            .await?
                            .map(|r| r.get(0))
                            .transpose()?;
                        assert_eq!(got, Some(format!("c{client}n{}", n - 1)));
                    }
                    3 => {
                        let tx = db.begin().await?;
                        tx.execute(
                            "INSERT INTO {{tables.load}} (client, n, note) VALUES ($1, $2, $3)",
                            params![client, n, "tx"],
                        )
                        .await?;
                        let mine: i64 = tx
                            .fetch_value(
                                "SELECT count(*) FROM {{tables.load}} WHERE client = $1",
                                params![client],
                            )
                            .await?;
                        assert_eq!(mine, written + 1);
                        tx.commit().await?;
                        written += 1;
                    }
                    _ => {
                        let rows = db
                            .fetch_all(
                                "SELECT n, doc FROM {{tables.load}} WHERE client = $1 \
                                 ORDER BY n DESC LIMIT 3",
                                params![client],
                            )
                            .await?;
                        assert!(!rows.is_empty());
                    }
                }
            }
            Ok::<i64, Error>(written)
        }));
    }
    let mut total = 0;
    for task in tasks {
        total += task.await.expect("client panicked")?;
    }
    let stored: i64 = db
        .fetch_value("SELECT count(*) FROM {{tables.load}}", &[])
        .await?;
    assert_eq!(stored, total);
    assert_eq!(total, 8 * 600);
    db.close().await;
    Ok(())
}

/// An autocommit `pg_sleep` longer than `statement_timeout` through the pooler ends with a typed
/// `57014` near the timeout, and the pool goes on; inside a transaction the server's own
/// `statement_timeout` (SET LOCAL) cancels it.
///
/// # Errors
///
/// Any unexpected query error.
pub async fn pooler_statement_timeout_cancels(ctx: &Ctx) -> Result<()> {
    let db = pooled(ctx, |b| {
        b.statement_timeout(Some(Duration::from_millis(300)))
            .max_connections(2)
    })
    .await?;
    let started = std::time::Instant::now();
    let err = db
        .execute("SELECT pg_sleep(5)", &[])
        .await
        .expect_err("longer than statement_timeout");
    assert!(err.is_query_canceled(), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(4), "not cut short");
    let tx = db.begin().await?;
    let err = tx
        .execute("SELECT pg_sleep(5)", &[])
        .await
        .expect_err("longer than the SET LOCAL statement_timeout");
    assert!(err.is_query_canceled(), "{err:?}");
    tx.rollback().await?;
    assert!(started.elapsed() < Duration::from_secs(4), "not cut short");
    let one: i32 = db.fetch_value("SELECT 1", &[]).await?;
    assert_eq!(one, 1);
    db.close().await;
    Ok(())
}

/// Behind a transaction pooler, `health_check` says when autocommit statements run without a
/// server-side `statement_timeout`, and what to configure.
///
/// # Errors
///
/// Any unexpected query error.
pub async fn pooler_health_check_names_the_missing_guardrail(ctx: &Ctx) -> Result<()> {
    let db = pooled(ctx, |b| b).await?;
    let server: String = db
        .fetch_value("SELECT current_setting('statement_timeout')", &[])
        .await?;
    let report = db.health_check().await;
    let named = report
        .reasons
        .iter()
        .any(|r| r.contains("statement_timeout") && r.contains("ALTER ROLE"));
    // The test server runs without a default statement_timeout unless configured otherwise.
    assert_eq!(named, server == "0", "{:?}", report.reasons);
    if server == "0" {
        assert_eq!(report.status, pgdbm::HealthStatus::Degraded);
    }
    db.close().await;
    Ok(())
}
