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
