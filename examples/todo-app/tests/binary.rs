//! The real binary (`cargo run -p todo-app`) over real HTTP: started on a free port against a
//! fresh server of the test's own, every route and status code, readiness 503 once the server
//! is stopped, then SIGTERM and a clean exit after the pool closed.

#![cfg(unix)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::header::{CONTENT_TYPE, HOST};
use hyper_util::rt::TokioIo;
use pgdbm_testing::DedicatedServer;
use serde_json::Value;
use tokio::net::TcpStream;

/// The running binary; killed if the test ends without stopping it.
struct Service {
    child: Child,
    addr: SocketAddr,
    log: mpsc::Receiver<String>,
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Service {
    /// Starts the binary with `PORT=0` against `server` and waits for its `listening` line.
    fn start(server: &DedicatedServer) -> Service {
        let config = server.config();
        let mut child = Command::new(env!("CARGO_BIN_EXE_todo-app"))
            .env_remove("DATABASE_URL")
            .env_remove("PGPASSWORD")
            .env_remove("PGSERVICE")
            .env("PGHOST", config.host())
            .env("PGPORT", config.port().to_string())
            .env("PGUSER", config.user())
            .env("PGDATABASE", config.database())
            .env("HOST", "127.0.0.1")
            .env("PORT", "0")
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the todo-app binary starts");
        let stderr = child.stderr.take().unwrap();
        let (lines, log) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                eprintln!("[todo-app] {line}");
                if lines.send(line).is_err() {
                    break;
                }
            }
        });
        let mut service = Service {
            child,
            addr: SocketAddr::from(([0, 0, 0, 0], 0)),
            log,
        };
        let line = service.wait_for("listening", Duration::from_secs(60));
        let addr = line.split("addr=").nth(1).expect("the address is logged");
        service.addr = addr.trim().parse().expect("a socket address");
        service
    }

    /// The first log line from now on that contains `text`; panics after `limit`.
    fn wait_for(&self, text: &str, limit: Duration) -> String {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.log.recv_timeout(left) {
                Ok(line) if line.contains(text) => return line,
                Ok(_) => {}
                Err(e) => panic!("no log line with {text:?} within {limit:?}: {e}"),
            }
        }
    }

    /// One request on a new connection: the status and the JSON body (`Null` when empty).
    async fn call(&self, method: &str, path: &str, body: Option<&str>) -> (u16, Value) {
        let stream = TcpStream::connect(self.addr).await.expect("connect");
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .expect("an HTTP/1 handshake");
        tokio::spawn(connection);
        let mut request = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header(HOST, self.addr.to_string());
        if body.is_some() {
            request = request.header(CONTENT_TYPE, "application/json");
        }
        let body = Full::new(Bytes::from(body.unwrap_or("").to_owned()));
        let response = sender
            .send_request(request.body(body).unwrap())
            .await
            .expect("a response");
        let status = response.status().as_u16();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let json = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).expect("a JSON body")
        };
        (status, json)
    }

    /// Sends SIGTERM and waits for the process to exit; its exit status.
    fn terminate(&mut self, limit: Duration) -> std::process::ExitStatus {
        let sent = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(sent.success(), "SIGTERM delivered");
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "still running {limit:?} after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_serves_every_route_and_stops_on_sigterm() {
    let server = DedicatedServer::builder().start().await.unwrap();
    let mut app = Service::start(&server);

    assert_eq!(
        app.call("GET", "/health", None).await,
        (200, serde_json::json!({"status": "ok"}))
    );
    let (status, ready) = app.call("GET", "/health/ready", None).await;
    assert_eq!(status, 200, "{ready}");
    assert!(ready["pool"]["max_size"].as_u64().unwrap() > 0, "{ready}");

    let (status, todo) = app
        .call("POST", "/todos", Some(r#"{"title": "ship it"}"#))
        .await;
    assert_eq!(status, 201, "{todo}");
    let id = todo["id"].as_str().unwrap().to_owned();
    let uri = format!("/todos/{id}");
    let missing = "/todos/00000000-0000-4000-8000-000000000000";
    for (body, expected) in [
        (r#"{"title": ""}"#, 422),
        ("{}", 422),
        (r#"{"title": "#, 400),
    ] {
        let (status, error) = app.call("POST", "/todos", Some(body)).await;
        assert_eq!(status, expected, "{body}: {error}");
        assert!(error["error"].is_string(), "{error}");
    }

    let (status, page) = app
        .call("GET", "/todos?completed=false&limit=1000", None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(page["limit"], 100, "the cap");
    assert_eq!(page["todos"][0], todo);
    assert_eq!(app.call("GET", "/todos?limit=many", None).await.0, 400);

    assert_eq!(app.call("GET", &uri, None).await, (200, todo.clone()));
    assert_eq!(app.call("GET", missing, None).await.0, 404);
    assert_eq!(app.call("GET", "/todos/123", None).await.0, 400);

    let (status, done) = app
        .call("PATCH", &uri, Some(r#"{"completed": true}"#))
        .await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(
        (&done["completed"], &done["title"]),
        (&Value::Bool(true), &todo["title"])
    );
    assert_ne!(
        done["updated_at"], todo["updated_at"],
        "the trigger moved updated_at"
    );
    assert_eq!(app.call("PATCH", missing, Some("{}")).await.0, 404);
    assert_eq!(app.call("PATCH", "/todos/123", Some("{}")).await.0, 400);
    assert_eq!(
        app.call("PATCH", &uri, Some(r#"{"title": " "}"#)).await.0,
        422
    );

    assert_eq!(app.call("DELETE", &uri, None).await, (204, Value::Null));
    assert_eq!(app.call("DELETE", &uri, None).await.0, 404);
    assert_eq!(app.call("DELETE", "/todos/123", None).await.0, 400);

    server.stop().await.unwrap();
    let (status, ready) = app.call("GET", "/health/ready", None).await;
    assert_eq!(status, 503, "{ready}");
    assert_eq!(ready["status"], "unavailable");
    assert_eq!(app.call("GET", "/health", None).await.0, 200);

    let exit = app.terminate(Duration::from_secs(20));
    assert!(exit.success(), "exit status {exit}");
    app.wait_for("SIGTERM: shutting down", Duration::from_secs(5));
    app.wait_for("pool closed", Duration::from_secs(5));
}
