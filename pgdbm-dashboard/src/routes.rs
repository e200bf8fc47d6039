//! The router and its handlers: `GET /` and `GET /plan/{id}`, nothing that writes.

use axum::Router;
use axum::extract::{FromRequestParts, NestedPath, Path, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use maud::Markup;

use crate::Dashboard;
use crate::pages::{self, overview::Overview};
use crate::plan::generic_plan;
use crate::statement_id::{is_statement_id, statement_id};

pub(crate) fn router(dashboard: Dashboard) -> Router {
    Router::new()
        .route("/", get(overview))
        .route("/plan/{id}", get(plan))
        .with_state(dashboard)
}

/// Where the router is mounted (`/_pgdbm`), without a trailing `/`; empty when not nested.
struct Base(String);

impl<S: Send + Sync> FromRequestParts<S> for Base {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let base = parts
            .extensions
            .get::<NestedPath>()
            .map_or("", |p| p.as_str().trim_end_matches('/'));
        Ok(Base(base.to_owned()))
    }
}

/// An HTML page with headers that keep it out of caches and frames, and allow no script.
fn page(status: StatusCode, markup: Markup) -> Response {
    let mut response = (status, Html(markup.into_string())).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; \
             frame-ancestors 'none'; form-action 'none'; base-uri 'none'",
        ),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

async fn overview(State(dashboard): State<Dashboard>, Base(base): Base) -> Response {
    let overview = Overview::read(&dashboard.inner).await;
    let body = overview.render(&base);
    page(StatusCode::OK, pages::layout(&base, "Overview", body))
}

async fn plan(
    State(dashboard): State<Dashboard>,
    Base(base): Base,
    Path(id): Path<String>,
) -> Response {
    let inner = &*dashboard.inner;
    let found = is_statement_id(&id)
        .then(|| inner.monitored.monitor())
        .flatten()
        .and_then(|monitor| {
            let stats = monitor.statements();
            let sql = stats.into_iter().find(|s| statement_id(&s.sql) == id)?.sql;
            // The schema it last ran in, for its templates.
            let schema = monitor
                .history()
                .into_iter()
                .chain(monitor.slow_queries())
                .filter(|r| r.sql == sql)
                .max_by_key(|r| r.started_at)
                .map(|r| r.schema);
            Some((sql, schema))
        });
    let Some((sql, schema)) = found else {
        let body = maud::html! {
            section #plan {
                h2 { "Plan" }
                p class="error" { "No statement recorded by the monitor has this id." }
                p { a href=(format!("{}#statements", pages::home(&base))) { "← statements" } }
            }
        };
        return page(StatusCode::NOT_FOUND, pages::layout(&base, "Plan", body));
    };
    let schema = schema.unwrap_or_else(|| inner.db.schema().map(std::sync::Arc::from));
    let result = match inner.db.with_schema(schema.as_deref()) {
        Ok(db) => generic_plan(db, sql.to_string(), inner.query_timeout)
            .await
            .map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    let body = pages::plan::render(&base, &sql, schema.as_deref(), &result);
    page(StatusCode::OK, pages::layout(&base, "Plan", body))
}
