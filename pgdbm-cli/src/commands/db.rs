//! `pgdbm db …`: create, drop, reset, test-connection, info.

use std::time::{Duration, Instant};

use pgdbm::migrate::MigrationState;
use pgdbm::{Database, DatabaseConfig, quote_identifier};
use serde_json::json;

use super::{admin, announce, confirm, connect, migrator, ms, print_json};
use crate::config::{self, Resolved};
use crate::error::CliResult;
use crate::{Ctx, DbCommand, Format};

/// The same server, another database: where CREATE/DROP DATABASE run.
pub(super) fn maintenance(target: &DatabaseConfig) -> CliResult<DatabaseConfig> {
    let other = if target.database() == "postgres" {
        "template1"
    } else {
        "postgres"
    };
    Ok(target
        .to_builder()
        .database(other)
        .without_schema()
        .build()?)
}

/// `pgdbm db …`
pub(crate) async fn db(ctx: &Ctx, command: DbCommand) -> CliResult<()> {
    let r = config::resolve(&ctx.opts)?;
    let target = r.database()?;
    announce(ctx, &r, target);
    let name = target.database().to_owned();
    let quoted = quote_identifier(&name);
    let place = format!("{}:{}", target.host(), target.port());
    match command {
        DbCommand::Create { yes } => {
            confirm(yes, &format!("create database {name} on {place}"))?;
            let pool = connect(&maintenance(target)?).await?;
            admin(&pool, &format!("CREATE DATABASE {quoted}")).await?;
            ctx.say(format!("created database {name}"));
        }
        DbCommand::Drop { yes } => {
            confirm(yes, &format!("drop database {name} on {place}"))?;
            let pool = connect(&maintenance(target)?).await?;
            admin(&pool, &format!("DROP DATABASE {quoted} WITH (FORCE)")).await?;
            ctx.say(format!("dropped database {name}"));
        }
        DbCommand::Reset { yes } => {
            confirm(
                yes,
                &format!("drop and recreate database {name} on {place} (all data is lost)"),
            )?;
            let pool = connect(&maintenance(target)?).await?;
            admin(
                &pool,
                &format!("DROP DATABASE IF EXISTS {quoted} WITH (FORCE)"),
            )
            .await?;
            admin(&pool, &format!("CREATE DATABASE {quoted}")).await?;
            ctx.say(format!(
                "reset database {name}: it is empty; run `pgdbm migrate apply` next"
            ));
        }
        DbCommand::TestConnection => {
            let started = Instant::now();
            let pool = connect(target).await?;
            let connect_time = started.elapsed();
            let db = Database::new(pool, None)?;
            let mut latency = Duration::MAX;
            for _ in 0..3 {
                let t = Instant::now();
                db.execute("SELECT 1", &[]).await?;
                latency = latency.min(t.elapsed());
            }
            let row = db
                .fetch_one(
                    "SELECT current_setting('server_version') AS version, current_database() AS db, \
                     pg_size_pretty(pg_database_size(current_database())) AS size, current_user::text AS usr",
                    &[],
                )
                .await?;
            let version: String = row.get("version")?;
            let database: String = row.get("db")?;
            let size: String = row.get("size")?;
            let user: String = row.get("usr")?;
            if ctx.format == Format::Json {
                print_json(&json!({
                    "ok": true, "server_version": version, "database": database, "user": user,
                    "size": size, "connect_ms": connect_time.as_secs_f64() * 1000.0,
                    "latency_ms": latency.as_secs_f64() * 1000.0,
                }));
            } else {
                println!("connection ok: {target}");
                println!("  server:   PostgreSQL {version}");
                println!("  database: {database} (user {user})");
                println!("  size:     {size}");
                println!("  connect:  {}", ms(connect_time));
                println!("  latency:  {}", ms(latency));
            }
        }
        DbCommand::Info => info(ctx, &r, target).await?,
    }
    Ok(())
}

async fn info(ctx: &Ctx, r: &Resolved, target: &DatabaseConfig) -> CliResult<()> {
    let pool = connect(target).await?;
    let db = Database::new(pool.clone(), None)?;
    let row = db
        .fetch_one(
            "SELECT current_setting('server_version') AS version, current_database() AS db, \
             current_user::text AS usr, pg_database_size(current_database()) AS bytes, \
             pg_size_pretty(pg_database_size(current_database())) AS size, \
             (SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()) AS connections, \
             current_setting('max_connections') AS max_connections, \
             (SELECT count(*) FROM pg_namespace WHERE nspname NOT LIKE 'pg\\_%' AND nspname <> 'information_schema') AS schemas",
            &[],
        )
        .await?;
    let version: String = row.get("version")?;
    let database: String = row.get("db")?;
    let user: String = row.get("usr")?;
    let bytes: i64 = row.get("bytes")?;
    let size: String = row.get("size")?;
    let connections: i64 = row.get("connections")?;
    let max_connections: String = row.get("max_connections")?;
    let schemas: i64 = row.get("schemas")?;
    let mut modules = Vec::new();
    for m in &r.modules {
        let migrator = migrator(&pool, m)?;
        let source = m.source().ok();
        let (applied, pending) = match &source {
            Some(s) => {
                let st = migrator.status(&m.name, s).await?;
                let applied = st
                    .iter()
                    .filter(|x| !matches!(x.state, MigrationState::Pending))
                    .count();
                (applied, Some(st.len() - applied))
            }
            None => (migrator.history(Some(&m.name)).await?.len(), None),
        };
        modules.push((m, applied, pending));
    }
    if ctx.format == Format::Json {
        print_json(&json!({
            "target": target.to_string(),
            "target_source": r.source.to_string(),
            "config_file": r.file.as_ref().map(|f| f.display().to_string()),
            "environment": r.env,
            "server_version": version,
            "database": database,
            "user": user,
            "size_bytes": bytes,
            "size": size,
            "connections": connections,
            "max_connections": max_connections,
            "schemas": schemas,
            "modules": modules.iter().map(|(m, a, p)| json!({
                "name": m.name, "schema": m.schema_label(),
                "migrations_path": m.path.display().to_string(),
                "depends_on": m.depends_on, "applied": a, "pending": p,
            })).collect::<Vec<_>>(),
        }));
        return Ok(());
    }
    println!("target:      {target}");
    println!("from:        {}", r.source);
    match (&r.file, &r.env) {
        (Some(f), Some(env)) => println!("config:      {} (environment {env})", f.display()),
        (Some(f), None) => println!("config:      {}", f.display()),
        (None, _) => println!(
            "config:      none (./migrations, module {})",
            r.modules[0].name
        ),
    }
    println!("server:      PostgreSQL {version}");
    println!("database:    {database} (user {user})");
    println!("size:        {size}");
    println!("connections: {connections} of {max_connections}");
    println!("schemas:     {schemas}");
    println!("modules:");
    for (m, a, p) in modules {
        let pending = p.map_or_else(
            || "migrations unreadable".to_owned(),
            |p| format!("{p} pending"),
        );
        println!(
            "  {} (schema {}, {}): {a} applied, {pending}",
            m.name,
            m.schema_label(),
            m.path.display()
        );
    }
    Ok(())
}
