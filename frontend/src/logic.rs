//! Everything the page decides, as plain Rust: the upload state machine, the polling schedule,
//! client-side file checks, and how a result document becomes rows, chips and boxes.
//!
//! Nothing here touches the browser, so it is unit-tested natively (`cargo test -p snaplabel-web`);
//! the components only render what these functions return.

use snaplabel_core::detect::{DetectLabelsResponse, DominantColor, ImageQuality};
use snaplabel_core::result::{ResultDocument, Status};
use std::time::Duration;

// ---------------------------------------------------------------------------------------------
// Configuration (`/config.json`)
// ---------------------------------------------------------------------------------------------

pub use snaplabel_core::api::{BrowserConfig, BrowserLimits};

/// Why a document from the backend was not used.
#[derive(Debug, thiserror::Error)]
pub enum BadDocument {
    #[error("config.json is not valid")]
    Config(#[source] serde_json::Error),
    #[error("the result document is not valid")]
    Result(#[source] serde_json::Error),
}

impl BadDocument {
    /// The sentence shown on the page: what was wrong, and where.
    pub fn message(&self) -> String {
        use std::error::Error;
        match self.source() {
            Some(cause) => format!("{self}: {cause}"),
            None => self.to_string(),
        }
    }
}

/// Reads `/config.json`.
pub fn parse_config(json: &str) -> Result<BrowserConfig, BadDocument> {
    serde_json::from_str(json).map_err(BadDocument::Config)
}

// ---------------------------------------------------------------------------------------------
// Client-side checks
// ---------------------------------------------------------------------------------------------

/// Why a file was turned away before any request was made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub code: &'static str,
    pub message: String,
}

/// The content type to declare for a file, or why it cannot be uploaded. Browsers leave
/// `File.type` empty for extensions they do not know, so the extension is the fallback; the
/// server sniffs the bytes anyway, so a lie here only ends in a failure document.
pub fn check_file(
    name: &str,
    browser_type: &str,
    size: u64,
    limits: &BrowserLimits,
) -> Result<String, Rejection> {
    let declared = if browser_type.is_empty() {
        content_type_from_name(name).unwrap_or_default().to_string()
    } else {
        browser_type.to_ascii_lowercase()
    };
    let lower = name.to_ascii_lowercase();
    if declared == "image/heic"
        || declared == "image/heif"
        || lower.ends_with(".heic")
        || lower.ends_with(".heif")
    {
        return Err(Rejection {
            code: "unsupported_content_type",
            message: "HEIC photos are not supported yet; share or export the photo as JPEG.".into(),
        });
    }
    if !limits.content_types.contains(&declared) {
        let shown = if declared.is_empty() {
            "an unknown type".to_string()
        } else {
            declared.clone()
        };
        return Err(Rejection {
            code: "unsupported_content_type",
            message: format!(
                "{shown} is not an image snaplabel reads (JPEG, PNG, WebP, GIF, BMP or TIFF)."
            ),
        });
    }
    if size == 0 {
        return Err(Rejection {
            code: "invalid_size",
            message: "The file is empty.".into(),
        });
    }
    if size > limits.max_upload_bytes {
        return Err(Rejection {
            code: "too_large",
            message: format!(
                "The file is {}; the limit is {}.",
                format_bytes(size),
                format_bytes(limits.max_upload_bytes)
            ),
        });
    }
    Ok(declared)
}

fn content_type_from_name(name: &str) -> Option<&'static str> {
    let ext = name.rsplit_once('.')?.1.to_ascii_lowercase();
    Some(match ext.as_str() {
        "jpg" | "jpeg" | "jpe" | "jfif" => "image/jpeg",
        "png" => "image/png",
        "webp" => "image/webp",
        "gif" => "image/gif",
        "bmp" => "image/bmp",
        "tif" | "tiff" => "image/tiff",
        _ => return None,
    })
}

/// `1.5 MB`, `820 kB`, `12 B` (decimal units, as file managers show them).
pub fn format_bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["kB", "MB", "GB", "TB"];
    if n < 1000 {
        return format!("{n} B");
    }
    let mut value = n as f64;
    let mut unit = "B";
    for u in UNITS {
        if value < 1000.0 {
            break;
        }
        value /= 1000.0;
        unit = u;
    }
    if value < 10.0 {
        format!("{value:.1} {unit}")
    } else {
        format!("{value:.0} {unit}")
    }
}

// ---------------------------------------------------------------------------------------------
// The upload state machine
// ---------------------------------------------------------------------------------------------

