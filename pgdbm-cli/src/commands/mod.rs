//! The `migrate`, `db` and `schema` command groups, one file each, and what they share:
//! connecting, administrative SQL, confirmation, output helpers.

mod db;
mod dev;
mod ledger;
mod migrate;
mod schema;

use std::io::{BufRead, IsTerminal, Write};
use std::sync::Arc;
use std::time::Duration;

use pgdbm::{Database, DatabaseConfig, Executor as _, Migrator, SharedPool};
use pgdbm_driver_tokio_postgres::TokioPostgresPool;

use crate::Ctx;
use crate::config::{ModuleDef, Resolved};
use crate::error::{CliError, CliResult};

pub(crate) use db::db;
pub(crate) use dev::dev;
pub(crate) use migrate::migrate;
pub(crate) use schema::schema;

/// Says where the target came from (on standard error, unless `--quiet`), then connects.
async fn connect_target(ctx: &Ctx, r: &Resolved) -> CliResult<SharedPool> {
    let target = r.database()?;
    announce(ctx, r, target);
    connect(target).await
}

/// `target: URL (from SOURCE)` and the resolution's note, on standard error unless `--quiet`.
fn announce(ctx: &Ctx, r: &Resolved, target: &DatabaseConfig) {
    if ctx.quiet {
        return;
    }
    eprintln!("target: {target} (from {})", r.source);
    if let Some(note) = &r.note {
        eprintln!("note: {note}");
    }
}

async fn connect(config: &DatabaseConfig) -> CliResult<SharedPool> {
    let pool = TokioPostgresPool::connect(config).await.map_err(|e| {
        let mut err = CliError::from(e);
        err.details.push(format!("target: {config}"));
        err
    })?;
    Ok(Arc::new(pool))
}

/// Runs administrative SQL built from quoted identifiers (`CREATE DATABASE "…"`) on the pool
/// itself: never through a [`Database`] handle, whose template expansion would rewrite a name
/// that happens to contain `{{…}}`.
async fn admin(pool: &SharedPool, sql: &str) -> CliResult<()> {
    pool.batch_execute(sql).await?;
    Ok(())
}

fn ms(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1000.0;
    if ms < 10.0 {
        format!("{ms:.1} ms")
    } else {
        format!("{ms:.0} ms")
    }
}

fn print_json(value: &serde_json::Value) {
    println!(
        "{}",
        serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string())
    );
}

/// Asks before a destructive action; refuses without a terminal.
fn confirm(yes: bool, action: &str) -> CliResult<()> {
    if yes {
        return Ok(());
    }
    if !std::io::stdin().is_terminal() {
        return Err(CliError::new(format!(
            "refusing to {action} without --yes (standard input is not a terminal)"
        )));
    }
    eprint!("{action}? [y/N] ");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| CliError::with_source("cannot read the answer", e))?;
    match line.trim().to_ascii_lowercase().as_str() {
        "y" | "yes" => Ok(()),
        _ => Err(CliError::new("aborted")),
    }
}

fn module_db(pool: &SharedPool, m: &ModuleDef) -> CliResult<Database> {
    Ok(Database::new(pool.clone(), m.schema.as_deref())?)
}

/// The migrator of module `m`: its schema, the configured ledger table.
fn migrator(pool: &SharedPool, m: &ModuleDef) -> CliResult<Migrator> {
    Ok(module_db(pool, m)?
        .migrator()
        .with_ledger_table(&m.ledger_table)?)
}

fn table(headers: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let parts: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        println!("{}", parts.join("  ").trim_end());
    };
    line(headers.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
}
