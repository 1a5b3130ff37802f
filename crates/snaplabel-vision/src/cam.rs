//! Bounding boxes from class activation maps.
//!
//! EfficientNet ends in global average pooling and one linear layer, so applying that layer at
//! each of the 7×7 cells of the last feature map (the model's `class_maps` output) shows where in
//! the image each class's evidence lies. A label's map is its classes' maps weighted by their
//! probabilities; its instances are the connected regions above a fraction of the peak.

use snaplabel_core::detect::BoundingBox;

/// Per-class maps for one image: `classes × size × size`, row-major.
#[derive(Debug, Clone)]
pub struct ClassMaps {
    pub classes: usize,
    pub size: usize,
    pub data: Vec<f32>,
}

/// The part of the image the classifier saw, as fractions of the upright image.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Frame {
    pub left: f32,
    pub top: f32,
    pub width: f32,
    pub height: f32,
}

/// A located instance: its box in the image and its strength relative to the label's peak (0–1).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Located {
    pub bounding_box: BoundingBox,
    pub strength: f32,
}

const UPSAMPLED: usize = 28;
/// Cells above this fraction of the peak belong to an instance.
const REGION_THRESHOLD: f32 = 0.4;
/// A second region must peak at least this high to count as another instance.
const SECONDARY_PEAK: f32 = 0.6;
const MAX_INSTANCES: usize = 5;

impl ClassMaps {
    /// The probability-weighted map of several classes.
    fn combined(&self, classes: &[(usize, f32)]) -> Vec<f32> {
        let cells = self.size * self.size;
        let mut out = vec![0.0f32; cells];
        for &(class, p) in classes.iter().take(8) {
            if class >= self.classes {
                continue;
            }
            let map = &self.data[class * cells..(class + 1) * cells];
            for (o, &v) in out.iter_mut().zip(map) {
                *o += p * v;
            }
        }
        out
    }

    /// Instances for a label made of `classes`, strongest first.
    pub fn locate(&self, classes: &[(usize, f32)], frame: Frame) -> Vec<Located> {
        let map = upsample(&self.combined(classes), self.size, UPSAMPLED);
        let (min, max) = map
            .iter()
            .fold((f32::MAX, f32::MIN), |(lo, hi), &v| (lo.min(v), hi.max(v)));
        if !(max - min).is_finite() || max - min < 1e-6 {
            return Vec::new();
        }
        let norm: Vec<f32> = map.iter().map(|v| (v - min) / (max - min)).collect();
        let mut regions = components(&norm, UPSAMPLED, REGION_THRESHOLD);
        regions.sort_by(|a, b| b.peak.total_cmp(&a.peak));
        regions
            .into_iter()
            .enumerate()
            .filter(|(i, r)| {
                *i == 0 || (r.peak >= SECONDARY_PEAK && r.cells >= UPSAMPLED * UPSAMPLED / 50)
            })
            .take(MAX_INSTANCES)
            .map(|(_, r)| {
                let g = UPSAMPLED as f32;
                let bounding_box = BoundingBox {
                    left: frame.left + frame.width * r.x0 as f32 / g,
                    top: frame.top + frame.height * r.y0 as f32 / g,
                    width: frame.width * (r.x1 - r.x0 + 1) as f32 / g,
                    height: frame.height * (r.y1 - r.y0 + 1) as f32 / g,
                };
                Located {
                    bounding_box,
                    strength: r.peak,
                }
            })
            .collect()
    }
}

/// Bilinear upsampling of a `size × size` grid to `out × out`, cell centres aligned.
fn upsample(grid: &[f32], size: usize, out: usize) -> Vec<f32> {
    let mut result = vec![0.0f32; out * out];
    let scale = size as f32 / out as f32;
    for oy in 0..out {
        let fy = ((oy as f32 + 0.5) * scale - 0.5).clamp(0.0, (size - 1) as f32);
        let (y0, ty) = (fy.floor() as usize, fy.fract());
        let y1 = (y0 + 1).min(size - 1);
        for ox in 0..out {
            let fx = ((ox as f32 + 0.5) * scale - 0.5).clamp(0.0, (size - 1) as f32);
            let (x0, tx) = (fx.floor() as usize, fx.fract());
            let x1 = (x0 + 1).min(size - 1);
            let top = grid[y0 * size + x0] * (1.0 - tx) + grid[y0 * size + x1] * tx;
            let bottom = grid[y1 * size + x0] * (1.0 - tx) + grid[y1 * size + x1] * tx;
            result[oy * out + ox] = top * (1.0 - ty) + bottom * ty;
        }
    }
    result
}

