//! `#[pgdbm_testing::test]` on a real server: one module, two modules in two schemas, fixtures,
//! both drivers, and the database gone after the test (also after a panic).

use std::cell::RefCell;

use pgdbm::prelude::*;
use pgdbm::{Database, MigrationSource};
use pgdbm_driver_sqlx::SqlxDriver;
use pgdbm_driver_tokio_postgres::TokioPostgres;
use pgdbm_testing::{TestDatabase, TestServer, count_rows};

struct Users;

impl Module for Users {
    fn name(&self) -> &str {
        "users"
    }
    fn migrations(&self) -> MigrationSource {
        MigrationSource::from_pairs([(
            "001_users.sql",
            "CREATE TABLE {{tables.users}} (id bigserial PRIMARY KEY, email text NOT NULL UNIQUE);",
        )])
        .expect("valid migrations")
    }
}

struct Audit;

impl Module for Audit {
    fn name(&self) -> &str {
        "audit"
    }
    fn migrations(&self) -> MigrationSource {
        MigrationSource::from_pairs([(
            "001_events.sql",
            "CREATE TABLE {{tables.events}} (id bigserial PRIMARY KEY, what text NOT NULL);",
        )])
        .expect("valid migrations")
    }
    fn depends_on(&self) -> Vec<&str> {
        vec!["users"]
    }
}

/// The schema-qualified table exists in `db`'s database.
async fn exists(db: &Database, qualified: &str) -> pgdbm::Result<bool> {
    db.fetch_value(
        "SELECT pg_catalog.to_regclass($1) IS NOT NULL",
        params![qualified],
    )
    .await
}

#[pgdbm_testing::test(module = Users, schema = "users")]
async fn one_module_in_its_schema(db: TestDatabase) -> pgdbm::Result<()> {
    assert_eq!(db.schema(), Some("users"));
    assert_eq!(db.pool().driver_name(), "tokio-postgres");
    assert!(db.name().starts_with("pgdbm_test_"), "{}", db.name());
    assert!(db.template().starts_with("pgdbm_tpl_"), "{}", db.template());
    let current: String = db
        .fetch_value("SELECT current_database()::text", &[])
        .await?;
    assert_eq!(current, db.name());
    assert!(exists(&db, "users.users").await?);
    db.execute(
        "INSERT INTO {{tables.users}} (email) VALUES ($1)",
        params!["ann@example.com"],
    )
    .await?;
    assert_eq!(count_rows(&db, "users").await?, 1);
    Ok(())
}

#[pgdbm_testing::test(modules = [Users = "attr_users", Audit = "attr_audit"])]
async fn two_modules_in_two_schemas(db: TestDatabase) -> pgdbm::Result<()> {
    // The handle is scoped to the first module's schema; each module is in its own.
    assert_eq!(db.schema(), Some("attr_users"));
    let audit = db.module_db("audit")?;
    assert_eq!(audit.schema(), Some("attr_audit"));
    assert_eq!(db.module_db("users")?.schema(), Some("attr_users"));
    assert!(db.module_db("billing").is_err());
    assert!(exists(&db, "attr_users.users").await?);
    assert!(exists(&db, "attr_audit.events").await?);
    assert!(!exists(&db, "attr_users.events").await?);
    assert!(!exists(&db, "attr_audit.users").await?);
    // Each module's ledger is in its own schema.
    assert!(exists(&db, "attr_users.schema_migrations").await?);
    assert!(exists(&db, "attr_audit.schema_migrations").await?);

    // Both modules in one transaction.
    db.transaction(|tx| {
        let audit = audit.clone();
        async move {
            tx.execute(
                "INSERT INTO {{tables.users}} (email) VALUES ($1)",
                params!["ann@example.com"],
            )
            .await?;
            audit
                .in_transaction(&tx)
                .execute(
                    "INSERT INTO {{tables.events}} (what) VALUES ($1)",
                    params!["signup"],
                )
                .await?;
            Ok::<_, pgdbm::Error>(())
        }
    })
    .await?;
    assert_eq!(count_rows(&audit, "events").await?, 1);
    Ok(())
}

