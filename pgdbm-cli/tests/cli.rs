//! Runs the real `pgdbm` binary against the server pgdbm-testing finds (`PGDBM_TEST_URL`,
//! `DATABASE_URL`, `TEST_DB_*`, the local default) or starts. Every test works in a database of
//! its own, created and dropped with the command itself.

mod common;

use common::*;

#[test]
fn help_and_usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    let out = ok(pgdbm(dir.path()).arg("--help"));
    for word in [
        "migrate",
        "db",
        "schema",
        "generate",
        "--database-url",
        "--format",
    ] {
        assert!(out.contains(word), "{word}: {out}");
    }
    let out = ok(pgdbm(dir.path()).args(["migrate", "--help"]));
    for word in ["apply", "status", "create", "verify", "history"] {
        assert!(out.contains(word), "{word}: {out}");
    }
    fails(pgdbm(dir.path()).arg("frobnicate"), 2);
    fails(
        pgdbm(dir.path()).args(["migrate", "apply", "-m", "a", "--all"]),
        2,
    );
    fails(
        pgdbm(dir.path()).args(["--format", "yaml", "db", "info"]),
        2,
    );
}

#[test]
fn db_create_drop_reset() {
    let db = TestDb::new("dbcmds");
    // Creating it again fails with the server's reason.
    let (_, err) = fails(db.cmd().args(["db", "create", "--yes"]), 1);
    assert!(err.contains("error: "), "{err}");
    assert!(err.contains("already exists"), "{err}");

    // No TTY, no --yes: refused, nothing dropped.
    for args in [["db", "drop"], ["db", "reset"], ["db", "create"]] {
        let (_, err) = fails(db.cmd().args(args).write_stdin(""), 1);
        assert!(
            err.contains("refusing to") && err.contains("--yes"),
            "{err}"
        );
    }
    let out = ok(db.cmd().args(["db", "test-connection"]));
    assert!(
        out.contains("connection ok") && out.contains(&db.name),
        "{out}"
    );
    assert!(
        out.contains("PostgreSQL") && out.contains("latency"),
        "{out}"
    );
    let info = json(&ok(db.cmd().args([
        "db",
        "test-connection",
        "--format",
        "json",
    ])));
    assert_eq!(info["database"], db.name.as_str());

    // Reset empties it.
    ok(db.cmd().args(["db", "reset", "--yes"]));
    let info = json(&ok(db.cmd().args(["--format", "json", "db", "info"])));
    assert_eq!(info["database"], db.name.as_str());
    assert!(
        info["server_version"]
            .as_str()
            .unwrap()
            .starts_with(|c: char| c.is_ascii_digit())
    );
    assert_eq!(info["modules"][0]["name"], "public");
    let out = ok(db.cmd().args(["db", "info"]));
    assert!(
        out.contains("connections:") && out.contains("size:"),
        "{out}"
    );

    let out = ok(db.cmd().args(["db", "drop", "--yes"]));
    assert!(out.contains("dropped database"), "{out}");
    let (_, err) = fails(db.cmd().args(["db", "test-connection"]), 1);
    assert!(err.contains(&db.name), "{err}");
    let (_, err) = fails(db.cmd().args(["db", "drop", "--yes"]), 1);
    assert!(err.contains("does not exist"), "{err}");
}

