//! The label Lambda function: S3 `ObjectCreated` events in, [`snaplabel_pipeline::LabelHandler`]
//! does the work. A returned error makes Lambda deliver the event again (only when a result
//! document could not be written at all). Configuration: `SNAPLABEL_*` variables (see
//! `snaplabel_core::config::Settings`).

use aws_lambda_events::event::s3::S3Event;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use snaplabel_pipeline::{aws, telemetry, wiring};
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init(true);
    let settings = wiring::settings_from_env()?;
    let sdk = aws::load_sdk_config().await;
    // Loaded once per container and reused by every invocation.
    let handler = Arc::new(wiring::label_handler(&sdk, &settings)?);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<S3Event>| {
        let handler = handler.clone();
        async move {
            handler
                .handle_event(&event.payload)
                .await
                .into_result()
                .map(|_| ())
                .map_err(Error::from)
        }
    }))
    .await
}
