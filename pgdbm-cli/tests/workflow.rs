//! The migration workflow and the development commands, run through the binary: create with
//! SQL, refusing a file without a statement, forget, baseline, repair, dev reset,
//! export-schema, watch, schema deps.

mod common;

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::*;

#[test]
fn create_with_sql_and_a_file_without_statement_is_refused() {
    let db = TestDb::new("create");
    // --sql writes the SQL as given.
    let out = ok(db.cmd().args([
        "migrate",
        "create",
        "users",
        "--sql",
        "CREATE TABLE {{tables.users}} (id int);",
    ]));
    assert!(out.contains("001_users.sql"), "{out}");
    let text = std::fs::read_to_string(db.path().join("migrations/001_users.sql")).unwrap();
    assert_eq!(text, "CREATE TABLE {{tables.users}} (id int);\n");
    // Standard input too.
    ok(db
        .cmd()
        .args(["migrate", "create", "seed"])
        .write_stdin("INSERT INTO {{tables.users}} VALUES (1);\n"));
    let text = std::fs::read_to_string(db.path().join("migrations/002_seed.sql")).unwrap();
    assert!(text.starts_with("INSERT INTO"), "{text}");
    // SQL without a statement is refused before a file is written.
    let (_, err) = fails(
        db.cmd()
            .args(["migrate", "create", "todo", "--sql", "-- later"]),
        2,
    );
    assert!(err.contains("no statement"), "{err}");
    assert!(!db.path().join("migrations/003_todo.sql").exists());
    // Nothing on standard input: the commented template, which apply refuses, naming it.
    ok(db.cmd().args(["migrate", "create", "todo"]).write_stdin(""));
    let (_, err) = fails(db.cmd().args(["migrate", "apply"]), 1);
    assert!(
        err.contains("003_todo.sql") && err.contains("no SQL statement"),
        "{err}"
    );
    let status = json(&ok(db
        .cmd()
        .args(["migrate", "status", "--format", "json"])));
    assert!(
        status
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["state"] == "pending"),
        "nothing was applied: {status}"
    );
    std::fs::remove_file(db.path().join("migrations/003_todo.sql")).unwrap();
    let out = ok(db.cmd().args(["migrate", "apply"]));
    assert!(out.contains("applied 2 migration(s)"), "{out}");
}

#[test]
fn forget_baseline_and_repair() {
    let db = TestDb::new("ledger");
    db.write(
        "migrations/001_t.sql",
        "CREATE TABLE {{tables.t}} (id int);",
    );
    db.write(
        "migrations/002_seed.sql",
        "INSERT INTO {{tables.t}} VALUES (1);",
    );
    db.write(
        "migrations/003_more.sql",
        "INSERT INTO {{tables.t}} VALUES (2);",
    );
    // Adopt: the table exists already; record 001 without running it.
    sql_in(&db.name, "CREATE TABLE t (id int)");
    // Without --yes and without a terminal: refused, nothing recorded.
    let (_, err) = fails(
        db.cmd()
            .args([
                "migrate",
                "baseline",
                "-m",
                "public",
                "--up-to",
                "001_t.sql",
            ])
            .write_stdin(""),
        1,
    );
    assert!(
        err.contains("refusing to record") && err.contains("--yes"),
        "{err}"
    );
    let (_, err) = fails(
        db.cmd().args([
            "migrate",
            "baseline",
            "-m",
            "public",
            "--up-to",
            "009_x.sql",
            "--yes",
        ]),
        1,
    );
    assert!(err.contains("--up-to 009_x.sql: no such file"), "{err}");
    let out = ok(db.cmd().args([
        "migrate",
        "baseline",
        "-m",
        "public",
        "--up-to",
        "001_t.sql",
        "--yes",
    ]));
    assert!(
        out.contains("recorded 001_t.sql") && !out.contains("002"),
        "{out}"
    );
    let out = ok(db.cmd().args(["migrate", "apply"]));
    assert!(
        out.contains("applied 002_seed.sql") && !out.contains("applied 001"),
        "{out}"
    );

    // Forget 003: confirmation, then the next apply runs it again.
    let (_, err) = fails(
        db.cmd()
            .args(["migrate", "forget", "003_more.sql", "-m", "public"])
            .write_stdin(""),
        1,
    );
    assert!(err.contains("refusing to forget 003_more.sql"), "{err}");
    ok(db
        .cmd()
        .args(["migrate", "forget", "003_more.sql", "-m", "public", "--yes"]));
    let (_, err) = fails(
        db.cmd()
            .args(["migrate", "forget", "003_more.sql", "-m", "public", "--yes"]),
        1,
    );
    assert!(
        err.contains("003_more.sql is not in module public's ledger"),
        "{err}"
    );
    let out = ok(db.cmd().args(["migrate", "apply"]));
    assert!(out.contains("applied 003_more.sql"), "{out}");
    assert_eq!(
        sql_in(&db.name, "SELECT count(*)::text FROM t").as_deref(),
        Some("3")
    );

    // A comment added to 001: verify fails; repair prints both checksums and fixes it.
    db.write(
        "migrations/001_t.sql",
        "-- the table\nCREATE TABLE {{tables.t}} (id int);",
    );
    fails(db.cmd().args(["migrate", "verify"]), 1);
    let (_, err) = fails(
        db.cmd()
            .args(["migrate", "repair", "-m", "public"])
            .write_stdin(""),
        1,
    );
    assert!(err.contains("ledger:") && err.contains("file:"), "{err}");
    assert!(err.contains("refusing to record the new checksum"), "{err}");
    let out = json(&ok(db.cmd().args([
        "migrate", "repair", "-m", "public", "--yes", "--format", "json",
    ])));
    let repaired = &out["repaired"][0];
    assert_eq!(repaired["file"], "001_t.sql");
    assert_ne!(repaired["old_checksum"], repaired["new_checksum"]);
    ok(db.cmd().args(["migrate", "verify"]));
    let out = ok(db
        .cmd()
        .args(["migrate", "repair", "-m", "public", "--yes"]));
    assert!(out.contains("no applied migration changed"), "{out}");
    // History --limit: the newest rows.
    let hist = json(&ok(db
        .cmd()
        .args(["migrate", "history", "--limit", "2", "--format", "json"])));
    let files: Vec<&str> = hist
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["file"].as_str().unwrap())
        .collect();
    assert_eq!(files, ["002_seed.sql", "003_more.sql"]);
}