/// Administrative SQL is built from the exact name: a database name that looks like a template
/// is created and dropped as written, and a database named like its expansion is left alone.
#[test]
fn db_commands_never_expand_templates() {
    let pid = std::process::id();
    let decoy = TestDb::new(&format!("xy_{pid}"));
    let name = format!("pgdbm_cli_x{{{{tables.y}}}}_{pid}_{pid}");
    assert_eq!(
        name.replace("{{tables.y}}", "y"),
        decoy.name,
        "the decoy is the name's expansion"
    );
    let url = url_for(&name);
    let dir = tempfile::tempdir().expect("tempdir");
    let out = ok(pgdbm(dir.path()).args(["--database-url", &url, "db", "create", "--yes"]));
    assert!(out.contains(&format!("created database {name}")), "{out}");
    let out = ok(pgdbm(dir.path()).args(["--database-url", &url, "db", "test-connection"]));
    assert!(out.contains(&name), "{out}");
    let out = ok(pgdbm(dir.path()).args(["--database-url", &url, "db", "drop", "--yes"]));
    assert!(out.contains(&format!("dropped database {name}")), "{out}");
    // The decoy survived both commands.
    let out = ok(decoy.cmd().args(["db", "test-connection"]));
    assert!(out.contains(&decoy.name), "{out}");
    let (_, err) = fails(
        pgdbm(dir.path()).args(["--database-url", &url, "db", "test-connection"]),
        1,
    );
    assert!(err.contains("does not exist"), "{err}");
}

#[test]
fn migrate_lifecycle_without_config_file() {
    let db = TestDb::new("lifecycle");
    let out = ok(db.cmd().args(["migrate", "create", "Create users"]));
    assert!(out.contains("001_create_users.sql"), "{out}");
    db.write(
        "migrations/001_create_users.sql",
        "CREATE TABLE {{tables.users}} (id bigserial PRIMARY KEY, email text NOT NULL);",
    );
    let out = ok(db.cmd().args(["-q", "migrate", "create", "add nickname"]));
    assert_eq!(out.trim(), "migrations/002_add_nickname.sql");
    db.write(
        "migrations/002_add_nickname.sql",
        "ALTER TABLE {{tables.users}} ADD COLUMN nickname text;",
    );
    let out = ok(db
        .cmd()
        .args(["migrate", "create", "stamped", "--timestamp"]));
    let stamped = out
        .split_whitespace()
        .find(|w| w.ends_with("_stamped.sql"))
        .unwrap()
        .to_owned();
    db.write(&stamped, "SELECT 1;");

    let out = ok(db.cmd().args(["migrate", "status"]));
    assert!(out.contains("MODULE") && out.contains("STATE"), "{out}");
    assert_eq!(out.matches("pending").count(), 3, "{out}");

    let out = ok(db.cmd().args(["migrate", "apply", "--dry-run", "-v"]));
    assert!(out.contains("would apply 001_create_users.sql"), "{out}");
    assert!(out.contains("CREATE TABLE users"), "{out}");

    let out = ok(db.cmd().args(["migrate", "apply"]));
    assert!(out.contains("applied 001_create_users.sql ("), "{out}");
    assert!(out.contains("applied 002_add_nickname.sql ("), "{out}");
    assert!(
        out.contains("applied 3 migration(s) in 1 module(s)"),
        "{out}"
    );
    let out = ok(db.cmd().args(["migrate", "apply", "--all"]));
    assert!(
        out.contains("up to date") && out.contains("applied 0 migration(s)"),
        "{out}"
    );

    let status = json(&ok(db
        .cmd()
        .args(["migrate", "status", "--format", "json"])));
    let rows = status.as_array().unwrap();
    assert_eq!(rows.len(), 3);
    for r in rows {
        assert_eq!(r["state"], "applied", "{r}");
        assert_eq!(r["module"], "public");
        assert!(r["applied_at"].is_string());
    }

    let hist = json(&ok(db
        .cmd()
        .args(["migrate", "history", "--limit", "1", "--format", "json"])));
    assert_eq!(hist.as_array().unwrap().len(), 1);
    assert_eq!(hist[0]["file"], stamped.trim_start_matches("migrations/"));
    let out = ok(db.cmd().args(["migrate", "history", "-m", "public"]));
    assert!(
        out.contains("001_create_users.sql") && out.contains("APPLIED AT"),
        "{out}"
    );

    let out = ok(db.cmd().args(["migrate", "verify"]));
    assert!(out.contains("3 applied migration(s)"), "{out}");

    // A file removed from the directory shows as missing.
    std::fs::remove_file(db.path().join(&stamped)).unwrap();
    let out = ok(db.cmd().args(["migrate", "status"]));
    assert!(out.contains("missing"), "{out}");

    let schemas = json(&ok(db.cmd().args(["schema", "list", "--format", "json"])));
    let public = schemas
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["schema"] == "public")
        .expect("public listed");
    assert_eq!(public["tables"], 2); // users + schema_migrations
    assert_eq!(public["modules"][0], "public");
}

