//! `pgdbm migrate …`: apply, status, verify, history, create (forget, baseline and repair are in
//! `ledger.rs`).

use std::collections::HashMap;
use std::io::{IsTerminal, Read};
use std::time::Instant;

use pgdbm::MigrationSource;
use pgdbm::migrate::{Migration, MigrationNaming, MigrationState, create_migration};
use serde_json::json;

use super::{connect_target, ledger, migrator, ms, print_json, table};
use crate::config::{self, ModuleDef, Resolved};
use crate::error::{CliError, CliResult};
use crate::{Ctx, Format, MigrateCommand};

fn load_sources<'r>(mods: &[&'r ModuleDef]) -> CliResult<Vec<(&'r ModuleDef, MigrationSource)>> {
    mods.iter().map(|m| Ok((*m, m.source()?))).collect()
}

fn selected<'r>(r: &'r Resolved, select: &crate::ModuleSelect) -> CliResult<Vec<&'r ModuleDef>> {
    r.select(select.module.as_deref())
}

/// `pgdbm migrate …`
pub(crate) async fn migrate(ctx: &Ctx, command: MigrateCommand) -> CliResult<()> {
    let r = config::resolve(&ctx.opts)?;
    match command {
        MigrateCommand::Apply { select, dry_run } => apply(ctx, &r, &select, dry_run).await,
        MigrateCommand::Status { select } => status(ctx, &r, &select).await,
        MigrateCommand::Create {
            name,
            module,
            sql,
            timestamp,
        } => {
            let m = match module {
                Some(name) => r.module(&name)?,
                None if r.modules.len() == 1 => &r.modules[0],
                None => {
                    return Err(CliError::usage(
                        "several modules are configured: choose one with -m MODULE",
                    ));
                }
            };
            let naming = if timestamp {
                MigrationNaming::Timestamp
            } else {
                MigrationNaming::Sequential
            };
            let sql = match sql {
                Some(sql) => Some(sql),
                None if !std::io::stdin().is_terminal() => {
                    let mut text = String::new();
                    std::io::stdin()
                        .read_to_string(&mut text)
                        .map_err(|e| CliError::with_source("cannot read standard input", e))?;
                    // Nothing piped in: the commented template, as on a terminal.
                    Some(text).filter(|t| !t.trim().is_empty())
                }
                None => None,
            };
            if let Some(sql) = &sql {
                if !has_statement(sql) {
                    return Err(CliError::usage(
                        "the migration's SQL has no statement (only comments or whitespace): \
                         give it with --sql TEXT or on standard input",
                    ));
                }
            }
            let path = create_migration(&m.path, &name, naming)?;
            if let Some(sql) = sql {
                let mut text = sql.trim_end().to_owned();
                text.push('\n');
                std::fs::write(&path, text).map_err(|e| {
                    CliError::with_source(format!("cannot write {}", path.display()), e)
                })?;
            }
            if ctx.quiet {
                println!("{}", path.display());
            } else {
                println!("created {} (module {})", path.display(), m.name);
            }
            Ok(())
        }
        MigrateCommand::Forget { file, module, yes } => {
            ledger::forget(ctx, &r, &module, &file, yes).await
        }
        MigrateCommand::Baseline { module, up_to, yes } => {
            ledger::baseline(ctx, &r, &module, up_to.as_deref(), yes).await
        }
        MigrateCommand::Repair { module, yes } => ledger::repair(ctx, &r, &module, yes).await,
        MigrateCommand::Verify { select } => verify(ctx, &r, &select).await,
        MigrateCommand::History { module, limit } => history(ctx, &r, module, limit).await,
    }
}

