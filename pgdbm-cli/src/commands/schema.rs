//! `pgdbm schema …`: list, create, drop, deps.

use std::collections::BTreeMap;

use pgdbm::{Database, quote_identifier};
use serde_json::json;

use super::{admin, confirm, connect_target, print_json, table};
use crate::config;
use crate::error::{CliError, CliResult};
use crate::{Ctx, Format, SchemaCommand};

/// `pgdbm schema …`
pub(crate) async fn schema(ctx: &Ctx, command: SchemaCommand) -> CliResult<()> {
    let r = config::resolve(&ctx.opts)?;
    match command {
        SchemaCommand::List => {
            let pool = connect_target(ctx, &r).await?;
            let rows = Database::new(pool, None)?
                .fetch_all(
                    "SELECT n.nspname::text AS name, \
                     count(c.oid) FILTER (WHERE c.relkind IN ('r', 'p')) AS tables \
                     FROM pg_namespace n LEFT JOIN pg_class c ON c.relnamespace = n.oid \
                     WHERE n.nspname NOT LIKE 'pg\\_%' AND n.nspname <> 'information_schema' \
                     GROUP BY n.nspname ORDER BY n.nspname",
                    &[],
                )
                .await?;
            let mut owners: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
            for m in &r.modules {
                owners.entry(m.schema_label()).or_default().push(&m.name);
            }
            let mut items = Vec::new();
            let mut lines = Vec::new();
            for row in rows {
                let name: String = row.get("name")?;
                let tables: i64 = row.get("tables")?;
                let mods = owners.get(name.as_str()).cloned().unwrap_or_default();
                lines.push(vec![
                    name.clone(),
                    tables.to_string(),
                    if mods.is_empty() {
                        "-".to_owned()
                    } else {
                        mods.join(", ")
                    },
                ]);
                items.push(json!({"schema": name, "tables": tables, "modules": mods}));
            }
            if ctx.format == Format::Json {
                print_json(&serde_json::Value::Array(items));
            } else {
                table(&["SCHEMA", "TABLES", "MODULES"], &lines);
            }
        }
        SchemaCommand::Create { module } => {
            let m = r.module(&module)?;
            let Some(schema) = &m.schema else {
                return Err(CliError::new(format!(
                    "module {:?} has no schema of its own (it uses public)",
                    m.name
                )));
            };
            let pool = connect_target(ctx, &r).await?;
            Database::new(pool, Some(schema))?.ensure_schema().await?;
            ctx.say(format!("created schema {schema} (module {})", m.name));
        }
        SchemaCommand::Drop { module, yes } => {
            let m = r.module(&module)?;
            let Some(schema) = &m.schema else {
                return Err(CliError::new(format!(
                    "module {:?} has no schema of its own (it uses public); refusing to drop public",
                    m.name
                )));
            };
            if schema == "public" {
                return Err(CliError::new("refusing to drop schema public"));
            }
            confirm(yes, &format!("drop schema {schema} and everything in it"))?;
            let pool = connect_target(ctx, &r).await?;
            admin(
                &pool,
                &format!("DROP SCHEMA IF EXISTS {} CASCADE", quote_identifier(schema)),
            )
            .await?;
            ctx.say(format!("dropped schema {schema} (module {})", m.name));
        }
        SchemaCommand::Deps => {
            let order: Vec<serde_json::Value> = r
                .modules
                .iter()
                .enumerate()
                .map(|(i, m)| {
                    let dependents: Vec<&str> = r
                        .modules
                        .iter()
                        .filter(|o| o.depends_on.contains(&m.name))
                        .map(|o| o.name.as_str())
                        .collect();
                    json!({
                        "order": i + 1, "module": m.name, "schema": m.schema_label(),
                        "depends_on": m.depends_on, "dependents": dependents,
                    })
                })
                .collect();
            if ctx.format == Format::Json {
                print_json(&serde_json::Value::Array(order));
            } else {
                println!("modules in the order they are applied:");
                for m in &r.modules {
                    let deps = if m.depends_on.is_empty() {
                        String::new()
                    } else {
                        format!(" <- {}", m.depends_on.join(", "))
                    };
                    println!("  {} (schema {}){deps}", m.name, m.schema_label());
                }
            }
        }
    }
    Ok(())
}
