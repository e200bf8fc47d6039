//! Monitoring and observability: the monitored handle (history, slow queries, errors,
//! aggregates, parameters, metrics), `tracing` spans, EXPLAIN, health and diagnostics.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tracing::field::{Field, Visit};
use tracing::instrument::WithSubscriber;
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

use pgdbm::monitor::{HealthStatus, Monitor, MonitorOptions, Monitored, Operation};
use pgdbm::prelude::*;
use pgdbm::{Error, Result, Value};

use super::Ctx;

fn options(history: usize) -> MonitorOptions {
    MonitorOptions::default().history_size(history)
}

/// 8 tasks × 50 queries on a monitored handle with `history_size` 64 keep exactly 64 records
/// and count 400 statements under one template key.
///
/// # Errors
///
/// Any unexpected query error.
pub async fn monitor_history_bounded(ctx: &Ctx) -> Result<()> {
    let db = ctx.db.monitored(options(64));
    let sql = "SELECT $1::int4 + 1";
    let mut tasks = Vec::new();
    for t in 0..8i32 {
        let db = db.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..50i32 {
                let v: i32 = db.fetch_value(sql, params![t * 100 + i]).await?;
                assert_eq!(v, t * 100 + i + 1);
            }
            Ok::<_, Error>(())
        }));
    }
    for t in tasks {
        t.await.expect("task panicked")?;
    }
    let monitor = db.monitor().expect("monitored");
    assert_eq!(monitor.history().len(), 64);
    let m = db.metrics();
    assert_eq!(
        (m.total_queries, m.total_errors, m.history_len),
        (400, 0, 64)
    );
    assert!(m.pool.is_some_and(|p| p.max_size > 0));
    let stats = monitor.statement(sql).expect("aggregated");
    assert_eq!((stats.count, stats.errors), (400, 0));
    assert!(stats.p50 <= stats.p95 && stats.p95 <= stats.max && stats.mean <= stats.max);
    assert!(
        monitor
            .history()
            .iter()
            .all(|r| r.rows == Some(1) && r.error.is_none())
    );
    // The unmonitored handle records nothing and shares the pool.
    assert!(ctx.db.monitor().is_none());
    assert_eq!(ctx.db.metrics().total_queries, 0);
    monitor.reset();
    assert_eq!(monitor.metrics().total_queries, 0);
    assert!(monitor.history().is_empty() && monitor.statements().is_empty());
    Ok(())
}

/// Failed statements are counted per statement and kept with their kind and SQLSTATE.
///
/// # Errors
///
/// Any unexpected query error.
pub async fn monitor_errors_recorded(ctx: &Ctx) -> Result<()> {
    let db = ctx.db.monitored(options(100));
    db.batch_execute("CREATE TABLE {{tables.t}} (id int PRIMARY KEY)")
        .await?;
    let insert = "INSERT INTO {{tables.t}} VALUES ($1)";
    db.execute(insert, params![1i32]).await?;
    let err = db
        .execute(insert, params![1i32])
        .await
        .expect_err("duplicate");
    assert!(err.is_unique_violation());
    db.fetch_all("SELEC 1", &[])
        .await
        .expect_err("syntax error");
    let monitor = db.monitor().expect("monitored");
    let errors = monitor.errors();
    assert_eq!(errors.len(), 2);
    let dup = errors[0].error.as_ref().expect("error recorded");
    assert_eq!(dup.variant, "database");
    assert_eq!(dup.kind, Some(pgdbm::ErrorKind::UniqueViolation));
    assert_eq!(dup.code.as_deref(), Some("23505"));
    assert!(!dup.message.is_empty());
    assert_eq!(
        errors[1].error.as_ref().and_then(|e| e.code.as_deref()),
        Some("42601")
    );
    assert_eq!(errors[1].operation, Operation::FetchAll);
    let stats = monitor.statement(insert).expect("aggregated");
    assert_eq!((stats.count, stats.errors), (2, 1));
    let m = monitor.metrics();
    assert_eq!((m.total_queries, m.total_errors), (4, 2));
    Ok(())
}

