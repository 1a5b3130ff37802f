//! The label handler: S3 `ObjectCreated` event in, one result document per upload out.
//!
//! Invariants (see ARCHITECTURE.md):
//! - every record of an event is handled; one bad record never stops the others;
//! - keys outside `uploads/` are ignored, so writing `labels/` can never re-trigger labeling;
//! - every upload under `uploads/` ends in exactly one document, success or failure, so no
//!   client polls forever;
//! - a redelivered event for the same bytes (same ETag) leaves the existing document untouched;
//! - the size is checked before downloading, the header before decoding;
//! - a generated upload's document is followed by its entry in the owner's gallery index, and an
//!   upload its owner deleted gets neither (a late event or re-scan cannot bring it back).
//!
//! Only infrastructure failures (the store unreachable even for writing the failure document)
//! make the handler return an error, so that Lambda delivers the event again.

use crate::gallery::Gallery;
use crate::labeler::{LabelRequest, Labeler};
use crate::store::{ObjectMeta, ObjectStore, StoreError};
pub use aws_lambda_events::event::s3::{S3Event, S3EventRecord};
/// Displays an error with its sources, for log lines (any error type, not only the SDK's).
use aws_sdk_s3::error::DisplayErrorContext;
use bytes::Bytes;
use snaplabel_core::detect::DetectOptions;
use snaplabel_core::gallery::IndexEntry;
use snaplabel_core::keys::{UploadKey, decode_event_key, result_key_for};
use snaplabel_core::result::{ImageInfo, ResultDocument, SourceObject, Timings};
use snaplabel_core::{ErrorBody, ErrorCode};
use snaplabel_imageio::Limits;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;
use tracing::Instrument;

/// Metadata on a result document naming the ETag of the bytes it describes.
pub const SOURCE_ETAG_METADATA: &str = "source-etag";

/// How the label handler judges images.
#[derive(Debug, Clone, PartialEq)]
pub struct LabelSettings {
    pub max_upload_bytes: u64,
    pub limits: Limits,
    pub options: DetectOptions,
}

impl LabelSettings {
    pub fn from_config(config: &snaplabel_core::config::Settings) -> Self {
        LabelSettings {
            max_upload_bytes: config.max_upload_bytes,
            limits: Limits::from_config(config),
            options: DetectOptions {
                max_labels: config.max_labels,
                min_confidence: Some(config.min_confidence),
                features: vec![
                    snaplabel_core::detect::Feature::GeneralLabels,
                    snaplabel_core::detect::Feature::ImageProperties,
                ],
                settings: None,
            },
        }
    }
}

/// What happened to one record.
#[derive(Debug, Clone, PartialEq)]
pub enum RecordOutcome {
    /// A document was written (`status` tells success or failure).
    Labeled {
        key: String,
        result_key: String,
        error: Option<ErrorCode>,
    },
    /// A document for these exact bytes already existed (duplicate delivery).
    AlreadyLabeled { key: String, result_key: String },
    /// Not ours to label (another prefix, another bucket, not a creation).
    Ignored { key: String, reason: String },
    /// Infrastructure failure: no document could be written; the event must be retried.
    Failed { key: String, error: String },
}

/// The outcome of every record of one event, in order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EventReport {
    pub records: Vec<RecordOutcome>,
}

/// Records of an event that got no document, so Lambda must deliver the event again.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{} record(s) must be retried: {}", .0.len(), .0.iter().map(|(key, error)| format!("{key}: {error}")).collect::<Vec<_>>().join("; "))]
pub struct RetryNeeded(pub Vec<(String, String)>);

impl EventReport {
    /// `Err` when any record must be retried, so the Lambda runtime reports the invocation failed.
    pub fn into_result(self) -> Result<EventReport, RetryNeeded> {
        let failed: Vec<(String, String)> = self
            .records
            .iter()
            .filter_map(|r| match r {
                RecordOutcome::Failed { key, error } => Some((key.clone(), error.clone())),
                _ => None,
            })
            .collect();
        if failed.is_empty() {
            Ok(self)
        } else {
            Err(RetryNeeded(failed))
        }
    }
}

pub struct LabelHandler {
    store: Arc<dyn ObjectStore>,
    gallery: Gallery,
    labeler: Arc<dyn Labeler>,
    settings: LabelSettings,
}

impl LabelHandler {
    pub fn new(
        store: Arc<dyn ObjectStore>,
        labeler: Arc<dyn Labeler>,
        settings: LabelSettings,
    ) -> Self {
        LabelHandler {
            gallery: Gallery::new(store.clone()),
            store,
            labeler,
            settings,
        }
    }

    /// Handles every record of an S3 event.
    pub async fn handle_event(&self, event: &S3Event) -> EventReport {
        let mut report = EventReport::default();
        for record in &event.records {
            report.records.push(self.handle_record(record).await);
        }
        report
    }

