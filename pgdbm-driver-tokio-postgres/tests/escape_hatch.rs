//! The way down to tokio-postgres from a connection checked out through pgdbm.

use pgdbm::prelude::*;
use pgdbm_driver_tokio_postgres::{TokioPostgres, client};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_of_a_checked_out_connection_runs_native_queries() -> pgdbm::Result<()> {
    let ctx = pgdbm_conformance::Ctx::new::<TokioPostgres>("escape_hatch").await?;
    let conn = ctx.db.acquire().await?;
    let pid: i32 = conn.fetch_value("SELECT pg_backend_pid()", &[]).await?;
    let native = client(&conn).expect("a tokio-postgres connection");
    // The client's own API and types, on the same session.
    let row = native
        .query_one("SELECT pg_backend_pid(), $1::text || '!'", &[&"hi"])
        .await
        .expect("native query");
    assert_eq!(row.get::<_, i32>(0), pid);
    assert_eq!(row.get::<_, String>(1), "hi!");
    // A typed downcast through `as_any` too.
    let typed = conn
        .as_any()
        .downcast_ref::<pgdbm_driver_tokio_postgres::TokioPostgresConnection>()
        .expect("downcast");
    assert!(!typed.client().is_closed());
    Ok(())
}