/// A statement above the threshold is slow (kept, counted); a per-handle override raises it.
///
/// # Errors
///
/// Any unexpected query error.
pub async fn monitor_slow_queries(ctx: &Ctx) -> Result<()> {
    let db = ctx
        .db
        .monitored(options(100).slow_query_threshold(Duration::from_millis(100)));
    db.execute("SELECT pg_sleep(0.4)", &[]).await?;
    db.execute("SELECT 1", &[]).await?;
    db.with_slow_query_threshold(Duration::from_secs(30))
        .execute("SELECT pg_sleep(0.15)", &[])
        .await?;
    let monitor = db.monitor().expect("monitored");
    let slow = monitor.slow_queries();
    assert_eq!(slow.len(), 1, "{slow:?}");
    assert_eq!(&*slow[0].sql, "SELECT pg_sleep(0.4)");
    assert!(slow[0].slow && slow[0].duration >= Duration::from_millis(400));
    assert_eq!(monitor.metrics().slow_queries, 1);
    assert_eq!(monitor.history().len(), 3);
    let top = monitor.slowest(1);
    assert_eq!(&*top[0].sql, "SELECT pg_sleep(0.4)");
    Ok(())
}

/// Aggregates are keyed by the template text: two schemas' handles sharing one monitor add up
/// under one key, and records name their schema. Transactions begun from a monitored handle,
/// `execute_many` and COPY are recorded; `Monitored` wraps any executor.
///
/// # Errors
///
/// Any unexpected query error.
pub async fn monitor_aggregates_and_coverage(ctx: &Ctx) -> Result<()> {
    let other_schema = format!("{}_b", ctx.schema);
    let other = ctx.db.with_schema(Some(&other_schema))?;
    other.ensure_schema().await?;
    let result = async {
        let monitor = Arc::new(Monitor::new(options(100)));
        let a = ctx.db.with_monitor(monitor.clone());
        let b = other.with_monitor(monitor.clone());
        assert!(
            a.with_schema(None)?
                .monitor()
                .is_some_and(|m| Arc::ptr_eq(m, &monitor))
        );
        let ddl = "CREATE TABLE {{tables.t}} (id int PRIMARY KEY, v text)";
        a.batch_execute(ddl).await?;
        b.batch_execute(ddl).await?;
        let insert = "INSERT INTO {{tables.t}} VALUES ($1, $2)";
        a.execute(insert, params![1i32, "a"]).await?;
        b.execute(insert, params![1i32, "b"]).await?;
        let stats = monitor.statement(insert).expect("one key for both schemas");
        assert_eq!(stats.count, 2);
        let schemas: Vec<Option<String>> = monitor
            .history()
            .iter()
            .filter(|r| &*r.sql == insert)
            .map(|r| r.schema.as_deref().map(str::to_owned))
            .collect();
        assert_eq!(
            schemas,
            vec![Some(ctx.schema.clone()), Some(other_schema.clone())]
        );

        monitor.reset();
        let tx = a.begin().await?;
        tx.execute(insert, params![2i32, "tx"]).await?;
        let sp = tx.begin().await?;
        sp.fetch_all("SELECT * FROM {{tables.t}}", &[]).await?;
        sp.commit().await?;
        tx.commit().await?;
        a.execute_many(insert, &[params![3i32, "m"], params![4i32, "m"]])
            .await?;
        let n = a
            .copy_in(
                "t",
                &["id", "v"],
                &[vec![Value::Int4(5), Value::Text("c".into())]],
            )
            .await?;
        assert_eq!(n, 1);
        // Transaction control is recorded too, without savepoint names: one aggregate each.
        let ops: Vec<(Operation, Option<u64>, String)> = monitor
            .history()
            .iter()
            .map(|r| (r.operation, r.rows, r.sql.to_string()))
            .collect();
        let control = |sql: &str| (Operation::TransactionControl, None, sql.to_owned());
        assert_eq!(
            ops,
            vec![
                control("BEGIN"),
                (Operation::Execute, Some(1), insert.to_owned()),
                control("SAVEPOINT"),
                (
                    Operation::FetchAll,
                    Some(2),
                    "SELECT * FROM {{tables.t}}".to_owned()
                ),
                control("RELEASE SAVEPOINT"),
                control("COMMIT"),
                control("BEGIN"),
                (Operation::Execute, Some(1), insert.to_owned()),
                (Operation::Execute, Some(1), insert.to_owned()),
                control("COMMIT"),
                (
                    Operation::Copy,
                    Some(1),
                    format!(
                        "COPY \"{}\".t (\"id\", \"v\") FROM STDIN BINARY",
                        ctx.schema
                    )
                ),
            ]
        );
        assert_eq!(monitor.statement("BEGIN").map(|s| s.count), Some(2));
        assert_eq!(monitor.statement("COMMIT").map(|s| s.count), Some(2));
        assert_eq!(monitor.statement(insert).map(|s| s.count), Some(3));
        // The module of the handle is on every record, transaction control included.
        monitor.reset();
        let named = a.with_module("billing");
        assert_eq!(named.module(), Some("billing"));
        named
            .transaction(|tx| async move {
                tx.execute(insert, params![6i32, "named"]).await?;
                tx.transaction(|sp| async move { sp.fetch_all("SELECT 1", &[]).await })
                    .await?;
                Ok::<_, Error>(())
            })
            .await?;
        let recorded: Vec<(String, Option<String>)> = monitor
            .history()
            .iter()
            .map(|r| (r.sql.to_string(), r.module.as_deref().map(str::to_owned)))
            .collect();
        let billing = Some("billing".to_owned());
        assert_eq!(
            recorded,
            [
                "BEGIN",
                insert,
                "SAVEPOINT",
                "SELECT 1",
                "RELEASE SAVEPOINT",
                "COMMIT"
            ]
            .map(|sql| (sql.to_owned(), billing.clone()))
        );

        monitor.reset();
        let wrapped = Monitored::new(ctx.pool.clone(), monitor.clone());
        let exec: &dyn Executor = &wrapped;
        exec.fetch_value::<i32>("SELECT 7", &[]).await?;
        assert_eq!(monitor.statement("SELECT 7").map(|s| s.count), Some(1));
        Ok::<_, Error>(())
    }
    .await;
    other
        .batch_execute("DROP SCHEMA {{schema}} CASCADE")
        .await?;
    result
}

