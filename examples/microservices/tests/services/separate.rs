//! The layout of one process per service: each service with a pool of its own, all on the
//! same database.

use std::sync::Arc;

use axum::http::StatusCode;
use inventory_service::InventoryModule;
use microservices::{Handles, Service};
use notifications_service::NotificationsModule;
use orders_service::OrdersModule;
use pgdbm::Database;
use pgdbm_driver_tokio_postgres::TokioPostgres;
use pgdbm_testing::TestDatabase;
use users_service::UsersModule;

use crate::common::{call, id, order, product, stock, user};

/// What one service's process holds: its own pool and its router.
struct Process {
    db: Database,
    handles: Handles,
    router: axum::Router,
}

async fn start(db: &TestDatabase<TokioPostgres>, service: Service) -> Process {
    let config = db
        .config()
        .to_builder()
        .without_schema()
        .max_connections(2)
        .build()
        .unwrap();
    let own = Database::connect::<TokioPostgres>(&config).await.unwrap();
    // Already migrated by the template; a process migrates what it needs at start-up (a no-op here).
    microservices::migrate(&own, &[service]).await.unwrap();
    let handles = Handles::new(&own).unwrap();
    let router = microservices::service_router(service, &handles);
    Process {
        db: own,
        handles,
        router,
    }
}

#[pgdbm_testing::test(modules = [UsersModule = "users", InventoryModule = "inventory", OrdersModule = "orders", NotificationsModule = "notifications"])]
async fn each_service_on_its_own_pool(db: TestDatabase) {
    let users = start(&db, Service::Users).await;
    let inventory = start(&db, Service::Inventory).await;
    let orders = start(&db, Service::Orders).await;
    let notifications = start(&db, Service::Notifications).await;
    let processes = [&users, &inventory, &orders, &notifications];
    for (i, a) in processes.iter().enumerate() {
        assert!(a.db.owns_pool());
        for b in &processes[i + 1..] {
            assert!(!Arc::ptr_eq(a.db.pool(), b.db.pool()), "a pool per process");
        }
    }

    let ann = user(&users.router, "ann@example.com").await;
    let lamp = product(&inventory.router, "lamp", 2_500, 3).await;
    // Each process serves its own service only.
    let (status, _) = call(&users.router, "GET", &format!("/products/{lamp}"), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, body) = call(&orders.router, "GET", "/health", None).await;
    assert_eq!(
        (status, body["pool"]["max_size"].as_i64()),
        (StatusCode::OK, Some(2))
    );

    // The orders process reserves stock in the inventory schema on its own pool, in one
    // transaction; the inventory process sees the result.
    let (status, placed) = order(&orders.router, ann, &[(lamp, 2)]).await;
    assert_eq!(status, StatusCode::CREATED, "{placed}");
    assert_eq!(stock(&inventory.router, lamp).await, 1);
    let (status, body) = order(&orders.router, ann, &[(lamp, 2)]).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(stock(&inventory.router, lamp).await, 1);

    // The notifications process consumes the outbox on its own pool.
    assert_eq!(notifications.handles.consumer().drain().await.unwrap(), 1);
    let (status, body) = call(
        &notifications.router,
        "GET",
        &format!("/notifications?user_id={ann}"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let message = body[0]["message"].as_str().unwrap();
    assert!(message.contains(&id(&placed).to_string()), "{message}");

    for process in processes {
        process.db.close().await;
        assert!(process.db.pool().is_closed());
    }
}
