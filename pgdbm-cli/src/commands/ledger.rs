//! `pgdbm migrate forget | baseline | repair`: changing the ledger by hand, each after a
//! confirmation, each under the module's migration lock (the library's `Migrator::forget`,
//! `baseline` and `repair`).

use pgdbm::migrate::MigrationState;
use serde_json::json;

use super::{confirm, connect_target, migrator, print_json};
use crate::Ctx;
use crate::Format;
use crate::config::Resolved;
use crate::error::{CliError, CliResult};

/// `pgdbm migrate forget FILE -m MODULE [--yes]`
pub(crate) async fn forget(
    ctx: &Ctx,
    r: &Resolved,
    module: &str,
    file: &str,
    yes: bool,
) -> CliResult<()> {
    let m = r.module(module)?;
    let pool = connect_target(ctx, r).await?;
    confirm(
        yes,
        &format!(
            "forget {file} of module {} (its ledger row is deleted; nothing it did is undone, \
             and the next apply runs it again)",
            m.name
        ),
    )?;
    let removed = migrator(&pool, m)?.forget(&m.name, file).await?;
    if !removed {
        return Err(CliError::new(format!(
            "{file} is not in module {}'s ledger (see `pgdbm migrate history -m {}`)",
            m.name, m.name
        )));
    }
    if ctx.format == Format::Json {
        print_json(&json!({"module": m.name, "forgotten": file}));
    } else {
        ctx.say(format!(
            "forgot {file} (module {}): the next apply runs it again",
            m.name
        ));
    }
    Ok(())
}

/// `pgdbm migrate baseline -m MODULE [--up-to FILE] [--yes]`
pub(crate) async fn baseline(
    ctx: &Ctx,
    r: &Resolved,
    module: &str,
    up_to: Option<&str>,
    yes: bool,
) -> CliResult<()> {
    let m = r.module(module)?;
    let source = m.source()?;
    if let Some(last) = up_to {
        if source.get(last).is_none() {
            return Err(CliError::new(format!(
                "--up-to {last}: no such file in {}",
                m.path.display()
            )));
        }
    }
    let pool = connect_target(ctx, r).await?;
    let migrator = migrator(&pool, m)?;
    let files = source.migrations();
    let end = up_to
        .and_then(|u| files.iter().position(|f| f.name() == u))
        .map_or(files.len(), |i| i + 1);
    let in_range: Vec<&str> = files[..end].iter().map(|f| f.name()).collect();
    let pending: Vec<String> = migrator
        .status(&m.name, &source)
        .await?
        .into_iter()
        .filter(|s| {
            matches!(s.state, MigrationState::Pending) && in_range.contains(&s.file.as_str())
        })
        .map(|s| s.file)
        .collect();
    if pending.is_empty() {
        ctx.say(format!("{}: nothing to record", m.name));
        if ctx.format == Format::Json {
            print_json(&json!({"module": m.name, "recorded": []}));
        }
        return Ok(());
    }
    confirm(
        yes,
        &format!(
            "record {} as applied for module {} without running {} ({})",
            if pending.len() == 1 {
                "1 file"
            } else {
                "files"
            },
            m.name,
            if pending.len() == 1 { "it" } else { "them" },
            pending.join(", ")
        ),
    )?;
    let recorded = migrator.baseline(&m.name, &source, up_to).await?;
    if ctx.format == Format::Json {
        print_json(&json!({"module": m.name, "recorded": recorded}));
    } else {
        for f in &recorded {
            ctx.say(format!("  recorded {f}"));
        }
        ctx.say(format!(
            "{}: recorded {} migration(s) as applied without running them",
            m.name,
            recorded.len()
        ));
    }
    Ok(())
}

/// `pgdbm migrate repair -m MODULE [--yes]`
pub(crate) async fn repair(ctx: &Ctx, r: &Resolved, module: &str, yes: bool) -> CliResult<()> {
    let m = r.module(module)?;
    let source = m.source()?;
    let pool = connect_target(ctx, r).await?;
    let migrator = migrator(&pool, m)?;
    let changed: Vec<(String, String, String)> = migrator
        .status(&m.name, &source)
        .await?
        .into_iter()
        .filter_map(|s| match s.state {
            MigrationState::Changed { applied, current } => Some((s.file, applied, current)),
            _ => None,
        })
        .collect();
    if changed.is_empty() {
        ctx.say(format!("{}: no applied migration changed", m.name));
        if ctx.format == Format::Json {
            print_json(&json!({"module": m.name, "repaired": []}));
        }
        return Ok(());
    }
    if !ctx.quiet {
        eprintln!("changed since they were applied (module {}):", m.name);
        for (file, applied, current) in &changed {
            eprintln!("  {file}\n    ledger: {applied}\n    file:   {current}");
        }
    }
    confirm(
        yes,
        &format!(
            "record the new checksum of {} file(s) of module {} (they are not run again)",
            changed.len(),
            m.name
        ),
    )?;
    let repaired = migrator.repair(&m.name, &source).await?;
    if ctx.format == Format::Json {
        print_json(&json!({
            "module": m.name,
            "repaired": repaired.iter().map(|r| json!({
                "file": r.file, "old_checksum": r.old_checksum, "new_checksum": r.new_checksum,
            })).collect::<Vec<_>>(),
        }));
    } else {
        for r in &repaired {
            ctx.say(format!(
                "  repaired {}: {} -> {}",
                r.file, r.old_checksum, r.new_checksum
            ));
        }
        ctx.say(format!(
            "{}: re-recorded {} checksum(s)",
            m.name,
            repaired.len()
        ));
    }
    Ok(())
}
