//! [`Labeler`] on the embedded model (snaplabel-vision), for Lambda (`SNAPLABEL_LABELER=local`),
//! `snaplabel dev` and anything else that wants labels without AWS.

use crate::labeler::{LabelRequest, Labeler};
use crate::wiring::BoxError;
use async_trait::async_trait;
use snaplabel_core::config::Settings;
use snaplabel_core::detect::DetectLabelsResponse;
use snaplabel_core::result::LabelerInfo;
use snaplabel_core::{ErrorBody, ErrorCode};
use snaplabel_vision::{EngineKind, LoadOptions};
use std::sync::Arc;
use tokio::sync::Semaphore;

pub struct LocalLabeler {
    model: Arc<snaplabel_vision::LocalLabeler>,
    /// Labeling is CPU-bound: at most one image per core is decoded and labeled at a time, the
    /// rest wait here instead of piling up threads and decoded pixels.
    permits: Semaphore,
}

impl LocalLabeler {
    pub fn load(settings: &Settings) -> Result<Self, BoxError> {
        let engine: EngineKind = settings.model.engine.parse()?;
        let mut options = LoadOptions::new(settings.model.dir.clone(), engine);
        options.ort_library = settings.model.ort_library.clone();
        options.limits = snaplabel_imageio::Limits::from_config(settings);
        Ok(LocalLabeler::new(Arc::new(
            snaplabel_vision::LocalLabeler::load(&options)?,
        )))
    }

    pub fn new(model: Arc<snaplabel_vision::LocalLabeler>) -> Self {
        let cores = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2);
        LocalLabeler {
            model,
            permits: Semaphore::new(cores),
        }
    }

    pub fn model(&self) -> &Arc<snaplabel_vision::LocalLabeler> {
        &self.model
    }
}

#[async_trait]
impl Labeler for LocalLabeler {
    fn info(&self) -> LabelerInfo {
        LabelerInfo {
            name: "local".into(),
            model: snaplabel_vision::labeler::MODEL_VERSION.into(),
            engine: Some(self.model.engine().to_string()),
        }
    }

    async fn label(&self, request: LabelRequest<'_>) -> Result<DetectLabelsResponse, ErrorBody> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| ErrorBody::new(ErrorCode::Internal, "labeler shut down"))?;
        let model = self.model.clone();
        let bytes = request.bytes.clone();
        let options = request.options.clone();
        let labeled = tokio::task::spawn_blocking(move || model.label(&bytes, &options))
            .await
            .map_err(|e| {
                ErrorBody::new(
                    ErrorCode::LabelerFailed,
                    format!("the labeler crashed: {e}"),
                )
            })?;
        labeled.map(|l| l.response).map_err(ErrorBody::from)
    }
}
