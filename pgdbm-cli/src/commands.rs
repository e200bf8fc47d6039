//! `migrate`, `db` and `schema`.

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, IsTerminal, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use pgdbm::migrate::{MigrationNaming, MigrationState, create_migration};
use pgdbm::{
    Database, DatabaseConfig, Executor as _, MigrationSource, SharedPool, quote_identifier,
};
use pgdbm_driver_tokio_postgres::TokioPostgresPool;
use serde_json::json;

use crate::config::{self, ModuleDef, Resolved};
use crate::error::{CliError, CliResult};
use crate::{Ctx, DbCommand, Format, MigrateCommand, SchemaCommand};

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

fn load_sources<'r>(mods: &[&'r ModuleDef]) -> CliResult<Vec<(&'r ModuleDef, MigrationSource)>> {
    mods.iter().map(|m| Ok((*m, m.source()?))).collect()
}

fn module_db(pool: &SharedPool, m: &ModuleDef) -> CliResult<Database> {
    Ok(Database::new(pool.clone(), m.schema.as_deref())?)
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
            let path = create_migration(&m.path, &name, naming)?;
            if ctx.quiet {
                println!("{}", path.display());
            } else {
                println!("created {} (module {})", path.display(), m.name);
            }
            Ok(())
        }
        MigrateCommand::Verify { select } => verify(ctx, &r, &select).await,
        MigrateCommand::History { module, limit } => history(ctx, &r, module, limit).await,
    }
}

async fn apply(
    ctx: &Ctx,
    r: &Resolved,
    select: &crate::ModuleSelect,
    dry_run: bool,
) -> CliResult<()> {
    let sources = load_sources(&selected(r, select)?)?;
    let pool = connect(r.database()?).await?;
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
        let db = module_db(&pool, m)?;
        let migrator = db.migrator();
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
            let Some(idx) = source.migrations().iter().position(|x| x.name() == p.file) else {
                continue;
            };
            let prefix = MigrationSource::from_migrations(source.migrations()[..=idx].to_vec())?;
            let report = migrator
                .apply(&m.name, &prefix)
                .await
                .map_err(|e| failed(e, &done))?;
            match report.applied.iter().find(|a| a.file == p.file) {
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

fn state_name(s: &MigrationState) -> &'static str {
    match s {
        MigrationState::Applied => "applied",
        MigrationState::Pending => "pending",
        MigrationState::Changed { .. } => "changed",
        MigrationState::MissingFromSource => "missing",
        _ => "unknown",
    }
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

async fn status(ctx: &Ctx, r: &Resolved, select: &crate::ModuleSelect) -> CliResult<()> {
    let sources = load_sources(&selected(r, select)?)?;
    let pool = connect(r.database()?).await?;
    let mut rows = Vec::new();
    let mut items = Vec::new();
    for (m, source) in &sources {
        let migrator = module_db(&pool, m)?.migrator();
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
    let pool = connect(r.database()?).await?;
    let mut changed = Vec::new();
    let mut checked = 0usize;
    for (m, source) in &sources {
        let migrator = module_db(&pool, m)?.migrator();
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
    let pool = connect(r.database()?).await?;
    let mut seen = std::collections::HashSet::new();
    let mut entries = Vec::new();
    for m in mods {
        let migrator = module_db(&pool, m)?.migrator();
        for h in migrator.history(Some(&m.name)).await? {
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

/// The same server, another database: where CREATE/DROP DATABASE run.
fn maintenance(target: &DatabaseConfig) -> CliResult<DatabaseConfig> {
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
        let migrator = module_db(&pool, m)?.migrator();
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
    match &r.file {
        Some(f) => println!("config:      {} (environment {})", f.display(), r.env),
        None => println!("config:      none (./migrations, module default)"),
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

/// `pgdbm schema …`
pub(crate) async fn schema(ctx: &Ctx, command: SchemaCommand) -> CliResult<()> {
    let r = config::resolve(&ctx.opts)?;
    match command {
        SchemaCommand::List => {
            let pool = connect(r.database()?).await?;
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
            let pool = connect(r.database()?).await?;
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
            let pool = connect(r.database()?).await?;
            admin(
                &pool,
                &format!("DROP SCHEMA IF EXISTS {} CASCADE", quote_identifier(schema)),
            )
            .await?;
            ctx.say(format!("dropped schema {schema} (module {})", m.name));
        }
    }
    Ok(())
}
