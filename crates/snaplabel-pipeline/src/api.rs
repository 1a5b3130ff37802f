//! The presign HTTP API: `POST /api/uploads` hands out presigned URLs for one upload.
//!
//! A plain function from `http::Request<Bytes>` to `http::Response<Bytes>`: the Lambda main adapts
//! `lambda_http` events to it, `snaplabel dev` serves it with hyper. It never touches image bytes;
//! it only decides keys and signs URLs.

use crate::identity::{IDENTITY_HEADER, IdentityVerifier};
use crate::store::{ObjectStore, PresignRequest};
use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use snaplabel_core::api::{
    CreateUploadRequest, CreateUploadResponse, PresignedUpload, ResultLocation, UploadHistory,
    UploadSummary,
};
use snaplabel_core::config::PipelineConfig;
use snaplabel_core::error::ApiError;
use snaplabel_core::keys::UploadKey;
use snaplabel_core::{ErrorBody, ErrorCode, ImageFormat};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// Requests to the API are small JSON documents; anything bigger is refused unread.
pub const MAX_REQUEST_BYTES: usize = 16 * 1024;
/// Metadata key recording the client's original file name (percent-encoded: headers are ASCII).
pub const FILENAME_METADATA: &str = "original-filename";
/// History listings look at no more than this many uploads of one identity.
const MAX_HISTORY_SCAN: usize = 10_000;
const DEFAULT_HISTORY_PAGE: usize = 20;
const MAX_HISTORY_PAGE: usize = 100;

/// `?limit=N&before=ID` of the history listing.
struct Query {
    limit: usize,
    before: Option<String>,
}

impl Query {
    fn parse(query: &str) -> Result<Query, ErrorBody> {
        let mut q = Query {
            limit: DEFAULT_HISTORY_PAGE,
            before: None,
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
                _ => {}
            }
        }
        Ok(q)
    }
}

pub struct ApiHandler {
    store: Arc<dyn ObjectStore>,
    identity: Arc<dyn IdentityVerifier>,
    config: PipelineConfig,
}

impl ApiHandler {
    pub fn new(
        store: Arc<dyn ObjectStore>,
        identity: Arc<dyn IdentityVerifier>,
        config: PipelineConfig,
    ) -> Self {
        ApiHandler {
            store,
            identity,
            config,
        }
    }

    pub fn config(&self) -> &PipelineConfig {
        &self.config
    }

    /// Serves one request. Never fails: every problem becomes a JSON error response.
    pub async fn handle(&self, request: Request<Bytes>) -> Response<Bytes> {
        let origin = request
            .headers()
            .get(header::ORIGIN)
            .and_then(|o| o.to_str().ok())
            .map(str::to_string);
        let mut response = if request.method() == Method::OPTIONS {
            preflight()
        } else {
            match self.route(request).await {
                Ok(response) => response,
                Err(error) => error_response(error),
            }
        };
        self.add_cors(origin.as_deref(), &mut response);
        response
    }

    async fn route(&self, request: Request<Bytes>) -> Result<Response<Bytes>, ErrorBody> {
        let path = request.uri().path().trim_end_matches('/');
        if !(path.ends_with("/api/uploads") || path == "/uploads") {
            return Err(ErrorBody::new(
                ErrorCode::NotFound,
                format!("no such endpoint: {}", request.uri().path()),
            ));
        }
        match *request.method() {
            Method::POST => self.create_upload(request).await,
            Method::GET => self.list_uploads(request).await,
            _ => Err(ErrorBody::new(
                ErrorCode::MethodNotAllowed,
                format!("{} is not allowed here; use POST or GET", request.method()),
            )),
        }
    }

