//! Builds the handlers from configuration: the one place that knows which implementation backs
//! each trait. The Lambda `main`s and `snaplabel dev` both go through here.

use crate::aws::{self, Endpoints};
use crate::identity::{CognitoTokens, IdentityVerifier, SharedAnonymous};
use crate::jwks::JwksCache;
use crate::labeler::Labeler;
use crate::rekognition::RekognitionLabeler;
use crate::{ApiHandler, LabelHandler, LabelSettings, S3Store};
use aws_config::SdkConfig;
use snaplabel_core::config::{LabelerKind, PipelineConfig};
use std::sync::Arc;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

pub fn store(sdk: &SdkConfig, endpoints: &Endpoints, config: &PipelineConfig) -> Arc<S3Store> {
    Arc::new(S3Store::new(
        aws::s3_client(sdk, endpoints.s3.as_deref()),
        config.bucket.clone(),
    ))
}

/// Cognito guests proved by their OpenID tokens when a pool is configured; otherwise a single
/// shared owner, allowed only when identities are not required. The issuer's keys are fetched
/// now (in the background), so the first upload does not wait for them.
pub fn identity(config: &PipelineConfig) -> Result<Arc<dyn IdentityVerifier>, BoxError> {
    match &config.identity_pool_id {
        Some(pool) => {
            let owner_key = config.owner_key.clone().ok_or(
                "SNAPLABEL_OWNER_KEY (the secret key of owner segments, 32+ characters) is required with SNAPLABEL_IDENTITY_POOL_ID",
            )?;
            let keys = Arc::new(JwksCache::new(config.jwks_url())?);
            let prefetch = keys.clone();
            tokio::spawn(async move { prefetch.prefetch().await });
            Ok(Arc::new(CognitoTokens::new(
                pool.clone(),
                config.token_issuer.clone(),
                owner_key,
                keys,
            )))
        }
        None if config.require_identity => {
            Err("SNAPLABEL_REQUIRE_IDENTITY is set but SNAPLABEL_IDENTITY_POOL_ID is not".into())
        }
        None => Ok(Arc::new(SharedAnonymous)),
    }
}

/// The labeler `config.labeler` names. `local` builds the embedded model (loaded once, reused).
pub fn labeler(
    sdk: &SdkConfig,
    endpoints: &Endpoints,
    config: &PipelineConfig,
    local: &LocalModelOptions,
) -> Result<Arc<dyn Labeler>, BoxError> {
    let limits = snaplabel_imageio::Limits::from_config(config);
    match config.labeler {
        LabelerKind::Rekognition => Ok(Arc::new(RekognitionLabeler::new(
            aws::rekognition_client(sdk, endpoints.rekognition.as_deref()),
            limits,
        ))),
        LabelerKind::Local => local_labeler(config, local),
    }
}

/// Where the embedded model lives and which engine runs it.
#[derive(Debug, Clone, Default)]
pub struct LocalModelOptions {
    /// Folder with the model files; `None` for the default location.
    pub model_dir: Option<std::path::PathBuf>,
    /// `ort` or `tract`; `None` for the default.
    pub engine: Option<String>,
}

#[cfg(feature = "local")]
fn local_labeler(
    config: &PipelineConfig,
    local: &LocalModelOptions,
) -> Result<Arc<dyn Labeler>, BoxError> {
    Ok(Arc::new(crate::local::LocalLabeler::load(config, local)?))
}

#[cfg(not(feature = "local"))]
fn local_labeler(
    _config: &PipelineConfig,
    _local: &LocalModelOptions,
) -> Result<Arc<dyn Labeler>, BoxError> {
    Err(
        "this build has no embedded model (feature \"local\"); set SNAPLABEL_LABELER=rekognition"
            .into(),
    )
}

pub fn api_handler(
    sdk: &SdkConfig,
    endpoints: &Endpoints,
    config: PipelineConfig,
) -> Result<ApiHandler, BoxError> {
    let identity = identity(&config)?;
    Ok(ApiHandler::new(
        store(sdk, endpoints, &config),
        identity,
        config,
    ))
}

pub fn label_handler(
    sdk: &SdkConfig,
    endpoints: &Endpoints,
    config: &PipelineConfig,
    local: &LocalModelOptions,
) -> Result<LabelHandler, BoxError> {
    let labeler = labeler(sdk, endpoints, config, local)?;
    Ok(LabelHandler::new(
        store(sdk, endpoints, config),
        labeler,
        LabelSettings::from_config(config),
    ))
}

/// The pipeline configuration from `SNAPLABEL_*` environment variables.
pub fn config_from_env() -> Result<PipelineConfig, BoxError> {
    Ok(PipelineConfig::from_lookup(|name| {
        std::env::var(name).ok()
    })?)
}
