//! s3s-fs plus what a local S3 endpoint needs beyond it, as a wrapping `S3` implementation that
//! forwards every other operation unchanged:
//!
//! - **Bucket notifications**, which s3s-fs does not emit: each successful object creation is
//!   reported, and the report is awaited before the client gets its answer, so when the consumer
//!   (the label queue) is full, uploads slow down instead of events piling up in memory.
//! - **Whole-object reads in one go**: s3s-fs streams GET bodies in 4 KB reads, each a trip to
//!   tokio's blocking pool (a 3 MB photo took ~57 ms over loopback); a plain GET of a whole object
//!   is served from one read instead.
//! - **Reads never see half a replacement**: a GET waits while a conditional write replaces the
//!   object, so its body, ETag and checksums are one version's (compare-and-swap writers of the
//!   gallery index rely on it).
//! - **S3's limits and conditional writes as AWS enforces them**, so dev fails where AWS would:
//!   user metadata over 2 KB is refused (`MetadataTooLarge`), `If-None-Match: *` creates an
//!   object once and `If-Match` replaces only the version read, even under concurrent PUTs of
//!   the same key (s3s-fs checks the condition before it writes; a second conditional PUT
//!   racing the first gets `ConditionalRequestConflict`, as on S3).

use async_trait::async_trait;
use s3s::dto::*;
use s3s::{S3, S3Request, S3Response, S3Result, s3_error};
use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::path::{Component, Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;

/// Objects up to this size are read whole for a GET; larger ones keep s3s-fs's stream.
const WHOLE_READ_MAX_BYTES: i64 = 32 * 1024 * 1024;
/// S3's limit on user metadata: keys and values, in UTF-8 bytes.
pub const MAX_USER_METADATA_BYTES: usize = 2 * 1024;

fn check_metadata(metadata: Option<&Metadata>) -> S3Result<()> {
    let size: usize = metadata
        .map(|m| m.iter().map(|(k, v)| k.len() + v.len()).sum())
        .unwrap_or(0);
    if size > MAX_USER_METADATA_BYTES {
        return Err(s3_error!(
            MetadataTooLarge,
            "Your metadata headers exceed the maximum allowed metadata size ({size} of {MAX_USER_METADATA_BYTES} bytes)"
        ));
    }
    Ok(())
}

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

/// s3s-fs over `root`, with notifications to `listener` (if any) and whole-object reads.
pub struct LocalFs {
    inner: s3s_fs::FileSystem,
    root: PathBuf,
    listener: Option<Listener>,
    /// Keys being written under a condition (`If-None-Match: *`, `If-Match`) right now.
    writing: std::sync::Mutex<HashSet<(String, String)>>,
    /// Readers and conditional writers of a key exclude each other.
    locks: KeyLocks,
}

/// Removes a key from [`LocalFs::writing`] when its conditional PUT ends, however it ends.
struct Writing<'a> {
    set: &'a std::sync::Mutex<HashSet<(String, String)>>,
    key: (String, String),
}

impl Drop for Writing<'_> {
    fn drop(&mut self) {
        if let Ok(mut set) = self.set.lock() {
            set.remove(&self.key);
        }
    }
}

type LockMap = std::sync::Mutex<HashMap<(String, String), Arc<tokio::sync::RwLock<()>>>>;

/// A read-write lock per key, made when first needed and dropped with its last holder.
#[derive(Default)]
struct KeyLocks {
    map: Arc<LockMap>,
}

/// A held key lock; removes the key's entry when nobody else holds or waits for it.
struct KeyLock<G> {
    _guard: G,
    map: Arc<LockMap>,
    key: (String, String),
}

impl<G> Drop for KeyLock<G> {
    fn drop(&mut self) {
        if let Ok(mut map) = self.map.lock()
            // The map's handle and this holder's: nobody else has it. Handles are only cloned
            // under the map's mutex, so the count cannot grow meanwhile.
            && map.get(&self.key).is_some_and(|l| Arc::strong_count(l) <= 2)
        {
            map.remove(&self.key);
        }
    }
}

impl KeyLocks {
    fn handle(&self, bucket: &str, key: &str) -> Arc<tokio::sync::RwLock<()>> {
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        map.entry((bucket.to_string(), key.to_string()))
            .or_default()
            .clone()
    }