    async fn handle_record(&self, record: &S3EventRecord) -> RecordOutcome {
        let raw_key = record.s3.object.key.as_deref().unwrap_or_default();
        let key = decode_event_key(raw_key);
        let event_name = record.event_name.as_deref().unwrap_or_default();
        if !event_name.starts_with("ObjectCreated:") {
            return RecordOutcome::Ignored {
                key,
                reason: format!("event {event_name:?} is not an object creation"),
            };
        }
        let bucket = record.s3.bucket.name.as_deref().unwrap_or_default();
        if bucket != self.store.bucket() {
            return RecordOutcome::Ignored {
                key,
                reason: format!(
                    "bucket {bucket:?} is not the configured {:?}",
                    self.store.bucket()
                ),
            };
        }
        self.label_key(&key).await
    }

    /// Labels one object under `uploads/` and writes its document. Public so that `snaplabel dev`
    /// can re-queue unlabeled uploads at start-up without fabricating events.
    pub async fn label_key(&self, key: &str) -> RecordOutcome {
        let Some(result_key) = result_key_for(key) else {
            return RecordOutcome::Ignored {
                key: key.to_string(),
                reason: "outside uploads/".into(),
            };
        };
        // Instrumented, not entered: a guard held across awaits would tag other tasks' events.
        let span = tracing::info_span!("label", key = %key);
        self.label_and_write(key, result_key).instrument(span).await
    }

    async fn label_and_write(&self, key: &str, result_key: String) -> RecordOutcome {
        let upload = UploadKey::parse(key);
        let mut file = None;
        match self.label_to_document(key, &result_key, &mut file).await {
            Ok(Some(document)) => {
                let error = document.error_code();
                if error == Some(ErrorCode::ObjectMissing)
                    && let Some(upload) = &upload
                    && self.was_deleted(upload).await
                {
                    tracing::info!("deleted by its owner; not labeled");
                    return RecordOutcome::Ignored {
                        key: key.to_string(),
                        reason: "deleted by its owner".into(),
                    };
                }
                match self.write(&result_key, &document).await {
                    Ok(()) => {
                        if let Some(upload) = &upload {
                            self.index(upload, &document, file).await;
                        }
                        match &document.error {
                            None => {
                                tracing::info!(result_key = %result_key, labels = ?document.label_names(), ms = document.timings_ms.total, "labeled")
                            }
                            Some(e) => {
                                tracing::warn!(result_key = %result_key, code = %e.code, message = %e.message, "labeling failed")
                            }
                        }
                        RecordOutcome::Labeled {
                            key: key.to_string(),
                            result_key,
                            error,
                        }
                    }
                    Err(e) => {
                        let error = DisplayErrorContext(&e).to_string();
                        tracing::error!(error, "could not write the result document");
                        RecordOutcome::Failed {
                            key: key.to_string(),
                            error,
                        }
                    }
                }
            }
            Ok(None) => {
                tracing::info!(result_key = %result_key, "already labeled; duplicate delivery ignored");
                RecordOutcome::AlreadyLabeled {
                    key: key.to_string(),
                    result_key,
                }
            }
            Err(e) => {
                let error = DisplayErrorContext(&e).to_string();
                tracing::error!(error, "object store failed");
                RecordOutcome::Failed {
                    key: key.to_string(),
                    error,
                }
            }
        }
    }

    /// Whether the owner deleted this upload (an error reading the index counts as not).
    async fn was_deleted(&self, upload: &UploadKey) -> bool {
        match self.gallery.load(&upload.owner).await {
            Ok(loaded) => loaded.index.deleted.contains(&upload.id),
            Err(_) => false,
        }
    }

