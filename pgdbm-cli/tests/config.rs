//! `pgdbm.toml` is strict, and every command says where its target came from: unknown tables
//! and keys (with line, column and a suggestion), conflicting keys, `connection_string`,
//! `--env` over `DATABASE_URL`, the OS user as the default user.

mod common;

use common::*;

fn write(dir: &std::path::Path, text: &str) {
    std::fs::write(dir.join("pgdbm.toml"), text).unwrap();
}

#[test]
fn unknown_tables_and_keys_are_errors_with_a_suggestion() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    write(
        p,
        "[project]\nname = \"x\"\n\n[enviroments.dev]\nurl = \"postgresql://localhost/x\"\n",
    );
    let (_, err) = fails(pgdbm(p).args(["db", "info"]), 1);
    assert!(
        err.contains(
            "pgdbm.toml:4:2: unknown table `enviroments.dev`; did you mean `environments.dev`?"
        ),
        "{err}"
    );
    // Nothing was connected to.
    assert!(!err.contains("target:"), "{err}");

    write(
        p,
        "[modules.todo]\nmigrations_path = \"m\"\n  shema = \"todo\"\n",
    );
    let (_, err) = fails(pgdbm(p).args(["migrate", "status"]), 1);
    assert!(
        err.contains(
            "pgdbm.toml:3:3: unknown key `shema` in [modules.todo]; did you mean `schema`?"
        ),
        "{err}"
    );
    write(p, "[modules.todo]\nmigration_path = \"m\"\n");
    let (_, err) = fails(pgdbm(p).args(["migrate", "status"]), 1);
    assert!(err.contains("did you mean `migrations_path`?"), "{err}");
    // No suggestion for a name far from every known one, but the known names are listed.
    write(p, "[project]\nname = \"x\"\ncolour = \"blue\"\n");
    let (_, err) = fails(pgdbm(p).args(["migrate", "status"]), 1);
    assert!(
        err.contains("unknown key `colour` in [project]") && !err.contains("did you mean"),
        "{err}"
    );
    assert!(err.contains("known: name, default_env"), "{err}");

    // Everything pgdbm for Python 0.5.0 reads is accepted, and pgdbm's own pool keys.
    write(
        p,
        "[project]\nname = \"x\"\ndefault_env = \"dev\"\n[database]\nmigrations_table = \"schema_migrations\"\n\
         [shared_pool]\nmin_connections = 1\nmax_connections = 5\nmax_queries = 50000\nmultiplexing = true\nmultiplexed_connections = 2\nmodules = [\"a\"]\n\
         [environments.dev]\nhost = \"127.0.0.1\"\nport = 1\ndatabase = \"d\"\nuser = \"u\"\n\
         password = \"p\"\nschema = \"s\"\nssl_enabled = false\nssl_mode = \"disable\"\n\
         [modules.a]\nmigrations_path = \"m\"\nschema = \"a\"\nmode = \"dual\"\ndepends_on = []\n",
    );
    let out = ok(pgdbm(p).args(["schema", "deps"]));
    assert!(out.contains("a (schema a)"), "{out}");
    write(p, "[modules.a]\nmode = \"sometimes\"\n");
    let (_, err) = fails(pgdbm(p).args(["schema", "deps"]), 1);
    assert!(
        err.contains("pgdbm.toml:2:8") && err.contains("modules.a.mode"),
        "{err}"
    );
}

#[test]
fn conflicting_keys_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    for (body, a, b) in [
        ("url = \"postgresql://h/d\"\nhost = \"x\"\n", "url", "host"),
        (
            "url = \"postgresql://h/d\"\ndatabase = \"x\"\n",
            "url",
            "database",
        ),
        (
            "connection_string = \"postgresql://h/d\"\nuser = \"x\"\n",
            "connection_string",
            "user",
        ),
        (
            "url = \"postgresql://h/d\"\nconnection_string = \"postgresql://h/d\"\n",
            "url",
            "connection_string",
        ),
        (
            "url = \"postgresql://u:pw@h/d\"\npassword = \"x\"\n",
            "url",
            "password",
        ),
        (
            "ssl_enabled = true\nssl_mode = \"disable\"\n",
            "ssl_enabled",
            "ssl_mode",
        ),
    ] {
        write(p, &format!("[environments.dev]\n{body}"));
        let (_, err) = fails(pgdbm(p).args(["db", "info"]), 1);
        assert!(
            err.contains(&format!(
                "pgdbm.toml:3:1: [environments.dev] sets both `{a}` and `{b}`"
            )),
            "{body}: {err}"
        );
    }
}

