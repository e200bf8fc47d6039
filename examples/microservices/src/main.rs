//! Runs the microservices example.
//!
//! ```text
//! cargo run -p microservices                 # all four behind one gateway, one shared pool (port 3000)
//! cargo run -p microservices -- gateway      # the same
//! cargo run -p microservices -- users        # one service, a pool of its own (port 3001)
//! cargo run -p microservices -- inventory    # 3002
//! cargo run -p microservices -- orders       # 3003
//! cargo run -p microservices -- notifications  # 3004, with the outbox consumer
//! ```
//!
//! `DATABASE_URL` (or the libpq variables; default database `postgres`), `PORT` and
//! `MAX_CONNECTIONS` (default 10 for the gateway, 4 for one service) configure it.

use std::net::SocketAddr;

use microservices::{Handles, Service};
use pgdbm::{Database, DatabaseConfig};
use pgdbm_driver_tokio_postgres::TokioPostgres;

/// What the command line asked for.
#[derive(Debug, Clone, Copy)]
enum Layout {
    /// All services in this process.
    Gateway,
    /// One service in this process.
    One(Service),
}

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt().init();
    let layout = match std::env::args().nth(1).as_deref() {
        None | Some("gateway") => Layout::Gateway,
        Some(name) => match name.parse() {
            Ok(service) => Layout::One(service),
            Err(e) => {
                eprintln!(
                    "{e}\nusage: microservices [gateway|users|inventory|orders|notifications]"
                );
                std::process::exit(2);
            }
        },
    };
    if let Err(e) = run(layout).await {
        eprintln!("microservices: {e}");
        let mut source = e.source();
        while let Some(cause) = source {
            eprintln!("  caused by: {cause}");
            source = cause.source();
        }
        std::process::exit(1);
    }
}

async fn run(layout: Layout) -> Result<(), Box<dyn std::error::Error>> {
    let (services, default_port, default_pool): (Vec<Service>, u16, u32) = match layout {
        Layout::Gateway => (Service::ALL.to_vec(), 3000, 10),
        Layout::One(service) => {
            let port = 3001 + Service::ALL.iter().position(|s| *s == service).unwrap_or(0) as u16;
            (vec![service], port, 4)
        }
    };
    let port = env_or("PORT", default_port)?;
    let mut config = DatabaseConfig::builder().env();
    if std::env::var_os("DATABASE_URL").is_none() && std::env::var_os("PGDATABASE").is_none() {
        config = config.database("postgres");
    }
    let config = config
        .max_connections(env_or("MAX_CONNECTIONS", default_pool)?)
        .without_schema()
        .build()?;

    // The process's one pool: shared by all four services (gateway), or this service's own.
    let base = Database::connect::<TokioPostgres>(&config).await?;
    microservices::migrate(&base, &services).await?;
    let handles = Handles::new(&base)?;
    let router = match layout {
        Layout::Gateway => microservices::gateway(&handles),
        Layout::One(service) => microservices::service_router(service, &handles),
    };
    let consumer = services.contains(&Service::Notifications).then(|| {
        tokio::spawn({
            let consumer = handles.consumer();
            async move { consumer.run().await }
        })
    });

    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], port))).await?;
    tracing::info!(?layout, %config, "listening on http://{}", listener.local_addr()?);
    axum::serve(listener, router)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
            tracing::info!("shutting down");
        })
        .await?;
    if let Some(consumer) = consumer {
        // Dropping the consumer rolls back a batch in flight: its events stay pending.
        consumer.abort();
        let _ = consumer.await;
    }
    base.close().await;
    Ok(())
}

/// The environment variable `name` parsed, or `default` when it is not set.
fn env_or<T: std::str::FromStr>(name: &str, default: T) -> Result<T, String>
where
    T::Err: std::fmt::Display,
{
    match std::env::var(name) {
        Ok(text) => text.parse().map_err(|e| format!("{name}={text:?}: {e}")),
        Err(_) => Ok(default),
    }
}
