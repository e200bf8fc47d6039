//! The one-process layout: the four services on one shared pool, behind one router.

use std::sync::Arc;

use axum::http::StatusCode;
use inventory_service::InventoryModule;
use microservices::Handles;
use notifications_service::NotificationsModule;
use orders_service::{OrdersModule, outbox};
use pgdbm::prelude::*;
use pgdbm_testing::TestDatabase;
use serde_json::json;
use users_service::UsersModule;
use uuid::Uuid;

use crate::common::{call, id, order, product, stock, user};

/// The rows of `table` (a schema-qualified name) about `order_id`.
async fn rows_of(db: &Database, table: &str, order_id: Uuid) -> i64 {
    db.fetch_value(
        &format!("SELECT count(*) FROM {table} WHERE order_id = $1"),
        params![order_id],
    )
    .await
    .expect("count")
}

#[pgdbm_testing::test(modules = [UsersModule = "users", InventoryModule = "inventory", OrdersModule = "orders", NotificationsModule = "notifications"])]
async fn gateway_serves_all_four_services_on_one_pool(db: TestDatabase) {
    let handles = Handles::new(&db).unwrap();
    for h in [
        &handles.users,
        &handles.inventory,
        &handles.orders,
        &handles.notifications,
    ] {
        assert!(Arc::ptr_eq(h.pool(), db.pool()), "one shared pool");
        assert!(!h.owns_pool());
    }
    let app = microservices::gateway(&handles);

    let (status, body) = call(&app, "GET", "/health", None).await;
    assert_eq!(
        (status, body["status"].as_str()),
        (StatusCode::OK, Some("ok"))
    );

    let ann = user(&app, "ann@example.com").await;
    let (status, _) = call(
        &app,
        "POST",
        "/users",
        Some(json!({"email": "ann@example.com", "name": "Again"})),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, _) = call(
        &app,
        "POST",
        "/users",
        Some(json!({"email": "nope", "name": "Bob"})),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, body) = call(&app, "GET", &format!("/users/{ann}"), None).await;
    assert_eq!(
        (status, body["email"].as_str()),
        (StatusCode::OK, Some("ann@example.com"))
    );
    let (status, _) = call(&app, "GET", &format!("/users/{}", Uuid::nil()), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = call(&app, "GET", "/users/not-a-uuid", None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    let lamp = product(&app, "lamp", 2_500, 3).await;
    let (status, body) = call(&app, "GET", "/products", None).await;
    assert_eq!(
        (status, body.as_array().map(Vec::len)),
        (StatusCode::OK, Some(1))
    );
    let (status, body) = call(
        &app,
        "POST",
        &format!("/products/{lamp}/restock"),
        Some(json!({"quantity": 2})),
    )
    .await;
    assert_eq!((status, body["stock"].as_i64()), (StatusCode::OK, Some(5)));

    let (status, _) = order(&app, Uuid::nil(), &[(lamp, 1)]).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "unknown user");
    let (status, _) = order(&app, ann, &[(Uuid::nil(), 1)]).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "unknown product");
    let (status, _) = order(&app, ann, &[(lamp, 0)]).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "zero quantity");

    let (status, placed) = order(&app, ann, &[(lamp, 1), (lamp, 1)]).await;
    assert_eq!(status, StatusCode::CREATED, "{placed}");
    assert_eq!(placed["total_cents"], 5_000);
    assert_eq!(
        placed["items"],
        json!([{"product_id": lamp, "quantity": 2, "unit_price_cents": 2_500}])
    );
    let (status, found) = call(&app, "GET", &format!("/orders/{}", id(&placed)), None).await;
    assert_eq!((status, &found), (StatusCode::OK, &placed));
    let (status, _) = call(&app, "GET", &format!("/orders/{}", Uuid::nil()), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let (status, body) = call(&app, "GET", &format!("/notifications?user_id={ann}"), None).await;
    assert_eq!(
        (status, body),
        (StatusCode::OK, json!([])),
        "nothing consumed yet"
    );
}

#[pgdbm_testing::test(modules = [UsersModule = "users", InventoryModule = "inventory", OrdersModule = "orders", NotificationsModule = "notifications"])]
async fn an_order_commits_in_orders_and_inventory_together(db: TestDatabase) {
    let handles = Handles::new(&db).unwrap();
    let app = microservices::gateway(&handles);
    let ann = user(&app, "ann@example.com").await;
    let lamp = product(&app, "lamp", 2_500, 5).await;
    let desk = product(&app, "desk", 10_000, 1).await;

    let (status, placed) = order(&app, ann, &[(lamp, 2), (desk, 1)]).await;
    assert_eq!(status, StatusCode::CREATED, "{placed}");
    let order_id = id(&placed);
    assert_eq!((stock(&app, lamp).await, stock(&app, desk).await), (3, 0));
    let reserved = inventory_service::reservations(&handles.inventory, order_id)
        .await
        .unwrap();
    assert_eq!(reserved.len(), 2);
    assert_eq!(rows_of(&db, "orders.order_items", order_id).await, 2);
    assert_eq!(
        outbox::pending(&handles.orders).await.unwrap(),
        1,
        "the event, in the same transaction"
    );
}

#[pgdbm_testing::test(modules = [UsersModule = "users", InventoryModule = "inventory", OrdersModule = "orders", NotificationsModule = "notifications"])]
async fn out_of_stock_rolls_back_the_whole_order(db: TestDatabase) {
    let handles = Handles::new(&db).unwrap();
    let app = microservices::gateway(&handles);
    let ann = user(&app, "ann@example.com").await;
    let lamp = product(&app, "lamp", 2_500, 5).await;
    let desk = product(&app, "desk", 10_000, 1).await;

    // The lamp line is reserved first, then the desk line fails: all of it is undone.
    let (status, body) = order(&app, ann, &[(lamp, 2), (desk, 2)]).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("2 requested, 1 in stock"),
        "{body}"
    );
    assert_eq!((stock(&app, lamp).await, stock(&app, desk).await), (5, 1));
    let counts: (i64, i64, i64, i64) = db
        .fetch_one_as(
            "SELECT (SELECT count(*) FROM orders.orders), (SELECT count(*) FROM orders.order_items),
                    (SELECT count(*) FROM inventory.reservations), (SELECT count(*) FROM orders.outbox)",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(
        counts,
        (0, 0, 0, 0),
        "no order, item, reservation or event is left"
    );
}

#[pgdbm_testing::test(modules = [UsersModule = "users", InventoryModule = "inventory", OrdersModule = "orders", NotificationsModule = "notifications"])]
async fn two_orders_for_the_last_unit_one_wins(db: TestDatabase) {
    let handles = Handles::new(&db).unwrap();
    let app = microservices::gateway(&handles);
    let ann = user(&app, "ann@example.com").await;
    let bob = user(&app, "bob@example.com").await;
    let desk = product(&app, "desk", 10_000, 1).await;

    let line = [(desk, 1)];
    let (a, b) = tokio::join!(order(&app, ann, &line), order(&app, bob, &line));
    let mut statuses = [a.0, b.0];
    statuses.sort();
    assert_eq!(statuses, [StatusCode::CREATED, StatusCode::CONFLICT]);
    assert_eq!(stock(&app, desk).await, 0);
}
