//! pgdbm's dashboard in a real browser: headless Chromium, driven over WebDriver (chromedriver),
//! loads `/_pgdbm` from todo-app served on a free port against its own database, after traffic
//! that includes a slow statement; the rendered DOM must show the module, the slow statement and
//! the pool chart, a plan link must lead to a plan, and a screenshot is saved under `target/`.
//!
//! Needs Debian's `chromium` and `chromium-driver` (`.ci/run` installs them); without them the
//! test prints why and passes.

mod common;

use std::net::{SocketAddr, TcpListener as StdListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use pgdbm::monitor::MonitorOptions;
use pgdbm_testing::TestDatabase;
use serde_json::json;
use todo_app::todo::TodoModule;
use todo_app::{AppState, DashboardToken, router};

const TOKEN: &str = "browser-test-token";

/// The first of `names` found in `PATH` (or `/usr/bin`).
fn find_program(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut dirs: Vec<PathBuf> = std::env::split_paths(&path).collect();
    dirs.push(PathBuf::from("/usr/bin"));
    names
        .iter()
        .flat_map(|name| dirs.iter().map(move |dir| dir.join(name)))
        .find(|candidate| candidate.is_file())
}

/// chromedriver in a process group of its own, ended (with the browser it started) on drop.
struct ChromeDriver {
    child: Child,
    port: u16,
}

impl ChromeDriver {
    fn start(program: &Path) -> ChromeDriver {
        use std::os::unix::process::CommandExt;
        let port = StdListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let child = Command::new(program)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", program.display()));
        ChromeDriver { child, port }
    }

    async fn ready(&self) {
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", self.port))
                .await
                .is_ok()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("chromedriver did not listen on port {}", self.port);
    }
}

impl Drop for ChromeDriver {
    fn drop(&mut self) {
        // The whole group: chromedriver and any browser it left behind.
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-TERM", "--", &group]).status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn browser(driver: &ChromeDriver, chromium: &Path) -> Client {
    let mut capabilities = serde_json::Map::new();
    capabilities.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": chromium,
            "args": [
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--window-size=1280,2200",
            ],
        }),
    );
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    ClientBuilder::new(connector)
        .capabilities(capabilities)
        .connect(&format!("http://127.0.0.1:{}", driver.port))
        .await
        .expect("a WebDriver session in headless Chromium")
}

/// Where the screenshot goes: `target/tmp/pgdbm-dashboard/overview.png`.
fn screenshot_path() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("pgdbm-dashboard")
        .join("overview.png")
}

