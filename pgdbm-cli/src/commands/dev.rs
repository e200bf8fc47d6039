//! `pgdbm dev …`: reset (drop, create, apply every module), export-schema (`pg_dump
//! --schema-only`), watch (apply again when a migrations directory changes).

use std::path::Path;
use std::process::Stdio;

use pgdbm::{DatabaseConfig, quote_identifier};

use super::db::maintenance;
use super::{admin, announce, confirm, connect, migrate};
use crate::config::{self, Resolved};
use crate::error::{CliError, CliResult};
use crate::{Ctx, DevCommand, ModuleSelect};

/// `pgdbm dev …`
pub(crate) async fn dev(ctx: &Ctx, command: DevCommand) -> CliResult<()> {
    let r = config::resolve(&ctx.opts)?;
    match command {
        DevCommand::Reset { yes } => reset(ctx, &r, yes).await,
        DevCommand::ExportSchema { module, output } => {
            export_schema(ctx, &r, module.as_deref(), output.as_deref()).await
        }
        DevCommand::Watch { module } => watch(ctx, &r, module).await,
    }
}

async fn reset(ctx: &Ctx, r: &Resolved, yes: bool) -> CliResult<()> {
    let target = r.database()?;
    announce(ctx, r, target);
    let name = target.database();
    confirm(
        yes,
        &format!(
            "drop and recreate database {name} on {}:{} (all data is lost), then apply every module",
            target.host(),
            target.port()
        ),
    )?;
    let pool = connect(&maintenance(target)?).await?;
    let quoted = quote_identifier(name);
    admin(
        &pool,
        &format!("DROP DATABASE IF EXISTS {quoted} WITH (FORCE)"),
    )
    .await?;
    admin(&pool, &format!("CREATE DATABASE {quoted}")).await?;
    pool.close().await;
    ctx.say(format!("recreated database {name}"));
    let all = ModuleSelect {
        module: None,
        all: true,
    };
    migrate::apply(ctx, r, &all, false).await
}

/// The `pg_dump` program: `PGDBM_PG_DUMP` when set, else `pg_dump` on `PATH`.
fn pg_dump_program() -> String {
    std::env::var("PGDBM_PG_DUMP")
        .ok()
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| "pg_dump".to_owned())
}

/// `pg_dump` for `target`: connection as options and libpq variables (the password only in the
/// child's environment, never on its command line).
fn pg_dump(target: &DatabaseConfig) -> std::process::Command {
    let mut cmd = std::process::Command::new(pg_dump_program());
    cmd.args(["--schema-only", "--no-owner", "--no-privileges"])
        .arg(format!("--host={}", target.host()))
        .arg(format!("--port={}", target.port()))
        .arg(format!("--username={}", target.user()))
        .arg(format!("--dbname={}", target.database()))
        .arg("--no-password")
        .env("PGSSLMODE", target.ssl().mode.as_str())
        .env("PGAPPNAME", "pgdbm dev export-schema");
    if let Some(pw) = target.password() {
        cmd.env("PGPASSWORD", pw);
    }
    let ssl = target.ssl();
    for (var, file) in [
        ("PGSSLROOTCERT", &ssl.ca_file),
        ("PGSSLCERT", &ssl.cert_file),
        ("PGSSLKEY", &ssl.key_file),
    ] {
        if let Some(f) = file {
            cmd.env(var, f);
        }
    }
    cmd
}

async fn export_schema(
    ctx: &Ctx,
    r: &Resolved,
    module: Option<&str>,
    output: Option<&Path>,
) -> CliResult<()> {
    let target = r.database()?;
    announce(ctx, r, target);
    let mut cmd = pg_dump(target);
    if let Some(name) = module {
        let m = r.module(name)?;
        cmd.arg(format!("--schema={}", m.schema_label()));
    }
    if let Some(path) = output {
        cmd.arg(format!("--file={}", path.display()));
    }
    cmd.stdin(Stdio::null());
    let program = pg_dump_program();
    let status = tokio::task::spawn_blocking(move || cmd.status())
        .await
        .map_err(|e| CliError::with_source("pg_dump did not finish", e))?
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                CliError::new(format!(
                    "{program} was not found: install the PostgreSQL client tools (e.g. \
                     `apt install postgresql-client`, `brew install libpq`) or set PGDBM_PG_DUMP \
                     to its path"
                ))
            } else {
                CliError::with_source(format!("cannot run {program}"), e)
            }
        })?;
    if !status.success() {
        return Err(CliError::new(format!(
            "{program} failed ({status}); its message is above"
        )));
    }
    if let Some(path) = output {
        ctx.say(format!("wrote {}", path.display()));
    }
    Ok(())
}

#[cfg(feature = "watch")]
async fn watch(ctx: &Ctx, r: &Resolved, module: Option<String>) -> CliResult<()> {
    use notify::{RecursiveMode, Watcher};
    use std::time::Duration;

    let mods = match &module {
        Some(name) => r.with_dependencies(name)?,
        None => r.modules.iter().collect(),
    };
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        // Accesses do not change a directory; anything else (and errors) triggers a run.
        if !matches!(&event, Ok(e) if e.kind.is_access()) {
            let _ = tx.send(());
        }
    })
    .map_err(|e| CliError::with_source("cannot watch the migrations directories", e))?;
    for m in &mods {
        watcher
            .watch(&m.path, RecursiveMode::NonRecursive)
            .map_err(|e| {
                CliError::with_source(
                    format!("cannot watch {} (module {})", m.path.display(), m.name),
                    e,
                )
            })?;
    }
    let select = ModuleSelect { module, all: false };
    loop {
        if let Err(e) = migrate::apply(ctx, r, &select, false).await {
            // Keep watching: the next change may fix it.
            e.report();
        }
        let dirs: Vec<String> = mods.iter().map(|m| m.path.display().to_string()).collect();
        println!("watching {} for changes (Ctrl+C stops)", dirs.join(", "));
        if rx.recv().await.is_none() {
            return Err(CliError::new("the file watcher stopped"));
        }
        // An editor's save is several events: wait until they stop for a moment.
        while let Ok(Some(())) = tokio::time::timeout(Duration::from_millis(300), rx.recv()).await {
        }
    }
}

#[cfg(not(feature = "watch"))]
async fn watch(_ctx: &Ctx, _r: &Resolved, _module: Option<String>) -> CliResult<()> {
    Err(CliError::new(
        "this pgdbm was built without the `watch` feature: rebuild with it (it is on by default)",
    ))
}