#[test]
fn two_concurrent_applies_apply_each_file_once() {
    let db = TestDb::new("concurrent");
    db.write(
        "migrations/001_log.sql",
        "CREATE TABLE {{tables.log}} (file text PRIMARY KEY);",
    );
    for i in 2..=6 {
        db.write(
            &format!("migrations/{i:03}_step.sql"),
            &format!("SELECT pg_sleep(0.1); INSERT INTO {{{{tables.log}}}} VALUES ('{i}');"),
        );
    }
    let bin = assert_cmd::cargo::cargo_bin("pgdbm");
    let spawn = || {
        let mut cmd = std::process::Command::new(&bin);
        cmd.current_dir(db.path())
            .args(["--database-url", &db.url, "migrate", "apply"])
            .env_remove("DATABASE_URL")
            .env_remove("PGDBM_CONFIG")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        if let Some(pw) = server().password() {
            cmd.env("PGPASSWORD", pw);
        }
        cmd.spawn().expect("spawn")
    };
    let (a, b) = (spawn(), spawn());
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    for o in [&a, &b] {
        assert!(
            o.status.success(),
            "{}\n{}",
            text(&o.stdout),
            text(&o.stderr)
        );
    }
    // Between them, every file was applied exactly once.
    let both = text(&a.stdout) + &text(&b.stdout);
    for i in 1..=6 {
        let prefix = format!("applied {i:03}_");
        assert_eq!(both.matches(&prefix).count(), 1, "{prefix}: {both}");
    }
    let hist = json(&ok(db
        .cmd()
        .args(["migrate", "history", "--format", "json"])));
    assert_eq!(hist.as_array().unwrap().len(), 6);
}

#[test]
fn edited_migration_fails_apply_and_verify() {
    let db = TestDb::new("edited");
    db.write(
        "migrations/001_t.sql",
        "CREATE TABLE {{tables.t}} (id int);",
    );
    ok(db.cmd().args(["migrate", "apply"]));
    db.write(
        "migrations/001_t.sql",
        "CREATE TABLE {{tables.t}} (id bigint);",
    );
    db.write(
        "migrations/002_u.sql",
        "CREATE TABLE {{tables.u}} (id int);",
    );
    let (_, err) = fails(db.cmd().args(["migrate", "verify"]), 1);
    assert!(
        err.contains("error: 1 applied migration(s) changed"),
        "{err}"
    );
    assert!(err.contains("public/001_t.sql"), "{err}");
    assert!(
        err.contains("ledger checksum ") && err.contains("file checksum "),
        "{err}"
    );
    let (_, err) = fails(db.cmd().args(["migrate", "apply"]), 1);
    assert!(
        err.contains("001_t.sql") && err.contains("ledger checksum"),
        "{err}"
    );
    assert!(err.contains("nothing was applied"), "{err}");
    let out = ok(db.cmd().args(["migrate", "status"]));
    assert!(out.contains("changed") && out.contains("pending"), "{out}");
}

