//! The outbox consumer: each event handled exactly once by concurrent consumers, woken by the
//! commit's notification, and polling for events whose notification was lost.

use std::collections::BTreeSet;
use std::time::Duration;

use axum::http::StatusCode;
use inventory_service::InventoryModule;
use microservices::Handles;
use notifications_service::{Consumer, NotificationsModule};
use orders_service::{OrderPlaced, OrdersModule, outbox};
use pgdbm::prelude::*;
use pgdbm_driver_tokio_postgres::TokioPostgres;
use pgdbm_testing::TestDatabase;
use serde_json::json;
use users_service::UsersModule;
use uuid::Uuid;

use crate::common::{call, id, order, product, user, within};

/// Handles batches until none is left; returns the ids handled.
async fn consume_all(consumer: &Consumer) -> Vec<i64> {
    let mut ids = Vec::new();
    loop {
        let batch = consumer.process_batch().await.expect("a batch");
        if batch.is_empty() {
            return ids;
        }
        ids.extend(batch);
    }
}

#[pgdbm_testing::test(modules = [UsersModule = "users", InventoryModule = "inventory", OrdersModule = "orders", NotificationsModule = "notifications"])]
async fn two_consumers_never_handle_the_same_event(db: TestDatabase) {
    const EVENTS: i64 = 200;
    let handles = Handles::new(&db).unwrap();
    let published: BTreeSet<i64> = handles
        .orders
        .transaction(|tx| async move {
            let mut ids = BTreeSet::new();
            for n in 0..EVENTS {
                let event = OrderPlaced {
                    order_id: Uuid::from_u128(n as u128),
                    user_id: Uuid::from_u128(1),
                    total_cents: n,
                };
                ids.insert(outbox::publish(&tx, "order.placed", &event).await?);
            }
            Ok::<_, pgdbm::Error>(ids)
        })
        .await
        .unwrap();

    // One consumer on the test's pool, the other on a pool of its own, as two processes would.
    let own = Database::connect::<TokioPostgres>(
        &db.config().to_builder().without_schema().build().unwrap(),
    )
    .await
    .unwrap();
    let other = Handles::new(&own).unwrap();
    let a = handles.consumer().with_batch_size(10);
    let b = other.consumer().with_batch_size(10);
    let (by_a, by_b) = tokio::join!(consume_all(&a), consume_all(&b));
    own.close().await;

    let handled: BTreeSet<i64> = by_a.iter().chain(&by_b).copied().collect();
    assert_eq!(
        by_a.len() + by_b.len(),
        handled.len(),
        "an event was handled twice"
    );
    assert_eq!(handled, published, "every event handled");
    assert!(
        !by_a.is_empty() && !by_b.is_empty(),
        "both consumers worked: {} and {}",
        by_a.len(),
        by_b.len()
    );
    assert_eq!(outbox::pending(&handles.orders).await.unwrap(), 0);
    let notes: i64 = handles
        .notifications
        .fetch_value("SELECT count(*) FROM {{tables.notifications}}", &[])
        .await
        .unwrap();
    assert_eq!(notes, EVENTS);
}

#[pgdbm_testing::test(modules = [UsersModule = "users", InventoryModule = "inventory", OrdersModule = "orders", NotificationsModule = "notifications"])]
async fn a_commit_wakes_the_consumer_before_the_poll(db: TestDatabase) {
    let handles = Handles::new(&db).unwrap();
    let app = microservices::gateway(&handles);
    let ann = user(&app, "ann@example.com").await;
    let lamp = product(&app, "lamp", 1_999, 10).await;
    let notes = |n: usize| {
        let app = app.clone();
        async move {
            let (status, body) =
                call(&app, "GET", &format!("/notifications?user_id={ann}"), None).await;
            status == StatusCode::OK && body.as_array().map(Vec::len) == Some(n)
        }
    };

    // Polls only once a minute: anything handled within seconds was woken by a notification.
    let consumer = handles
        .consumer()
        .with_poll_interval(Duration::from_secs(60));
    let running = tokio::spawn(async move { consumer.run().await });
    // The first order is handled by the consumer's first drain or a notification; either way
    // the consumer listens by then.
    assert_eq!(order(&app, ann, &[(lamp, 1)]).await.0, StatusCode::CREATED);
    assert!(within(Duration::from_secs(20), || notes(1)).await.is_some());

    let (status, placed) = order(&app, ann, &[(lamp, 2)]).await;
    assert_eq!(status, StatusCode::CREATED);
    let took = within(Duration::from_secs(20), || notes(2)).await;
    running.abort();
    let took = took.expect("the second order was not handled within 20 s of its commit");
    let (_, body) = call(&app, "GET", &format!("/notifications?user_id={ann}"), None).await;
    let message = body[0]["message"].as_str().unwrap();
    assert_eq!(
        message,
        format!("Your order {} was placed: 39.98 total.", id(&placed))
    );
    eprintln!("handled {took:?} after the commit");
}

