//! A server restart under load: the pool fails fast while the server is down and recovers by
//! itself once it is up (on a server of the test's own, through a [`ServerControl`]).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pgdbm::driver::Driver;
use pgdbm::prelude::*;
use pgdbm::{DatabaseConfig, Error, Result, SharedPool};

use crate::support::wait_until;

/// Stopping and starting the server of a [`server_restart_during_load`] check. Implemented by
/// the driver's test around its throwaway server.
#[async_trait::async_trait]
pub trait ServerControl: Send + Sync {
    /// Stops the server (a clean, fast shutdown that ends the sessions); returns once it is down.
    async fn stop(&self) -> Result<()>;
    /// Starts it again on the same address; returns once it accepts connections.
    async fn start(&self) -> Result<()>;
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A short name for an error, for the restart check's summary.
fn label(err: &Error) -> String {
    match err {
        Error::Database(db) => format!("Database({})", db.code),
        Error::ConnectionLost { .. } => "ConnectionLost".to_owned(),
        Error::PoolTimeout { source, .. } => format!(
            "PoolTimeout({})",
            if source.is_some() {
                "cause"
            } else {
                "no cause"
            }
        ),
        Error::Connect { .. } => "Connect".to_owned(),
        other => format!("{other:?}").chars().take(40).collect(),
    }
}

/// What one statement of the load did, and in which phase it started and ended.
struct Outcome {
    task: usize,
    started: u8,
    ended: u8,
    error: Option<(bool, String, String)>,
}

const UP: u8 = 0;
const STOPPING: u8 = 1;
const DOWN: u8 = 2;
const STARTING: u8 = 3;
const RESTARTED: u8 = 4;

/// The pool survives a server restart under load, with no action of the application: four tasks
/// run statements in a loop through a pool with driver `D` on the server of `config` (a server
/// of the test's own — it is stopped), then the server is stopped and started again.
///
/// * While it is down every statement fails, within the acquire timeout plus a margin (no hang),
///   with a typed connection error ([`Error::is_connection_error`]); a pool timeout names the
///   connect failure as its cause.
/// * Once it is up again, statements succeed within a bounded time, in every task.
/// * No statement ever fails with anything but a connection error, and the pool stats are
///   consistent afterwards.
///
/// # Errors
///
/// Any unexpected error, including `server`'s.
pub async fn server_restart_during_load<D: Driver>(
    config: DatabaseConfig,
    server: &dyn ServerControl,
) -> Result<()> {
    const TASKS: usize = 4;
    let acquire_timeout = Duration::from_secs(1);
    // Longer than any failure may take: acquire timeout + the sqlx driver's probe connect.
    let hang = Duration::from_secs(10);
    let config = config
        .to_builder()
        .max_connections(4)
        .min_connections(2)
        .acquire_timeout(acquire_timeout)
        .connect_timeout(Duration::from_secs(2))
        .build()?;
    let pool: SharedPool = Arc::new(D::connect(&config).await?);
    let phase = Arc::new(std::sync::atomic::AtomicU8::new(UP));
    let stop = Arc::new(AtomicBool::new(false));
    let outcomes: Arc<Mutex<Vec<Outcome>>> = Arc::default();
    let mut tasks = Vec::new();
    for task in 0..TASKS {
        let (pool, phase, stop, outcomes) =
            (pool.clone(), phase.clone(), stop.clone(), outcomes.clone());
        tasks.push(tokio::spawn(async move {
            while !stop.load(Ordering::Acquire) {
                let started = phase.load(Ordering::Acquire);
                let result = tokio::time::timeout(hang, pool.fetch_optional("SELECT 1", &[]))
                    .await
                    .unwrap_or_else(|_| panic!("a statement hung for {hang:?}"));
                let error = result
                    .err()
                    .map(|e| (e.is_connection_error(), label(&e), format!("{e} ({e:?})")));
                let ended = phase.load(Ordering::Acquire);
                lock(&outcomes).push(Outcome {
                    task,
                    started,
                    ended,
                    error,
                });
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }));
    }
    let count = |phase_: u8| {
        lock(&outcomes)
            .iter()
            .filter(|o| o.started == phase_ && o.error.is_none())
            .count()
    };
    let warmed = wait_until(
        Duration::from_secs(10),
        Duration::from_millis(20),
        || async { Ok(count(UP) >= 20) },
    )
    .await?;
    assert!(warmed, "the load did not get going");

    phase.store(STOPPING, Ordering::Release);
    server.stop().await?;
    phase.store(DOWN, Ordering::Release);
    // Down: a statement fails, typed, within a bounded time.
    let err = tokio::time::timeout(hang, pool.fetch_optional("SELECT 1", &[]))
        .await
        .expect("a statement hung while the server was down")
        .expect_err("the server is down");
    assert!(err.is_connection_error(), "{err} ({err:?})");
    // Once the pool has no live connection left, acquiring times out (or fails to connect)
    // naming the connect failure.
    let mut named = None;
    for _ in 0..5 {
        let err = tokio::time::timeout(hang, pool.fetch_optional("SELECT 1", &[]))
            .await
            .expect("a statement hung while the server was down")
            .expect_err("the server is down");
        assert!(err.is_connection_error(), "{err} ({err:?})");
        if matches!(
            err,
            Error::PoolTimeout {
                source: Some(_),
                ..
            } | Error::Connect { .. }
        ) {
            named = Some(err);
            break;
        }
    }
    let named = named.expect("no pool timeout or connect error while the server was down");
    assert!(
        std::error::Error::source(&named).is_some(),
        "no cause: {named:?}"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;

    phase.store(STARTING, Ordering::Release);
    server.start().await?;
    phase.store(RESTARTED, Ordering::Release);
    let restarted = Instant::now();
    let recovered = wait_until(
        Duration::from_secs(30),
        Duration::from_millis(50),
        || async {
            Ok(
                tokio::time::timeout(hang, pool.fetch_optional("SELECT 1", &[]))
                    .await
                    .is_ok_and(|r| r.is_ok()),
            )
        },
    )
    .await?;
    assert!(
        recovered,
        "no statement succeeded within 30 s of the restart"
    );
    let every_task = wait_until(
        Duration::from_secs(30),
        Duration::from_millis(50),
        || async {
            let o = lock(&outcomes);
            Ok((0..TASKS).all(|t| {
                o.iter()
                    .filter(|o| o.task == t && o.started == RESTARTED && o.error.is_none())
                    .count()
                    >= 5
            }))
        },
    )
    .await?;
    assert!(every_task, "not every task recovered within 30 s");
    let recovery = restarted.elapsed();
    stop.store(true, Ordering::Release);
    for task in tasks {
        task.await.expect("a load task panicked");
    }

    // The tasks are done: take the outcomes out of the mutex.
    let o = std::mem::take(&mut *lock(&outcomes));
    let untyped: Vec<&String> = o
        .iter()
        .filter_map(|o| o.error.as_ref())
        .filter(|(typed, _, _)| !typed)
        .map(|(_, _, text)| text)
        .collect();
    assert!(
        untyped.is_empty(),
        "errors that are not connection errors: {untyped:#?}"
    );
    let while_down: Vec<&Outcome> = o
        .iter()
        .filter(|o| o.started == DOWN && o.ended == DOWN)
        .collect();
    assert!(
        !while_down.is_empty(),
        "the load ran no statement while the server was down"
    );
    assert!(
        while_down.iter().all(|o| o.error.is_some()),
        "a statement succeeded while the server was down"
    );
    let failed: std::collections::BTreeSet<&str> = o
        .iter()
        .filter_map(|o| o.error.as_ref())
        .map(|(_, label, _)| label.as_str())
        .collect();
    eprintln!(
        "server_restart_during_load ({}): {} statements, {} failed ({failed:?}), recovered in \
         {recovery:?} after the start",
        pool.driver_name(),
        o.len(),
        o.iter().filter(|o| o.error.is_some()).count(),
    );

    let settled = wait_until(
        Duration::from_secs(10),
        Duration::from_millis(20),
        || async { Ok(pool.stats().in_use == 0) },
    )
    .await?;
    let s = pool.stats();
    assert!(settled, "connections still in use: {s:?}");
    assert!(s.idle <= s.size && s.size <= s.max_size, "{s:?}");
    assert!(s.connections_closed <= s.connections_created + 1, "{s:?}");
    pool.fetch_optional("SELECT 1", &[]).await?;
    pool.close().await;
    Ok(())
}