#[test]
fn every_command_names_its_target_and_env_wins_over_database_url() {
    let db = TestDb::new("source");
    let elsewhere = url_for("pgdbm_cli_no_such_db");
    db.write(
        "pgdbm.toml",
        "[environments.dev]\nconnection_string = \"${TEST_DB_URL}\"\n",
    );
    // Python's `connection_string` is a URL.
    let out = ok(db.cmd_with_file().args(["db", "info", "--format", "json"]));
    let info = json(&out);
    assert_eq!(info["database"], db.name.as_str());
    assert_eq!(info["target_source"], "pgdbm.toml [environments.dev]");

    // An explicit --env wins over an exported DATABASE_URL, and says so.
    let (_, out, err) = run(db.cmd_with_file().env("DATABASE_URL", &elsewhere).args([
        "--env",
        "dev",
        "db",
        "test-connection",
    ]));
    assert!(out.contains(&db.name), "{out}\n{err}");
    assert!(
        err.contains("(from pgdbm.toml [environments.dev])"),
        "{err}"
    );
    // So does PGDBM_ENV.
    let out = ok(db
        .cmd_with_file()
        .env("DATABASE_URL", &elsewhere)
        .env("PGDBM_ENV", "dev")
        .args(["db", "test-connection"]));
    assert!(out.contains(&db.name), "{out}");
    // Without one, DATABASE_URL applies, and the command says which setting it passed over.
    let (_, err) = fails(
        db.cmd_with_file()
            .env("DATABASE_URL", &elsewhere)
            .args(["db", "test-connection"]),
        1,
    );
    assert!(err.contains("(from DATABASE_URL)"), "{err}");
    assert!(
        err.contains("note: DATABASE_URL is used, not pgdbm.toml [environments.dev] (select that with --env dev)"),
        "{err}"
    );
    assert!(err.contains("pgdbm_cli_no_such_db"), "{err}");
    // --database-url wins over everything.
    let (_, out, err) = run(db.cmd_with_file().env("DATABASE_URL", &elsewhere).args([
        "--database-url",
        &db.url,
        "db",
        "test-connection",
    ]));
    assert!(
        out.contains(&db.name) && err.contains("(from --database-url)"),
        "{out}{err}"
    );
    // -q keeps standard error for errors.
    let (_, _, err) = run(db.cmd_with_file().args(["-q", "db", "test-connection"]));
    assert!(err.is_empty(), "{err}");
    // --env naming no environment of the file.
    let (_, err) = fails(db.cmd_with_file().args(["--env", "dve", "db", "info"]), 1);
    assert!(
        err.contains("unknown environment \"dve\"") && err.contains("did you mean \"dev\"?"),
        "{err}"
    );
}

#[test]
fn the_default_user_is_the_os_user_whatever_user_says() {
    let dir = tempfile::tempdir().unwrap();
    let os_user = whoami_name();
    for user_var in [None, Some("somebody_else")] {
        let mut cmd = pgdbm(dir.path());
        cmd.env_remove("PGUSER").env_remove("LOGNAME").args([
            "--database-url",
            "postgresql://127.0.0.1:1/x",
            "db",
            "test-connection",
        ]);
        match user_var {
            Some(u) => cmd.env("USER", u),
            None => cmd.env_remove("USER"),
        };
        let (_, err) = fails(&mut cmd, 1);
        assert!(
            err.contains(&format!("target: postgresql://{os_user}@127.0.0.1:1/x")),
            "USER={user_var:?}: {err}"
        );
    }
    // A user in the URL is kept.
    let (_, err) = fails(
        pgdbm(dir.path()).env("USER", "x").args([
            "--database-url",
            "postgresql://alice@127.0.0.1:1/x",
            "db",
            "test-connection",
        ]),
        1,
    );
    assert!(
        err.contains("target: postgresql://alice@127.0.0.1:1/x"),
        "{err}"
    );
}

/// The OS user, as `id -un` reports it.
fn whoami_name() -> String {
    let out = std::process::Command::new("id")
        .arg("-un")
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}
