//! `pgdbm.toml`: the project file shared with pgdbm for Python, and how the command line and the
//! environment resolve it into a connection and a set of modules.
//!
//! Differences from pgdbm for Python 0.5.0's command, on purpose:
//! - a module's `schema` is where its tables and ledger go (Python's command applies every
//!   module into the environment's schema and only shows the module's);
//! - `migrations_path` is relative to the config file (Python: to the working directory; the
//!   same when run from the project root), and defaults to `migrations/<module>`;
//! - `[database] migrations_table` is used as the ledger table (Python's command ignores it);
//! - `project.default_env` is used when no `--env` is given (Python's command always uses `dev`);
//! - `ssl_mode` and the certificate files apply without `ssl_enabled = true`;
//! - a file without `[modules]` applies `./migrations` as in simple mode (Python: nothing).

mod connection;
mod file;

use std::path::{Path, PathBuf};

use pgdbm::migrate::DEFAULT_LEDGER_TABLE;
use pgdbm::{DatabaseConfig, MigrationSource, Module};

use crate::error::{CliError, CliResult};
use file::FileConfig;

pub(crate) use connection::TargetSource;

/// What the global options say about the configuration.
#[derive(Debug, Clone, Default)]
pub(crate) struct Options {
    /// `--config` / `PGDBM_CONFIG`: a file that must exist.
    pub(crate) config: Option<PathBuf>,
    /// `--env` / `PGDBM_ENV`.
    pub(crate) env: Option<String>,
    /// `--database-url`.
    pub(crate) database_url: Option<String>,
    /// The `DATABASE_URL` variable (used only when no environment is selected).
    pub(crate) database_url_env: Option<String>,
}

/// A configured module: where its migrations are and which schema it lives in.
#[derive(Debug, Clone)]
pub(crate) struct ModuleDef {
    /// Its name, the ledger key.
    pub(crate) name: String,
    /// Its migrations directory.
    pub(crate) path: PathBuf,
    /// Its schema (`None`: the connection's default, usually `public`).
    pub(crate) schema: Option<String>,
    /// The modules applied before it.
    pub(crate) depends_on: Vec<String>,
    /// The ledger table (`[database] migrations_table`, default `schema_migrations`).
    pub(crate) ledger_table: String,
}

impl ModuleDef {
    /// Reads its migrations directory.
    pub(crate) fn source(&self) -> CliResult<MigrationSource> {
        MigrationSource::from_dir(&self.path).map_err(|e| {
            CliError::with_source(
                format!("cannot read the migrations of module {:?}", self.name),
                e,
            )
        })
    }

    /// The schema as shown to people.
    pub(crate) fn schema_label(&self) -> &str {
        self.schema.as_deref().unwrap_or("public")
    }
}

impl Module for ModuleDef {
    fn name(&self) -> &str {
        &self.name
    }
    fn migrations(&self) -> MigrationSource {
        MigrationSource::default()
    }
    fn depends_on(&self) -> Vec<&str> {
        self.depends_on.iter().map(String::as_str).collect()
    }
}

/// The resolved configuration.
#[derive(Debug)]
pub(crate) struct Resolved {
    /// The file read, if any.
    pub(crate) file: Option<PathBuf>,
    /// The environment name, when the target is an environment of the file.
    pub(crate) env: Option<String>,
    /// Where the target came from.
    pub(crate) source: TargetSource,
    /// A note on a setting that was not used (an environment of the file passed over for
    /// `DATABASE_URL`).
    pub(crate) note: Option<String>,
    /// The modules, in dependency order.
    pub(crate) modules: Vec<ModuleDef>,
    /// The connection, or why there is none (connection errors are reported only by commands
    /// that connect).
    connection: Result<DatabaseConfig, String>,
}

impl Resolved {
    /// The connection settings.
    pub(crate) fn database(&self) -> CliResult<&DatabaseConfig> {
        self.connection
            .as_ref()
            .map_err(|m| CliError::new(m.clone()))
    }

