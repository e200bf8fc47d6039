//! The operator page: pgdbm's dashboard mounted at `/_pgdbm` behind a token
//! ([`DashboardToken`], from `DASHBOARD_TOKEN`), checked by this crate's own middleware — the
//! dashboard has no authentication of its own, by design.

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use pgdbm_dashboard::Dashboard;

/// The secret operators present to see the dashboard: `Authorization: Bearer <token>`, or HTTP
/// Basic with any user name and the token as password (what a browser prompts for).
/// Its `Debug` does not show it.
#[derive(Clone)]
pub struct DashboardToken(String);

impl DashboardToken {
    /// A token; `None` when it is empty (an empty secret would let anyone in).
    pub fn new(token: impl Into<String>) -> Option<Self> {
        let token = token.into();
        (!token.trim().is_empty()).then_some(DashboardToken(token))
    }

    /// Whether the request's `Authorization` header carries this token.
    fn admits(&self, authorization: Option<&HeaderValue>) -> bool {
        let Some(value) = authorization.and_then(|v| v.to_str().ok()) else {
            return false;
        };
        let (scheme, credentials) = value.split_once(' ').unwrap_or((value, ""));
        let credentials = credentials.trim();
        if scheme.eq_ignore_ascii_case("bearer") {
            return same(credentials.as_bytes(), self.0.as_bytes());
        }
        if scheme.eq_ignore_ascii_case("basic") {
            let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(credentials) else {
                return false;
            };
            let password = match decoded.iter().position(|&b| b == b':') {
                Some(colon) => &decoded[colon + 1..],
                None => return false,
            };
            return same(password, self.0.as_bytes());
        }
        false
    }
}

impl std::fmt::Debug for DashboardToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DashboardToken(***)")
    }
}

/// Equality whose time does not depend on where the first difference is.
fn same(a: &[u8], b: &[u8]) -> bool {
    let mut diff = u8::from(a.len() != b.len());
    for (i, x) in a.iter().enumerate() {
        diff |= x ^ b.get(i % b.len().max(1)).copied().unwrap_or(0);
    }
    diff == 0
}

/// The middleware: the request goes on with the token, else 401 with a Basic challenge (so a
/// browser asks for it).
async fn require_token(
    State(token): State<DashboardToken>,
    request: Request,
    next: Next,
) -> Response {
    if token.admits(request.headers().get(header::AUTHORIZATION)) {
        return next.run(request).await;
    }
    let mut response = (
        StatusCode::UNAUTHORIZED,
        "the dashboard needs the operator token\n",
    )
        .into_response();
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"pgdbm dashboard\", charset=\"UTF-8\""),
    );
    response
}

/// `dashboard`'s router behind `token`, to nest at `/_pgdbm`.
pub(crate) fn guarded(dashboard: &Dashboard, token: &DashboardToken) -> Router {
    dashboard
        .router()
        .layer(middleware::from_fn_with_state(token.clone(), require_token))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(value: &str) -> HeaderValue {
        HeaderValue::from_str(value).expect("a header value")
    }

    #[test]
    fn admits_bearer_and_basic_with_the_token_only() {
        let token = DashboardToken::new("s3cret").expect("non-empty");
        let basic = |creds: &str| {
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(creds)
            )
        };
        assert!(token.admits(Some(&header("Bearer s3cret"))));
        assert!(token.admits(Some(&header("bearer  s3cret"))));
        assert!(token.admits(Some(&header(&basic("ops:s3cret")))));
        assert!(token.admits(Some(&header(&basic(":s3cret")))));
        assert!(!token.admits(None));
        assert!(!token.admits(Some(&header("Bearer s3cre"))));
        assert!(!token.admits(Some(&header("Bearer s3cret!"))));
        assert!(!token.admits(Some(&header(&basic("s3cret")))));
        assert!(!token.admits(Some(&header(&basic("ops:wrong")))));
        assert!(!token.admits(Some(&header("Basic !!!"))));
        assert!(!token.admits(Some(&header("Token s3cret"))));
        assert!(DashboardToken::new("  ").is_none());
        assert_eq!(format!("{token:?}"), "DashboardToken(***)");
    }
}
