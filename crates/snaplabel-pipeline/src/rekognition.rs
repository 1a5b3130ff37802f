//! [`Labeler`] on Amazon Rekognition `DetectLabels`.
//!
//! JPEG and PNG within Rekognition's limits are labeled by S3 reference (no bytes cross the
//! Lambda); everything else (WebP, GIF, BMP, TIFF, tiny or huge images) is converted to a JPEG
//! that fits Rekognition's byte limits and sent inline. The endpoint is configurable, so the
//! same code runs against `snaplabel dev`'s local Rekognition endpoint.

use crate::labeler::{LabelRequest, Labeler};
use async_trait::async_trait;
use aws_sdk_rekognition::operation::detect_labels::DetectLabelsError;
use aws_sdk_rekognition::types as rk;
use snaplabel_core::detect::{
    BoundingBox, DetectLabelsResponse, DetectOptions, DominantColor, Feature, ImageProperties,
    ImageQuality, Instance, Label, NamedItem, RegionProperties,
};
use snaplabel_core::result::LabelerInfo;
use snaplabel_core::{ErrorBody, ErrorCode};
use snaplabel_imageio::Limits;

/// Rekognition's documented limits.
pub const S3_OBJECT_MAX_BYTES: u64 = 15 * 1024 * 1024;
pub const INLINE_MAX_BYTES: usize = 5 * 1024 * 1024;
pub const MIN_SIDE: u32 = 80;
pub const MAX_SIDE: u32 = 10_000;
/// Converted images are scaled to at most this side: Rekognition gains nothing from more pixels.
const CONVERTED_MAX_SIDE: u32 = 4096;

pub struct RekognitionLabeler {
    client: aws_sdk_rekognition::Client,
    limits: Limits,
}

impl RekognitionLabeler {
    pub fn new(client: aws_sdk_rekognition::Client, limits: Limits) -> Self {
        RekognitionLabeler { client, limits }
    }

    fn image_for(&self, request: &LabelRequest<'_>) -> Result<rk::Image, ErrorBody> {
        let p = request.probe;
        let by_reference = p.format.rekognition_native()
            && (request.bytes.len() as u64) <= S3_OBJECT_MAX_BYTES
            && p.width.min(p.height) >= MIN_SIDE
            && p.width.max(p.height) <= MAX_SIDE;
        if by_reference {
            return Ok(rk::Image::builder()
                .s3_object(
                    rk::S3Object::builder()
                        .bucket(request.bucket)
                        .name(request.key)
                        .build(),
                )
                .build());
        }
        let jpeg = snaplabel_imageio::to_jpeg(
            request.bytes,
            &self.limits,
            MIN_SIDE,
            CONVERTED_MAX_SIDE,
            INLINE_MAX_BYTES,
        )?;
        Ok(rk::Image::builder()
            .bytes(aws_sdk_rekognition::primitives::Blob::new(jpeg))
            .build())
    }
}

#[async_trait]
impl Labeler for RekognitionLabeler {
    fn info(&self) -> LabelerInfo {
        LabelerInfo {
            name: "rekognition".into(),
            model: "amazon-rekognition-detect-labels".into(),
            engine: None,
        }
    }

    async fn label(&self, request: LabelRequest<'_>) -> Result<DetectLabelsResponse, ErrorBody> {
        let image = self.image_for(&request)?;
        let options = request.options;
        let out = self
            .client
            .detect_labels()
            .image(image)
            .set_max_labels(options.max_labels.map(|n| n as i32))
            .set_min_confidence(options.min_confidence)
            .set_features(to_features(options))
            .set_settings(to_settings(options))
            .send()
            .await
            .map_err(|err| map_error(err.into_service_error()))?;
        Ok(from_output(out))
    }
}

fn to_features(options: &DetectOptions) -> Option<Vec<rk::DetectLabelsFeatureName>> {
    if options.features.is_empty() {
        return None;
    }
    Some(
        options
            .features
            .iter()
            .map(|f| match f {
                Feature::GeneralLabels => rk::DetectLabelsFeatureName::GeneralLabels,
                Feature::ImageProperties => rk::DetectLabelsFeatureName::ImageProperties,
            })
            .collect(),
    )
}

