//! Bodies of the presign HTTP API (`/api/uploads`).

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// `POST /api/uploads` body. `size` is kept loose here so that a missing or non-numeric size is
/// reported as `invalid_size` rather than as malformed JSON.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CreateUploadRequest {
    #[serde(default)]
    pub filename: Option<String>,
    #[serde(default)]
    pub content_type: Option<String>,
    #[serde(default)]
    pub size: Option<serde_json::Value>,
}

/// `201 Created` answer to `POST /api/uploads`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CreateUploadResponse {
    pub id: String,
    pub upload: PresignedUpload,
    pub result: ResultLocation,
    /// RFC 3339 UTC instant after which the URLs stop working.
    pub expires_at: String,
}

/// How to send the image: the exact method, URL and headers that were signed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PresignedUpload {
    pub url: String,
    pub method: String,
    /// Headers the request must carry exactly as given (Content-Type among them). The body must be
    /// exactly the declared size: Content-Length is signed too.
    pub headers: BTreeMap<String, String>,
}

/// Where the result document will appear, with separately presigned HEAD and GET URLs (the
/// method is part of a SigV4 signature).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResultLocation {
    pub key: String,
    pub head_url: String,
    pub get_url: String,
}

/// `GET /api/uploads` answer: the caller's uploads, newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UploadHistory {
    pub uploads: Vec<UploadSummary>,
    /// Pass as `?before=` for the next (older) page; absent on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_before: Option<String>,
    /// When the URLs in this page stop working.
    pub expires_at: String,
}

/// One earlier upload with fresh presigned URLs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UploadSummary {
    pub id: String,
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filename: Option<String>,
    pub content_type: String,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uploaded_at: Option<String>,
    /// Presigned GET of the image itself (thumbnails).
    pub image_url: String,
    pub result: ResultLocation,
}

/// The header that carries the guest identity id to the presign API.
pub const IDENTITY_HEADER: &str = "x-snaplabel-identity";

/// `/config.json`: everything the browser app needs to find its backend, so one build of the
/// app works under `snaplabel dev` and on S3/CloudFront. `snaplabel dev` serves it; the deploy
/// command writes it from the stack outputs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BrowserConfig {
    /// Base of the presign API, e.g. `http://127.0.0.1:8080/api` or `<function URL>api`.
    pub api_base: String,
    #[serde(default)]
    pub region: String,
    pub identity: BrowserIdentity,
    pub limits: BrowserLimits,
    /// `local` or `rekognition`, for display.
    #[serde(default)]
    pub labeler: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BrowserIdentity {
    /// Cognito Identity endpoint (awsJson1_1 `GetId`).
    pub endpoint: String,
    pub pool_id: String,
    /// Header that carries the identity id to the presign API.
    pub header: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BrowserLimits {
    pub max_upload_bytes: u64,
    pub content_types: Vec<String>,
}

impl BrowserConfig {
    /// The configuration for a backend; content types are every format snaplabel labels.
    pub fn new(
        api_base: impl Into<String>,
        region: impl Into<String>,
        identity_endpoint: impl Into<String>,
        pool_id: impl Into<String>,
        max_upload_bytes: u64,
        labeler: impl Into<String>,
    ) -> Self {
        BrowserConfig {
            api_base: api_base.into(),
            region: region.into(),
            identity: BrowserIdentity {
                endpoint: identity_endpoint.into(),
                pool_id: pool_id.into(),
                header: IDENTITY_HEADER.into(),
            },
            limits: BrowserLimits {
                max_upload_bytes,
                content_types: crate::ImageFormat::ALL
                    .iter()
                    .map(|f| f.content_type().to_string())
                    .collect(),
            },
            labeler: labeler.into(),
        }
    }

    /// Amazon Cognito Identity's public endpoint in `region`.
    pub fn cognito_endpoint(region: &str) -> String {
        format!("https://cognito-identity.{region}.amazonaws.com/")
    }

    /// `api_base` joined with a path, without doubling the slash.
    pub fn api_url(&self, path: &str) -> String {
        format!(
            "{}/{}",
            self.api_base.trim_end_matches('/'),
            path.trim_start_matches('/')
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn browser_config_round_trips_and_joins_paths() {
        let config = BrowserConfig::new(
            "https://abc.lambda-url.eu-west-1.on.aws/api",
            "eu-west-1",
            BrowserConfig::cognito_endpoint("eu-west-1"),
            "eu-west-1:pool",
            20_000_000,
            "local",
        );
        assert_eq!(
            config.api_url("/uploads"),
            "https://abc.lambda-url.eu-west-1.on.aws/api/uploads"
        );
        assert_eq!(
            config.identity.endpoint,
            "https://cognito-identity.eu-west-1.amazonaws.com/"
        );
        assert!(config.limits.content_types.contains(&"image/jpeg".into()));
        let json = serde_json::to_string(&config).unwrap();
        assert_eq!(
            serde_json::from_str::<BrowserConfig>(&json).unwrap(),
            config
        );
    }
}