/// Where one image is in its journey. Every card shows exactly one of these.
#[derive(Debug, Clone, PartialEq)]
pub enum Phase {
    /// Waiting for a free upload slot.
    Queued,
    RequestingUrl,
    Uploading {
        sent: u64,
        total: u64,
    },
    /// Uploaded; polling for the result document.
    Labeling,
    Done,
    Failed {
        code: String,
        message: String,
    },
}

/// What happened to an upload.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    Start,
    UrlGranted { total: u64 },
    Progress { sent: u64, total: u64 },
    Uploaded,
    Labeled,
    Failed { code: String, message: String },
}

impl Phase {
    /// The next phase, or `None` when the step makes no sense here (a late progress event after
    /// the upload finished, say); callers keep the current phase then.
    pub fn next(&self, step: Step) -> Option<Phase> {
        use Phase::*;
        match (self, step) {
            (Done | Failed { .. }, _) => None,
            (_, Step::Failed { code, message }) => Some(Failed { code, message }),
            (Queued, Step::Start) => Some(RequestingUrl),
            (RequestingUrl, Step::UrlGranted { total }) => Some(Uploading { sent: 0, total }),
            (Uploading { sent, .. }, Step::Progress { sent: now, total }) => Some(Uploading {
                // Progress never goes backwards on screen.
                sent: now.max(*sent).min(total),
                total,
            }),
            (Uploading { .. }, Step::Uploaded) => Some(Labeling),
            (Labeling, Step::Labeled) => Some(Done),
            _ => None,
        }
    }

    pub fn is_finished(&self) -> bool {
        matches!(self, Phase::Done | Phase::Failed { .. })
    }

    /// Upload progress 0..=1 while uploading.
    pub fn upload_fraction(&self) -> Option<f64> {
        match self {
            Phase::Uploading { sent, total } if *total > 0 => {
                Some((*sent as f64 / *total as f64).clamp(0.0, 1.0))
            }
            Phase::Uploading { .. } => Some(0.0),
            _ => None,
        }
    }

    /// Short status text for the card and the live region.
    pub fn describe(&self) -> String {
        match self {
            Phase::Queued => "Waiting to upload".into(),
            Phase::RequestingUrl => "Requesting an upload URL".into(),
            Phase::Uploading { .. } => format!(
                "Uploading {:.0}%",
                self.upload_fraction().unwrap_or(0.0) * 100.0
            ),
            Phase::Labeling => "Labeling".into(),
            Phase::Done => "Labeled".into(),
            Phase::Failed { message, .. } => format!("Failed: {message}"),
        }
    }

    /// CSS modifier for the card.
    pub fn css(&self) -> &'static str {
        match self {
            Phase::Queued => "queued",
            Phase::RequestingUrl => "requesting",
            Phase::Uploading { .. } => "uploading",
            Phase::Labeling => "labeling",
            Phase::Done => "done",
            Phase::Failed { .. } => "failed",
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Polling
// ---------------------------------------------------------------------------------------------

/// HEAD polling schedule: quick at first (results usually land within a few hundred
/// milliseconds), then backing off to a ceiling, until an overall deadline.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    pub first: Duration,
    pub factor: f64,
    pub ceiling: Duration,
    pub deadline: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            first: Duration::from_millis(75),
            factor: 1.5,
            ceiling: Duration::from_secs(2),
            deadline: Duration::from_secs(120),
        }
    }
}

impl Backoff {
    /// The waits before each poll; their sum never exceeds the deadline, so a caller that sleeps
    /// through the whole schedule without a result has timed out.
    pub fn delays(&self) -> impl Iterator<Item = Duration> + use<> {
        let policy = *self;
        let mut next = policy.first;
        let mut elapsed = Duration::ZERO;
        std::iter::from_fn(move || {
            let wait = next.min(policy.ceiling);
            if elapsed + wait > policy.deadline || wait.is_zero() {
                return None;
            }
            elapsed += wait;
            next = Duration::from_secs_f64(wait.as_secs_f64() * policy.factor.max(1.0));
            Some(wait)
        })
    }
}

/// What a HEAD on the result URL means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PollAnswer {
    Ready,
    /// Not there yet: 404, or 403 (S3 answers 403 for a missing key when the signer may not list
    /// the bucket), or a transient failure worth another try.
    NotYet,
    /// Something the schedule will not fix.
    Broken(u16),
}

/// Classifies a HEAD status; `0` stands for a network error (the request never completed).
pub fn classify_head(status: u16) -> PollAnswer {
    match status {
        200..=299 => PollAnswer::Ready,
        0 | 403 | 404 | 408 | 429 | 500..=599 => PollAnswer::NotYet,
        other => PollAnswer::Broken(other),
    }
}

// ---------------------------------------------------------------------------------------------
// Results
// ---------------------------------------------------------------------------------------------

