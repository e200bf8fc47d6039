//! `generate config` and `generate module`.

use std::path::{Path, PathBuf};

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

/// Where the generated crate gets pgdbm from.
enum PgdbmSource {
    /// A checkout of this repository: path dependencies (relative when the crate is inside it).
    Path(PathBuf),
    /// Not known: a placeholder the user must edit.
    Placeholder,
}

/// `true` when `dir` is a checkout of this repository (its `pgdbm/` crate is there).
fn is_checkout(dir: &Path) -> bool {
    std::fs::read_to_string(dir.join("pgdbm/Cargo.toml"))
        .is_ok_and(|t| t.lines().any(|l| l.trim() == "name = \"pgdbm\""))
        && dir.join("pgdbm-testing/Cargo.toml").is_file()
}

/// The checkout of this repository that `dir` is inside, if any.
fn enclosing_checkout(dir: &Path) -> Option<PathBuf> {
    dir.ancestors()
        .find(|d| is_checkout(d))
        .map(Path::to_path_buf)
}

/// The Cargo workspace root above `dir`, if any (a `Cargo.toml` with `[workspace]`).
fn enclosing_workspace(dir: &Path) -> Option<PathBuf> {
    dir.ancestors()
        .find(|d| {
            std::fs::read_to_string(d.join("Cargo.toml"))
                .is_ok_and(|t| t.lines().any(|l| l.trim() == "[workspace]"))
        })
        .map(Path::to_path_buf)
}

/// `to` relative to `from` (both absolute), e.g. `../..`.
fn relative(from: &Path, to: &Path) -> PathBuf {
    let from: Vec<_> = from.components().collect();
    let to_parts: Vec<_> = to.components().collect();
    let common = from
        .iter()
        .zip(&to_parts)
        .take_while(|(a, b)| a == b)
        .count();
    let mut out = PathBuf::new();
    for _ in common..from.len() {
        out.push("..");
    }
    for c in &to_parts[common..] {
        out.push(c.as_os_str());
    }
    out
}

/// `pgdbm generate module NAME [--dir DIR] [--pgdbm-path DIR]`
pub(crate) fn module(
    ctx: &Ctx,
    name: &str,
    dir: Option<&Path>,
    pgdbm_path: Option<&Path>,
) -> CliResult<()> {
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
    let parent = std::path::absolute(dir.unwrap_or(Path::new(".")))
        .map_err(|e| CliError::with_source("cannot resolve the parent directory", e))?;
    let source = match pgdbm_path {
        Some(p) => {
            let p = std::path::absolute(p)
                .map_err(|e| CliError::with_source(format!("cannot resolve {}", p.display()), e))?;
            if !is_checkout(&p) {
                return Err(CliError::usage(format!(
                    "--pgdbm-path {}: not a checkout of pgdbm (no pgdbm/Cargo.toml there)",
                    p.display()
                )));
            }
            PgdbmSource::Path(p)
        }
        None => enclosing_checkout(&parent).map_or(PgdbmSource::Placeholder, PgdbmSource::Path),
    };
    let crate_dir = parent.join(name);
    let dependency = match &source {
        PgdbmSource::Path(checkout) if crate_dir.starts_with(checkout) => {
            Some(relative(&crate_dir, checkout))
        }
        PgdbmSource::Path(checkout) => Some(checkout.clone()),
        PgdbmSource::Placeholder => None,
    };
    // Outside any workspace the crate is its own; inside one it must be added as a member.
    let workspace = enclosing_workspace(&parent);
    let files = [
        (
            "Cargo.toml",
            cargo_toml(name, dependency.as_deref(), workspace.is_none()),
        ),
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
    match (&source, &workspace) {
        (PgdbmSource::Placeholder, _) => eprintln!(
            "note: pgdbm is not on crates.io yet: edit the three PATH/TO/pgdbm-rs paths in {} \
             to point at a checkout of pgdbm (or generate again with --pgdbm-path DIR)",
            root.join("Cargo.toml").display()
        ),
        (PgdbmSource::Path(p), _) => ctx.say(format!("  pgdbm from {}", p.display())),
    }
    if let Some(ws) = &workspace {
        eprintln!(
            "note: {} is inside the workspace {}: add \"{}\" to its [workspace] members",
            root.display(),
            ws.display(),
            relative(ws, &crate_dir).display()
        );
    }
    ctx.say(
        "  add migrations with: pgdbm migrate create NAME (with migrations_path pointing there); \
         build.rs makes the next cargo build embed them",
    );
    ctx.say(format!(
        "  test it with: cd {} && cargo test (needs a PostgreSQL server; see pgdbm-testing)",
        root.display()
    ));
    ctx.say(
        "  add migrations with: pgdbm migrate create NAME (with migrations_path pointing there)",
    );
    Ok(())
}

/// Makes Cargo rebuild the crate when a file is added to (or changed in) `migrations/`, so
/// that `embed_migrations!` sees it.
const BUILD_RS: &str = r#"//! Rebuild when a migration is added or changed: `embed_migrations!` reads the directory at
//! compile time, and Cargo does not watch it by itself.

fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
"#;

fn cargo_toml(name: &str, pgdbm: Option<&Path>, own_workspace: bool) -> String {
    let (note, base) = match pgdbm {
        Some(p) => (String::new(), p.display().to_string().replace('\\', "/")),
        None => (
            "# pgdbm is not on crates.io yet: replace PATH/TO/pgdbm-rs with the path of a checkout\n\
             # of pgdbm (the directory holding pgdbm/, pgdbm-testing/ and\n\
             # pgdbm-driver-tokio-postgres/), or run `pgdbm generate module NAME --pgdbm-path DIR`.\n"
                .to_owned(),
            "PATH/TO/pgdbm-rs".to_owned(),
        ),
    };
    let workspace = if own_workspace {
        "\n# A workspace of its own (remove this when adding the crate to another workspace).\n[workspace]\n"
    } else {
        ""
    };
    format!(
        r#"[package]
name = "{name}"
version = "0.1.0"
edition = "2024"
build = "build.rs"

{note}[dependencies]
pgdbm = {{ path = "{base}/pgdbm" }}

[dev-dependencies]
pgdbm-driver-tokio-postgres = {{ path = "{base}/pgdbm-driver-tokio-postgres" }}
pgdbm-testing = {{ path = "{base}/pgdbm-testing" }}
tokio = {{ version = "1", features = ["rt-multi-thread", "macros"] }}
{workspace}"#
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
        r#"//! The module migrated into a fresh database of the test server (see pgdbm-testing for how
//! the server is found: PGDBM_TEST_URL, DATABASE_URL, the local default, or one it starts).

use pgdbm::Module;
use pgdbm_testing::TestDatabase;
use {ident}::{{{ty}, add_item, count_items}};

// A database of its own, cloned from a template with the module migrated into schema
// "{ident}", dropped when the test ends (also when it fails).
#[pgdbm_testing::test(module = {ty}, schema = "{ident}")]
async fn migrates_and_works(db: TestDatabase) -> pgdbm::Result<()> {{
    // Applying again changes nothing.
    assert!(db.migrate(&{ty}).await?.applied.is_empty());
    assert!(!{ty}.migrations().is_empty());

    add_item(&db, "first").await?;
    assert_eq!(count_items(&db).await?, 1);
    Ok(())
}}
"#
    )
}
