//! One module, two deployments:
//!
//! 1. **standalone**: the users module opens its own pool (`Database::connect`) and migrates its
//!    schema `dual_standalone`;
//! 2. **shared**: an application opens one pool and hands it to the users module (schema
//!    `dual_app_users`) and to a small audit module (schema `dual_app_audit`); each applies its
//!    own migrations into its own schema;
//! 3. **one transaction, two modules**: a user and its audit event are written in one
//!    transaction begun on the users handle; the audit module's SQL runs through
//!    `audit_db.in_transaction(&tx)` with its own schema. A failure in the audit module rolls the
//!    user back too.
//!
//! ```text
//! cargo run -p dual-mode
//! DATABASE_URL=postgresql://user:pass@host:5432/db cargo run -p dual-mode
//! ```
//!
//! Without `DATABASE_URL` it uses the libpq variables (`PGHOST`, `PGUSER`, …) or their defaults:
//! `localhost:5432`, the current OS user, database `postgres`. Run it twice: the second time
//! every migration is skipped.

use std::sync::Arc;

use pgdbm::driver::PoolProvider;
use pgdbm::prelude::*;
use pgdbm::{DatabaseConfig, Error, MigrationReport, MigrationSource};
use pgdbm_driver_tokio_postgres::{TokioPostgres, TokioPostgresPool};
use users_module::{Users, UsersModule, add_user};

/// The application's own small module.
struct AuditModule;

impl Module for AuditModule {
    fn name(&self) -> &str {
        "audit"
    }
    fn migrations(&self) -> MigrationSource {
        pgdbm::embed_migrations!("migrations")
    }
}

/// The audit module's one function, written against any executor: its own handle, or a handle
/// on another module's transaction with the audit schema.
async fn record(db: &dyn Executor, event: &str) -> Result<(), Error> {
    db.execute(
        "INSERT INTO {{tables.audit_log}} (event) VALUES ($1)",
        params![event],
    )
    .await?;
    Ok(())
}

#[tokio::main]
async fn main() {
    if let Err(err) = run().await {
        eprintln!("dual-mode failed: {err}");
        let mut source = std::error::Error::source(&err);
        while let Some(cause) = source {
            eprintln!("  caused by: {cause}");
            source = cause.source();
        }
        std::process::exit(1);
    }
}

fn print_report(schema: &str, report: &MigrationReport) {
    println!(
        "  [{schema}] module {:?}: {} applied, {} skipped",
        report.module,
        report.applied.len(),
        report.skipped.len()
    );
    for m in &report.applied {
        println!("    applied {} in {:?}", m.file, m.duration);
    }
    for file in &report.skipped {
        println!("    skipped {file} (already applied)");
    }
}

async fn run() -> Result<(), Error> {
    let mut builder = DatabaseConfig::builder().env();
    if std::env::var_os("DATABASE_URL").is_none() && std::env::var_os("PGDATABASE").is_none() {
        builder = builder.database("postgres");
    }
    let base = builder.max_connections(4).build()?;
    println!("connecting to {base}");

    // 1. Standalone: the module's own pool and schema.
    println!("standalone:");
    let config = base.to_builder().schema("dual_standalone").build()?;
    let db = Database::connect::<TokioPostgres>(&config).await?;
    let (users, report) = Users::setup(db.clone()).await?;
    print_report("dual_standalone", &report);
    users.add("solo@example.com", Some("Solo")).await?;
    println!(
        "  {} user(s) in {}",
        users.count().await?,
        db.expand_sql("{{tables.users}}")?
    );
    db.close().await;

    // 2. Shared: one pool, two modules, two schemas.
    println!("shared pool:");
    let pool: Arc<dyn PoolProvider> = Arc::new(TokioPostgresPool::connect(&base).await?);
    let users_db = Database::new(pool.clone(), Some("dual_app_users"))?;
    let audit_db = Database::new(pool.clone(), Some("dual_app_audit"))?;
    let pending = users_db
        .migrator()
        .dry_run(UsersModule.name(), &UsersModule.migrations())
        .await?;
    println!(
        "  [dual_app_users] pending before setup: {:?}",
        pending.iter().map(|p| p.file.as_str()).collect::<Vec<_>>()
    );
    let (users, report) = Users::setup(users_db.clone()).await?;
    print_report("dual_app_users", &report);
    let report = audit_db.migrate(&AuditModule).await?;
    print_report("dual_app_audit", &report);

    let id = users.add("ann@example.com", Some("Ann")).await?;
    record(&audit_db, &format!("user {id} added")).await?;
    let events: i64 = audit_db
        .fetch_value("SELECT count(*) FROM {{tables.audit_log}}", &[])
        .await?;
    println!(
        "  {} user(s) in {}, {events} audit event(s) in {}",
        users.count().await?,
        users_db.expand_sql("{{tables.users}}")?,
        audit_db.expand_sql("{{tables.audit_log}}")?
    );

    // 3. Two modules, one transaction: the users module's function and the audit module's SQL,
    //    each expanded with its own schema, on one connection, committed together.
    println!("one transaction across both modules:");
    let id = users_db
        .transaction(|tx| {
            let audit_db = audit_db.clone();
            async move {
                let id = add_user(&tx, "bob@example.com", Some("Bob")).await?;
                record(&audit_db.in_transaction(&tx), &format!("user {id} added")).await?;
                Ok::<_, Error>(id)
            }
        })
        .await?;
    println!("  committed user {id} and its audit event together");
    // The audit module fails (its event text is NOT NULL): the user is rolled back with it.
    let failed = users_db
        .transaction(|tx| {
            let audit_db = audit_db.clone();
            async move {
                add_user(&tx, "carol@example.com", None).await?;
                audit_db
                    .in_transaction(&tx)
                    .execute(
                        "INSERT INTO {{tables.audit_log}} (event) VALUES (NULL)",
                        &[],
                    )
                    .await?;
                Ok::<_, Error>(())
            }
        })
        .await;
    let carol: i64 = users_db
        .fetch_value(
            "SELECT count(*) FROM {{tables.users}} WHERE email = $1",
            params!["carol@example.com"],
        )
        .await?;
    println!(
        "  the audit module failed ({}), so carol was rolled back too: {carol} row(s)",
        failed
            .err()
            .map_or_else(|| "no error?".to_owned(), |e| e.to_string())
    );

    let stats = pool.stats();
    println!(
        "  one pool for both: {} open, max {}",
        stats.size, stats.max_size
    );
    pool.close().await;
    println!(
        "done (drop the demo with: DROP SCHEMA dual_standalone, dual_app_users, dual_app_audit CASCADE)"
    );
    Ok(())
}
