//! The `pgdbm.toml` file as written: every table and key pgdbm for Python 0.5.0 reads, plus
//! `pooler` and `direct_url` in environments. Anything else is an error with its line, column
//! and the nearest known name.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use crate::error::{CliError, CliResult};

/// The whole file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileConfig {
    #[serde(default)]
    pub(super) project: Project,
    #[serde(default)]
    pub(super) database: DatabaseSection,
    #[serde(default)]
    pub(super) environments: BTreeMap<String, Environment>,
    #[serde(default)]
    pub(super) modules: BTreeMap<String, ModuleEntry>,
    /// Read by pgdbm for Python's applications; the command uses a small pool of its own.
    #[serde(default)]
    #[allow(dead_code)]
    pub(super) shared_pool: Option<SharedPoolSection>,
}

/// `[project]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Project {
    #[allow(dead_code)]
    pub(super) name: Option<String>,
    pub(super) default_env: Option<String>,
}

/// `[database]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct DatabaseSection {
    /// The ledger table (default `schema_migrations`).
    pub(super) migrations_table: Option<String>,
}

/// `[shared_pool]` (pgdbm for Python's applications; validated, not used here).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub(super) struct SharedPoolSection {
    min_connections: Option<u32>,
    max_connections: Option<u32>,
    /// Statements a connection runs before it is recycled (the library's
    /// `DatabaseConfigBuilder::max_queries`; pgdbm for Python reads it from its own config).
    max_queries: Option<u64>,
    /// Shared, pipelined connections for autocommit statements (the library's
    /// `DatabaseConfigBuilder::multiplexing`, tokio-postgres driver).
    multiplexing: Option<bool>,
    /// How many shared connections (`DatabaseConfigBuilder::multiplexed_connections`).
    multiplexed_connections: Option<u32>,
    #[serde(default)]
    modules: Vec<String>,
}

/// `[environments.<name>]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Environment {
    pub(super) url: Option<String>,
    /// pgdbm for Python's other name for `url`.
    pub(super) connection_string: Option<String>,
    pub(super) host: Option<String>,
    pub(super) port: Option<Port>,
    pub(super) database: Option<String>,
    pub(super) user: Option<String>,
    pub(super) password: Option<String>,
    pub(super) schema: Option<String>,
    pub(super) ssl_enabled: Option<bool>,
    pub(super) ssl_mode: Option<String>,
    pub(super) ssl_ca_file: Option<String>,
    pub(super) ssl_cert_file: Option<String>,
    pub(super) ssl_key_file: Option<String>,
    /// The connection pooler in front of the server (passed on as the connection parameter
    /// `pooler`).
    pub(super) pooler: Option<String>,
    /// A URL that bypasses the pooler, for migrations (passed on as `direct_url`).
    pub(super) direct_url: Option<String>,
}

/// A port: a number, or a `"${VAR}"` string.
#[derive(Debug)]
pub(super) enum Port {
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

/// `[modules.<name>]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ModuleEntry {
    pub(super) migrations_path: Option<String>,
    pub(super) schema: Option<String>,
    /// pgdbm for Python's `standalone` | `library` | `dual`; checked, not used here.
    #[allow(dead_code)]
    pub(super) mode: Option<Mode>,
    #[serde(default)]
    pub(super) depends_on: Vec<String>,
}

/// `mode` of a module.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(super) enum Mode {
    Standalone,
    Library,
    Dual,
}

/// Reads and checks the file.
pub(super) fn parse_file(path: &Path) -> CliResult<(FileConfig, String)> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| CliError::with_source(format!("cannot read {}", path.display()), e))?;
    let parsed = toml::from_str(&text).map_err(|e| {
        let message = e.message().trim();
        let Some(span) = e.span() else {
            return CliError::new(format!("invalid config file {}: {message}", path.display()));
        };
        let (line, column) = line_column(&text, span.start);
        let described = describe(&text, line, message);
        CliError::new(format!("{}:{line}:{column}: {described}", path.display()))
    })?;
    Ok((parsed, text))
}

/// 1-based line and column (in characters) of byte `offset`.
pub(super) fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

