//! Person detection with MediaPipe's BlazePose detector (224×224 input, 2254 anchors), which finds
//! people whose face BlazeFace misses: turned away, in profile, small in a full-body shot.
//!
//! Each anchor predicts a score, a box around the head, and four keypoints: the hip centre, a
//! point on the circle around the whole body, the shoulder centre and a point on the circle around
//! the upper body. The body's extent is the square around the whole-body circle (together with
//! the head box), clipped to the image. Detections are merged by their head boxes, as MediaPipe
//! does, so two people side by side stay two.

use crate::VisionError;
use crate::detector::{self, Detection, View, letterboxed_input, sigmoid};
use crate::engine::Network;
use image::RgbImage;

pub const INPUT_SIZE: u32 = 224;
/// Above MediaPipe's 0.5: on the quality set the people scored 0.62–0.95, but a kite in a blue
/// sky 0.54.
pub const DEFAULT_THRESHOLD: f32 = 0.6;
const IOU_MERGE: f32 = 0.3;
/// (cells per side, anchors per cell) for strides 8, 16 and 32.
const GRIDS: [(usize, usize); 3] = [(28, 2), (14, 2), (7, 6)];
const ANCHORS: usize = 28 * 28 * 2 + 14 * 14 * 2 + 7 * 7 * 6;
/// Per anchor: box centre x/y, width, height, then 4 keypoints x/y.
const ROW: usize = 12;

/// A person: `rect` is the head, `extent` the body.
pub type Person = Detection;

/// The people in the whole image, merged.
pub fn detect(
    network: &dyn Network,
    image: &RgbImage,
    threshold: f32,
) -> Result<Vec<Person>, VisionError> {
    let (tensor, placement) = letterboxed_input(image, &View::whole(image), INPUT_SIZE);
    let outputs = network.run(tensor)?;
    let [boxes, scores] = outputs.as_slice() else {
        return Err(VisionError::Inference(format!(
            "the person detector returned {} outputs, expected 2",
            outputs.len()
        )));
    };
    if boxes.data.len() != ANCHORS * ROW || scores.data.len() != ANCHORS {
        return Err(VisionError::Inference(
            "the person detector's outputs have unexpected shapes".into(),
        ));
    }
    let size = INPUT_SIZE as f32;
    let mut candidates = Vec::new();
    for ((&raw, row), (ax, ay)) in scores
        .data
        .iter()
        .zip(boxes.data.chunks_exact(ROW))
        .zip(detector::anchors(&GRIDS))
    {
        let score = sigmoid(raw);
        if score < threshold {
            continue;
        }
        let point = |i: usize| (ax + row[i] / size, ay + row[i + 1] / size);
        let (cx, cy) = point(0);
        let (half_w, half_h) = (row[2] / size / 2.0, row[3] / size / 2.0);
        let Some(head) = placement.to_image(cx - half_w, cy - half_h, cx + half_w, cy + half_h)
        else {
            continue;
        };
        // The input is square and undistorted, so the circle's radius is the same in x and y.
        let (hip, on_circle) = (point(4), point(6));
        let radius = ((on_circle.0 - hip.0).powi(2) + (on_circle.1 - hip.1).powi(2)).sqrt();
        let body = placement.to_image(
            hip.0 - radius,
            hip.1 - radius,
            hip.0 + radius,
            hip.1 + radius,
        );
        candidates.push(Person {
            rect: head,
            extent: body.map_or(head, |b| b.union(&head)),
            score,
        });
    }
    Ok(detector::merge(candidates, IOU_MERGE))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anchors_match_the_model_outputs() {
        assert_eq!(detector::anchors(&GRIDS).len(), ANCHORS);
        assert_eq!(ANCHORS, 2254);
    }
}
