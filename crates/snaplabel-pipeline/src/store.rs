//! The object store the handlers talk to, and its S3 implementation.
//!
//! The trait is small on purpose: what the handlers need, nothing else. In Lambda and in
//! `snaplabel dev` it is the same [`S3Store`] over `aws-sdk-s3`; only the endpoint differs.

use async_trait::async_trait;
use aws_sdk_s3::presigning::PresigningConfig;
use bytes::Bytes;
use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

/// What a HEAD or GET tells about an object.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObjectMeta {
    pub size: u64,
    pub etag: Option<String>,
    pub content_type: Option<String>,
    /// User metadata (`x-amz-meta-*`), keys lower-case without the prefix.
    pub metadata: BTreeMap<String, String>,
    pub last_modified: Option<SystemTime>,
}

impl ObjectMeta {
    /// The file name the client uploaded the object under (`x-amz-meta-original-filename`,
    /// decoded), if it gave one.
    pub fn original_filename(&self) -> Option<String> {
        self.metadata
            .get(snaplabel_core::api::FILENAME_METADATA)
            .map(|n| snaplabel_core::api::filename_from_metadata(n))
    }
}

/// One entry of a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedObject {
    pub key: String,
    pub size: u64,
    pub last_modified: Option<SystemTime>,
}

/// A page of a listing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListPage {
    pub objects: Vec<ListedObject>,
    pub next_token: Option<String>,
}

/// A request to sign for later use by someone without credentials (the browser).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PresignRequest {
    /// PUT with Content-Type, Content-Length and `If-None-Match: *` signed in: the URL creates
    /// one object, once (a second PUT to the key answers 412), of exactly that type and size.
    Put {
        key: String,
        content_type: String,
        content_length: u64,
        metadata: BTreeMap<String, String>,
    },
    Head {
        key: String,
    },
    Get {
        key: String,
    },
}

/// A signed request: the exact method, URL and headers the holder must use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresignedRequest {
    pub method: String,
    pub url: String,
    pub headers: BTreeMap<String, String>,
}

/// A precondition on a write, as S3 conditional writes express it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteCondition {
    /// `If-None-Match: *`: only if the key does not exist.
    Absent,
    /// `If-Match: <etag>`: only if the object is still the one read (compare-and-swap).
    Matches(String),
}

