//! Logging set-up shared by the Lambda functions and the CLI.

use tracing_subscriber::EnvFilter;

/// JSON lines for CloudWatch (one object per event, fields flattened, no ANSI colours), or
/// compact human-readable lines for a terminal. `RUST_LOG` overrides the default `info` level.
pub fn init(json: bool) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        EnvFilter::new("info,aws_config=warn,aws_smithy_runtime=warn,hyper=warn")
    });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let result = if json {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .with_ansi(false)
            .without_time()
            .try_init()
    } else {
        builder.compact().with_target(false).try_init()
    };
    // A second call (tests, embedding) keeps the first subscriber.
    let _ = result;
}
