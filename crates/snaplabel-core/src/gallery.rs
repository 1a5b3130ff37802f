//! A guest's gallery index: what every labeled upload of one guest is labeled with, in one small
//! document (`index/{owner}/gallery.json`), so that finding photos by label, counting labels and
//! exporting never read a result document per upload.
//!
//! The index is a cache of the result documents and is always derivable from them: the label
//! function adds an entry after writing a document, the presign function removes entries when
//! their owner deletes an upload and repairs the index against a listing of the guest's results
//! (an entry lost to a crash comes back, an entry whose document is gone leaves). Writers use S3
//! conditional writes (`If-Match` the ETag they read, `If-None-Match: *` for the first), so two
//! label runs finishing at once never overwrite each other's entry: the loser reads again.
//!
//! Deleted ids are remembered (`deleted`), so a late event or a re-scan that labels a deleted
//! upload again can never bring it back: [`GalleryIndex::add`] refuses them.

use crate::result::{ResultDocument, Status};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap};

pub const INDEX_VERSION: u32 = 1;

/// One guest's index. Ids are newest-first upload ids, so the map's order is newest first.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GalleryIndex {
    pub version: u32,
    /// Bumped by every change to the entries or the deleted ids.
    #[serde(default)]
    pub generation: u64,
    #[serde(default)]
    pub uploads: BTreeMap<String, IndexEntry>,
    /// Ids their owner deleted: never indexed again.
    #[serde(default)]
    pub deleted: BTreeSet<String>,
    /// When (Unix ms) a repair last compared the index with every result document.
    #[serde(default)]
    pub checked_at_ms: u64,
}

/// What the gallery knows about one labeled upload.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct IndexEntry {
    /// The image's extension: its key is `uploads/{owner}/{id}.{ext}`.
    pub ext: String,
    /// The file name the guest uploaded it under, if it had one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    pub size: u64,
    /// The failure's code, for an upload that could not be labeled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// `(name, confidence)` of every label of the result document, highest first.
    #[serde(default)]
    pub labels: Vec<(String, f32)>,
    /// Parents and aliases of those labels that are not labels of the upload themselves, so a
    /// search for them finds it too.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub also: Vec<String>,
}

impl IndexEntry {
    /// The entry for a result document.
    pub fn from_result(doc: &ResultDocument, ext: &str, file: Option<String>) -> IndexEntry {
        let mut labels: Vec<(String, f32)> = doc
            .detection
            .labels
            .iter()
            .filter(|l| l.confidence.is_finite())
            .map(|l| (l.name.clone(), (l.confidence * 10.0).round() / 10.0))
            .collect();
        labels.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        labels.dedup_by(|a, b| a.0.eq_ignore_ascii_case(&b.0));
        let named: BTreeSet<String> = labels.iter().map(|(n, _)| n.to_lowercase()).collect();
        let mut also: Vec<String> = Vec::new();
        for label in &doc.detection.labels {
            for item in label.parents.iter().chain(&label.aliases) {
                let lower = item.name.to_lowercase();
                if !named.contains(&lower) && !also.iter().any(|a| a.to_lowercase() == lower) {
                    also.push(item.name.clone());
                }
            }
        }
        also.sort();
        IndexEntry {
            ext: ext.to_string(),
            file,
            size: doc.source.size,
            error: match doc.status {
                Status::Error => Some(
                    doc.error
                        .as_ref()
                        .map(|e| e.code.as_str().to_string())
                        .unwrap_or_else(|| "internal".into()),
                ),
                Status::Ok => None,
            },
            labels,
            also,
        }
    }

    fn terms(&self) -> impl Iterator<Item = &str> {
        self.labels
            .iter()
            .map(|(n, _)| n.as_str())
            .chain(self.also.iter().map(String::as_str))
    }
}

/// A label and how many uploads carry it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabelCount {
    pub name: String,
    pub count: usize,
}

/// What a search found: ids newest first, and the labels that matched with their counts.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SearchHits<'a> {
    pub ids: Vec<&'a str>,
    pub labels: Vec<LabelCount>,
}

/// How a search is asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LabelQuery {
    /// Words typed into the search field: `dog`, `ice cr`.
    Words(String),
    /// One label by name (a chip): exactly that label, parent or alias.
    Exact(String),
}

impl GalleryIndex {
    pub fn new() -> Self {
        GalleryIndex {
            version: INDEX_VERSION,
            ..Default::default()
        }
    }

