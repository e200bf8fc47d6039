//! The way down to sqlx from a connection checked out through pgdbm.

use pgdbm::prelude::*;
use pgdbm_driver_sqlx::{SqlxDriver, connection, sqlx};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_of_a_checked_out_connection_runs_native_queries() -> pgdbm::Result<()> {
    let ctx = pgdbm_conformance::Ctx::new::<SqlxDriver>("escape_hatch").await?;
    let conn = ctx.db.acquire().await?;
    let pid: i32 = conn.fetch_value("SELECT pg_backend_pid()", &[]).await?;
    let native = connection(&conn).expect("an sqlx connection");
    {
        let mut guard = native.lock().await?;
        // sqlx's own API and types, on the same session.
        let (native_pid, text): (i32, String) =
            sqlx::query_as("SELECT pg_backend_pid(), $1 || '!'")
                .bind("hi")
                .fetch_one(&mut **guard)
                .await
                .expect("native query");
        assert_eq!(native_pid, pid);
        assert_eq!(text, "hi!");
    }
    // Not an sqlx connection: no way down through this driver's helper.
    let other = pgdbm_conformance::Ctx::new::<pgdbm_driver_tokio_postgres::TokioPostgres>(
        "escape_hatch_other",
    )
    .await?;
    let foreign = other.db.acquire().await?;
    assert!(connection(&foreign).is_none());
    assert!(pgdbm_driver_tokio_postgres::client(&conn).is_none());
    Ok(())
}
