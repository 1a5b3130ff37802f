//! The presign API as one axum [`Router`], with its protections as tower layers. The Lambda
//! function serves it with `lambda_http::run` (Function URL, HTTP API, REST API and ALB events),
//! `snaplabel dev` merges it into its own router and serves it with `axum::serve`: one routing,
//! one CORS, one set of limits for both.
//!
//! Layers, outermost first: a request id (also on every answer, in `x-request-id`), CORS for the
//! configured origins (tower-http; preflights answered here), a time limit for the whole request,
//! a time limit for reading the body, and a body size limit.

use crate::api::{ApiHandler, MAX_REQUEST_BYTES, Refusal};
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use bytes::Bytes;
use snaplabel_core::config::Settings;
use snaplabel_core::error::ApiError;
use snaplabel_core::{ErrorBody, ErrorCode};
use std::sync::Arc;
use std::time::Duration;
use tower_http::cors::{AllowOrigin, CorsLayer};

/// The response header carrying the request id that failures are logged under.
pub const REQUEST_ID_HEADER: &str = "x-request-id";
/// A whole API request (reading it, checking the token, listing, signing) may take this long.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);
/// Reading a request body may take this long (a 16 KB JSON document takes milliseconds).
pub const BODY_TIMEOUT: Duration = Duration::from_secs(10);

/// The id of the request being served, set by [`with_request_id`] (a router without that layer
/// still gets one per request).
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for RequestId {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _state: &S,
    ) -> Result<Self, Self::Rejection> {
        Ok(parts
            .extensions
            .get::<RequestId>()
            .cloned()
            .unwrap_or_else(|| RequestId(ulid::Ulid::new().to_string())))
    }
}

/// Gives every request an id (a ULID) for its log lines and its answer's `x-request-id`. A
/// client's own `x-request-id` is ignored: ids name server log lines.
pub async fn with_request_id(mut request: Request, next: Next) -> Response {
    let id = ulid::Ulid::new().to_string();
    request.extensions_mut().insert(RequestId(id.clone()));
    let mut response = next.run(request).await;
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
    response
}

