//! The presign HTTP API: `POST /api/uploads` hands out presigned URLs for one upload,
//! `GET /api/uploads` lists the caller's uploads, newest first.
//!
//! The decisions, as plain async methods over typed inputs; [`crate::http`] routes requests to
//! them (one axum router, served by `lambda_http` in AWS and by `axum::serve` in `snaplabel dev`).
//! It never touches image bytes; it only decides keys and signs URLs.
//!
//! What a guest can cost is bounded here: one object per URL (`If-None-Match: *` is signed in),
//! and at most [`Settings::uploads_per_hour`] URLs per guest, counted from the guest's own
//! prefix in the bucket. Failures of the services behind it are answered with a generic message
//! and a request id; the details go to the log under that id.

use crate::gallery::Gallery;
use crate::identity::{IdentityError, IdentityVerifier};
use crate::store::{ObjectStore, PresignRequest};
use bytes::Bytes;
use snaplabel_core::api::{
    CreateUploadRequest, CreateUploadResponse, FILENAME_METADATA, PresignedUpload, ResultLocation,
    UploadHistory, UploadSummary, filename_metadata,
};
use snaplabel_core::config::Settings;
use snaplabel_core::gallery::MAX_QUERY_CHARS;
use snaplabel_core::keys::{UploadKey, upload_id, upload_id_time_ms};
use snaplabel_core::{ErrorBody, ErrorCode, ImageFormat};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Requests to the API are small JSON documents; anything bigger is refused unread.
pub const MAX_REQUEST_BYTES: usize = 16 * 1024;
const DEFAULT_HISTORY_PAGE: usize = 20;
const MAX_HISTORY_PAGE: usize = 100;
/// The window of the per-guest upload quota.
const QUOTA_WINDOW: Duration = Duration::from_secs(3600);
/// History entries whose metadata is read at once.
const HISTORY_CONCURRENCY: usize = 8;

/// An answer other than success: the error body and, for `rate_limited`, when to come back.
#[derive(Debug)]
pub struct Refusal {
    pub error: ErrorBody,
    pub retry_after_secs: Option<u64>,
}

impl From<ErrorBody> for Refusal {
    fn from(error: ErrorBody) -> Self {
        Refusal {
            error,
            retry_after_secs: None,
        }
    }
}

/// `?limit=N&before=ID` of the history listing and the search (`q`, `label`).
pub(crate) struct Query {
    pub limit: usize,
    pub before: Option<String>,
    pub q: Option<String>,
    pub label: Option<String>,
}

impl Query {
    pub(crate) fn parse(query: &str) -> Result<Query, ErrorBody> {
        let mut q = Query {
            limit: DEFAULT_HISTORY_PAGE,
            before: None,
            q: None,
            label: None,
        };
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            match name {
                "limit" => {
                    q.limit = value
                        .parse()
                        .ok()
                        .filter(|n| (1..=MAX_HISTORY_PAGE).contains(n))
                        .ok_or_else(|| {
                            ErrorBody::new(
                                ErrorCode::MalformedRequest,
                                format!(
                                    "limit must be a whole number from 1 to {MAX_HISTORY_PAGE}"
                                ),
                            )
                        })?;
                }
                "before" if snaplabel_core::keys::is_valid_id(value) => {
                    q.before = Some(value.to_string())
                }
                "before" => {
                    return Err(ErrorBody::new(
                        ErrorCode::MalformedRequest,
                        "before must be an upload id",
                    ));
                }
                "q" | "label" => {
                    let text = percent_encoding::percent_decode_str(&value.replace('+', " "))
                        .decode_utf8()
                        .map_err(|_| {
                            ErrorBody::new(
                                ErrorCode::MalformedRequest,
                                format!("{name} must be UTF-8 text"),
                            )
                        })?
                        .into_owned();
                    if text.chars().count() > MAX_QUERY_CHARS {
                        return Err(ErrorBody::new(
                            ErrorCode::MalformedRequest,
                            format!("{name} may be at most {MAX_QUERY_CHARS} characters"),
                        ));
                    }
                    if name == "q" {
                        q.q = Some(text);
                    } else {
                        q.label = Some(text);
                    }
                }
                _ => {}
            }
        }
        Ok(q)
    }
}

pub struct ApiHandler {
    pub(crate) store: Arc<dyn ObjectStore>,
    pub(crate) gallery: Gallery,
    identity: Arc<dyn IdentityVerifier>,
    config: Settings,
}