    /// Adds or replaces `id`'s entry. `false` (and nothing changes) when `id` was deleted or the
    /// entry is already there as given.
    pub fn add(&mut self, id: &str, entry: IndexEntry) -> bool {
        if self.deleted.contains(id) || self.uploads.get(id) == Some(&entry) {
            return false;
        }
        self.uploads.insert(id.to_string(), entry);
        self.generation += 1;
        true
    }

    /// Forgets `id` for good. `false` when it was already deleted.
    pub fn delete(&mut self, id: &str) -> bool {
        let removed = self.uploads.remove(id).is_some();
        let newly = self.deleted.insert(id.to_string());
        if removed || newly {
            self.generation += 1;
        }
        newly
    }

    /// Drops the entry of an upload whose result document no longer exists (expired or removed
    /// outside snaplabel). `false` when there was none.
    pub fn forget(&mut self, id: &str) -> bool {
        let removed = self.uploads.remove(id).is_some();
        if removed {
            self.generation += 1;
        }
        removed
    }

    /// Every label of the gallery with the number of uploads carrying it, most common first.
    pub fn label_counts(&self) -> Vec<LabelCount> {
        count_labels(
            self.uploads
                .values()
                .flat_map(|e| e.labels.iter().map(|(n, _)| n.as_str())),
        )
    }

    /// The uploads matching `query`, newest first, and the matching labels with their counts.
    ///
    /// Words match a label, parent or alias when each typed word starts a word of it, ignoring
    /// case ("ice cr" finds Ice Cream). When some term has every typed word as a whole word
    /// ("cat" in Cat and Tabby Cat), only such terms count, so a finished word does not also
    /// find Catamaran.
    pub fn search(&self, query: &LabelQuery) -> SearchHits<'_> {
        let terms: BTreeSet<&str> = self.uploads.values().flat_map(IndexEntry::terms).collect();
        let matching: BTreeSet<String> = match query {
            LabelQuery::Exact(name) => {
                let name = name.trim().to_lowercase();
                terms
                    .iter()
                    .filter(|t| t.to_lowercase() == name)
                    .map(|t| t.to_lowercase())
                    .collect()
            }
            LabelQuery::Words(text) => {
                let words = words_of(text);
                if words.is_empty() {
                    return SearchHits::default();
                }
                let whole: BTreeSet<String> = terms
                    .iter()
                    .filter(|t| matches_words(t, &words, true))
                    .map(|t| t.to_lowercase())
                    .collect();
                if whole.is_empty() {
                    terms
                        .iter()
                        .filter(|t| matches_words(t, &words, false))
                        .map(|t| t.to_lowercase())
                        .collect()
                } else {
                    whole
                }
            }
        };
        if matching.is_empty() {
            return SearchHits::default();
        }
        let mut ids = Vec::new();
        let mut counted: Vec<&str> = Vec::new();
        for (id, entry) in &self.uploads {
            let mut hit = false;
            for term in entry.terms() {
                if matching.contains(&term.to_lowercase()) {
                    hit = true;
                    counted.push(term);
                }
            }
            if hit {
                ids.push(id.as_str());
            }
        }
        SearchHits {
            ids,
            labels: count_labels(counted.into_iter()),
        }
    }
}

/// Counts names case-insensitively (the first spelling seen wins), most common first, then by
/// name.
fn count_labels<'a>(names: impl Iterator<Item = &'a str>) -> Vec<LabelCount> {
    let mut counts: HashMap<String, LabelCount> = HashMap::new();
    for name in names {
        counts
            .entry(name.to_lowercase())
            .or_insert_with(|| LabelCount {
                name: name.to_string(),
                count: 0,
            })
            .count += 1;
    }
    let mut counts: Vec<LabelCount> = counts.into_values().collect();
    counts.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.name.cmp(&b.name)));
    counts
}

