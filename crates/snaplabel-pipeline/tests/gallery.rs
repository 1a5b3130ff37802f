//! The gallery (search, label counts, delete, export) through the API's router, against the real
//! S3-protocol server on 127.0.0.1, with labels from the Rekognition endpoint's stand-in (which
//! names each image's format and size, so searches have known answers).

mod common;

use common::{BUCKET, Harness, fixture};
use snaplabel_pipeline::gallery::Gallery;
use snaplabel_pipeline::label::RecordOutcome;
use std::sync::Arc;

impl Harness {
    /// Deletes an object behind snaplabel's back, as a lifecycle rule or a person would.
    async fn remove(&self, key: &str) {
        self.store
            .client()
            .delete_object()
            .bucket(BUCKET)
            .key(key)
            .send()
            .await
            .unwrap();
    }

    /// Uploads `photo` under `name` and labels it; returns the upload id.
    async fn labeled(&self, name: &str, photo: &str) -> String {
        let content_type = if photo.ends_with(".png") {
            "image/png"
        } else {
            "image/jpeg"
        };
        let created = self.upload(name, content_type, fixture(photo)).await;
        let key = created["result"]["key"].as_str().unwrap().to_string();
        let upload_key = key.replace("labels/", "uploads/").replace(
            ".json",
            &format!(".{}", &content_type[6..]).replace("jpeg", "jpg"),
        );
        let outcome = self.labels.label_key(&upload_key).await;
        assert!(
            matches!(outcome, RecordOutcome::Labeled { error: None, .. }),
            "{outcome:?}"
        );
        created["id"].as_str().unwrap().to_string()
    }

    fn ids(answer: &serde_json::Value) -> Vec<String> {
        answer["uploads"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["id"].as_str().unwrap().to_string())
            .collect()
    }
}

