//! The app port: the presign API, `/config.json`, the SPA, and the awsJson services (Cognito
//! Identity, Rekognition) told apart by `X-Amz-Target`.

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use snaplabel_localaws::cognito::{CognitoService, is_cognito_target};
use snaplabel_localaws::rekognition::RekognitionService;
use snaplabel_localaws::server::{Body, ServerHandle, full, serve};
use snaplabel_pipeline::ApiHandler;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use tokio::net::TcpListener;

pub struct App {
    pub api: Arc<ApiHandler>,
    pub rekognition: Arc<RekognitionService>,
    pub cognito: Arc<CognitoService>,
    pub static_dir: Option<PathBuf>,
    pub config_json: snaplabel_core::api::BrowserConfig,
    pub pending: Arc<dyn Fn() -> usize + Send + Sync>,
    /// The app's Content-Security-Policy, as CloudFront sends it in AWS.
    pub csp: HeaderValue,
}

pub fn start(listener: TcpListener, app: App) -> std::io::Result<ServerHandle> {
    let app = Arc::new(app);
    serve(listener, move |req| {
        let app = app.clone();
        async move { app.handle(req).await }
    })
}

fn text(status: StatusCode, content_type: &'static str, body: impl Into<Bytes>) -> Response<Body> {
    let mut r = Response::new(full(body.into()));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

impl App {
    /// The presign API answers CORS itself; everything else on this port (the awsJson services
    /// a page served by `trunk serve` calls cross-origin, config.json) gets it here.
    async fn handle(&self, req: Request<Incoming>) -> Response<Body> {
        let path = req.uri().path();
        if path == "/api" || path.starts_with("/api/") {
            return self.api(req).await;
        }
        let origin = req
            .headers()
            .get(header::ORIGIN)
            .and_then(|o| o.to_str().ok())
            .map(str::to_string);
        let mut response = if req.method() == Method::OPTIONS {
            text(StatusCode::NO_CONTENT, "text/plain", "")
        } else {
            self.route(req).await
        };
        snaplabel_pipeline::api::write_cors(
            response.headers_mut(),
            origin
                .as_deref()
                .and_then(|o| self.api.config().cors_origin(o)),
            "GET, HEAD, POST, OPTIONS",
            "content-type, x-amz-target, x-amz-user-agent, x-amz-date, authorization",
        );
        response
    }

    async fn route(&self, req: Request<Incoming>) -> Response<Body> {
        let path = req.uri().path().to_string();
        let target = req
            .headers()
            .get("x-amz-target")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        if let Some(target) = target.filter(|_| req.method() == Method::POST) {
            if is_cognito_target(&target) {
                return match Limited::new(req.into_body(), 64 * 1024).collect().await {
                    Ok(body) => self.cognito.respond(&target, &body.to_bytes()),
                    Err(_) => text(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        "text/plain",
                        "request too large",
                    ),
                };
            }
            return self.rekognition.handle(req).await;
        }
        match path.as_str() {
            "/config.json" => {
                let mut r = text(
                    StatusCode::OK,
                    "application/json",
                    serde_json::to_string(&self.config_json).unwrap_or_default(),
                );
                r.headers_mut()
                    .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
                r
            }
            "/.well-known/jwks_uri" => {
                let mut r = text(StatusCode::OK, "application/json", self.cognito.jwks_json());
                r.headers_mut().insert(
                    header::CACHE_CONTROL,
                    HeaderValue::from_static("max-age=3600"),
                );
                r
            }
            "/.well-known/openid-configuration" => text(
                StatusCode::OK,
                "application/json",
                self.cognito.openid_configuration_json(),
            ),
            "/healthz" => text(
                StatusCode::OK,
                "application/json",
                serde_json::json!({"status": "ok", "pending": (self.pending)()}).to_string(),
            ),
            _ if req.method() == Method::GET || req.method() == Method::HEAD => {
                self.static_file(&path).await
            }
            _ => text(
                StatusCode::METHOD_NOT_ALLOWED,
                "text/plain",
                "method not allowed",
            ),
        }
    }

    async fn api(&self, req: Request<Incoming>) -> Response<Body> {
        let (parts, body) = req.into_parts();
        let bytes = match Limited::new(body, snaplabel_pipeline::api::MAX_REQUEST_BYTES + 1)
            .collect()
            .await
        {
            Ok(b) => b.to_bytes(),
            Err(_) => Bytes::from(vec![b' '; snaplabel_pipeline::api::MAX_REQUEST_BYTES + 1]), // reported as too big by the handler
        };
        let response = self.api.handle(Request::from_parts(parts, bytes)).await;
        response.map(full)
    }

    /// Files of the built SPA with the security headers CloudFront adds in AWS; unknown paths
    /// fall back to `index.html` (client-side routes).
    async fn static_file(&self, path: &str) -> Response<Body> {
        let mut response = self.spa_file(path).await;
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_SECURITY_POLICY, self.csp.clone());
        headers.insert(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
        headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
        headers.insert(
            header::REFERRER_POLICY,
            HeaderValue::from_static("strict-origin-when-cross-origin"),
        );
        response
    }

    async fn spa_file(&self, path: &str) -> Response<Body> {
        let Some(dir) = self
            .static_dir
            .as_ref()
            .filter(|d| d.join("index.html").exists())
        else {
            return text(StatusCode::OK, "text/html; charset=utf-8", PLACEHOLDER);
        };
        let relative = Path::new(path.trim_start_matches('/'));
        if relative
            .components()
            .any(|c| !matches!(c, Component::Normal(_)))
            && !path.ends_with('/')
        {
            return text(StatusCode::NOT_FOUND, "text/plain", "not found");
        }
        let mut file = dir.join(relative);
        if path == "/" || !file.is_file() {
            file = dir.join("index.html");
        }
        match tokio::fs::read(&file).await {
            Ok(bytes) => text(StatusCode::OK, content_type(&file), bytes),
            Err(_) => text(StatusCode::NOT_FOUND, "text/plain", "not found"),
        }
    }
}

fn content_type(path: &Path) -> &'static str {
    match path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or_default()
    {
        "html" => "text/html; charset=utf-8",
        "js" => "text/javascript",
        "wasm" => "application/wasm",
        "css" => "text/css",
        "json" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        _ => "application/octet-stream",
    }
}

const PLACEHOLDER: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>snaplabel dev</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:46rem;margin:3rem auto;padding:0 1rem}code,pre{background:#f3f3f3;padding:.1rem .3rem;border-radius:4px}pre{padding:1rem;overflow:auto}</style></head>
<body><h1>snaplabel dev is running</h1>
<p>The browser app is not built yet, but the whole pipeline is up: the presign API at <code>/api/uploads</code>,
S3 with bucket notifications, the label queue, and local Cognito Identity and Rekognition endpoints.</p>
<p>Drive it with curl (see the README): get a guest identity, ask for an upload URL, PUT the photo, poll the result.</p>
<pre>curl -s -X POST localhost:8080/ -H 'X-Amz-Target: AWSCognitoIdentityService.GetId' \
  -H 'Content-Type: application/x-amz-json-1.1' -d '{"IdentityPoolId":"…see /config.json…"}'</pre>
<p><a href="/config.json">/config.json</a> lists the endpoints and limits.</p></body></html>
"#;