struct Region {
    x0: usize,
    y0: usize,
    x1: usize,
    y1: usize,
    peak: f32,
    cells: usize,
}

/// 4-connected regions of cells ≥ `threshold`.
fn components(map: &[f32], size: usize, threshold: f32) -> Vec<Region> {
    let mut seen = vec![false; map.len()];
    let mut regions = Vec::new();
    for start in 0..map.len() {
        if seen[start] || map[start] < threshold {
            continue;
        }
        let mut region = Region {
            x0: size,
            y0: size,
            x1: 0,
            y1: 0,
            peak: 0.0,
            cells: 0,
        };
        let mut stack = vec![start];
        seen[start] = true;
        while let Some(i) = stack.pop() {
            let (x, y) = (i % size, i / size);
            region.x0 = region.x0.min(x);
            region.x1 = region.x1.max(x);
            region.y0 = region.y0.min(y);
            region.y1 = region.y1.max(y);
            region.peak = region.peak.max(map[i]);
            region.cells += 1;
            let mut visit = |j: usize| {
                if !seen[j] && map[j] >= threshold {
                    seen[j] = true;
                    stack.push(j);
                }
            };
            if x > 0 {
                visit(i - 1);
            }
            if x + 1 < size {
                visit(i + 1);
            }
            if y > 0 {
                visit(i - size);
            }
            if y + 1 < size {
                visit(i + size);
            }
        }
        regions.push(region);
    }
    regions
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hot_corner_gives_a_box_in_that_corner() {
        let mut data = vec![0.0f32; 2 * 49];
        // Class 1 is strong in the top-left 2×2 cells.
        for (x, y) in [(0, 0), (1, 0), (0, 1), (1, 1)] {
            data[49 + y * 7 + x] = 5.0;
        }
        let maps = ClassMaps {
            classes: 2,
            size: 7,
            data,
        };
        let frame = Frame {
            left: 0.0,
            top: 0.0,
            width: 1.0,
            height: 1.0,
        };
        let found = maps.locate(&[(1, 0.9)], frame);
        assert_eq!(found.len(), 1);
        let b = found[0].bounding_box;
        assert!(b.left < 0.05 && b.top < 0.05, "{b:?}");
        assert!(
            b.width > 0.2 && b.width < 0.45 && b.height > 0.2 && b.height < 0.45,
            "{b:?}"
        );
    }

    #[test]
    fn two_separate_blobs_are_two_instances_mapped_into_the_frame() {
        let mut data = vec![0.0f32; 49];
        data[7 + 1] = 4.0;
        data[5 * 7 + 5] = 3.5;
        let maps = ClassMaps {
            classes: 1,
            size: 7,
            data,
        };
        let frame = Frame {
            left: 0.1,
            top: 0.0,
            width: 0.8,
            height: 1.0,
        };
        let found = maps.locate(&[(0, 1.0)], frame);
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(found[0].bounding_box.left < found[1].bounding_box.left);
        assert!(found.iter().all(|f| f.bounding_box.left >= 0.1
            && f.bounding_box.left + f.bounding_box.width <= 0.9 + 1e-6));
    }

    #[test]
    fn a_flat_map_locates_nothing() {
        let maps = ClassMaps {
            classes: 1,
            size: 7,
            data: vec![1.0; 49],
        };
        assert!(
            maps.locate(
                &[(0, 1.0)],
                Frame {
                    left: 0.0,
                    top: 0.0,
                    width: 1.0,
                    height: 1.0
                }
            )
            .is_empty()
        );
    }
}
