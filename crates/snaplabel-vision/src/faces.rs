//! Face detection with MediaPipe BlazeFace (front model, 128×128 input, 896 anchors).
//!
//! The image is letterboxed onto a square (so faces keep their proportions), scaled to 128×128
//! and normalised to [-1, 1]. Each anchor predicts a score and a box relative to its grid cell;
//! overlapping detections are merged by score-weighted averaging (MediaPipe's "weighted NMS").

use crate::VisionError;
use crate::engine::{Network, Tensor};
use crate::resize::{Region, resize_region};
use image::RgbImage;

pub const INPUT_SIZE: u32 = 128;
/// MediaPipe's default for the front model.
pub const DEFAULT_THRESHOLD: f32 = 0.75;
const IOU_MERGE: f32 = 0.3;

/// A face, as fractions of the upright image.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Face {
    pub left: f32,
    pub top: f32,
    pub width: f32,
    pub height: f32,
    /// 0–1.
    pub score: f32,
}

/// Anchor centres of the two grids, in input fractions, in the model's output order.
fn anchors() -> Vec<(f32, f32)> {
    let mut out = Vec::with_capacity(896);
    for (cells, per_cell) in [(16usize, 2usize), (8, 6)] {
        for y in 0..cells {
            for x in 0..cells {
                for _ in 0..per_cell {
                    out.push((
                        (x as f32 + 0.5) / cells as f32,
                        (y as f32 + 0.5) / cells as f32,
                    ));
                }
            }
        }
    }
    out
}

/// The letterboxed square the detector sees: where the image sits inside it.
struct Letterbox {
    side: f32,
    offset_x: f32,
    offset_y: f32,
    width: f32,
    height: f32,
}

/// Builds the NHWC input tensor from `view` of the image.
fn input(image: &RgbImage, view: &View) -> (Tensor, Letterbox) {
    let (w, h) = (view.width, view.height);
    let side = w.max(h) as f32;
    let scale = INPUT_SIZE as f32 / side;
    let (sw, sh) = (
        ((w as f32 * scale).round() as u32).clamp(1, INPUT_SIZE),
        ((h as f32 * scale).round() as u32).clamp(1, INPUT_SIZE),
    );
    let (ox, oy) = ((INPUT_SIZE - sw) / 2, (INPUT_SIZE - sh) / 2);
    let region = Region {
        left: view.left as f64,
        top: view.top as f64,
        width: w as f64,
        height: h as f64,
    };
    let small = resize_region(image, region, sw, sh);
    // Padding is black, i.e. -1 after normalisation.
    let mut data = vec![-1.0f32; (INPUT_SIZE * INPUT_SIZE * 3) as usize];
    for y in 0..sh {
        for x in 0..sw {
            let src = ((y * sw + x) * 3) as usize;
            let dst = (((y + oy) * INPUT_SIZE + x + ox) * 3) as usize;
            for c in 0..3 {
                data[dst + c] = small[src + c] as f32 / 127.5 - 1.0;
            }
        }
    }
    let letterbox = Letterbox {
        side: INPUT_SIZE as f32,
        offset_x: ox as f32,
        offset_y: oy as f32,
        width: sw as f32,
        height: sh as f32,
    };
    (
        Tensor::new(vec![1, INPUT_SIZE as usize, INPUT_SIZE as usize, 3], data),
        letterbox,
    )
}

/// A part of the image the detector looks at, in pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct View {
    pub left: u32,
    pub top: u32,
    pub width: u32,
    pub height: u32,
}

