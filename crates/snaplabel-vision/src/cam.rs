//! Bounding boxes from class activation maps.
//!
//! EfficientNet ends in global average pooling and one linear layer, so applying that layer at
//! each of the 7×7 cells of the last feature map (the model's `features` output) shows where in
//! the image each class's evidence lies. A label's map is its classes' maps weighted by their
//! probabilities; its instances are the connected regions above a fraction of the peak.
//!
//! The layer is linear, so the weighted sum of a label's class maps is one weighted sum of
//! those classes' weight rows applied to the feature map: a few thousand multiply-adds per
//! label, where the network computing all 1000 maps on every run cost 1.5 ms a view.

use crate::VisionError;
use crate::regions::connected_regions;
use snaplabel_core::detect::BoundingBox;
use std::path::Path;

/// The classifier's linear layer, `classes × channels`, read from the model file. Its bias is
/// left out: it shifts a class's map by the same amount in every cell, and a map is only ever
/// compared with itself.
#[derive(Debug, Clone)]
pub struct ClassifierHead {
    pub classes: usize,
    pub channels: usize,
    pub weights: Vec<f32>,
}

/// The initializer holding the linear layer in the converted classifier.
const HEAD_WEIGHTS: &str = "fc.w";

impl ClassifierHead {
    /// Reads the `[classes, channels]` weights `fc.w` from an ONNX model file.
    pub fn read(model: &Path) -> Result<Self, VisionError> {
        use tract_onnx::prelude::Framework;
        let fail = |detail: String| VisionError::Model(format!("{}: {detail}", model.display()));
        let proto = tract_onnx::onnx()
            .proto_model_for_path(model)
            .map_err(|e| fail(e.to_string()))?;
        let tensor = proto
            .graph
            .as_ref()
            .and_then(|g| g.initializer.iter().find(|t| t.name == HEAD_WEIGHTS))
            .ok_or_else(|| {
                fail(format!(
                    "no {HEAD_WEIGHTS} initializer (the classifier's linear layer)"
                ))
            })?;
        let (classes, channels) = match tensor.dims[..] {
            [c, k] if c > 0 && k > 0 => (c as usize, k as usize),
            _ => {
                return Err(fail(format!(
                    "{HEAD_WEIGHTS} has shape {:?}, expected [classes, channels]",
                    tensor.dims
                )));
            }
        };
        // ONNX's TensorProto.DataType: 1 is FLOAT (32-bit).
        if tensor.data_type != 1 {
            return Err(fail(format!(
                "{HEAD_WEIGHTS} has ONNX data type {}, expected 1 (32-bit float)",
                tensor.data_type
            )));
        }
        // ONNX stores floats either packed little-endian in raw_data or in float_data.
        let weights: Vec<f32> = if !tensor.raw_data.is_empty() {
            tensor
                .raw_data
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect()
        } else {
            tensor.float_data.clone()
        };
        if weights.len() != classes * channels {
            return Err(fail(format!(
                "{HEAD_WEIGHTS} holds {} values, expected {classes}×{channels} floats",
                weights.len()
            )));
        }
        Ok(ClassifierHead {
            classes,
            channels,
            weights,
        })
    }
}

/// The classifier's last feature map for one view: `channels × size × size`, row-major.
#[derive(Debug, Clone)]
pub struct FeatureMap {
    pub channels: usize,
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

impl FeatureMap {
    /// The probability-weighted map of several classes (at most eight, the likeliest given
    /// first): `Σ p·w_class` applied at every cell.
    fn combined(&self, head: &ClassifierHead, classes: &[(usize, f32)]) -> Vec<f32> {
        let cells = self.size * self.size;
        let mut mixed = vec![0.0f32; self.channels];
        for &(class, p) in classes.iter().take(8) {
            if class >= head.classes || head.channels != self.channels {
                continue;
            }
            let row = &head.weights[class * head.channels..(class + 1) * head.channels];
            for (m, &w) in mixed.iter_mut().zip(row) {
                *m += p * w;
            }
        }
        let mut out = vec![0.0f32; cells];
        for (plane, &w) in self.data.chunks_exact(cells).zip(&mixed) {
            for (o, &v) in out.iter_mut().zip(plane) {
                *o += w * v;
            }
        }
        out
    }

