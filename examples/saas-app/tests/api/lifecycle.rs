//! Suspend, resume, delete, the reaper and upgrading every tenant.

use std::time::Duration;

use axum::http::StatusCode;
use pgdbm::prelude::*;
use pgdbm_testing::TestDatabase;
use saas_app::lifecycle::{migrate_all_tenants, reap_abandoned_signups};
use saas_app::registry::ControlModule;
use serde_json::json;

use crate::common::{
    ADMIN_KEY, Key, app, call, create_project, registry_rows, schema_exists, sign_up,
};

#[pgdbm_testing::test(module = ControlModule, schema = "control")]
async fn suspended_tenants_get_403_until_resumed(db: TestDatabase) {
    let (app, state) = app(&db);
    let key = sign_up(&app, "acme").await;
    let id = create_project(&app, &key, "one").await; // the key is cached now
    assert_eq!(state.cache().len(), 1);

    let admin = Key::Bearer(ADMIN_KEY);
    let (status, t) = call(&app, "POST", "/admin/tenants/acme/suspend", admin, None).await;
    assert_eq!(
        (status, t["status"].as_str()),
        (StatusCode::OK, Some("suspended"))
    );
    assert!(
        state.cache().is_empty(),
        "suspension invalidates the cached key"
    );
    for (method, uri) in [
        ("GET", "/projects".to_owned()),
        ("GET", format!("/projects/{id}")),
        ("DELETE", format!("/projects/{id}")),
    ] {
        let (status, err) = call(&app, method, &uri, Key::Bearer(&key), None).await;
        assert_eq!(
            (status, err["code"].as_str()),
            (StatusCode::FORBIDDEN, Some("suspended")),
            "{method} {uri}"
        );
    }
    let (status, _) = call(&app, "POST", "/admin/tenants/acme/suspend", admin, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "not active any more");

    let (status, _) = call(&app, "POST", "/admin/tenants/acme/resume", admin, None).await;
    assert_eq!(status, StatusCode::OK);
    let (status, list) = call(&app, "GET", "/projects", Key::Bearer(&key), None).await;
    assert_eq!(
        (status, list.as_array().unwrap().len()),
        (StatusCode::OK, 1)
    );
}

#[pgdbm_testing::test(module = ControlModule, schema = "control")]
async fn a_suspension_made_elsewhere_still_stops_creates(db: TestDatabase) -> pgdbm::Result<()> {
    let (app, state) = app(&db);
    let key = sign_up(&app, "acme").await;
    create_project(&app, &key, "one").await;
    // Another process suspends: this one's cache still trusts the key until its time to live…
    db.execute(
        "UPDATE {{tables.tenants}} SET status = 'suspended' WHERE slug = 'acme'",
        &[],
    )
    .await?;
    assert_eq!(state.cache().len(), 1);
    let (status, _) = call(&app, "GET", "/projects", Key::Bearer(&key), None).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "a cached key is trusted until its time to live"
    );
    // …but a create reads the status under the tenant's row lock.
    let body = json!({ "name": "two" });
    let (status, err) = call(&app, "POST", "/projects", Key::Bearer(&key), Some(body)).await;
    assert_eq!(
        (status, err["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("suspended"))
    );
    Ok(())
}

#[pgdbm_testing::test(module = ControlModule, schema = "control")]
async fn delete_drops_the_schema_and_the_keys(db: TestDatabase) -> pgdbm::Result<()> {
    let (app, state) = app(&db);
    let key = sign_up(&app, "acme").await;
    let keep = sign_up(&app, "keep").await;
    create_project(&app, &key, "one").await;
    create_project(&app, &keep, "kept").await;
    assert!(schema_exists(&db, "tenant_acme").await);

    let admin = Key::Bearer(ADMIN_KEY);
    let (status, _) = call(&app, "DELETE", "/admin/tenants/acme", admin, None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert!(!schema_exists(&db, "tenant_acme").await);
    assert_eq!(registry_rows(&db, "acme").await, 0);
    let keys: i64 = db
        .fetch_value("SELECT count(*) FROM {{tables.api_keys}}", &[])
        .await?;
    assert_eq!(keys, 1, "only the other tenant's key is left");
    assert_eq!(state.cache().len(), 1);
    let (status, _) = call(&app, "GET", "/projects", Key::Bearer(&key), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = call(&app, "DELETE", "/admin/tenants/acme", admin, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // The other tenant is untouched, and the slug can be signed up again, empty.
    let (status, list) = call(&app, "GET", "/projects", Key::Bearer(&keep), None).await;
    assert_eq!(
        (status, list.as_array().unwrap().len()),
        (StatusCode::OK, 1)
    );
    let again = sign_up(&app, "acme").await;
    let (_, list) = call(&app, "GET", "/projects", Key::Bearer(&again), None).await;
    assert_eq!(list.as_array().unwrap().len(), 0);
    Ok(())
}

#[pgdbm_testing::test(module = ControlModule, schema = "control")]
async fn abandoned_sign_ups_are_reaped(db: TestDatabase) -> pgdbm::Result<()> {
    let (app, state) = app(&db);
    sign_up(&app, "live").await;
    // What a crash half way through a sign-up leaves: a provisioning row and its schema.
    db.batch_execute(
        "INSERT INTO {{tables.tenants}} (slug, name, plan, status, status_changed_at)
             VALUES ('crashed', 'C', 'free', 'provisioning', now() - interval '1 hour'),
                    ('recent', 'R', 'free', 'provisioning', now());
         CREATE SCHEMA tenant_crashed; CREATE TABLE tenant_crashed.projects (id int);",
    )
    .await?;
    let reaped = reap_abandoned_signups(state.registry(), Duration::from_secs(600)).await?;
    assert_eq!(reaped, ["crashed"]);
    assert!(!schema_exists(&db, "tenant_crashed").await);
    assert_eq!(registry_rows(&db, "crashed").await, 0);
    assert_eq!(
        registry_rows(&db, "recent").await,
        1,
        "may still be in progress"
    );
    assert!(schema_exists(&db, "tenant_live").await);
    Ok(())
}

#[pgdbm_testing::test(module = ControlModule, schema = "control")]
async fn migrate_all_tenants_applies_what_is_pending(db: TestDatabase) -> pgdbm::Result<()> {
    let (app, state) = app(&db);
    sign_up(&app, "current").await;
    sign_up(&app, "behind").await;
    // A tenant whose schema predates the module's migrations.
    db.batch_execute("DROP SCHEMA tenant_behind CASCADE; CREATE SCHEMA tenant_behind")
        .await?;
    let report = migrate_all_tenants(state.registry(), 4).await?;
    assert_eq!((report.tenants, report.applied), (2, 1));
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    let has_table: bool = db
        .fetch_value(
            "SELECT to_regclass('tenant_behind.projects') IS NOT NULL",
            &[],
        )
        .await?;
    assert!(has_table);
    let again = migrate_all_tenants(state.registry(), 4).await?;
    assert_eq!(again.applied, 0);
    Ok(())
}