    /// The modules `-m`/`--all` select: one by name, or all of them in dependency order.
    pub(crate) fn select(&self, module: Option<&str>) -> CliResult<Vec<&ModuleDef>> {
        match module {
            None => Ok(self.modules.iter().collect()),
            Some(name) => Ok(vec![self.module(name)?]),
        }
    }

    /// Module `name` and every module it depends on (transitively), in dependency order.
    pub(crate) fn with_dependencies(&self, name: &str) -> CliResult<Vec<&ModuleDef>> {
        let mut wanted = vec![self.module(name)?.name.as_str()];
        let mut i = 0;
        while i < wanted.len() {
            let m = self.module(wanted[i])?;
            for d in &m.depends_on {
                if !wanted.contains(&d.as_str()) {
                    wanted.push(d);
                }
            }
            i += 1;
        }
        Ok(self
            .modules
            .iter()
            .filter(|m| wanted.contains(&m.name.as_str()))
            .collect())
    }

    /// One module by name.
    pub(crate) fn module(&self, name: &str) -> CliResult<&ModuleDef> {
        self.modules.iter().find(|m| m.name == name).ok_or_else(|| {
            let known: Vec<&str> = self.modules.iter().map(|m| m.name.as_str()).collect();
            CliError::new(format!(
                "unknown module {name:?} (configured: {})",
                known.join(", ")
            ))
        })
    }
}

