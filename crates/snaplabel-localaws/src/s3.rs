//! An S3 endpoint over a folder: s3s-fs behind s3s's SigV4 verification, as an axum router with
//! the protections AWS has and a local port needs.
//!
//! Buckets are sub-folders of the root. Objects are plain files, so a person can look at what was
//! uploaded. Every request except a CORS preflight must be signed with the configured key pair
//! (presigned URLs included); a tampered, expired or differently-typed request gets 403. Beyond
//! what s3s checks, and as S3 does:
//! - `x-amz-meta-*` headers must be signed: a presigned URL cannot carry metadata its signer did
//!   not choose (403 `AccessDenied`, "headers present in the request which were not signed");
//! - browser form uploads (POST Object) are refused: a page on any site could otherwise post a
//!   file with a policy signed by the well-known local keys;
//! - requests must name a loopback host ([`crate::guard`]).

use crate::Credentials;
use crate::guard::{AllowedHosts, allow_hosts};
use crate::local_fs::{Listener, LocalFs};
use crate::server::{ServerHandle, serve};
use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use s3s::auth::SimpleAuth;
use s3s::service::{S3Service, S3ServiceBuilder};
use std::path::PathBuf;
use std::time::Duration;
use tokio::net::TcpListener;
use tower_http::cors::{AllowHeaders, AllowOrigin, CorsLayer};

/// Configuration of a local S3 endpoint.
#[derive(Debug, Clone)]
pub struct LocalS3Config {
    /// Folder holding one sub-folder per bucket.
    pub root: PathBuf,
    pub credentials: Credentials,
    /// Buckets created at start-up if missing.
    pub buckets: Vec<String>,
    /// Browser origins allowed by CORS (`*` for any).
    pub cors_origins: Vec<String>,
    /// A host name besides the loopback ones that requests may name.
    pub public_host: Option<String>,
}

/// Builds the s3s service (without serving it). With a `listener`, every object creation is
/// reported to it (bucket notifications).
pub fn build_service(
    config: &LocalS3Config,
    listener: Option<Listener>,
) -> std::io::Result<S3Service> {
    for bucket in &config.buckets {
        std::fs::create_dir_all(config.root.join(bucket))?;
    }
    let mut builder = S3ServiceBuilder::new(LocalFs::new(&config.root, listener)?);
    builder.set_auth(SimpleAuth::from_single(
        config.credentials.access_key.clone(),
        config.credentials.secret_key.clone(),
    ));
    Ok(builder.build())
}

/// The endpoint as a router: s3s behind the guards and CORS.
pub fn router(config: &LocalS3Config, listener: Option<Listener>) -> std::io::Result<Router> {
    let service = build_service(config, listener)?;
    let s3 = move |request: Request| {
        let service = service.clone();
        async move {
            match service.call(request.map(s3s::Body::http_body_unsync)).await {
                Ok(response) => response.map(Body::new),
                Err(err) => {
                    tracing::error!(error = ?err, "s3 request failed");
                    (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
                }
            }
        }
    };
    let hosts = AllowedHosts::loopback_and(config.public_host.clone());
    Ok(Router::new()
        .fallback(s3)
        .layer(axum::middleware::from_fn(refuse_unsigned_metadata))
        .layer(axum::middleware::from_fn(refuse_form_uploads))
        .layer(cors(&config.cors_origins))
        .layer(axum::middleware::from_fn_with_state(hosts, allow_hosts)))
}

/// Starts the endpoint on `listener`.
pub fn start(config: LocalS3Config, listener: TcpListener) -> std::io::Result<ServerHandle> {
    start_notifying(config, listener, None)
}

/// Starts the endpoint, reporting object creations to `notifications`.
pub fn start_notifying(
    config: LocalS3Config,
    listener: TcpListener,
    notifications: Option<Listener>,
) -> std::io::Result<ServerHandle> {
    serve(listener, router(&config, notifications)?)
}

/// CORS for the app's origins: presigned uploads carry `Content-Type`, `If-None-Match` and
/// `x-amz-meta-*` headers chosen by the signer; the page reads `ETag`.
fn cors(origins: &[String]) -> CorsLayer {
    let allow = if origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(
            origins
                .iter()
                .filter_map(|o| HeaderValue::from_str(o).ok())
                .collect::<Vec<_>>(),
        )
    };
    CorsLayer::new()
        .allow_origin(allow)
        .allow_methods([
            Method::GET,
            Method::HEAD,
            Method::PUT,
            Method::POST,
            Method::DELETE,
        ])
        .allow_headers(AllowHeaders::mirror_request())
        .expose_headers([
            header::ETAG,
            HeaderName::from_static("x-amz-request-id"),
            HeaderName::from_static("x-amz-meta-status"),
        ])
        .max_age(Duration::from_secs(600))
}

/// S3's error document.
fn s3_error(status: StatusCode, code: &str, message: &str) -> Response {
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{message}</Message></Error>"
    );
    let mut response = (status, body).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/xml"),
    );
    response
}

/// POST Object (a browser form upload with a signed policy) is how a foreign page could write
/// into the bucket; the app never uses it.
async fn refuse_form_uploads(request: Request, next: Next) -> Response {
    let is_form = request.method() == Method::POST
        && request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|t| t.to_ascii_lowercase().starts_with("multipart/form-data"));
    if is_form {
        return s3_error(
            StatusCode::FORBIDDEN,
            "AccessDenied",
            "Browser form uploads (POST Object) are not accepted by this endpoint.",
        );
    }
    next.run(request).await
}

/// The headers a request says it signed: `X-Amz-SignedHeaders` of a presigned URL, or the
/// `SignedHeaders` of an `Authorization` header.
fn signed_headers(request: &Request) -> Option<Vec<String>> {
    let from_query = request.uri().query().and_then(|q| {
        q.split('&').find_map(|pair| {
            let (name, value) = pair.split_once('=')?;
            name.eq_ignore_ascii_case("X-Amz-SignedHeaders").then(|| {
                percent_encoding::percent_decode_str(value)
                    .decode_utf8_lossy()
                    .into_owned()
            })
        })
    });
    let from_header = || {
        let auth = request
            .headers()
            .get(header::AUTHORIZATION)?
            .to_str()
            .ok()?;
        let part = auth
            .split(',')
            .find_map(|p| p.trim().strip_prefix("SignedHeaders="))?;
        Some(part.to_string())
    };
    from_query.or_else(from_header).map(|list| {
        list.split(';')
            .map(|h| h.trim().to_ascii_lowercase())
            .collect()
    })
}

/// Refuses signed requests carrying `x-amz-meta-*` headers that were not signed.
async fn refuse_unsigned_metadata(request: Request, next: Next) -> Response {
    if let Some(signed) = signed_headers(&request) {
        let unsigned = request
            .headers()
            .keys()
            .map(|name| name.as_str())
            .find(|name| name.starts_with("x-amz-meta-") && !signed.iter().any(|s| s == name));
        if let Some(name) = unsigned {
            tracing::warn!(
                header = name,
                "refused a request with an unsigned metadata header"
            );
            return s3_error(
                StatusCode::FORBIDDEN,
                "AccessDenied",
                "There were headers present in the request which were not signed",
            );
        }
    }
    next.run(request).await
}