#[test]
fn failing_migration_reports_what_was_applied() {
    let db = TestDb::new("failing");
    db.write(
        "migrations/001_ok.sql",
        "CREATE TABLE {{tables.a}} (id int);",
    );
    db.write(
        "migrations/002_bad.sql",
        "CREATE TABLE {{tables.b}} (id nosuchtype);",
    );
    db.write(
        "migrations/003_never.sql",
        "CREATE TABLE {{tables.c}} (id int);",
    );
    let (out, err) = fails(db.cmd().args(["migrate", "apply"]), 1);
    assert!(out.contains("applied 001_ok.sql"), "{out}");
    assert!(
        err.contains("error: migration public/002_bad.sql failed"),
        "{err}"
    );
    assert!(err.contains("nosuchtype"), "{err}");
    assert!(
        err.contains("applied before the failure: public/001_ok.sql"),
        "{err}"
    );
    assert_eq!(
        err.lines().filter(|l| l.starts_with("error:")).count(),
        1,
        "{err}"
    );
    let status = json(&ok(db
        .cmd()
        .args(["--format", "json", "migrate", "status"])));
    let states: Vec<&str> = status
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["applied", "pending", "pending"]);
}

#[test]
fn unreachable_server_is_one_clear_error_without_password() {
    let dir = tempfile::tempdir().unwrap();
    let url = "postgresql://someone:s3cr3t-pw@127.0.0.1:1/nowhere";
    for args in [
        &["migrate", "apply"][..],
        &["db", "test-connection"][..],
        &["schema", "list"][..],
    ] {
        std::fs::create_dir_all(dir.path().join("migrations")).unwrap();
        let (out, err) = fails(
            pgdbm(dir.path()).args(["--database-url", url]).args(args),
            1,
        );
        assert!(
            err.contains("error: cannot connect to 127.0.0.1:1/nowhere"),
            "{err}"
        );
        assert!(err.contains("caused by:"), "{err}");
        assert!(!err.contains("s3cr3t") && !out.contains("s3cr3t"), "{err}");
        assert!(!err.contains("Error {") && !err.contains("Some("), "{err}");
    }
}

const TWO_MODULES: &str = r#"
[project]
name = "shop"
default_env = "dev"

[environments.dev]
url = "${TEST_DB_URL}"

[environments.other]
url = "${TEST_DB_URL}"
schema = "other_default"

[modules.billing]
migrations_path = "db/billing"
schema = "billing"
depends_on = ["users"]

[modules.users]
migrations_path = "db/users"
schema = "users"
"#;