#[pgdbm_testing::test(modules = [Users, Audit = "attr_audit_own"], schema = "attr_main")]
async fn default_schema_and_a_module_schema(db: TestDatabase) -> pgdbm::Result<()> {
    assert_eq!(db.schema(), Some("attr_main"));
    assert_eq!(db.module_db("users")?.schema(), Some("attr_main"));
    assert_eq!(db.module_db("audit")?.schema(), Some("attr_audit_own"));
    assert!(exists(&db, "attr_main.users").await?);
    assert!(exists(&db, "attr_audit_own.events").await?);
    Ok(())
}

#[pgdbm_testing::test(
    module = Users,
    schema = "users",
    fixtures = ["tests/fixtures/users.json", "tests/fixtures/users.sql"],
)]
async fn fixtures_are_loaded_in_order(db: TestDatabase) -> pgdbm::Result<()> {
    let emails: Vec<String> = db
        .fetch_all("SELECT email FROM {{tables.users}} ORDER BY id", &[])
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect::<pgdbm::Result<_>>()?;
    assert_eq!(
        emails,
        ["ann@example.com", "bob@example.com", "carol@example.com"]
    );
    Ok(())
}

#[pgdbm_testing::test(module = Users, schema = "users", driver = Sqlx)]
async fn sqlx_driver(db: TestDatabase) -> pgdbm::Result<()> {
    assert_eq!(db.pool().driver_name(), "sqlx");
    db.execute(
        "INSERT INTO {{tables.users}} (email) VALUES ($1)",
        params!["ann@example.com"],
    )
    .await?;
    assert_eq!(count_rows(&db, "users").await?, 1);
    Ok(())
}

#[pgdbm_testing::test(modules = [Users = "attr_users", Audit = "attr_audit"])]
async fn driver_from_the_parameter_type(db: TestDatabase<SqlxDriver>) {
    assert_eq!(db.pool().driver_name(), "sqlx");
    assert!(exists(&db, "attr_audit.events").await.unwrap());
}

thread_local! {
    /// The database the last attribute test on this thread ran in.
    static LAST_DATABASE: RefCell<Option<String>> = const { RefCell::new(None) };
}

async fn remember(db: &TestDatabase<TokioPostgres>) {
    let current: String = db
        .fetch_value("SELECT current_database()::text", &[])
        .await
        .expect("current_database");
    assert_eq!(current, db.name(), "the test runs in its own database");
    LAST_DATABASE.with(|last| *last.borrow_mut() = Some(current));
}

#[pgdbm_testing::test(module = Users)]
async fn records_its_database(db: TestDatabase) {
    remember(&db).await;
}

#[pgdbm_testing::test(module = Users)]
#[should_panic(expected = "the test failed on purpose")]
async fn panics_in_its_database(db: TestDatabase) {
    remember(&db).await;
    panic!("the test failed on purpose");
}

/// `true` when a database of that name exists on the test server.
fn database_exists(name: &str) -> bool {
    pgdbm_testing::__private::block_on(async {
        let server = TestServer::shared::<TokioPostgres>().await?;
        let config = server.config.to_builder().database("postgres").build()?;
        let admin = Database::connect::<TokioPostgres>(&config).await?;
        let found = admin
            .fetch_value::<bool>(
                "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_database WHERE datname = $1)",
                params![name],
            )
            .await;
        admin.close().await;
        found
    })
    .expect("querying pg_database")
}

/// Runs the attribute tests above by hand (a `#[test]` function is an ordinary function) and
/// looks for their databases afterwards: gone after a passing test and after a panicking one.
#[test]
fn the_database_is_dropped_after_the_test() {
    LAST_DATABASE.with(|last| last.borrow_mut().take());
    records_its_database();
    let name = LAST_DATABASE
        .with(|last| last.borrow_mut().take())
        .expect("the test ran");
    assert!(
        !database_exists(&name),
        "{name} is still there after the test"
    );

    let outcome = std::panic::catch_unwind(panics_in_its_database);
    assert!(outcome.is_err(), "the test was expected to panic");
    let name = LAST_DATABASE
        .with(|last| last.borrow_mut().take())
        .expect("the test ran");
    assert!(
        !database_exists(&name),
        "{name} is still there after the test panicked"
    );
}