pub(super) async fn apply(
    ctx: &Ctx,
    r: &Resolved,
    select: &crate::ModuleSelect,
    dry_run: bool,
) -> CliResult<()> {
    let mods = match &select.module {
        Some(name) => r.with_dependencies(name)?,
        None => r.modules.iter().collect(),
    };
    let sources = load_sources(&mods)?;
    let pool = connect_target(ctx, r).await?;
    let started = Instant::now();
    let mut done: Vec<String> = Vec::new();
    let mut json_out = Vec::new();
    let failed = |e: pgdbm::Error, done: &[String]| {
        let mut err = CliError::from(e);
        if done.is_empty() {
            err.details
                .push("nothing was applied by this run".to_owned());
        } else {
            err.details
                .push(format!("applied before the failure: {}", done.join(", ")));
        }
        err
    };
    for (m, source) in &sources {
        let migrator = migrator(&pool, m)?;
        let planned = migrator
            .dry_run(&m.name, source)
            .await
            .map_err(|e| failed(e, &done))?;
        if dry_run {
            ctx.say(format!(
                "{} (schema {}): {} pending",
                m.name,
                m.schema_label(),
                planned.len()
            ));
            for p in &planned {
                ctx.say(format!("  would apply {}", p.file));
                if ctx.verbose > 0 && ctx.format == Format::Text {
                    println!("{}", p.sql);
                }
            }
            json_out.push(json!({
                "module": m.name,
                "schema": m.schema_label(),
                "pending": planned.iter().map(|p| &p.file).collect::<Vec<_>>(),
            }));
            continue;
        }
        if planned.is_empty() {
            ctx.say(format!(
                "{} (schema {}): up to date",
                m.name,
                m.schema_label()
            ));
        } else {
            ctx.say(format!(
                "{} (schema {}): {} pending",
                m.name,
                m.schema_label(),
                planned.len()
            ));
        }
        let mut applied_here = Vec::new();
        for p in &planned {
            let applied = migrator
                .apply_one(&m.name, source, &p.file)
                .await
                .map_err(|e| failed(e, &done))?;
            match applied {
                Some(a) => {
                    ctx.say(format!("  applied {} ({})", a.file, ms(a.duration)));
                    done.push(format!("{}/{}", m.name, a.file));
                    applied_here.push(json!({"file": a.file, "ms": a.duration.as_millis() as u64}));
                }
                None => ctx.say(format!("  {} was applied by another process", p.file)),
            }
        }
        json_out
            .push(json!({"module": m.name, "schema": m.schema_label(), "applied": applied_here}));
    }
    if ctx.format == Format::Json {
        print_json(&serde_json::Value::Array(json_out));
    } else if !dry_run && !ctx.quiet {
        println!(
            "applied {} migration(s) in {} module(s) in {}",
            done.len(),
            sources.len(),
            ms(started.elapsed())
        );
    }
    Ok(())
}

/// `true` when `sql` has a statement, not only comments and whitespace (the library's rule,
/// checked here so that `create` never writes a file `apply` refuses).
fn has_statement(sql: &str) -> bool {
    Migration::new("new.sql", sql.to_owned()).is_ok_and(|m| m.has_statement())
}

fn state_name(s: &MigrationState) -> &'static str {
    match s {
        MigrationState::Applied => "applied",
        MigrationState::Pending => "pending",
        MigrationState::Changed { .. } => "changed",
        MigrationState::MissingFromSource => "missing",
        _ => "unknown",
    }
}

async fn status(ctx: &Ctx, r: &Resolved, select: &crate::ModuleSelect) -> CliResult<()> {
    let sources = load_sources(&selected(r, select)?)?;
    let pool = connect_target(ctx, r).await?;
    let mut rows = Vec::new();
    let mut items = Vec::new();
    for (m, source) in &sources {
        let migrator = migrator(&pool, m)?;
        let states = migrator.status(&m.name, source).await?;
        let when: HashMap<String, String> = migrator
            .history(Some(&m.name))
            .await?
            .into_iter()
            .map(|h| (h.filename, h.applied_at))
            .collect();
        for s in states {
            let applied_at = when.get(&s.file).cloned();
            let mut item = json!({
                "module": m.name,
                "schema": m.schema_label(),
                "file": s.file,
                "state": state_name(&s.state),
                "applied_at": applied_at,
            });
            if let MigrationState::Changed { applied, current } = &s.state {
                item["ledger_checksum"] = json!(applied);
                item["file_checksum"] = json!(current);
            }
            rows.push(vec![
                m.name.clone(),
                s.file.clone(),
                applied_at.unwrap_or_else(|| "-".to_owned()),
                state_name(&s.state).to_owned(),
            ]);
            items.push(item);
        }
    }
    if ctx.format == Format::Json {
        print_json(&serde_json::Value::Array(items));
    } else if rows.is_empty() {
        println!("no migrations");
    } else {
        table(&["MODULE", "FILE", "APPLIED AT", "STATE"], &rows);
    }
    Ok(())
}