/// Parameters are recorded only with `record_params`, and masked.
///
/// # Errors
///
/// Any unexpected query error.
pub async fn monitor_params_masked(ctx: &Ctx) -> Result<()> {
    let sql = "SELECT $1::text, $2::bytea, $3::int8";
    let long = "a-very-long-secret-string-value-0123456789";
    let bytes = vec![7u8; 1000];
    let plain = ctx.db.monitored(options(10));
    plain
        .fetch_one(sql, params![long, bytes.clone(), 42i64])
        .await?;
    let rec = &plain.monitor().expect("monitored").history()[0];
    assert!(rec.params.is_none());
    assert!(!format!("{rec:?}").contains(long));

    let db = ctx.db.monitored(options(10).record_params(true));
    db.fetch_one(sql, params![long, bytes, 42i64]).await?;
    let rec = &db.monitor().expect("monitored").history()[0];
    let params = rec.params.as_ref().expect("recorded");
    assert_eq!(params.len(), 3);
    assert_eq!(params[0], "'a-very-long-secr…(42 chars)'");
    assert_eq!(params[1], "<bytea 1000 bytes>");
    assert_eq!(params[2], "42::bigint");
    assert!(!format!("{rec:?}").contains(long));
    Ok(())
}

/// `explain` returns the JSON plan; `explain_analyze` of an INSERT runs it and rolls it back;
/// a statement that does not parse gives the server's error.
///
/// # Errors
///
/// Any unexpected query error.
pub async fn explain_plans(ctx: &Ctx) -> Result<()> {
    let db = &ctx.db;
    db.batch_execute("CREATE TABLE {{tables.t}} (id int PRIMARY KEY, v text)")
        .await?;
    let plan = db
        .explain("SELECT * FROM {{tables.t}} WHERE id = $1", params![1i32])
        .await?;
    assert!(plan.plan.get("Plan").is_some(), "{}", plan.plan);
    assert!(!plan.analyzed && plan.actual_rows.is_none());
    assert!(plan.total_cost > 0.0);
    assert!(!plan.summary().is_empty());

    let analyzed = db
        .explain_analyze(
            "INSERT INTO {{tables.t}} VALUES ($1, $2)",
            params![1i32, "x"],
        )
        .await?;
    assert!(analyzed.analyzed);
    assert_eq!(analyzed.node_type, "ModifyTable");
    assert!(analyzed.execution_time_ms.is_some());
    assert!(analyzed.summary().contains("execution"), "{analyzed}");
    let count: i64 = db
        .fetch_value("SELECT count(*) FROM {{tables.t}}", &[])
        .await?;
    assert_eq!(count, 0, "EXPLAIN ANALYZE of an INSERT must leave no row");

    let sel = db
        .explain_analyze("SELECT * FROM {{tables.t}}", &[])
        .await?;
    assert_eq!(sel.actual_rows, Some(0.0));

    let err = crate::assert_err!(
        db.explain("SELEC * FROM nowhere", &[]).await,
        Error::Database(_)
    );
    assert_eq!(err.code(), Some("42601"));
    let err = crate::assert_err!(db.explain_analyze("SELEC 1", &[]).await, Error::Database(_));
    assert_eq!(err.code(), Some("42601"));
    // Through a monitored handle the EXPLAIN is recorded like any statement.
    let m = db.monitored(options(10));
    m.explain("SELECT 1", &[]).await?;
    assert_eq!(m.metrics().total_queries, 1);
    Ok(())
}

