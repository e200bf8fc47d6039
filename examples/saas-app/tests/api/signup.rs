//! Sign-up: the happy path through project CRUD, what it leaves in the database, bad input,
//! concurrent sign-ups, and failures half way leaving nothing behind.

use axum::http::StatusCode;
use pgdbm::prelude::*;
use pgdbm_testing::TestDatabase;
use saas_app::registry::ControlModule;
use serde_json::json;

use crate::common::{Key, app, call, create_project, registry_rows, schema_exists, sign_up};

#[pgdbm_testing::test(module = ControlModule, schema = "control")]
async fn sign_up_then_crud_projects(db: TestDatabase) {
    let (app, _) = app(&db);
    let key = sign_up(&app, "acme").await;
    assert!(key.starts_with("sk_"), "{key}");

    let (status, me) = call(&app, "GET", "/tenant", Key::Bearer(&key), None).await;
    assert_eq!(
        (status, me["slug"].as_str()),
        (StatusCode::OK, Some("acme"))
    );

    // Both ways of presenting the key work.
    let body = json!({ "name": "Apollo", "description": "to the moon" });
    let (status, created) = call(&app, "POST", "/projects", Key::Header(&key), Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["status"], "active");
    let id = created["id"].as_str().unwrap().to_owned();
    let uri = format!("/projects/{id}");

    let (status, list) = call(&app, "GET", "/projects", Key::Bearer(&key), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list.as_array().unwrap().len(), 1);
    let (status, got) = call(&app, "GET", &uri, Key::Bearer(&key), None).await;
    assert_eq!((status, &got), (StatusCode::OK, &created));

    let patch = json!({ "name": "Artemis", "status": "archived" });
    let (status, patched) = call(&app, "PATCH", &uri, Key::Bearer(&key), Some(patch)).await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!(patched["name"], "Artemis");
    assert_eq!(patched["status"], "archived");
    assert_eq!(patched["description"], "to the moon");
    assert_ne!(
        patched["updated_at"], created["updated_at"],
        "the trigger touches it"
    );

    let bad = json!({ "status": "deleted" });
    let (status, _) = call(&app, "PATCH", &uri, Key::Bearer(&key), Some(bad)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, err) = call(
        &app,
        "POST",
        "/projects",
        Key::Bearer(&key),
        Some(json!({"name": " "})),
    )
    .await;
    assert_eq!(
        (status, err["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid"))
    );
    let (status, err) = call(&app, "GET", "/projects/42", Key::Bearer(&key), None).await;
    assert_eq!(
        (status, err["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("bad_request"))
    );

    let (status, body) = call(&app, "DELETE", &uri, Key::Bearer(&key), None).await;
    assert_eq!(
        (status, body),
        (StatusCode::NO_CONTENT, serde_json::Value::Null)
    );
    let (status, _) = call(&app, "GET", &uri, Key::Bearer(&key), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = call(&app, "DELETE", &uri, Key::Bearer(&key), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[pgdbm_testing::test(module = ControlModule, schema = "control")]
async fn requests_without_a_valid_key_get_401(db: TestDatabase) {
    let (app, _) = app(&db);
    let key = sign_up(&app, "acme").await;
    // Same key id, another secret: found by id, refused by Argon2.
    let forged = format!("{}{}", &key[..16], "0".repeat(64));
    assert_ne!(forged, key);
    for presented in [
        Key::None,
        Key::Bearer("nonsense"),
        Key::Bearer(&forged),
        Key::Header(&forged),
    ] {
        let (status, err) = call(&app, "GET", "/projects", presented, None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{presented:?}: {err}");
        assert_eq!(err["code"], "unauthorized");
    }
}

#[pgdbm_testing::test(module = ControlModule, schema = "control")]
async fn sign_up_migrates_the_schema_and_stores_only_a_hash(db: TestDatabase) -> pgdbm::Result<()> {
    let (app, _) = app(&db);
    let key = sign_up(&app, "acme").await;
    assert!(schema_exists(&db, "tenant_acme").await);
    // The tenant's own ledger, under a module name of its own (its own migration lock).
    let ledger: Vec<(String, String)> = db
        .fetch_all_as(
            "SELECT module_name, filename FROM tenant_acme.schema_migrations",
            &[],
        )
        .await?;
    assert_eq!(
        ledger,
        [("tenant_acme".to_owned(), "001_projects.sql".to_owned())]
    );
    let (key_id, hash): (String, String) = db
        .fetch_one_as("SELECT key_id, key_hash FROM {{tables.api_keys}}", &[])
        .await?;
    assert_eq!(key_id, key[3..15]);
    assert!(hash.starts_with("$argon2id$"), "{hash}");
    assert!(!hash.contains(&key[16..]));
    Ok(())
}

#[pgdbm_testing::test(module = ControlModule, schema = "control")]
async fn bad_sign_ups_are_422_and_leave_nothing(db: TestDatabase) -> pgdbm::Result<()> {
    let (app, _) = app(&db);
    for slug in [
        "",
        "Acme",
        "1acme",
        "_acme",
        "ac-me",
        "acme;drop schema control",
        "ac me",
        &"a".repeat(57),
    ] {
        let body = json!({ "slug": slug, "name": "X" });
        let (status, err) = call(&app, "POST", "/tenants", Key::None, Some(body)).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{slug:?}: {err}");
        assert!(err["error"].as_str().unwrap().contains("slug"), "{err}");
    }
    let (status, err) = call(
        &app,
        "POST",
        "/tenants",
        Key::None,
        Some(json!({ "slug": "acme", "name": "X", "plan": "gold" })),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{err}");
    assert!(
        err["error"].as_str().unwrap().contains("unknown plan"),
        "{err}"
    );
    let (status, _) = call(
        &app,
        "POST",
        "/tenants",
        Key::None,
        Some(json!({ "slug": "acme", "name": "  " })),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, _) = call(
        &app,
        "POST",
        "/tenants",
        Key::None,
        Some(json!({ "slug": "acme" })),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);

    let tenants: i64 = db
        .fetch_value("SELECT count(*) FROM {{tables.tenants}}", &[])
        .await?;
    let schemas: i64 = db
        .fetch_value(
            "SELECT count(*) FROM information_schema.schemata WHERE schema_name LIKE 'tenant%'",
            &[],
        )
        .await?;
    assert_eq!((tenants, schemas), (0, 0));
    Ok(())
}

#[pgdbm_testing::test(module = ControlModule, schema = "control")]
async fn concurrent_sign_ups_of_one_slug_one_wins(db: TestDatabase) -> pgdbm::Result<()> {
    let (app, _) = app(&db);
    let body = json!({ "slug": "acme", "name": "Acme" });
    let attempts = (0..8).map(|_| call(&app, "POST", "/tenants", Key::None, Some(body.clone())));
    let results = futures_util::future::join_all(attempts).await;
    let created: Vec<_> = results
        .iter()
        .filter(|(s, _)| *s == StatusCode::CREATED)
        .collect();
    let conflicts = results
        .iter()
        .filter(|(s, _)| *s == StatusCode::CONFLICT)
        .count();
    assert_eq!((created.len(), conflicts), (1, 7), "{results:?}");
    assert_eq!(registry_rows(&db, "acme").await, 1);
    assert!(schema_exists(&db, "tenant_acme").await);
    let key = created[0].1["api_key"].as_str().unwrap();
    create_project(&app, key, "works").await;
    Ok(())
}

#[pgdbm_testing::test(module = ControlModule, schema = "control")]
async fn many_tenants_sign_up_at_once(db: TestDatabase) -> pgdbm::Result<()> {
    let (app, _) = app(&db);
    let slugs: Vec<String> = (0..12).map(|i| format!("t{i}")).collect();
    let keys = futures_util::future::join_all(slugs.iter().map(|s| sign_up(&app, s))).await;
    for (slug, key) in slugs.iter().zip(&keys) {
        assert!(
            schema_exists(&db, &format!("tenant_{slug}")).await,
            "{slug}"
        );
        create_project(&app, key, slug).await;
    }
    let active: i64 = db
        .fetch_value(
            "SELECT count(*) FROM {{tables.tenants}} WHERE status = 'active'",
            &[],
        )
        .await?;
    assert_eq!(active, 12);
    Ok(())
}

/// Makes every `CREATE TABLE` in schema `schema` fail (an event trigger, database-wide: this
/// test's database only).
async fn fail_tables_in(db: &Database, schema: &str) -> pgdbm::Result<()> {
    db.batch_execute(&format!(
        "CREATE FUNCTION control.refuse_tables() RETURNS event_trigger LANGUAGE plpgsql AS $$
         BEGIN
             IF EXISTS (SELECT 1 FROM pg_event_trigger_ddl_commands()
                        WHERE schema_name = '{schema}' AND command_tag = 'CREATE TABLE') THEN
                 RAISE EXCEPTION 'injected failure';
             END IF;
         END $$;
         CREATE EVENT TRIGGER refuse_tables ON ddl_command_end
             EXECUTE FUNCTION control.refuse_tables();"
    ))
    .await
}

#[pgdbm_testing::test(module = ControlModule, schema = "control")]
async fn a_failed_migration_leaves_no_tenant_behind(db: TestDatabase) -> pgdbm::Result<()> {
    let (app, _) = app(&db);
    fail_tables_in(&db, "tenant_boom").await?;
    let body = json!({ "slug": "boom", "name": "Boom" });
    let (status, err) = call(&app, "POST", "/tenants", Key::None, Some(body.clone())).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{err}");
    assert_eq!(
        err["error"], "internal error",
        "no server detail reaches the client"
    );
    assert!(!schema_exists(&db, "tenant_boom").await);
    assert_eq!(registry_rows(&db, "boom").await, 0);

    db.batch_execute("DROP EVENT TRIGGER refuse_tables").await?;
    let (status, _) = call(&app, "POST", "/tenants", Key::None, Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "the slug is free again");
    Ok(())
}

#[pgdbm_testing::test(module = ControlModule, schema = "control")]
async fn a_schema_that_exists_is_neither_used_nor_dropped(db: TestDatabase) -> pgdbm::Result<()> {
    let (app, _) = app(&db);
    db.batch_execute("CREATE SCHEMA tenant_old; CREATE TABLE tenant_old.secrets (s text)")
        .await?;
    let body = json!({ "slug": "old", "name": "Old" });
    let (status, err) = call(&app, "POST", "/tenants", Key::None, Some(body)).await;
    assert_eq!(status, StatusCode::CONFLICT, "{err}");
    assert_eq!(registry_rows(&db, "old").await, 0);
    let kept: bool = db
        .fetch_value("SELECT to_regclass('tenant_old.secrets') IS NOT NULL", &[])
        .await?;
    assert!(kept);
    Ok(())
}

#[pgdbm_testing::test(module = ControlModule, schema = "control")]
async fn a_sign_up_dropped_half_way_is_undone(db: TestDatabase) -> pgdbm::Result<()> {
    let (app, _) = app(&db);
    // Hold the tenant's migration lock (its key is derived from the module name, which is the
    // schema name), so the sign-up waits in `provisioning` until we let it go.
    let holder = db.acquire().await?;
    let lock = "SELECT pg_advisory_lock(hashtext('pgdbm_migration_' || 'tenant_slow'))";
    holder.execute(lock, &[]).await?;

    let body = json!({ "slug": "slow", "name": "Slow" });
    let request = call(&app, "POST", "/tenants", Key::None, Some(body.clone()));
    let provisioning = async {
        loop {
            let status: Option<String> = db
                .fetch_optional_as::<(String,)>(
                    "SELECT status FROM {{tables.tenants}} WHERE slug = 'slow'",
                    &[],
                )
                .await
                .unwrap()
                .map(|(s,)| s);
            if status.as_deref() == Some("provisioning") {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    };
    tokio::select! {
        answered = request => panic!("the sign-up cannot finish while the lock is held: {answered:?}"),
        () = provisioning => {} // the request future is dropped here: the client went away
    }
    let unlock = "SELECT pg_advisory_unlock(hashtext('pgdbm_migration_' || 'tenant_slow'))";
    holder.execute(unlock, &[]).await?;

    // The task goes on, migrates, sees nobody waits for the key, and undoes everything.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while registry_rows(&db, "slow").await > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the sign-up was never undone"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(!schema_exists(&db, "tenant_slow").await);
    let (status, _) = call(&app, "POST", "/tenants", Key::None, Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "a retry succeeds");
    Ok(())
}