async fn verify(ctx: &Ctx, r: &Resolved, select: &crate::ModuleSelect) -> CliResult<()> {
    let sources = load_sources(&selected(r, select)?)?;
    let pool = connect_target(ctx, r).await?;
    let mut changed = Vec::new();
    let mut checked = 0usize;
    for (m, source) in &sources {
        let migrator = migrator(&pool, m)?;
        for s in migrator.status(&m.name, source).await? {
            match s.state {
                MigrationState::Applied => checked += 1,
                MigrationState::Changed { applied, current } => {
                    checked += 1;
                    changed.push(format!(
                        "{}/{}: ledger checksum {applied}, file checksum {current}",
                        m.name, s.file
                    ));
                }
                MigrationState::MissingFromSource => {
                    ctx.say(format!(
                        "note: {}/{} is in the ledger but not in {}",
                        m.name,
                        s.file,
                        m.path.display()
                    ));
                }
                _ => {}
            }
        }
    }
    if !changed.is_empty() {
        let mut err = CliError::new(format!(
            "{} applied migration(s) changed since they were applied",
            changed.len()
        ));
        err.details = changed;
        return Err(err);
    }
    ctx.say(format!(
        "ok: {checked} applied migration(s) in {} module(s) unchanged",
        sources.len()
    ));
    Ok(())
}

async fn history(
    ctx: &Ctx,
    r: &Resolved,
    module: Option<String>,
    limit: Option<usize>,
) -> CliResult<()> {
    let mods = r.select(module.as_deref())?;
    let pool = connect_target(ctx, r).await?;
    let mut seen = std::collections::HashSet::new();
    let mut entries = Vec::new();
    for m in mods {
        let migrator = migrator(&pool, m)?;
        let rows = match limit {
            Some(n) => migrator.recent_history(Some(&m.name), n).await?,
            None => migrator.history(Some(&m.name)).await?,
        };
        for h in rows {
            if seen.insert((m.schema_label().to_owned(), h.id)) {
                entries.push((m.schema_label().to_owned(), h));
            }
        }
    }
    entries.sort_by(|a, b| (&a.1.applied_at, a.1.id).cmp(&(&b.1.applied_at, b.1.id)));
    if let Some(n) = limit {
        let skip = entries.len().saturating_sub(n);
        entries.drain(..skip);
    }
    if ctx.format == Format::Json {
        let items: Vec<_> = entries
            .iter()
            .map(|(schema, h)| {
                json!({
                    "schema": schema,
                    "module": h.module_name,
                    "file": h.filename,
                    "checksum": h.checksum,
                    "applied_at": h.applied_at,
                    "applied_by": h.applied_by,
                    "execution_time_ms": h.execution_time_ms,
                })
            })
            .collect();
        print_json(&serde_json::Value::Array(items));
    } else if entries.is_empty() {
        println!("no migrations applied");
    } else {
        let rows: Vec<Vec<String>> = entries
            .iter()
            .map(|(_, h)| {
                vec![
                    h.applied_at.clone(),
                    h.module_name.clone().unwrap_or_else(|| "-".to_owned()),
                    h.filename.clone(),
                    h.applied_by.clone().unwrap_or_default(),
                    h.execution_time_ms
                        .map_or_else(|| "-".to_owned(), |t| format!("{t} ms")),
                ]
            })
            .collect();
        table(&["APPLIED AT", "MODULE", "FILE", "BY", "TIME"], &rows);
    }
    Ok(())
}
