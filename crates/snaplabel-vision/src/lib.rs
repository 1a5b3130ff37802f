//! The embedded labeler: a photo in, Rekognition `DetectLabels` out, offline, on the CPU.
//!
//! How each label family is produced (see also ARCHITECTURE.md):
//! - **Objects, animals, food, scenes**: EfficientNet-Lite0 (ImageNet-1k) classifies a centre
//!   crop; [`taxonomy`] maps each class to a friendly label with WordNet-derived parents
//!   ("Tabby Cat" → Cat, Pet, Mammal, Animal) whose confidence is the sum of their descendants'.
//!   Scene classes (alp, seashore, lakeside…) add curated words (Mountain, Beach, Landscape,
//!   Outdoors, Nature, Water).
//! - **Everyday objects with boxes**: a CenterNet trained on COCO's 80 classes ([`objects`]) finds
//!   each cup, fork, giraffe or car, with a tight box; its classes map to the same taxonomy
//!   labels as the classifier's, so a cup both see is one `Cup` (the better confidence, the
//!   detector's boxes).
//! - **Boxes for other objects**: class activation maps ([`cam`]) of the label's classes.
//! - **People**: the object detector's `person` class finds people, also those whose face is
//!   turned away (`Person`/`Human`, one box per body); BlazeFace ([`faces`]) finds faces (`Face`,
//!   one box each) on the whole image and around the small heads of those people (a face without
//!   a body gets a person box grown from the face).
//! - **Text**: photos the classifier suspects of text (a page, a sign, a menu) go through
//!   PP-OCRv4's text detector ([`text`]), which confirms `Text` and boxes its lines.
//! - **Sky, Outdoors, Plant, Vegetation, Nature**: colour regions ([`scene`]), words ImageNet lacks.
//! - **ImageProperties**: [`properties`] (quality figures, dominant colours).
//!
//! Two engines run the same ONNX files ([`engine`]): ONNX Runtime (default) and tract.

pub mod cam;
pub mod detector;
pub mod engine;
pub mod faces;
pub mod labeler;
pub mod objects;
pub mod properties;
pub mod regions;
pub mod resize;
pub mod scene;
pub mod taxonomy;
pub mod text;

pub use engine::EngineKind;
pub use labeler::{LoadOptions, LocalLabeler, StageTimings};

use std::path::{Path, PathBuf};

/// File names inside the model folder.
pub const CLASSIFIER_FILE: &str = "efficientnet-lite0.onnx";
pub const FACE_DETECTOR_FILE: &str = "blazeface-front-128.onnx";
pub const TEXT_DETECTOR_FILE: &str = "ppocr-v4-det.onnx";
pub const OBJECT_DETECTOR_FILE: &str = "centernet-coco.onnx";
pub const ORT_LIBRARY_FILE: &str = "libonnxruntime.so";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VisionError {
    #[error("model: {0}")]
    Model(String),
    #[error("inference failed: {0}")]
    Inference(String),
}

/// The ONNX Runtime library: `explicit` when given, else inside the model folder.
pub fn ort_library_in(model_dir: &Path, explicit: Option<&Path>) -> PathBuf {
    explicit
        .map(Path::to_path_buf)
        .unwrap_or_else(|| model_dir.join(ORT_LIBRARY_FILE))
}
