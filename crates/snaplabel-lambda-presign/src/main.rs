//! The presign Lambda function: `lambda_http` events (Function URL, HTTP API, REST API, ALB) in,
//! [`snaplabel_pipeline::ApiHandler`] does the work. Configuration: `SNAPLABEL_*` variables (see
//! `snaplabel_core::config`).

use lambda_http::{Error, Request, service_fn};
use snaplabel_lambda_presign::{to_api_request, to_lambda_response};
use snaplabel_pipeline::{aws, telemetry, wiring};
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init(true);
    let config = wiring::config_from_env()?;
    let sdk = aws::load_sdk_config().await;
    let handler = Arc::new(wiring::api_handler(
        &sdk,
        &aws::Endpoints::from_env(),
        config,
    )?);
    lambda_http::run(service_fn(move |request: Request| {
        let handler = handler.clone();
        async move {
            Ok::<_, Error>(to_lambda_response(
                handler.handle(to_api_request(request)).await,
            ))
        }
    }))
    .await
}
