//! Exports pgdbm's spans to stdout as OpenTelemetry client spans.
//!
//! ```text
//! cargo run -p otel-example
//! DATABASE_URL=postgresql://user:pass@host:5432/db cargo run -p otel-example
//! ```
//!
//! Without `DATABASE_URL` it uses the libpq variables (`PGHOST`, `PGUSER`, …) or their defaults,
//! database `postgres`. It works in schema `otel_example` and drops it at the end.

use pgdbm::{Database, DatabaseConfig, Error};
use pgdbm_driver_tokio_postgres::TokioPostgres;
use tracing::instrument::WithSubscriber;

#[tokio::main]
async fn main() {
    if let Err(err) = run().await {
        eprintln!("otel example failed: {err}");
        std::process::exit(1);
    }
}

async fn run() -> Result<(), Error> {
    let mut builder = DatabaseConfig::builder().env();
    if std::env::var_os("DATABASE_URL").is_none() && std::env::var_os("PGDATABASE").is_none() {
        builder = builder.database("postgres");
    }
    let config = builder.schema("otel_example").max_connections(2).build()?;
    let db = Database::connect::<TokioPostgres>(&config).await?;
    otel_example::create_table(&db).await?;
    db.batch_execute("TRUNCATE {{tables.items}}").await?;

    let (provider, subscriber) = otel_example::layer(opentelemetry_stdout::SpanExporter::default());
    let result = otel_example::workload(&db)
        .with_subscriber(subscriber)
        .await;
    if let Err(e) = provider.shutdown() {
        eprintln!("exporter shutdown: {e}");
    }
    db.batch_execute("DROP SCHEMA {{schema}} CASCADE").await?;
    db.close().await;
    result
}
