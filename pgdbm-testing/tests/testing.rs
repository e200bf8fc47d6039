//! pgdbm-testing against a real server (found as the crate docs say, or started by the tests).

use std::time::Instant;

use pgdbm::prelude::*;
use pgdbm::{Database, MigrationSource};
use pgdbm_driver_tokio_postgres::TokioPostgres;
use pgdbm_testing::{
    RollbackOnly, TestDatabase, TestSchema, TestServer, assert_table_unchanged, count_rows,
    count_rows_where, load_fixtures, load_json_fixture, load_sql_fixture, rollback_after,
    snapshot_table, table_diff, table_exists, truncate,
};

type Tdb = TestDatabase<TokioPostgres>;

struct Shop;

impl Module for Shop {
    fn name(&self) -> &str {
        "pgdbm_testing_shop"
    }
    fn migrations(&self) -> MigrationSource {
        MigrationSource::from_pairs([
            (
                "001_customers.sql",
                "CREATE TABLE {{tables.customers}} (id bigserial PRIMARY KEY, name text NOT NULL UNIQUE, \
                 tags text[], meta jsonb);",
            ),
            (
                "002_orders.sql",
                "CREATE TABLE {{tables.orders}} (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), \
                 customer_id bigint NOT NULL REFERENCES {{tables.customers}} (id), \
                 total numeric(10,2) NOT NULL, placed_on date NOT NULL);",
            ),
        ])
        .expect("valid migrations")
    }
}

/// A connection to the maintenance database of the test server.
async fn maintenance() -> Database {
    let server = TestServer::shared::<TokioPostgres>().await.expect("server");
    Database::connect::<TokioPostgres>(&server.config_for("postgres").expect("config"))
        .await
        .expect("connect")
}

async fn database_exists(name: &str) -> bool {
    let admin = maintenance().await;
    let exists = admin
        .fetch_value::<bool>(
            "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)",
            params![name],
        )
        .await
        .expect("query");
    admin.close().await;
    exists
}

async fn shop() -> Tdb {
    Tdb::builder()
        .module(&Shop)
        .schema("shop")
        .build()
        .await
        .expect("test database")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn databases_are_isolated_in_parallel() {
    let tasks: Vec<_> = (0..6)
        .map(|i| {
            tokio::spawn(async move {
                let db = shop().await;
                for n in 0..=i {
                    db.execute(
                        "INSERT INTO {{tables.customers}} (name) VALUES ($1)",
                        params![format!("c{n}")],
                    )
                    .await
                    .expect("insert");
                }
                tokio::task::yield_now().await;
                (
                    i,
                    count_rows(&db, "customers").await.expect("count"),
                    db.name().to_owned(),
                )
            })
        })
        .collect();
    let mut names = Vec::new();
    for t in tasks {
        let (i, count, name) = t.await.expect("task");
        assert_eq!(count, i + 1, "database {name} saw other tests' rows");
        names.push(name);
    }
    names.sort();
    names.dedup();
    assert_eq!(names.len(), 6);
    for name in names {
        assert!(!database_exists(&name).await, "{name} not dropped");
    }
}

#[tokio::test]
async fn template_is_migrated_once() {
    // A module name of its own, so this test builds its template itself.
    let module = format!("reuse_{}_{}", std::process::id(), rand_suffix());
    let source = MigrationSource::from_pairs([(
        "001_t.sql",
        format!("CREATE TABLE {{{{tables.t}}}} (id int); -- {module}"),
    )])
    .expect("source");
    let t0 = Instant::now();
    let first = Tdb::builder()
        .migrations(&module, source.clone())
        .build()
        .await
        .expect("first");
    let first_time = t0.elapsed();
    let t1 = Instant::now();
    let second = Tdb::builder()
        .migrations(&module, source)
        .build()
        .await
        .expect("second");
    let second_time = t1.elapsed();
    assert!(first.built_template());
    assert!(!second.built_template(), "the template was migrated again");
    assert_eq!(first.template(), second.template());
    assert!(first.template().starts_with("pgdbm_tpl_") && first.template().len() == 26);
    // Both clones carry the ledger row written once, into the template.
    let ledger = "SELECT applied_at::text FROM schema_migrations WHERE module_name = $1";
    let a: String = first
        .fetch_value(ledger, params![module.as_str()])
        .await
        .expect("ledger");
    let b: String = second
        .fetch_value(ledger, params![module.as_str()])
        .await
        .expect("ledger");
    assert_eq!(a, b);
    eprintln!("template build + clone {first_time:?}, clone only {second_time:?}");
    // This template is used by this test only: remove it.
    let template = first.template().to_owned();
    drop((first, second));
    let admin = maintenance().await;
    admin
        .batch_execute(&format!(
            "ALTER DATABASE \"{template}\" WITH IS_TEMPLATE false"
        ))
        .await
        .expect("unmark template");
    admin
        .batch_execute(&format!("DROP DATABASE \"{template}\" WITH (FORCE)"))
        .await
        .expect("drop template");
    admin.close().await;
}

fn rand_suffix() -> u32 {
    use std::time::{SystemTime, UNIX_EPOCH};
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0)
}