/// Parses a result document; anything else is reported, not trusted.
pub fn parse_result(json: &str) -> Result<ResultDocument, BadDocument> {
    serde_json::from_str(json).map_err(BadDocument::Result)
}

/// A result as the card shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct ResultView {
    pub rows: Vec<LabelRow>,
    pub boxes: Vec<DrawnBox>,
    pub colors: Vec<Swatch>,
    pub quality: Option<QualityView>,
    /// Upright image size the boxes refer to.
    pub image_size: Option<(u32, u32)>,
    /// `(code, message)` of a failure document.
    pub error: Option<(String, String)>,
    pub labeler: Option<String>,
    pub pretty_json: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct LabelRow {
    pub name: String,
    pub confidence: f32,
    pub parents: Vec<String>,
    pub categories: Vec<String>,
    pub aliases: Vec<String>,
    /// Indices into [`ResultView::boxes`] drawn for this label.
    pub boxes: Vec<usize>,
}

/// One rectangle in image pixels (the SVG overlay's viewBox is the image size).
#[derive(Debug, Clone, PartialEq)]
pub struct DrawnBox {
    /// Label rows this box stands for: labels whose boxes (nearly) coincide share one rectangle
    /// and one caption ("Cat · Tiger Cat") instead of captions printed over each other.
    pub rows: Vec<usize>,
    pub x: f64,
    pub y: f64,
    pub width: f64,
    pub height: f64,
    pub caption: String,
    /// Where the caption's baseline goes: above the box, or just inside it at the top edge.
    pub caption_y: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Swatch {
    pub hex: String,
    pub name: String,
    pub percent: f32,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QualityView {
    pub brightness: f32,
    pub sharpness: f32,
    pub contrast: f32,
}

impl From<&ImageQuality> for QualityView {
    fn from(q: &ImageQuality) -> Self {
        QualityView {
            brightness: q.brightness,
            sharpness: q.sharpness,
            contrast: q.contrast,
        }
    }
}

/// Font size of box captions in image pixels: readable whatever the image's resolution.
pub fn caption_size(image_width: u32, image_height: u32) -> f64 {
    (image_width.max(image_height) as f64 / 28.0).max(8.0)
}

pub fn result_view(doc: &ResultDocument) -> ResultView {
    let detection: &DetectLabelsResponse = &doc.detection;
    let image_size = doc.image.map(|i| (i.width, i.height));
    let mut order: Vec<usize> = (0..detection.labels.len()).collect();
    // Highest confidence first; NaN (never sent, but never trusted either) sorts last.
    order.sort_by(|&a, &b| {
        let (ca, cb) = (
            detection.labels[a].confidence,
            detection.labels[b].confidence,
        );
        cb.partial_cmp(&ca)
            .unwrap_or_else(|| ca.is_nan().cmp(&cb.is_nan()))
    });
    let mut rows = Vec::with_capacity(order.len());
    let mut boxes: Vec<DrawnBox> = Vec::new();
    for (row_index, &i) in order.iter().enumerate() {
        let label = &detection.labels[i];
        let mut row_boxes = Vec::new();
        if let Some((w, h)) = image_size {
            // A label with many boxes (lines of text, a crowd's faces) names its first one only:
            // its row lights them all up, and a caption on each would hide the photo.
            let many = label.instances.len() > CAPTIONED_BOXES;
            for (nth, instance) in label.instances.iter().enumerate() {
                let name = if many && nth > 0 { "" } else { &label.name };
                let Some(drawn) = draw_box(row_index, name, &instance.bounding_box, w, h) else {
                    continue;
                };
                // Rows come in confidence order, so the first caption is the likeliest.
                match boxes
                    .iter_mut()
                    .position(|b| overlap(b, &drawn) >= SAME_BOX_IOU)
                {
                    Some(same) => {
                        let existing = &mut boxes[same];
                        if !existing.rows.contains(&row_index) {
                            existing.rows.push(row_index);
                            existing.caption = match (existing.caption.is_empty(), name.is_empty())
                            {
                                (_, true) => existing.caption.clone(),
                                (true, false) => name.to_string(),
                                (false, false) => format!("{} · {name}", existing.caption),
                            };
                        }
                        if !row_boxes.contains(&same) {
                            row_boxes.push(same);
                        }
                    }
                    None => {
                        row_boxes.push(boxes.len());
                        boxes.push(drawn);
                    }
                }
            }
        }
        rows.push(LabelRow {
            name: label.name.clone(),
            confidence: if label.confidence.is_finite() {
                label.confidence.clamp(0.0, 100.0)
            } else {
                0.0
            },
            parents: label.parents.iter().map(|p| p.name.clone()).collect(),
            categories: label.categories.iter().map(|c| c.name.clone()).collect(),
            aliases: label.aliases.iter().map(|a| a.name.clone()).collect(),
            boxes: row_boxes,
        });
    }
    let properties = detection.image_properties.as_ref();
    ResultView {
        rows,
        boxes,
        colors: properties
            .map(|p| p.dominant_colors.iter().map(swatch).collect())
            .unwrap_or_default(),
        quality: properties.and_then(|p| p.quality.as_ref()).map(Into::into),
        image_size,
        error: match (&doc.status, &doc.error) {
            (Status::Error, Some(e)) => Some((e.code.as_str().to_string(), e.message.clone())),
            (Status::Error, None) => Some(("internal".into(), "Labeling failed.".into())),
            _ => None,
        },
        labeler: doc.labeler.as_ref().map(|l| match &l.engine {
            Some(engine) => format!("{} · {} ({engine})", l.name, l.model),
            None => format!("{} · {}", l.name, l.model),
        }),
        pretty_json: serde_json::to_string_pretty(doc).unwrap_or_default(),
    }
}

/// A label with more boxes than this captions only its first.
const CAPTIONED_BOXES: usize = 3;

/// Intersection over union above which two labels' boxes are drawn as one.
const SAME_BOX_IOU: f64 = 0.8;

fn overlap(a: &DrawnBox, b: &DrawnBox) -> f64 {
    let w = (a.x + a.width).min(b.x + b.width) - a.x.max(b.x);
    let h = (a.y + a.height).min(b.y + b.height) - a.y.max(b.y);
    if w <= 0.0 || h <= 0.0 {
        return 0.0;
    }
    let intersection = w * h;
    intersection / (a.width * a.height + b.width * b.height - intersection)
}

fn swatch(c: &DominantColor) -> Swatch {
    Swatch {
        hex: if c.hex_code.starts_with('#') {
            c.hex_code.clone()
        } else {
            format!("#{:02x}{:02x}{:02x}", c.red, c.green, c.blue)
        },
        name: if c.css_color.is_empty() {
            c.simplified_color.clone()
        } else {
            c.css_color.clone()
        },
        percent: c.pixel_percent,
    }
}

/// A Rekognition box (fractions of the upright image) in image pixels, clipped to the image;
/// `None` for boxes that are degenerate, not finite, or entirely outside.
fn draw_box(
    row: usize,
    name: &str,
    b: &snaplabel_core::detect::BoundingBox,
    image_width: u32,
    image_height: u32,
) -> Option<DrawnBox> {
    let (w, h) = (image_width as f64, image_height as f64);
    let values = [b.left, b.top, b.width, b.height].map(|v| v as f64);
    if values.iter().any(|v| !v.is_finite()) {
        return None;
    }
    let [left, top, width, height] = values;
    let x0 = left.clamp(0.0, 1.0) * w;
    let y0 = top.clamp(0.0, 1.0) * h;
    let x1 = (left + width).clamp(0.0, 1.0) * w;
    let y1 = (top + height).clamp(0.0, 1.0) * h;
    if x1 - x0 < 1.0 || y1 - y0 < 1.0 {
        return None;
    }
    let font = caption_size(image_width, image_height);
    // Above the box when there is room; otherwise inside its top edge.
    let caption_y = if y0 >= font * 1.2 {
        y0 - font * 0.3
    } else {
        y0 + font
    };
    Some(DrawnBox {
        rows: vec![row],
        x: x0,
        y: y0,
        width: x1 - x0,
        height: y1 - y0,
        caption: name.to_string(),
        caption_y,
    })
}

/// What the live region says when a result arrives.
pub fn announce_result(file_name: &str, view: &ResultView) -> String {
    if let Some((_, message)) = &view.error {
        return format!("{file_name}: failed. {message}");
    }
    if view.rows.is_empty() {
        return format!("{file_name}: labeled, nothing recognised with enough confidence.");
    }
    let top: Vec<&str> = view.rows.iter().take(3).map(|r| r.name.as_str()).collect();
    format!("{file_name}: labeled {}.", top.join(", "))
}

/// Where the image sits inside a card's fixed-ratio stage, in percent of the stage: as large
/// as fits, centred. Keeping the stage's ratio fixed means nothing moves when the image or
/// its result arrives.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Fit {
    pub left: f64,
    pub top: f64,
    pub width: f64,
    pub height: f64,
}

pub fn fit_in_stage(image_width: u32, image_height: u32, stage_ratio: f64) -> Fit {
    // NaN and non-positive ratios alike mean "unknown".
    if image_width == 0 || image_height == 0 || stage_ratio.is_nan() || stage_ratio <= 0.0 {
        return Fit {
            left: 0.0,
            top: 0.0,
            width: 100.0,
            height: 100.0,
        };
    }
    let ratio = image_width as f64 / image_height as f64;
    let (width, height) = if ratio >= stage_ratio {
        (100.0, 100.0 * stage_ratio / ratio)
    } else {
        (100.0 * ratio / stage_ratio, 100.0)
    };
    Fit {
        left: (100.0 - width) / 2.0,
        top: (100.0 - height) / 2.0,
        width,
        height,
    }
}

// ---------------------------------------------------------------------------------------------
// The gallery: search, chips
// ---------------------------------------------------------------------------------------------

pub use snaplabel_core::gallery::LabelCount;

/// What the gallery is showing: photos found by words typed, or by one label (a chip).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GalleryQuery {
    Words(String),
    Label(String),
}

