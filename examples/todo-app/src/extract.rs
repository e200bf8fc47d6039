//! Extractors whose rejections are [`ApiError`]s with JSON bodies, instead of axum's plain-text
//! ones (whose serde messages may quote the client's values): a JSON body ([`JsonBody`]), the
//! todo id of the path ([`TodoId`]) and the list's query ([`ListQuery`]).

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::header::CONTENT_TYPE;
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use uuid::Uuid;

use crate::error::ApiError;
use crate::todo::ListFilter;

/// A JSON request body: 415 without a JSON content type, 400 when it is not JSON, 422 when it
/// is JSON of the wrong shape (naming the field).
#[derive(Debug, Clone)]
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        if !has_json_content_type(req.headers()) {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "expected `Content-Type: application/json`",
            ));
        }
        let body = Bytes::from_request(req, state)
            .await
            .map_err(|rejection| ApiError::new(rejection.status(), "cannot read the body"))?;
        parse_json(&body).map(JsonBody)
    }
}

fn has_json_content_type(headers: &HeaderMap) -> bool {
    let Some(value) = headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let essence = value
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// Parses a JSON document into `T`: 400 for malformed JSON (with its position), 422 naming the
/// field whose value has the wrong type, or the unknown field. serde's own messages can quote the value, so they are
/// not passed on.
pub fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let value: T = serde_path_to_error::deserialize(&mut de).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        if !inner.is_data() {
            malformed(&inner)
        } else if path == "." {
            ApiError::unprocessable("the body must be a JSON object")
        } else if inner.to_string().starts_with("unknown field") {
            // serde's wording for a key `deny_unknown_fields` refuses; the path names the key.
            ApiError::unprocessable(format!("`{path}` is not a field of this body"))
        } else {
            ApiError::unprocessable(format!("`{path}` has the wrong type"))
        }
    })?;
    de.end().map_err(|err| malformed(&err))?;
    Ok(value)
}

fn malformed(err: &serde_json::Error) -> ApiError {
    ApiError::bad_request(format!(
        "malformed JSON at line {}, column {}",
        err.line(),
        err.column()
    ))
}

/// The todo id of the path: 400 when it is not a UUID.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TodoId(pub Uuid);

impl<S: Send + Sync> FromRequestParts<S> for TodoId {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Path(id) = Path::<Uuid>::from_request_parts(parts, state)
            .await
            .map_err(|_| ApiError::bad_request("the todo id must be a UUID"))?;
        Ok(TodoId(id))
    }
}

/// `?completed=true|false&limit=N&offset=N` as a [`ListFilter`] (limit capped at
/// [`ListFilter::MAX_LIMIT`]): 400 when a value cannot be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListQuery(pub ListFilter);

#[derive(Deserialize)]
struct ListParams {
    completed: Option<bool>,
    limit: Option<u32>,
    offset: Option<u64>,
}

impl<S: Send + Sync> FromRequestParts<S> for ListQuery {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Query(p) = Query::<ListParams>::from_request_parts(parts, state)
            .await
            .map_err(|_| {
                ApiError::bad_request(
                    "invalid query: `completed` is true or false, \
                     `limit` and `offset` are non-negative integers",
                )
            })?;
        Ok(ListQuery(ListFilter::new(p.completed, p.limit, p.offset)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::todo::{NewTodo, TodoChanges};

    #[test]
    fn json_errors_name_the_field_not_the_value() {
        let err = parse_json::<TodoChanges>(br#"{"completed": "secret-value"}"#).unwrap_err();
        assert_eq!(err.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(err.message(), "`completed` has the wrong type");
        let err = parse_json::<NewTodo>(br#"{"title": "x", "colour": "red"}"#).unwrap_err();
        assert_eq!(err.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(err.message(), "`colour` is not a field of this body");
        let err = parse_json::<NewTodo>(br#"{"title": "#).unwrap_err();
        assert_eq!(err.status(), StatusCode::BAD_REQUEST);
        let err = parse_json::<NewTodo>(br#"{"title": "a"} trailing"#).unwrap_err();
        assert_eq!(err.status(), StatusCode::BAD_REQUEST);
    }

    #[test]
    fn json_content_types() {
        let mut headers = HeaderMap::new();
        assert!(!has_json_content_type(&headers));
        headers.insert(
            CONTENT_TYPE,
            "Application/JSON; charset=utf-8".parse().unwrap(),
        );
        assert!(has_json_content_type(&headers));
        headers.insert(
            CONTENT_TYPE,
            "application/merge-patch+json".parse().unwrap(),
        );
        assert!(has_json_content_type(&headers));
        headers.insert(CONTENT_TYPE, "text/plain".parse().unwrap());
        assert!(!has_json_content_type(&headers));
    }
}
