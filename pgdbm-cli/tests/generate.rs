//! `pgdbm generate module` makes a crate that builds and whose test passes; its dependency
//! line resolves (a path to a checkout) or is a placeholder that says what to do.

mod common;

use std::path::{Path, PathBuf};

use common::*;

/// The checkout this test runs in (the workspace root).
fn checkout() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

#[test]
fn generated_module_builds_and_its_test_passes() {
    let dir = tempfile::tempdir().unwrap();
    let root = checkout();
    let out = ok(pgdbm(dir.path()).args([
        "generate",
        "module",
        "billing-core",
        "--pgdbm-path",
        root.to_str().unwrap(),
    ]));
    assert!(out.contains("BillingCoreModule"), "{out}");
    let krate = dir.path().join("billing-core");
    let cargo_toml = std::fs::read_to_string(krate.join("Cargo.toml")).unwrap();
    assert!(
        cargo_toml.contains(&format!(
            "pgdbm = {{ path = \"{}/pgdbm\" }}",
            root.display()
        )),
        "{cargo_toml}"
    );
    let build_rs = std::fs::read_to_string(krate.join("build.rs")).unwrap();
    assert!(
        build_rs.contains("cargo:rerun-if-changed=migrations"),
        "{build_rs}"
    );
    // The workspace's lock file and target directory: same versions, nothing built twice.
    std::fs::copy(root.join("Cargo.lock"), krate.join("Cargo.lock")).unwrap();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| root.join("target"));
    let out = std::process::Command::new(&cargo)
        .args(["test", "--offline"])
        .current_dir(&krate)
        .env("CARGO_TARGET_DIR", &target)
        .env_remove("RUSTFLAGS")
        .output()
        .expect("run cargo");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("test migrates_and_works ... ok"),
        "cargo test of the generated crate failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // A new migration file is picked up by the next build (build.rs), and applied by the test.
    std::fs::write(
        krate.join("migrations/002_add_note.sql"),
        "ALTER TABLE {{tables.billing_core_items}} ADD COLUMN note text;",
    )
    .unwrap();
    let out = std::process::Command::new(&cargo)
        .args(["test", "--offline", "--", "--nocapture"])
        .current_dir(&krate)
        .env("CARGO_TARGET_DIR", &target)
        .env_remove("RUSTFLAGS")
        .output()
        .expect("run cargo");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("Compiling billing-core"),
        "not rebuilt: {stderr}"
    );
}

#[test]
fn dependency_line_inside_a_checkout_or_a_placeholder() {
    // Outside any checkout: a placeholder and instructions.
    let dir = tempfile::tempdir().unwrap();
    let (_, out, err) = run(pgdbm(dir.path()).args(["generate", "module", "users"]));
    assert!(out.contains("created crate users"), "{out}");
    assert!(err.contains("pgdbm is not on crates.io yet"), "{err}");
    let cargo_toml = std::fs::read_to_string(dir.path().join("users/Cargo.toml")).unwrap();
    assert!(
        cargo_toml.contains("PATH/TO/pgdbm-rs/pgdbm") && cargo_toml.contains("--pgdbm-path"),
        "{cargo_toml}"
    );
    // Inside the checkout: a relative path, and a note to add it to the workspace.
    let inside = tempfile::tempdir_in(checkout().join("target")).unwrap();
    let (_, _, err) = run(pgdbm(inside.path()).args(["generate", "module", "users"]));
    let cargo_toml = std::fs::read_to_string(inside.path().join("users/Cargo.toml")).unwrap();
    assert!(
        cargo_toml.contains("pgdbm = { path = \"../../../pgdbm\" }"),
        "{cargo_toml}"
    );
    assert!(!cargo_toml.contains("[workspace]"), "{cargo_toml}");
    assert!(err.contains("add \"target/"), "{err}");
    // A --pgdbm-path that is not a checkout.
    let (_, err) = fails(
        pgdbm(dir.path()).args(["generate", "module", "other", "--pgdbm-path", "."]),
        2,
    );
    assert!(err.contains("not a checkout of pgdbm"), "{err}");
}
