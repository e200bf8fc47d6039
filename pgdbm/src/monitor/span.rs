//! The `tracing` spans of statements and transactions, with the attributes of OpenTelemetry's
//! stable database conventions (client spans of PostgreSQL), so that `tracing-opentelemetry`
//! exports them as they are:
//!
//! | field | value |
//! |---|---|
//! | `otel.name` | the span name: `db.query.summary` (`{operation} {tables…}`, e.g. `SELECT todos`), else the operation |
//! | `otel.kind` | `"client"` |
//! | `otel.status_code` | `"error"` when the statement failed (unset otherwise) |
//! | `db.system.name` | `"postgresql"` |
//! | `db.namespace` | `database.schema` (the schema of the handle), or the database alone |
//! | `db.operation.name` | the first SQL keyword, upper case (`SELECT`, `BEGIN`…); `BATCH INSERT`… for [`execute_many`](crate::Database::execute_many) |
//! | `db.collection.name` | the table of the template's `{{tables.x}}` placeholder (as written: `x`, or `s.x`), when it names exactly one table |
//! | `db.query.text` | the template text before expansion, cut to 200 characters: never parameter values |
//! | `db.query.summary` | the operation and every table the template names |
//! | `db.response.status_code` | the SQLSTATE of a server error |
//! | `error.type` | the SQLSTATE of a server error, otherwise pgdbm's error variant (`pool_timeout`, `timeout`, `decode`…) |
//! | `server.address`, `server.port` | where the handle connects (handles opened with [`Database::connect`](crate::Database::connect)) |
//! | `db.operation.batch.size` | the number of parameter sets of an `execute_many` (2 and more) |
//! | `pgdbm.schema`, `pgdbm.module`, `pgdbm.operation` | the handle's schema and module, the pgdbm call (`fetch_all`…) |
//!
//! Nothing is computed unless a subscriber wants `DEBUG` spans of target `pgdbm::query`.
//!
//! The retired `db.system` field is added when the environment variable
//! `PGDBM_TRACING_LEGACY_FIELDS` is `1` when the first span is made (kept for one release, for
//! dashboards that still query it).

use std::sync::{Arc, OnceLock};

use tracing::field::Empty;

use super::hook::{Hooks, Operation, operation_name};
use crate::error::{Error, truncate_sql};
use crate::template::template_tables;

/// Where a handle's statements go, for spans and metrics (fixed when the handle is built).
#[derive(Debug)]
pub(crate) struct Peer {
    /// The database name.
    pub(crate) database: Arc<str>,
    /// The server's host name, address or socket directory.
    pub(crate) address: Arc<str>,
    /// The server's port.
    pub(crate) port: u16,
}

impl Peer {
    /// The peer of a handle opened from `config`.
    pub(crate) fn of(config: &crate::DatabaseConfig) -> Self {
        Peer {
            database: Arc::from(config.database()),
            address: Arc::from(config.host()),
            port: config.port(),
        }
    }

    /// The pool name metrics use when the application gave none: `address:port/database`, as
    /// OpenTelemetry's conventions suggest.
    #[cfg_attr(not(feature = "metrics"), allow(dead_code))]
    pub(crate) fn pool_name(&self) -> String {
        format!("{}:{}/{}", self.address, self.port, self.database)
    }
}

/// What the conventions derive from one template text: the operation, the tables, the summary.
pub(crate) struct Described<'s> {
    pub(crate) operation: String,
    pub(crate) tables: Vec<&'s str>,
}

impl<'s> Described<'s> {
    pub(crate) fn of(sql: &'s str) -> Self {
        Described {
            operation: operation_name(sql),
            tables: template_tables(sql),
        }
    }

    /// `db.collection.name`: only when the statement names exactly one table.
    pub(crate) fn collection(&self) -> Option<&'s str> {
        match self.tables.as_slice() {
            [one] => Some(one),
            _ => None,
        }
    }

    /// `db.query.summary`: the operation followed by every table, or `None` without operation.
    pub(crate) fn summary(&self, prefix: &str) -> Option<String> {
        if self.operation.is_empty() {
            return None;
        }
        let mut summary = String::from(prefix);
        summary.push_str(&self.operation);
        for table in &self.tables {
            summary.push(' ');
            summary.push_str(table);
        }
        Some(summary)
    }
}

/// `db.namespace` for PostgreSQL: the schema qualified by the database name.
fn namespace(hooks: &Hooks, schema: Option<&str>) -> Option<String> {
    let database = hooks.peer.as_deref().map(|p| &*p.database)?;
    Some(match schema {
        Some(schema) => format!("{database}.{schema}"),
        None => database.to_owned(),
    })
}

