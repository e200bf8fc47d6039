//! Plan limits hold when creates race.

use axum::http::StatusCode;
use pgdbm::prelude::*;
use pgdbm_testing::TestDatabase;
use saas_app::registry::ControlModule;
use serde_json::json;

use pgdbm_driver_tokio_postgres::TokioPostgres;

use crate::common::{Key, app, call, create_project, sign_up, sign_up_on};

/// Concurrent creates of one tenant.
const BURST: usize = 16;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_limit_holds_under_concurrent_creates() -> pgdbm::Result<()> {
    // A pool as large as the burst, so that every create's transaction is open at once.
    let db = TestDatabase::<TokioPostgres>::builder()
        .module(&ControlModule)
        .schema("control")
        .max_connections(BURST as u32 + 2)
        .build()
        .await?;
    // Open the pool's connections now, so the burst below does not wait for them one by one.
    let warm = (0..BURST).map(|_| db.execute("SELECT pg_sleep(0.05)", &[]));
    futures_util::future::try_join_all(warm).await?;
    let (app, _) = app(&db);
    let key = sign_up(&app, "acme").await; // free: 3 projects
    let other = sign_up_on(&app, "bigco", "pro").await;
    create_project(&app, &key, "first").await;

    let creates = (0..BURST).map(|i| {
        let body = json!({ "name": format!("p{i}") });
        call(&app, "POST", "/projects", Key::Bearer(&key), Some(body))
    });
    let results = futures_util::future::join_all(creates).await;
    let created = results
        .iter()
        .filter(|(s, _)| *s == StatusCode::CREATED)
        .count();
    let refused: Vec<_> = results
        .iter()
        .filter(|(s, _)| *s == StatusCode::FORBIDDEN)
        .collect();
    assert_eq!((created, refused.len()), (2, BURST - 2), "{results:?}");
    assert!(
        refused.iter().all(|(_, e)| e["code"] == "plan_limit"),
        "{refused:?}"
    );

    let stored: i64 = db
        .fetch_value("SELECT count(*) FROM tenant_acme.projects", &[])
        .await?;
    assert_eq!(stored, 3);
    // The limit is per tenant: another tenant (another plan) is not affected.
    for i in 0..4 {
        create_project(&app, &other, &format!("b{i}")).await;
    }
    // Room again after a delete.
    let (_, list) = call(&app, "GET", "/projects", Key::Bearer(&key), None).await;
    let id = list[0]["id"].as_str().unwrap();
    let (status, _) = call(
        &app,
        "DELETE",
        &format!("/projects/{id}"),
        Key::Bearer(&key),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    create_project(&app, &key, "again").await;
    Ok(())
}
