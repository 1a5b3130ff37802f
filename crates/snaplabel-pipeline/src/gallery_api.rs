//! The gallery endpoints of the presign API, over the guest's gallery index ([`crate::gallery`]):
//!
//! - `GET /api/search?q=dog` (or `?label=Dog`): the guest's labeled uploads with that label,
//!   parent or alias, newest first, a page at a time, with the matching labels' counts;
//! - `GET /api/labels`: every label of the gallery with its count (the chips);
//! - `DELETE /api/uploads/{id}`: the image, its result document and its index entry, for the
//!   owner only (anyone else gets `404`, as for an id that never existed);
//! - `POST /api/exports`: the guest's labels as CSV or NDJSON, written to `exports/` and handed
//!   out as a presigned download.
//!
//! None of them reads a result document per upload: the index holds what they need. Search and
//! labels first repair the index against one listing of the guest's results.

use crate::api::{ApiHandler, Query, Refusal, json_kind, rfc3339, storage_error};
use crate::gallery::MAX_RESULT_BYTES;
use crate::store::{PresignRequest, PutOptions, StoreError};
use bytes::Bytes;
use snaplabel_core::api::{ExportRequest, ExportResponse, GalleryLabels, SearchAnswer};
use snaplabel_core::export::ExportFormat;
use snaplabel_core::gallery::LabelQuery;
use snaplabel_core::keys::{UploadKey, is_valid_id, upload_id_time_ms};
use snaplabel_core::result::ResultDocument;
use snaplabel_core::{ErrorBody, ErrorCode, ImageFormat};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Result documents an export reads at once.
const EXPORT_CONCURRENCY: usize = 16;
/// Summaries of a search page signed at once.
const PAGE_CONCURRENCY: usize = 8;

/// The same answer for another guest's upload and one that never existed. Only a well-formed id
/// is repeated back: anything else (a path, 5,000 characters) is the caller's noise.
fn not_found(id: &str) -> Refusal {
    let message = if is_valid_id(id) {
        format!("no upload {id} of yours")
    } else {
        "no upload of yours has that id".to_string()
    };
    ErrorBody::new(ErrorCode::NotFound, message).into()
}

impl ApiHandler {
    /// `GET /api/search?q=…|label=…&limit=N&before=ID`.
    pub async fn search(
        &self,
        authorization: Option<&str>,
        query: &str,
        request_id: &str,
    ) -> Result<SearchAnswer, Refusal> {
        let owner = self.owner(authorization, request_id).await?;
        let query = Query::parse(query)?;
        let label_query = match (query.label, query.q) {
            (Some(label), _) => LabelQuery::Exact(label),
            (None, Some(words)) => LabelQuery::Words(words),
            (None, None) => {
                return Err(ErrorBody::new(
                    ErrorCode::MalformedRequest,
                    "say what to find: ?q=words or ?label=name",
                )
                .into());
            }
        };
        let storage = |e| storage_error(e, request_id);
        let index = self.gallery.repair(&owner).await.map_err(storage)?;
        let hits = index.search(&label_query);
        let after: Vec<&str> = hits
            .ids
            .iter()
            .copied()
            .filter(|id| query.before.as_deref().is_none_or(|b| *id > b))
            .collect();
        let page = &after[..after.len().min(query.limit)];
        let expires_in = Duration::from_secs(self.config().url_expiry_secs);
        let mut uploads = Vec::with_capacity(page.len());
        for chunk in page.chunks(PAGE_CONCURRENCY) {
            let summaries = chunk.iter().map(|id| {
                let entry = &index.uploads[*id];
                let parsed = UploadKey {
                    owner: owner.clone(),
                    id: id.to_string(),
                    format: ImageFormat::from_extension(&entry.ext).unwrap_or(ImageFormat::Jpeg),
                };
                async move {
                    let made = upload_id_time_ms(&parsed.id)
                        .map(|ms| UNIX_EPOCH + Duration::from_millis(ms));
                    self.summary(&parsed, entry.size, made, entry.file.clone(), expires_in)
                        .await
                }
            });
            for summary in futures::future::join_all(summaries).await {
                uploads.push(summary.map_err(storage)?);
            }
        }
        tracing::info!(request_id, total = hits.ids.len(), "searched the gallery");
        Ok(SearchAnswer {
            total: hits.ids.len(),
            labels: hits.labels,
            next_before: (after.len() > page.len())
                .then(|| page.last().map(|id| id.to_string()))
                .flatten(),
            uploads,
            expires_at: rfc3339(SystemTime::now() + expires_in),
        })
    }

    /// `GET /api/labels`: the chips.
    pub async fn gallery_labels(
        &self,
        authorization: Option<&str>,
        request_id: &str,
    ) -> Result<GalleryLabels, Refusal> {
        let owner = self.owner(authorization, request_id).await?;
        let index = self
            .gallery
            .repair(&owner)
            .await
            .map_err(|e| storage_error(e, request_id))?;
        Ok(GalleryLabels {
            uploads: index.uploads.len(),
            labels: index.label_counts(),
        })
    }

