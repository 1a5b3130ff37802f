//! Face detection with MediaPipe BlazeFace (front model, 128×128 input, 896 anchors).
//!
//! The image is letterboxed onto a square (so faces keep their proportions), scaled to 128×128
//! and normalised to [-1, 1]. Each anchor predicts a score and a box relative to its grid cell;
//! overlapping detections are merged by score-weighted averaging (MediaPipe's "weighted NMS").

use crate::VisionError;
use crate::detector::{self, Detection, Grid, View, letterboxed_input, sigmoid};
use crate::engine::Network;
use image::RgbImage;

pub const INPUT_SIZE: u32 = 128;
/// MediaPipe's default for the front model.
pub const DEFAULT_THRESHOLD: f32 = 0.75;
const IOU_MERGE: f32 = 0.3;
/// The model's anchor grids: strides 8 and 16.
const GRIDS: [Grid; 2] = [
    Grid {
        rows: 16,
        columns: 16,
        per_cell: 2,
    },
    Grid {
        rows: 8,
        columns: 8,
        per_cell: 6,
    },
];

/// A face: its box is both `rect` and `extent`.
pub type Face = Detection;

/// The whole image and four overlapping quarter tiles: the front-camera model sees 128×128
/// pixels, so faces in group photos and full-body shots are only found in a tile. Each view is
/// detected separately (callers may spread them over threads) and the results [`merge`]d.
pub fn views(image: &RgbImage) -> Vec<View> {
    let (w, h) = image.dimensions();
    let whole = View::whole(image);
    if w.min(h) < 200 {
        return vec![whole];
    }
    let (tw, th) = (
        (w as f32 * 0.6).round() as u32,
        (h as f32 * 0.6).round() as u32,
    );
    let mut views = vec![whole];
    for (left, top) in [(0, 0), (w - tw, 0), (0, h - th), (w - tw, h - th)] {
        views.push(View {
            left,
            top,
            width: tw,
            height: th,
        });
    }
    views
}

/// Raw detections in one view, as fractions of the whole image, before [`merge`].
pub fn detect_in(
    network: &dyn Network,
    image: &RgbImage,
    view: &View,
    threshold: f32,
) -> Result<Vec<Face>, VisionError> {
    let (tensor, placement) = letterboxed_input(image, view, INPUT_SIZE, INPUT_SIZE);
    let outputs = network.run(tensor)?;
    let [scores_16, scores_8, boxes_16, boxes_8] = outputs.as_slice() else {
        return Err(VisionError::Inference(format!(
            "BlazeFace returned {} outputs, expected 4",
            outputs.len()
        )));
    };
    if scores_16.data.len() != 512
        || scores_8.data.len() != 384
        || boxes_16.data.len() != 512 * 16
        || boxes_8.data.len() != 384 * 16
    {
        return Err(VisionError::Inference(
            "BlazeFace outputs have unexpected shapes".into(),
        ));
    }
    let scores = scores_16.data.iter().chain(&scores_8.data);
    let boxes = boxes_16
        .data
        .chunks_exact(16)
        .chain(boxes_8.data.chunks_exact(16));
    let size = INPUT_SIZE as f32;
    let mut candidates = Vec::new();
    for ((&raw, b), (ax, ay)) in scores.zip(boxes).zip(detector::anchors(&GRIDS)) {
        let score = sigmoid(raw);
        if score < threshold {
            continue;
        }
        let (cx, cy) = (ax + b[0] / size, ay + b[1] / size);
        let (half_w, half_h) = (b[2] / size / 2.0, b[3] / size / 2.0);
        if let Some(rect) = placement.to_image(cx - half_w, cy - half_h, cx + half_w, cy + half_h) {
            candidates.push(Face {
                rect,
                extent: rect,
                score,
            });
        }
    }
    Ok(candidates)
}

/// One face per group of overlapping detections (from all views).
pub fn merge(candidates: Vec<Face>) -> Vec<Face> {
    detector::merge(candidates, IOU_MERGE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anchors_match_the_model_outputs() {
        assert_eq!(detector::anchors(&GRIDS).len(), 512 + 384);
    }

    #[test]
    fn big_images_get_four_overlapping_tiles() {
        let small = RgbImage::new(300, 150);
        assert_eq!(views(&small), vec![View::whole(&small)]);
        let big = RgbImage::new(1000, 500);
        let v = views(&big);
        assert_eq!(v.len(), 5);
        assert_eq!(v[4].left + v[4].width, 1000);
        assert_eq!(v[4].top + v[4].height, 500);
        assert!(v[1].left < v[1].width, "the left and right tiles overlap");
    }
}
