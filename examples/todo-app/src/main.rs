//! `cargo run -p todo-app`: the todo service on `PORT` (default 3000) against `DATABASE_URL`
//! or the local server. See the crate's README for the routes.

use std::io::IsTerminal;
use std::str::FromStr;

use tracing_subscriber::filter::Targets;
use tracing_subscriber::prelude::*;

#[tokio::main]
async fn main() {
    init_logging();
    let settings = match todo_app::Settings::from_env() {
        Ok(settings) => settings,
        Err(message) => {
            eprintln!("todo-app: {message}");
            std::process::exit(2);
        }
    };
    if let Err(err) = todo_app::run(settings).await {
        tracing::error!("todo-app failed: {err}");
        let mut source = err.source();
        while let Some(cause) = source {
            tracing::error!("  caused by: {cause}");
            source = cause.source();
        }
        std::process::exit(1);
    }
}

/// Logs to stderr at `RUST_LOG` (`info` by default; e.g. `RUST_LOG=info,pgdbm=debug`).
fn init_logging() {
    let filter = std::env::var("RUST_LOG")
        .ok()
        .and_then(|s| Targets::from_str(&s).ok())
        .unwrap_or_else(|| Targets::new().with_default(tracing::Level::INFO));
    let stderr = std::io::stderr();
    let format = tracing_subscriber::fmt::layer()
        .with_ansi(stderr.is_terminal())
        .with_writer(std::io::stderr);
    tracing_subscriber::registry()
        .with(format)
        .with(filter)
        .init();
}
