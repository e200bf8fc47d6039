//! The admin view across tenants.

use axum::http::StatusCode;
use pgdbm_testing::TestDatabase;
use saas_app::registry::ControlModule;

use crate::common::{ADMIN_KEY, Key, app, call, create_project, sign_up};

#[pgdbm_testing::test(module = ControlModule, schema = "control")]
async fn admin_sees_project_counts_across_tenants(db: TestDatabase) {
    let (app, _) = app(&db);
    let (a, _b, c) = (
        sign_up(&app, "alpha").await,
        sign_up(&app, "bravo").await,
        sign_up(&app, "charlie").await,
    );
    create_project(&app, &a, "a1").await;
    create_project(&app, &a, "a2").await;
    create_project(&app, &c, "c1").await;

    let (status, list) = call(&app, "GET", "/admin/tenants", Key::Header(ADMIN_KEY), None).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    let counts: Vec<(&str, i64)> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["slug"].as_str().unwrap(), t["projects"].as_i64().unwrap()))
        .collect();
    assert_eq!(counts, [("alpha", 2), ("bravo", 0), ("charlie", 1)]);

    let (status, page) = call(
        &app,
        "GET",
        "/admin/tenants?limit=1&offset=1",
        Key::Bearer(ADMIN_KEY),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page.as_array().unwrap().len(), 1);
    assert_eq!(page[0]["slug"], "bravo");
}

#[pgdbm_testing::test(module = ControlModule, schema = "control")]
async fn admin_routes_need_the_admin_key(db: TestDatabase) {
    let (app, _) = app(&db);
    let tenant = sign_up(&app, "acme").await;
    let (status, _) = call(&app, "GET", "/admin/tenants", Key::None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    for key in [tenant.as_str(), "admin-key-for-test", "nope"] {
        let (status, err) = call(&app, "GET", "/admin/tenants", Key::Bearer(key), None).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{key}: {err}");
        let (status, _) = call(
            &app,
            "DELETE",
            "/admin/tenants/acme",
            Key::Bearer(key),
            None,
        )
        .await;
        assert_eq!(status, StatusCode::FORBIDDEN);
    }
    // A tenant key does not reach the admin routes, nor the admin key the tenant routes.
    let (status, _) = call(&app, "GET", "/projects", Key::Bearer(ADMIN_KEY), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}