    async fn create_upload(&self, request: Request<Bytes>) -> Result<Response<Bytes>, ErrorBody> {
        let claimed = request
            .headers()
            .get(IDENTITY_HEADER)
            .and_then(|v| v.to_str().ok());
        let owner = self.identity.verify(claimed).await?;
        let body = parse_create_request(request.body())?;
        let (format, size) = self.validate(&body)?;

        let key = UploadKey {
            owner,
            id: ulid::Ulid::new().to_string(),
            format,
        };
        let expires_in = Duration::from_secs(self.config.url_expiry_secs);
        let mut metadata = BTreeMap::new();
        if let Some(name) = body
            .filename
            .as_deref()
            .map(str::trim)
            .filter(|n| !n.is_empty())
        {
            metadata.insert(
                FILENAME_METADATA.to_string(),
                percent_encoding::utf8_percent_encode(name, percent_encoding::NON_ALPHANUMERIC)
                    .to_string(),
            );
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
            .map_err(storage_error)?;
        let result = self.result_location(key.result_key(), expires_in).await?;

        // Browsers compute Content-Length themselves and refuse to set it; it is still signed.
        let headers = upload
            .headers
            .into_iter()
            .filter(|(name, _)| !name.eq_ignore_ascii_case("content-length"))
            .collect();
        let response = CreateUploadResponse {
            id: key.id.clone(),
            upload: PresignedUpload {
                url: upload.url,
                method: upload.method,
                headers,
            },
            result,
            expires_at: rfc3339(SystemTime::now() + expires_in),
        };
        tracing::info!(key = %key, size, content_type = format.content_type(), "presigned upload");
        Ok(json_response(StatusCode::CREATED, &response))
    }

    /// `GET /api/uploads?limit=20&before=ID`: the caller's uploads, newest first, with fresh URLs.
    async fn list_uploads(&self, request: Request<Bytes>) -> Result<Response<Bytes>, ErrorBody> {
        let claimed = request
            .headers()
            .get(IDENTITY_HEADER)
            .and_then(|v| v.to_str().ok());
        let owner = self.identity.verify(claimed).await?;
        let query = Query::parse(request.uri().query().unwrap_or_default())?;
        let prefix = UploadKey::owner_uploads_prefix(&owner);
        // Keys are ULIDs, so key order is time order; S3 lists ascending only, hence the full
        // listing (capped) and the reversal.
        let mut keys: Vec<(String, u64, Option<SystemTime>)> = Vec::new();
        let mut token = None;
        loop {
            let page = self
                .store
                .list(&prefix, 1000, token)
                .await
                .map_err(storage_error)?;
            keys.extend(
                page.objects
                    .into_iter()
                    .map(|o| (o.key, o.size, o.last_modified)),
            );
            token = page.next_token;
            if token.is_none() || keys.len() >= MAX_HISTORY_SCAN {
                break;
            }
        }
        keys.sort_by(|a, b| b.0.cmp(&a.0));
        let mut selected = Vec::new();
        let mut more = false;
        for (key, size, modified) in keys {
            let Some(parsed) = UploadKey::parse(&key) else {
                continue;
            };
            if query
                .before
                .as_deref()
                .is_some_and(|b| parsed.id.as_str() >= b)
            {
                continue;
            }
            if selected.len() == query.limit {
                more = true;
                break;
            }
            selected.push((parsed, size, modified));
        }
        let expires_in = Duration::from_secs(self.config.url_expiry_secs);
        let mut uploads = Vec::with_capacity(selected.len());
        for (parsed, size, modified) in &selected {
            let key = parsed.to_string();
            let result_key = parsed.result_key();
            let filename = self
                .store
                .head(&key)
                .await
                .map_err(storage_error)?
                .and_then(|m| m.metadata.get(FILENAME_METADATA).cloned())
                .map(|n| {
                    percent_encoding::percent_decode_str(&n)
                        .decode_utf8_lossy()
                        .into_owned()
                });
            let image = self
                .store
                .presign(PresignRequest::Get { key: key.clone() }, expires_in)
                .await
                .map_err(storage_error)?;
            let result = self.result_location(result_key, expires_in).await?;
            uploads.push(UploadSummary {
                id: parsed.id.clone(),
                key,
                filename,
                content_type: parsed.format.content_type().to_string(),
                size: *size,
                uploaded_at: modified.map(rfc3339),
                image_url: image.url,
                result,
            });
        }
        let next_before = if more {
            selected.last().map(|(p, _, _)| p.id.clone())
        } else {
            None
        };
        Ok(json_response(
            StatusCode::OK,
            &UploadHistory {
                uploads,
                next_before,
                expires_at: rfc3339(SystemTime::now() + expires_in),
            },
        ))
    }

    /// Where a result document will be, with HEAD and GET presigned separately (the method is part
    /// of a SigV4 signature).
    async fn result_location(
        &self,
        key: String,
        expires_in: Duration,
    ) -> Result<ResultLocation, ErrorBody> {
        let head = self
            .store
            .presign(PresignRequest::Head { key: key.clone() }, expires_in)
            .await
            .map_err(storage_error)?;
        let get = self
            .store
            .presign(PresignRequest::Get { key: key.clone() }, expires_in)
            .await
            .map_err(storage_error)?;
        Ok(ResultLocation {
            key,
            head_url: head.url,
            get_url: get.url,
        })
    }

    fn validate(&self, body: &CreateUploadRequest) -> Result<(ImageFormat, u64), ErrorBody> {
        if body.filename.as_ref().is_some_and(|f| f.len() > 1024) {
            return Err(ErrorBody::new(
                ErrorCode::MalformedRequest,
                "filename is longer than 1024 bytes",
            ));
        }
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

    fn add_cors(&self, origin: Option<&str>, response: &mut Response<Bytes>) {
        write_cors(
            response.headers_mut(),
            origin.and_then(|o| self.config.cors_origin(o)),
            "GET, POST, OPTIONS",
            "content-type, x-snaplabel-identity",
        );
    }
}

/// Writes a CORS answer: always `Vary: Origin`; for an `allowed_origin` (from
/// [`PipelineConfig::cors_origin`]) the origin, the methods and request headers allowed, and
/// how long a browser may cache the preflight.
pub fn write_cors(
    headers: &mut http::HeaderMap,
    allowed_origin: Option<&str>,
    methods: &'static str,
    request_headers: &'static str,
) {
    headers.append(header::VARY, HeaderValue::from_static("Origin"));
    let Some(value) = allowed_origin.and_then(|o| HeaderValue::from_str(o).ok()) else {
        return;
    };
    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, value);
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static(methods),
    );
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static(request_headers),
    );
    headers.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static("600"),
    );
}

fn parse_create_request(body: &Bytes) -> Result<CreateUploadRequest, ErrorBody> {
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

fn json_kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

fn preflight() -> Response<Bytes> {
    let mut response = Response::new(Bytes::new());
    *response.status_mut() = StatusCode::NO_CONTENT;
    response
}

fn storage_error(err: crate::store::StoreError) -> ErrorBody {
    tracing::error!(error = %err, "presigning failed");
    ErrorBody::new(
        ErrorCode::StorageFailed,
        "the upload could not be prepared; try again",
    )
}

pub fn json_response<T: serde::Serialize>(status: StatusCode, body: &T) -> Response<Bytes> {
    let bytes = serde_json::to_vec(body).expect("API types serialize");
    let mut response = Response::new(Bytes::from(bytes));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

pub fn error_response(error: ErrorBody) -> Response<Bytes> {
    let status =
        StatusCode::from_u16(error.code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    json_response(status, &ApiError { error })
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

fn rfc3339(t: SystemTime) -> String {
    let t = time::OffsetDateTime::from(t)
        .replace_nanosecond(0)
        .unwrap_or_else(|_| time::OffsetDateTime::from(t));
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}
