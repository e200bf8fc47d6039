//! The host of the microservices example: four services, each a pgdbm module in its own schema
//! with its own router, run either
//!
//! * **together**: one process, one shared pool, one axum router (the [`gateway`]) nesting the
//!   four services' routers, and the notifications [`Consumer`] as a task; or
//! * **apart**: one process per service ([`service_router`]), each with a pool of its own on
//!   the same database.
//!
//! Either way the handles come from [`Handles::new`] — one per module schema, all on one pool
//! (the shared one, or the process's own) — because the orders service writes through the
//! inventory module, and the notifications consumer through the orders outbox, in one
//! transaction: a transaction lives on one connection, so the modules it spans must be
//! reachable from the same pool.

use std::str::FromStr;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use inventory_service::InventoryModule;
use notifications_service::{Consumer, NotificationsModule};
use orders_service::{Orders, OrdersModule};
use pgdbm::prelude::*;
use users_service::UsersModule;

/// One of the four services.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    /// Users: `/users`.
    Users,
    /// Products and stock: `/products`.
    Inventory,
    /// Orders and their outbox: `/orders`.
    Orders,
    /// Notifications and the outbox consumer: `/notifications`.
    Notifications,
}

impl Service {
    /// All four, in dependency order.
    pub const ALL: [Service; 4] = [
        Service::Users,
        Service::Inventory,
        Service::Orders,
        Service::Notifications,
    ];

    /// The service's module (its name is also its schema).
    pub fn module(self) -> &'static dyn Module {
        match self {
            Service::Users => &UsersModule,
            Service::Inventory => &InventoryModule,
            Service::Orders => &OrdersModule,
            Service::Notifications => &NotificationsModule,
        }
    }

    /// The service's name: its module's name, its schema, its command-line name.
    pub fn name(self) -> &'static str {
        self.module().name()
    }

    /// Where its routes are nested: `/users`, `/products`, `/orders`, `/notifications`.
    pub fn path(self) -> &'static str {
        match self {
            Service::Users => "/users",
            Service::Inventory => "/products",
            Service::Orders => "/orders",
            Service::Notifications => "/notifications",
        }
    }
}

impl FromStr for Service {
    type Err = String;

    fn from_str(name: &str) -> Result<Self, String> {
        Service::ALL
            .into_iter()
            .find(|s| s.name() == name)
            .ok_or_else(|| {
                format!("unknown service {name:?} (users, inventory, orders, notifications)")
            })
    }
}

/// The four modules' handles on one pool, each scoped to its module's schema.
#[derive(Debug, Clone)]
pub struct Handles {
    /// Schema `users`.
    pub users: Database,
    /// Schema `inventory`.
    pub inventory: Database,
    /// Schema `orders`.
    pub orders: Database,
    /// Schema `notifications`.
    pub notifications: Database,
}

impl Handles {
    /// Handles on `base`'s pool (shared: closing them leaves the pool open; close `base`).
    ///
    /// # Errors
    ///
    /// [`pgdbm::Error::Identifier`] for a bad schema name (none of the four is).
    pub fn new(base: &Database) -> pgdbm::Result<Self> {
        let on = |s: Service| base.with_schema(Some(s.name()));
        Ok(Handles {
            users: on(Service::Users)?,
            inventory: on(Service::Inventory)?,
            orders: on(Service::Orders)?,
            notifications: on(Service::Notifications)?,
        })
    }

    /// The orders service on these handles.
    pub fn orders_service(&self) -> Orders {
        Orders::new(
            self.orders.clone(),
            self.users.clone(),
            self.inventory.clone(),
        )
    }

    /// The outbox consumer on these handles.
    pub fn consumer(&self) -> Consumer {
        Consumer::new(self.notifications.clone(), self.orders.clone())
    }
}

/// Applies the migrations of `services` and of the modules they depend on, each module into its
/// own schema on `base`'s pool, dependencies first. Each module's run holds its own advisory
/// lock, so processes starting together migrate each module once.
///
/// # Errors
///
/// [`pgdbm::Error::ModuleOrder`] for a broken dependency graph; the first migration error.
pub async fn migrate(base: &Database, services: &[Service]) -> pgdbm::Result<()> {
    let all: Vec<&dyn Module> = Service::ALL.iter().map(|s| s.module()).collect();
    let mut needed: Vec<&str> = services.iter().map(|s| s.name()).collect();
    // The modules `services` need, transitively.
    let mut i = 0;
    while i < needed.len() {
        let module = all.iter().find(|m| m.name() == needed[i]);
        for dep in module.map(|m| m.depends_on()).unwrap_or_default() {
            if !needed.contains(&dep) {
                needed.push(dep);
            }
        }
        i += 1;
    }
    for module in pgdbm::order_modules(&all)? {
        if needed.contains(&module.name()) {
            base.with_schema(Some(module.name()))?
                .migrate(module)
                .await?;
        }
    }
    Ok(())
}

/// The router of one service, nested at its [`path`](Service::path), with `GET /health`: what
/// a process running only that service serves.
pub fn service_router(service: Service, handles: &Handles) -> Router {
    Router::new()
        .nest(service.path(), routes(service, handles))
        .merge(health(handles.users.clone()))
}

/// The four services' routers nested in one, with `GET /health`: the gateway of the
/// one-process layout. Every route of [`service_router`] has the same path here.
pub fn gateway(handles: &Handles) -> Router {
    Service::ALL
        .into_iter()
        .fold(Router::new(), |router, service| {
            router.nest(service.path(), routes(service, handles))
        })
        .merge(health(handles.users.clone()))
}

/// The service's own router (paths relative to [`Service::path`]).
fn routes(service: Service, handles: &Handles) -> Router {
    match service {
        Service::Users => users_service::router(handles.users.clone()),
        Service::Inventory => inventory_service::router(handles.inventory.clone()),
        Service::Orders => orders_service::router(handles.orders_service()),
        Service::Notifications => notifications_service::router(handles.notifications.clone()),
    }
}

/// `GET /health`: 200 with the pool's counters when a statement goes through, else 503.
fn health(db: Database) -> Router {
    async fn check(State(db): State<Database>) -> (StatusCode, Json<serde_json::Value>) {
        let stats = db.pool_stats();
        let pool = serde_json::json!({ "size": stats.size, "idle": stats.idle, "max_size": stats.max_size });
        match db.fetch_value::<i32>("SELECT 1", &[]).await {
            Ok(_) => (
                StatusCode::OK,
                Json(serde_json::json!({ "status": "ok", "pool": pool })),
            ),
            Err(e) => {
                tracing::warn!(error = %e, "health check failed");
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    Json(serde_json::json!({ "status": "unavailable", "pool": pool })),
                )
            }
        }
    }
    Router::new().route("/health", get(check)).with_state(db)
}
