//! What the tests of the `pgdbm` binary share: the test server, running the binary with none of
//! the caller's pgdbm variables, and a database of a test's own.
#![allow(dead_code)]

use std::path::Path;
use std::process::Output;

use assert_cmd::Command;
use tempfile::TempDir;

pub(crate) fn server() -> pgdbm::DatabaseConfig {
    static SERVER: std::sync::OnceLock<pgdbm::DatabaseConfig> = std::sync::OnceLock::new();
    SERVER
        .get_or_init(|| {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime")
                .block_on(pgdbm_testing::server_config::<
                    pgdbm_driver_tokio_postgres::TokioPostgres,
                >())
                .expect("test server")
        })
        .clone()
}

/// A URL for database `db` on the test server, without the password (given as PGPASSWORD).
pub(crate) fn url_for(db: &str) -> String {
    server()
        .to_builder()
        .database(db)
        .without_password()
        .without_schema()
        .build()
        .expect("url")
        .to_string()
}

/// The binary, run in `dir`, with none of the caller's pgdbm variables.
pub(crate) fn pgdbm(dir: &Path) -> Command {
    let mut cmd = Command::cargo_bin("pgdbm").expect("binary");
    cmd.current_dir(dir)
        .env_remove("DATABASE_URL")
        .env_remove("PGDBM_CONFIG")
        .env_remove("PGDBM_ENV")
        .env_remove("PGPASSWORD");
    if let Some(pw) = server().password() {
        cmd.env("PGPASSWORD", pw);
    }
    cmd
}

pub(crate) fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Runs and returns (exit code, stdout, stderr).
pub(crate) fn run(cmd: &mut Command) -> (i32, String, String) {
    let out: Output = cmd.output().expect("run pgdbm");
    (
        out.status.code().unwrap_or(-1),
        text(&out.stdout),
        text(&out.stderr),
    )
}

pub(crate) fn ok(cmd: &mut Command) -> String {
    let (code, stdout, stderr) = run(cmd);
    assert_eq!(code, 0, "stdout:\n{stdout}\nstderr:\n{stderr}");
    stdout
}

/// Fails with exit code `code`; returns stdout and stderr.
pub(crate) fn fails(cmd: &mut Command, code: i32) -> (String, String) {
    let (got, stdout, stderr) = run(cmd);
    assert_eq!(got, code, "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    (stdout, stderr)
}

/// A database of its own, created with `pgdbm db create`, dropped with `pgdbm db drop`.
pub(crate) struct TestDb {
    pub(crate) name: String,
    pub(crate) url: String,
    pub(crate) dir: TempDir,
}

impl TestDb {
    pub(crate) fn new(tag: &str) -> TestDb {
        let name = format!("pgdbm_cli_{tag}_{}", std::process::id());
        let url = url_for(&name);
        let dir = tempfile::tempdir().expect("tempdir");
        // Leftovers of an aborted run.
        let _ = pgdbm(dir.path())
            .args(["--database-url", &url, "db", "drop", "--yes"])
            .output();
        let out = ok(pgdbm(dir.path()).args(["--database-url", &url, "db", "create", "--yes"]));
        assert!(out.contains(&format!("created database {name}")), "{out}");
        TestDb { name, url, dir }
    }

    pub(crate) fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The binary in this test's directory, connected with `--database-url`.
    pub(crate) fn cmd(&self) -> Command {
        let mut cmd = pgdbm(self.path());
        cmd.args(["--database-url", &self.url]);
        cmd
    }

    /// The binary in this test's directory, with `DATABASE_URL` set for `${TEST_DB_URL}`.
    pub(crate) fn cmd_with_file(&self) -> Command {
        let mut cmd = pgdbm(self.path());
        cmd.env("TEST_DB_URL", &self.url);
        cmd
    }

    pub(crate) fn write(&self, rel: &str, text: &str) {
        let path = self.path().join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let _ = pgdbm(self.path())
            .args(["--database-url", &self.url, "db", "drop", "--yes"])
            .output();
    }
}

pub(crate) fn json(stdout: &str) -> serde_json::Value {
    serde_json::from_str(stdout).unwrap_or_else(|e| panic!("not JSON ({e}):\n{stdout}"))
}

/// Runs `sql` in database `db` of the test server (through the library, not the binary) and
/// returns the first column of its first row as text (`None` for no row or NULL).
pub(crate) fn sql_in(db: &str, sql: &str) -> Option<String> {
    let config = server()
        .to_builder()
        .database(db)
        .without_schema()
        .max_connections(1)
        .min_connections(0)
        .build()
        .expect("config");
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(async {
            let db =
                pgdbm::Database::connect::<pgdbm_driver_tokio_postgres::TokioPostgres>(&config)
                    .await?;
            let row = db.fetch_optional(sql, &[]).await?;
            db.close().await;
            let value = match row {
                Some(row) => row.get::<Option<String>>(0)?,
                None => None,
            };
            Ok::<_, pgdbm::Error>(value)
        })
        .expect("query")
}

/// The binary as a `std::process::Command` (for a long-running child), set up as [`pgdbm`].
pub(crate) fn pgdbm_std(dir: &Path) -> std::process::Command {
    let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin("pgdbm"));
    cmd.current_dir(dir)
        .env_remove("DATABASE_URL")
        .env_remove("PGDBM_CONFIG")
        .env_remove("PGDBM_ENV")
        .env_remove("PGPASSWORD");
    if let Some(pw) = server().password() {
        cmd.env("PGPASSWORD", pw);
    }
    cmd
}
