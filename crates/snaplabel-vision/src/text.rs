//! Text detection with PaddleOCR's PP-OCRv4 detector (a DB, "differentiable binarisation",
//! network): it outputs, for every input pixel, the probability that the pixel lies inside a
//! (shrunk) text line. Lines are the connected regions of the thresholded map, grown back by the
//! shrink ratio the model was trained with, each scored by the mean probability inside it.
//!
//! The network costs more than the face detector, so the labeler runs it only for photos the
//! classifier already suspects of text (a page, a sign, a menu): it confirms them and boxes the
//! lines.

use crate::VisionError;
use crate::detector::{self, Detection, Rect};
use crate::engine::{Network, Tensor};
use crate::regions::{ConnectedRegion, connected_regions};
use crate::resize::{Region, resize_region};
use image::RgbImage;

/// The input's longer side: lines of ordinary print on a page are still several pixels tall.
pub const LONG_SIDE: u32 = 320;
/// The shorter side for landscape and portrait photos; the network takes multiples of 32.
pub const SHORT_SIDE: u32 = 224;
/// The input shapes [`detect`] uses (NCHW): square, landscape, portrait.
pub const INPUT_SHAPES: [[usize; 4]; 3] = [
    [1, 3, LONG_SIDE as usize, LONG_SIDE as usize],
    [1, 3, SHORT_SIDE as usize, LONG_SIDE as usize],
    [1, 3, LONG_SIDE as usize, SHORT_SIDE as usize],
];
/// PaddleOCR's defaults: a pixel is text above 0.3; a line is kept if its mean is at least 0.6.
const PIXEL_THRESHOLD: f32 = 0.3;
pub const DEFAULT_THRESHOLD: f32 = 0.6;
/// Lines are trained shrunk by this ratio (DB's "unclip").
const UNCLIP_RATIO: f32 = 1.5;
/// Regions smaller than this many input pixels are noise, not lines.
const MIN_AREA: usize = 12;
/// ImageNet normalisation, as the model was trained.
const MEAN: [f32; 3] = [0.485, 0.456, 0.406];
const STD: [f32; 3] = [0.229, 0.224, 0.225];

/// A line of text: `rect` and `extent` are its box.
pub type TextLine = Detection;

/// The input size `(height, width)` for an image: its orientation's rectangle, or the square.
pub fn input_size(width: u32, height: u32) -> (u32, u32) {
    detector::oriented_input(width, height, LONG_SIDE, SHORT_SIDE)
}

/// The lines of text in the whole image, as fractions of it.
pub fn detect(
    network: &dyn Network,
    image: &RgbImage,
    threshold: f32,
) -> Result<Vec<TextLine>, VisionError> {
    let (height, width) = input_size(image.width(), image.height());
    // Stretched to the input rather than letterboxed: DB maps are per pixel, so the aspect change
    // (at most 5:4 against the photo) is undone exactly when mapping back.
    let rgb = resize_region(image, Region::whole(image), width, height);
    let (w, h) = (width as usize, height as usize);
    let input = Tensor::nchw(&rgb, w, h, |c, v| (v as f32 / 255.0 - MEAN[c]) / STD[c]);
    let outputs = network.run(input)?;
    let [map] = outputs.as_slice() else {
        return Err(VisionError::Inference(format!(
            "the text detector returned {} outputs, expected 1",
            outputs.len()
        )));
    };
    if map.data.len() != w * h {
        return Err(VisionError::Inference(format!(
            "the text detector's map has {} values, expected {h}×{w}",
            map.data.len()
        )));
    }
    Ok(lines(&map.data, w, h, threshold))
}

/// Connected regions of the probability map (`width × height`) above [`PIXEL_THRESHOLD`] whose
/// mean probability reaches `threshold`, grown by [`UNCLIP_RATIO`], as fractions of the map.
pub fn lines(map: &[f32], width: usize, height: usize, threshold: f32) -> Vec<TextLine> {
    // A pixel is text above the threshold; NaN (never expected from the network) is not.
    let is_text = |v: f32| v.is_finite() && v >= PIXEL_THRESHOLD;
    let mut found = Vec::new();
    for region in connected_regions(map, width, height, is_text) {
        let score = region.mean();
        if region.cells < MIN_AREA || score < threshold {
            continue;
        }
        let ConnectedRegion { x0, y0, x1, y1, .. } = region;
        // DB's unclip: grow by area × ratio / perimeter on every side.
        let (bw, bh) = ((x1 - x0 + 1) as f32, (y1 - y0 + 1) as f32);
        let grow = bw * bh * UNCLIP_RATIO / (2.0 * (bw + bh));
        let left = (x0 as f32 - grow).max(0.0);
        let top = (y0 as f32 - grow).max(0.0);
        let right = (x1 as f32 + 1.0 + grow).min(width as f32);
        let bottom = (y1 as f32 + 1.0 + grow).min(height as f32);
        let rect = Rect {
            left: left / width as f32,
            top: top / height as f32,
            width: (right - left) / width as f32,
            height: (bottom - top) / height as f32,
        };
        found.push(TextLine {
            rect,
            extent: rect,
            score,
        });
    }
    found.sort_by(|a, b| b.score.total_cmp(&a.score));
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn photos_get_the_input_of_their_orientation() {
        assert_eq!(input_size(4032, 3024), (224, 320));
        assert_eq!(input_size(1080, 1920), (320, 224));
        assert_eq!(input_size(1000, 900), (320, 320));
        for [_, _, h, w] in INPUT_SHAPES {
            assert!(h % 32 == 0 && w % 32 == 0);
        }
    }

    #[test]
    fn regions_become_grown_lines_and_faint_or_tiny_ones_are_dropped() {
        let (w, h) = (40, 20);
        let mut map = vec![0.0f32; w * h];
        // A confident line: 20×2 pixels at (10, 5).
        for y in 5..7 {
            for x in 10..30 {
                map[y * w + x] = 0.9;
            }
        }
        // A faint region: above the pixel threshold, below the line threshold.
        for y in 12..15 {
            for x in 2..12 {
                map[y * w + x] = 0.4;
            }
        }
        // A speck.
        map[18 * w + 35] = 1.0;
        let found = lines(&map, w, h, DEFAULT_THRESHOLD);
        assert_eq!(found.len(), 1, "{found:?}");
        let line = found[0];
        assert!((line.score - 0.9).abs() < 1e-5);
        // 20×2 grows by 20·2·1.5 / 44 ≈ 1.36 pixels on every side.
        let grow = 40.0 * 1.5 / 44.0;
        assert!(
            (line.rect.left - (10.0 - grow) / 40.0).abs() < 1e-5,
            "{line:?}"
        );
        assert!((line.rect.width - (20.0 + 2.0 * grow) / 40.0).abs() < 1e-5);
        assert!((line.rect.height - (2.0 + 2.0 * grow) / 20.0).abs() < 1e-5);
    }

    #[test]
    fn an_empty_or_nan_map_has_no_lines() {
        assert!(lines(&[0.0; 64], 8, 8, DEFAULT_THRESHOLD).is_empty());
        assert!(lines(&[f32::NAN; 64], 8, 8, DEFAULT_THRESHOLD).is_empty());
    }
}
