//! `generate config` and `generate module`.

use std::path::Path;

use crate::Ctx;
use crate::error::{CliError, CliResult};

const CONFIG: &str = r#"# pgdbm.toml: read by the `pgdbm` command (Rust) and by pgdbm for Python.

[project]
name = "myapp"
# The environment used when neither --env nor PGDBM_ENV is given.
default_env = "dev"

# One table per environment; choose one with `pgdbm --env NAME` or PGDBM_ENV.
# Give a `url`, or host/port/database/user/password. A value "${VAR}" is read from the
# environment (an unset variable is an error naming it).
[environments.dev]
url = "postgresql://postgres@localhost:5432/myapp_dev"
# schema = "myapp"            # the default schema of modules that do not name one

[environments.prod]
host = "${PGHOST}"
port = 5432
database = "myapp"
user = "${PGUSER}"
password = "${PGPASSWORD}"
# ssl_mode = "verify-full"    # disable, allow, prefer, require, verify-ca, verify-full
# ssl_ca_file = "/etc/ssl/certs/db-ca.pem"
# ssl_cert_file = "client.crt"
# ssl_key_file = "client.key"

# One table per module: its migrations directory (relative to this file), its schema, and the
# modules whose migrations are applied before its own. Without any [modules], `./migrations` is
# applied as module "default".
[modules.users]
migrations_path = "migrations/users"
schema = "users"

[modules.billing]
migrations_path = "migrations/billing"
schema = "billing"
depends_on = ["users"]
"#;

/// `pgdbm generate config [-o FILE]`
pub(crate) fn config(ctx: &Ctx, output: Option<&Path>) -> CliResult<()> {
    match output {
        None => print!("{CONFIG}"),
        Some(path) => {
            write_new(path, CONFIG)?;
            ctx.say(format!("wrote {}", path.display()));
        }
    }
    Ok(())
}

fn write_new(path: &Path, text: &str) -> CliResult<()> {
    use std::io::Write;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|e| CliError::with_source(format!("cannot create {}", path.display()), e))?;
    file.write_all(text.as_bytes())
        .map_err(|e| CliError::with_source(format!("cannot write {}", path.display()), e))
}

/// `pgdbm generate module NAME [--dir DIR]`
pub(crate) fn module(ctx: &Ctx, name: &str, dir: Option<&Path>) -> CliResult<()> {
    let valid = name.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
        && name.len() <= 50;
    if !valid {
        return Err(CliError::usage(format!(
            "invalid module name {name:?}: use lowercase letters, digits, `_` and `-`, starting with a letter"
        )));
    }
    let ident = name.replace('-', "_");
    let ty: String = ident
        .split('_')
        .filter(|s| !s.is_empty())
        .map(|s| {
            let mut c = s.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect::<String>()
        + "Module";
    let root = dir.unwrap_or(Path::new(".")).join(name);
    if root.exists() {
        return Err(CliError::new(format!("{} already exists", root.display())));
    }
    let files = [
        ("Cargo.toml", cargo_toml(name)),
        ("build.rs", BUILD_RS.to_owned()),
        ("src/lib.rs", lib_rs(&ident, &ty)),
        (
            &format!("migrations/001_create_{ident}_items.sql") as &str,
            migration(&ident),
        ),
        ("tests/migrations.rs", test_rs(&ident, &ty)),
    ];
    for (rel, text) in &files {
        let path = root.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| {
                CliError::with_source(format!("cannot create {}", parent.display()), e)
            })?;
        }
        write_new(&path, text)?;
    }
    ctx.say(format!(
        "created crate {} in {} (module {ident:?}, type {ty})",
        name,
        root.display()
    ));
    ctx.say(
        "  add migrations with: pgdbm migrate create NAME (with migrations_path pointing there); \
         build.rs makes the next cargo build embed them",
    );
    Ok(())
}

/// The generated crate's build script: without it, a migration file added after the first build
/// is not embedded until something else rebuilds the crate (`embed_migrations!` tells cargo only
/// about the files it saw).
const BUILD_RS: &str = r#"//! Rebuilds the crate when a file is added to (or removed from) `migrations/`, so that
//! `pgdbm::embed_migrations!("migrations")` embeds it on the next `cargo build`.

fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
"#;

fn cargo_toml(name: &str) -> String {
    format!(
        r#"[package]
name = "{name}"
version = "0.1.0"
edition = "2024"

[dependencies]
pgdbm = "0.1"

[dev-dependencies]
pgdbm-driver-tokio-postgres = "0.1"
tokio = {{ version = "1", features = ["rt-multi-thread", "macros"] }}
"#
    )
}

fn lib_rs(ident: &str, ty: &str) -> String {
    format!(
        r#"//! The `{ident}` module: its tables and migrations, usable standalone or embedded in an
//! application that shares one pool among modules.

use pgdbm::prelude::*;
use pgdbm::{{MigrationSource, Module}};

/// The `{ident}` module. Apply it with `db.migrate(&{ty})` into the schema the host chose.
#[derive(Debug, Clone, Copy, Default)]
pub struct {ty};

impl Module for {ty} {{
    fn name(&self) -> &str {{
        "{ident}"
    }}

    fn migrations(&self) -> MigrationSource {{
        pgdbm::embed_migrations!("migrations")
    }}
}}

/// Adds an item and returns its id.
///
/// # Errors
///
/// Server errors (e.g. the migrations were not applied).
pub async fn add_item(db: &Database, name: &str) -> pgdbm::Result<i64> {{
    db.execute_and_return_id(
        "INSERT INTO {{{{tables.{ident}_items}}}} (name) VALUES ($1)",
        pgdbm::params![name],
    )
    .await
}}

/// How many items there are.
///
/// # Errors
///
/// Server errors.
pub async fn count_items(db: &Database) -> pgdbm::Result<i64> {{
    db.fetch_value("SELECT count(*) FROM {{{{tables.{ident}_items}}}}", &[])
        .await
}}
"#
    )
}

fn migration(ident: &str) -> String {
    format!(
        "-- Migration: create {ident}_items\n\nCREATE TABLE IF NOT EXISTS {{{{tables.{ident}_items}}}} (\n    id BIGSERIAL PRIMARY KEY,\n    name TEXT NOT NULL,\n    created_at TIMESTAMPTZ NOT NULL DEFAULT now()\n);\n"
    )
}

fn test_rs(ident: &str, ty: &str) -> String {
    format!(
        r#"//! Applies the module into a fresh schema of the server in `DATABASE_URL` and uses it.

use pgdbm::prelude::*;
use pgdbm::{{Database, DatabaseConfig}};
use pgdbm_driver_tokio_postgres::TokioPostgres;
use {ident}::{{{ty}, add_item, count_items}};

#[tokio::test]
async fn migrates_and_works() -> pgdbm::Result<()> {{
    let schema = format!("test_{ident}_{{}}", std::process::id());
    let config = DatabaseConfig::builder().env().schema(&schema).build()?;
    let db = Database::connect::<TokioPostgres>(&config).await?;
    let report = db.migrate(&{ty}).await?;
    assert_eq!(report.applied.len(), {ty}.migrations().len());
    // Applying again changes nothing.
    assert!(db.migrate(&{ty}).await?.applied.is_empty());

    add_item(&db, "first").await?;
    assert_eq!(count_items(&db).await?, 1);

    db.execute(&format!("DROP SCHEMA \"{{schema}}\" CASCADE"), &[]).await?;
    db.close().await;
    Ok(())
}}
"#
    )
}