#[pgdbm_testing::test(modules = [UsersModule = "users", InventoryModule = "inventory", OrdersModule = "orders", NotificationsModule = "notifications"])]
async fn an_event_without_notification_is_found_by_polling(db: TestDatabase) {
    let handles = Handles::new(&db).unwrap();
    let consumer = handles
        .consumer()
        .with_poll_interval(Duration::from_millis(200));
    let running = tokio::spawn(async move { consumer.run().await });
    // Written without NOTIFY, as if the notification had been lost.
    let payload =
        json!({"order_id": Uuid::from_u128(7), "user_id": Uuid::from_u128(1), "total_cents": 100});
    handles
        .orders
        .execute(
            "INSERT INTO {{tables.outbox}} (topic, payload) VALUES ('order.placed', $1)",
            params![payload],
        )
        .await
        .unwrap();
    let orders = handles.orders.clone();
    let found = within(Duration::from_secs(20), || {
        let orders = orders.clone();
        async move { outbox::pending(&orders).await.unwrap() == 0 }
    })
    .await;
    running.abort();
    assert!(found.is_some(), "the poll did not find the event");
    let notes = notifications_service::for_user(&handles.notifications, Uuid::from_u128(1), 10)
        .await
        .unwrap();
    assert_eq!(notes.len(), 1);
}

#[pgdbm_testing::test(modules = [UsersModule = "users", InventoryModule = "inventory", OrdersModule = "orders", NotificationsModule = "notifications"])]
async fn a_failed_batch_leaves_its_events_pending(db: TestDatabase) {
    let handles = Handles::new(&db).unwrap();
    handles
        .orders
        .transaction(|tx| async move {
            let event = OrderPlaced {
                order_id: Uuid::from_u128(1),
                user_id: Uuid::from_u128(1),
                total_cents: 1,
            };
            outbox::publish(&tx, "order.placed", &event).await
        })
        .await
        .unwrap();
    // The notifications table is gone: handling fails, the claim and the mark roll back.
    db.batch_execute("ALTER TABLE notifications.notifications RENAME TO gone")
        .await
        .unwrap();
    assert!(handles.consumer().process_batch().await.is_err());
    assert_eq!(outbox::pending(&handles.orders).await.unwrap(), 1);
    db.batch_execute("ALTER TABLE notifications.gone RENAME TO notifications")
        .await
        .unwrap();
    assert_eq!(handles.consumer().process_batch().await.unwrap().len(), 1);
    assert_eq!(outbox::pending(&handles.orders).await.unwrap(), 0);
}

#[pgdbm_testing::test(modules = [UsersModule = "users", InventoryModule = "inventory", OrdersModule = "orders", NotificationsModule = "notifications"])]
async fn a_cancelled_batch_leaves_its_events_pending(db: TestDatabase) {
    let handles = Handles::new(&db).unwrap();
    let event_id = handles
        .orders
        .transaction(|tx| async move {
            let event = OrderPlaced {
                order_id: Uuid::from_u128(1),
                user_id: Uuid::from_u128(1),
                total_cents: 1,
            };
            outbox::publish(&tx, "order.placed", &event).await
        })
        .await
        .unwrap();
    // Another session holds the notifications table: the batch claims the event, then waits.
    let blocker = db.begin().await.unwrap();
    blocker
        .batch_execute("LOCK TABLE notifications.notifications IN EXCLUSIVE MODE")
        .await
        .unwrap();
    let consumer = handles.consumer();
    let cut = tokio::time::timeout(Duration::from_millis(500), consumer.process_batch()).await;
    assert!(
        cut.is_err(),
        "the batch should have been waiting for the lock"
    );
    blocker.rollback().await.unwrap();

    // The dropped batch rolled back: its claim is released and the event is handled once, now.
    let handled = std::sync::Mutex::new(Vec::new());
    let done = within(Duration::from_secs(20), || async {
        let batch = consumer.process_batch().await.unwrap();
        let mut handled = handled.lock().unwrap();
        handled.extend(batch);
        !handled.is_empty()
    })
    .await;
    assert!(done.is_some(), "the event stayed claimed");
    assert_eq!(*handled.lock().unwrap(), [event_id]);
    assert_eq!(outbox::pending(&handles.orders).await.unwrap(), 0);
}
