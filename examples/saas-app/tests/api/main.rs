//! saas-app over HTTP (the router driven with `tower::ServiceExt::oneshot`), each test on a
//! database of its own cloned from a template where the registry is migrated.

mod admin;
mod common;
mod isolation;
mod lifecycle;
mod limits;
mod signup;
