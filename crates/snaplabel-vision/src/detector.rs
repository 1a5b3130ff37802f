//! What the single-shot detectors share (BlazeFace in [`crate::faces`], CenterNet in
//! [`crate::objects`], PP-OCR in [`crate::text`]): the view of the image a detector looks at, the
//! letterboxed [-1, 1] NHWC input, anchor grids, mapping boxes back to image fractions, and
//! merging overlapping detections by score-weighted averaging (MediaPipe's "weighted NMS").

use crate::engine::Tensor;
use crate::resize::{Region, resize_region};
use image::RgbImage;

/// A part of the image a detector looks at, in pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct View {
    pub left: u32,
    pub top: u32,
    pub width: u32,
    pub height: u32,
}

impl View {
    pub fn whole(image: &RgbImage) -> View {
        View {
            left: 0,
            top: 0,
            width: image.width(),
            height: image.height(),
        }
    }
}

/// A rectangle as fractions of the upright image.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rect {
    pub left: f32,
    pub top: f32,
    pub width: f32,
    pub height: f32,
}

impl Rect {
    fn right(&self) -> f32 {
        self.left + self.width
    }

    fn bottom(&self) -> f32 {
        self.top + self.height
    }

    pub fn iou(&self, other: &Rect) -> f32 {
        let x0 = self.left.max(other.left);
        let y0 = self.top.max(other.top);
        let x1 = self.right().min(other.right());
        let y1 = self.bottom().min(other.bottom());
        let inter = (x1 - x0).max(0.0) * (y1 - y0).max(0.0);
        inter / (self.width * self.height + other.width * other.height - inter).max(1e-9)
    }

    /// The smallest rectangle holding both.
    pub fn union(&self, other: &Rect) -> Rect {
        let (left, top) = (self.left.min(other.left), self.top.min(other.top));
        Rect {
            left,
            top,
            width: self.right().max(other.right()) - left,
            height: self.bottom().max(other.bottom()) - top,
        }
    }

    pub fn contains(&self, x: f32, y: f32) -> bool {
        (self.left..=self.right()).contains(&x) && (self.top..=self.bottom()).contains(&y)
    }

    pub fn centre(&self) -> (f32, f32) {
        (self.left + self.width / 2.0, self.top + self.height / 2.0)
    }
}

/// One detection: the box the detector's anchor matched (`rect`, what overlapping detections are
/// compared by) and the extent reported for it (the same box for faces; the whole body for a
/// person, whose anchor box is the head).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Detection {
    pub rect: Rect,
    pub extent: Rect,
    /// 0–1.
    pub score: f32,
}

/// One anchor grid of a detector: its cells and how many anchors each cell has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grid {
    pub rows: usize,
    pub columns: usize,
    pub per_cell: usize,
}

impl Grid {
    /// The grid of an input `height × width` at `stride` pixels per cell.
    pub fn of(height: usize, width: usize, stride: usize, per_cell: usize) -> Grid {
        Grid {
            rows: height / stride,
            columns: width / stride,
            per_cell,
        }
    }
}

/// Anchor centres, in input fractions, in the models' output order: grid by grid, row by row.
pub fn anchors(grids: &[Grid]) -> Vec<(f32, f32)> {
    let mut out = Vec::new();
    for grid in grids {
        for y in 0..grid.rows {
            for x in 0..grid.columns {
                for _ in 0..grid.per_cell {
                    out.push((
                        (x as f32 + 0.5) / grid.columns as f32,
                        (y as f32 + 0.5) / grid.rows as f32,
                    ));
                }
            }
        }
    }
    out
}

/// Where the view sits in the input, and so how input fractions map back to the image.
pub struct Placement {
    input_width: f32,
    input_height: f32,
    offset_x: f32,
    offset_y: f32,
    width: f32,
    height: f32,
    view: View,
    image_width: f32,
    image_height: f32,
}

