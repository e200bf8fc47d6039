//! The `search_path` pgdbm gives a pool's connections: the module's (`"<schema>", public`) for a
//! config with a schema, and a pinned one for shared pools, verified when the pool opens.

use pgdbm::prelude::*;
use pgdbm::{Database, Error, Result};

use crate::Ctx;

/// `search_path` entries, trimmed (the server's spacing may differ from what was sent).
fn entries(path: &str) -> Vec<String> {
    path.split(',').map(|e| e.trim().to_owned()).collect()
}

/// A pool opened with the check's schema in its config gets `search_path = "<schema>", public`,
/// so unqualified table names resolve to the schema (pgdbm for Python's behaviour); with
/// `search_path_to_schema(false)` the server's own `search_path` stays. Behind a transaction
/// pooler the path is set in the transactions pgdbm opens (autocommit statements keep the
/// server's), so there the check looks inside a transaction.
///
/// # Errors
///
/// Any unexpected query error.
pub async fn schema_config_sets_the_module_search_path(ctx: &Ctx) -> Result<()> {
    ctx.db
        .batch_execute(
            "CREATE TABLE {{tables.sp_notes}} (id int); INSERT INTO {{tables.sp_notes}} VALUES (7)",
        )
        .await?;
    let through_pooler = ctx.config.pooler().is_transaction();
    let expected = entries(&format!("{}, public", pgdbm::quote_identifier(&ctx.schema)));

    let config = ctx.config_with(|b| b.schema(&ctx.schema).max_connections(2))?;
    assert_eq!(
        config.search_path().map(|p| entries(&p)),
        Some(expected.clone())
    );
    let db = Database::owning(ctx.connect(config.clone()).await?, Some(&ctx.schema))?;
    if !through_pooler {
        let path: String = db.fetch_value("SHOW search_path", &[]).await?;
        assert_eq!(entries(&path), expected);
        let id: i32 = db.fetch_value("SELECT id FROM sp_notes", &[]).await?;
        assert_eq!(id, 7);
        db.execute("INSERT INTO sp_notes VALUES (8)", &[]).await?;
    }
    let expected_in_tx = expected.clone();
    db.transaction(|tx| async move {
        let path: String = tx.fetch_value("SHOW search_path", &[]).await?;
        assert_eq!(entries(&path), expected_in_tx);
        tx.execute("INSERT INTO sp_notes VALUES (9)", &[]).await?;
        Ok::<_, Error>(())
    })
    .await?;
    // The unqualified inserts went to the schema.
    let n: i64 = ctx
        .db
        .fetch_value("SELECT count(*) FROM {{tables.sp_notes}}", &[])
        .await?;
    assert_eq!(n, if through_pooler { 2 } else { 3 });
    db.close().await;

    // Opted out: the server's search_path, which does not reach the schema.
    let off = Database::owning(
        ctx.connect(config.to_builder().search_path_to_schema(false).build()?)
            .await?,
        Some(&ctx.schema),
    )?;
    let off_path: String = off
        .transaction(|tx| async move { tx.fetch_value("SHOW search_path", &[]).await })
        .await?;
    assert!(
        !entries(&off_path).contains(&expected[0]),
        "opted out, yet {off_path}"
    );
    let err = off
        .fetch_value::<i32>("SELECT id FROM sp_notes", &[])
        .await
        .expect_err("an unqualified name outside the search_path");
    assert_eq!(err.code(), Some("42P01"), "{err}");
    assert_eq!(
        off.fetch_value::<i64>("SELECT count(*) FROM {{tables.sp_notes}}", &[])
            .await?,
        n
    );
    off.close().await;
    Ok(())
}

/// A pool pinned to `search_path = pg_catalog` (Python's `shared_pool_search_path`) makes an
/// unqualified table name fail loudly (`42P01`) while templates and built-ins work. The pin is
/// verified when the pool opens: when something else decides the effective path (here an init
/// command; behind a transaction pooler, the pooler itself), opening fails with a typed error
/// naming `pin_search_path` and both paths.
///
/// # Errors
///
/// Any unexpected query error.
pub async fn pinned_search_path_is_verified_and_fails_loudly(ctx: &Ctx) -> Result<()> {
    ctx.db
        .batch_execute("CREATE TABLE {{tables.pin_items}} (id int); INSERT INTO {{tables.pin_items}} VALUES (1)")
        .await?;
    let pinned = ctx.config_with(|b| b.pin_search_path("pg_catalog").max_connections(2))?;
    let opened = ctx.connect(pinned.clone()).await;
    if ctx.config.pooler().is_transaction() {
        let err = crate::assert_err!(opened, Error::Config { .. });
        assert!(
            matches!(err, Error::Config { ref field, .. } if field == "pin_search_path"),
            "{err:?}"
        );
        assert!(err.to_string().contains("transaction pooler"), "{err}");
        return Ok(());
    }
    let pool = opened?;
    let path: String = pool.fetch_value("SHOW search_path", &[]).await?;
    assert_eq!(path, "pg_catalog");
    let db = Database::new(pool.clone(), Some(&ctx.schema))?;
    assert_eq!(
        db.fetch_value::<i64>("SELECT count(*) FROM {{tables.pin_items}}", &[])
            .await?,
        1
    );
    assert!(
        db.fetch_value::<i64>("SELECT count(*) FROM pg_class", &[])
            .await?
            > 0
    );
    let err = db
        .fetch_value::<i64>("SELECT count(*) FROM pin_items", &[])
        .await
        .expect_err("a forgotten template");
    assert_eq!(err.code(), Some("42P01"), "{err}");
    pool.close().await;

    // Not in effect: an init command changes the path after the startup packet set it.
    let overridden = pinned
        .to_builder()
        .init_command("SET search_path = public")
        .build()?;
    let err = crate::assert_err!(ctx.connect(overridden).await, Error::Config { .. });
    assert!(
        matches!(err, Error::Config { ref field, .. } if field == "pin_search_path"),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(
        text.contains("pg_catalog") && text.contains("public"),
        "{text}"
    );
    Ok(())
}
