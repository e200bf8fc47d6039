//! No request of one tenant reads or changes another tenant's rows.

use axum::http::StatusCode;
use pgdbm::prelude::*;
use pgdbm_testing::TestDatabase;
use saas_app::registry::ControlModule;
use serde_json::json;

use crate::common::{Key, app, call, create_project, sign_up};

/// Every column of every row of `schema.projects`, as text, in id order.
async fn snapshot(db: &Database, schema: &str) -> Vec<String> {
    let sql = format!("SELECT p::text FROM {schema}.projects p ORDER BY id");
    let rows: Vec<(String,)> = db.fetch_all_as(&sql, &[]).await.expect("snapshot");
    rows.into_iter().map(|(r,)| r).collect()
}

#[pgdbm_testing::test(module = ControlModule, schema = "control")]
async fn tenant_a_cannot_read_or_change_tenant_b_rows(db: TestDatabase) {
    let (app, _) = app(&db);
    let (a, b) = (sign_up(&app, "alpha").await, sign_up(&app, "bravo").await);
    let a_project = create_project(&app, &a, "alpha's").await;
    let b_projects = [
        create_project(&app, &b, "bravo's first").await,
        create_project(&app, &b, "bravo's second").await,
    ];
    let b_before = snapshot(&db, "tenant_bravo").await;
    let a_before = snapshot(&db, "tenant_alpha").await;
    assert_eq!((b_before.len(), a_before.len()), (2, 1));

    // A lists only its own rows.
    let (status, list) = call(&app, "GET", "/projects?limit=200", Key::Bearer(&a), None).await;
    assert_eq!(status, StatusCode::OK);
    let ids: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [a_project.as_str()]);

    // B's ids, with A's key: not found, whatever the method, through either header.
    for id in &b_projects {
        let uri = format!("/projects/{id}");
        for key in [Key::Bearer(&a), Key::Header(&a)] {
            let (status, _) = call(&app, "GET", &uri, key, None).await;
            assert_eq!(status, StatusCode::NOT_FOUND);
            let patch = json!({ "name": "pwned", "description": "pwned", "status": "archived" });
            let (status, _) = call(&app, "PATCH", &uri, key, Some(patch)).await;
            assert_eq!(status, StatusCode::NOT_FOUND);
            let (status, _) = call(&app, "DELETE", &uri, key, None).await;
            assert_eq!(status, StatusCode::NOT_FOUND);
        }
    }
    // And the other way round.
    let uri = format!("/projects/{a_project}");
    let (status, _) = call(&app, "DELETE", &uri, Key::Bearer(&b), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // A key id of one tenant with the secret of another is no key at all.
    let spliced = format!("{}{}", &a[..16], &b[16..]);
    let (status, _) = call(&app, "GET", "/projects", Key::Bearer(&spliced), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // Read straight from the database: nothing of B (nor A) changed.
    assert_eq!(snapshot(&db, "tenant_bravo").await, b_before);
    assert_eq!(snapshot(&db, "tenant_alpha").await, a_before);
    let (status, list) = call(&app, "GET", "/projects", Key::Bearer(&b), None).await;
    assert_eq!(
        (status, list.as_array().unwrap().len()),
        (StatusCode::OK, 2)
    );
}