#[tokio::test]
async fn search_finds_uploads_by_label_newest_first_with_counts() {
    let h = Harness::start().await;
    let cat = h.labeled("cat.png", "chelsea.png").await;
    let coffee = h.labeled("coffee.png", "coffee.png").await;
    let moto = h.labeled("moto.jpg", "football.jpg").await;

    let (status, answer) = h.api_call("GET", "/api/search?q=format+png", "").await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(Harness::ids(&answer), [coffee.as_str(), cat.as_str()]);
    assert_eq!(answer["total"], 2);
    assert_eq!(
        answer["labels"],
        serde_json::json!([{"name": "Format png", "count": 2}])
    );
    let first = &answer["uploads"][0];
    assert_eq!(first["filename"], "coffee.png");
    assert!(
        first["image_url"]
            .as_str()
            .unwrap()
            .starts_with("http://127.0.0.1")
    );
    // The page's URLs work: the result document is there.
    let doc = h
        .http
        .get(first["result"]["get_url"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(doc.status(), 200);

    // A chip asks for one label exactly; paging goes on with `before`.
    let (_, exact) = h
        .api_call("GET", "/api/search?label=via%20s3object&limit=2", "")
        .await;
    assert_eq!(Harness::ids(&exact), [moto.as_str(), coffee.as_str()]);
    assert_eq!(exact["total"], 3);
    let next = exact["next_before"].as_str().unwrap();
    let (_, rest) = h
        .api_call(
            "GET",
            &format!("/api/search?label=Via+S3Object&before={next}"),
            "",
        )
        .await;
    assert_eq!(Harness::ids(&rest), [cat.as_str()]);
    assert!(rest.get("next_before").is_none());

    let (_, labels) = h.api_call("GET", "/api/labels", "").await;
    assert_eq!(labels["uploads"], 3);
    assert_eq!(
        labels["labels"][0],
        serde_json::json!({"name": "Via S3Object", "count": 3})
    );

    let (_, none) = h.api_call("GET", "/api/search?q=giraffe", "").await;
    assert_eq!(
        (none["total"].as_u64(), Harness::ids(&none).len()),
        (Some(0), 0)
    );
    for bad in [
        "/api/search",
        "/api/search?limit=0&q=a",
        &format!("/api/search?q={}", "a".repeat(101)),
    ] {
        let (status, code, _) = h.refusal("GET", bad, "").await;
        assert_eq!((status, code.as_str()), (400, "malformed_request"), "{bad}");
    }
}

#[tokio::test]
async fn concurrent_label_runs_lose_no_index_entry() {
    let h = Harness::start().await;
    let mut keys = Vec::new();
    for i in 0..12 {
        let created = h
            .upload(&format!("p{i}.png"), "image/png", fixture("chelsea.png"))
            .await;
        keys.push(format!(
            "uploads/anonymous/{}.png",
            created["id"].as_str().unwrap()
        ));
    }
    // All at once: every run reads the index, adds its entry and writes it back conditionally.
    let runs = keys.iter().map(|k| h.labels.label_key(k));
    for outcome in futures::future::join_all(runs).await {
        assert!(
            matches!(outcome, RecordOutcome::Labeled { .. }),
            "{outcome:?}"
        );
    }
    let store: Arc<dyn snaplabel_pipeline::ObjectStore> = h.store.clone();
    let index = Gallery::new(store).load("anonymous").await.unwrap().index;
    assert_eq!(index.uploads.len(), 12, "{:?}", index.uploads.keys());
    assert_eq!(index.generation, 12);
    assert!(
        index
            .uploads
            .values()
            .all(|e| e.file.as_deref().is_some_and(|f| f.starts_with('p')))
    );
}

#[tokio::test]
async fn a_deleted_upload_is_gone_and_stays_gone() {
    let h = Harness::start().await;
    let keep = h.labeled("keep.png", "chelsea.png").await;
    let gone = h.labeled("gone.png", "coffee.png").await;
    let gone_key = format!("uploads/anonymous/{gone}.png");

    let (status, body) = h
        .api_call("DELETE", &format!("/api/uploads/{gone}"), "")
        .await;
    assert_eq!(status, 204, "{body}");
    assert!(
        h.read_result(&format!("labels/anonymous/{gone}.json"))
            .await
            .is_none()
    );
    assert!(!h.exists(&gone_key).await, "the image is deleted");

    let (_, history) = h.api_call("GET", "/api/uploads", "").await;
    assert_eq!(Harness::ids(&history), [keep.as_str()]);
    let (_, found) = h.api_call("GET", "/api/search?q=png", "").await;
    assert_eq!(Harness::ids(&found), [keep.as_str()]);

    // A late event for the deleted upload writes nothing.
    let outcome = h.labels.label_key(&gone_key).await;
    assert!(
        matches!(outcome, RecordOutcome::Ignored { .. }),
        "{outcome:?}"
    );
    assert!(
        h.read_result(&format!("labels/anonymous/{gone}.json"))
            .await
            .is_none()
    );

    // A label run that had read the image before the deletion writes its document after it:
    // the index refuses the entry and the next search removes the document.
    h.put_raw(&gone_key, fixture("coffee.png")).await;
    let outcome = h.labels.label_key(&gone_key).await;
    assert!(
        matches!(outcome, RecordOutcome::Labeled { .. }),
        "{outcome:?}"
    );
    let (_, found) = h.api_call("GET", "/api/search?q=png", "").await;
    assert_eq!(Harness::ids(&found), [keep.as_str()]);
    assert!(
        h.read_result(&format!("labels/anonymous/{gone}.json"))
            .await
            .is_none()
    );
    // The image a half-done deletion left (put back above) went with it: no endless re-labeling
    // by `snaplabel dev`'s re-scan. Deleting it again finds nothing left.
    assert!(!h.exists(&gone_key).await, "the left-over image is removed");
    let (status, code, _) = h
        .refusal("DELETE", &format!("/api/uploads/{gone}"), "")
        .await;
    assert_eq!((status, code.as_str()), (404, "not_found"));

    let long = "A".repeat(5000);
    for id in [
        "01JDQ3ZK8M4V6X0N2B7C9D5E1F",
        "..%2F..%2Fetc%2Fpasswd",
        "x",
        &long,
    ] {
        let (status, code, message) = h.refusal("DELETE", &format!("/api/uploads/{id}"), "").await;
        assert_eq!((status, code.as_str()), (404, "not_found"), "{id}");
        // A well-formed id is named in the answer; anything else is not repeated back.
        assert!(!message.is_empty());
        assert_eq!(message.contains(id), id.len() == 26, "{message}");
    }
    let (status, code, _) = h.refusal("PUT", &format!("/api/uploads/{keep}"), "").await;
    assert_eq!((status, code.as_str()), (405, "method_not_allowed"));
}

#[tokio::test]
async fn the_index_is_rebuilt_from_the_result_documents() {
    let h = Harness::start().await;
    let a = h.labeled("a.png", "chelsea.png").await;
    let b = h.labeled("b.jpg", "football.jpg").await;
    // The index lost (or never written: a label run killed after its document).
    h.remove("index/anonymous/gallery.json").await;
    let (_, found) = h.api_call("GET", "/api/search?q=s3object", "").await;
    assert_eq!(Harness::ids(&found), [b.as_str(), a.as_str()]);
    assert_eq!(
        found["uploads"][0]["filename"], "b.jpg",
        "names come back from the images"
    );
    // A document removed outside snaplabel leaves the index.
    h.remove(&format!("labels/anonymous/{a}.json")).await;
    let (_, labels) = h.api_call("GET", "/api/labels", "").await;
    assert_eq!(labels["uploads"], 1);
}

#[tokio::test]
async fn labels_export_as_csv_and_ndjson_downloads() {
    let h = Harness::start().await;
    let cat = h.labeled("=cat, \"the\" cat.png", "chelsea.png").await;
    let moto = h.labeled("moto.jpg", "football.jpg").await;

    let (status, csv) = h
        .api_call("POST", "/api/exports", r#"{"format":"csv"}"#)
        .await;
    assert_eq!(status, 201, "{csv}");
    assert!(csv["filename"].as_str().unwrap().ends_with(".csv"));
    assert_eq!(csv["uploads"], 2);
    let download = h
        .http
        .get(csv["url"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(download.status(), 200);
    let disposition = download.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        disposition.starts_with("attachment; filename=\"snaplabel-labels-"),
        "{disposition}"
    );
    let text = download.text().await.unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0],
        "file,label,confidence,parents,categories,upload_id"
    );
    assert_eq!(lines.len(), 1 + 3 + 3, "{text}");
    assert_eq!(lines[1], format!("moto.jpg,Format jpeg,99.0,,Test,{moto}"));
    assert_eq!(
        lines[4],
        format!("\"'=cat, \"\"the\"\" cat.png\",Format png,99.0,,Test,{cat}")
    );

    let (_, again) = h
        .api_call("POST", "/api/exports", r#"{"format":"csv"}"#)
        .await;
    assert_eq!(
        again["url"].as_str().unwrap().split('?').next(),
        csv["url"].as_str().unwrap().split('?').next(),
        "an unchanged gallery is exported once"
    );

    let (status, nd) = h
        .api_call("POST", "/api/exports", r#"{"format":"ndjson"}"#)
        .await;
    assert_eq!(status, 201, "{nd}");
    let text = h
        .http
        .get(nd["url"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let docs: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(docs.len(), 2);
    assert_eq!(
        docs[0]["source"]["key"],
        format!("uploads/anonymous/{moto}.jpg")
    );
    assert_eq!(docs[1]["Labels"][0]["Name"], "Format png");

    for body in [r#"{"format":"xml"}"#, "[]", "", r#"{"format":1}"#] {
        let (status, code, _) = h.refusal("POST", "/api/exports", body).await;
        assert_eq!(
            (status, code.as_str()),
            (400, "malformed_request"),
            "{body}"
        );
    }
}

#[tokio::test]
async fn a_big_gallery_is_checked_page_by_page_and_wholly_once_an_hour() {
    let h = Harness::start().await;
    let oldest = h.labeled("a.png", "chelsea.png").await;
    h.labeled("b.png", "coffee.png").await;
    h.labeled("c.png", "coffee.png").await;
    let newest = h.labeled("d.png", "chelsea.png").await;
    let store: Arc<dyn snaplabel_pipeline::ObjectStore> = h.store.clone();
    // Two results a page: the newest page is [d, c].
    let gallery = Gallery::new(store).with_page_size(2);
    let checked = gallery.repair("anonymous").await.unwrap();
    assert_eq!(checked.uploads.len(), 4);
    assert!(checked.checked_at_ms > 0, "a whole check is recorded");

    // The oldest document expires: a repair of the newest page cannot tell.
    h.remove(&format!("labels/anonymous/{oldest}.json")).await;
    // The newest entry is lost (a label run killed before its index write): the newest page
    // brings it back.
    gallery
        .update("anonymous", |index| index.uploads.remove(&newest).is_some())
        .await
        .unwrap();
    let index = gallery.repair("anonymous").await.unwrap();
    assert!(
        index.uploads.contains_key(&newest),
        "the lost entry is back"
    );
    assert!(
        index.uploads.contains_key(&oldest),
        "beyond the newest page"
    );

    // An hour later the whole listing is read again, and the expired entry leaves.
    gallery
        .update("anonymous", |index| {
            index.checked_at_ms -= 3_600_000;
            true
        })
        .await
        .unwrap();
    let index = gallery.repair("anonymous").await.unwrap();
    assert_eq!(index.uploads.len(), 3);
    assert!(!index.uploads.contains_key(&oldest));
}
