//! The presign Lambda function: the presign API's router ([`snaplabel_pipeline::http`]) served by
//! `lambda_http`, which turns Function URL, HTTP API, REST API and ALB events into requests and the
//! router's answers back into events. Configuration: `SNAPLABEL_*` variables (see
//! `snaplabel_core::config::Settings`).

use lambda_http::Error;
use snaplabel_pipeline::{aws, http, telemetry, wiring};
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init(true);
    let settings = wiring::settings_from_env()?;
    let sdk = aws::load_sdk_config().await;
    let api = Arc::new(wiring::api_handler(&sdk, settings)?);
    lambda_http::run(http::api_router(api)).await
}
