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
#[derive(Debug, Parser)]
#[command(name = "pgdbm", version, after_long_help = AFTER_HELP)]
struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Command,
}

const AFTER_HELP: &str = "\
Configuration: --config (or ./pgdbm.toml when present) with [project] (name, default_env),
[database] (migrations_table), [environments.<name>] (url or connection_string, or
host/port/database/user/password; schema, ssl_enabled, ssl_mode, ssl_*_file, pooler,
direct_url; \"${VAR}\" values are read from the environment), [modules.<name>]
(migrations_path, schema, depends_on, mode) and [shared_pool] (min_connections,
max_connections, max_queries, multiplexing, multiplexed_connections, modules; checked, used by applications). An unknown table or key
is an error naming its line and column.

The target database, first match wins (every command says which one it used):
  1. --database-url URL
  2. the config file's environment, when one is selected: --env/PGDBM_ENV or
     --config/PGDBM_CONFIG
  3. DATABASE_URL, when exported (only when no environment is selected)
  4. the config file's default environment (project.default_env, else dev)
  5. the libpq variables (PGHOST, PGPORT, PGDATABASE, PGUSER, PGPASSWORD) and defaults
The default user is the OS user the command runs as, as libpq does.

Without [modules]: ./migrations, recorded as module public (as pgdbm for Python's command
does), into the connection's schema.

Differences from pgdbm for Python's command: a module's schema is where its tables and ledger
go (Python applies every module into the environment's schema); migrations_path is relative
to the config file (Python: to the working directory) and defaults to migrations/<module>;
[database] migrations_table is used (Python ignores it); project.default_env is used; ssl_mode
and ssl_*_file apply without ssl_enabled.

Exit codes: 0 success, 1 failure, 2 usage error.";

/// Options every command takes.
#[derive(Debug, Args)]
struct Global {
    /// The config file [default: ./pgdbm.toml when present].
    #[arg(short, long, global = true, env = "PGDBM_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    /// The environment of the config file [default: project.default_env, else `dev`]; wins
    /// over an exported DATABASE_URL.
    #[arg(short, long, global = true, env = "PGDBM_ENV", value_name = "NAME")]
    env: Option<String>,
    /// Connect here, whatever the config file and DATABASE_URL say.
    #[arg(long, global = true, value_name = "URL")]
    database_url: Option<String>,
    /// Output format (json for status, history, info, schema list and schema deps).
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
    /// List, create and drop the schemas of modules; show module dependencies.
    #[command(subcommand)]
    Schema(SchemaCommand),
    /// Development helpers: reset the database, export the schema, watch migrations.
    #[command(subcommand)]
    Dev(DevCommand),
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
    ///
    /// With -m, the module's dependencies (depends_on, transitively) are applied first.
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
    /// Create the next migration file, NNN_name.sql, with the SQL of --sql or standard input.
    ///
    /// Without --sql, the SQL is read from standard input when it is not a terminal; on a
    /// terminal a commented template is written, which `apply` refuses until it has a
    /// statement.
    Create {
        /// What the migration does, e.g. "add users".
        name: String,
        /// The module whose migrations directory gets the file.
        #[arg(short, long, value_name = "MODULE")]
        module: Option<String>,
        /// The migration's SQL (may start with a `--` comment).
        #[arg(long, value_name = "TEXT", allow_hyphen_values = true)]
        sql: Option<String>,
        /// Name the file YYYYMMDDHHMMSS_name.sql instead.
        #[arg(long)]
        timestamp: bool,
    },
    /// Remove a file's ledger row so that the next apply runs it again (nothing is undone).
    Forget {
        /// The migration file name, e.g. 003_add_index.sql.
        file: String,
        /// The module.
        #[arg(short, long, value_name = "MODULE")]
        module: String,
        /// Do not ask for confirmation.
        #[arg(short, long)]
        yes: bool,
    },
    /// Record migrations as applied without running them (adopting an existing database).
    Baseline {
        /// The module.
        #[arg(short, long, value_name = "MODULE")]
        module: String,
        /// Only the files up to and including this one [default: all].
        #[arg(long, value_name = "FILE")]
        up_to: Option<String>,
        /// Do not ask for confirmation.
        #[arg(short, long)]
        yes: bool,
    },
    /// Re-record the checksums of applied files that changed (each printed, old and new).
    Repair {
        /// The module.
        #[arg(short, long, value_name = "MODULE")]
        module: String,
        /// Do not ask for confirmation.
        #[arg(short, long)]
        yes: bool,
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
    /// Show the modules' dependency graph, in the order they are applied.
    Deps,
}

#[derive(Debug, Subcommand)]
pub(crate) enum DevCommand {
    /// Drop and recreate the database, then apply every module.
    Reset {
        /// Do not ask for confirmation.
        #[arg(short, long)]
        yes: bool,
    },
    /// Print the schema DDL (pg_dump --schema-only) of one module's schema, or of the database.
    ExportSchema {
        /// Only this module's schema.
        #[arg(short, long, value_name = "MODULE")]
        module: Option<String>,
        /// Write here instead of standard output.
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Apply migrations whenever a module's migrations directory changes (Ctrl+C stops).
    Watch {
        /// Only this module (and its dependencies).
        #[arg(short, long, value_name = "MODULE")]
        module: Option<String>,
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
    /// Create a library crate implementing `pgdbm::Module`: embedded migrations, a build script
    /// that picks up new migration files, and a test on a database of its own.
    Module {
        /// The crate name, e.g. `users` or `billing-core`.
        name: String,
        /// The parent directory [default: .].
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
        /// A checkout of pgdbm to depend on by path [default: the checkout the new crate is
        /// inside, else a placeholder to edit].
        #[arg(long, value_name = "DIR")]
        pgdbm_path: Option<PathBuf>,
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
            env: cli.global.env.filter(|e| !e.is_empty()),
            database_url: cli.global.database_url.filter(|u| !u.is_empty()),
            database_url_env: std::env::var("DATABASE_URL").ok().filter(|u| !u.is_empty()),
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
        Command::Dev(c) => commands::dev(ctx, c).await,
        Command::Generate(GenerateCommand::Config { output }) => {
            generate::config(ctx, output.as_deref())
        }
        Command::Generate(GenerateCommand::Module {
            name,
            dir,
            pgdbm_path,
        }) => generate::module(ctx, &name, dir.as_deref(), pgdbm_path.as_deref()),
    }
}