#[test]
fn config_file_modules_schemas_and_order() {
    let db = TestDb::new("modules");
    db.write("pgdbm.toml", TWO_MODULES);
    db.write(
        "db/users/001_users.sql",
        "CREATE TABLE {{tables.users}} (id bigserial PRIMARY KEY);",
    );
    db.write(
        "db/billing/001_invoices.sql",
        "CREATE TABLE {{tables.invoices}} (id bigserial PRIMARY KEY, user_id bigint REFERENCES {{tables.users.users}}(id));",
    );
    // Several modules: `create` needs -m.
    fails(db.cmd_with_file().args(["migrate", "create", "x"]), 2);
    let out = ok(db
        .cmd_with_file()
        .args(["migrate", "create", "add amount", "-m", "billing"]));
    assert!(out.contains("db/billing/002_add_amount.sql"), "{out}");
    db.write(
        "db/billing/002_add_amount.sql",
        "ALTER TABLE {{tables.invoices}} ADD COLUMN amount numeric;",
    );

    // Applying billing applies what it depends on first: users.
    let out = ok(db
        .cmd_with_file()
        .args(["migrate", "apply", "-m", "billing"]));
    let users_at = out.find("applied 001_users.sql").expect(&out);
    let billing_at = out.find("applied 001_invoices.sql").expect(&out);
    assert!(users_at < billing_at, "{out}");
    assert!(
        out.contains("users (schema users)") && out.contains("billing (schema billing)"),
        "{out}"
    );

    let status = json(&ok(db
        .cmd_with_file()
        .args(["migrate", "status", "--format", "json"])));
    assert_eq!(status.as_array().unwrap().len(), 3);
    assert_eq!(status[0]["module"], "users");
    assert_eq!(status[0]["schema"], "users");
    let hist = json(&ok(db
        .cmd_with_file()
        .args(["migrate", "history", "-m", "billing", "--format", "json"])));
    assert_eq!(hist.as_array().unwrap().len(), 2);
    assert_eq!(hist[0]["schema"], "billing");

    let schemas = json(&ok(db
        .cmd_with_file()
        .args(["schema", "list", "--format", "json"])));
    let find = |name: &str| {
        schemas
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["schema"] == name)
            .cloned()
    };
    let billing = find("billing").expect("billing schema");
    assert_eq!(billing["tables"], 2);
    assert_eq!(billing["modules"][0], "billing");
    let out = ok(db.cmd_with_file().args(["schema", "list"]));
    assert!(out.contains("SCHEMA") && out.contains("users"), "{out}");

    // Schema drop: refused without --yes, then done; create makes it again.
    let (_, err) = fails(
        db.cmd_with_file().args(["schema", "drop", "-m", "billing"]),
        1,
    );
    assert!(err.contains("refusing to drop schema billing"), "{err}");
    ok(db
        .cmd_with_file()
        .args(["schema", "drop", "-m", "billing", "--yes"]));
    let schemas = json(&ok(db
        .cmd_with_file()
        .args(["schema", "list", "--format", "json"])));
    assert!(!schemas.to_string().contains("\"billing\",\"tables\""));
    assert!(
        schemas
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["schema"] != "billing")
    );
    let out = ok(db
        .cmd_with_file()
        .args(["schema", "create", "-m", "billing"]));
    assert!(out.contains("created schema billing"), "{out}");
    let status = json(&ok(db
        .cmd_with_file()
        .args(["migrate", "status", "-m", "billing", "--format", "json"])));
    assert!(
        status
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["state"] == "pending")
    );

    // Environment selection: -e and PGDBM_ENV; info names the file and the environment.
    let info = json(&ok(db
        .cmd_with_file()
        .args(["-e", "other", "db", "info", "--format", "json"])));
    assert_eq!(info["environment"], "other");
    assert_eq!(info["modules"].as_array().unwrap().len(), 2);
    let info = json(&ok(db
        .cmd_with_file()
        .env("PGDBM_ENV", "other")
        .args(["db", "info", "--format", "json"])));
    assert_eq!(info["environment"], "other");
}

#[test]
fn config_file_errors() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    let write = |text: &str| std::fs::write(p.join("pgdbm.toml"), text).unwrap();

    let (_, err) = fails(pgdbm(p).args(["-c", "nope.toml", "migrate", "status"]), 1);
    assert!(err.contains("config file nope.toml not found"), "{err}");
    let (_, err) = fails(
        pgdbm(p)
            .env("PGDBM_CONFIG", "gone.toml")
            .args(["migrate", "status"]),
        1,
    );
    assert!(err.contains("gone.toml not found"), "{err}");

    write(
        "[project]\nname = \"x\"\n\n[environments.dev]\nurl = \"postgresql://a@b/c\"\nport = \"oops\n",
    );
    let (_, err) = fails(pgdbm(p).args(["migrate", "status"]), 1);
    assert!(err.contains("pgdbm.toml:6:"), "{err}");
    assert!(err.contains("environments.dev.port"), "{err}");

    write("[environments.dev]\nurl = \"postgresql://a@b/c\"\nport = true\n");
    let (_, err) = fails(pgdbm(p).args(["migrate", "status"]), 1);
    assert!(err.contains("pgdbm.toml:3:8:"), "{err}");
    assert!(err.contains("expected a port number"), "{err}");
    assert!(err.contains("environments.dev.port"), "{err}");

    write(TWO_MODULES);
    let (_, err) = fails(
        pgdbm(p)
            .env("TEST_DB_URL", "postgresql://a@b/c")
            .args(["-e", "staging", "migrate", "status"]),
        1,
    );
    assert!(err.contains("unknown environment \"staging\""), "{err}");
    assert!(err.contains("dev, other"), "{err}");
    let (_, err) = fails(
        pgdbm(p)
            .env("TEST_DB_URL", "postgresql://a@b/c")
            .args(["migrate", "status", "-m", "shipping"]),
        1,
    );
    assert!(err.contains("unknown module \"shipping\""), "{err}");
    let (_, err) = fails(pgdbm(p).args(["migrate", "status"]), 1);
    assert!(err.contains("TEST_DB_URL is not set"), "{err}");
    assert!(err.contains("environments.dev.url"), "{err}");

    write(
        "[modules.a]\ndepends_on = [\"b\"]\n[modules.b]\ndepends_on = [\"c\"]\n[modules.c]\ndepends_on = [\"a\"]\n",
    );
    let (_, err) = fails(pgdbm(p).args(["migrate", "apply"]), 1);
    assert!(err.contains("dependency cycle: a -> b -> c -> a"), "{err}");
}

