//! Amazon Rekognition `DetectLabels` shapes, field for field (PascalCase on the wire).
//!
//! The local labeler produces these, the Rekognition labeler passes them through, and the local
//! Rekognition endpoint serves them, so a document reads the same whoever made it.

use serde::{Deserialize, Serialize};

/// A `DetectLabels` response (`Labels`, `ImageProperties`, `LabelModelVersion`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DetectLabelsResponse {
    #[serde(default)]
    pub labels: Vec<Label>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_properties: Option<ImageProperties>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label_model_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub orientation_correction: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Label {
    pub name: String,
    /// 0–100.
    pub confidence: f32,
    #[serde(default)]
    pub instances: Vec<Instance>,
    #[serde(default)]
    pub parents: Vec<NamedItem>,
    #[serde(default)]
    pub aliases: Vec<NamedItem>,
    #[serde(default)]
    pub categories: Vec<NamedItem>,
}

/// `Parents[]`, `Aliases[]` and `Categories[]` entries are all `{"Name": …}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct NamedItem {
    pub name: String,
}

impl NamedItem {
    pub fn new(name: impl Into<String>) -> Self {
        NamedItem { name: name.into() }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Instance {
    pub bounding_box: BoundingBox,
    pub confidence: f32,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dominant_colors: Vec<DominantColor>,
}

/// Fractions of the (upright) image's width and height, origin top-left.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct BoundingBox {
    pub width: f32,
    pub height: f32,
    pub left: f32,
    pub top: f32,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ImageProperties {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quality: Option<ImageQuality>,
    #[serde(default)]
    pub dominant_colors: Vec<DominantColor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub foreground: Option<RegionProperties>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub background: Option<RegionProperties>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ImageQuality {
    pub brightness: f32,
    pub sharpness: f32,
    pub contrast: f32,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RegionProperties {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quality: Option<ImageQuality>,
    #[serde(default)]
    pub dominant_colors: Vec<DominantColor>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DominantColor {
    pub red: u8,
    pub blue: u8,
    pub green: u8,
    pub hex_code: String,
    #[serde(rename = "CSSColor")]
    pub css_color: String,
    pub simplified_color: String,
    pub pixel_percent: f32,
}

/// What `DetectLabels` can be asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Feature {
    GeneralLabels,
    ImageProperties,
}

/// The request options of `DetectLabels` (everything but `Image`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DetectOptions {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_labels: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_confidence: Option<f32>,
    /// Empty means Rekognition's default: general labels only.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub features: Vec<Feature>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settings: Option<DetectSettings>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DetectSettings {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub general_labels: Option<GeneralLabelsSettings>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_properties: Option<ImagePropertiesSettings>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GeneralLabelsSettings {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub label_inclusion_filters: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub label_exclusion_filters: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub label_category_inclusion_filters: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub label_category_exclusion_filters: Vec<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ImagePropertiesSettings {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_dominant_colors: Option<u32>,
}

/// Rekognition's default `MinConfidence`.
pub const DEFAULT_MIN_CONFIDENCE: f32 = 55.0;
/// Rekognition's upper bound for `MaxLabels`.
pub const MAX_LABELS_LIMIT: u32 = 1000;
/// Rekognition's default (and maximum) `MaxDominantColors`.
pub const DEFAULT_MAX_DOMINANT_COLORS: u32 = 10;

impl DetectOptions {
    pub fn wants_labels(&self) -> bool {
        self.features.is_empty() || self.features.contains(&Feature::GeneralLabels)
    }

    pub fn wants_image_properties(&self) -> bool {
        self.features.contains(&Feature::ImageProperties)
    }

    pub fn effective_min_confidence(&self) -> f32 {
        self.min_confidence
            .unwrap_or(DEFAULT_MIN_CONFIDENCE)
            .clamp(0.0, 100.0)
    }

    pub fn effective_max_labels(&self) -> usize {
        self.max_labels
            .unwrap_or(MAX_LABELS_LIMIT)
            .clamp(1, MAX_LABELS_LIMIT) as usize
    }

    pub fn effective_max_dominant_colors(&self) -> usize {
        let n = self
            .settings
            .as_ref()
            .and_then(|s| s.image_properties)
            .and_then(|p| p.max_dominant_colors)
            .unwrap_or(DEFAULT_MAX_DOMINANT_COLORS);
        n.min(DEFAULT_MAX_DOMINANT_COLORS) as usize
    }

    /// Checks the options the way Rekognition does (its `InvalidParameterException`s).
    pub fn validate(&self) -> Result<(), InvalidOptions> {
        if let Some(c) = self.min_confidence
            && (!(0.0..=100.0).contains(&c) || c.is_nan())
        {
            return Err(InvalidOptions::MinConfidence(c));
        }
        if let Some(n) = self.max_labels
            && (n == 0 || n > MAX_LABELS_LIMIT)
        {
            return Err(InvalidOptions::MaxLabels(n));
        }
        if let Some(g) = self
            .settings
            .as_ref()
            .and_then(|s| s.general_labels.as_ref())
        {
            let lists = [
                &g.label_inclusion_filters,
                &g.label_exclusion_filters,
                &g.label_category_inclusion_filters,
                &g.label_category_exclusion_filters,
            ];
            if lists.iter().any(|l| l.len() > 100) {
                return Err(InvalidOptions::TooManyFilters);
            }
        }
        Ok(())
    }

    /// Applies `MinConfidence`, the label and category filters and `MaxLabels` to labels sorted
    /// by descending confidence, as Rekognition does. Filters compare names case-insensitively.
    pub fn filter_labels(&self, mut labels: Vec<Label>) -> Vec<Label> {
        let min = self.effective_min_confidence();
        let general = self
            .settings
            .as_ref()
            .and_then(|s| s.general_labels.clone())
            .unwrap_or_default();
        let in_list =
            |list: &[String], name: &str| list.iter().any(|l| l.eq_ignore_ascii_case(name));
        labels.retain(|label| {
            if label.confidence < min {
                return false;
            }
            if !general.label_inclusion_filters.is_empty()
                && !in_list(&general.label_inclusion_filters, &label.name)
            {
                return false;
            }
            if in_list(&general.label_exclusion_filters, &label.name) {
                return false;
            }
            let in_categories =
                |list: &[String]| label.categories.iter().any(|c| in_list(list, &c.name));
            if !general.label_category_inclusion_filters.is_empty()
                && !in_categories(&general.label_category_inclusion_filters)
            {
                return false;
            }
            !in_categories(&general.label_category_exclusion_filters)
        });
        labels.sort_by(|a, b| {
            b.confidence
                .total_cmp(&a.confidence)
                .then_with(|| a.name.cmp(&b.name))
        });
        labels.truncate(self.effective_max_labels());
        labels
    }
}

/// Why `DetectLabels` options are refused, in Rekognition's words.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum InvalidOptions {
    #[error("MinConfidence must be between 0 and 100, got {0}")]
    MinConfidence(f32),
    #[error("MaxLabels must be between 1 and {MAX_LABELS_LIMIT}, got {0}")]
    MaxLabels(u32),
    #[error("label and category filters take at most 100 entries each")]
    TooManyFilters,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn label(name: &str, confidence: f32, category: &str) -> Label {
        Label {
            name: name.into(),
            confidence,
            categories: vec![NamedItem::new(category)],
            ..Default::default()
        }
    }

    #[test]
    fn wire_names_match_rekognition() {
        let resp = DetectLabelsResponse {
            labels: vec![Label {
                name: "Cat".into(),
                confidence: 97.5,
                instances: vec![Instance {
                    bounding_box: BoundingBox {
                        width: 0.5,
                        height: 0.4,
                        left: 0.1,
                        top: 0.2,
                    },
                    confidence: 90.0,
                    dominant_colors: vec![],
                }],
                parents: vec![NamedItem::new("Animal")],
                aliases: vec![NamedItem::new("Kitty")],
                categories: vec![NamedItem::new("Animals and Pets")],
            }],
            image_properties: Some(ImageProperties {
                quality: Some(ImageQuality {
                    brightness: 50.0,
                    sharpness: 60.0,
                    contrast: 70.0,
                }),
                dominant_colors: vec![DominantColor {
                    red: 1,
                    blue: 2,
                    green: 3,
                    hex_code: "#010302".into(),
                    css_color: "black".into(),
                    simplified_color: "black".into(),
                    pixel_percent: 12.5,
                }],
                ..Default::default()
            }),
            label_model_version: Some("3.0".into()),
            orientation_correction: None,
        };
        let v = serde_json::to_value(&resp).unwrap();
        assert_eq!(
            v["Labels"][0]["Instances"][0]["BoundingBox"]["Left"],
            0.1f32 as f64
        );
        assert_eq!(v["Labels"][0]["Parents"][0]["Name"], "Animal");
        assert_eq!(
            v["ImageProperties"]["DominantColors"][0]["CSSColor"],
            "black"
        );
        assert_eq!(v["ImageProperties"]["Quality"]["Sharpness"], 60.0);
        assert_eq!(v["LabelModelVersion"], "3.0");
        let back: DetectLabelsResponse = serde_json::from_value(v).unwrap();
        assert_eq!(back, resp);
    }

    #[test]
    fn filters_apply_like_rekognition() {
        let labels = vec![
            label("Cat", 97.0, "Animals and Pets"),
            label("Pet", 97.0, "Animals and Pets"),
            label("Cup", 60.0, "Kitchen and Dining"),
            label("Table", 40.0, "Furniture and Furnishings"),
        ];
        let opts = DetectOptions::default();
        let names = |ls: Vec<Label>| ls.into_iter().map(|l| l.name).collect::<Vec<_>>();
        assert_eq!(
            names(opts.filter_labels(labels.clone())),
            ["Cat", "Pet", "Cup"]
        );

        let opts = DetectOptions {
            max_labels: Some(1),
            min_confidence: Some(10.0),
            ..Default::default()
        };
        assert_eq!(names(opts.filter_labels(labels.clone())), ["Cat"]);

        let opts = DetectOptions {
            min_confidence: Some(0.0),
            settings: Some(DetectSettings {
                general_labels: Some(GeneralLabelsSettings {
                    label_exclusion_filters: vec!["pet".into()],
                    label_category_exclusion_filters: vec!["Furniture and Furnishings".into()],
                    ..Default::default()
                }),
                image_properties: None,
            }),
            ..Default::default()
        };
        assert_eq!(names(opts.filter_labels(labels.clone())), ["Cat", "Cup"]);

        let opts = DetectOptions {
            settings: Some(DetectSettings {
                general_labels: Some(GeneralLabelsSettings {
                    label_category_inclusion_filters: vec!["Kitchen and Dining".into()],
                    ..Default::default()
                }),
                image_properties: None,
            }),
            ..Default::default()
        };
        assert_eq!(names(opts.filter_labels(labels)), ["Cup"]);
    }

    #[test]
    fn options_are_validated() {
        assert!(
            DetectOptions {
                min_confidence: Some(101.0),
                ..Default::default()
            }
            .validate()
            .is_err()
        );
        assert!(
            DetectOptions {
                max_labels: Some(0),
                ..Default::default()
            }
            .validate()
            .is_err()
        );
        assert!(
            DetectOptions {
                max_labels: Some(5),
                min_confidence: Some(70.0),
                ..Default::default()
            }
            .validate()
            .is_ok()
        );
    }
}