fn to_settings(options: &DetectOptions) -> Option<rk::DetectLabelsSettings> {
    let settings = options.settings.as_ref()?;
    let general = settings.general_labels.as_ref().map(|g| {
        rk::GeneralLabelsSettings::builder()
            .set_label_inclusion_filters(non_empty(&g.label_inclusion_filters))
            .set_label_exclusion_filters(non_empty(&g.label_exclusion_filters))
            .set_label_category_inclusion_filters(non_empty(&g.label_category_inclusion_filters))
            .set_label_category_exclusion_filters(non_empty(&g.label_category_exclusion_filters))
            .build()
    });
    let properties = settings.image_properties.map(|p| {
        rk::DetectLabelsImagePropertiesSettings::builder()
            .set_max_dominant_colors(p.max_dominant_colors.map(|n| n as i32))
            .build()
    });
    Some(
        rk::DetectLabelsSettings::builder()
            .set_general_labels(general)
            .set_image_properties(properties)
            .build(),
    )
}

fn non_empty(v: &[String]) -> Option<Vec<String>> {
    (!v.is_empty()).then(|| v.to_vec())
}

fn map_error(err: DetectLabelsError) -> ErrorBody {
    let message = aws_sdk_rekognition::error::DisplayErrorContext(&err).to_string();
    let code = match &err {
        DetectLabelsError::InvalidImageFormatException(_) => ErrorCode::UnsupportedFormat,
        DetectLabelsError::ImageTooLargeException(_) => ErrorCode::TooLarge,
        _ => ErrorCode::LabelerFailed,
    };
    ErrorBody::new(code, format!("Rekognition refused the image: {message}"))
}

fn named(items: &[impl HasName]) -> Vec<NamedItem> {
    items
        .iter()
        .filter_map(|i| i.item_name())
        .map(NamedItem::new)
        .collect()
}

/// Parents, aliases and categories are three SDK types with the same single field.
trait HasName {
    fn item_name(&self) -> Option<&str>;
}
impl HasName for rk::Parent {
    fn item_name(&self) -> Option<&str> {
        self.name()
    }
}
impl HasName for rk::LabelAlias {
    fn item_name(&self) -> Option<&str> {
        self.name()
    }
}
impl HasName for rk::LabelCategory {
    fn item_name(&self) -> Option<&str> {
        self.name()
    }
}

fn from_output(
    out: aws_sdk_rekognition::operation::detect_labels::DetectLabelsOutput,
) -> DetectLabelsResponse {
    let labels = out
        .labels()
        .iter()
        .map(|l| Label {
            name: l.name().unwrap_or_default().to_string(),
            confidence: l.confidence().unwrap_or(0.0),
            instances: l
                .instances()
                .iter()
                .filter_map(|i| {
                    let b = i.bounding_box()?;
                    Some(Instance {
                        bounding_box: BoundingBox {
                            width: b.width().unwrap_or(0.0),
                            height: b.height().unwrap_or(0.0),
                            left: b.left().unwrap_or(0.0),
                            top: b.top().unwrap_or(0.0),
                        },
                        confidence: i.confidence().unwrap_or(0.0),
                        dominant_colors: colors(i.dominant_colors()),
                    })
                })
                .collect(),
            parents: named(l.parents()),
            aliases: named(l.aliases()),
            categories: named(l.categories()),
        })
        .collect();
    let image_properties = out.image_properties().map(|p| ImageProperties {
        quality: p.quality().map(quality),
        dominant_colors: colors(p.dominant_colors()),
        foreground: p.foreground().map(|f| RegionProperties {
            quality: f.quality().map(quality),
            dominant_colors: colors(f.dominant_colors()),
        }),
        background: p.background().map(|b| RegionProperties {
            quality: b.quality().map(quality),
            dominant_colors: colors(b.dominant_colors()),
        }),
    });
    DetectLabelsResponse {
        labels,
        image_properties,
        label_model_version: out.label_model_version().map(str::to_string),
        orientation_correction: out.orientation_correction().map(|o| o.as_str().to_string()),
    }
}

fn quality(q: &rk::DetectLabelsImageQuality) -> ImageQuality {
    ImageQuality {
        brightness: q.brightness().unwrap_or(0.0),
        sharpness: q.sharpness().unwrap_or(0.0),
        contrast: q.contrast().unwrap_or(0.0),
    }
}

fn colors(cs: &[rk::DominantColor]) -> Vec<DominantColor> {
    cs.iter()
        .map(|c| DominantColor {
            red: c.red().unwrap_or(0).clamp(0, 255) as u8,
            blue: c.blue().unwrap_or(0).clamp(0, 255) as u8,
            green: c.green().unwrap_or(0).clamp(0, 255) as u8,
            hex_code: c.hex_code().unwrap_or_default().to_string(),
            css_color: c.css_color().unwrap_or_default().to_string(),
            simplified_color: c.simplified_color().unwrap_or_default().to_string(),
            pixel_percent: c.pixel_percent().unwrap_or(0.0),
        })
        .collect()
}
