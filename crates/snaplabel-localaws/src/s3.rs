//! An S3 endpoint over a folder: s3s-fs behind s3s's SigV4 verification, plus CORS.
//!
//! Buckets are sub-folders of the root. Objects are plain files, so a person can look at what was
//! uploaded. Every request except a CORS preflight must be signed with the configured key pair
//! (presigned URLs included); a tampered, expired or differently-typed request gets 403.

use crate::local_fs::{Listener, LocalFs};
use crate::server::{Body, ServerHandle, full, serve};
use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use s3s::auth::SimpleAuth;
use s3s::service::{S3Service, S3ServiceBuilder};
use std::path::PathBuf;
use std::sync::Arc;
use tokio::net::TcpListener;

/// Configuration of a local S3 endpoint.
#[derive(Debug, Clone)]
pub struct LocalS3Config {
    /// Folder holding one sub-folder per bucket.
    pub root: PathBuf,
    pub access_key: String,
    pub secret_key: String,
    /// Buckets created at start-up if missing.
    pub buckets: Vec<String>,
    /// Browser origins allowed by CORS (`*` for any).
    pub cors_origins: Vec<String>,
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
        config.access_key.clone(),
        config.secret_key.clone(),
    ));
    Ok(builder.build())
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
    let service = build_service(&config, notifications)?;
    let cors = Arc::new(Cors {
        origins: config.cors_origins.clone(),
    });
    serve(listener, move |req| {
        handle(service.clone(), cors.clone(), req)
    })
}

async fn handle(service: S3Service, cors: Arc<Cors>, req: Request<Incoming>) -> Response<Body> {
    let origin = req.headers().get(header::ORIGIN).cloned();
    let is_preflight = req.method() == Method::OPTIONS
        && req
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    let mut response = if is_preflight {
        let mut r = Response::new(full(Bytes::new()));
        *r.status_mut() = StatusCode::NO_CONTENT;
        r
    } else {
        match service.call(req.map(s3s::Body::from)).await {
            Ok(resp) => resp.map(|b| b.boxed_unsync()),
            Err(err) => {
                tracing::error!(error = ?err, "s3 request failed");
                let mut r = Response::new(full("internal error"));
                *r.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
                r
            }
        }
    };
    cors.apply(origin.as_ref(), &mut response);
    response
}

struct Cors {
    origins: Vec<String>,
}

impl Cors {
    fn apply(&self, origin: Option<&HeaderValue>, response: &mut Response<Body>) {
        let headers = response.headers_mut();
        headers.append(header::VARY, HeaderValue::from_static("Origin"));
        let Some(origin) = origin.and_then(|o| o.to_str().ok()) else {
            return;
        };
        // Echoes the origin even when `*` is allowed: browsers then also send credentials.
        if snaplabel_core::config::cors_origin(&self.origins, origin).is_none() {
            return;
        }
        let value = HeaderValue::from_str(origin).unwrap_or(HeaderValue::from_static("null"));
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, value);
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("GET, HEAD, PUT, POST, DELETE"),
        );
        // Presigned uploads carry Content-Type and x-amz-meta-* headers chosen by the signer.
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static("*"),
        );
        headers.insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static("ETag, x-amz-request-id, x-amz-meta-status"),
        );
        headers.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static("600"),
        );
    }
}