/// How an object is written, beyond its body and type.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PutOptions {
    /// User metadata (`x-amz-meta-*`).
    pub metadata: BTreeMap<String, String>,
    pub condition: Option<WriteCondition>,
    /// `Content-Disposition`, returned with every GET (downloads named by the server).
    pub content_disposition: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A conditional write was refused: the object changed since it was read (412), or another
    /// conditional write to it was in progress (409). Read again and retry.
    #[error("conditional write to {key} refused: the object changed")]
    Conflict { key: String },
    /// The object exceeded the size the caller allowed (checked before reading it).
    #[error("object is {size} bytes, over the {limit}-byte limit")]
    TooLarge { size: u64, limit: u64 },
    /// Anything else from the store (network, permissions, throttling) after the SDK's retries.
    #[error("object store failed: {operation} {key}")]
    Backend {
        operation: &'static str,
        key: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

#[async_trait]
pub trait ObjectStore: Send + Sync {
    fn bucket(&self) -> &str;
    /// `Ok(None)` when the object does not exist.
    async fn head(&self, key: &str) -> Result<Option<ObjectMeta>, StoreError>;
    /// Reads a whole object of at most `max_bytes`; `Ok(None)` when it does not exist.
    async fn get(
        &self,
        key: &str,
        max_bytes: u64,
    ) -> Result<Option<(ObjectMeta, Bytes)>, StoreError>;
    /// Writes an object unconditionally.
    async fn put(
        &self,
        key: &str,
        body: Bytes,
        content_type: &str,
        metadata: BTreeMap<String, String>,
    ) -> Result<(), StoreError> {
        let options = PutOptions {
            metadata,
            ..PutOptions::default()
        };
        self.put_with(key, body, content_type, options).await
    }
    /// Writes an object; a refused [`WriteCondition`] is [`StoreError::Conflict`].
    async fn put_with(
        &self,
        key: &str,
        body: Bytes,
        content_type: &str,
        options: PutOptions,
    ) -> Result<(), StoreError>;
    /// Deletes an object; deleting one that does not exist succeeds, as on S3.
    async fn delete(&self, key: &str) -> Result<(), StoreError>;
    /// Lists keys under `prefix` in ascending key order, from after `start_after` when given
    /// (continuing with `token` from a previous page).
    async fn list(
        &self,
        prefix: &str,
        max_keys: u32,
        start_after: Option<&str>,
        token: Option<String>,
    ) -> Result<ListPage, StoreError>;
    async fn presign(
        &self,
        request: PresignRequest,
        expires_in: Duration,
    ) -> Result<PresignedRequest, StoreError>;
}

/// [`ObjectStore`] over one S3 bucket.
#[derive(Clone, Debug)]
pub struct S3Store {
    client: aws_sdk_s3::Client,
    bucket: String,
}

impl S3Store {
    pub fn new(client: aws_sdk_s3::Client, bucket: impl Into<String>) -> Self {
        S3Store {
            client,
            bucket: bucket.into(),
        }
    }

    pub fn client(&self) -> &aws_sdk_s3::Client {
        &self.client
    }
}

fn backend<E: std::error::Error + Send + Sync + 'static>(
    operation: &'static str,
    key: &str,
    err: E,
) -> StoreError {
    StoreError::Backend {
        operation,
        key: key.to_string(),
        source: Box::new(err),
    }
}

fn to_system_time(t: Option<&aws_sdk_s3::primitives::DateTime>) -> Option<SystemTime> {
    t.and_then(|t| SystemTime::try_from(*t).ok())
}

/// `ObjectMeta` from a HEAD or GET answer: the SDK gives them the same accessors on two types.
macro_rules! object_meta {
    ($out:expr) => {
        ObjectMeta {
            size: $out.content_length().unwrap_or(0).max(0) as u64,
            etag: $out.e_tag().map(str::to_string),
            content_type: $out.content_type().map(str::to_string),
            metadata: lower_metadata($out.metadata()),
            last_modified: to_system_time($out.last_modified()),
        }
    };
}

fn lower_metadata(
    m: Option<&std::collections::HashMap<String, String>>,
) -> BTreeMap<String, String> {
    m.map(|m| {
        m.iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
            .collect()
    })
    .unwrap_or_default()
}

#[async_trait]
impl ObjectStore for S3Store {
    fn bucket(&self) -> &str {
        &self.bucket
    }

