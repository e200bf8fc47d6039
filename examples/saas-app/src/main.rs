//! The saas-app server.
//!
//! ```text
//! cargo run -p saas-app
//! PORT=8080 DATABASE_URL=postgresql://app@db/saas ADMIN_API_KEY=… cargo run -p saas-app
//! ```
//!
//! Without `DATABASE_URL` it uses the libpq variables (`PGHOST`, `PGUSER`, …) or their defaults,
//! with database `postgres`. Without `ADMIN_API_KEY` the admin routes are off.

use std::sync::Arc;
use std::time::Duration;

use pgdbm::{DatabaseConfig, SharedPool};
use pgdbm_driver_tokio_postgres::TokioPostgresPool;
use saas_app::lifecycle::{migrate_all_tenants, reap_abandoned_signups};
use saas_app::registry::Registry;
use saas_app::{AppConfig, AppState};

/// A sign-up still `provisioning` after this long was interrupted by a crash.
const ABANDONED_AFTER: Duration = Duration::from_secs(600);

#[tokio::main]
async fn main() {
    if let Err(err) = run().await {
        eprintln!("saas-app failed: {err}");
        let mut source = err.source();
        while let Some(cause) = source {
            eprintln!("  caused by: {cause}");
            source = cause.source();
        }
        std::process::exit(1);
    }
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let port: u16 = match std::env::var("PORT") {
        Ok(p) => p.parse().map_err(|_| format!("PORT={p:?} is not a port"))?,
        Err(_) => 3000,
    };
    let mut builder = DatabaseConfig::builder().env();
    if std::env::var_os("DATABASE_URL").is_none() && std::env::var_os("PGDATABASE").is_none() {
        builder = builder.database("postgres");
    }
    let config = builder.max_connections(20).build()?;
    println!("connecting to {config}");
    let pool: SharedPool = Arc::new(TokioPostgresPool::connect(&config).await?);

    let registry = Registry::setup(pool.clone()).await?;
    let reaped = reap_abandoned_signups(&registry, ABANDONED_AFTER).await?;
    if !reaped.is_empty() {
        println!("removed {} abandoned sign-ups: {reaped:?}", reaped.len());
    }
    let upgrade = migrate_all_tenants(&registry, 4).await?;
    println!(
        "{} tenants up to date ({} migrations applied, {} failed)",
        upgrade.tenants,
        upgrade.applied,
        upgrade.failed.len()
    );
    for (slug, err) in &upgrade.failed {
        eprintln!("tenant {slug}: {err}");
    }

    let admin_key = std::env::var("ADMIN_API_KEY")
        .ok()
        .filter(|k| !k.is_empty());
    if admin_key.is_none() {
        println!("ADMIN_API_KEY is not set: the /admin routes are off");
    }
    let state = AppState::new(
        registry,
        AppConfig {
            admin_key,
            ..AppConfig::default()
        },
    );
    let listener = tokio::net::TcpListener::bind(("0.0.0.0", port)).await?;
    println!("listening on http://{}", listener.local_addr()?);
    axum::serve(listener, saas_app::router(state))
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    pool.close().await;
    Ok(())
}