impl ApiHandler {
    pub fn new(
        store: Arc<dyn ObjectStore>,
        identity: Arc<dyn IdentityVerifier>,
        config: Settings,
    ) -> Self {
        ApiHandler {
            gallery: Gallery::new(store.clone()),
            store,
            identity,
            config,
        }
    }

    pub fn config(&self) -> &Settings {
        &self.config
    }

    /// The caller's owner segment, from its `Authorization` header.
    pub(crate) async fn owner(
        &self,
        authorization: Option<&str>,
        request_id: &str,
    ) -> Result<String, Refusal> {
        self.identity.owner(authorization).await.map_err(|e| {
            match e {
                IdentityError::Invalid(message) => {
                    tracing::info!(request_id, code = "invalid_identity", reason = %message, "identity refused");
                    ErrorBody::new(ErrorCode::InvalidIdentity, message)
                }
                unavailable @ IdentityError::Unavailable { .. } => {
                    let error = aws_sdk_s3::error::DisplayErrorContext(&unavailable);
                    tracing::error!(request_id, code = "unavailable", error = %error, "identity keys unavailable");
                    ErrorBody::new(
                        ErrorCode::Unavailable,
                        "guest identities cannot be checked right now; try again in a minute",
                    )
                }
            }
            .into()
        })
    }

    /// `POST /api/uploads`: presigned URLs for one upload of the caller's.
    pub async fn create_upload(
        &self,
        authorization: Option<&str>,
        body: &[u8],
        request_id: &str,
    ) -> Result<CreateUploadResponse, Refusal> {
        let owner = self.owner(authorization, request_id).await?;
        let body = parse_create_request(body)?;
        let (format, size) = self.validate(&body)?;
        let storage = |e| storage_error(e, request_id);
        let now = SystemTime::now();
        self.check_quota(&owner, now, request_id).await?;

        let key = UploadKey {
            owner,
            id: upload_id(ulid::Ulid::from_datetime(now).0),
            format,
        };
        // The quota counts URLs handed out, not uploads made: a guest cannot stockpile URLs.
        self.store
            .put(
                &key.quota_key(),
                Bytes::new(),
                "application/octet-stream",
                BTreeMap::new(),
            )
            .await
            .map_err(storage)?;
        let expires_in = Duration::from_secs(self.config.url_expiry_secs);
        let mut metadata = BTreeMap::new();
        if let Some(name) = body.filename.as_deref().and_then(filename_metadata) {
            metadata.insert(FILENAME_METADATA.to_string(), name);
        }
        let upload = self
            .store
            .presign(
                PresignRequest::Put {
                    key: key.to_string(),
                    content_type: format.content_type().to_string(),
                    content_length: size,
                    metadata,
                },
                expires_in,
            )
            .await
            .map_err(storage)?;
        let result = self
            .result_location(key.result_key(), expires_in)
            .await
            .map_err(storage)?;

        // Browsers compute Content-Length themselves and refuse to set it; it is still signed.
        let headers = upload
            .headers
            .into_iter()
            .filter(|(name, _)| !name.eq_ignore_ascii_case("content-length"))
            .collect();
        tracing::info!(request_id, key = %key, size, content_type = format.content_type(), "presigned upload");
        Ok(CreateUploadResponse {
            id: key.id.clone(),
            upload: PresignedUpload {
                url: upload.url,
                method: upload.method,
                headers,
            },
            result,
            expires_at: rfc3339(now + expires_in),
        })
    }

    /// Refuses with `rate_limited` when `owner` got its whole hourly quota of upload URLs in the
    /// last hour. One listing call: quota markers are named by newest-first ids, so the first
    /// `quota` keys are the newest, and the last of them tells whether all are within the hour.
    async fn check_quota(
        &self,
        owner: &str,
        now: SystemTime,
        request_id: &str,
    ) -> Result<(), Refusal> {
        let quota = self.config.uploads_per_hour;
        let page = self
            .store
            .list(&UploadKey::owner_quota_prefix(owner), quota, None, None)
            .await
            .map_err(|e| storage_error(e, request_id))?;
        let now_ms = now
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis() as u64;
        let window_ms = QUOTA_WINDOW.as_millis() as u64;
        let recent: Vec<u64> = page
            .objects
            .iter()
            .filter_map(|o| upload_id_time_ms(o.key.rsplit('/').next()?))
            .filter(|&t| t + window_ms > now_ms)
            .collect();
        if (recent.len() as u64) < quota as u64 {
            return Ok(());
        }
        // The oldest of the counted URLs leaves the window first.
        let oldest = recent.iter().copied().min().unwrap_or(now_ms);
        let retry_after_secs = (oldest + window_ms)
            .saturating_sub(now_ms)
            .div_ceil(1000)
            .max(1);
        tracing::info!(
            request_id,
            code = "rate_limited",
            quota,
            retry_after_secs,
            "upload quota reached"
        );
        Err(Refusal {
            error: ErrorBody::new(
                ErrorCode::RateLimited,
                format!(
                    "you have had {quota} upload links in the last hour, the most one guest may have; try again in {}",
                    human_duration(retry_after_secs)
                ),
            ),
            retry_after_secs: Some(retry_after_secs),
        })
    }