impl Placement {
    /// The rectangle `[x0, x1] × [y0, y1]` in input fractions, as image fractions, clipped to the
    /// view; `None` when nothing of it is inside.
    pub fn to_image(&self, x0: f32, y0: f32, x1: f32, y1: f32) -> Option<Rect> {
        let to_x = |v: f32| ((v * self.input_width - self.offset_x) / self.width).clamp(0.0, 1.0);
        let to_y = |v: f32| ((v * self.input_height - self.offset_y) / self.height).clamp(0.0, 1.0);
        let (left, right, top, bottom) = (to_x(x0), to_x(x1), to_y(y0), to_y(y1));
        if right - left <= 0.0 || bottom - top <= 0.0 {
            return None;
        }
        let (vw, vh) = (self.view.width as f32, self.view.height as f32);
        Some(Rect {
            left: (self.view.left as f32 + left * vw) / self.image_width,
            top: (self.view.top as f32 + top * vh) / self.image_height,
            width: (right - left) * vw / self.image_width,
            height: (bottom - top) * vh / self.image_height,
        })
    }
}

/// The input size `(height, width)` of a detector that takes `long × long` squares and
/// `long × short` rectangles, for an image of `width × height`: landscape and portrait photos
/// (sides at least 5:4) get the rectangle in their orientation, the rest the square.
pub fn oriented_input(width: u32, height: u32, long: u32, short: u32) -> (u32, u32) {
    if width * 4 >= height * 5 {
        (short, long)
    } else if height * 4 >= width * 5 {
        (long, short)
    } else {
        (long, long)
    }
}

/// The NHWC `[1, height, width, 3]` input in [-1, 1]: `view` scaled to fit, centred, on black
/// (so shapes keep their proportions).
pub fn letterboxed_input(
    image: &RgbImage,
    view: &View,
    height: u32,
    width: u32,
) -> (Tensor, Placement) {
    let (w, h) = (view.width, view.height);
    let scale = (width as f32 / w as f32).min(height as f32 / h as f32);
    let (sw, sh) = (
        ((w as f32 * scale).round() as u32).clamp(1, width),
        ((h as f32 * scale).round() as u32).clamp(1, height),
    );
    let (ox, oy) = ((width - sw) / 2, (height - sh) / 2);
    let region = Region {
        left: view.left as f64,
        top: view.top as f64,
        width: w as f64,
        height: h as f64,
    };
    let small = resize_region(image, region, sw, sh);
    let mut data = vec![-1.0f32; (width * height * 3) as usize];
    for y in 0..sh {
        let src = (y * sw * 3) as usize;
        let dst = (((y + oy) * width + ox) * 3) as usize;
        for (to, &from) in data[dst..dst + (sw * 3) as usize]
            .iter_mut()
            .zip(&small[src..src + (sw * 3) as usize])
        {
            *to = from as f32 / 127.5 - 1.0;
        }
    }
    let placement = Placement {
        input_width: width as f32,
        input_height: height as f32,
        offset_x: ox as f32,
        offset_y: oy as f32,
        width: sw as f32,
        height: sh as f32,
        view: *view,
        image_width: image.width() as f32,
        image_height: image.height() as f32,
    };
    (
        Tensor::new(vec![1, height as usize, width as usize, 3], data),
        placement,
    )
}

pub fn sigmoid(logit: f32) -> f32 {
    1.0 / (1.0 + (-logit.clamp(-100.0, 100.0)).exp())
}

