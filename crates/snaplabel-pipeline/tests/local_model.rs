//! The whole flow with the embedded model as the labeler: presign → PUT → S3 event → labels.
#![cfg(feature = "local")]

mod common;

use common::{Harness, fixture};
use snaplabel_pipeline::event::event;
use snaplabel_pipeline::label::{LabelHandler, LabelSettings, RecordOutcome};
use snaplabel_pipeline::local::LocalLabeler;
use std::sync::Arc;

#[tokio::test]
async fn a_cat_photo_uploaded_through_presigned_urls_is_labeled_cat_with_a_box() {
    let h = Harness::start().await;
    let mut settings = h.config.clone();
    settings.model = snaplabel_pipeline::wiring::model_settings_from_env();
    let labeler = Arc::new(
        LocalLabeler::load(&settings).expect("models installed by the README's test command"),
    );
    let handler = LabelHandler::new(
        h.store.clone(),
        labeler,
        LabelSettings::from_config(&h.config),
    );

    let cat = h
        .upload("chelsea.png", "image/png", fixture("chelsea.png"))
        .await;
    let text = h
        .upload(
            "holiday.jpg",
            "image/jpeg",
            b"not a photo at all, just text".to_vec(),
        )
        .await;
    let mut records = Vec::new();
    for created in [&cat, &text] {
        let ext = if created == &cat { "png" } else { "jpg" };
        records.push(
            h.event_for(&format!(
                "uploads/anonymous/{}.{ext}",
                created["id"].as_str().unwrap()
            ))
            .await,
        );
    }
    let report = handler.handle_event(&event(records)).await;
    assert!(
        report
            .records
            .iter()
            .all(|r| matches!(r, RecordOutcome::Labeled { .. })),
        "{report:?}"
    );

    let doc: serde_json::Value = h
        .http
        .get(cat["result"]["get_url"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(doc["status"], "ok", "{doc}");
    assert_eq!(doc["labeler"]["name"], "local");
    assert_eq!(doc["labeler"]["engine"], "ort");
    let cat_label = doc["Labels"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["Name"] == "Cat")
        .unwrap_or_else(|| panic!("{doc}"));
    assert!(cat_label["Confidence"].as_f64().unwrap() > 80.0);
    assert!(!cat_label["Instances"].as_array().unwrap().is_empty());
    assert!(
        doc["ImageProperties"]["DominantColors"]
            .as_array()
            .is_some_and(|c| !c.is_empty())
    );

    let doc: serde_json::Value = h
        .http
        .get(text["result"]["get_url"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(doc["status"], "error");
    assert_eq!(doc["error"]["code"], "unsupported_format");
}