impl GalleryQuery {
    /// The query for the search field's text; `None` when there is nothing to look for. Text
    /// longer than the server accepts is cut (on a character boundary).
    pub fn from_input(text: &str) -> Option<GalleryQuery> {
        let text: String = text
            .trim()
            .chars()
            .take(snaplabel_core::gallery::MAX_QUERY_CHARS)
            .collect();
        (!text.trim().is_empty()).then(|| GalleryQuery::Words(text.trim().to_string()))
    }

    /// The API path (relative to the API's base) of a page of results.
    pub fn api_path(&self, before: Option<&str>) -> String {
        let encode = |s: &str| {
            percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
        };
        let mut path = match self {
            GalleryQuery::Words(words) => format!("search?q={}", encode(words)),
            GalleryQuery::Label(label) => format!("search?label={}", encode(label)),
        };
        if let Some(before) = before {
            path.push_str(&format!("&before={}", encode(before)));
        }
        path
    }

    /// The text searched for, as people read it.
    pub fn text(&self) -> &str {
        match self {
            GalleryQuery::Words(text) | GalleryQuery::Label(text) => text,
        }
    }
}

/// The sentence above the results (also announced): how many photos, and which labels matched.
pub fn search_status(query: &GalleryQuery, total: usize, matched: &[LabelCount]) -> String {
    let photos = if total == 1 { "photo" } else { "photos" };
    if total == 0 {
        return format!("No photos labeled \u{201c}{}\u{201d}.", query.text());
    }
    let names: Vec<&str> = matched.iter().take(5).map(|l| l.name.as_str()).collect();
    let also = matched.len().saturating_sub(names.len());
    let mut list = names.join(", ");
    if also > 0 {
        list.push_str(&format!(" and {also} more"));
    }
    match query {
        GalleryQuery::Label(label) => format!("{total} {photos} labeled {label}."),
        GalleryQuery::Words(_) => format!("{total} {photos} labeled {list}."),
    }
}