/// A monitored handle on a closed pool: calls fail with `PoolClosed` and are recorded as
/// errors; metrics still work; the health check is an unhealthy report, not an error.
///
/// # Errors
///
/// Any unexpected query error.
pub async fn monitor_closed_pool(ctx: &Ctx) -> Result<()> {
    let config = ctx.config_with(|b| b.max_connections(2))?;
    let pool = ctx.connect(config).await?;
    let db = pgdbm::Database::owning(pool, Some(&ctx.schema))?.monitored(options(10));
    db.fetch_value::<i32>("SELECT 1", &[]).await?;
    db.close().await;
    crate::assert_err!(
        db.fetch_value::<i32>("SELECT 1", &[]).await,
        Error::PoolClosed
    );
    crate::assert_err!(db.begin().await, Error::PoolClosed);
    let monitor = db.monitor().expect("monitored");
    let errors = monitor.errors();
    assert_eq!(errors.len(), 1);
    assert_eq!(
        errors[0].error.as_ref().map(|e| e.variant),
        Some("pool_closed")
    );
    let m = db.metrics();
    assert_eq!((m.total_queries, m.total_errors), (2, 1));
    assert!(m.pool.is_some());
    let report = db.health_check().await;
    assert_eq!(report.status, HealthStatus::Unhealthy, "{report:?}");
    assert!(report.round_trip.is_none() && report.server_version.is_none());
    assert!(!report.reasons.is_empty());
    Ok(())
}