#[test]
fn generate_config_and_module() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    let out = ok(pgdbm(p).args(["generate", "config"]));
    assert!(
        out.contains("[environments.dev]") && out.contains("[modules.users]"),
        "{out}"
    );
    assert!(out.lines().filter(|l| l.starts_with('#')).count() > 3);
    ok(pgdbm(p).args(["generate", "config", "-o", "pgdbm.toml"]));
    let (_, err) = fails(pgdbm(p).args(["generate", "config", "-o", "pgdbm.toml"]), 1);
    assert!(err.contains("cannot create pgdbm.toml"), "{err}");
    // The generated file is a valid config: create a migration with it (no server needed).
    let out = ok(pgdbm(p).args(["migrate", "create", "first", "-m", "users"]));
    assert!(out.contains("migrations/users/001_first.sql"), "{out}");

    let out = ok(pgdbm(p).args(["generate", "module", "billing-core", "--dir", "crates"]));
    assert!(out.contains("BillingCoreModule"), "{out}");
    let root = p.join("crates/billing-core");
    let lib = std::fs::read_to_string(root.join("src/lib.rs")).unwrap();
    assert!(lib.contains("impl Module for BillingCoreModule"), "{lib}");
    assert!(lib.contains("pub struct BillingCoreModule;"), "{lib}");
    assert!(lib.contains("pub async fn add_item"), "{lib}");
    assert!(
        lib.contains("pgdbm::embed_migrations!(\"migrations\")"),
        "{lib}"
    );
    assert!(lib.contains("\"billing_core\""), "{lib}");
    assert!(lib.contains("{{tables.billing_core_items}}"), "{lib}");
    let cargo = std::fs::read_to_string(root.join("Cargo.toml")).unwrap();
    assert!(
        cargo.contains("name = \"billing-core\"") && cargo.contains("pgdbm"),
        "{cargo}"
    );
    let sql =
        std::fs::read_to_string(root.join("migrations/001_create_billing_core_items.sql")).unwrap();
    assert!(
        sql.contains("CREATE TABLE IF NOT EXISTS {{tables.billing_core_items}}"),
        "{sql}"
    );
    let build = std::fs::read_to_string(root.join("build.rs")).unwrap();
    assert!(
        build.contains("println!(\"cargo:rerun-if-changed=migrations\");"),
        "{build}"
    );
    assert!(out.contains("build.rs"), "{out}");
    let test = std::fs::read_to_string(root.join("tests/migrations.rs")).unwrap();
    assert!(test.contains("db.migrate(&BillingCoreModule)"), "{test}");
    fails(
        pgdbm(p).args(["generate", "module", "billing-core", "--dir", "crates"]),
        1,
    );
    fails(pgdbm(p).args(["generate", "module", "Bad Name"]), 2);
}