    async fn head(&self, key: &str) -> Result<Option<ObjectMeta>, StoreError> {
        match self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(out) => Ok(Some(object_meta!(out))),
            Err(err) => {
                if err.as_service_error().is_some_and(|e| e.is_not_found())
                    || err
                        .raw_response()
                        .is_some_and(|r| r.status().as_u16() == 404)
                {
                    Ok(None)
                } else {
                    Err(backend("HEAD", key, err))
                }
            }
        }
    }

    async fn get(
        &self,
        key: &str,
        max_bytes: u64,
    ) -> Result<Option<(ObjectMeta, Bytes)>, StoreError> {
        let out = match self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(out) => out,
            Err(err) if err.as_service_error().is_some_and(|e| e.is_no_such_key()) => {
                return Ok(None);
            }
            Err(err) => return Err(backend("GET", key, err)),
        };
        let meta = object_meta!(out);
        if meta.size > max_bytes {
            return Err(StoreError::TooLarge {
                size: meta.size,
                limit: max_bytes,
            });
        }
        let body = out
            .body
            .collect()
            .await
            .map_err(|e| backend("GET body", key, e))?
            .into_bytes();
        // A server that lied about Content-Length must not make us hold more than allowed.
        if body.len() as u64 > max_bytes {
            return Err(StoreError::TooLarge {
                size: body.len() as u64,
                limit: max_bytes,
            });
        }
        Ok(Some((
            ObjectMeta {
                size: body.len() as u64,
                ..meta
            },
            body,
        )))
    }

    async fn put_with(
        &self,
        key: &str,
        body: Bytes,
        content_type: &str,
        options: PutOptions,
    ) -> Result<(), StoreError> {
        let (if_match, if_none_match) = match options.condition {
            Some(WriteCondition::Absent) => (None, Some("*".to_string())),
            Some(WriteCondition::Matches(etag)) => (Some(etag), None),
            None => (None, None),
        };
        let conditional = if_match.is_some() || if_none_match.is_some();
        let sent = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .set_metadata(Some(options.metadata.into_iter().collect()))
            .set_content_disposition(options.content_disposition)
            .set_if_match(if_match)
            .set_if_none_match(if_none_match)
            .body(body.into())
            .send()
            .await;
        match sent {
            Ok(_) => Ok(()),
            Err(err)
                if conditional
                    && err
                        .raw_response()
                        .is_some_and(|r| matches!(r.status().as_u16(), 409 | 412)) =>
            {
                Err(StoreError::Conflict {
                    key: key.to_string(),
                })
            }
            Err(err) => Err(backend("PUT", key, err)),
        }
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| backend("DELETE", key, e))?;
        Ok(())
    }

    async fn list(
        &self,
        prefix: &str,
        max_keys: u32,
        start_after: Option<&str>,
        token: Option<String>,
    ) -> Result<ListPage, StoreError> {
        let out = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(prefix)
            .max_keys(max_keys.min(1000) as i32)
            .set_start_after(start_after.map(str::to_string))
            .set_continuation_token(token)
            .send()
            .await
            .map_err(|e| backend("LIST", prefix, e))?;
        let objects = out
            .contents()
            .iter()
            .filter_map(|o| {
                Some(ListedObject {
                    key: o.key()?.to_string(),
                    size: o.size().unwrap_or(0).max(0) as u64,
                    last_modified: to_system_time(o.last_modified()),
                })
            })
            .collect();
        let next_token = if out.is_truncated().unwrap_or(false) {
            out.next_continuation_token().map(str::to_string)
        } else {
            None
        };
        Ok(ListPage {
            objects,
            next_token,
        })
    }

    async fn presign(
        &self,
        request: PresignRequest,
        expires_in: Duration,
    ) -> Result<PresignedRequest, StoreError> {
        let config = PresigningConfig::expires_in(expires_in)
            .map_err(|e| backend("presigning config", "", e))?;
        let signed = match request {
            PresignRequest::Put {
                key,
                content_type,
                content_length,
                metadata,
            } => self
                .client
                .put_object()
                .bucket(&self.bucket)
                .key(&key)
                .content_type(content_type)
                .content_length(content_length as i64)
                .if_none_match("*")
                .set_metadata((!metadata.is_empty()).then(|| metadata.into_iter().collect()))
                .presigned(config)
                .await
                .map_err(|e| backend("presign PUT", &key, e))?,
            PresignRequest::Head { key } => self
                .client
                .head_object()
                .bucket(&self.bucket)
                .key(&key)
                .presigned(config)
                .await
                .map_err(|e| backend("presign HEAD", &key, e))?,
            PresignRequest::Get { key } => self
                .client
                .get_object()
                .bucket(&self.bucket)
                .key(&key)
                .presigned(config)
                .await
                .map_err(|e| backend("presign GET", &key, e))?,
        };
        Ok(PresignedRequest {
            method: signed.method().to_string(),
            url: signed.uri().to_string(),
            headers: signed
                .headers()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        })
    }
}