    /// Adds the upload to its owner's gallery index. A failure is logged, not retried here: the
    /// document exists, and the next search's repair adds what the index misses.
    async fn index(&self, upload: &UploadKey, document: &ResultDocument, file: Option<String>) {
        let entry = IndexEntry::from_result(document, upload.format.extension(), file);
        let added = self
            .gallery
            .update(&upload.owner, |index| index.add(&upload.id, entry.clone()))
            .await;
        match added {
            Ok(index) if index.deleted.contains(&upload.id) => {
                tracing::info!("deleted by its owner while it was labeled; left out of the gallery")
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %DisplayErrorContext(&e), "gallery index not updated; the next search repairs it")
            }
        }
    }

    /// The document (and, in `file`, the upload's original file name); `Ok(None)` when an
    /// up-to-date document already exists.
    async fn label_to_document(
        &self,
        key: &str,
        result_key: &str,
        file: &mut Option<String>,
    ) -> Result<Option<ResultDocument>, StoreError> {
        let started = Instant::now();
        let mut source = SourceObject {
            bucket: self.store.bucket().to_string(),
            key: key.to_string(),
            size: 0,
            etag: None,
        };
        let fail = |source: SourceObject,
                    image: Option<ImageInfo>,
                    code: ErrorCode,
                    message: String,
                    timings: Timings| {
            Ok(Some(ResultDocument::failure(
                source,
                image,
                ErrorBody::new(code, message),
                timings,
            )))
        };

        // Both HEADs at once: on AWS each S3 round trip costs tens of milliseconds.
        let (source_meta, existing) =
            tokio::join!(self.store.head(key), self.store.head(result_key));
        let Some(meta) = source_meta? else {
            return fail(
                source,
                None,
                ErrorCode::ObjectMissing,
                MISSING.into(),
                timings_since(started, 0.0, 0.0),
            );
        };
        if is_result_of(existing?.as_ref(), &meta) {
            return Ok(None);
        }
        *file = meta.original_filename();
        source.size = meta.size;
        source.etag = meta.etag.clone();
        if meta.size == 0 {
            return fail(
                source,
                None,
                ErrorCode::EmptyObject,
                "the upload is empty (0 bytes)".into(),
                timings_since(started, 0.0, 0.0),
            );
        }
        let limit = self.settings.max_upload_bytes;
        if meta.size > limit {
            let message = too_large(meta.size, limit);
            return fail(
                source,
                None,
                ErrorCode::TooLarge,
                message,
                timings_since(started, 0.0, 0.0),
            );
        }

        let download_started = Instant::now();
        let (meta, bytes) = match self.store.get(key, limit).await {
            Ok(Some(got)) => got,
            Ok(None) => {
                return fail(
                    source,
                    None,
                    ErrorCode::ObjectMissing,
                    MISSING.into(),
                    timings_since(started, 0.0, 0.0),
                );
            }
            Err(StoreError::TooLarge { size, limit }) => {
                let message = too_large(size, limit);
                return fail(
                    source,
                    None,
                    ErrorCode::TooLarge,
                    message,
                    timings_since(started, 0.0, 0.0),
                );
            }
            Err(e) => return Err(e),
        };
        let download_ms = ms(download_started);
        source.size = bytes.len() as u64;
        source.etag = meta.etag.clone();

        let probe = match snaplabel_imageio::probe(&bytes, &self.settings.limits) {
            Ok(probe) => probe,
            Err(e) => {
                return fail(
                    source,
                    None,
                    e.code,
                    e.message,
                    timings_since(started, download_ms, 0.0),
                );
            }
        };
        let image = ImageInfo {
            width: probe.width,
            height: probe.height,
            format: probe.format,
        };
        let label_started = Instant::now();
        let request = LabelRequest {
            bucket: self.store.bucket(),
            key,
            bytes: &bytes,
            probe: &probe,
            options: &self.settings.options,
        };
        let labeled = self.labeler.label(request).await;
        let timings = timings_since(started, download_ms, ms(label_started));
        let document = match labeled {
            Ok(detection) => {
                ResultDocument::success(source, image, self.labeler.info(), detection, timings)
            }
            Err(error) => ResultDocument::failure(source, Some(image), error, timings),
        };
        Ok(Some(document))
    }

    async fn write(&self, result_key: &str, document: &ResultDocument) -> Result<(), StoreError> {
        let body =
            Bytes::from(serde_json::to_vec_pretty(document).expect("result documents serialize"));
        let mut metadata = BTreeMap::new();
        if let Some(etag) = &document.source.etag {
            metadata.insert(SOURCE_ETAG_METADATA.to_string(), etag.clone());
        }
        metadata.insert(
            "status".to_string(),
            if document.error.is_some() {
                "error".into()
            } else {
                "ok".into()
            },
        );
        self.store
            .put(result_key, body, "application/json", metadata)
            .await
    }
}

const MISSING: &str = "the upload no longer exists";

fn too_large(size: u64, limit: u64) -> String {
    format!("the upload is {size} bytes; at most {limit} bytes are labeled")
}

fn ms(since: Instant) -> f64 {
    (since.elapsed().as_secs_f64() * 1e6).round() / 1e3
}

/// Whether an existing result document was made from exactly these source bytes (its
/// `x-amz-meta-source-etag`), which makes a redelivered event a no-op.
fn is_result_of(existing: Option<&ObjectMeta>, source: &ObjectMeta) -> bool {
    let (Some(existing), Some(etag)) = (existing, source.etag.as_deref()) else {
        return false;
    };
    existing
        .metadata
        .get(SOURCE_ETAG_METADATA)
        .map(String::as_str)
        == Some(etag)
}

fn timings_since(started: Instant, download: f64, label: f64) -> Timings {
    Timings {
        download,
        label,
        total: ms(started),
    }
}

/// Parses a Lambda payload as an S3 event.
pub fn parse_event(payload: &[u8]) -> Result<S3Event, serde_json::Error> {
    serde_json::from_slice(payload)
}