/// The whole image and four overlapping quarter tiles: the front-camera model sees 128×128
/// pixels, so faces in group photos and full-body shots are only found in a tile. Each view is
/// detected separately (callers may spread them over threads) and the results [`merge`]d.
pub fn views(image: &RgbImage) -> Vec<View> {
    let (w, h) = image.dimensions();
    let whole = View {
        left: 0,
        top: 0,
        width: w,
        height: h,
    };
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

/// Raw detections in one view, as fractions of the whole image, before merging.
pub fn detect_in(
    network: &dyn Network,
    image: &RgbImage,
    view: &View,
    threshold: f32,
) -> Result<Vec<Face>, VisionError> {
    let (tensor, letterbox) = input(image, view);
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
    let boxes: Vec<&[f32]> = boxes_16
        .data
        .chunks_exact(16)
        .chain(boxes_8.data.chunks_exact(16))
        .collect();
    let mut candidates: Vec<Face> = Vec::new();
    for ((&raw, b), (ax, ay)) in scores.zip(&boxes).zip(anchors()) {
        let score = 1.0 / (1.0 + (-raw.clamp(-100.0, 100.0)).exp());
        if score < threshold {
            continue;
        }
        let size = INPUT_SIZE as f32;
        let (cx, cy) = (ax + b[0] / size, ay + b[1] / size);
        let (bw, bh) = (b[2] / size, b[3] / size);
        // Input fractions → letterboxed pixels → image fractions.
        let to_x = |v: f32| (v * letterbox.side - letterbox.offset_x) / letterbox.width;
        let to_y = |v: f32| (v * letterbox.side - letterbox.offset_y) / letterbox.height;
        let (left, right) = (
            to_x(cx - bw / 2.0).clamp(0.0, 1.0),
            to_x(cx + bw / 2.0).clamp(0.0, 1.0),
        );
        let (top, bottom) = (
            to_y(cy - bh / 2.0).clamp(0.0, 1.0),
            to_y(cy + bh / 2.0).clamp(0.0, 1.0),
        );
        if right - left <= 0.0 || bottom - top <= 0.0 {
            continue;
        }
        // View fractions → image fractions.
        let (w, h) = (image.width() as f32, image.height() as f32);
        let (vw, vh) = (view.width as f32, view.height as f32);
        candidates.push(Face {
            left: (view.left as f32 + left * vw) / w,
            top: (view.top as f32 + top * vh) / h,
            width: (right - left) * vw / w,
            height: (bottom - top) * vh / h,
            score,
        });
    }
    Ok(candidates)
}

fn iou(a: &Face, b: &Face) -> f32 {
    let x0 = a.left.max(b.left);
    let y0 = a.top.max(b.top);
    let x1 = (a.left + a.width).min(b.left + b.width);
    let y1 = (a.top + a.height).min(b.top + b.height);
    let inter = (x1 - x0).max(0.0) * (y1 - y0).max(0.0);
    inter / (a.width * a.height + b.width * b.height - inter).max(1e-9)
}

/// Groups overlapping detections; each group becomes one face, its box the score-weighted mean.
pub fn merge(mut candidates: Vec<Face>) -> Vec<Face> {
    candidates.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut faces = Vec::new();
    while let Some(best) = candidates.first().copied() {
        let (group, rest): (Vec<Face>, Vec<Face>) = candidates
            .into_iter()
            .partition(|c| iou(&best, c) >= IOU_MERGE);
        let total: f32 = group.iter().map(|f| f.score).sum();
        let mean =
            |get: fn(&Face) -> f32| group.iter().map(|f| get(f) * f.score).sum::<f32>() / total;
        faces.push(Face {
            left: mean(|f| f.left),
            top: mean(|f| f.top),
            width: mean(|f| f.width),
            height: mean(|f| f.height),
            score: best.score,
        });
        candidates = rest;
    }
    faces
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anchors_cover_both_grids() {
        let a = anchors();
        assert_eq!(a.len(), 896);
        assert_eq!(a[0], (1.0 / 32.0, 1.0 / 32.0));
        assert_eq!(a[512], (1.0 / 16.0, 1.0 / 16.0));
    }

    #[test]
    fn overlapping_detections_merge() {
        let f = |left: f32, score: f32| Face {
            left,
            top: 0.1,
            width: 0.2,
            height: 0.2,
            score,
        };
        let merged = merge(vec![f(0.10, 0.9), f(0.12, 0.8), f(0.6, 0.85)]);
        assert_eq!(merged.len(), 2);
        assert_eq!(merged[0].score, 0.9);
        assert!(merged[0].left > 0.10 && merged[0].left < 0.12);
        assert_eq!(merged[1].left, 0.6);
    }
}