    /// `GET /api/uploads?limit=20&before=ID`: the caller's uploads, newest first, with fresh URLs.
    /// One listing call however many uploads there are: ids sort newest first.
    pub async fn list_uploads(
        &self,
        authorization: Option<&str>,
        query: &str,
        request_id: &str,
    ) -> Result<UploadHistory, Refusal> {
        let owner = self.owner(authorization, request_id).await?;
        let query = Query::parse(query)?;
        let storage = |e| storage_error(e, request_id);
        let start_after = query
            .before
            .as_deref()
            .map(|id| UploadKey::older_than(&owner, id));
        // The gallery index names the labeled uploads (no HEAD each) and the deleted ones (an
        // image whose deletion failed half-way is not shown again).
        let prefix = UploadKey::owner_uploads_prefix(&owner);
        let (page, gallery) = tokio::join!(
            self.store.list(
                &prefix,
                query.limit as u32 + 1,
                start_after.as_deref(),
                None
            ),
            self.gallery.load(&owner)
        );
        let (page, gallery) = (page.map_err(storage)?, gallery.map_err(storage)?.index);
        let mut listed: Vec<_> = page
            .objects
            .into_iter()
            .filter_map(|o| Some((UploadKey::parse(&o.key)?, o.size, o.last_modified)))
            .filter(|(parsed, _, _)| !gallery.deleted.contains(&parsed.id))
            .collect();
        let more = listed.len() > query.limit || page.next_token.is_some();
        listed.truncate(query.limit);
        let expires_in = Duration::from_secs(self.config.url_expiry_secs);
        let mut uploads = Vec::with_capacity(listed.len());
        for chunk in listed.chunks(HISTORY_CONCURRENCY) {
            let summaries = chunk.iter().map(|(parsed, size, modified)| async {
                let filename = match gallery.uploads.get(&parsed.id) {
                    Some(entry) => entry.file.clone(),
                    None => self.filename_of(parsed).await?,
                };
                self.summary(parsed, *size, *modified, filename, expires_in)
                    .await
            });
            for summary in futures::future::join_all(summaries).await {
                uploads.push(summary.map_err(storage)?);
            }
        }
        let next_before = if more {
            listed.last().map(|(p, _, _)| p.id.clone())
        } else {
            None
        };
        Ok(UploadHistory {
            uploads,
            next_before,
            expires_at: rfc3339(SystemTime::now() + expires_in),
        })
    }

    /// The original file name of an upload, from the image's metadata.
    async fn filename_of(
        &self,
        parsed: &UploadKey,
    ) -> Result<Option<String>, crate::store::StoreError> {
        Ok(self
            .store
            .head(&parsed.to_string())
            .await?
            .and_then(|m| m.original_filename()))
    }

    /// One history entry with fresh URLs.
    pub(crate) async fn summary(
        &self,
        parsed: &UploadKey,
        size: u64,
        modified: Option<SystemTime>,
        filename: Option<String>,
        expires_in: Duration,
    ) -> Result<UploadSummary, crate::store::StoreError> {
        let key = parsed.to_string();
        let image = self
            .store
            .presign(PresignRequest::Get { key: key.clone() }, expires_in)
            .await?;
        let result = self
            .result_location(parsed.result_key(), expires_in)
            .await?;
        Ok(UploadSummary {
            id: parsed.id.clone(),
            key,
            filename,
            content_type: parsed.format.content_type().to_string(),
            size,
            uploaded_at: modified.map(rfc3339),
            image_url: image.url,
            result,
        })
    }