/// Reads the file (if any) and resolves the environment and the modules.
pub(crate) fn resolve(opts: &Options) -> CliResult<Resolved> {
    let file = match &opts.config {
        Some(path) => {
            if !path.is_file() {
                return Err(CliError::new(format!(
                    "config file {} not found",
                    path.display()
                )));
            }
            Some(path.clone())
        }
        None => Some(PathBuf::from("pgdbm.toml")).filter(|p| p.is_file()),
    };
    let (parsed, text) = match &file {
        Some(path) => file::parse_file(path)?,
        None => (FileConfig::default(), String::new()),
    };
    let file_label = file
        .as_ref()
        .map_or_else(String::new, |f| f.display().to_string());
    let base_dir = file
        .as_deref()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let ledger_table = match &parsed.database.migrations_table {
        Some(t) => {
            let t = expand(t, "database.migrations_table")?;
            pgdbm::validate_identifier("ledger table", &t).map_err(|e| {
                let place = at(&file_label, &text, "database", "migrations_table");
                CliError::with_source(format!("{place}invalid database.migrations_table"), e)
            })?;
            t
        }
        None => DEFAULT_LEDGER_TABLE.to_owned(),
    };

    // Which environment of the file, if any.
    let env_name = opts
        .env
        .clone()
        .or_else(|| parsed.project.default_env.clone())
        .unwrap_or_else(|| "dev".to_owned());
    let environment = if parsed.environments.is_empty() {
        if opts.env.is_some() && opts.database_url.is_none() {
            return Err(CliError::new(match &file {
                Some(f) => format!(
                    "--env {env_name}: {} has no [environments] table",
                    f.display()
                ),
                None => {
                    format!("--env {env_name}: there is no config file (./pgdbm.toml or --config)")
                }
            }));
        }
        None
    } else {
        match parsed.environments.get_key_value(&env_name) {
            Some((name, e)) => Some((e, name.as_str())),
            None => {
                let known: Vec<String> = parsed.environments.keys().cloned().collect();
                let mut msg = format!(
                    "unknown environment {env_name:?} in {file_label} (configured: {})",
                    known.join(", ")
                );
                if let Some(best) = file::suggest(&env_name, &known) {
                    msg.push_str(&format!("; did you mean {best:?}?"));
                }
                return Err(CliError::new(msg));
            }
        }
    };
    let environment_selected = opts.env.is_some() || opts.config.is_some();
    let (connection, source) = connection::build(&connection::Inputs {
        flag_url: opts.database_url.as_deref(),
        env_url: opts.database_url_env.as_deref(),
        environment,
        file_label: &file_label,
        text: &text,
        environment_selected,
    })?;
    let env_used = matches!(source, TargetSource::Environment { .. });
    let note = match (&source, environment) {
        (TargetSource::DatabaseUrl, Some((_, name))) => Some(format!(
            "DATABASE_URL is used, not {file_label} [environments.{name}] (select that with --env {name})"
        )),
        (TargetSource::Flag, Some((_, name))) if environment_selected => Some(format!(
            "--database-url is used, not {file_label} [environments.{name}]"
        )),
        _ => None,
    };
    let mut env_schema = None;
    if let (Some((e, name)), true) = (environment, env_used) {
        env_schema = expand_opt(&e.schema, &format!("environments.{name}.schema"))?;
        if let Some(s) = &env_schema {
            pgdbm::validate_identifier("schema", s).map_err(|err| {
                let table = format!("environments.{name}");
                let place = at(&file_label, &text, &table, "schema");
                CliError::with_source(format!("{place}invalid {table}.schema"), err)
            })?;
        }
    }
    let env_schema = env_schema.or_else(|| {
        connection
            .as_ref()
            .ok()
            .and_then(|c| c.schema().map(str::to_owned))
    });

    let mut modules = Vec::new();
    if parsed.modules.is_empty() {
        // Simple mode: module `public` (or the schema's name), as pgdbm for Python's command
        // records it (its migration manager names a module after the handle's schema, and the
        // command's schema defaults to public).
        modules.push(ModuleDef {
            name: env_schema.clone().unwrap_or_else(|| "public".to_owned()),
            path: base_dir.join("migrations"),
            schema: env_schema.clone(),
            depends_on: Vec::new(),
            ledger_table: ledger_table.clone(),
        });
    } else {
        for (name, m) in &parsed.modules {
            let key = format!("modules.{name}");
            let path = expand_opt(&m.migrations_path, &format!("{key}.migrations_path"))?
                .unwrap_or_else(|| format!("migrations/{name}"));
            let schema = expand_opt(&m.schema, &format!("{key}.schema"))?.or(env_schema.clone());
            if let Some(s) = &schema {
                pgdbm::validate_identifier("schema", s).map_err(|e| {
                    let place = at(&file_label, &text, &key, "schema");
                    CliError::with_source(format!("{place}invalid {key}.schema"), e)
                })?;
            }
            modules.push(ModuleDef {
                name: name.clone(),
                path: base_dir.join(path),
                schema,
                depends_on: m.depends_on.clone(),
                ledger_table: ledger_table.clone(),
            });
        }
    }
    let refs: Vec<&dyn Module> = modules.iter().map(|m| m as &dyn Module).collect();
    let order: Vec<String> = pgdbm::order_modules(&refs)
        .map_err(|e| CliError::with_source("invalid [modules] in the config file", e))?
        .iter()
        .map(|m| m.name().to_owned())
        .collect();
    modules.sort_by_key(|m| order.iter().position(|n| *n == m.name));

    Ok(Resolved {
        file,
        env: env_used.then_some(env_name),
        source,
        note,
        modules,
        connection,
    })
}

/// `file:line:column: ` of key `key` in table `table`, when it can be found.
fn at(file: &str, text: &str, table: &str, key: &str) -> String {
    match file::locate(text, table, key) {
        Some((line, column)) => format!("{file}:{line}:{column}: "),
        None if !file.is_empty() => format!("{file}: "),
        None => String::new(),
    }
}

/// Replaces every `${VAR}` in `value` with the variable, naming `key` when one is unset.
pub(super) fn expand(value: &str, key: &str) -> CliResult<String> {
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            return Err(CliError::new(format!(
                "invalid config value for {key}: unclosed `${{`"
            )));
        };
        let var = &after[..end];
        match std::env::var(var) {
            Ok(v) => out.push_str(&v),
            Err(_) => {
                return Err(CliError::new(format!(
                    "environment variable {var} is not set (used by {key} in the config file)"
                )));
            }
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

pub(super) fn expand_opt(value: &Option<String>, key: &str) -> CliResult<Option<String>> {
    value.as_deref().map(|v| expand(v, key)).transpose()
}
