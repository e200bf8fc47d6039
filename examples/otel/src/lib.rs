//! pgdbm's spans as OpenTelemetry client spans: the wiring ([`layer`]) and a small workload
//! ([`workload`]) shared by the example binary, which exports to stdout, and the test, which
//! exports to memory and checks every attribute.
//!
//! Nothing here is pgdbm-specific glue: pgdbm's `pgdbm.query` spans carry `otel.name`,
//! `otel.kind` and `otel.status_code` and the attributes of OpenTelemetry's database
//! conventions under their own names, so `tracing-opentelemetry`'s layer exports them as they
//! are.

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::{SdkTracerProvider, SpanExporter};
use pgdbm::prelude::*;
use pgdbm::{Database, Error};
use tracing_subscriber::Registry;
use tracing_subscriber::layer::SubscriberExt;

/// A tracer provider exporting every span to `exporter` as soon as it ends, and a `tracing`
/// subscriber whose spans go to it. Call `provider.shutdown()` before exiting so nothing is
/// lost.
pub fn layer<E: SpanExporter + 'static>(
    exporter: E,
) -> (SdkTracerProvider, impl tracing::Subscriber + Send + Sync) {
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter)
        .build();
    let tracer = provider.tracer("otel-example");
    let subscriber = Registry::default().with(tracing_opentelemetry::layer().with_tracer(tracer));
    (provider, subscriber)
}

/// Creates table `items` in `db`'s schema (outside any span the caller is looking at).
///
/// # Errors
///
/// The server's error.
pub async fn create_table(db: &Database) -> Result<(), Error> {
    db.ensure_schema().await?;
    db.batch_execute(
        "CREATE TABLE IF NOT EXISTS {{tables.items}} (id bigint PRIMARY KEY, name text NOT NULL)",
    )
    .await
}

/// Three kinds of statements: one that succeeds (`SELECT items`), one the server refuses
/// (a duplicate key, SQLSTATE 23505), and two in a transaction (`BEGIN`, `INSERT items`,
/// `COMMIT` under one `TRANSACTION` span), then a batch of two through `execute_many`.
///
/// # Errors
///
/// Any error other than the expected duplicate key.
pub async fn workload(db: &Database) -> Result<(), Error> {
    db.execute(
        "INSERT INTO {{tables.items}} (id, name) VALUES ($1, $2)",
        params![1_i64, "first"],
    )
    .await?;
    let count: i64 = db
        .fetch_value(
            "SELECT count(*) FROM {{tables.items}} WHERE id = $1",
            params![1_i64],
        )
        .await?;
    assert_eq!(count, 1);
    let duplicate = db
        .execute(
            "INSERT INTO {{tables.items}} (id, name) VALUES ($1, $2)",
            params![1_i64, "again"],
        )
        .await
        .expect_err("a duplicate key");
    assert_eq!(duplicate.code(), Some("23505"));
    db.transaction(|tx| async move {
        tx.execute(
            "UPDATE {{tables.items}} SET name = $1 WHERE id = $2",
            params!["renamed", 1_i64],
        )
        .await?;
        Ok::<_, Error>(())
    })
    .await?;
    db.execute_many(
        "INSERT INTO {{tables.items}} (id, name) VALUES ($1, $2)",
        &[params![2_i64, "two"], params![3_i64, "three"]],
    )
    .await?;
    Ok(())
}