    /// Instances for a label made of `classes`, strongest first.
    pub fn locate(
        &self,
        head: &ClassifierHead,
        classes: &[(usize, f32)],
        frame: Frame,
    ) -> Vec<Located> {
        let map = upsample(&self.combined(head, classes), self.size, UPSAMPLED);
        let (min, max) = map
            .iter()
            .fold((f32::MAX, f32::MIN), |(lo, hi), &v| (lo.min(v), hi.max(v)));
        if !(max - min).is_finite() || max - min < 1e-6 {
            return Vec::new();
        }
        let norm: Vec<f32> = map.iter().map(|v| (v - min) / (max - min)).collect();
        let mut found = connected_regions(&norm, UPSAMPLED, UPSAMPLED, |v| v >= REGION_THRESHOLD);
        found.sort_by(|a, b| b.peak.total_cmp(&a.peak));
        found
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    const WHOLE: Frame = Frame {
        left: 0.0,
        top: 0.0,
        width: 1.0,
        height: 1.0,
    };

    /// A head whose class `c` reads channel `c` alone, so each feature plane is that class's map.
    fn identity_head(classes: usize) -> ClassifierHead {
        let mut weights = vec![0.0f32; classes * classes];
        for c in 0..classes {
            weights[c * classes + c] = 1.0;
        }
        ClassifierHead {
            classes,
            channels: classes,
            weights,
        }
    }

    fn maps(classes: usize, data: Vec<f32>) -> FeatureMap {
        FeatureMap {
            channels: classes,
            size: 7,
            data,
        }
    }

    #[test]
    fn a_hot_corner_gives_a_box_in_that_corner() {
        let mut data = vec![0.0f32; 2 * 49];
        // Class 1 is strong in the top-left 2×2 cells.
        for (x, y) in [(0, 0), (1, 0), (0, 1), (1, 1)] {
            data[49 + y * 7 + x] = 5.0;
        }
        let found = maps(2, data).locate(&identity_head(2), &[(1, 0.9)], WHOLE);
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
        let frame = Frame {
            left: 0.1,
            top: 0.0,
            width: 0.8,
            height: 1.0,
        };
        let found = maps(1, data).locate(&identity_head(1), &[(0, 1.0)], frame);
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(found[0].bounding_box.left < found[1].bounding_box.left);
        assert!(found.iter().all(|f| f.bounding_box.left >= 0.1
            && f.bounding_box.left + f.bounding_box.width <= 0.9 + 1e-6));
    }

    #[test]
    fn a_flat_map_locates_nothing() {
        let found = maps(1, vec![1.0; 49]).locate(&identity_head(1), &[(0, 1.0)], WHOLE);
        assert!(found.is_empty());
    }

    #[test]
    fn a_labels_map_is_its_classes_maps_weighted_by_probability() {
        // Two classes over three channels with mixed weights: the combined map must equal the
        // probability-weighted sum of each class's own map (the layer applied cell by cell).
        let head = ClassifierHead {
            classes: 2,
            channels: 3,
            weights: vec![0.5, -1.0, 2.0, 1.5, 0.25, -0.75],
        };
        let features = FeatureMap {
            channels: 3,
            size: 7,
            data: (0..3 * 49).map(|i| ((i * 37) % 11) as f32 - 5.0).collect(),
        };
        let class_map = |class: usize| -> Vec<f32> {
            (0..49)
                .map(|cell| {
                    (0..3)
                        .map(|k| head.weights[class * 3 + k] * features.data[k * 49 + cell])
                        .sum()
                })
                .collect()
        };
        let (a, b) = (class_map(0), class_map(1));
        let combined = features.combined(&head, &[(0, 0.7), (1, 0.2)]);
        for cell in 0..49 {
            let expected = 0.7 * a[cell] + 0.2 * b[cell];
            assert!((combined[cell] - expected).abs() < 1e-4, "cell {cell}");
        }
    }

    /// Writes an ONNX file whose graph holds only `initializer`, and returns its path.
    fn model_with(name: &str, initializer: Option<tract_onnx::pb::TensorProto>) -> PathBuf {
        use prost::Message;
        let model = tract_onnx::pb::ModelProto {
            ir_version: 8,
            graph: Some(tract_onnx::pb::GraphProto {
                initializer: initializer.into_iter().collect(),
                ..Default::default()
            }),
            ..Default::default()
        };
        let path =
            std::env::temp_dir().join(format!("snaplabel-head-{}-{name}.onnx", std::process::id()));
        std::fs::write(&path, model.encode_to_vec()).unwrap();
        path
    }

    fn weights(dims: Vec<i64>, raw: &[f32], floats: &[f32]) -> tract_onnx::pb::TensorProto {
        tract_onnx::pb::TensorProto {
            name: HEAD_WEIGHTS.into(),
            dims,
            data_type: 1, // FLOAT
            raw_data: raw.iter().flat_map(|v| v.to_le_bytes()).collect(),
            float_data: floats.to_vec(),
            ..Default::default()
        }
    }

    #[test]
    fn the_head_is_read_from_raw_or_typed_floats() {
        let values = [0.5, -1.0, 2.0, 1.5, 0.25, -0.75];
        for (name, tensor) in [
            ("raw", weights(vec![2, 3], &values, &[])),
            ("typed", weights(vec![2, 3], &[], &values)),
        ] {
            let path = model_with(name, Some(tensor));
            let head = ClassifierHead::read(&path).unwrap();
            std::fs::remove_file(&path).ok();
            assert_eq!((head.classes, head.channels), (2, 3), "{name}");
            assert_eq!(head.weights, values, "{name}");
        }
    }

    #[test]
    fn a_model_without_a_usable_head_is_a_clear_model_error() {
        for (name, tensor, says) in [
            ("missing", None, "no fc.w initializer"),
            (
                "flat",
                Some(weights(vec![6], &[0.0; 6], &[])),
                "expected [classes, channels]",
            ),
            (
                "short",
                Some(weights(vec![2, 3], &[0.0; 5], &[])),
                "expected 2×3 floats",
            ),
            (
                "half",
                Some(tract_onnx::pb::TensorProto {
                    data_type: 10, // FLOAT16
                    ..weights(vec![2, 3], &[0.0; 3], &[])
                }),
                "expected 1 (32-bit float)",
            ),
        ] {
            let path = model_with(name, tensor);
            let error = ClassifierHead::read(&path).unwrap_err();
            std::fs::remove_file(&path).ok();
            assert!(
                matches!(&error, VisionError::Model(m) if m.contains(says)),
                "{name}: {error}"
            );
        }
        let error = ClassifierHead::read(Path::new("/nonexistent/classifier.onnx")).unwrap_err();
        assert!(matches!(error, VisionError::Model(_)), "{error}");
    }

    #[test]
    fn classes_outside_the_head_are_ignored() {
        let features = maps(2, vec![1.0; 2 * 49]);
        let combined = features.combined(&identity_head(2), &[(5, 1.0)]);
        assert!(combined.iter().all(|&v| v == 0.0));
    }
}
