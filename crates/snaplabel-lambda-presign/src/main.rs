//! The presign Lambda function: `lambda_http` events (Function URL, HTTP API, REST API, ALB) in,
//! [`snaplabel_pipeline::ApiHandler`] does the work. Configuration: `SNAPLABEL_*` variables (see
//! `snaplabel_core::config`), plus `SNAPLABEL_IDENTITY_POOL_ID`.

use bytes::Bytes;
use lambda_http::{Body, Error, Request, Response, service_fn};
use snaplabel_pipeline::{aws, telemetry, wiring};
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init(true);
    let config = wiring::config_from_env()?;
    let sdk = aws::load_sdk_config().await;
    let handler = Arc::new(wiring::api_handler(&sdk, &aws::Endpoints::from_env(), config, wiring::identity_pool_from_env())?);
    lambda_http::run(service_fn(move |request: Request| {
        let handler = handler.clone();
        async move {
            let (parts, body) = request.into_parts();
            let request = http_request(parts, body);
            let response = handler.handle(request).await;
            let (parts, body) = response.into_parts();
            Ok::<_, Error>(Response::from_parts(parts, Body::from(body.to_vec())))
        }
    }))
    .await
}

fn http_request(parts: lambda_http::http::request::Parts, body: Body) -> lambda_http::http::Request<Bytes> {
    let bytes = match body {
        Body::Empty => Bytes::new(),
        Body::Text(text) => Bytes::from(text),
        Body::Binary(binary) => Bytes::from(binary),
        _ => Bytes::new(),
    };
    lambda_http::http::Request::from_parts(parts, bytes)
}