    async fn read(
        &self,
        bucket: &str,
        key: &str,
    ) -> KeyLock<tokio::sync::OwnedRwLockReadGuard<()>> {
        let guard = self.handle(bucket, key).read_owned().await;
        self.held(bucket, key, guard)
    }

    async fn write(
        &self,
        bucket: &str,
        key: &str,
    ) -> KeyLock<tokio::sync::OwnedRwLockWriteGuard<()>> {
        let guard = self.handle(bucket, key).write_owned().await;
        self.held(bucket, key, guard)
    }

    /// A guard taken on the key's lock, which forgets the lock when its last holder lets go.
    fn held<G>(&self, bucket: &str, key: &str, guard: G) -> KeyLock<G> {
        KeyLock {
            _guard: guard,
            map: self.map.clone(),
            key: (bucket.to_string(), key.to_string()),
        }
    }
}

impl LocalFs {
    pub fn new(root: &Path, listener: Option<Listener>) -> std::io::Result<Self> {
        let inner =
            s3s_fs::FileSystem::new(root).map_err(|e| std::io::Error::other(format!("{e:?}")))?;
        Ok(LocalFs {
            inner,
            root: root.to_path_buf(),
            listener,
            writing: std::sync::Mutex::new(HashSet::new()),
            locks: KeyLocks::default(),
        })
    }

    /// Reports an object creation as S3's event does, with the size of the object as stored
    /// (`known_size` only if the file cannot be found, e.g. for keys s3s-fs stores elsewhere).
    async fn notify_created(
        &self,
        bucket: String,
        key: String,
        etag: Option<String>,
        event_name: &'static str,
        known_size: Option<u64>,
    ) {
        let Some(listener) = &self.listener else {
            return;
        };
        let stored = match self.object_path(&bucket, &key) {
            Some(path) => tokio::fs::metadata(path).await.ok().map(|m| m.len()),
            None => None,
        };
        listener(ObjectCreated {
            bucket,
            key,
            size: stored.or(known_size).unwrap_or(0),
            etag,
            event_name,
        })
        .await;
    }