#[pgdbm_testing::test(module = TodoModule, schema = "todo")]
async fn dashboard_renders_in_chromium(db: TestDatabase) {
    let Some(chromium) = find_program(&["chromium", "chromium-browser", "google-chrome"]) else {
        println!("skipped: no chromium in PATH (apt-get install chromium chromium-driver)");
        return;
    };
    let Some(chromedriver) = find_program(&["chromedriver"]) else {
        println!("skipped: no chromedriver in PATH (apt-get install chromium-driver)");
        return;
    };

    // The service with its dashboard; traffic through the router, and a slow statement on the
    // handle the requests use.
    let state = AppState::new(
        db.clone(),
        MonitorOptions::default().slow_query_threshold(Duration::from_millis(100)),
    )
    .with_dashboard(DashboardToken::new(TOKEN).expect("non-empty"))
    .expect("valid options");
    let app = router(state.clone());
    for title in ["write the test", "run the browser", "look at the page"] {
        common::create(&app, &format!(r#"{{"title": "{title}"}}"#)).await;
    }
    assert_eq!(common::send(&app, "GET", "/todos", None).await.status, 200);
    state
        .database()
        .batch_execute("SELECT pg_sleep(0.3)")
        .await
        .expect("the slow statement");

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a free port");
    let addr: SocketAddr = listener.local_addr().expect("bound");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(todo_app::serve(listener, state, async {
        let _ = stopped.await;
    }));

    let driver = ChromeDriver::start(&chromedriver);
    driver.ready().await;
    let client = browser(&driver, &chromium).await;
    let checked = check_page(&client, addr).await;
    let closed = client.close().await;
    let _ = stop.send(());
    server.await.expect("joined").expect("served");
    drop(driver);
    checked.unwrap_or_else(|e| panic!("{e}"));
    closed.expect("the browser session closes");
}

/// A WebDriver error as the test's failure, saying what was being done.
fn fail(what: &'static str) -> impl Fn(fantoccini::error::CmdError) -> String {
    move |e| format!("{what}: {e}")
}

/// Loads the page with the token as Basic credentials and checks what the browser rendered.
async fn check_page(client: &Client, addr: SocketAddr) -> Result<(), String> {
    client
        .goto(&format!("http://operator:{TOKEN}@{addr}/_pgdbm"))
        .await
        .map_err(fail("loading the page"))?;
    let title = client.title().await.map_err(fail("title"))?;
    if !title.contains("pgdbm") {
        let source = client.source().await.unwrap_or_default();
        return Err(format!("unexpected page {title:?}: {source}"));
    }

    let chart = client
        .find(Locator::Css("svg#pool-chart"))
        .await
        .map_err(fail("the pool chart"))?;
    let (_, _, width, height) = chart.rectangle().await.map_err(fail("chart size"))?;
    if width < 100.0 || height < 30.0 {
        return Err(format!("the chart is not laid out: {width}x{height}"));
    }
    chart
        .find(Locator::Css("polyline.open"))
        .await
        .map_err(fail("the chart's line"))?;

    let modules = client
        .find_all(Locator::Css("#migrations .module"))
        .await
        .map_err(fail("module names"))?;
    let mut names = Vec::new();
    for m in &modules {
        names.push(m.text().await.map_err(fail("a module name"))?);
    }
    if !names.iter().any(|n| n == "todo") {
        return Err(format!(
            "module todo missing from the migrations: {names:?}"
        ));
    }
    let migrations = client
        .find(Locator::Css("#migrations"))
        .await
        .map_err(fail("migrations"))?
        .text()
        .await
        .map_err(fail("migrations text"))?;
    if !migrations.contains("001_create_todos.sql") || !migrations.contains("1 applied") {
        return Err(format!("migration status: {migrations}"));
    }

    let slow = client
        .find(Locator::Css("table#slow"))
        .await
        .map_err(fail("the slow statements"))?
        .text()
        .await
        .map_err(fail("slow text"))?;
    if !slow.contains("SELECT pg_sleep(0.3)") || !slow.contains("todo") {
        return Err(format!(
            "the slow statement is not listed with its module: {slow}"
        ));
    }
    let totals = client
        .find(Locator::Css("table#by-total"))
        .await
        .map_err(fail("slowest by total"))?
        .text()
        .await
        .map_err(fail("by-total text"))?;
    if !totals.contains("INSERT INTO {{tables.todos}}") || totals.contains("run the browser") {
        return Err(format!("statements by total: {totals}"));
    }
    let replicas = client
        .find(Locator::Css("#replicas"))
        .await
        .map_err(fail("replicas"))?
        .text()
        .await
        .map_err(fail("replicas text"))?;
    if !replicas.contains("no replicas configured") {
        return Err(format!("replicas: {replicas}"));
    }

    let png = client.screenshot().await.map_err(fail("screenshot"))?;
    let path = screenshot_path();
    std::fs::create_dir_all(path.parent().expect("a parent")).map_err(|e| e.to_string())?;
    std::fs::write(&path, &png).map_err(|e| format!("{}: {e}", path.display()))?;
    println!("screenshot: {}", path.display());

    // A plan on demand: the INSERT's link leads to its generic plan.
    let rows = client
        .find_all(Locator::Css("table#by-total tr"))
        .await
        .map_err(fail("statement rows"))?;
    let mut link = None;
    for row in rows {
        if row.text().await.unwrap_or_default().contains("INSERT INTO") {
            link = Some(
                row.find(Locator::Css("a.plan"))
                    .await
                    .map_err(fail("plan link"))?,
            );
            break;
        }
    }
    link.ok_or("no plan link for the INSERT")?
        .click()
        .await
        .map_err(fail("following the plan link"))?;
    let summary = client
        .wait()
        .for_element(Locator::Css("#plan-summary"))
        .await
        .map_err(fail("the plan"))?
        .text()
        .await
        .map_err(fail("plan text"))?;
    if !summary.contains("ModifyTable") {
        return Err(format!("plan: {summary}"));
    }
    Ok(())
}