    /// Where a result document will be, with HEAD and GET presigned separately (the method is part
    /// of a SigV4 signature).
    pub(crate) async fn result_location(
        &self,
        key: String,
        expires_in: Duration,
    ) -> Result<ResultLocation, crate::store::StoreError> {
        let head = self
            .store
            .presign(PresignRequest::Head { key: key.clone() }, expires_in)
            .await?;
        let get = self
            .store
            .presign(PresignRequest::Get { key: key.clone() }, expires_in)
            .await?;
        Ok(ResultLocation {
            key,
            head_url: head.url,
            get_url: get.url,
        })
    }

    /// The declared type and size. A file name of any length is accepted: it is only kept as
    /// metadata, cut to fit S3's limit ([`filename_metadata`]).
    fn validate(&self, body: &CreateUploadRequest) -> Result<(ImageFormat, u64), ErrorBody> {
        let content_type = body.content_type.as_deref().ok_or_else(|| {
            ErrorBody::new(
                ErrorCode::UnsupportedContentType,
                "content_type is required (e.g. \"image/jpeg\")",
            )
        })?;
        let format = ImageFormat::from_content_type(content_type).ok_or_else(|| {
            ErrorBody::new(
                ErrorCode::UnsupportedContentType,
                format!("{content_type:?} is not supported; send image/jpeg, image/png, image/webp, image/gif, image/bmp or image/tiff"),
            )
        })?;
        let size = match &body.size {
            Some(serde_json::Value::Number(n)) => n.as_u64().filter(|&s| s > 0),
            _ => None,
        }
        .ok_or_else(|| {
            ErrorBody::new(
                ErrorCode::InvalidSize,
                "size is required: the file's length in bytes, a positive whole number",
            )
        })?;
        if size > self.config.max_upload_bytes {
            return Err(ErrorBody::new(
                ErrorCode::TooLarge,
                format!(
                    "the file is {} but at most {} is accepted",
                    human_bytes(size),
                    human_bytes(self.config.max_upload_bytes)
                ),
            ));
        }
        Ok((format, size))
    }
}

fn parse_create_request(body: &[u8]) -> Result<CreateUploadRequest, ErrorBody> {
    if body.len() > MAX_REQUEST_BYTES {
        return Err(ErrorBody::new(
            ErrorCode::MalformedRequest,
            format!("the request body exceeds {MAX_REQUEST_BYTES} bytes"),
        ));
    }
    let malformed = |detail: String| {
        ErrorBody::new(
            ErrorCode::MalformedRequest,
            format!(
                "the body must be a JSON object like {{\"filename\": \"cat.jpg\", \"content_type\": \"image/jpeg\", \"size\": 123456}}: {detail}"
            ),
        )
    };
    // Through `Value` first: serde would otherwise accept a JSON array as a struct.
    match serde_json::from_slice::<serde_json::Value>(body).map_err(|e| malformed(e.to_string()))? {
        object @ serde_json::Value::Object(_) => {
            serde_json::from_value(object).map_err(|e| malformed(e.to_string()))
        }
        other => Err(malformed(format!("got {}", json_kind(&other)))),
    }
}

pub(crate) fn json_kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

/// A storage failure as the caller sees it: generic, with the request id (added by `handle`);
/// the detail goes to the log under that id.
pub(crate) fn storage_error(err: crate::store::StoreError, request_id: &str) -> Refusal {
    let error = aws_sdk_s3::error::DisplayErrorContext(&err);
    tracing::error!(request_id, code = "storage_failed", error = %error, "object storage failed");
    ErrorBody::new(
        ErrorCode::StorageFailed,
        "storage did not answer as expected; try again, and quote the request id if it keeps failing",
    )
    .into()
}

fn human_duration(secs: u64) -> String {
    match secs {
        0..=90 => format!("{secs} s"),
        _ => format!("{} min", secs.div_ceil(60)),
    }
}

fn human_bytes(n: u64) -> String {
    if n >= 1024 * 1024 {
        format!("{:.1} MB", n as f64 / (1024.0 * 1024.0))
    } else if n >= 1024 {
        format!("{:.1} KB", n as f64 / 1024.0)
    } else {
        format!("{n} bytes")
    }
}

pub(crate) fn rfc3339(t: SystemTime) -> String {
    let t = time::OffsetDateTime::from(t)
        .replace_nanosecond(0)
        .unwrap_or_else(|_| time::OffsetDateTime::from(t));
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}
