//! `pgdbm.toml`: the project file shared with pgdbm for Python, and how the command line and the
//! environment resolve it into a connection and a set of modules.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use pgdbm::{DatabaseConfig, MigrationSource, Module, SslMode};
use serde::Deserialize;

use crate::error::{CliError, CliResult};

/// The file as written.
#[derive(Debug, Default, Deserialize)]
struct FileConfig {
    #[serde(default)]
    project: Project,
    #[serde(default)]
    environments: BTreeMap<String, Environment>,
    #[serde(default)]
    modules: BTreeMap<String, ModuleEntry>,
}

#[derive(Debug, Default, Deserialize)]
struct Project {
    #[allow(dead_code)]
    name: Option<String>,
    default_env: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct Environment {
    url: Option<String>,
    host: Option<String>,
    port: Option<Port>,
    database: Option<String>,
    user: Option<String>,
    password: Option<String>,
    schema: Option<String>,
    ssl_enabled: Option<bool>,
    ssl_mode: Option<String>,
    ssl_ca_file: Option<String>,
    ssl_cert_file: Option<String>,
    ssl_key_file: Option<String>,
}

#[derive(Debug)]
enum Port {
    Number(u16),
    Text(String),
}

impl<'de> Deserialize<'de> for Port {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Port;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a port number (1-65535) or a \"${VAR}\" string")
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Port, E> {
                u16::try_from(v)
                    .ok()
                    .filter(|p| *p > 0)
                    .map(Port::Number)
                    .ok_or_else(|| E::invalid_value(serde::de::Unexpected::Signed(v), &self))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Port, E> {
                Ok(Port::Text(v.to_owned()))
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Debug, Default, Deserialize)]
struct ModuleEntry {
    migrations_path: Option<String>,
    schema: Option<String>,
    #[serde(default)]
    depends_on: Vec<String>,
}

/// What the global options say about the configuration.
#[derive(Debug, Clone, Default)]
pub(crate) struct Options {
    /// `--config`: a file that must exist.
    pub(crate) config: Option<PathBuf>,
    /// `--env`.
    pub(crate) env: Option<String>,
    /// `--database-url`.
    pub(crate) database_url: Option<String>,
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
    /// The environment name.
    pub(crate) env: String,
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
    let parsed = match &file {
        Some(path) => parse_file(path)?,
        None => FileConfig::default(),
    };
    let base_dir = file
        .as_deref()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let env_name = opts
        .env
        .clone()
        .or_else(|| parsed.project.default_env.clone())
        .unwrap_or_else(|| "dev".to_owned());
    let environment = if parsed.environments.is_empty() {
        None
    } else {
        match parsed.environments.get(&env_name) {
            Some(e) => Some(e),
            None => {
                let known: Vec<&str> = parsed.environments.keys().map(String::as_str).collect();
                return Err(CliError::new(format!(
                    "unknown environment {env_name:?} (configured: {})",
                    known.join(", ")
                )));
            }
        }
    };
    let env_schema = match environment {
        Some(e) => expand_opt(&e.schema, &format!("environments.{env_name}.schema"))?,
        None => None,
    };
    let connection = connection(opts, environment, &env_name)?;
    let env_schema = env_schema.or_else(|| {
        connection
            .as_ref()
            .ok()
            .and_then(|c| c.schema().map(str::to_owned))
    });

