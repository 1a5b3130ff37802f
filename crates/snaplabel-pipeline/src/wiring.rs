//! Builds the handlers from configuration: the one place that knows which implementation backs
//! each trait. The Lambda `main`s and `snaplabel dev` both go through here.

use crate::aws::{self, Endpoints};
use crate::identity::{CognitoGuests, IdentityVerifier, SharedAnonymous};
use crate::labeler::Labeler;
use crate::rekognition::RekognitionLabeler;
use crate::{ApiHandler, LabelHandler, LabelSettings, S3Store};
use aws_config::SdkConfig;
use snaplabel_core::config::{LabelerKind, PipelineConfig};
use std::sync::Arc;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// `SNAPLABEL_IDENTITY_POOL_ID`: the Cognito identity pool whose guests may upload.
pub fn identity_pool_from_env() -> Option<String> {
    std::env::var("SNAPLABEL_IDENTITY_POOL_ID")
        .ok()
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

pub fn store(sdk: &SdkConfig, endpoints: &Endpoints, config: &PipelineConfig) -> Arc<S3Store> {
    Arc::new(S3Store::new(
        aws::s3_client(sdk, endpoints.s3.as_deref()),
        config.bucket.clone(),
    ))
}

/// Cognito guests when a pool is configured; otherwise a single shared owner, allowed only when
/// identities are not required.
pub fn identity(
    sdk: &SdkConfig,
    endpoints: &Endpoints,
    config: &PipelineConfig,
    pool_id: Option<String>,
) -> Result<Arc<dyn IdentityVerifier>, BoxError> {
    match pool_id {
        Some(pool) => Ok(Arc::new(CognitoGuests::new(
            aws::cognito_client(sdk, endpoints.cognito.as_deref()),
            pool,
        ))),
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
    let limits = snaplabel_imageio::Limits::new(config.max_pixels);
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
    pool_id: Option<String>,
) -> Result<ApiHandler, BoxError> {
    let identity = identity(sdk, endpoints, &config, pool_id)?;
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
