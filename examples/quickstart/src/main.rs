//! pgdbm quick start: connect, create a schema, write and read through templates and a
//! transaction, and print what happened.
//!
//! ```text
//! cargo run -p quickstart
//! DATABASE_URL=postgresql://user:pass@host:5432/db cargo run -p quickstart
//! DATABASE_URL="postgresql://user@pgbouncer:6432/db?pooler=transaction" cargo run -p quickstart
//! ```
//!
//! Without `DATABASE_URL` it uses the libpq variables (`PGHOST`, `PGUSER`, …) or their defaults:
//! `localhost:5432`, the current OS user, database `postgres`.

use pgdbm::prelude::*;
use pgdbm::{DatabaseConfig, Error};
use pgdbm_driver_tokio_postgres::TokioPostgres;

#[tokio::main]
async fn main() {
    if let Err(err) = run().await {
        eprintln!("quickstart failed: {err}");
        let mut source = std::error::Error::source(&err);
        while let Some(cause) = source {
            eprintln!("  caused by: {cause}");
            source = cause.source();
        }
        std::process::exit(1);
    }
}

async fn run() -> Result<(), Error> {
    let mut builder = DatabaseConfig::builder().env();
    if std::env::var_os("DATABASE_URL").is_none() && std::env::var_os("PGDATABASE").is_none() {
        builder = builder.database("postgres");
    }
    let config = builder.schema("quickstart").max_connections(4).build()?;
    println!("connecting to {config}");

    // An owned pool; the handle is scoped to schema "quickstart".
    let db = Database::connect::<TokioPostgres>(&config).await?;
    db.ensure_schema().await?;
    println!("schema {:?} is ready", db.schema().unwrap_or("public"));

    db.batch_execute(
        "CREATE TABLE IF NOT EXISTS {{tables.notes}} (
             id bigserial PRIMARY KEY,
             body text NOT NULL,
             created_at timestamptz NOT NULL DEFAULT now())",
    )
    .await?;
    println!("table {} exists", db.expand_sql("{{tables.notes}}")?);

    let id: i64 = db
        .execute_and_return_id(
            "INSERT INTO {{tables.notes}} (body) VALUES ($1)",
            params!["hello from pgdbm"],
        )
        .await?;
    println!("inserted note {id}");

    // Two writes that succeed or fail together.
    let ids = db
        .transaction(|tx| async move {
            let a: i64 = tx
                .fetch_value(
                    "INSERT INTO {{tables.notes}} (body) VALUES ($1) RETURNING id",
                    params!["written in a transaction"],
                )
                .await?;
            let b: i64 = tx
                .fetch_value(
                    "INSERT INTO {{tables.notes}} (body) VALUES ($1) RETURNING id",
                    params!["committed together"],
                )
                .await?;
            Ok::<_, Error>((a, b))
        })
        .await?;
    println!("committed notes {} and {} in one transaction", ids.0, ids.1);

    for row in db
        .fetch_all(
            "SELECT id, body FROM {{tables.notes}} ORDER BY id DESC LIMIT 3",
            &[],
        )
        .await?
    {
        println!(
            "  note {}: {}",
            row.get::<i64>("id")?,
            row.get::<String>("body")?
        );
    }
    let total: i64 = db
        .fetch_value("SELECT count(*) FROM {{tables.notes}}", &[])
        .await?;
    println!("{total} note(s) in {}", db.expand_sql("{{tables.notes}}")?);
    let stats = db.pool_stats();
    println!(
        "pool: {} open, {} idle, max {}, database {} on PostgreSQL {}",
        stats.size,
        stats.idle,
        stats.max_size,
        stats.database.as_deref().unwrap_or("?"),
        stats.server_version.as_deref().unwrap_or("?")
    );
    db.close().await;
    println!("done (drop the demo with: DROP SCHEMA quickstart CASCADE)");
    Ok(())
}