    let mut modules = Vec::new();
    if parsed.modules.is_empty() {
        modules.push(ModuleDef {
            name: "default".to_owned(),
            path: base_dir.join("migrations"),
            schema: env_schema.clone(),
            depends_on: Vec::new(),
        });
    } else {
        for (name, m) in &parsed.modules {
            let key = format!("modules.{name}");
            let path = expand_opt(&m.migrations_path, &format!("{key}.migrations_path"))?
                .unwrap_or_else(|| format!("migrations/{name}"));
            let schema = expand_opt(&m.schema, &format!("{key}.schema"))?.or(env_schema.clone());
            if let Some(s) = &schema {
                pgdbm::validate_identifier("schema", s)
                    .map_err(|e| CliError::with_source(format!("invalid {key}.schema"), e))?;
            }
            modules.push(ModuleDef {
                name: name.clone(),
                path: base_dir.join(path),
                schema,
                depends_on: m.depends_on.clone(),
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
        env: env_name,
        modules,
        connection,
    })
}

fn parse_file(path: &Path) -> CliResult<FileConfig> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| CliError::with_source(format!("cannot read {}", path.display()), e))?;
    toml::from_str(&text).map_err(|e| {
        let mut msg = format!("invalid config file {}", path.display());
        if let Some(span) = e.span() {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
            msg = format!("{}:{line}:{column}: invalid config file", path.display());
            if let Some(key) = key_at(&text, line) {
                msg.push_str(&format!(", key `{key}`"));
            }
        }
        CliError::new(format!("{msg}: {}", e.message().trim()))
    })
}

/// The dotted key written on line `line` (1-based), with its table header.
fn key_at(text: &str, line: usize) -> Option<String> {
    let lines: Vec<&str> = text.lines().collect();
    let this = lines.get(line - 1)?.trim();
    let table = lines[..line - 1]
        .iter()
        .rev()
        .map(|l| l.trim())
        .find(|l| l.starts_with('['))
        .map(|l| l.trim_matches(|c| c == '[' || c == ']').trim().to_owned());
    if this.starts_with('[') {
        return Some(
            this.trim_matches(|c| c == '[' || c == ']')
                .trim()
                .to_owned(),
        );
    }
    let (key, _) = this.split_once('=')?;
    let key = key.trim();
    if key.is_empty() {
        return table;
    }
    Some(match table {
        Some(t) => format!("{t}.{key}"),
        None => key.to_owned(),
    })
}

/// Replaces every `${VAR}` in `value` with the variable, naming `key` when one is unset.
fn expand(value: &str, key: &str) -> CliResult<String> {
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

fn expand_opt(value: &Option<String>, key: &str) -> CliResult<Option<String>> {
    value.as_deref().map(|v| expand(v, key)).transpose()
}

/// Builds the connection: `--database-url`/`DATABASE_URL` wins, then the environment of the
/// file, then the libpq variables (`PGHOST`…). The environment's schema is kept either way.
fn connection(
    opts: &Options,
    environment: Option<&Environment>,
    env_name: &str,
) -> CliResult<Result<DatabaseConfig, String>> {
    let key = |field: &str| format!("environments.{env_name}.{field}");
    let mut builder = DatabaseConfig::builder();
    let mut from_url = false;
    if let Some(url) = &opts.database_url {
        builder = builder.url(url);
        from_url = true;
    } else if let Some(e) = environment {
        if let Some(url) = expand_opt(&e.url, &key("url"))? {
            builder = builder.url(url);
            from_url = true;
        }
        if let Some(v) = expand_opt(&e.host, &key("host"))? {
            builder = builder.host(v);
        }
        match &e.port {
            Some(Port::Number(p)) => builder = builder.port(*p),
            Some(Port::Text(t)) => {
                let v = expand(t, &key("port"))?;
                let p = v.trim().parse::<u16>().map_err(|_| {
                    CliError::new(format!(
                        "invalid config value for {}: not a port number",
                        key("port")
                    ))
                })?;
                builder = builder.port(p);
            }
            None => {}
        }
        if let Some(v) = expand_opt(&e.database, &key("database"))? {
            builder = builder.database(v);
        }
        if let Some(v) = expand_opt(&e.user, &key("user"))? {
            builder = builder.user(v);
        }
        if let Some(v) = expand_opt(&e.password, &key("password"))? {
            builder = builder.password(v);
        }
        if e.ssl_enabled == Some(true) {
            builder = builder.ssl_mode(SslMode::Require);
        }
        if let Some(v) = expand_opt(&e.ssl_mode, &key("ssl_mode"))? {
            let mode = v.parse::<SslMode>().map_err(|err| {
                CliError::with_source(format!("invalid {}", key("ssl_mode")), err)
            })?;
            builder = builder.ssl_mode(mode);
        }
        if let Some(v) = expand_opt(&e.ssl_ca_file, &key("ssl_ca_file"))? {
            builder = builder.ssl_ca_file(v);
        }
        if let Some(v) = expand_opt(&e.ssl_cert_file, &key("ssl_cert_file"))? {
            builder = builder.ssl_cert_file(v);
        }
        if let Some(v) = expand_opt(&e.ssl_key_file, &key("ssl_key_file"))? {
            builder = builder.ssl_key_file(v);
        }
        if e.url.is_none() && e.host.is_none() && e.database.is_none() {
            builder = DatabaseConfig::builder().env();
        }
    } else {
        builder = builder.env();
    }
    if from_url {
        // As libpq: PGPASSWORD when the URL has none.
        if let Ok(pw) = std::env::var("PGPASSWORD") {
            if let Ok(probe) = builder.build() {
                if probe.password().is_none() {
                    builder = builder.password(pw);
                }
            }
        }
    }
    // The CLI needs few connections: one for the migration lock, one for reads.
    builder = builder.min_connections(0).max_connections(4);
    Ok(builder.build().map_err(|e| e.to_string()))
}
