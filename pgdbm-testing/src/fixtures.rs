//! Fixtures: SQL files (templates expanded) and JSON (`{"table": [ {column: value} ]}`).

use std::fmt;
use std::path::Path;

use pgdbm::prelude::*;
use pgdbm::{Error, Executor, Result, Value, quote_identifier};
use serde::de::{Deserializer, MapAccess, Visitor};

use crate::helpers::table_ref;

fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path)
        .map_err(|source| Error::io(format!("cannot read fixture {}", path.display()), source))
}

/// Runs the SQL script at `path` through `db` (so `{{tables.x}}` and `{{schema}}` are expanded
/// for its schema). The script may hold many statements and no parameters.
///
/// # Errors
///
/// [`Error::Io`] when the file cannot be read; the server's error for a failing statement.
pub async fn load_sql_fixture(db: &(impl Executor + ?Sized), path: impl AsRef<Path>) -> Result<()> {
    let sql = read(path.as_ref())?;
    db.batch_execute(&sql).await
}

/// Loads every fixture of the directory `dir` in file-name order (name them `01_users.json`,
/// `02_orders.sql`, … to order parents before children): `*.sql` files as
/// [`load_sql_fixture`], `*.json` files as [`load_json_fixture`]; other files and hidden files
/// are skipped. Returns the names of the files loaded.
///
/// # Errors
///
/// [`Error::Io`] when the directory cannot be read; otherwise the first failing fixture's error
/// (naming its file), after which the later files are not loaded.
pub async fn load_fixtures(db: &Database, dir: impl AsRef<Path>) -> Result<Vec<String>> {
    let dir = dir.as_ref();
    let entries = std::fs::read_dir(dir).map_err(|source| {
        Error::io(
            format!("cannot read fixture directory {}", dir.display()),
            source,
        )
    })?;
    let mut files: Vec<(String, std::path::PathBuf)> = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|source| {
            Error::io(
                format!("cannot read fixture directory {}", dir.display()),
                source,
            )
        })?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = entry.path();
        let wanted = !name.starts_with('.')
            && path.is_file()
            && matches!(
                path.extension().and_then(|e| e.to_str()),
                Some("sql" | "json")
            );
        if wanted {
            files.push((name, path));
        }
    }
    files.sort();
    let mut loaded = Vec::with_capacity(files.len());
    for (name, path) in files {
        if path.extension().is_some_and(|e| e == "sql") {
            load_sql_fixture(db, &path).await.map_err(|e| {
                Error::test_setup(format!("fixture {}", path.display()), e.to_string())
            })?;
        } else {
            load_json_fixture(db, &path).await?;
        }
        loaded.push(name);
    }
    Ok(loaded)
}

/// Loads the JSON fixture at `path`; see [`load_json`].
///
/// # Errors
///
/// [`Error::Io`] when the file cannot be read, otherwise as [`load_json`].
pub async fn load_json_fixture(db: &Database, path: impl AsRef<Path>) -> Result<u64> {
    let path = path.as_ref();
    let text = read(path)?;
    load_json(db, &text).await.map_err(|e| match e {
        Error::TestSetup { message, .. } => {
            Error::test_setup(format!("fixture {}", path.display()), message)
        }
        other => other,
    })
}

/// Inserts the rows of a JSON document `{"table": [ {"column": value, …}, … ], …}` in one
/// transaction, tables in the order written (parents before children), returning the number
/// of rows. Table names are resolved in the handle's schema (`other.table` names another
/// schema); table and column names must be plain identifiers. Values are sent as one JSON
/// parameter per table and converted by the server (`json_populate_recordset`), so dates, uuids,
/// numerics, arrays and json columns take their usual JSON spelling; columns a row leaves out get
/// their defaults.
///
/// # Errors
///
/// [`Error::TestSetup`] for a document of another shape, [`Error::Identifier`] for a bad table or
/// column name, the server's error for a row that does not fit (nothing is inserted then).
pub async fn load_json(db: &Database, json: &str) -> Result<u64> {
    let doc: Fixture = serde_json::from_str(json).map_err(|e| {
        Error::test_setup(
            "fixture",
            format!("not a {{\"table\": [rows]}} document: {e}"),
        )
    })?;
    // Validate everything before touching the database.
    let mut batches: Vec<(String, String, serde_json::Value)> = Vec::new();
    for (table, rows) in doc.0 {
        let target = table_ref(&table)?;
        // Rows with the same columns go in one statement; the order of rows is kept per group.
        let mut groups: Vec<(Vec<String>, Vec<serde_json::Value>)> = Vec::new();
        for row in rows {
            let serde_json::Value::Object(map) = &row else {
                return Err(Error::test_setup(
                    "fixture",
                    format!("table {table}: every row must be a JSON object"),
                ));
            };
            let mut columns: Vec<String> = map.keys().cloned().collect();
            columns.sort();
            for c in &columns {
                pgdbm::validate_identifier("column", c)?;
            }
            match groups.iter_mut().find(|(cols, _)| *cols == columns) {
                Some((_, rows)) => rows.push(row),
                None => groups.push((columns, vec![row])),
            }
        }
        for (columns, rows) in groups {
            let list = columns
                .iter()
                .map(|c| quote_identifier(c))
                .collect::<Vec<_>>()
                .join(", ");
            let sql = if columns.is_empty() {
                format!("INSERT INTO {target} DEFAULT VALUES")
            } else {
                format!(
                    "INSERT INTO {target} ({list}) SELECT {list} FROM json_populate_recordset(NULL::{target}, $1::json)"
                )
            };
            batches.push((table.clone(), sql, serde_json::Value::Array(rows)));
        }
    }
    db.transaction(|tx| async move {
        let mut total = 0;
        for (_table, sql, rows) in &batches {
            if sql.ends_with("DEFAULT VALUES") {
                for _ in 0..rows.as_array().map_or(0, Vec::len) {
                    total += tx.execute(sql, &[]).await?;
                }
            } else {
                total += tx
                    .execute(sql, pgdbm::params![Value::Json(rows.clone())])
                    .await?;
            }
        }
        Ok::<_, Error>(total)
    })
    .await
}

/// `{"table": [rows]}` with the tables in document order (serde_json's map is sorted).
struct Fixture(Vec<(String, Vec<serde_json::Value>)>);

impl<'de> serde::Deserialize<'de> for Fixture {
    fn deserialize<De: Deserializer<'de>>(
        deserializer: De,
    ) -> std::result::Result<Self, De::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Fixture;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object mapping table names to arrays of row objects")
            }
            fn visit_map<A: MapAccess<'de>>(
                self,
                mut map: A,
            ) -> std::result::Result<Fixture, A::Error> {
                let mut out = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, Vec<serde_json::Value>>()? {
                    out.push((k, v));
                }
                Ok(Fixture(out))
            }
        }
        deserializer.deserialize_map(V)
    }
}
