//! Person detection with MediaPipe's BlazePose detector (trained on 224×224 letterboxed squares;
//! run on 224×160 for landscape and portrait photos), which finds people whose face BlazeFace
//! misses: turned away, in profile, small in a full-body shot.
//!
//! Each anchor predicts a score, a box (around the face when it shows, else on the upper body),
//! and four keypoints: the hip centre, a point on the circle around the whole body, the shoulder
//! centre and a point on the circle around the upper body. The body's extent is the square around
//! the whole-body circle (together with the box), clipped to the image: generous for someone
//! standing, since the model says how tall a person is but not how wide. Detections are merged by
//! their small boxes, as MediaPipe does, so two people side by side stay two.

use crate::VisionError;
use crate::detector::{self, Detection, Grid, View, letterboxed_input, sigmoid};
use crate::engine::Network;
use image::RgbImage;

/// The side of the square the model was trained on.
pub const INPUT_SIZE: u32 = 224;
/// The input for a landscape photo: the 224 square's pixel scale without most of its padding
/// (224×160 costs 71% of 224×224). The graph takes any multiple of 32.
pub const SHORT_SIDE: u32 = 160;
/// The input shapes [`detect`] uses (NHWC): square, landscape, portrait.
pub const INPUT_SHAPES: [[usize; 4]; 3] = [
    [1, INPUT_SIZE as usize, INPUT_SIZE as usize, 3],
    [1, SHORT_SIDE as usize, INPUT_SIZE as usize, 3],
    [1, INPUT_SIZE as usize, SHORT_SIDE as usize, 3],
];
/// Above MediaPipe's 0.5: on the quality set the people scored 0.62–0.95 (0.75 for the basketball
/// players in the landscape input), but a kite in a blue sky 0.54.
pub const DEFAULT_THRESHOLD: f32 = 0.6;
const IOU_MERGE: f32 = 0.3;
/// Per anchor: box centre x/y, width, height, then 4 keypoints x/y.
const ROW: usize = 12;

/// A person: `rect` is the anchor box (face or upper body), `extent` the body.
pub type Person = Detection;

/// The input size `(height, width)` for an image: landscape and portrait photos (sides at least
/// 5:4) get the 224×160 input, the rest the square.
pub fn input_size(width: u32, height: u32) -> (u32, u32) {
    detector::oriented_input(width, height, INPUT_SIZE, SHORT_SIDE)
}

/// The people in the whole image, merged.
pub fn detect(
    network: &dyn Network,
    image: &RgbImage,
    threshold: f32,
) -> Result<Vec<Person>, VisionError> {
    let (height, width) = input_size(image.width(), image.height());
    let (tensor, placement) = letterboxed_input(image, &View::whole(image), height, width);
    let (h, w) = (height as usize, width as usize);
    let grids = [
        Grid::of(h, w, 8, 2),
        Grid::of(h, w, 16, 2),
        Grid::of(h, w, 32, 6),
    ];
    let anchors = detector::anchors(&grids);
    let outputs = network.run(tensor)?;
    let [boxes, scores] = outputs.as_slice() else {
        return Err(VisionError::Inference(format!(
            "the person detector returned {} outputs, expected 2",
            outputs.len()
        )));
    };
    if boxes.data.len() != anchors.len() * ROW || scores.data.len() != anchors.len() {
        return Err(VisionError::Inference(
            "the person detector's outputs have unexpected shapes".into(),
        ));
    }
    let (fw, fh) = (width as f32, height as f32);
    let mut candidates = Vec::new();
    for ((&raw, row), (ax, ay)) in scores
        .data
        .iter()
        .zip(boxes.data.chunks_exact(ROW))
        .zip(anchors)
    {
        let score = sigmoid(raw);
        if score < threshold {
            continue;
        }
        // Offsets are in input pixels; positions become input fractions.
        let point = |i: usize| (ax + row[i] / fw, ay + row[i + 1] / fh);
        let (cx, cy) = point(0);
        let (half_w, half_h) = (row[2] / fw / 2.0, row[3] / fh / 2.0);
        let Some(head) = placement.to_image(cx - half_w, cy - half_h, cx + half_w, cy + half_h)
        else {
            continue;
        };
        // The circle around the body is round in pixels, not in fractions of a non-square input.
        let (hip, on_circle) = (point(4), point(6));
        let radius =
            (((on_circle.0 - hip.0) * fw).powi(2) + ((on_circle.1 - hip.1) * fh).powi(2)).sqrt();
        let (rx, ry) = (radius / fw, radius / fh);
        let body = placement.to_image(hip.0 - rx, hip.1 - ry, hip.0 + rx, hip.1 + ry);
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
    fn the_square_input_has_the_models_2254_anchors() {
        let grids = [
            Grid::of(224, 224, 8, 2),
            Grid::of(224, 224, 16, 2),
            Grid::of(224, 224, 32, 6),
        ];
        assert_eq!(detector::anchors(&grids).len(), 2254);
    }

    #[test]
    fn photos_get_the_input_of_their_orientation() {
        assert_eq!(input_size(4032, 3024), (160, 224));
        assert_eq!(input_size(1080, 1920), (224, 160));
        assert_eq!(input_size(1000, 900), (224, 224));
        for [_, h, w, _] in INPUT_SHAPES {
            assert!(
                h % 32 == 0 && w % 32 == 0,
                "the graph needs multiples of 32"
            );
        }
    }
}
