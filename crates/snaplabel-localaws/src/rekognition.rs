//! Amazon Rekognition `DetectLabels` on 127.0.0.1, speaking the awsJson1_1 protocol that
//! `aws-sdk-rekognition` sends (`POST /`, `X-Amz-Target: RekognitionService.DetectLabels`).
//!
//! `Image.Bytes` (base64) and `Image.S3Object` (read from the local S3 folder) are both accepted;
//! errors use Rekognition's names (`InvalidImageFormatException`, `ImageTooLargeException`,
//! `InvalidParameterException`, `InvalidS3ObjectException`), so any Rekognition client, not only
//! snaplabel's, can use the endpoint. Over HTTP it is served by [`crate::aws_json`], which checks
//! the SigV4 signature as Rekognition does and lets only a few requests label at once.

use crate::aws_json::AwsError;
use async_trait::async_trait;
use base64::Engine;
use bytes::Bytes;
use serde::Deserialize;
use snaplabel_core::detect::{DetectLabelsResponse, DetectOptions};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

/// Rekognition's limits: 5 MB inline, 15 MB from S3.
pub const BYTES_LIMIT: usize = 5 * 1024 * 1024;
pub const S3_OBJECT_LIMIT: u64 = 15 * 1024 * 1024;
pub const TARGET_PREFIX: &str = "RekognitionService.";
const TARGET: &str = "RekognitionService.DetectLabels";
/// Base64 inflates 5 MB to ~6.7 MB; allow the JSON around it.
pub const MAX_REQUEST_BYTES: usize = BYTES_LIMIT * 4 / 3 + 64 * 1024;

/// Rekognition's errors are awsJson errors.
pub type RekognitionError = AwsError;

/// Where the image of a request came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageSource {
    /// `Image.Bytes`.
    Inline,
    /// `Image.S3Object`.
    S3Object { bucket: String, name: String },
}

/// Whatever actually labels the image.
#[async_trait]
pub trait DetectLabelsBackend: Send + Sync {
    async fn detect_labels(
        &self,
        image: Bytes,
        source: ImageSource,
        options: DetectOptions,
    ) -> Result<DetectLabelsResponse, RekognitionError>;
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DetectLabelsRequest {
    image: Option<ImageRef>,
    #[serde(flatten)]
    options: DetectOptions,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ImageRef {
    bytes: Option<String>,
    s3_object: Option<S3ObjectRef>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct S3ObjectRef {
    bucket: Option<String>,
    name: Option<String>,
}

/// Rekognition over a backend, callable per request (so it can share a port with other services).
pub struct RekognitionService {
    backend: Arc<dyn DetectLabelsBackend>,
    s3_root: Option<PathBuf>,
}

impl RekognitionService {
    /// `s3_root` is the local S3 folder that `Image.S3Object` references.
    pub fn new(backend: Arc<dyn DetectLabelsBackend>, s3_root: Option<PathBuf>) -> Self {
        RekognitionService { backend, s3_root }
    }

    /// Serves one awsJson1_1 request (`target` is the `X-Amz-Target` header).
    pub async fn call(
        &self,
        target: &str,
        body: &[u8],
    ) -> Result<DetectLabelsResponse, RekognitionError> {
        if target != TARGET {
            return Err(RekognitionError::new(
                "UnknownOperationException",
                format!("only {TARGET} is served here, not {target:?}"),
            ));
        }
        let request: DetectLabelsRequest = serde_json::from_slice(body).map_err(|e| {
            RekognitionError::new("InvalidParameterException", format!("invalid request: {e}"))
        })?;
        request
            .options
            .validate()
            .map_err(|e| RekognitionError::new("InvalidParameterException", e.to_string()))?;
        let image = request.image.ok_or_else(|| {
            RekognitionError::new("InvalidParameterException", "Image is required")
        })?;
        let (bytes, source) = match (image.bytes, image.s3_object) {
            (Some(b64), None) => {
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(b64.as_bytes())
                    .map_err(|e| {
                        RekognitionError::new(
                            "InvalidParameterException",
                            format!("Image.Bytes is not base64: {e}"),
                        )
                    })?;
                if bytes.len() > BYTES_LIMIT {
                    return Err(RekognitionError::new(
                        "ImageTooLargeException",
                        format!("Image.Bytes is {} bytes; the limit is 5 MB", bytes.len()),
                    ));
                }
                (Bytes::from(bytes), ImageSource::Inline)
            }
            (None, Some(object)) => read_s3_object(self.s3_root.as_deref(), object).await?,
            _ => {
                return Err(RekognitionError::new(
                    "InvalidParameterException",
                    "give exactly one of Image.Bytes and Image.S3Object",
                ));
            }
        };
        self.backend
            .detect_labels(bytes, source, request.options)
            .await
    }
}

async fn read_s3_object(
    s3_root: Option<&Path>,
    object: S3ObjectRef,
) -> Result<(Bytes, ImageSource), RekognitionError> {
    let invalid = |m: String| RekognitionError::new("InvalidS3ObjectException", m);
    let root =
        s3_root.ok_or_else(|| invalid("this endpoint has no S3 folder configured".into()))?;
    let (Some(bucket), Some(name)) = (object.bucket, object.name) else {
        return Err(invalid("S3Object needs Bucket and Name".into()));
    };
    let relative = Path::new(&bucket).join(&name);
    if bucket.contains('/')
        || relative
            .components()
            .any(|c| !matches!(c, Component::Normal(_)))
    {
        return Err(invalid(format!(
            "unable to get object {name:?} from bucket {bucket:?}"
        )));
    }
    let path = root.join(relative);
    let meta = tokio::fs::metadata(&path).await.map_err(|_| {
        invalid(format!(
            "unable to get object metadata from S3: {bucket}/{name} not found"
        ))
    })?;
    if meta.len() > S3_OBJECT_LIMIT {
        return Err(RekognitionError::new(
            "ImageTooLargeException",
            format!("the object is {} bytes; the limit is 15 MB", meta.len()),
        ));
    }
    let bytes = tokio::fs::read(&path)
        .await
        .map_err(|e| invalid(format!("unable to read {bucket}/{name}: {e}")))?;
    Ok((Bytes::from(bytes), ImageSource::S3Object { bucket, name }))
}
