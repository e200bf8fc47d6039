//! `pgdbm`: apply and inspect migrations, create and drop databases and schemas, and generate a
//! config file or a module crate, from the shell. Reads the same `pgdbm.toml` as pgdbm for Python.

mod commands;
mod config;
mod error;
mod generate;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::error::CliError;

/// Migrations, databases and schemas of a pgdbm project, from the shell.
///
/// Configuration: `--config` (or `./pgdbm.toml` when present) with `[project]`,
/// `[environments.<name>]` (url or host/port/database/user/password, schema, ssl_*; `"${VAR}"`
/// values are read from the environment) and `[modules.<name>]` (migrations_path, schema,
/// depends_on). Without a file: `./migrations` into the database of `--database-url` /
/// `DATABASE_URL` (or the libpq variables), as module `default`.
///
/// Exit codes: 0 success, 1 failure, 2 usage error.
#[derive(Debug, Parser)]
#[command(name = "pgdbm", version)]
struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Command,
}

/// Options every command takes.
#[derive(Debug, Args)]
struct Global {
    /// The config file [default: ./pgdbm.toml when present].
    #[arg(short, long, global = true, env = "PGDBM_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    /// The environment of the config file [default: project.default_env, else `dev`].
    #[arg(short, long, global = true, env = "PGDBM_ENV", value_name = "NAME")]
    env: Option<String>,
    /// Connect here instead of the environment's settings.
    #[arg(
        long,
        global = true,
        env = "DATABASE_URL",
        value_name = "URL",
        hide_env_values = true
    )]
    database_url: Option<String>,
    /// Output format (json for status, history, info and schema list).
    #[arg(long, global = true, value_enum, default_value_t = Format::Text)]
    format: Format,
    /// Print only results and errors.
    #[arg(short, long, global = true)]
    quiet: bool,
    /// Print more (the SQL of a dry run, …); repeat for more.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
}

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Format {
    /// For people.
    Text,
    /// For scripts.
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Apply, inspect, create and verify migrations.
    #[command(subcommand)]
    Migrate(MigrateCommand),
    /// Create, drop, reset and inspect the database.
    #[command(subcommand)]
    Db(DbCommand),
    /// List, create and drop the schemas of modules.
    #[command(subcommand)]
    Schema(SchemaCommand),
    /// Generate a commented pgdbm.toml or a new module crate.
    #[command(subcommand)]
    Generate(GenerateCommand),
}

/// Which modules: one, or all of them (the default) in dependency order.
#[derive(Debug, Args)]
pub(crate) struct ModuleSelect {
    /// Only this module.
    #[arg(short, long, value_name = "MODULE", conflicts_with = "all")]
    pub(crate) module: Option<String>,
    /// All configured modules, in dependency order (the default).
    #[arg(long)]
    pub(crate) all: bool,
}

#[derive(Debug, Subcommand)]
pub(crate) enum MigrateCommand {
    /// Apply pending migrations, each file in its own transaction, under a per-module lock.
    Apply {
        #[command(flatten)]
        select: ModuleSelect,
        /// Show what would be applied (with -v, the SQL); change nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Show every migration: module, file, applied at, applied/pending/changed/missing.
    Status {
        #[command(flatten)]
        select: ModuleSelect,
    },
    /// Create the next migration file, NNN_name.sql.
    Create {
        /// What the migration does, e.g. "add users".
        name: String,
        /// The module whose migrations directory gets the file.
        #[arg(short, long, value_name = "MODULE")]
        module: Option<String>,
        /// Name the file YYYYMMDDHHMMSS_name.sql instead.
        #[arg(long)]
        timestamp: bool,
    },
    /// Check that no applied migration file changed (exit 1 when one did).
    Verify {
        #[command(flatten)]
        select: ModuleSelect,
    },
    /// Show the ledger: what was applied, when, by whom, how long it took.
    History {
        /// Only this module.
        #[arg(short, long, value_name = "MODULE")]
        module: Option<String>,
        /// Only the last N entries.
        #[arg(long, value_name = "N")]
        limit: Option<usize>,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum DbCommand {
    /// Create the database.
    Create {
        /// Do not ask for confirmation.
        #[arg(short, long)]
        yes: bool,
    },
    /// Drop the database (its connections are terminated).
    Drop {
        /// Do not ask for confirmation.
        #[arg(short, long)]
        yes: bool,
    },
    /// Drop and create the database again (empty).
    Reset {
        /// Do not ask for confirmation.
        #[arg(short, long)]
        yes: bool,
    },
    /// Connect and show server version, database, size and latency.
    TestConnection,
    /// Show the server, database, connections, schemas and modules.
    Info,
}

#[derive(Debug, Subcommand)]
pub(crate) enum SchemaCommand {
    /// List schemas with their table counts and the modules that own them.
    List,
    /// Create a module's schema.
    Create {
        /// The module.
        #[arg(short, long, value_name = "MODULE")]
        module: String,
    },
    /// Drop a module's schema and everything in it.
    Drop {
        /// The module.
        #[arg(short, long, value_name = "MODULE")]
        module: String,
        /// Do not ask for confirmation.
        #[arg(short, long)]
        yes: bool,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum GenerateCommand {
    /// Print a commented pgdbm.toml (or write it with -o).
    Config {
        /// Write here instead of standard output (an existing file is kept).
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Create a library crate implementing `pgdbm::Module`, with embedded migrations and a test.
    Module {
        /// The crate name, e.g. `users` or `billing-core`.
        name: String,
        /// The parent directory [default: .].
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
}

/// What every command gets: the global options.
#[derive(Debug)]
pub(crate) struct Ctx {
    /// Config file, environment, URL.
    pub(crate) opts: config::Options,
    /// Output format.
    pub(crate) format: Format,
    /// `-q`.
    pub(crate) quiet: bool,
    /// `-v` count.
    pub(crate) verbose: u8,
}

impl Ctx {
    /// Prints a progress line unless `--quiet` or `--format json`.
    pub(crate) fn say(&self, line: impl AsRef<str>) {
        if !self.quiet && self.format == Format::Text {
            println!("{}", line.as_ref());
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let ctx = Ctx {
        opts: config::Options {
            config: cli.global.config,
            env: cli.global.env,
            database_url: cli.global.database_url.filter(|u| !u.is_empty()),
        },
        format: cli.global.format,
        quiet: cli.global.quiet,
        verbose: cli.global.verbose,
    };
    let result = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt.block_on(run(&ctx, cli.command)),
        Err(e) => Err(CliError::with_source("cannot start the runtime", e)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            e.report();
            ExitCode::from(e.code)
        }
    }
}

async fn run(ctx: &Ctx, command: Command) -> Result<(), CliError> {
    match command {
        Command::Migrate(c) => commands::migrate(ctx, c).await,
        Command::Db(c) => commands::db(ctx, c).await,
        Command::Schema(c) => commands::schema(ctx, c).await,
        Command::Generate(GenerateCommand::Config { output }) => {
            generate::config(ctx, output.as_deref())
        }
        Command::Generate(GenerateCommand::Module { name, dir }) => {
            generate::module(ctx, &name, dir.as_deref())
        }
    }
}