/// Spans follow OpenTelemetry's database conventions, cut long SQL, never carry parameter
/// values; slow statements are logged at `warn` with their duration.
///
/// # Errors
///
/// Any unexpected query error.
pub async fn tracing_spans(ctx: &Ctx) -> Result<()> {
    let capture = Capture::default();
    let secret = "sekrit-parameter-value-4711";
    let long_sql = format!(
        "SELECT 1 /* {} */ WHERE $1::text IS NOT NULL",
        "x".repeat(500)
    );
    let db = ctx.db.clone();
    let monitored = ctx
        .db
        .monitored(options(10).slow_query_threshold(Duration::ZERO));
    let schema = ctx.schema.clone();
    async {
        db.fetch_all(&long_sql, params![secret]).await?;
        db.fetch_all("SELEC 1", &[]).await.expect_err("syntax");
        monitored
            .execute("SELECT $1::text", params![secret])
            .await?;
        Ok::<_, Error>(())
    }
    .with_subscriber(capture.clone())
    .await?;
    let captured = capture.0.lock().unwrap_or_else(|p| p.into_inner());
    let spans: Vec<&BTreeMap<String, String>> = captured
        .spans
        .iter()
        .filter(|(name, _)| name == "pgdbm.query")
        .map(|(_, f)| f)
        .collect();
    assert_eq!(spans.len(), 3, "{:?}", captured.spans);
    let first = spans[0];
    assert_eq!(
        first.get("db.system.name").map(String::as_str),
        Some("postgresql")
    );
    assert_eq!(first.get("otel.kind").map(String::as_str), Some("client"));
    assert_eq!(first.get("otel.name").map(String::as_str), Some("SELECT"));
    assert_eq!(
        first.get("db.operation.name").map(String::as_str),
        Some("SELECT")
    );
    assert_eq!(first.get("pgdbm.schema"), Some(&schema));
    assert_eq!(
        first.get("pgdbm.operation").map(String::as_str),
        Some("fetch_all")
    );
    let text = first.get("db.query.text").expect("query text");
    assert!(text.starts_with("SELECT 1 /* xxx"), "{text}");
    assert_eq!(text.chars().count(), pgdbm::MAX_SQL_IN_ERROR + 1, "{text}");
    assert!(text.ends_with('…'));
    // A server error: its SQLSTATE (42601, syntax error) as `error.type` and status code.
    assert_eq!(
        spans[1].get("error.type").map(String::as_str),
        Some("42601")
    );
    assert_eq!(
        spans[1].get("db.response.status_code").map(String::as_str),
        Some("42601")
    );
    assert_eq!(
        spans[1].get("otel.status_code").map(String::as_str),
        Some("error")
    );
    let warn = captured
        .events
        .iter()
        .find(|(level, f)| {
            *level == tracing::Level::WARN && f.get("message").is_some_and(|m| m == "slow query")
        })
        .expect("slow query logged at warn");
    assert!(warn.1.contains_key("duration_ms"), "{warn:?}");
    let everything = format!("{:?}", (&captured.spans, &captured.events));
    assert!(
        !everything.contains(secret),
        "a parameter value leaked into tracing"
    );
    Ok(())
}

/// A fresh pool is healthy (or degraded only by other sessions' activity on the shared test
/// server), with a round trip, the server version and the pool state.
///
/// # Errors
///
/// Any unexpected query error.
pub async fn health_check_fresh_pool(ctx: &Ctx) -> Result<()> {
    let report = ctx.db.health_check().await;
    assert!(report.round_trip.is_some(), "{report:?}");
    assert!(
        report
            .server_version
            .as_deref()
            .is_some_and(|v| !v.is_empty())
    );
    assert!(report.pool.max_size > 0);
    match report.status {
        HealthStatus::Healthy => assert!(report.reasons.is_empty()),
        HealthStatus::Degraded => {
            // Parallel checks on the same server may hold locks or run long statements.
            assert!(
                !report.blocking.is_empty() || !report.long_running.is_empty(),
                "{report:?}"
            );
            eprintln!(
                "health_check_fresh_pool: degraded by other sessions: {:?}",
                report.reasons
            );
        }
        HealthStatus::Unhealthy => panic!("fresh pool unhealthy: {report:?}"),
        // `HealthStatus` is `#[non_exhaustive]`: a status added later must be handled here.
        other => panic!("unknown health status {other:?}: {report:?}"),
    }
    Ok(())
}

