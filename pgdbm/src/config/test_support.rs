//! What the unit tests of the config modules share: a fixed OS environment and shortcuts that
//! build a config or take an error apart.

use std::collections::HashMap;

use super::{DatabaseConfig, DatabaseConfigBuilder};
use crate::error::{Error, Result};

/// A fixed OS environment, so results do not depend on who runs the tests.
pub(super) fn os(user: Option<&str>) -> impl Fn(&str) -> Option<String> {
    let user = user.map(str::to_owned);
    move |name| (name == "USER").then(|| user.clone()).flatten()
}

pub(super) fn build(builder: DatabaseConfigBuilder) -> Result<DatabaseConfig> {
    builder.build_with(&os(Some("alice")))
}

pub(super) fn url(s: &str) -> Result<DatabaseConfig> {
    build(DatabaseConfig::builder().url(s))
}

pub(super) fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let map: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    move |name| map.get(name).cloned()
}

/// The field of a `Config` error (panics on anything else).
#[track_caller]
pub(super) fn field(result: Result<DatabaseConfig>) -> String {
    match result {
        Err(Error::Config { field, .. }) => field,
        Err(other) => panic!("expected a Config error, got {other:?}"),
        Ok(config) => panic!("expected an error, got {config:?}"),
    }
}

#[track_caller]
pub(super) fn message(result: Result<DatabaseConfig>) -> String {
    result.expect_err("expected an error").to_string()
}
