//! The run-time half of `#[pgdbm_testing::test]` (the attribute itself is in `pgdbm-macros`):
//! the runtime the test runs on, provisioning its database and loading its fixtures. Not a public
//! API: only the attribute's expansion calls it.

use std::future::Future;

pub use pgdbm::Module;
use pgdbm::driver::Driver;
use pgdbm::prelude::*;

use crate::TestDatabase;

/// How a fixture file is loaded (from its extension).
#[derive(Debug, Clone, Copy)]
pub enum FixtureKind {
    /// [`load_json`](crate::load_json).
    Json,
    /// A script run with `batch_execute` (templates expanded).
    Sql,
}

/// A fixture file embedded by the attribute.
#[derive(Debug, Clone, Copy)]
pub struct Fixture {
    /// The path as written in the attribute (for messages).
    pub path: &'static str,
    /// How to load it.
    pub kind: FixtureKind,
    /// Its contents.
    pub text: &'static str,
}

/// Runs `test` to completion on a current-thread runtime with time and I/O enabled, as
/// `#[tokio::test]` does.
pub fn block_on<F: Future>(test: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("pgdbm_testing::test: cannot build the tokio runtime")
        .block_on(test)
}

/// The test database of `test`: `modules` migrated, each into its own schema or `schema`, the
/// handle scoped to `schema` (default: the first module's own schema), then `fixtures` loaded
/// through the handle in order. Panics with a message naming the test and the cause: a test
/// without its database cannot run. A database already made is dropped by the guard as the
/// panic unwinds.
pub async fn provision<D: Driver>(
    test: &str,
    modules: &[(&dyn Module, Option<&str>)],
    schema: Option<&str>,
    fixtures: &[Fixture],
) -> TestDatabase<D> {
    let schema = schema.or_else(|| modules.first().and_then(|(_, s)| *s));
    let mut builder = TestDatabase::<D>::builder();
    for (module, own) in modules {
        builder = match own {
            Some(own) => builder.module_in(*module, own),
            None => builder.module(*module),
        };
    }
    if let Some(schema) = schema {
        builder = builder.schema(schema);
    }
    let db = match builder.build().await {
        Ok(db) => db,
        Err(e) => panic!("{test}: cannot set up the test database: {}", chain(&e)),
    };
    for fixture in fixtures {
        let loaded = match fixture.kind {
            FixtureKind::Json => crate::load_json(&db, fixture.text).await.map(drop),
            FixtureKind::Sql => db.batch_execute(fixture.text).await,
        };
        if let Err(e) = loaded {
            panic!("{test}: fixture {}: {}", fixture.path, chain(&e));
        }
    }
    db
}

/// The error and its causes, one line.
fn chain(err: &pgdbm::Error) -> String {
    let mut text = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
