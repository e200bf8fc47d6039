//! A multi-tenant SaaS service on pgdbm: **a schema per tenant, one shared pool**.
//!
//! - The registry ([`registry::ControlModule`], module `tenants`) lives in schema `control`:
//!   plans, tenants, and the Argon2id hashes of their API keys.
//! - Sign-up ([`lifecycle::sign_up`]) registers the tenant, creates schema `tenant_<slug>` and
//!   migrates [`tenant::TenantModule`] into it — all or nothing, concurrent sign-ups safe, and
//!   tenants migrate side by side (each tenant's module has its own name, so its own
//!   migration lock).
//! - A request's key resolves to the tenant's [`tenant::Tenant`] handle, scoped to its schema and
//!   cached ([`cache::TenantCache`]); every query of a tenant goes through that handle.
//! - Plan limits are enforced in a transaction that locks the tenant's registry row
//!   ([`projects::create`]).
//! - Admins suspend, resume and delete tenants (delete drops the schema) and see project counts
//!   across tenants.
//!
//! ```no_run
//! use std::sync::Arc;
//! use pgdbm::{DatabaseConfig, SharedPool};
//! use pgdbm_driver_tokio_postgres::TokioPostgresPool;
//! use saas_app::{AppConfig, AppState, registry::Registry};
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let config = DatabaseConfig::from_url("postgresql://localhost/saas")?;
//! let pool: SharedPool = Arc::new(TokioPostgresPool::connect(&config).await?);
//! let registry = Registry::setup(pool).await?;
//! let app = saas_app::router(AppState::new(registry, AppConfig::default()));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! axum::serve(listener, app).await?;
//! # Ok(()) }
//! ```

pub mod api_key;
pub mod auth;
pub mod cache;
pub mod error;
pub mod lifecycle;
pub mod projects;
pub mod registry;
mod routes;
pub mod state;
pub mod tenant;

pub use error::ApiError;
pub use routes::router;
pub use state::{AppConfig, AppState};