    /// `DELETE /api/uploads/{id}`. The id is recorded as deleted in the index first, so that a
    /// label run finishing meanwhile cannot index it again; then the image and the document go.
    /// Repeating a deletion that failed half-way finishes it. The quota marker stays: deleting
    /// does not give a guest its upload back.
    pub async fn delete_upload(
        &self,
        authorization: Option<&str>,
        id: &str,
        request_id: &str,
    ) -> Result<(), Refusal> {
        let owner = self.owner(authorization, request_id).await?;
        if !is_valid_id(id) {
            return Err(not_found(id));
        }
        let storage = |e| storage_error(e, request_id);
        let result_key = UploadKey::result_key_of(&owner, id);
        let (images, loaded, result) = tokio::join!(
            self.gallery.images_of(&owner, id),
            self.gallery.load(&owner),
            self.store.head(&result_key)
        );
        let images = images.map_err(storage)?;
        let index = loaded.map_err(storage)?.index;
        let known = !images.is_empty()
            || result.map_err(storage)?.is_some()
            || index.uploads.contains_key(id);
        if !known {
            return Err(not_found(id));
        }
        self.gallery
            .update(&owner, |index| index.delete(id))
            .await
            .map_err(storage)?;
        for key in images.iter().chain([&result_key]) {
            self.store.delete(key).await.map_err(storage)?;
        }
        tracing::info!(request_id, owner, id, "upload deleted");
        Ok(())
    }

    /// `POST /api/exports` `{"format": "csv" | "ndjson"}`: the guest's labels as a file in
    /// `exports/`, named by a digest of the gallery's entries, so an unchanged gallery is
    /// exported once.
    pub async fn export(
        &self,
        authorization: Option<&str>,
        body: &[u8],
        request_id: &str,
    ) -> Result<ExportResponse, Refusal> {
        let owner = self.owner(authorization, request_id).await?;
        let format = parse_export_request(body)?;
        let storage = |e| storage_error(e, request_id);
        let index = self.gallery.repair(&owner).await.map_err(storage)?;
        // Named by what it holds: an unchanged gallery is exported once, and an index rebuilt
        // from scratch can never be answered with an older gallery's file.
        let digest = aws_lc_rs::digest::digest(
            &aws_lc_rs::digest::SHA256,
            &serde_json::to_vec(&index.uploads).expect("indexes serialize"),
        );
        let digest: String = digest.as_ref()[..16]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let key = UploadKey::export_key(&owner, &digest, format.extension());
        let today = rfc3339(SystemTime::now())[..10].to_string();
        let filename = format.file_name(&today);
        if self.store.head(&key).await.map_err(storage)?.is_none() {
            let mut out = String::from(format.header());
            let ids: Vec<&String> = index.uploads.keys().collect();
            for chunk in ids.chunks(EXPORT_CONCURRENCY) {
                let keys: Vec<String> = chunk
                    .iter()
                    .map(|id| UploadKey::result_key_of(&owner, id))
                    .collect();
                let reads = keys.iter().map(|k| self.store.get(k, MAX_RESULT_BYTES));
                for (id, read) in chunk.iter().zip(futures::future::join_all(reads).await) {
                    let doc = match read {
                        Ok(Some((_, body))) => serde_json::from_slice::<ResultDocument>(&body).ok(),
                        // Deleted or expired since the repair: not in the file.
                        Ok(None) | Err(StoreError::TooLarge { .. }) => None,
                        Err(e) => return Err(storage(e)),
                    };
                    if let Some(doc) = doc {
                        let file = index.uploads[*id].file.as_deref().unwrap_or(id.as_str());
                        format.append(&mut out, file, id, &doc);
                    }
                }
            }
            let options = PutOptions {
                content_disposition: Some(format!("attachment; filename=\"{filename}\"")),
                ..PutOptions::default()
            };
            self.store
                .put_with(&key, Bytes::from(out), format.content_type(), options)
                .await
                .map_err(storage)?;
        }
        let expires_in = Duration::from_secs(self.config().url_expiry_secs);
        let download = self
            .store
            .presign(PresignRequest::Get { key: key.clone() }, expires_in)
            .await
            .map_err(storage)?;
        tracing::info!(
            request_id,
            key,
            uploads = index.uploads.len(),
            "labels exported"
        );
        Ok(ExportResponse {
            url: download.url,
            filename,
            content_type: format.content_type().to_string(),
            uploads: index.uploads.len(),
            expires_at: rfc3339(SystemTime::now() + expires_in),
        })
    }
}

fn parse_export_request(body: &[u8]) -> Result<ExportFormat, ErrorBody> {
    let malformed = |detail: String| {
        ErrorBody::new(
            ErrorCode::MalformedRequest,
            format!(
                "the body must be {{\"format\": \"csv\"}} or {{\"format\": \"ndjson\"}}: {detail}"
            ),
        )
    };
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| malformed(e.to_string()))?;
    if !value.is_object() {
        return Err(malformed(format!("got {}", json_kind(&value))));
    }
    let request: ExportRequest =
        serde_json::from_value(value).map_err(|e| malformed(e.to_string()))?;
    let name = request.format.unwrap_or_default();
    ExportFormat::parse(&name).ok_or_else(|| malformed(format!("{name:?} is not a format")))
}