/// The chip's accessible name: the label and its count.
pub fn chip_name(chip: &LabelCount) -> String {
    let photos = if chip.count == 1 { "photo" } else { "photos" };
    format!("{}, {} {photos}", chip.name, chip.count)
}

#[cfg(test)]
mod tests {
    use super::*;
    use snaplabel_core::detect::{BoundingBox, Instance, Label, NamedItem};
    use snaplabel_core::error::{ErrorBody, ErrorCode};
    use snaplabel_core::format::ImageFormat;
    use snaplabel_core::result::{ImageInfo, LabelerInfo, SourceObject, Timings};

    fn limits() -> BrowserLimits {
        BrowserLimits {
            max_upload_bytes: 20_000_000,
            content_types: ["image/jpeg", "image/png", "image/webp", "image/gif"]
                .map(String::from)
                .to_vec(),
        }
    }

    #[test]
    fn config_json_of_the_dev_stack_parses() {
        let json = r#"{"api_base":"http://127.0.0.1:8080/api","region":"us-east-1",
            "identity":{"endpoint":"http://127.0.0.1:8080","pool_id":"us-east-1:x"},
            "limits":{"max_upload_bytes":20000000,"content_types":["image/jpeg"]},"labeler":"local"}"#;
        let config = parse_config(json).unwrap();
        assert_eq!(
            config.api_url("/uploads"),
            "http://127.0.0.1:8080/api/uploads"
        );
        assert_eq!(config.limits.max_upload_bytes, 20_000_000);
        assert!(
            parse_config("{}")
                .unwrap_err()
                .message()
                .contains("config.json is not valid")
        );
    }

    #[test]
    fn files_are_checked_before_any_request() {
        let l = limits();
        assert_eq!(
            check_file("cat.jpg", "image/jpeg", 10, &l).unwrap(),
            "image/jpeg"
        );
        // Unknown browser type: the extension decides.
        assert_eq!(check_file("scan.PNG", "", 10, &l).unwrap(), "image/png");
        assert_eq!(
            check_file("notes.txt", "text/plain", 10, &l)
                .unwrap_err()
                .code,
            "unsupported_content_type"
        );
        assert_eq!(
            check_file("noext", "", 10, &l).unwrap_err().message,
            "an unknown type is not an image snaplabel reads (JPEG, PNG, WebP, GIF, BMP or TIFF)."
        );
        let heic = check_file("IMG_0001.HEIC", "", 10, &l).unwrap_err();
        assert!(heic.message.contains("HEIC"), "{heic:?}");
        assert_eq!(
            check_file("a.jpg", "image/jpeg", 0, &l).unwrap_err().code,
            "invalid_size"
        );
        let big = check_file("a.jpg", "image/jpeg", 25_300_000, &l).unwrap_err();
        assert_eq!(big.code, "too_large");
        assert_eq!(big.message, "The file is 25 MB; the limit is 20 MB.");
    }

    #[test]
    fn sizes_read_like_a_file_manager() {
        assert_eq!(format_bytes(0), "0 B");
        assert_eq!(format_bytes(999), "999 B");
        assert_eq!(format_bytes(1_500), "1.5 kB");
        assert_eq!(format_bytes(820_000), "820 kB");
        assert_eq!(format_bytes(3_200_000), "3.2 MB");
        assert_eq!(format_bytes(20_000_000), "20 MB");
    }

    #[test]
    fn the_happy_path_walks_every_phase() {
        let mut phase = Phase::Queued;
        for step in [
            Step::Start,
            Step::UrlGranted { total: 1000 },
            Step::Progress {
                sent: 400,
                total: 1000,
            },
            Step::Uploaded,
            Step::Labeled,
        ] {
            phase = phase.next(step).expect("valid step");
        }
        assert_eq!(phase, Phase::Done);
        assert!(phase.is_finished());
    }

    #[test]
    fn progress_is_monotonic_and_bounded() {
        let uploading = Phase::Uploading {
            sent: 600,
            total: 1000,
        };
        let back = uploading
            .next(Step::Progress {
                sent: 100,
                total: 1000,
            })
            .unwrap();
        assert_eq!(back.upload_fraction(), Some(0.6));
        let over = uploading
            .next(Step::Progress {
                sent: 5000,
                total: 1000,
            })
            .unwrap();
        assert_eq!(over.upload_fraction(), Some(1.0));
        assert_eq!(over.describe(), "Uploading 100%");
        assert_eq!(
            Phase::Uploading { sent: 0, total: 0 }.upload_fraction(),
            Some(0.0)
        );
    }

    #[test]
    fn failures_end_any_phase_and_finished_cards_stay_finished() {
        for phase in [
            Phase::Queued,
            Phase::RequestingUrl,
            Phase::Uploading { sent: 1, total: 2 },
            Phase::Labeling,
        ] {
            let failed = phase
                .next(Step::Failed {
                    code: "too_large".into(),
                    message: "big".into(),
                })
                .unwrap();
            assert_eq!(failed.describe(), "Failed: big");
            assert_eq!(failed.next(Step::Labeled), None);
            assert_eq!(failed.next(Step::Start), None);
        }
        assert_eq!(
            Phase::Done.next(Step::Failed {
                code: "x".into(),
                message: "y".into()
            }),
            None
        );
        // Out-of-order steps are refused rather than skipping phases.
        assert_eq!(Phase::Queued.next(Step::Labeled), None);
        assert_eq!(Phase::RequestingUrl.next(Step::Uploaded), None);
        assert_eq!(
            Phase::Labeling.next(Step::Progress { sent: 1, total: 1 }),
            None
        );
    }

    #[test]
    fn backoff_starts_fast_grows_to_the_ceiling_and_stops_at_the_deadline() {
        let policy = Backoff::default();
        let delays: Vec<Duration> = policy.delays().collect();
        assert_eq!(delays[0], Duration::from_millis(75));
        assert!(delays.windows(2).all(|w| w[0] <= w[1]), "{delays:?}");
        assert!(delays.iter().all(|d| *d <= Duration::from_secs(2)));
        assert_eq!(*delays.last().unwrap(), Duration::from_secs(2));
        let total: Duration = delays.iter().sum();
        assert!(total <= policy.deadline);
        assert!(
            total > policy.deadline - Duration::from_secs(2),
            "uses the whole deadline: {total:?}"
        );
        // The first second is polled often: results usually land within a few hundred ms.
        let mut elapsed = Duration::ZERO;
        let early = delays
            .iter()
            .take_while(|d| {
                elapsed += **d;
                elapsed <= Duration::from_secs(1)
            })
            .count();
        assert!(early >= 4, "{early} polls in the first second");
        let none = Backoff {
            deadline: Duration::from_millis(10),
            ..Backoff::default()
        };
        assert_eq!(none.delays().count(), 0);
    }

    #[test]
    fn head_statuses_map_to_poll_answers() {
        assert_eq!(classify_head(200), PollAnswer::Ready);
        for not_yet in [0, 403, 404, 429, 500, 503] {
            assert_eq!(classify_head(not_yet), PollAnswer::NotYet, "{not_yet}");
        }
        assert_eq!(classify_head(400), PollAnswer::Broken(400));
    }

    fn document() -> ResultDocument {
        let label = |name: &str, confidence: f32, boxes: Vec<BoundingBox>| Label {
            name: name.into(),
            confidence,
            instances: boxes
                .into_iter()
                .map(|bounding_box| Instance {
                    bounding_box,
                    confidence,
                    dominant_colors: vec![],
                })
                .collect(),
            parents: vec![NamedItem {
                name: "Animal".into(),
            }],
            categories: vec![NamedItem {
                name: "Animals and Pets".into(),
            }],
            ..Default::default()
        };
        let bb = |left, top, width, height| BoundingBox {
            width,
            height,
            left,
            top,
        };
        ResultDocument::success(
            SourceObject {
                bucket: "b".into(),
                key: "uploads/g/x.jpg".into(),
                size: 1,
                etag: None,
            },
            ImageInfo {
                width: 400,
                height: 200,
                format: ImageFormat::Jpeg,
            },
            LabelerInfo {
                name: "local".into(),
                model: "m".into(),
                engine: Some("ort".into()),
            },
            DetectLabelsResponse {
                labels: vec![
                    label("Animal", 90.0, vec![]),
                    label("Tabby", 80.0, vec![bb(0.26, 0.01, 0.49, 0.5)]),
                    label(
                        "Cat",
                        97.5,
                        vec![bb(0.25, 0.0, 0.5, 0.5), bb(0.9, 0.9, 0.5, 0.5)],
                    ),
                    label("Nothing", f32::NAN, vec![bb(f32::NAN, 0.0, 0.1, 0.1)]),
                    label("Flat", 60.0, vec![bb(0.1, 0.1, 0.0, 0.4)]),
                ],
                ..Default::default()
            },
            Timings::default(),
        )
    }

    #[test]
    fn rows_are_sorted_by_confidence_and_keep_their_chips() {
        let view = result_view(&document());
        let names: Vec<&str> = view.rows.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["Cat", "Animal", "Tabby", "Flat", "Nothing"]);
        assert_eq!(view.rows[0].parents, ["Animal"]);
        assert_eq!(view.rows[0].categories, ["Animals and Pets"]);
        assert_eq!(view.rows[4].confidence, 0.0, "NaN shown as 0");
        assert_eq!(view.labeler.as_deref(), Some("local · m (ort)"));
        assert!(view.error.is_none());
        assert!(view.pretty_json.contains("\"Name\": \"Cat\""));
    }

    #[test]
    fn boxes_are_in_image_pixels_clipped_and_linked_to_their_row() {
        let view = result_view(&document());
        assert_eq!(view.image_size, Some((400, 200)));
        // Cat has two boxes (one hanging off the corner, clipped); Tabby's box is Cat's first
        // one, so they share it; the others have none usable.
        assert_eq!(view.boxes.len(), 2);
        assert_eq!(view.rows[0].boxes, [0, 1]);
        assert_eq!(view.rows[2].boxes, [0]);
        assert_eq!(view.boxes[0].rows, [0, 2]);
        assert_eq!(view.boxes[0].caption, "Cat · Tabby");
        assert_eq!(view.boxes[1].caption, "Cat");
        assert!(view.rows[3..].iter().all(|r| r.boxes.is_empty()));
        assert!(view.rows[1].boxes.is_empty());
        let first = &view.boxes[0];
        assert_eq!(
            (first.x, first.y, first.width, first.height),
            (100.0, 0.0, 200.0, 100.0)
        );
        // Touching the top edge: the caption goes inside the box.
        assert!(first.caption_y > first.y);
        let clipped = &view.boxes[1];
        assert!((clipped.x - 360.0).abs() < 1e-3 && (clipped.y - 180.0).abs() < 1e-3);
        assert!((clipped.width - 40.0).abs() < 1e-3 && (clipped.height - 20.0).abs() < 1e-3);
        // Room above: the caption sits above the box.
        assert!(clipped.caption_y < clipped.y);
    }

    #[test]
    fn a_label_with_many_boxes_captions_only_its_first() {
        let mut doc = document();
        let lines: Vec<Instance> = (0..6)
            .map(|i| Instance {
                bounding_box: BoundingBox {
                    left: 0.1,
                    top: 0.1 + i as f32 * 0.12,
                    width: 0.8,
                    height: 0.1,
                },
                confidence: 90.0,
                dominant_colors: vec![],
            })
            .collect();
        doc.detection.labels.push(Label {
            name: "Text".into(),
            confidence: 99.0,
            instances: lines,
            ..Default::default()
        });
        let view = result_view(&doc);
        assert_eq!(view.rows[0].name, "Text");
        let captions: Vec<&str> = view.rows[0]
            .boxes
            .iter()
            .map(|&b| view.boxes[b].caption.as_str())
            .collect();
        assert_eq!(captions, ["Text", "", "", "", "", ""]);
        // Labels with a few boxes still caption each.
        assert_eq!(view.boxes[view.rows[1].boxes[1]].caption, "Cat");
    }

    #[test]
    fn failure_documents_show_their_code_and_message() {
        let doc = ResultDocument::failure(
            SourceObject {
                bucket: "b".into(),
                key: "uploads/g/x.jpg".into(),
                size: 5,
                etag: None,
            },
            None,
            ErrorBody::new(
                ErrorCode::UnsupportedFormat,
                "the file is not an image snaplabel can read",
            ),
            Timings::default(),
        );
        let json = serde_json::to_string(&doc).unwrap();
        let view = result_view(&parse_result(&json).unwrap());
        assert_eq!(
            view.error,
            Some((
                "unsupported_format".into(),
                "the file is not an image snaplabel can read".into()
            ))
        );
        assert!(view.rows.is_empty() && view.boxes.is_empty());
        assert_eq!(
            announce_result("notes.jpg", &view),
            "notes.jpg: failed. the file is not an image snaplabel can read"
        );
        assert!(
            parse_result("<Error>AccessDenied</Error>")
                .unwrap_err()
                .message()
                .contains("not valid")
        );
    }

    #[test]
    fn announcements_name_the_top_labels() {
        let view = result_view(&document());
        assert_eq!(
            announce_result("cat.jpg", &view),
            "cat.jpg: labeled Cat, Animal, Tabby."
        );
    }

    #[test]
    fn images_fit_the_stage_centred() {
        // Wide image in a 4:3 stage: full width, letterboxed.
        let wide = fit_in_stage(400, 200, 4.0 / 3.0);
        assert_eq!(wide.width, 100.0);
        assert!((wide.height - 66.666).abs() < 0.01);
        assert!((wide.top - 16.666).abs() < 0.01);
        // Portrait: full height, pillarboxed.
        let tall = fit_in_stage(300, 400, 4.0 / 3.0);
        assert_eq!(tall.height, 100.0);
        assert!((tall.width - 56.25).abs() < 1e-9);
        assert!((tall.left - 21.875).abs() < 1e-9);
        // Unknown size: the whole stage.
        assert_eq!(fit_in_stage(0, 10, 1.0).width, 100.0);
        assert_eq!(caption_size(4000, 3000), 4000.0 / 28.0);
        assert_eq!(caption_size(40, 30), 8.0);
    }

    #[test]
    fn searches_become_api_paths_and_sentences() {
        assert_eq!(GalleryQuery::from_input("   "), None);
        let q = GalleryQuery::from_input("  ice cream & co ").unwrap();
        assert_eq!(q.api_path(None), "search?q=ice%20cream%20%26%20co");
        let chip = GalleryQuery::Label("Tabby Cat".into());
        assert_eq!(
            chip.api_path(Some("7YB")),
            "search?label=Tabby%20Cat&before=7YB"
        );
        let long = "ü".repeat(300);
        assert_eq!(
            GalleryQuery::from_input(&long)
                .unwrap()
                .text()
                .chars()
                .count(),
            100
        );
        let cat = GalleryQuery::Words("cat".into());
        let matched = [
            LabelCount {
                name: "Cat".into(),
                count: 2,
            },
            LabelCount {
                name: "Tabby Cat".into(),
                count: 1,
            },
        ];
        assert_eq!(
            search_status(&cat, 2, &matched),
            "2 photos labeled Cat, Tabby Cat."
        );
        assert_eq!(
            search_status(&cat, 0, &[]),
            "No photos labeled \u{201c}cat\u{201d}."
        );
        assert_eq!(
            search_status(&chip, 1, &matched[1..]),
            "1 photo labeled Tabby Cat."
        );
        assert_eq!(chip_name(&matched[1]), "Tabby Cat, 1 photo");
    }
}
