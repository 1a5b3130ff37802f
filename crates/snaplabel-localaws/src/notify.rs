//! Bucket notifications, which s3s-fs does not emit: a wrapper `S3` implementation that forwards
//! every operation to the inner store and reports each successful object creation.
//!
//! The report is awaited before the client gets its answer: when the consumer (the label queue)
//! is full, uploads slow down instead of events piling up in memory.

use async_trait::async_trait;
use s3s::dto::*;
use s3s::{S3, S3Request, S3Response, S3Result};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// An object that was just created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectCreated {
    pub bucket: String,
    pub key: String,
    pub size: u64,
    pub etag: Option<String>,
    /// `ObjectCreated:Put`, `ObjectCreated:CompleteMultipartUpload`, `ObjectCreated:Copy`.
    pub event_name: &'static str,
}

pub type Listener =
    Arc<dyn Fn(ObjectCreated) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

pub struct Notifying<S> {
    inner: S,
    listener: Listener,
}

impl<S> Notifying<S> {
    pub fn new(inner: S, listener: Listener) -> Self {
        Notifying { inner, listener }
    }
}

fn etag_string(etag: Option<&ETag>) -> Option<String> {
    etag.map(|e| format!("\"{}\"", e.value()))
}

/// Forwards operations unchanged. Written in `async_trait`'s expanded form, because that
/// attribute runs before this macro is expanded and would not rewrite `async fn`s inside it.
macro_rules! forward {
    ($($name:ident: $input:ty => $output:ty;)*) => {
        $(
            fn $name<'life0, 'async_trait>(
                &'life0 self,
                req: S3Request<$input>,
            ) -> Pin<Box<dyn Future<Output = S3Result<S3Response<$output>>> + Send + 'async_trait>>
            where
                'life0: 'async_trait,
                Self: 'async_trait,
            {
                self.inner.$name(req)
            }
        )*
    };
}

#[async_trait]
impl<S: S3> S3 for Notifying<S> {
    forward! {
        create_bucket: CreateBucketInput => CreateBucketOutput;
        delete_bucket: DeleteBucketInput => DeleteBucketOutput;
        delete_object: DeleteObjectInput => DeleteObjectOutput;
        delete_objects: DeleteObjectsInput => DeleteObjectsOutput;
        get_bucket_location: GetBucketLocationInput => GetBucketLocationOutput;
        get_object: GetObjectInput => GetObjectOutput;
        head_bucket: HeadBucketInput => HeadBucketOutput;
        head_object: HeadObjectInput => HeadObjectOutput;
        list_buckets: ListBucketsInput => ListBucketsOutput;
        list_objects: ListObjectsInput => ListObjectsOutput;
        list_objects_v2: ListObjectsV2Input => ListObjectsV2Output;
        create_multipart_upload: CreateMultipartUploadInput => CreateMultipartUploadOutput;
        upload_part: UploadPartInput => UploadPartOutput;
        upload_part_copy: UploadPartCopyInput => UploadPartCopyOutput;
        list_parts: ListPartsInput => ListPartsOutput;
        abort_multipart_upload: AbortMultipartUploadInput => AbortMultipartUploadOutput;
    }

    async fn put_object(
        &self,
        req: S3Request<PutObjectInput>,
    ) -> S3Result<S3Response<PutObjectOutput>> {
        let (bucket, key) = (req.input.bucket.clone(), req.input.key.clone());
        let size = req.input.content_length.unwrap_or(0).max(0) as u64;
        let response = self.inner.put_object(req).await?;
        let etag = etag_string(response.output.e_tag.as_ref());
        (self.listener)(ObjectCreated {
            bucket,
            key,
            size,
            etag,
            event_name: "ObjectCreated:Put",
        })
        .await;
        Ok(response)
    }

    async fn complete_multipart_upload(
        &self,
        req: S3Request<CompleteMultipartUploadInput>,
    ) -> S3Result<S3Response<CompleteMultipartUploadOutput>> {
        let (bucket, key) = (req.input.bucket.clone(), req.input.key.clone());
        let response = self.inner.complete_multipart_upload(req).await?;
        let etag = etag_string(response.output.e_tag.as_ref());
        (self.listener)(ObjectCreated {
            bucket,
            key,
            size: 0,
            etag,
            event_name: "ObjectCreated:CompleteMultipartUpload",
        })
        .await;
        Ok(response)
    }

    async fn copy_object(
        &self,
        req: S3Request<CopyObjectInput>,
    ) -> S3Result<S3Response<CopyObjectOutput>> {
        let (bucket, key) = (req.input.bucket.clone(), req.input.key.clone());
        let response = self.inner.copy_object(req).await?;
        (self.listener)(ObjectCreated {
            bucket,
            key,
            size: 0,
            etag: None,
            event_name: "ObjectCreated:Copy",
        })
        .await;
        Ok(response)
    }
}
