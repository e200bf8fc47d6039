//! Templates and identifiers: schema isolation on a shared pool, malformed placeholders, invalid
//! names rejected when a handle is made.

use pgdbm::prelude::*;
use pgdbm::{Database, Error, Result};

use super::Ctx;

/// Two handles on one pool, each in its own schema, see only their own `{{tables.items}}`;
/// `{{tables.other.name}}` reaches across; `{{schema}}` names the handle's schema.
///
/// # Errors
///
/// Any unexpected query error.
pub async fn templates_isolate_schemas(ctx: &Ctx) -> Result<()> {
    let a = &ctx.db;
    let b_schema = format!("{}_b", ctx.schema);
    let b = Database::new(ctx.pool.clone(), Some(&b_schema))?;
    b.ensure_schema().await?;
    let result = async {
        for (db, name) in [(a, "in a"), (&b, "in b")] {
            db.batch_execute("CREATE TABLE {{tables.items}} (name text)")
                .await?;
            db.execute("INSERT INTO {{tables.items}} VALUES ($1)", params![name])
                .await?;
        }
        let in_a: Vec<String> = a
            .fetch_all("SELECT name FROM {{tables.items}}", &[])
            .await?
            .iter()
            .map(|r| r.get(0))
            .collect::<Result<_>>()?;
        assert_eq!(in_a, vec!["in a"]);
        let across: String = a
            .fetch_value(
                &format!("SELECT name FROM {{{{tables.{b_schema}.items}}}}"),
                &[],
            )
            .await?;
        assert_eq!(across, "in b");
        let n: i64 = b
            .fetch_value(
                "SELECT count(*) FROM pg_tables WHERE schemaname = $1 AND tablename = 'items'",
                params![b_schema.as_str()],
            )
            .await?;
        assert_eq!(n, 1);
        b.batch_execute("CREATE INDEX items_name ON {{tables.items}} (name); ALTER TABLE {{schema}}.items ADD COLUMN extra int")
            .await?;
        assert_eq!(b.expand_sql("SELECT * FROM {{schema}}.t")?, format!("SELECT * FROM \"{b_schema}\".t"));
        let unscoped = ctx.db.with_schema(None)?;
        assert_eq!(unscoped.expand_sql("SELECT * FROM {{tables.t}} JOIN {{schema}}.u ON true")?, "SELECT * FROM t JOIN u ON true");
        assert_eq!(unscoped.expand_sql("SELECT '{{schema}}'")?, "SELECT 'public'");
        assert_eq!(
            a.expand_sql(r#"SELECT '{"a": {"b": 1}}'::jsonb"#)?,
            r#"SELECT '{"a": {"b": 1}}'::jsonb"#
        );
        Ok::<_, Error>(())
    }
    .await;
    b.batch_execute("DROP SCHEMA {{schema}} CASCADE").await?;
    result
}

/// Malformed `{{tables…}}` placeholders are [`Error::Template`] naming the placeholder; nothing
/// reaches the server.
///
/// # Errors
///
/// Any unexpected query error.
pub async fn template_errors(ctx: &Ctx) -> Result<()> {
    for bad in [
        "{{tables.}}",
        "{{tables.a.b.c}}",
        "{{tables.1abc}}",
        "{{tables.users",
    ] {
        let sql = format!("SELECT * FROM {bad}");
        let err = crate::assert_err!(ctx.db.fetch_all(&sql, &[]).await, Error::Template { .. });
        let shown = bad.trim_end_matches('}');
        assert!(err.to_string().contains(shown), "{bad}: {err}");
    }
    Ok(())
}

/// Invalid schema and table identifiers are rejected when the handle is made / the call is made:
/// `a; drop`, 64 characters, a leading digit, empty.
///
/// # Errors
///
/// Any unexpected query error.
pub async fn identifier_errors(ctx: &Ctx) -> Result<()> {
    let long = "a".repeat(64);
    for bad in ["a; drop", long.as_str(), "1abc", ""] {
        crate::assert_err!(
            Database::new(ctx.pool.clone(), Some(bad)),
            Error::Identifier { .. }
        );
        crate::assert_err!(ctx.db.table_exists(bad).await, Error::Identifier { .. });
        crate::assert_err!(
            ctx.db.copy_in(bad, &["a"], &[]).await,
            Error::Identifier { .. }
        );
    }
    let ok = "a".repeat(63);
    Database::new(ctx.pool.clone(), Some(&ok))?;
    crate::assert_err!(
        ctx.db.copy_in("t", &["x\"y"], &[]).await,
        Error::Identifier { .. }
    );
    Ok(())
}