/// Groups detections whose anchor boxes overlap by at least `iou`; each group becomes one
/// detection, its boxes the score-weighted means, its score the best.
pub fn merge(mut candidates: Vec<Detection>, iou: f32) -> Vec<Detection> {
    candidates.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut merged = Vec::new();
    while let Some(best) = candidates.first().copied() {
        let (group, rest): (Vec<Detection>, Vec<Detection>) = candidates
            .into_iter()
            .partition(|c| best.rect.iou(&c.rect) >= iou);
        let total: f32 = group.iter().map(|d| d.score).sum();
        let mean = |get: &dyn Fn(&Detection) -> Rect| {
            let part = |field: fn(&Rect) -> f32| {
                group.iter().map(|d| field(&get(d)) * d.score).sum::<f32>() / total
            };
            Rect {
                left: part(|r| r.left),
                top: part(|r| r.top),
                width: part(|r| r.width),
                height: part(|r| r.height),
            }
        };
        merged.push(Detection {
            rect: mean(&|d| d.rect),
            extent: mean(&|d| d.extent),
            score: best.score,
        });
        candidates = rest;
    }
    merged
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anchors_follow_the_grids_in_order() {
        let a = anchors(&[Grid::of(128, 128, 8, 2), Grid::of(128, 128, 16, 6)]);
        assert_eq!(a.len(), 896);
        assert_eq!(a[0], (1.0 / 32.0, 1.0 / 32.0));
        assert_eq!(a[1], a[0]);
        assert_eq!(a[512], (1.0 / 16.0, 1.0 / 16.0));
        // A wide input: more columns than rows, the next row after all columns.
        let wide = anchors(&[Grid::of(64, 128, 32, 1)]);
        assert_eq!(wide.len(), 8);
        assert_eq!(wide[0], (1.0 / 8.0, 0.25));
        assert_eq!(wide[4], (1.0 / 8.0, 0.75));
    }

    fn detection(left: f32, score: f32) -> Detection {
        let rect = Rect {
            left,
            top: 0.1,
            width: 0.2,
            height: 0.2,
        };
        Detection {
            rect,
            extent: Rect {
                height: 0.6,
                ..rect
            },
            score,
        }
    }

    #[test]
    fn overlapping_detections_merge_into_their_weighted_mean() {
        let merged = merge(
            vec![
                detection(0.10, 0.9),
                detection(0.12, 0.8),
                detection(0.6, 0.85),
            ],
            0.3,
        );
        assert_eq!(merged.len(), 2);
        assert_eq!(merged[0].score, 0.9);
        assert!(merged[0].rect.left > 0.10 && merged[0].rect.left < 0.12);
        assert!(merged[0].extent.left > 0.10 && merged[0].extent.left < 0.12);
        assert!((merged[0].extent.height - 0.6).abs() < 1e-6);
        assert_eq!(merged[1].rect.left, 0.6);
    }

    #[test]
    fn placement_maps_letterboxed_input_back_to_the_image() {
        // A 200×100 image sits in the middle half of the square input.
        let image = RgbImage::new(200, 100);
        let (tensor, placement) = letterboxed_input(&image, &View::whole(&image), 64, 64);
        assert_eq!(tensor.shape, vec![1, 64, 64, 3]);
        let r = placement.to_image(0.0, 0.25, 0.5, 0.75).unwrap();
        assert!((r.left - 0.0).abs() < 1e-6 && (r.width - 0.5).abs() < 1e-6);
        assert!((r.top - 0.0).abs() < 1e-6 && (r.height - 1.0).abs() < 1e-6);
        // The padding above the image holds nothing of it.
        assert_eq!(placement.to_image(0.0, 0.0, 1.0, 0.2), None);
        // The padding is black.
        assert_eq!(tensor.data[0], -1.0);
        // In a wide input of the image's proportions there is no padding at all.
        let (tensor, placement) = letterboxed_input(&image, &View::whole(&image), 32, 64);
        assert_eq!(tensor.shape, vec![1, 32, 64, 3]);
        let r = placement.to_image(0.25, 0.0, 0.5, 1.0).unwrap();
        assert!((r.left - 0.25).abs() < 1e-6 && (r.width - 0.25).abs() < 1e-6);
        assert!((r.height - 1.0).abs() < 1e-6);
    }

    #[test]
    fn union_and_containment() {
        let a = Rect {
            left: 0.1,
            top: 0.1,
            width: 0.2,
            height: 0.2,
        };
        let b = Rect {
            left: 0.2,
            top: 0.0,
            width: 0.3,
            height: 0.1,
        };
        let u = a.union(&b);
        assert!((u.left - 0.1).abs() < 1e-6 && (u.right() - 0.5).abs() < 1e-6);
        assert!((u.top - 0.0).abs() < 1e-6 && (u.bottom() - 0.3).abs() < 1e-6);
        assert!(u.contains(0.3, 0.2) && !a.contains(0.4, 0.2));
    }
}
