//! The microservices example against a real server: each test gets a database of its own,
//! cloned from a template with the four modules migrated, each in its own schema.
//!
//! * `gateway`: the one-process layout, one shared pool, one router.
//! * `separate`: each service with a pool of its own, on the same database.
//! * `outbox`: the consumer — exactly once under concurrency, woken by notifications, polling
//!   for the ones that were lost.

mod common;
mod gateway;
mod outbox;
mod separate;
