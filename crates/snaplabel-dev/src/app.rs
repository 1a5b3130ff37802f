//! The app port as one axum router: the presign API (the same routes and layers the Lambda
//! function serves), `/config.json`, the token keys, the SPA, and the awsJson services (Cognito
//! Identity, Rekognition) on `POST /`.
//!
//! Layers, outermost first: the Host allow-list (DNS rebinding), a request id, the security
//! headers CloudFront adds in AWS (CSP, nosniff, frame denial), and for the non-API routes CORS
//! for the Trunk dev server, a body size limit and a time limit.

use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use snaplabel_localaws::cognito::CognitoService;
use snaplabel_localaws::guard::{AllowedHosts, allow_hosts};
use snaplabel_localaws::rekognition::{self, RekognitionService};
use snaplabel_localaws::{Credentials, aws_json};
use snaplabel_pipeline::ApiHandler;
use snaplabel_pipeline::http::{api_routes, cors, json, preflight_no_content, with_request_id};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tower::ServiceExt;
use tower_http::services::ServeDir;
use tower_http::set_header::SetResponseHeaderLayer;

/// A request to the non-API routes (labeling included) may take this long.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);

pub struct App {
    pub api: Arc<ApiHandler>,
    pub rekognition: Arc<RekognitionService>,
    pub cognito: Arc<CognitoService>,
    pub credentials: Credentials,
    pub region: String,
    /// Labelings the local Rekognition runs at once.
    pub labeling_limit: usize,
    pub static_dir: Option<PathBuf>,
    pub config_json: snaplabel_core::api::BrowserConfig,
    pub pending: Arc<dyn Fn() -> usize + Send + Sync>,
    /// The app's Content-Security-Policy, as CloudFront sends it in AWS.
    pub csp: HeaderValue,
    /// A host name besides the loopback ones that requests may name.
    pub public_host: Option<String>,
}

#[derive(Clone)]
struct Site {
    cognito: Arc<CognitoService>,
    static_dir: Option<PathBuf>,
    config_json: Arc<String>,
    pending: Arc<dyn Fn() -> usize + Send + Sync>,
}

pub fn router(app: App) -> Router {
    let settings = app.api.config().clone();
    let site = Site {
        cognito: app.cognito.clone(),
        static_dir: app.static_dir.clone(),
        config_json: Arc::new(serde_json::to_string(&app.config_json).unwrap_or_default()),
        pending: app.pending.clone(),
    };
    let aws = aws_json::post_route(
        app.credentials.clone(),
        app.region.clone(),
        Some(app.cognito.clone()),
        Some(app.rekognition.clone()),
        app.labeling_limit,
    );
    // Handlers get the site through closures: `POST /` (the awsJson services) and `GET /` (the
    // app) share one route, and the former's router carries its own state.
    let with = |handler: fn(Site, Request) -> Handled| {
        let site = site.clone();
        move |request: Request| handler(site.clone(), request)
    };
    let site_routes = Router::new()
        .route("/", aws.get(with(spa)))
        .route("/config.json", get(with(config_json)))
        .route("/.well-known/jwks_uri", get(with(jwks)))
        .route(
            "/.well-known/openid-configuration",
            get(with(openid_configuration)),
        )
        .route("/healthz", get(with(healthz)))
        .fallback(with(spa))
        .layer(tower_http::limit::RequestBodyLimitLayer::new(
            rekognition::MAX_REQUEST_BYTES,
        ))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            REQUEST_TIMEOUT,
        ))
        // A page served by `trunk serve` calls the identity service and reads config.json.
        .layer(cors(
            &settings,
            &[Method::GET, Method::HEAD, Method::POST, Method::OPTIONS],
            &[
                header::CONTENT_TYPE,
                header::AUTHORIZATION,
                HeaderName::from_static("x-amz-target"),
                HeaderName::from_static("x-amz-user-agent"),
                HeaderName::from_static("x-amz-date"),
            ],
        ))
        .layer(axum::middleware::from_fn(preflight_no_content));
    let hosts = AllowedHosts::loopback_and(app.public_host.clone());
    Router::new()
        .merge(api_routes(app.api.clone()))
        .merge(site_routes)
        .layer(SetResponseHeaderLayer::overriding(
            header::CONTENT_SECURITY_POLICY,
            app.csp,
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("DENY"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::REFERRER_POLICY,
            HeaderValue::from_static("strict-origin-when-cross-origin"),
        ))
        .layer(axum::middleware::from_fn(with_request_id))
        .layer(axum::middleware::from_fn_with_state(hosts, allow_hosts))
}

type Handled = std::pin::Pin<Box<dyn std::future::Future<Output = Response> + Send>>;

fn config_json(site: Site, _: Request) -> Handled {
    Box::pin(async move {
        let mut response = (
            [(header::CONTENT_TYPE, "application/json")],
            site.config_json.to_string(),
        )
            .into_response();
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        response
    })
}

fn jwks(site: Site, _: Request) -> Handled {
    Box::pin(async move {
        let mut response = (
            [(header::CONTENT_TYPE, "application/json")],
            site.cognito.jwks_json(),
        )
            .into_response();
        response.headers_mut().insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("max-age=3600"),
        );
        response
    })
}

fn openid_configuration(site: Site, _: Request) -> Handled {
    Box::pin(async move {
        (
            [(header::CONTENT_TYPE, "application/json")],
            site.cognito.openid_configuration_json(),
        )
            .into_response()
    })
}

fn healthz(site: Site, _: Request) -> Handled {
    Box::pin(async move {
        json(
            StatusCode::OK,
            &serde_json::json!({"status": "ok", "pending": (site.pending)()}),
        )
    })
}

/// Files of the built SPA (tower-http's `ServeDir`: content types, `HEAD`, no path escapes);
/// paths without a file fall back to `index.html` (client-side routes). Until the app is built, a
/// page saying how to drive the stack.
fn spa(site: Site, request: Request) -> Handled {
    Box::pin(serve_spa(site, request))
}

async fn serve_spa(site: Site, request: Request) -> Response {
    if !matches!(*request.method(), Method::GET | Method::HEAD) {
        return (StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n").into_response();
    }
    let Some(dir) = site
        .static_dir
        .as_ref()
        .filter(|d| d.join("index.html").is_file())
    else {
        return (
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            PLACEHOLDER,
        )
            .into_response();
    };
    let files =
        ServeDir::new(dir).fallback(tower_http::services::ServeFile::new(dir.join("index.html")));
    match files.oneshot(request).await {
        Ok(response) => response.map(Body::new),
        Err(never) => match never {},
    }
}

const PLACEHOLDER: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>snaplabel dev</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:46rem;margin:3rem auto;padding:0 1rem}code,pre{background:#f3f3f3;padding:.1rem .3rem;border-radius:4px}pre{padding:1rem;overflow:auto}</style></head>
<body><h1>snaplabel dev is running</h1>
<p>The browser app is not built yet, but the whole pipeline is up: the presign API at <code>/api/uploads</code>,
S3 with bucket notifications, the label queue, and local Cognito Identity and Rekognition endpoints.</p>
<p>Drive it with curl (see the README): get a guest identity and its token, ask for an upload URL, PUT the photo, poll the result.</p>
<pre>curl -s -X POST localhost:8080/ -H 'X-Amz-Target: AWSCognitoIdentityService.GetId' \
  -H 'Content-Type: application/x-amz-json-1.1' -d '{"IdentityPoolId":"…see /config.json…"}'</pre>
<p><a href="/config.json">/config.json</a> lists the endpoints and limits.</p></body></html>
"#;
