//! A guest's gallery index in the object store (`index/{owner}/gallery.json`, the document of
//! [`snaplabel_core::gallery`]): loading it, changing it without losing a concurrent writer's
//! change, and repairing it against the guest's result documents.
//!
//! Who writes it: the label function adds an entry after each result document; the presign
//! function records deletions and runs [`Gallery::repair`] before answering a search. Every
//! write is a compare-and-swap: the ETag read is signed into the PUT as `If-Match` (or
//! `If-None-Match: *` for the first write); a refused write (412, or 409 while another is in
//! flight) reads again and reapplies its change. The index can still miss an entry (a label run
//! killed between its document and its index write); the repair finds it in one listing of the
//! guest's `labels/` prefix and adds it.

use crate::store::{ObjectStore, PutOptions, StoreError, WriteCondition};
use bytes::Bytes;
use snaplabel_core::gallery::{GalleryIndex, IndexEntry};
use snaplabel_core::keys::{UploadKey, result_key_for};
use snaplabel_core::result::ResultDocument;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// An index bigger than this is not read (about 100,000 uploads' worth).
const MAX_INDEX_BYTES: u64 = 64 * 1024 * 1024;
/// A result document bigger than this is not read back for the index.
pub const MAX_RESULT_BYTES: u64 = 4 * 1024 * 1024;
/// Compare-and-swap attempts before a write gives up (each waits a little longer).
const MAX_ATTEMPTS: u32 = 12;
/// Documents a repair reads (or checks) per call; the rest wait for the next one.
const MAX_REPAIRS: usize = 250;
/// Store requests a repair makes at once.
const CONCURRENCY: usize = 8;
/// How long a repair may look at the newest page of results only.
const FULL_CHECK_EVERY_MS: u64 = 60 * 60 * 1000;

/// The index as read, with the ETag a write must match.
pub struct Loaded {
    pub index: GalleryIndex,
    etag: Option<String>,
}

#[derive(Clone)]
pub struct Gallery {
    store: Arc<dyn ObjectStore>,
    /// Keys per listing page while repairing (S3's most).
    page_size: u32,
}

impl Gallery {
    pub fn new(store: Arc<dyn ObjectStore>) -> Self {
        Gallery {
            store,
            page_size: 1000,
        }
    }

    /// The same with smaller listing pages (so that tests see a gallery of several pages).
    pub fn with_page_size(self, page_size: u32) -> Self {
        Gallery {
            page_size: page_size.clamp(1, 1000),
            ..self
        }
    }

    /// The owner's index; an empty one when there is none yet. An index that does not parse is
    /// logged and treated as empty: it is rebuilt from the result documents by the next repair.
    pub async fn load(&self, owner: &str) -> Result<Loaded, StoreError> {
        let key = UploadKey::gallery_index_key(owner);
        let Some((meta, body)) = self.store.get(&key, MAX_INDEX_BYTES).await? else {
            return Ok(Loaded {
                index: GalleryIndex::new(),
                etag: None,
            });
        };
        let index = match serde_json::from_slice::<GalleryIndex>(&body) {
            Ok(index) => index,
            Err(e) => {
                tracing::error!(key, error = %e, "gallery index unreadable; rebuilding it from the result documents");
                GalleryIndex::new()
            }
        };
        Ok(Loaded {
            index,
            etag: meta.etag,
        })
    }

    /// Applies `change` to the owner's index and writes it, as a compare-and-swap: when another
    /// writer got there first, reads again and applies `change` again. `change` returns whether
    /// it changed anything (nothing is written otherwise). Returns the index as written.
    pub async fn update(
        &self,
        owner: &str,
        mut change: impl FnMut(&mut GalleryIndex) -> bool,
    ) -> Result<GalleryIndex, StoreError> {
        let key = UploadKey::gallery_index_key(owner);
        for attempt in 0..MAX_ATTEMPTS {
            let Loaded { mut index, etag } = self.load(owner).await?;
            if !change(&mut index) {
                return Ok(index);
            }
            let body = Bytes::from(serde_json::to_vec(&index).expect("indexes serialize"));
            let options = PutOptions {
                condition: Some(match etag {
                    Some(etag) => WriteCondition::Matches(etag),
                    None => WriteCondition::Absent,
                }),
                ..PutOptions::default()
            };
            match self
                .store
                .put_with(&key, body, "application/json", options)
                .await
            {
                Ok(()) => return Ok(index),
                Err(StoreError::Conflict { .. }) => {
                    tracing::debug!(key, attempt, "gallery index changed meanwhile; retrying");
                    tokio::time::sleep(backoff(attempt)).await;
                }
                Err(e) => return Err(e),
            }
        }
        Err(StoreError::Conflict { key })
    }