/// The message of a parse error on line `line`: for an unknown table or key, which one, in
/// which table, and the nearest known name.
fn describe(text: &str, line: usize, message: &str) -> String {
    let Some((unknown, expected)) = unknown_field(message) else {
        let table = table_of(text, line).unwrap_or_default();
        let this = text.lines().nth(line - 1).unwrap_or("").trim_start();
        let key = this
            .split_once('=')
            .map(|(k, _)| k.trim().trim_matches('"'))
            .filter(|k| !k.is_empty() && !this.starts_with('['));
        return match (key, table.is_empty()) {
            (Some(k), false) => format!("invalid value of {table}.{k}: {message}"),
            (Some(k), true) => format!("invalid value of {k}: {message}"),
            (None, false) => format!("invalid config in [{table}]: {message}"),
            (None, true) => format!("invalid config: {message}"),
        };
    };
    let this = text.lines().nth(line - 1).unwrap_or("").trim_start();
    let header = this.starts_with('[');
    let mut out = if header {
        format!("unknown table `{}`", header_name(this))
    } else {
        match table_of(text, line) {
            Some(t) if !t.is_empty() => format!("unknown key `{unknown}` in [{t}]"),
            _ => format!("unknown key `{unknown}`"),
        }
    };
    if let Some(best) = suggest(&unknown, &expected) {
        let name = if header && !this.starts_with("[[") {
            header_name(this).replacen(&unknown, best, 1)
        } else {
            best.to_owned()
        };
        out.push_str(&format!("; did you mean `{name}`?"));
    }
    if !expected.is_empty() {
        out.push_str(&format!(" (known: {})", expected.join(", ")));
    }
    out
}

/// `unknown field `x`, expected one of `a`, `b`` (serde's words) → (`x`, [a, b]).
fn unknown_field(message: &str) -> Option<(String, Vec<String>)> {
    let rest = message.strip_prefix("unknown field `")?;
    let (name, rest) = rest.split_once('`')?;
    let expected = rest
        .split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect();
    Some((name.to_owned(), expected))
}

/// The known name nearest to `unknown`, if it is near enough to be a typo.
pub(super) fn suggest<'a>(unknown: &str, known: &'a [String]) -> Option<&'a str> {
    known
        .iter()
        .map(|k| (strsim::damerau_levenshtein(unknown, k), k))
        .filter(|(d, k)| *d <= 2.max(k.len() / 3) && *d < k.len())
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k.as_str())
}

fn header_name(line: &str) -> String {
    line.trim_start_matches('[')
        .split(']')
        .next()
        .unwrap_or("")
        .trim()
        .to_owned()
}

/// The table whose header precedes line `line` (1-based); `Some("")` for the root.
pub(super) fn table_of(text: &str, line: usize) -> Option<String> {
    let lines: Vec<&str> = text.lines().collect();
    let mut table = String::new();
    for l in lines.iter().take(line.saturating_sub(1)) {
        let l = l.trim_start();
        if l.starts_with('[') {
            table = header_name(l);
        }
    }
    Some(table)
}

/// Where key `key` of table `table` is written (1-based line and column), for errors about
/// values. Finds plain `key = …` lines under a `[table]` header.
pub(super) fn locate(text: &str, table: &str, key: &str) -> Option<(usize, usize)> {
    let mut current = String::new();
    for (i, l) in text.lines().enumerate() {
        let trimmed = l.trim_start();
        if trimmed.starts_with('[') {
            current = header_name(trimmed);
            continue;
        }
        if current == table {
            if let Some((k, _)) = trimmed.split_once('=') {
                if k.trim().trim_matches('"') == key {
                    return Some((i + 1, l.len() - trimmed.len() + 1));
                }
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn suggestions_are_near_misses_only() {
        let k = known(&["migrations_path", "schema", "mode", "depends_on"]);
        assert_eq!(suggest("shema", &k), Some("schema"));
        assert_eq!(suggest("migration_path", &k), Some("migrations_path"));
        assert_eq!(suggest("dependson", &k), Some("depends_on"));
        assert_eq!(suggest("colour", &k), None);
        let k = known(&[
            "project",
            "database",
            "environments",
            "modules",
            "shared_pool",
        ]);
        assert_eq!(suggest("enviroments", &k), Some("environments"));
    }

    #[test]
    fn positions_and_tables() {
        let text = "[project]\nname = \"x\"\n\n[modules.todo]\n  shema = \"todo\"\n";
        assert_eq!(line_column(text, text.find("shema").unwrap()), (5, 3));
        assert_eq!(table_of(text, 5).as_deref(), Some("modules.todo"));
        assert_eq!(locate(text, "modules.todo", "shema"), Some((5, 3)));
        assert_eq!(locate(text, "project", "shema"), None);
    }
}