#[tokio::test]
async fn dropped_on_guard_drop_and_on_panic() {
    let db = shop().await;
    let name = db.name().to_owned();
    assert!(database_exists(&name).await);
    drop(db);
    assert!(!database_exists(&name).await);

    let (send, recv) = tokio::sync::oneshot::channel();
    let task = tokio::spawn(async move {
        let db = shop().await;
        send.send(db.name().to_owned()).expect("send");
        panic!("a failing test");
    });
    assert!(task.await.is_err());
    let name = recv.await.expect("name");
    assert!(!database_exists(&name).await, "{name} survived a panic");
}

#[tokio::test]
async fn keep_switch_keeps_the_database() {
    let db = Tdb::builder()
        .module(&Shop)
        .keep(true)
        .build()
        .await
        .expect("db");
    let name = db.name().to_owned();
    drop(db);
    assert!(database_exists(&name).await);
    let admin = maintenance().await;
    admin
        .batch_execute(&format!("DROP DATABASE \"{name}\" WITH (FORCE)"))
        .await
        .expect("drop");
    admin.close().await;
}

#[tokio::test]
async fn schema_variant() {
    let a = TestSchema::<TokioPostgres>::new(&[&Shop])
        .await
        .expect("schema a");
    let b = TestSchema::<TokioPostgres>::new(&[&Shop])
        .await
        .expect("schema b");
    assert_ne!(a.schema_name(), b.schema_name());
    a.execute("INSERT INTO {{tables.customers}} (name) VALUES ('x')", &[])
        .await
        .expect("insert");
    assert_eq!(count_rows(&a, "customers").await.expect("a"), 1);
    assert_eq!(count_rows(&b, "customers").await.expect("b"), 0);
    let schema = a.schema_name().to_owned();
    drop(a);
    let exists: bool = b
        .fetch_value(
            "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)",
            params![schema.as_str()],
        )
        .await
        .expect("query");
    assert!(!exists, "schema {schema} not dropped");
}

#[tokio::test]
async fn rollback_transactions() {
    let db = shop().await;
    let inside = rollback_after(&db, |tx| async move {
        tx.execute(
            "INSERT INTO {{tables.customers}} (name) VALUES ('tmp')",
            &[],
        )
        .await?;
        // Code under test that commits its own (nested) transaction: a savepoint here.
        tx.transaction(|sp| async move {
            sp.execute(
                "INSERT INTO {{tables.customers}} (name) VALUES ('nested')",
                &[],
            )
            .await
        })
        .await?;
        count_rows(&tx, "customers").await
    })
    .await
    .expect("rollback_after");
    assert_eq!(inside, 2);
    assert_eq!(count_rows(&db, "customers").await.expect("count"), 0);

    let tx = RollbackOnly::begin(&db).await.expect("begin");
    tx.execute(
        "INSERT INTO {{tables.customers}} (name) VALUES ('tmp')",
        &[],
    )
    .await
    .expect("insert");
    assert_eq!(count_rows(&*tx, "customers").await.expect("count"), 1);
    tx.finish().await.expect("rollback");
    assert_eq!(count_rows(&db, "customers").await.expect("count"), 0);
}