/// A JSON answer that must not be cached.
pub fn json<T: serde::Serialize>(status: StatusCode, body: &T) -> Response {
    let mut response = (status, Json(body)).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// `{"error": {"code", "message", "request_id"}}` with the code's status.
pub fn error_response(error: ErrorBody) -> Response {
    let status =
        StatusCode::from_u16(error.code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    json(status, &ApiError { error })
}

impl Refusal {
    fn into_response_for(self, request_id: &RequestId) -> Response {
        let mut response = error_response(self.error.with_request_id(request_id.0.clone()));
        if let Some(secs) = self.retry_after_secs {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

/// A handler's outcome as the answer: `status` with the JSON body, or the refusal.
fn answer<T: serde::Serialize>(
    outcome: Result<T, Refusal>,
    status: StatusCode,
    id: &RequestId,
) -> Response {
    match outcome {
        Ok(body) => json(status, &body),
        Err(refusal) => refusal.into_response_for(id),
    }
}

fn authorization(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
}

async fn create_upload(
    State(api): State<Arc<ApiHandler>>,
    id: RequestId,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Response {
    let body = match read_body(body) {
        Ok(body) => body,
        Err(refusal) => return refusal.into_response_for(&id),
    };
    let created = api
        .create_upload(authorization(&headers), &body, &id.0)
        .await;
    answer(created, StatusCode::CREATED, &id)
}

async fn list_uploads(
    State(api): State<Arc<ApiHandler>>,
    id: RequestId,
    headers: HeaderMap,
    axum::extract::RawQuery(query): axum::extract::RawQuery,
) -> Response {
    let query = query.unwrap_or_default();
    let history = api
        .list_uploads(authorization(&headers), &query, &id.0)
        .await;
    answer(history, StatusCode::OK, &id)
}

/// Reads a small JSON body, or refuses it with the reason.
fn read_body(
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<Bytes, Refusal> {
    body.map_err(|rejection| {
        Refusal::from(ErrorBody::new(
            ErrorCode::MalformedRequest,
            format!("the request body could not be read ({rejection}); it may be at most {MAX_REQUEST_BYTES} bytes"),
        ))
    })
}

async fn search(
    State(api): State<Arc<ApiHandler>>,
    id: RequestId,
    headers: HeaderMap,
    axum::extract::RawQuery(query): axum::extract::RawQuery,
) -> Response {
    let query = query.unwrap_or_default();
    let found = api.search(authorization(&headers), &query, &id.0).await;
    answer(found, StatusCode::OK, &id)
}

async fn gallery_labels(
    State(api): State<Arc<ApiHandler>>,
    id: RequestId,
    headers: HeaderMap,
) -> Response {
    let labels = api.gallery_labels(authorization(&headers), &id.0).await;
    answer(labels, StatusCode::OK, &id)
}

async fn delete_upload(
    State(api): State<Arc<ApiHandler>>,
    id: RequestId,
    headers: HeaderMap,
    axum::extract::Path(path): axum::extract::Path<Vec<(String, String)>>,
) -> Response {
    let upload = path
        .iter()
        .find(|(name, _)| name == "id")
        .map(|(_, value)| value.as_str())
        .unwrap_or_default();
    match api
        .delete_upload(authorization(&headers), upload, &id.0)
        .await
    {
        Ok(()) => {
            let mut response = StatusCode::NO_CONTENT.into_response();
            response
                .headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        }
        Err(refusal) => refusal.into_response_for(&id),
    }
}

async fn create_export(
    State(api): State<Arc<ApiHandler>>,
    id: RequestId,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Response {
    let body = match read_body(body) {
        Ok(body) => body,
        Err(refusal) => return refusal.into_response_for(&id),
    };
    let export = api.export(authorization(&headers), &body, &id.0).await;
    answer(export, StatusCode::CREATED, &id)
}

/// A handler answering `405`, naming the methods the path allows.
fn method_not_allowed(
    allowed: &'static str,
) -> impl Fn(RequestId, Method) -> futures::future::BoxFuture<'static, Response>
+ Clone
+ Send
+ Sync
+ 'static {
    move |id: RequestId, method: Method| {
        Box::pin(async move {
            Refusal::from(ErrorBody::new(
                ErrorCode::MethodNotAllowed,
                format!("{method} is not allowed here; use {allowed}"),
            ))
            .into_response_for(&id)
        })
    }
}

/// JSON `not_found` for every path the API does not serve.
pub async fn not_found(id: RequestId, uri: axum::http::Uri) -> Response {
    Refusal::from(ErrorBody::new(
        ErrorCode::NotFound,
        format!("no such endpoint: {}", uri.path()),
    ))
    .into_response_for(&id)
}

/// Answers a CORS preflight that the CORS layer granted with `204 No Content` (as S3 and API
/// Gateway do) rather than tower-http's `200` with an empty body.
pub async fn preflight_no_content(request: Request, next: Next) -> Response {
    let preflight = request.method() == Method::OPTIONS
        && request
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    let mut response = next.run(request).await;
    if preflight && response.status() == StatusCode::OK {
        *response.status_mut() = StatusCode::NO_CONTENT;
    }
    response
}

/// CORS for the configured origins (`*` for any), answering preflights for the API's methods
/// and headers; the browser may read `Retry-After` and the request id.
pub fn cors(settings: &Settings, methods: &[Method], headers: &[HeaderName]) -> CorsLayer {
    let origins: Vec<HeaderValue> = settings
        .allowed_origins
        .iter()
        .filter(|o| o.as_str() != "*")
        .filter_map(|o| HeaderValue::from_str(o).ok())
        .collect();
    let allow = if settings.allowed_origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(origins)
    };
    CorsLayer::new()
        .allow_origin(allow)
        .allow_methods(methods.to_vec())
        .allow_headers(headers.to_vec())
        .expose_headers([
            header::RETRY_AFTER,
            HeaderName::from_static(REQUEST_ID_HEADER),
        ])
        .max_age(Duration::from_secs(600))
}

/// The API's routes (`/api/uploads`, `/api/uploads/{id}`, `/api/search`, `/api/labels`,
/// `/api/exports`, each also under one leading segment such as an API Gateway stage) with their
/// layers, for merging into a bigger router (which adds [`with_request_id`]). Other `/api/…`
/// paths answer a JSON `not_found`.
pub fn api_routes(api: Arc<ApiHandler>) -> Router {
    let settings = api.config().clone();
    let routes: [(&str, axum::routing::MethodRouter<Arc<ApiHandler>>); 5] = [
        (
            "/api/uploads",
            post(create_upload)
                .get(list_uploads)
                .fallback(method_not_allowed("POST or GET")),
        ),
        (
            "/api/uploads/{id}",
            delete(delete_upload).fallback(method_not_allowed("DELETE")),
        ),
        (
            "/api/search",
            get(search).fallback(method_not_allowed("GET")),
        ),
        (
            "/api/labels",
            get(gallery_labels).fallback(method_not_allowed("GET")),
        ),
        (
            "/api/exports",
            post(create_export).fallback(method_not_allowed("POST")),
        ),
    ];
    let mut router = Router::new();
    for (path, route) in routes {
        router = router
            .route(path, route.clone())
            .route(&format!("/{{stage}}{path}"), route);
    }
    router
        .route("/api/{*rest}", axum::routing::any(not_found))
        .with_state(api)
        .layer(DefaultBodyLimit::max(MAX_REQUEST_BYTES))
        .layer(tower_http::timeout::RequestBodyTimeoutLayer::new(
            BODY_TIMEOUT,
        ))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            REQUEST_TIMEOUT,
        ))
        .layer(cors(
            &settings,
            &[Method::GET, Method::POST, Method::DELETE, Method::OPTIONS],
            &[header::AUTHORIZATION, header::CONTENT_TYPE],
        ))
        .layer(axum::middleware::from_fn(preflight_no_content))
}

/// The presign function's whole router: the API, and a JSON `not_found` for anything else.
pub fn api_router(api: Arc<ApiHandler>) -> Router {
    api_routes(api)
        .fallback(not_found)
        .layer(axum::middleware::from_fn(with_request_id))
}
