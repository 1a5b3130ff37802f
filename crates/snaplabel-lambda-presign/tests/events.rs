//! The presign function's router answers the events AWS delivers: Function URL (payload 2.0)
//! and API Gateway REST (1.0, with its stage in the path), turned into requests by `lambda_http`
//! exactly as `lambda_http::run` does, against a real S3-protocol server.

use http_body_util::BodyExt;
use serde_json::{Value, json};
use snaplabel_core::config::Settings;
use snaplabel_localaws::s3;
use snaplabel_pipeline::identity::SharedAnonymous;
use snaplabel_pipeline::{ApiHandler, aws, http};
use std::sync::Arc;
use tower::ServiceExt;

const BUCKET: &str = "events-test";

async fn router() -> (
    axum::Router,
    snaplabel_localaws::ServerHandle,
    tempfile::TempDir,
) {
    let dir = tempfile::tempdir().unwrap();
    let server = s3::start(
        s3::LocalS3Config {
            root: dir.path().to_path_buf(),
            credentials: snaplabel_localaws::Credentials::new("AKIDEVENTS", "events-secret"),
            buckets: vec![BUCKET.into()],
            cors_origins: vec![],
            public_host: None,
        },
        snaplabel_localaws::server::bind_loopback(0).await.unwrap(),
    )
    .unwrap();
    let sdk = aws::static_sdk_config("AKIDEVENTS", "events-secret", "eu-west-1");
    let mut settings = Settings::new(BUCKET);
    settings.allowed_origins = vec!["https://app.example.com".into()];
    let store = Arc::new(snaplabel_pipeline::S3Store::new(
        aws::s3_client(&sdk, Some(&server.url())),
        BUCKET,
    ));
    let api = Arc::new(ApiHandler::new(store, Arc::new(SharedAnonymous), settings));
    (http::api_router(api), server, dir)
}

async fn call(router: &axum::Router, event: Value) -> (u16, axum::http::HeaderMap, Value) {
    let request = lambda_http::request::from_str(&event.to_string()).unwrap();
    let response = router.clone().oneshot(request).await.unwrap();
    let (parts, body) = response.into_parts();
    let bytes = body.collect().await.unwrap().to_bytes();
    (
        parts.status.as_u16(),
        parts.headers,
        serde_json::from_slice(&bytes).unwrap(),
    )
}

const CREATE: &str = r#"{"filename":"cat.jpg","content_type":"image/jpeg","size":10}"#;

/// A Lambda Function URL event, as AWS delivers it (payload format 2.0).
fn function_url_event(method: &str, path: &str, query: &str, body: &str, base64: bool) -> Value {
    json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": query,
        "headers": {"content-type": "application/json", "origin": "https://app.example.com", "host": "abc.lambda-url.eu-west-1.on.aws"},
        "requestContext": {
            "accountId": "anonymous", "apiId": "abc", "domainName": "abc.lambda-url.eu-west-1.on.aws", "domainPrefix": "abc",
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "203.0.113.9", "userAgent": "test"},
            "requestId": "r1", "routeKey": "$default", "stage": "$default", "time": "29/Nov/2026:05:00:00 +0000", "timeEpoch": 1795928400000u64
        },
        "body": body,
        "isBase64Encoded": base64
    })
}

#[tokio::test]
async fn function_url_events_reach_the_api_and_get_its_answers() {
    use base64::Engine;
    let (router, _s3, _dir) = router().await;
    for (body, base64) in [
        (CREATE.to_string(), false),
        (
            base64::engine::general_purpose::STANDARD.encode(CREATE),
            true,
        ),
    ] {
        let (status, headers, answer) = call(
            &router,
            function_url_event("POST", "/api/uploads", "", &body, base64),
        )
        .await;
        assert_eq!(status, 201, "{answer}");
        assert!(answer["upload"]["url"].as_str().unwrap().contains(BUCKET));
        assert_eq!(
            headers["access-control-allow-origin"],
            "https://app.example.com"
        );
        assert!(headers.contains_key("x-request-id"));
    }
    let (status, _, history) = call(
        &router,
        function_url_event("GET", "/api/uploads", "limit=5", "", false),
    )
    .await;
    assert_eq!(status, 200, "{history}");
    assert_eq!(history["uploads"].as_array().map(Vec::len), Some(0));
    let (status, _, answer) = call(
        &router,
        function_url_event("DELETE", "/api/uploads", "", "", false),
    )
    .await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (405, Some("method_not_allowed"))
    );
    let (status, _, answer) = call(
        &router,
        function_url_event("GET", "/elsewhere", "", "", false),
    )
    .await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (404, Some("not_found"))
    );
}

#[tokio::test]
async fn api_gateway_rest_events_with_their_stage_reach_the_api() {
    let (router, _s3, _dir) = router().await;
    let event = json!({
        "resource": "/{proxy+}",
        "path": "/api/uploads",
        "httpMethod": "POST",
        "headers": {"content-type": "application/json", "Host": "abc.execute-api.eu-west-1.amazonaws.com"},
        "multiValueHeaders": {"content-type": ["application/json"], "Host": ["abc.execute-api.eu-west-1.amazonaws.com"]},
        "queryStringParameters": null,
        "multiValueQueryStringParameters": null,
        "pathParameters": {"proxy": "api/uploads"},
        "stageVariables": null,
        "requestContext": {
            "resourcePath": "/{proxy+}", "httpMethod": "POST", "path": "/prod/api/uploads", "stage": "prod",
            "accountId": "123456789012", "apiId": "abc", "requestId": "r2", "protocol": "HTTP/1.1",
            "identity": {"sourceIp": "203.0.113.9", "userAgent": "test"}, "requestTimeEpoch": 1795928400000u64
        },
        "body": CREATE,
        "isBase64Encoded": false
    });
    let (status, _, answer) = call(&router, event).await;
    assert_eq!(status, 201, "{answer}");
}