/// `true` when the retired field names are asked for (`PGDBM_TRACING_LEGACY_FIELDS=1`).
fn legacy_fields() -> bool {
    static LEGACY: OnceLock<bool> = OnceLock::new();
    *LEGACY
        .get_or_init(|| std::env::var("PGDBM_TRACING_LEGACY_FIELDS").is_ok_and(|v| v.trim() == "1"))
}

/// `true` when some subscriber may want DEBUG spans (compile-time and run-time maximum levels).
pub(crate) fn debug_enabled() -> bool {
    use tracing::level_filters::{LevelFilter, STATIC_MAX_LEVEL};
    STATIC_MAX_LEVEL >= LevelFilter::DEBUG && LevelFilter::current() >= LevelFilter::DEBUG
}

/// The `pgdbm.query` span of one statement, or a disabled span when nobody wants it. A
/// `batch_size` of 2 and more makes it the span of a batch (`BATCH INSERT todos`).
pub(crate) fn query_span(
    hooks: &Hooks,
    schema: Option<&str>,
    operation: Operation,
    sql: &str,
    batch_size: Option<usize>,
) -> tracing::Span {
    if hooks.no_span || !debug_enabled() {
        return tracing::Span::none();
    }
    let described = Described::of(sql);
    let batch = batch_size.filter(|n| *n >= 2);
    let prefix = if batch.is_some() { "BATCH " } else { "" };
    let summary = described.summary(prefix);
    let operation_name = format!("{prefix}{}", described.operation);
    let name = summary.as_deref().unwrap_or("postgresql");
    let peer = hooks.peer.as_deref();
    let span = tracing::debug_span!(
        target: "pgdbm::query",
        "pgdbm.query",
        otel.name = name,
        otel.kind = "client",
        otel.status_code = Empty,
        db.system.name = "postgresql",
        db.namespace = namespace(hooks, schema),
        db.operation.name = (!described.operation.is_empty()).then_some(&*operation_name),
        db.collection.name = described.collection(),
        db.query.text = %truncate_sql(sql),
        db.query.summary = summary.as_deref(),
        db.response.status_code = Empty,
        error.type = Empty,
        server.address = peer.map(|p| &*p.address),
        server.port = peer.map(|p| i64::from(p.port)),
        db.operation.batch.size = batch.and_then(|n| i64::try_from(n).ok()),
        pgdbm.schema = schema,
        pgdbm.module = hooks.module.as_deref(),
        pgdbm.operation = operation.as_str(),
        db.system = Empty,
    );
    if legacy_fields() {
        span.record("db.system", "postgresql");
    }
    span
}

/// The span of a transaction level (`pgdbm.transaction`, or `pgdbm.savepoint` at `depth` 1 and
/// more): the parent of the statements run in it, `BEGIN` and `COMMIT` included. Its
/// `pgdbm.outcome` is recorded when the level ends (`commit`, `rollback`).
pub(crate) fn transaction_span(
    hooks: &Hooks,
    schema: Option<&str>,
    parent: Option<&tracing::Span>,
) -> tracing::Span {
    if hooks.no_span || !debug_enabled() {
        return tracing::Span::none();
    }
    let peer = hooks.peer.as_deref();
    macro_rules! level_span {
        ($($parent:tt)*) => {
            tracing::debug_span!(
                target: "pgdbm::query",
                $($parent)*
                "pgdbm.transaction",
                otel.name = if parent.is_some() { "SAVEPOINT" } else { "TRANSACTION" },
                otel.kind = "internal",
                otel.status_code = Empty,
                db.system.name = "postgresql",
                db.namespace = namespace(hooks, schema),
                server.address = peer.map(|p| &*p.address),
                server.port = peer.map(|p| i64::from(p.port)),
                pgdbm.schema = schema,
                pgdbm.module = hooks.module.as_deref(),
                pgdbm.outcome = Empty,
            )
        };
    }
    match parent {
        Some(parent) => level_span!(parent: parent,),
        None => level_span!(),
    }
}

/// Records `error` on a statement's span: `error.type`, the SQLSTATE as
/// `db.response.status_code`, and the error status.
pub(crate) fn record_error(span: &tracing::Span, error: &Error) {
    if span.is_disabled() {
        return;
    }
    span.record("error.type", error_type(error));
    if let Some(code) = error.code() {
        span.record("db.response.status_code", code);
    }
    span.record("otel.status_code", "error");
}

/// `error.type`: the SQLSTATE of a server error, else pgdbm's variant name.
pub(crate) fn error_type(error: &Error) -> &str {
    error.code().unwrap_or_else(|| super::variant_name(error))
}