    /// Where s3s-fs keeps an object, for keys made only of plain path components (anything else
    /// keeps s3s-fs's own read).
    fn object_path(&self, bucket: &str, key: &str) -> Option<PathBuf> {
        let key = Path::new(key);
        let plain = key.components().all(|c| matches!(c, Component::Normal(_)));
        (plain && !bucket.contains(['/', '\\']) && bucket != "..")
            .then(|| self.root.join(bucket).join(key))
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
impl S3 for LocalFs {
    forward! {
        create_bucket: CreateBucketInput => CreateBucketOutput;
        delete_bucket: DeleteBucketInput => DeleteBucketOutput;
        delete_object: DeleteObjectInput => DeleteObjectOutput;
        delete_objects: DeleteObjectsInput => DeleteObjectsOutput;
        get_bucket_location: GetBucketLocationInput => GetBucketLocationOutput;
        head_bucket: HeadBucketInput => HeadBucketOutput;
        head_object: HeadObjectInput => HeadObjectOutput;
        list_buckets: ListBucketsInput => ListBucketsOutput;
        list_objects: ListObjectsInput => ListObjectsOutput;
        list_objects_v2: ListObjectsV2Input => ListObjectsV2Output;
        upload_part: UploadPartInput => UploadPartOutput;
        upload_part_copy: UploadPartCopyInput => UploadPartCopyOutput;
        list_parts: ListPartsInput => ListPartsOutput;
        abort_multipart_upload: AbortMultipartUploadInput => AbortMultipartUploadOutput;
    }

    async fn put_object(
        &self,
        req: S3Request<PutObjectInput>,
    ) -> S3Result<S3Response<PutObjectOutput>> {
        check_metadata(req.input.metadata.as_ref())?;
        let (bucket, key) = (req.input.bucket.clone(), req.input.key.clone());
        let size = req.input.content_length.unwrap_or(0).max(0) as u64;
        let mut req = req;
        // Conditional writes to one key run one at a time; s3s-fs checks the condition before it
        // writes, so without this two writers could both pass it.
        let create_only = req.input.if_none_match.as_ref().is_some_and(|c| c.is_any());
        let _writing = if create_only || req.input.if_match.is_some() {
            let entry = (bucket.clone(), key.clone());
            let refusal = {
                let mut set = self.writing.lock().map_err(|_| s3_error!(InternalError))?;
                if !set.insert(entry.clone()) {
                    Some(s3_error!(
                        ConditionalRequestConflict,
                        "A conflicting conditional operation is currently in progress against this resource."
                    ))
                } else {
                    None
                }
            };
            let writing = refusal.is_none().then(|| Writing {
                set: &self.writing,
                key: entry,
            });
            let exists = create_only
                && self
                    .object_path(&bucket, &key)
                    .is_some_and(|path| path.is_file());
            if let Some(refusal) = refusal.or_else(|| {
                exists.then(|| {
                    s3_error!(
                        PreconditionFailed,
                        "At least one of the pre-conditions you specified did not hold"
                    )
                })
            }) {
                // Read the body before answering, as S3 does: a client still sending it
                // would otherwise see the connection closed instead of the answer.
                if let Some(mut body) = req.input.body.take() {
                    use futures_util::StreamExt;
                    while let Some(Ok(_)) = body.next().await {}
                }
                return Err(refusal);
            }
            writing
        } else {
            None
        };
        let _replacing = match &_writing {
            Some(_) => Some(self.locks.write(&bucket, &key).await),
            None => None,
        };
        let response = self.inner.put_object(req).await?;
        let etag = etag_string(response.output.e_tag.as_ref());
        self.notify_created(bucket, key, etag, "ObjectCreated:Put", Some(size))
            .await;
        Ok(response)
    }

    async fn create_multipart_upload(
        &self,
        req: S3Request<CreateMultipartUploadInput>,
    ) -> S3Result<S3Response<CreateMultipartUploadOutput>> {
        check_metadata(req.input.metadata.as_ref())?;
        self.inner.create_multipart_upload(req).await
    }

    async fn complete_multipart_upload(
        &self,
        req: S3Request<CompleteMultipartUploadInput>,
    ) -> S3Result<S3Response<CompleteMultipartUploadOutput>> {
        let (bucket, key) = (req.input.bucket.clone(), req.input.key.clone());
        let response = self.inner.complete_multipart_upload(req).await?;
        let etag = etag_string(response.output.e_tag.as_ref());
        let event = "ObjectCreated:CompleteMultipartUpload";
        self.notify_created(bucket, key, etag, event, None).await;
        Ok(response)
    }

    async fn copy_object(
        &self,
        req: S3Request<CopyObjectInput>,
    ) -> S3Result<S3Response<CopyObjectOutput>> {
        check_metadata(req.input.metadata.as_ref())?;
        let (bucket, key) = (req.input.bucket.clone(), req.input.key.clone());
        let response = self.inner.copy_object(req).await?;
        let etag = etag_string(
            response
                .output
                .copy_object_result
                .as_ref()
                .and_then(|r| r.e_tag.as_ref()),
        );
        self.notify_created(bucket, key, etag, "ObjectCreated:Copy", None)
            .await;
        Ok(response)
    }

    async fn get_object(
        &self,
        req: S3Request<GetObjectInput>,
    ) -> S3Result<S3Response<GetObjectOutput>> {
        let whole = req.input.range.is_none() && req.input.part_number.is_none();
        let path = self.object_path(&req.input.bucket, &req.input.key);
        // Not while a conditional write replaces the object: s3s-fs renames the new body into
        // place, then saves its ETag and checksums, and opens the file before it loads them; a
        // read in between would pair one version's body with another's ETag (a compare-and-swap
        // built on it drops the newer version's change) or checksum (the SDK refuses the body).
        let _reading = self.locks.read(&req.input.bucket, &req.input.key).await;
        // s3s-fs answers first: it validates the request and sets every header.
        let mut response = self.inner.get_object(req).await?;
        let length = response.output.content_length.unwrap_or(-1);
        if whole
            && (0..=WHOLE_READ_MAX_BYTES).contains(&length)
            && let Some(path) = path
            && let Ok(bytes) = tokio::fs::read(&path).await
            // Replaced in between: keep the stream that matches the headers.
            && bytes.len() as i64 == length
        {
            response.output.body = Some(StreamingBlob::from(s3s::Body::from(bytes)));
        }
        Ok(response)
    }
}
