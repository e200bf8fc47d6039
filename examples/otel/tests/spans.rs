//! The spans pgdbm makes, exported through `tracing-opentelemetry` into OpenTelemetry's
//! in-memory exporter, carry every attribute of the stable database conventions: for a
//! statement that succeeds, one the server refuses (its SQLSTATE), statements in a transaction
//! (children of the transaction's span, `BEGIN`/`COMMIT` included) and a batch. On both drivers.

use std::collections::BTreeMap;

use opentelemetry::Value;
use opentelemetry::trace::{SpanId, SpanKind, Status};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SpanData};
use pgdbm::driver::Driver;
use pgdbm_testing::TestSchema;
use tracing::instrument::WithSubscriber;

/// One exported span: its name, kind, status, parent and attributes as text.
#[derive(Debug)]
struct Exported {
    name: String,
    kind: SpanKind,
    status: Status,
    id: SpanId,
    parent: SpanId,
    attributes: BTreeMap<String, Value>,
}

impl Exported {
    fn of(span: SpanData) -> Self {
        Exported {
            name: span.name.to_string(),
            kind: span.span_kind,
            status: span.status,
            id: span.span_context.span_id(),
            parent: span.parent_span_id,
            attributes: span
                .attributes
                .into_iter()
                .map(|kv| (kv.key.to_string(), kv.value))
                .collect(),
        }
    }

    fn text(&self, key: &str) -> Option<String> {
        self.attributes.get(key).map(|v| match v {
            Value::String(s) => s.to_string(),
            other => panic!("{key} is not a string: {other:?}"),
        })
    }

    fn int(&self, key: &str) -> Option<i64> {
        self.attributes.get(key).map(|v| match v {
            Value::I64(n) => *n,
            other => panic!("{key} is not an integer: {other:?}"),
        })
    }
}

async fn spans_follow_the_conventions<D: Driver>() {
    let schema = TestSchema::<D>::new(&[]).await.expect("test schema");
    let db = schema.database().with_module("inventory");
    otel_example::create_table(&db).await.expect("table");
    let exporter = InMemorySpanExporter::default();
    let (provider, subscriber) = otel_example::layer(exporter.clone());
    otel_example::workload(&db)
        .with_subscriber(subscriber)
        .await
        .expect("workload");
    provider.force_flush().expect("flush");
    let spans: Vec<Exported> = exporter
        .get_finished_spans()
        .expect("finished spans")
        .into_iter()
        .map(Exported::of)
        .collect();
    let names: Vec<&str> = spans.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "INSERT items",
            "SELECT items",
            "INSERT items",
            // The transaction: its statements end before it.
            "BEGIN",
            "UPDATE items",
            "COMMIT",
            "TRANSACTION",
            // execute_many: a transaction of two statements inside the batch span.
            "BEGIN",
            "INSERT items",
            "INSERT items",
            "COMMIT",
            "TRANSACTION",
            "BATCH INSERT items",
        ],
        "{spans:#?}"
    );
    let config = schema.config();
    let namespace = format!("{}.{}", config.database(), schema.schema_name());

    // What every statement span carries.
    for span in spans.iter().filter(|s| s.name != "TRANSACTION") {
        assert_eq!(span.kind, SpanKind::Client, "{span:?}");
        assert_eq!(span.text("db.system.name").as_deref(), Some("postgresql"));
        assert_eq!(span.text("db.namespace"), Some(namespace.clone()));
        assert_eq!(span.text("server.address").as_deref(), Some(config.host()));
        assert_eq!(span.int("server.port"), Some(i64::from(config.port())));
        assert_eq!(
            span.text("pgdbm.schema").as_deref(),
            Some(schema.schema_name())
        );
        assert_eq!(span.text("pgdbm.module").as_deref(), Some("inventory"));
        assert_eq!(span.text("db.query.summary"), Some(span.name.clone()));
        assert!(
            span.text("db.system").is_none(),
            "no retired field by default"
        );
        let text = span.text("db.query.text").expect("query text");
        assert!(!text.contains("first") && !text.contains("again"), "{text}");
    }

    // A statement that succeeded.
    let select = &spans[1];
    assert_eq!(select.text("db.operation.name").as_deref(), Some("SELECT"));
    assert_eq!(select.text("db.collection.name").as_deref(), Some("items"));
    assert_eq!(
        select.text("db.query.text").as_deref(),
        Some("SELECT count(*) FROM {{tables.items}} WHERE id = $1")
    );
    assert_eq!(
        select.text("pgdbm.operation").as_deref(),
        Some("fetch_optional")
    );
    assert_eq!(select.status, Status::Unset);
    assert!(select.text("error.type").is_none());
    assert!(select.text("db.response.status_code").is_none());
    assert!(select.int("db.operation.batch.size").is_none());
    assert_eq!(
        select.parent,
        SpanId::INVALID,
        "a statement outside a transaction is a root"
    );

    // A statement the server refused: its SQLSTATE.
    let failed = &spans[2];
    assert_eq!(failed.text("db.operation.name").as_deref(), Some("INSERT"));
    assert_eq!(failed.text("db.collection.name").as_deref(), Some("items"));
    assert_eq!(
        failed.text("db.response.status_code").as_deref(),
        Some("23505")
    );
    assert_eq!(failed.text("error.type").as_deref(), Some("23505"));
    assert!(matches!(failed.status, Status::Error { .. }), "{failed:?}");

    // The transaction: BEGIN, the statement and COMMIT are children of its span.
    let transaction = &spans[6];
    assert_eq!(transaction.kind, SpanKind::Internal);
    assert_eq!(transaction.text("pgdbm.outcome").as_deref(), Some("commit"));
    assert_eq!(
        transaction.text("pgdbm.module").as_deref(),
        Some("inventory")
    );
    assert_eq!(transaction.text("db.namespace"), Some(namespace.clone()));
    for child in &spans[3..6] {
        assert_eq!(child.parent, transaction.id, "{child:?}");
    }
    let update = &spans[4];
    assert_eq!(update.text("db.operation.name").as_deref(), Some("UPDATE"));
    assert_eq!(update.text("db.collection.name").as_deref(), Some("items"));
    assert_eq!(update.text("pgdbm.operation").as_deref(), Some("execute"));
    assert_eq!(spans[3].text("db.operation.name").as_deref(), Some("BEGIN"));
    assert_eq!(spans[3].text("db.query.text").as_deref(), Some("BEGIN"));
    assert_eq!(
        spans[3].text("pgdbm.operation").as_deref(),
        Some("transaction")
    );
    assert!(spans[3].text("db.collection.name").is_none());
    assert_eq!(
        spans[5].text("db.operation.name").as_deref(),
        Some("COMMIT")
    );

    // The batch: its size, and the transaction under it.
    let batch = &spans[12];
    assert_eq!(
        batch.text("db.operation.name").as_deref(),
        Some("BATCH INSERT")
    );
    assert_eq!(batch.text("db.collection.name").as_deref(), Some("items"));
    assert_eq!(batch.int("db.operation.batch.size"), Some(2));
    assert_eq!(spans[11].parent, batch.id);
    for child in &spans[7..11] {
        assert_eq!(child.parent, spans[11].id, "{child:?}");
    }
    provider.shutdown().expect("shutdown");
}

#[tokio::test]
async fn spans_follow_the_conventions_tokio_postgres() {
    spans_follow_the_conventions::<pgdbm_driver_tokio_postgres::TokioPostgres>().await;
}

#[tokio::test]
async fn spans_follow_the_conventions_sqlx() {
    spans_follow_the_conventions::<pgdbm_driver_sqlx::SqlxDriver>().await;
}
