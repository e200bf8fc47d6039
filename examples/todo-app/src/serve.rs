//! Running the service: connect, migrate, serve until a shutdown signal, close the pool.

use std::future::Future;

use pgdbm::Database;
use pgdbm::monitor::MonitorOptions;
use pgdbm_driver_tokio_postgres::TokioPostgres;
use tokio::net::TcpListener;

use crate::todo::TodoModule;
use crate::{AppState, Settings, router};

/// Connects to the database, applies the todo module's migrations into its schema, serves on
/// `settings.host:settings.port` until [`shutdown_signal`], lets requests in flight finish and
/// closes the pool.
///
/// # Errors
///
/// A connect or migration error (naming the file that failed), or an error binding or serving
/// the socket.
pub async fn run(settings: Settings) -> Result<(), Box<dyn std::error::Error>> {
    tracing::info!(database = %settings.database, "connecting");
    let db = Database::connect::<TokioPostgres>(&settings.database).await?;
    db.migrate(&TodoModule).await?; // logs each file it applies
    let monitor = MonitorOptions::default().slow_query_threshold(settings.slow_query_threshold);
    let mut state = AppState::new(db.clone(), monitor);
    if let Some(token) = settings.dashboard_token.clone() {
        state = state.with_dashboard(token)?;
        tracing::info!("dashboard at /_pgdbm");
    }

    let listener = TcpListener::bind((settings.host, settings.port)).await?;
    tracing::info!(addr = %listener.local_addr()?, "listening");
    let served = serve(listener, state, shutdown_signal()).await;
    db.close().await;
    tracing::info!("pool closed, bye");
    Ok(served?)
}

/// Serves the [`router`] on `listener` until `shutdown` completes, then waits for the requests
/// in flight (axum's graceful shutdown). The pool stays open: the caller closes it.
///
/// # Errors
///
/// An I/O error of the listener.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
}

/// Completes on ctrl-c or, on Unix, `SIGTERM` (what container runtimes send).
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for ctrl-c");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                term.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => tracing::info!("ctrl-c: shutting down"),
        () = terminate => tracing::info!("SIGTERM: shutting down"),
    }
}