    /// Brings the index in line with the owner's result documents: adds the uploads it misses,
    /// drops entries whose document is gone (expired, or removed outside snaplabel), and removes
    /// what is left of deleted uploads (a document a late label run wrote after the deletion,
    /// an image whose deletion failed). Costs one listing call (the newest 1,000 results), one
    /// per 1,000 results once an hour, plus reads only for what is out of line.
    pub async fn repair(&self, owner: &str) -> Result<GalleryIndex, StoreError> {
        let Loaded { index, .. } = self.load(owner).await?;
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis() as u64;
        // Results list newest first, and what goes missing is nearly always recent (a label run
        // killed before its index write): one page is read on every call, the whole listing
        // only for an empty index or once the last whole check is an hour old.
        let stale = now_ms.saturating_sub(index.checked_at_ms) >= FULL_CHECK_EVERY_MS;
        let whole = stale || index.uploads.is_empty();
        let prefix = UploadKey::owner_labels_prefix(owner);
        let mut results = BTreeSet::new();
        let mut token = None;
        let complete = loop {
            let page = self
                .store
                .list(&prefix, self.page_size, None, token)
                .await?;
            results.extend(
                page.objects
                    .iter()
                    .filter_map(|o| UploadKey::id_of_result_key(owner, &o.key))
                    .map(str::to_string),
            );
            token = page.next_token;
            if token.is_none() {
                break true;
            }
            if !whole {
                break false;
            }
        };
        // From a partial listing only the ids up to the last one listed can be judged gone.
        let horizon = (!complete)
            .then(|| results.iter().next_back().cloned())
            .flatten();
        let missing: Vec<&String> = results
            .iter()
            .filter(|id| !index.uploads.contains_key(*id) && !index.deleted.contains(*id))
            .take(MAX_REPAIRS)
            .collect();
        let stray: Vec<&String> = results.intersection(&index.deleted).collect();
        let vanished: Vec<&String> = index
            .uploads
            .keys()
            .filter(|id| !results.contains(*id))
            .filter(|id| horizon.as_ref().is_none_or(|last| *id <= last))
            .take(MAX_REPAIRS)
            .collect();
        let record_check = complete && stale;
        if missing.is_empty() && stray.is_empty() && vanished.is_empty() && !record_check {
            return Ok(index);
        }
        let result_key = |id: &str| UploadKey::result_key_of(owner, id);

        for id in &stray {
            if let Err(e) = self.remove_deleted(owner, id).await {
                tracing::warn!(owner, id = %id, error = %aws_sdk_s3::error::DisplayErrorContext(&e), "could not remove what is left of a deleted upload");
            }
        }
        // Listed as missing a moment ago is not gone: a label run may have written it since.
        let mut gone = Vec::new();
        for chunk in vanished.chunks(CONCURRENCY) {
            let keys: Vec<String> = chunk.iter().map(|id| result_key(id)).collect();
            let heads = keys.iter().map(|key| self.store.head(key));
            for (id, head) in chunk.iter().zip(futures::future::join_all(heads).await) {
                if head?.is_none() {
                    gone.push((*id).clone());
                }
            }
        }
        let mut found = Vec::new();
        for chunk in missing.chunks(CONCURRENCY) {
            let keys: Vec<String> = chunk.iter().map(|id| result_key(id)).collect();
            let reads = keys.iter().map(|key| self.entry_from_result(key));
            for (id, entry) in chunk.iter().zip(futures::future::join_all(reads).await) {
                if let Some(entry) = entry? {
                    found.push(((*id).clone(), entry));
                }
            }
        }
        if !found.is_empty() || !gone.is_empty() {
            tracing::info!(
                owner,
                added = found.len(),
                dropped = gone.len(),
                "gallery index repaired"
            );
        }
        self.update(owner, |index| {
            let mut changed = false;
            if record_check && index.checked_at_ms < now_ms {
                index.checked_at_ms = now_ms;
                changed = true;
            }
            for (id, entry) in &found {
                changed |= index.add(id, entry.clone());
            }
            for id in &gone {
                changed |= index.forget(id);
            }
            changed
        })
        .await
    }

    /// Removes what is left of a deleted upload: the document a late label run wrote, and the
    /// image if its deletion failed half-way (otherwise `snaplabel dev`'s re-scan would label it
    /// again every minute, only to have the document refused).
    async fn remove_deleted(&self, owner: &str, id: &str) -> Result<(), StoreError> {
        for key in self.images_of(owner, id).await? {
            self.store.delete(&key).await?;
        }
        self.store
            .delete(&UploadKey::result_key_of(owner, id))
            .await
    }

    /// The keys of `owner`'s upload `id`'s image (one, unless a tool wrote others beside it).
    pub async fn images_of(&self, owner: &str, id: &str) -> Result<Vec<String>, StoreError> {
        let listed = self
            .store
            .list(&UploadKey::images_prefix_of(owner, id), 10, None, None)
            .await?;
        Ok(listed
            .objects
            .into_iter()
            .map(|o| o.key)
            .filter(|k| UploadKey::parse(k).is_some_and(|u| u.id == id))
            .collect())
    }

    /// The index entry for a stored result document (its upload's file name from the image's
    /// metadata); `None` when it is gone or not a generated upload's document.
    async fn entry_from_result(&self, key: &str) -> Result<Option<IndexEntry>, StoreError> {
        let Some((_, body)) = self.store.get(key, MAX_RESULT_BYTES).await? else {
            return Ok(None);
        };
        let Ok(doc) = serde_json::from_slice::<ResultDocument>(&body) else {
            tracing::warn!(
                key,
                "unreadable result document left out of the gallery index"
            );
            return Ok(None);
        };
        let Some(upload) = UploadKey::parse(&doc.source.key)
            .filter(|_| result_key_for(&doc.source.key).as_deref() == Some(key))
        else {
            return Ok(None);
        };
        let file = self
            .store
            .head(&doc.source.key)
            .await?
            .and_then(|m| m.original_filename());
        Ok(Some(IndexEntry::from_result(
            &doc,
            upload.format.extension(),
            file,
        )))
    }
}

/// 2 ms doubling to at most 256 ms, half of it random, so that writers that collided do not
/// collide again. Short at first: a label worker waiting here labels nothing meanwhile, and the
/// usual collision (two label runs of one guest finishing together) is settled by one re-read.
fn backoff(attempt: u32) -> Duration {
    let base = 2u64 << attempt.min(7);
    let jitter = (ulid::Ulid::new().random() as u64) % base.max(1);
    Duration::from_millis(base / 2 + jitter)
}
