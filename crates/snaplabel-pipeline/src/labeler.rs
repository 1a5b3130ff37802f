//! The [`Labeler`] trait: image in, Rekognition-shaped labels out.

use async_trait::async_trait;
use bytes::Bytes;
use snaplabel_core::ErrorBody;
use snaplabel_core::detect::{DetectLabelsResponse, DetectOptions};
use snaplabel_core::result::LabelerInfo;
use snaplabel_imageio::Probe;

/// One image to label. The bytes are already downloaded and their header probed (format known,
/// dimensions within limits), so labelers never see unvetted input.
#[derive(Debug, Clone, Copy)]
pub struct LabelRequest<'a> {
    pub bucket: &'a str,
    pub key: &'a str,
    pub bytes: &'a Bytes,
    pub probe: &'a Probe,
    pub options: &'a DetectOptions,
}

#[async_trait]
pub trait Labeler: Send + Sync {
    /// Which labeler and model, recorded in every result document.
    fn info(&self) -> LabelerInfo;

    /// Labels one image. Errors carry a stable code (`corrupt_image` for bytes that fail to decode,
    /// `labeler_failed` for the labeler's own trouble, …).
    async fn label(&self, request: LabelRequest<'_>) -> Result<DetectLabelsResponse, ErrorBody>;
}
