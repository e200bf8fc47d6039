//! `/_pgdbm` through the router: absent without a token, 401 with a Basic challenge without the
//! token, the page with it (bearer or Basic), showing the todo module and its statements.

mod common;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use pgdbm::Database;
use pgdbm::monitor::MonitorOptions;
use pgdbm_testing::TestDatabase;
use todo_app::todo::TodoModule;
use todo_app::{AppState, DashboardToken, router};
use tower::ServiceExt;

use common::create;

async fn get(
    app: &Router,
    uri: &str,
    auth: Option<&str>,
) -> (StatusCode, header::HeaderMap, String) {
    let mut request = Request::get(uri);
    if let Some(value) = auth {
        request = request.header(header::AUTHORIZATION, value);
    }
    let response = app
        .clone()
        .oneshot(request.body(Body::empty()).expect("a request"))
        .await
        .expect("infallible");
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 22)
        .await
        .expect("a body");
    (
        status,
        headers,
        String::from_utf8_lossy(&bytes).into_owned(),
    )
}

fn with_dashboard(db: &Database) -> Router {
    let token = DashboardToken::new("ops-token").expect("non-empty");
    let state = AppState::new(db.clone(), MonitorOptions::default())
        .with_dashboard(token)
        .expect("valid options");
    router(state)
}

#[pgdbm_testing::test(module = TodoModule, schema = "todo")]
async fn absent_without_a_token(db: TestDatabase) {
    let app = common::app(&db);
    let (status, _, _) = get(&app, "/_pgdbm", Some("Bearer ops-token")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[pgdbm_testing::test(module = TodoModule, schema = "todo")]
async fn refused_without_the_token(db: TestDatabase) {
    let app = with_dashboard(&db);
    for uri in ["/_pgdbm", "/_pgdbm/plan/0123456789abcdef"] {
        // "ops:wrong" and ":ops-token " in Basic.
        for auth in [
            None,
            Some("Bearer wrong"),
            Some("Basic b3BzOndyb25n"),
            Some("Basic Om9wcy10b2tlbiA="),
        ] {
            let (status, headers, body) = get(&app, uri, auth).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{uri} {auth:?}");
            assert!(
                headers[header::WWW_AUTHENTICATE]
                    .to_str()
                    .unwrap()
                    .starts_with("Basic realm="),
                "{headers:?}"
            );
            assert!(!body.contains("ops-token"));
        }
    }
    // The rest of the service needs no token.
    let (status, _, _) = get(&app, "/health", None).await;
    assert_eq!(status, StatusCode::OK);
}

#[pgdbm_testing::test(module = TodoModule, schema = "todo")]
async fn the_page_with_the_token(db: TestDatabase) {
    let app = with_dashboard(&db);
    create(&app, r#"{"title": "look at the dashboard"}"#).await;
    // "ops:ops-token" in Basic, as a browser sends it.
    for auth in ["Bearer ops-token", "Basic b3BzOm9wcy10b2tlbg=="] {
        let (status, headers, page) = get(&app, "/_pgdbm", Some(auth)).await;
        assert_eq!(status, StatusCode::OK, "{auth}: {page}");
        assert!(
            headers[header::CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with("text/html")
        );
        assert!(page.contains("data-module=\"todo\""), "{page}");
        assert!(page.contains("001_create_todos.sql"), "{page}");
        assert!(page.contains("INSERT INTO {{tables.todos}}"), "{page}");
        assert!(page.contains("id=\"pool-chart\""), "{page}");
        assert!(!page.contains("look at the dashboard"), "no values: {page}");
    }
}