/// A session waiting on a row lock is reported with its blocker, and degrades the health check.
///
/// # Errors
///
/// Any unexpected query error.
pub async fn blocking_queries_found(ctx: &Ctx) -> Result<()> {
    let db = &ctx.db;
    db.batch_execute("CREATE TABLE {{tables.t}} (id int PRIMARY KEY, v int)")
        .await?;
    db.execute("INSERT INTO {{tables.t}} VALUES (1, 0)", &[])
        .await?;
    let holder = db.begin().await?;
    let holder_pid: i32 = holder.fetch_value("SELECT pg_backend_pid()", &[]).await?;
    holder
        .execute("SELECT * FROM {{tables.t}} WHERE id = 1 FOR UPDATE", &[])
        .await?;
    let config = ctx.config_with(|b| b.lock_timeout(None).max_connections(1))?;
    let waiter_pool = ctx.connect(config).await?;
    let waiter = pgdbm::Database::new(waiter_pool.clone(), Some(&ctx.schema))?;
    let task = tokio::spawn({
        let waiter = waiter.clone();
        async move {
            waiter
                .execute("UPDATE {{tables.t}} SET v = v + 1 WHERE id = 1", &[])
                .await
        }
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    let found = loop {
        let blocking = db.find_blocking_queries().await?;
        if let Some(b) = blocking.into_iter().find(|b| b.blocking_pid == holder_pid) {
            break b;
        }
        assert!(
            Instant::now() < deadline,
            "the blocked UPDATE was never reported"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(found.blocked_query.contains("UPDATE"), "{found:?}");
    assert!(found.blocking_query.contains("FOR UPDATE"), "{found:?}");
    assert_eq!(found.blocking_state.as_deref(), Some("idle in transaction"));
    let report = db.health_check().await;
    assert_eq!(report.status, HealthStatus::Degraded, "{report:?}");
    assert!(report.blocking.iter().any(|b| b.blocking_pid == holder_pid));
    holder.commit().await?;
    assert_eq!(task.await.expect("waiter panicked")?, 1);
    waiter_pool.close().await;
    Ok(())
}

/// `find_long_running_queries` finds a `pg_sleep` running past the threshold.
///
/// # Errors
///
/// Any unexpected query error.
pub async fn long_running_queries_found(ctx: &Ctx) -> Result<()> {
    let marker = format!("long_running_{}", ctx.schema);
    let sql = format!("SELECT pg_sleep(3) /* {marker} */");
    let db = ctx.db.clone();
    let task = tokio::spawn(async move { db.execute(&sql, &[]).await });
    let deadline = Instant::now() + Duration::from_secs(3);
    let found = loop {
        let long = ctx
            .db
            .find_long_running_queries(Duration::from_millis(300))
            .await?;
        if let Some(q) = long.into_iter().find(|q| q.query.contains(&marker)) {
            break q;
        }
        assert!(Instant::now() < deadline, "the pg_sleep was never reported");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(found.duration >= Duration::from_millis(300), "{found:?}");
    assert_eq!(found.state, "active");
    assert!(found.pid > 0);
    let none = ctx
        .db
        .find_long_running_queries(Duration::from_secs(3600))
        .await?;
    assert!(none.iter().all(|q| !q.query.contains(&marker)));
    task.await.expect("sleeper panicked")?;
    Ok(())
}

/// `table_sizes` lists the schema's tables with size and row counts.
///
/// # Errors
///
/// Any unexpected query error.
pub async fn table_sizes_listed(ctx: &Ctx) -> Result<()> {
    let db = &ctx.db;
    db.batch_execute(
        "CREATE TABLE {{tables.big}} (id int PRIMARY KEY, v text);
         CREATE TABLE {{tables.small}} (id int);
         INSERT INTO {{tables.big}} SELECT g, repeat('x', 100) FROM generate_series(1, 500) g;
         ANALYZE {{tables.big}};",
    )
    .await?;
    // Make the statistics of this session visible now rather than within seconds (PG 15+).
    let _ = db.batch_execute("SELECT pg_stat_force_next_flush()").await;
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let sizes = db.table_sizes().await?;
        let names: Vec<&str> = sizes.iter().map(|t| t.table.as_str()).collect();
        assert_eq!(names, vec!["big", "small"], "{sizes:?}");
        let big = &sizes[0];
        assert!(big.total_bytes > 50_000, "{big:?}");
        if big.live_rows == 500 && big.last_analyze.is_some() {
            assert_eq!(big.dead_rows, 0);
            assert!(big.last_vacuum.is_none());
            break;
        }
        assert!(
            Instant::now() < deadline,
            "row counts never appeared: {big:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    Ok(())
}

/// On a handle without a schema, `table_sizes` lists the tables of every user schema, each with
/// its schema; no system schema shows up.
///
/// # Errors
///
/// Any unexpected query error.
pub async fn table_sizes_without_schema_lists_every_user_schema(ctx: &Ctx) -> Result<()> {
    let (other, _guard) = ctx.other_schema("other").await?;
    ctx.db
        .batch_execute("CREATE TABLE {{tables.mine}} (id int)")
        .await?;
    other
        .batch_execute("CREATE TABLE {{tables.theirs}} (id int)")
        .await?;
    let other_schema = other.schema().expect("a schema").to_owned();

    let unscoped = ctx.db.with_schema(None)?;
    let sizes = unscoped.table_sizes().await?;
    let has =
        |schema: &str, table: &str| sizes.iter().any(|t| t.schema == schema && t.table == table);
    assert!(has(&ctx.schema, "mine"), "{sizes:?}");
    assert!(has(&other_schema, "theirs"), "{sizes:?}");
    assert!(
        sizes
            .iter()
            .all(|t| !t.schema.starts_with("pg_") && t.schema != "information_schema"),
        "a system schema was listed: {sizes:?}"
    );

    // A handle with a schema still lists only its own.
    let scoped = ctx.db.table_sizes().await?;
    assert_eq!(scoped.len(), 1, "{scoped:?}");
    assert_eq!(
        (scoped[0].schema.as_str(), scoped[0].table.as_str()),
        (ctx.schema.as_str(), "mine")
    );
    Ok(())
}

/// A minimal `tracing` subscriber that keeps span fields and events.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Captured>>, Arc<AtomicU64>);

#[derive(Default)]
struct Captured {
    spans: Vec<(String, BTreeMap<String, String>)>,
    events: Vec<(tracing::Level, BTreeMap<String, String>)>,
}

struct Fields<'a>(&'a mut BTreeMap<String, String>);

impl Visit for Fields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
}

impl Subscriber for Capture {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn max_level_hint(&self) -> Option<tracing::level_filters::LevelFilter> {
        Some(tracing::level_filters::LevelFilter::TRACE)
    }
    fn new_span(&self, span: &Attributes<'_>) -> Id {
        let mut fields = BTreeMap::new();
        span.record(&mut Fields(&mut fields));
        let mut c = self.0.lock().unwrap_or_else(|p| p.into_inner());
        c.spans.push((span.metadata().name().to_owned(), fields));
        self.1.fetch_add(1, Ordering::Relaxed);
        Id::from_u64(c.spans.len() as u64)
    }
    fn record(&self, span: &Id, values: &Record<'_>) {
        let mut c = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let index = usize::try_from(span.into_u64()).unwrap_or(usize::MAX) - 1;
        if let Some((_, fields)) = c.spans.get_mut(index) {
            values.record(&mut Fields(fields));
        }
    }
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        let mut fields = BTreeMap::new();
        event.record(&mut Fields(&mut fields));
        let mut c = self.0.lock().unwrap_or_else(|p| p.into_inner());
        c.events.push((*event.metadata().level(), fields));
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

/// Migrations applied through a monitored handle are recorded: each file's statements show up
/// in the history.
///
/// # Errors
///
/// Any unexpected query error.
pub async fn monitor_records_migrations(ctx: &Ctx) -> Result<()> {
    let db = ctx.db.monitored(pgdbm::monitor::MonitorOptions::default());
    let source = pgdbm::MigrationSource::from_pairs([(
        "001_monitored.sql",
        "CREATE TABLE {{tables.monitored_by_migration}} (id int)",
    )])?;
    let report = db.migrator().apply("monitored_module", &source).await?;
    assert_eq!(report.applied.len(), 1);
    let monitor = db.monitor().expect("monitored handle");
    let seen = monitor
        .history()
        .iter()
        .any(|r| r.sql.contains("monitored_by_migration"));
    assert!(
        seen,
        "the migration's statement is not in the monitor's history"
    );
    Ok(())
}
