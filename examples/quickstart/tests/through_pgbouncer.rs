//! The quick start runs unchanged through a real PgBouncer in transaction mode, told so by its
//! URL alone (`?pooler=transaction`): the binary itself, with `DATABASE_URL` pointing at
//! PgBouncer (`pgdbm_testing::PgBouncer`, pool size 2, no ignored startup parameters).

use std::process::Command;

use pgdbm_driver_tokio_postgres::TokioPostgres;
use pgdbm_testing::{PgBouncer, TestDatabase};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quickstart_runs_through_pgbouncer() {
    let database = TestDatabase::<TokioPostgres>::builder()
        .build()
        .await
        .expect("a test database");
    let bouncer = PgBouncer::shared::<TokioPostgres>()
        .await
        .expect("PgBouncer in front of the test server");
    let url = format!(
        "postgresql://{}@127.0.0.1:{}/{}?pooler=transaction&sslmode=disable",
        database.config().user(),
        bouncer.port(),
        database.name()
    );
    let run = || {
        Command::new(env!("CARGO_BIN_EXE_quickstart"))
            .env("DATABASE_URL", &url)
            .env_remove("PGDATABASE")
            .output()
            .expect("the quickstart binary runs")
    };
    // Twice: the second run finds the schema and table in place.
    for _ in 0..2 {
        let out = run();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "quickstart through PgBouncer failed ({}):\n{stdout}\n{stderr}\nPgBouncer log:\n{}",
            out.status,
            bouncer.log()
        );
        assert!(
            stdout.contains("committed notes"),
            "unexpected output:\n{stdout}"
        );
    }
}