#[tokio::test]
async fn sql_and_json_fixtures() {
    let db = shop().await;
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    load_sql_fixture(&db, dir.join("shop.sql"))
        .await
        .expect("sql");
    assert_eq!(count_rows(&db, "customers").await.expect("count"), 2);
    let n = load_json_fixture(&db, dir.join("shop.json"))
        .await
        .expect("json");
    assert_eq!(n, 5);
    assert_eq!(count_rows(&db, "customers").await.expect("count"), 5);
    assert_eq!(count_rows(&db, "orders").await.expect("count"), 3);
    let tags: Vec<String> = db
        .fetch_value("SELECT tags FROM {{tables.customers}} WHERE id = 10", &[])
        .await
        .expect("tags");
    assert_eq!(tags, ["vip", "eu"]);
    let total: String = db
        .fetch_value(
            "SELECT total::text FROM {{tables.orders}} WHERE id = '7b0f7c5e-3f57-4e0e-9d36-1b2c8b5a0a01'",
            &[],
        )
        .await
        .expect("total");
    assert_eq!(total, "5.00");

    // One failing row: nothing of the document is inserted.
    let bad = r#"{"customers": [{"name": "fred"}], "orders": [{"customer_id": 999, "total": 1, "placed_on": "2024-01-01"}]}"#;
    let err = pgdbm_testing::load_json(&db, bad)
        .await
        .expect_err("foreign key");
    assert!(err.is_foreign_key_violation(), "{err}");
    assert_eq!(count_rows(&db, "customers").await.expect("count"), 5);
    // Names are validated.
    let err = pgdbm_testing::load_json(&db, r#"{"customers; drop": [{}]}"#)
        .await
        .expect_err("identifier");
    assert!(matches!(err, pgdbm::Error::Identifier { .. }), "{err}");
    let err = pgdbm_testing::load_json(&db, r#"[1, 2]"#)
        .await
        .expect_err("shape");
    assert!(matches!(err, pgdbm::Error::TestSetup { .. }), "{err}");
}

#[tokio::test]
async fn snapshots_detect_changes() {
    let db = shop().await;
    db.execute(
        "INSERT INTO {{tables.customers}} (name) VALUES ('a'), ('b')",
        &[],
    )
    .await
    .expect("insert");
    let before = snapshot_table(&db, "customers").await.expect("snapshot");
    assert_eq!(before.rows.len(), 2);
    assert_table_unchanged(&db, &before).await;

    db.execute(
        "UPDATE {{tables.customers}} SET name = 'c' WHERE name = 'b'",
        &[],
    )
    .await
    .expect("update");
    let diff = table_diff(&db, &before).await.expect("diff");
    assert_eq!(diff.added.len(), 1);
    assert_eq!(diff.removed.len(), 1);
    assert!(diff.added[0].contains("\"c\"") && diff.removed[0].contains("\"b\""));

    let db2 = db.database().clone();
    let before2 = before.clone();
    let assertion = tokio::spawn(async move { assert_table_unchanged(&db2, &before2).await }).await;
    let panic = assertion.expect_err("assert_table_unchanged must panic");
    let message = panic.into_panic();
    let message = message
        .downcast_ref::<String>()
        .cloned()
        .unwrap_or_default();
    assert!(message.contains("table customers changed"), "{message}");
}

#[tokio::test]
async fn helpers() {
    let db = shop().await;
    assert!(table_exists(&db, "customers").await.expect("exists"));
    assert!(table_exists(&db, "shop.orders").await.expect("exists"));
    assert!(!table_exists(&db, "nope").await.expect("exists"));
    db.execute("INSERT INTO {{tables.customers}} (name) VALUES ('a')", &[])
        .await
        .expect("insert");
    db.execute(
        "INSERT INTO {{tables.orders}} (customer_id, total, placed_on) VALUES (1, 1, '2024-01-01')",
        &[],
    )
    .await
    .expect("insert");
    assert_eq!(count_rows(&db, "shop.orders").await.expect("count"), 1);
    truncate(&db, &["customers", "orders"])
        .await
        .expect("truncate");
    assert_eq!(count_rows(&db, "customers").await.expect("count"), 0);
    // Identities restart.
    let id: i64 = db
        .execute_and_return_id("INSERT INTO {{tables.customers}} (name) VALUES ('b')", &[])
        .await
        .expect("insert");
    assert_eq!(id, 1);
    for bad in ["x; DROP TABLE y", "a.b.c", "", "1abc"] {
        assert!(count_rows(&db, bad).await.is_err(), "{bad:?} accepted");
        assert!(truncate(&db, &[bad]).await.is_err(), "{bad:?} accepted");
    }
}

#[tokio::test]
async fn empty_migration_set_and_bad_directory() {
    let db = Tdb::builder().build().await.expect("empty");
    assert_eq!(
        db.fetch_value::<i32>("SELECT 1", &[])
            .await
            .expect("select"),
        1
    );
    let err = Tdb::builder()
        .migrations_dir("x", "/nonexistent/pgdbm-testing")
        .build()
        .await
        .expect_err("missing directory");
    assert!(!err.to_string().is_empty());
}

/// "With PGDBM_TEST_URL unset and no server on 5432 the tests still pass": the throwaway path,
/// forced. Skipped (with a reason) only where no PostgreSQL binaries exist.
#[tokio::test]
async fn throwaway_server_starts_and_serves() {
    if let Err(e) = pgdbm_testing::find_postgres_binaries() {
        eprintln!("SKIPPED throwaway_server_starts_and_serves: {e}");
        return;
    }
    let t = Instant::now();
    let server = TestServer::start_throwaway()
        .await
        .expect("throwaway server");
    eprintln!(
        "throwaway server ({}) ready in {:?}",
        server.source,
        t.elapsed()
    );
    assert!(matches!(
        server.source,
        pgdbm_testing::ServerSource::Throwaway { .. }
    ));
    assert!(
        server.config.host().starts_with('/'),
        "Unix socket expected"
    );
    let db = Database::connect::<TokioPostgres>(&server.config)
        .await
        .expect("connect");
    let fsync: String = db.fetch_value("SHOW fsync", &[]).await.expect("show");
    assert_eq!(fsync, "off");
    let n: i32 = db.fetch_value("SELECT 41 + 1", &[]).await.expect("query");
    assert_eq!(n, 42);
    // TCP on 127.0.0.1 too.
    let tcp = server
        .config
        .to_builder()
        .host("127.0.0.1")
        .build()
        .expect("config");
    let db2 = Database::connect::<TokioPostgres>(&tcp)
        .await
        .expect("connect over TCP");
    assert_eq!(
        db2.fetch_value::<i32>("SELECT 1", &[])
            .await
            .expect("query"),
        1
    );
    db.close().await;
    db2.close().await;
    // The same server for the whole process.
    let again = TestServer::start_throwaway().await.expect("again");
    assert!(std::ptr::eq(server, again));
}

#[tokio::test]
async fn a_fixture_directory_loads_in_name_order() {
    let db = shop().await;
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let dir = tempfile::tempdir().expect("temporary directory");
    // The JSON rows reference customers the SQL file creates: name order puts it first.
    std::fs::copy(src.join("shop.sql"), dir.path().join("01_shop.sql")).expect("copy");
    std::fs::copy(src.join("shop.json"), dir.path().join("02_shop.json")).expect("copy");
    std::fs::write(dir.path().join("README.txt"), "not a fixture").expect("write");
    std::fs::write(dir.path().join(".hidden.sql"), "SELECT broken").expect("write");
    let loaded = load_fixtures(&db, dir.path()).await.expect("fixtures");
    assert_eq!(loaded, ["01_shop.sql", "02_shop.json"]);
    assert_eq!(count_rows(&db, "customers").await.expect("count"), 5);

    // A failing file is named, and the files after it are not loaded.
    std::fs::write(
        dir.path().join("03_bad.sql"),
        "INSERT INTO {{tables.nope}} VALUES (1)",
    )
    .expect("write");
    std::fs::write(
        dir.path().join("04_more.sql"),
        "DELETE FROM {{tables.orders}}",
    )
    .expect("write");
    truncate(&db, &["orders", "customers"])
        .await
        .expect("truncate");
    let err = load_fixtures(&db, dir.path()).await.expect_err("03 fails");
    assert!(err.to_string().contains("03_bad.sql"), "{err}");
    assert_eq!(count_rows(&db, "orders").await.expect("count"), 3);

    let missing = load_fixtures(&db, dir.path().join("absent"))
        .await
        .expect_err("no dir");
    assert!(matches!(missing, pgdbm::Error::Io { .. }), "{missing:?}");
}

#[tokio::test]
async fn rows_are_counted_with_a_condition() {
    let db = shop().await;
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    load_sql_fixture(&db, dir.join("shop.sql"))
        .await
        .expect("sql");
    let n = count_rows_where(&db, "customers", "name = $1", pgdbm::params!["bob"])
        .await
        .expect("count");
    assert_eq!(n, 1);
    let none = count_rows_where(&db, "customers", "name LIKE $1", pgdbm::params!["z%"])
        .await
        .expect("count");
    assert_eq!(none, 0);
    let bad = count_rows_where(&db, "customers;", "true", &[]).await;
    assert!(
        matches!(bad, Err(pgdbm::Error::Identifier { .. })),
        "{bad:?}"
    );
}
