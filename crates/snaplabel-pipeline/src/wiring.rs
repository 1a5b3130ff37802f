//! Builds the handlers from [`Settings`]: the one place that knows which implementation backs
//! each trait. The Lambda `main`s and `snaplabel dev` both go through here (dev only points the
//! endpoints at its local services).

use crate::aws;
use crate::identity::{CognitoTokens, IdentityVerifier, SharedAnonymous};
use crate::jwks::JwksCache;
use crate::labeler::Labeler;
use crate::rekognition::RekognitionLabeler;
use crate::{ApiHandler, LabelHandler, LabelSettings, S3Store};
use aws_config::SdkConfig;
use snaplabel_core::config::{LabelerKind, ModelSettings, Settings};
use std::sync::Arc;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

pub fn store(sdk: &SdkConfig, settings: &Settings) -> Arc<S3Store> {
    Arc::new(S3Store::new(
        aws::s3_client(sdk, settings.endpoints.s3.as_deref()),
        settings.bucket.clone(),
    ))
}

/// Cognito guests proved by their OpenID tokens when a pool is configured; otherwise a single
/// shared owner, allowed only when identities are not required. The issuer's keys are fetched
/// now (in the background), so the first upload does not wait for them.
pub fn identity(config: &Settings) -> Result<Arc<dyn IdentityVerifier>, BoxError> {
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

/// The labeler `settings.labeler` names. `local` builds the embedded model (loaded once, reused).
pub fn labeler(sdk: &SdkConfig, settings: &Settings) -> Result<Arc<dyn Labeler>, BoxError> {
    match settings.labeler {
        LabelerKind::Rekognition => Ok(Arc::new(RekognitionLabeler::new(
            aws::rekognition_client(sdk, settings.endpoints.rekognition.as_deref()),
            snaplabel_imageio::Limits::from_config(settings),
        ))),
        LabelerKind::Local => local_labeler(settings),
    }
}

#[cfg(feature = "local")]
fn local_labeler(settings: &Settings) -> Result<Arc<dyn Labeler>, BoxError> {
    Ok(Arc::new(crate::local::LocalLabeler::load(settings)?))
}

#[cfg(not(feature = "local"))]
fn local_labeler(_settings: &Settings) -> Result<Arc<dyn Labeler>, BoxError> {
    Err(
        "this build has no embedded model (feature \"local\"); set SNAPLABEL_LABELER=rekognition"
            .into(),
    )
}

pub fn api_handler(sdk: &SdkConfig, settings: Settings) -> Result<ApiHandler, BoxError> {
    let identity = identity(&settings)?;
    Ok(ApiHandler::new(store(sdk, &settings), identity, settings))
}

pub fn label_handler(sdk: &SdkConfig, settings: &Settings) -> Result<LabelHandler, BoxError> {
    Ok(LabelHandler::new(
        store(sdk, settings),
        labeler(sdk, settings)?,
        LabelSettings::from_config(settings),
    ))
}

/// The settings from `SNAPLABEL_*` environment variables (and Lambda's own): the one place the
/// functions read their environment.
pub fn settings_from_env() -> Result<Settings, BoxError> {
    Ok(Settings::from_lookup(|name| std::env::var(name).ok())?)
}

/// The local model's settings alone, from the environment (the CLI's default when no flag says).
pub fn model_settings_from_env() -> ModelSettings {
    ModelSettings::from_lookup(|name| std::env::var(name).ok())
}
