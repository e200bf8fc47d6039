//! The dedicated server: settings, password authentication, restart, TLS configuration.

use pgdbm::{Database, Error, RetryPolicy};
use pgdbm_driver_tokio_postgres::TokioPostgres;
use pgdbm_testing::DedicatedServer;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_password_and_restart() -> pgdbm::Result<()> {
    let server = DedicatedServer::builder()
        .password("dedicated-pw")
        .setting("work_mem", "5MB")
        .start()
        .await?;
    let config = server.config().clone();
    assert_eq!(config.host(), "localhost");
    assert_eq!(config.port(), server.port());

    let db = Database::connect::<TokioPostgres>(&config).await?;
    assert_eq!(db.fetch_value::<String>("SHOW work_mem", &[]).await?, "5MB");
    db.close().await;

    // TCP needs the password; a wrong one is an authentication error.
    let wrong = config
        .to_builder()
        .password("not-it")
        .retry(RetryPolicy::no_retry())
        .build()?;
    let err = Database::connect::<TokioPostgres>(&wrong)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Connect { .. }), "{err:?}");
    assert!(!format!("{err} {err:?}").contains("not-it"));

    // Administration through psql over the trusted socket.
    server
        .psql("CREATE ROLE app LOGIN PASSWORD 'app-pw'")
        .await?;
    assert_eq!(
        server
            .psql("SELECT rolname FROM pg_roles WHERE rolname = 'app'")
            .await?,
        "app"
    );
    assert!(server.psql("SELECT * FROM missing_table").await.is_err());

    // Stopped, it refuses connections; started again, it serves them on the same port.
    server.stop().await?;
    let down = config.to_builder().retry(RetryPolicy::no_retry()).build()?;
    assert!(Database::connect::<TokioPostgres>(&down).await.is_err());
    server.start().await?;
    let db = Database::connect::<TokioPostgres>(&config).await?;
    assert_eq!(db.fetch_value::<i32>("SELECT 1", &[]).await?, 1);
    db.close().await;
    server.restart().await?;
    let socket = Database::connect::<TokioPostgres>(&server.socket_config()?).await?;
    assert_eq!(socket.fetch_value::<i32>("SELECT 2", &[]).await?, 2);
    socket.close().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_server_is_removed() -> pgdbm::Result<()> {
    let server = DedicatedServer::builder().start().await?;
    let dir = server.log();
    assert!(!dir.is_empty(), "the server log is readable");
    let port = server.port();
    drop(server);
    let addr = format!("127.0.0.1:{port}");
    assert!(
        std::net::TcpStream::connect(addr).is_err(),
        "the server is stopped on drop"
    );
    Ok(())
}

#[cfg(feature = "tls")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_server_uses_the_generated_certificates() -> pgdbm::Result<()> {
    let certs = pgdbm_testing::TestCerts::generate()?;
    for path in [
        &certs.ca_cert,
        &certs.server_cert,
        &certs.client_cert,
        &certs.other_ca_cert,
    ] {
        assert!(
            std::fs::read_to_string(path)
                .unwrap()
                .starts_with("-----BEGIN CERTIFICATE-----")
        );
    }
    let server = DedicatedServer::builder().tls(&certs).start().await?;
    assert_eq!(server.psql("SHOW ssl").await?, "on");
    assert_eq!(server.psql("SHOW ssl_ca_file").await?, "root.crt");
    Ok(())
}
