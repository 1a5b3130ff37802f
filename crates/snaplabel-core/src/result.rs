//! The result document stored at `labels/…/{id}.json` for every upload, success or failure.
//!
//! On success it carries Rekognition's `DetectLabels` fields at the top level (`Labels`,
//! `ImageProperties`, `LabelModelVersion`), so code written for Rekognition reads it unchanged; on
//! failure `Labels` is empty and `error` holds a stable code and a human message. Either way a
//! polling client always gets an answer.

use crate::detect::DetectLabelsResponse;
use crate::error::{ErrorBody, ErrorCode};
use crate::format::ImageFormat;
use serde::{Deserialize, Serialize};

/// Bumped when the document changes incompatibly.
pub const SCHEMA_VERSION: u32 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Error,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResultDocument {
    pub schema_version: u32,
    pub status: Status,
    pub source: SourceObject,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<ImageInfo>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labeler: Option<LabelerInfo>,
    #[serde(flatten)]
    pub detection: DetectLabelsResponse,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorBody>,
    #[serde(default)]
    pub timings_ms: Timings,
}

/// The object that was labeled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceObject {
    pub bucket: String,
    pub key: String,
    pub size: u64,
    /// The ETag of the labeled bytes: a redelivered event for the same bytes is recognised by it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
}

/// The upright image as the labeler saw it (after EXIF orientation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageInfo {
    pub width: u32,
    pub height: u32,
    pub format: ImageFormat,
}

/// Which labeler and model produced the labels.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabelerInfo {
    /// `local` or `rekognition`.
    pub name: String,
    pub model: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engine: Option<String>,
}

/// Wall-clock milliseconds per stage.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Timings {
    pub download: f64,
    pub label: f64,
    pub total: f64,
}

impl ResultDocument {
    pub fn success(
        source: SourceObject,
        image: ImageInfo,
        labeler: LabelerInfo,
        detection: DetectLabelsResponse,
        timings_ms: Timings,
    ) -> Self {
        ResultDocument {
            schema_version: SCHEMA_VERSION,
            status: Status::Ok,
            source,
            image: Some(image),
            labeler: Some(labeler),
            detection,
            error: None,
            timings_ms,
        }
    }

    pub fn failure(
        source: SourceObject,
        image: Option<ImageInfo>,
        error: ErrorBody,
        timings_ms: Timings,
    ) -> Self {
        ResultDocument {
            schema_version: SCHEMA_VERSION,
            status: Status::Error,
            source,
            image,
            labeler: None,
            detection: DetectLabelsResponse::default(),
            error: Some(error),
            timings_ms,
        }
    }

    pub fn error_code(&self) -> Option<ErrorCode> {
        self.error.as_ref().map(|e| e.code)
    }

    pub fn label_names(&self) -> Vec<&str> {
        self.detection
            .labels
            .iter()
            .map(|l| l.name.as_str())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::Label;

    #[test]
    fn success_documents_read_as_detect_labels_responses() {
        let doc = ResultDocument::success(
            SourceObject {
                bucket: "b".into(),
                key: "uploads/a/x.jpg".into(),
                size: 10,
                etag: Some("\"e\"".into()),
            },
            ImageInfo {
                width: 640,
                height: 480,
                format: ImageFormat::Jpeg,
            },
            LabelerInfo {
                name: "local".into(),
                model: "efficientnet-lite0".into(),
                engine: Some("ort".into()),
            },
            DetectLabelsResponse {
                labels: vec![Label {
                    name: "Cat".into(),
                    confidence: 99.0,
                    ..Default::default()
                }],
                label_model_version: Some("m".into()),
                ..Default::default()
            },
            Timings::default(),
        );
        let json = serde_json::to_value(&doc).unwrap();
        assert_eq!(json["status"], "ok");
        assert_eq!(json["Labels"][0]["Name"], "Cat");
        assert_eq!(json["image"]["format"], "jpeg");
        assert!(json.get("error").is_none());
        // A Rekognition client's parser ignores the extra fields and sees the response.
        let as_rekognition: DetectLabelsResponse = serde_json::from_value(json.clone()).unwrap();
        assert_eq!(as_rekognition.labels[0].name, "Cat");
        let back: ResultDocument = serde_json::from_value(json).unwrap();
        assert_eq!(back, doc);
    }

    #[test]
    fn failure_documents_carry_a_code_and_empty_labels() {
        let doc = ResultDocument::failure(
            SourceObject {
                bucket: "b".into(),
                key: "uploads/a/x.jpg".into(),
                size: 0,
                etag: None,
            },
            None,
            ErrorBody::new(ErrorCode::EmptyObject, "the upload is empty"),
            Timings::default(),
        );
        let json = serde_json::to_value(&doc).unwrap();
        assert_eq!(json["status"], "error");
        assert_eq!(json["error"]["code"], "empty_object");
        assert_eq!(json["Labels"], serde_json::json!([]));
        let back: ResultDocument = serde_json::from_value(json).unwrap();
        assert_eq!(back.error_code(), Some(ErrorCode::EmptyObject));
    }
}