#[test]
fn dev_reset_export_schema_and_schema_deps() {
    let db = TestDb::new("devcmds");
    db.write(
        "pgdbm.toml",
        "[environments.dev]\nurl = \"${TEST_DB_URL}\"\n\
         [modules.users]\nmigrations_path = \"db/users\"\nschema = \"users\"\n\
         [modules.billing]\nmigrations_path = \"db/billing\"\nschema = \"billing\"\ndepends_on = [\"users\"]\n",
    );
    db.write(
        "db/users/001_users.sql",
        "CREATE TABLE {{tables.users}} (id int PRIMARY KEY);",
    );
    db.write(
        "db/billing/001_invoices.sql",
        "CREATE TABLE {{tables.invoices}} (id int, user_id int REFERENCES users.users (id));",
    );
    let deps = json(&ok(db
        .cmd_with_file()
        .args(["schema", "deps", "--format", "json"])));
    assert_eq!(deps[0]["module"], "users");
    assert_eq!(deps[0]["dependents"][0], "billing");
    assert_eq!(deps[1]["module"], "billing");
    assert_eq!(deps[1]["depends_on"][0], "users");
    let text = ok(db.cmd_with_file().args(["schema", "deps"]));
    assert!(text.contains("billing (schema billing) <- users"), "{text}");

    ok(db.cmd_with_file().args(["migrate", "apply"]));
    // Reset refuses without --yes, then drops the data and applies every module again.
    let (_, err) = fails(db.cmd_with_file().args(["dev", "reset"]).write_stdin(""), 1);
    assert!(err.contains("refusing to drop and recreate"), "{err}");
    ok(db.cmd_with_file().args(["dev", "export-schema"]));
    let out = ok(db.cmd_with_file().args(["dev", "reset", "--yes"]));
    assert!(out.contains("recreated database"), "{out}");
    assert!(
        out.contains("applied 001_users.sql") && out.contains("applied 001_invoices.sql"),
        "{out}"
    );

    // export-schema -m: that schema's DDL only.
    let out = ok(db
        .cmd_with_file()
        .args(["dev", "export-schema", "-m", "billing"]));
    assert!(out.contains("CREATE TABLE billing.invoices"), "{out}");
    assert!(!out.contains("CREATE TABLE users.users"), "{out}");
    ok(db
        .cmd_with_file()
        .args(["dev", "export-schema", "-o", "schema.sql"]));
    let all = std::fs::read_to_string(db.path().join("schema.sql")).unwrap();
    assert!(
        all.contains("CREATE TABLE users.users") && all.contains("CREATE TABLE billing.invoices")
    );
    // Without pg_dump: a clear error.
    let (_, err) = fails(
        db.cmd_with_file()
            .env("PGDBM_PG_DUMP", "/nonexistent/pg_dump")
            .args(["dev", "export-schema"]),
        1,
    );
    assert!(
        err.contains("/nonexistent/pg_dump was not found") && err.contains("postgresql-client"),
        "{err}"
    );
}

/// Kills the child when dropped.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[cfg(feature = "watch")]
#[test]
fn dev_watch_applies_new_files() {
    let db = TestDb::new("watch");
    db.write(
        "migrations/001_t.sql",
        "CREATE TABLE {{tables.t}} (id int);",
    );
    let mut cmd = pgdbm_std(db.path());
    cmd.args(["--database-url", &db.url]);
    let mut child = Child(
        cmd.args(["dev", "watch"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let (tx, rx) = std::sync::mpsc::channel();
    let stdout = child.0.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let wait_for = |needle: &str| {
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut seen = Vec::new();
        while Instant::now() < deadline {
            if let Ok(line) = rx.recv_timeout(Duration::from_millis(200)) {
                let found = line.contains(needle);
                seen.push(line);
                if found {
                    return;
                }
            }
        }
        panic!(
            "no line with {needle:?} from dev watch; saw:\n{}",
            seen.join("\n")
        );
    };
    wait_for("applied 001_t.sql");
    wait_for("watching");
    db.write(
        "migrations/002_u.sql",
        "INSERT INTO {{tables.t}} VALUES (1);",
    );
    wait_for("applied 002_u.sql");
    wait_for("watching");
    drop(child);
    let status = json(&ok(db
        .cmd()
        .args(["migrate", "status", "--format", "json"])));
    assert_eq!(status.as_array().unwrap().len(), 2);
    assert!(
        status
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["state"] == "applied")
    );
}
