//! `snaplabel dev`: see the `snaplabel-dev` crate.

use anyhow::Context;
use clap::Args;
use snaplabel_core::config::LabelerKind;
use snaplabel_dev::{DevConfig, DevStack};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Args, Debug)]
pub struct DevArgs {
    /// Port of the app: the page, the presign API, config.json, local Cognito and Rekognition.
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    /// Port of the S3-compatible endpoint.
    #[arg(long, default_value_t = 9000)]
    pub s3_port: u16,
    /// Where uploads, results and guest identities are kept (survives restarts).
    #[arg(long, default_value = ".snaplabel")]
    pub data_dir: PathBuf,
    /// Inference engine of the embedded model.
    #[arg(long, default_value = "ort")]
    pub engine: String,
    /// Label with `local` (the embedded model) or `rekognition` (the SDK against the local endpoint).
    #[arg(long, default_value = "local")]
    pub labeler: LabelerKind,
    /// The built SPA to serve at / (default: ./dist when it exists).
    #[arg(long)]
    pub static_dir: Option<PathBuf>,
    #[arg(long, env = "SNAPLABEL_MODEL_DIR")]
    pub model_dir: Option<PathBuf>,
    /// Upload links one guest may get per hour (429 `rate_limited` beyond).
    #[arg(long, default_value_t = snaplabel_core::config::DEFAULT_UPLOADS_PER_HOUR)]
    pub uploads_per_hour: u32,
    /// A host name the stack is reached by besides 127.0.0.1 and localhost (a tunnel, say);
    /// requests naming any other host are refused (DNS rebinding).
    #[arg(long)]
    pub public_host: Option<String>,
    /// Where the API fetches the token keys (default: this stack's own); another URL simulates
    /// the issuer being down.
    #[arg(long, hide = true)]
    pub jwks_url: Option<String>,
    /// Seconds between re-scans for uploads without a result.
    #[arg(long, hide = true, default_value_t = 60)]
    pub rescan_secs: u64,
}

pub fn run(args: DevArgs) -> anyhow::Result<ExitCode> {
    snaplabel_pipeline::telemetry::init(false);
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async move {
        let mut config = DevConfig::new(args.data_dir.clone());
        config.port = args.port;
        config.s3_port = args.s3_port;
        config.labeler = args.labeler;
        config.static_dir = args.static_dir.or_else(|| Some(PathBuf::from("dist")));
        config.uploads_per_hour = args.uploads_per_hour;
        config.jwks_url = args.jwks_url;
        config.public_host = args.public_host;
        config.rescan_every = std::time::Duration::from_secs(args.rescan_secs.max(1));
        let mut model = snaplabel_pipeline::wiring::model_settings_from_env();
        if let Some(dir) = args.model_dir {
            model.dir = dir;
        }
        model.engine = args.engine;
        config.model = model;
        let stack = DevStack::start(config)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))
            .context("starting the local stack")?;
        eprintln!("\nsnaplabel dev is running — open {}/", stack.app_url);
        eprintln!(
            "  S3 endpoint  {} (bucket {})",
            stack.s3_url,
            snaplabel_dev::BUCKET
        );
        eprintln!(
            "  credentials  {} (secret in {}, made for this data folder)",
            stack.credentials.access_key,
            args.data_dir.join("credentials").display()
        );
        eprintln!("  data         {}", args.data_dir.display());
        eprintln!("  Ctrl-C stops it; uploads still queued are labeled at the next start\n");
        tokio::signal::ctrl_c().await?;
        eprintln!("stopping ({} upload(s) still queued)", stack.pending());
        stack.shutdown().await;
        Ok(ExitCode::SUCCESS)
    })
}