/// Lower-case words of a query or term: letters and digits, everything else separates.
fn words_of(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

/// Whether every query word starts (or, `whole`, is) a word of `term`.
fn matches_words(term: &str, query: &[String], whole: bool) -> bool {
    let words = words_of(term);
    query.iter().all(|q| {
        words.iter().any(|w| {
            if whole {
                w == q
            } else {
                w.starts_with(q.as_str())
            }
        })
    })
}

/// The longest search text accepted, in characters.
pub const MAX_QUERY_CHARS: usize = 100;

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(labels: &[(&str, f32)], also: &[&str]) -> IndexEntry {
        IndexEntry {
            ext: "jpg".into(),
            file: None,
            size: 1,
            error: None,
            labels: labels.iter().map(|(n, c)| (n.to_string(), *c)).collect(),
            also: also.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn gallery() -> GalleryIndex {
        let mut g = GalleryIndex::new();
        g.add("A3", entry(&[("Dog", 97.0), ("Animal", 97.0)], &["Canine"]));
        g.add(
            "A2",
            entry(&[("Tabby Cat", 80.0), ("Cat", 91.0), ("Animal", 95.0)], &[]),
        );
        g.add("A1", entry(&[("Catamaran", 70.0), ("Boat", 88.0)], &[]));
        g.add(
            "A4",
            entry(&[("Ice Cream", 70.0), ("Food", 90.0)], &["Dessert"]),
        );
        g
    }

    #[test]
    fn a_parent_finds_every_child_newest_first() {
        let g = gallery();
        let hits = g.search(&LabelQuery::Words("animal".into()));
        assert_eq!(hits.ids, ["A2", "A3"]);
        assert_eq!(
            hits.labels,
            vec![LabelCount {
                name: "Animal".into(),
                count: 2
            }]
        );
    }

    #[test]
    fn a_finished_word_is_a_whole_word_and_a_started_one_a_prefix() {
        let g = gallery();
        let cat = g.search(&LabelQuery::Words("Cat".into()));
        assert_eq!(cat.ids, ["A2"], "no catamaran for a finished word");
        let names: Vec<_> = cat.labels.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(names, ["Cat", "Tabby Cat"]);
        let ca = g.search(&LabelQuery::Words("ca".into()));
        assert_eq!(ca.ids, ["A1", "A2", "A3"], "canine, cat and catamaran");
        assert_eq!(g.search(&LabelQuery::Words("ice cr".into())).ids, ["A4"]);
        assert_eq!(
            g.search(&LabelQuery::Words("  ".into())).ids,
            Vec::<&str>::new()
        );
    }

    #[test]
    fn parents_and_aliases_that_are_not_labels_are_found_too() {
        let g = gallery();
        assert_eq!(g.search(&LabelQuery::Words("canine".into())).ids, ["A3"]);
        assert_eq!(g.search(&LabelQuery::Exact("dessert".into())).ids, ["A4"]);
        assert_eq!(g.search(&LabelQuery::Exact("cat".into())).ids, ["A2"]);
        assert!(g.search(&LabelQuery::Exact("ca".into())).ids.is_empty());
    }

    #[test]
    fn counts_are_per_upload_most_common_first() {
        let counts = gallery().label_counts();
        assert_eq!(
            counts[0],
            LabelCount {
                name: "Animal".into(),
                count: 2
            }
        );
        assert_eq!(counts.len(), 8);
    }

    #[test]
    fn a_deleted_id_is_never_added_again() {
        let mut g = gallery();
        let before = g.generation;
        assert!(g.delete("A3"));
        assert!(!g.delete("A3"), "deleting twice changes nothing");
        assert!(!g.add("A3", entry(&[("Dog", 90.0)], &[])));
        assert!(g.search(&LabelQuery::Words("dog".into())).ids.is_empty());
        assert_eq!(g.generation, before + 1);
        assert!(
            !g.add("A2", g.uploads["A2"].clone()),
            "an unchanged entry is no change"
        );
    }

    #[test]
    fn an_entry_is_made_from_a_result_document() {
        let doc: ResultDocument = serde_json::from_str(
            r#"{"schema_version":1,"status":"ok","source":{"bucket":"b","key":"uploads/o/x.jpg","size":42},
            "Labels":[{"Name":"Dog","Confidence":97.04,"Parents":[{"Name":"Animal"},{"Name":"Canine"}],"Aliases":[{"Name":"Pup"}]},
                      {"Name":"Animal","Confidence":97.0}]}"#,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let e = IndexEntry::from_result(&doc, "jpg", Some("rex.jpg".into()));
        assert_eq!(
            e.labels,
            vec![("Animal".to_string(), 97.0), ("Dog".to_string(), 97.0)]
        );
        assert_eq!(e.also, ["Canine", "Pup"]);
        assert_eq!((e.size, e.error.as_deref()), (42, None));
    }
}
