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

/// Below this fraction of the image's longer side a head is too small for the whole-image view
/// (128 pixels across the image: its face is under a fifth of the image), so BlazeFace also looks
/// at a view around the head.
const SMALL_HEAD: f32 = 0.4;
/// The view around a small head is this many times the head box: the face then fills about a
/// quarter of the input, as in the front-camera photos the model was trained on.
const HEAD_VIEW_SCALE: f32 = 1.5;
/// Views around heads per image, the likeliest people first: a crowd costs at most this many runs.
pub const MAX_HEAD_VIEWS: usize = 6;

/// Square views around the small heads of the people the object detector found (`rect` of each
/// is the head, see [`crate::objects::head_of`]), where BlazeFace confirms and boxes the face.
/// Large heads need no view of their own: the whole-image view sees them.
pub fn views_around_heads(image: &RgbImage, people: &[Detection]) -> Vec<View> {
    let (w, h) = (image.width() as f32, image.height() as f32);
    let mut small: Vec<&Detection> = people
        .iter()
        .filter(|p| (p.rect.width * w).max(p.rect.height * h) < SMALL_HEAD * w.max(h))
        .collect();
    small.sort_by(|a, b| b.score.total_cmp(&a.score));
    small
        .into_iter()
        .take(MAX_HEAD_VIEWS)
        .map(|p| {
            let (cx, cy) = p.rect.centre();
            let head = (p.rect.width * w).max(p.rect.height * h);
            // At least the input's own size: smaller views would only be upscaled.
            let side = (head * HEAD_VIEW_SCALE)
                .max(INPUT_SIZE as f32)
                .min(w.min(h))
                .round();
            let left = (cx * w - side / 2.0).clamp(0.0, w - side);
            let top = (cy * h - side / 2.0).clamp(0.0, h - side);
            View {
                left: left.round() as u32,
                top: top.round() as u32,
                width: side as u32,
                height: side as u32,
            }
        })
        .collect()
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
    use crate::detector::Rect;

    #[test]
    fn anchors_match_the_model_outputs() {
        assert_eq!(detector::anchors(&GRIDS).len(), 512 + 384);
    }

    /// A person whose head box is `side` of a 1000×600 image's width, square in pixels.
    fn person_with_head(left: f32, top: f32, side: f32, score: f32) -> Detection {
        let rect = Rect {
            left,
            top,
            width: side,
            height: side * 1000.0 / 600.0,
        };
        Detection {
            rect,
            extent: rect,
            score,
        }
    }

    #[test]
    fn small_heads_get_a_view_around_them_and_large_ones_none() {
        let image = RgbImage::new(1000, 600);
        let people = [
            // A 200 px head: small, gets a 300 px view centred on it.
            person_with_head(0.4, 0.3, 0.2, 0.9),
            // 450 px: the whole-image view sees its face.
            person_with_head(0.1, 0.1, 0.45, 0.95),
            // 20 px at the corner: the view is the input's size, pushed inside the image.
            person_with_head(0.0, 0.98, 0.02, 0.7),
        ];
        let views = views_around_heads(&image, &people);
        assert_eq!(views.len(), 2);
        assert_eq!(
            views[0],
            View {
                left: 350,
                top: 130,
                width: 300,
                height: 300
            }
        );
        assert_eq!(views[1].width, INPUT_SIZE);
        assert_eq!((views[1].left, views[1].top + views[1].height), (0, 600));
    }

    #[test]
    fn a_crowd_costs_at_most_max_head_views() {
        let image = RgbImage::new(1000, 600);
        let crowd: Vec<Detection> = (0..20)
            .map(|i| person_with_head(i as f32 * 0.05, 0.4, 0.03, 0.6 + i as f32 * 0.01))
            .collect();
        let views = views_around_heads(&image, &crowd);
        assert_eq!(views.len(), MAX_HEAD_VIEWS);
        // The likeliest people first: the last ones in the row.
        assert!(views[0].left > views[MAX_HEAD_VIEWS - 1].left);
    }
}
