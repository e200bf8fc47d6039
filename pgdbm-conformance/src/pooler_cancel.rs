//! A statement abandoned behind a transaction pooler stops on the server.
//!
//! Behind a transaction pooler pgdbm sends no cancel request for an abandoned statement: one
//! that arrives late reaches whatever the pooler's server connection runs by then, perhaps
//! another client's statement. The client connection is closed instead; the pooler then closes
//! the server connection it was using, and a server whose role or database has
//! `client_connection_check_interval` set (the crate docs recommend it, with a
//! `statement_timeout`, behind a pooler) notices and stops the statement within that interval.

use std::time::{Duration, Instant};

use pgdbm::{Result, params};

use crate::Ctx;
use crate::pooler::pooled;
use crate::support::wait_until;

/// How long the server may take to stop the statement: the check interval set below (200 ms)
/// and PgBouncer noticing the closed client, with room for a loaded machine.
const STOPPED_WITHIN: Duration = Duration::from_secs(5);

/// A statement abandoned by a timeout through PgBouncer is gone from the server within
/// five seconds when its database sets `client_connection_check_interval`, and the pool
/// answers at once afterwards.
///
/// # Errors
///
/// Any unexpected query error.
pub async fn pooler_dropped_statement_stops_on_the_server(ctx: &Ctx) -> Result<()> {
    // A database of its own: the server-side setting applies to it alone.
    let own = ctx.isolated().await?;
    let name: String = own.db.fetch_value("SELECT current_database()", &[]).await?;
    own.db
        .batch_execute(&format!(
            "ALTER DATABASE \"{}\" SET client_connection_check_interval = '200ms'",
            name.replace('"', "\"\"")
        ))
        .await?;
    let app = format!("pgdbm_pooler_drop_{}", std::process::id());
    let db = pooled(&own, |b| b.application_name(&app).max_connections(2)).await?;
    let report = db.health_check().await;
    assert!(
        !report
            .reasons
            .iter()
            .any(|r| r.contains("client_connection_check_interval")),
        "the database sets it: {:?}",
        report.reasons
    );
    let marker = "pgdbm_pooler_dropped_sleep";
    let abandoned = tokio::time::timeout(
        Duration::from_millis(300),
        db.execute(&format!("SELECT pg_sleep(30) /* {marker} */"), &[]),
    )
    .await;
    assert!(abandoned.is_err(), "the 30 s sleep finished within 300 ms");
    let start = Instant::now();
    let gone = wait_until(STOPPED_WITHIN, Duration::from_millis(50), || async {
        let running: i64 = own
            .db
            .fetch_value(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 \
                 AND state = 'active' AND strpos(query, $2) > 0",
                params![app.as_str(), marker],
            )
            .await?;
        Ok(running == 0)
    })
    .await?;
    assert!(
        gone,
        "the abandoned statement still runs on the server after {:?}",
        start.elapsed()
    );
    eprintln!(
        "the abandoned statement was gone from the server after {:?}",
        start.elapsed()
    );
    let one: i32 = db.fetch_value("SELECT 1", &[]).await?;
    assert_eq!(one, 1);
    db.close().await;
    Ok(())
}
