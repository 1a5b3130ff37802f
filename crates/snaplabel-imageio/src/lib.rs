//! Image bytes in, upright pixels out — without ever trusting the bytes.
//!
//! - The format comes from the content ([`ImageFormat::sniff`]), never from a name.
//! - [`probe`] reads only the header: format, upright dimensions, EXIF orientation. Pixel limits
//!   are enforced there, before a single pixel buffer is allocated (decompression bombs).
//! - [`decode`] produces an upright 8-bit RGB image: EXIF orientation applied (the `image` crate's
//!   plain `decode()` ignores it), alpha composited on white, 16-bit and grayscale converted,
//!   animated GIFs reduced to their first frame, memory capped.
//! - [`decode_at_least`] is the fast path for models that need only a few hundred pixels: JPEGs
//!   are decoded already downscaled in the DCT domain (1/2, 1/4, 1/8), so a 12 MP photo never
//!   exists at full size in memory; at 1/8 (phone photos) from DC coefficients alone, with the
//!   entropy decoding spread over the cores ([`jpeg_dc`]).
//! - [`to_jpeg`] re-encodes anything decodable as a baseline JPEG within a pixel/byte budget, for
//!   consumers (Amazon Rekognition) that accept only JPEG and PNG.
//!
//! Every failure maps to a stable [`ErrorCode`].

use image::{DynamicImage, ImageDecoder, ImageReader, RgbImage, metadata::Orientation};
use snaplabel_core::{ErrorBody, ErrorCode, ImageFormat};
use std::io::Cursor;

pub mod jpeg_dc;

/// Below this many pixels on the shorter side an image carries too little to label.
pub const MIN_SIDE: u32 = 32;
/// No supported format legitimately exceeds this on one side.
pub const MAX_SIDE: u32 = 65_535;

/// Decoding limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest width × height accepted (checked from the header).
    pub max_pixels: u64,
}

impl Limits {
    pub fn new(max_pixels: u64) -> Self {
        Limits { max_pixels }
    }

    /// Memory a decoder may allocate: the pixel budget at 16-bit RGBA plus slack, so a hostile
    /// file cannot make a decoder allocate more than a legitimate image of the allowed size.
    fn max_alloc(&self) -> u64 {
        self.max_pixels.saturating_mul(8).saturating_add(64 << 20)
    }

    fn for_image_crate(&self) -> image::Limits {
        let mut limits = image::Limits::default();
        limits.max_image_width = Some(MAX_SIDE);
        limits.max_image_height = Some(MAX_SIDE);
        limits.max_alloc = Some(self.max_alloc());
        limits
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits::new(snaplabel_core::config::DEFAULT_MAX_PIXELS)
    }
}

/// What the header says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Probe {
    pub format: ImageFormat,
    /// Width of the upright image (after EXIF orientation).
    pub width: u32,
    /// Height of the upright image (after EXIF orientation).
    pub height: u32,
    /// Width and height as stored, before orientation.
    pub stored_width: u32,
    pub stored_height: u32,
    /// EXIF orientation 1–8 (1 = upright).
    pub exif_orientation: u8,
}

impl Probe {
    pub fn pixels(&self) -> u64 {
        self.width as u64 * self.height as u64
    }
}

/// A decode failure with its stable code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ImageError {
    pub code: ErrorCode,
    pub message: String,
}

impl ImageError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ImageError {
            code,
            message: message.into(),
        }
    }
}

impl From<ImageError> for ErrorBody {
    fn from(e: ImageError) -> Self {
        ErrorBody::new(e.code, e.message)
    }
}

/// Recognises the format and fails with `empty_object` / `unsupported_format` otherwise.
pub fn sniff(bytes: &[u8]) -> Result<ImageFormat, ImageError> {
    if bytes.is_empty() {
        return Err(ImageError::new(ErrorCode::EmptyObject, "the file is empty"));
    }
    ImageFormat::sniff(bytes).ok_or_else(|| {
        ImageError::new(
            ErrorCode::UnsupportedFormat,
            format!(
                "the file is {}, not a JPEG, PNG, WebP, GIF, BMP or TIFF image",
                ImageFormat::describe_unsupported(bytes)
            ),
        )
    })
}

fn reader<'a>(
    bytes: &'a [u8],
    format: ImageFormat,
    limits: &Limits,
) -> ImageReader<Cursor<&'a [u8]>> {
    let mut reader = ImageReader::with_format(Cursor::new(bytes), to_image_crate(format));
    reader.limits(limits.for_image_crate());
    reader
}

fn to_image_crate(format: ImageFormat) -> image::ImageFormat {
    match format {
        ImageFormat::Jpeg => image::ImageFormat::Jpeg,
        ImageFormat::Png => image::ImageFormat::Png,
        ImageFormat::Webp => image::ImageFormat::WebP,
        ImageFormat::Gif => image::ImageFormat::Gif,
        ImageFormat::Bmp => image::ImageFormat::Bmp,
        ImageFormat::Tiff => image::ImageFormat::Tiff,
    }
}

/// Reads the header only: format, dimensions, orientation. Refuses images over the pixel limit
/// and under [`MIN_SIDE`] without decoding them.
pub fn probe(bytes: &[u8], limits: &Limits) -> Result<Probe, ImageError> {
    let format = sniff(bytes)?;
    // The first bytes are enough to refuse a bomb, before any decoder buffers a single chunk
    // (the PNG decoder, for one, reads on to the first IDAT before it reports dimensions).
    if let Ok(size) = imagesize::blob_size(bytes) {
        let pixels = size.width as u64 * size.height as u64;
        if pixels > limits.max_pixels {
            return Err(too_many_pixels(
                size.width as u64,
                size.height as u64,
                limits,
            ));
        }
    }
    let mut decoder = reader(bytes, format, limits)
        .into_decoder()
        .map_err(|e| classify(format, e))?;
    let (stored_width, stored_height) = decoder.dimensions();
    let orientation = decoder.orientation().unwrap_or(Orientation::NoTransforms);
    let exif_orientation = orientation_number(orientation);
    let (width, height) = if exif_orientation >= 5 {
        (stored_height, stored_width)
    } else {
        (stored_width, stored_height)
    };
    let probe = Probe {
        format,
        width,
        height,
        stored_width,
        stored_height,
        exif_orientation,
    };
    check_dimensions(&probe, limits)?;
    Ok(probe)
}

fn check_dimensions(probe: &Probe, limits: &Limits) -> Result<(), ImageError> {
    let (w, h) = (probe.width, probe.height);
    if w == 0 || h == 0 {
        return Err(ImageError::new(
            ErrorCode::CorruptImage,
            format!("the {} header declares a {w}×{h} image", probe.format),
        ));
    }
    if probe.pixels() > limits.max_pixels {
        return Err(too_many_pixels(w as u64, h as u64, limits));
    }
    if w.min(h) < MIN_SIDE {
        return Err(ImageError::new(
            ErrorCode::ImageTooSmall,
            format!(
                "the image is {w}×{h}; at least {MIN_SIDE} pixels per side are needed to label it"
            ),
        ));
    }
    Ok(())
}

fn too_many_pixels(w: u64, h: u64, limits: &Limits) -> ImageError {
    ImageError::new(
        ErrorCode::TooManyPixels,
        format!(
            "the image is {w}×{h} ({:.1} megapixels); the limit is {:.1} megapixels",
            (w * h) as f64 / 1e6,
            limits.max_pixels as f64 / 1e6
        ),
    )
}

fn orientation_number(o: Orientation) -> u8 {
    match o {
        Orientation::NoTransforms => 1,
        Orientation::FlipHorizontal => 2,
        Orientation::Rotate180 => 3,
        Orientation::FlipVertical => 4,
        Orientation::Rotate90FlipH => 5,
        Orientation::Rotate90 => 6,
        Orientation::Rotate270FlipH => 7,
        Orientation::Rotate270 => 8,
    }
}

/// Maps an `image` crate error to our codes.
fn classify(format: ImageFormat, err: image::ImageError) -> ImageError {
    use image::ImageError as E;
    match err {
        E::Limits(l) => ImageError::new(
            ErrorCode::TooManyPixels,
            format!("the {format} image exceeds the decoding limits ({l})"),
        ),
        E::Unsupported(u) => ImageError::new(
            ErrorCode::UnsupportedFormat,
            format!("this {format} variant is not supported: {u}"),
        ),
        E::Decoding(d) => ImageError::new(
            ErrorCode::CorruptImage,
            format!("the {format} data is damaged or truncated: {d}"),
        ),
        E::IoError(e) => ImageError::new(
            ErrorCode::CorruptImage,
            format!("the {format} data ends early: {e}"),
        ),
        other => ImageError::new(
            ErrorCode::CorruptImage,
            format!("the {format} image cannot be read: {other}"),
        ),
    }
}

/// A decoded, upright, 8-bit RGB image with what its header said.
#[derive(Debug, Clone)]
pub struct Decoded {
    pub probe: Probe,
    pub image: RgbImage,
}

/// Decodes the whole image: upright, RGB8, alpha on white, first frame of an animation.
pub fn decode(bytes: &[u8], limits: &Limits) -> Result<Decoded, ImageError> {
    let probe = probe(bytes, limits)?;
    let mut decoder = reader(bytes, probe.format, limits)
        .into_decoder()
        .map_err(|e| classify(probe.format, e))?;
    let orientation = decoder.orientation().unwrap_or(Orientation::NoTransforms);
    let mut image = DynamicImage::from_decoder(decoder).map_err(|e| classify(probe.format, e))?;
    image.apply_orientation(orientation);
    Ok(Decoded {
        probe,
        image: flatten_to_rgb8(image),
    })
}

/// Decodes an upright RGB8 image whose shorter side is at least `min_short_side` pixels (or the
/// full image when it is smaller). JPEGs use DCT-domain downscaling; other formats decode fully.
pub fn decode_at_least(
    bytes: &[u8],
    limits: &Limits,
    min_short_side: u32,
) -> Result<Decoded, ImageError> {
    let probe = probe(bytes, limits)?;
    if probe.format == ImageFormat::Jpeg {
        // Rare JPEG flavours jpeg-decoder does not know (arithmetic coding, …) fall through to
        // the image crate's decoder, which also reports genuine damage.
        if let Ok(image) = decode_jpeg_scaled(bytes, &probe, min_short_side) {
            return Ok(Decoded { probe, image });
        }
    }
    decode(bytes, limits)
}

struct JpegFallback;

fn decode_jpeg_scaled(
    bytes: &[u8],
    probe: &Probe,
    min_short_side: u32,
) -> Result<RgbImage, JpegFallback> {
    let (sw, sh) = (probe.stored_width, probe.stored_height);
    let short = sw.min(sh).max(1);
    if short.div_ceil(8) >= min_short_side {
        // Asked once: the answer involves reading cgroup files.
        static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
        let threads =
            *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
        if let Ok(eighth) = jpeg_dc::decode_eighth(bytes, threads) {
            let image =
                RgbImage::from_raw(eighth.width, eighth.height, eighth.rgb).ok_or(JpegFallback)?;
            return Ok(orient(image, probe.exif_orientation));
        }
    }
    let mut decoder = jpeg_decoder::Decoder::new(Cursor::new(bytes));
    decoder.read_info().map_err(|_| JpegFallback)?;
    let factor = (min_short_side as f64 / short as f64).min(1.0);
    let want_w = ((sw as f64 * factor).ceil() as u32).clamp(1, u16::MAX as u32) as u16;
    let want_h = ((sh as f64 * factor).ceil() as u32).clamp(1, u16::MAX as u32) as u16;
    let (w, h) = decoder.scale(want_w, want_h).map_err(|_| JpegFallback)?;
    let pixels = decoder.decode().map_err(|_| JpegFallback)?;
    let info = decoder.info().ok_or(JpegFallback)?;
    let (w, h) = (w as u32, h as u32);
    let rgb: Vec<u8> = match info.pixel_format {
        jpeg_decoder::PixelFormat::RGB24 => pixels,
        jpeg_decoder::PixelFormat::L8 => pixels.iter().flat_map(|&v| [v, v, v]).collect(),
        jpeg_decoder::PixelFormat::L16 => pixels
            .chunks_exact(2)
            .flat_map(|p| [p[0], p[0], p[0]])
            .collect(),
        // jpeg-decoder hands out CMYK with Adobe's inversion already undone (0 = no ink).
        jpeg_decoder::PixelFormat::CMYK32 => pixels
            .chunks_exact(4)
            .flat_map(|p| {
                let k = 255 - p[3] as u32;
                [0, 1, 2].map(|i| ((255 - p[i] as u32) * k / 255) as u8)
            })
            .collect(),
    };
    let image = RgbImage::from_raw(w, h, rgb).ok_or(JpegFallback)?;
    Ok(orient(image, probe.exif_orientation))
}

/// Applies an EXIF orientation (1–8) to an image as stored.
pub fn orient(image: RgbImage, exif_orientation: u8) -> RgbImage {
    use image::imageops::{flip_horizontal, flip_vertical, rotate90, rotate180, rotate270};
    match exif_orientation {
        2 => flip_horizontal(&image),
        3 => rotate180(&image),
        4 => flip_vertical(&image),
        5 => flip_horizontal(&rotate90(&image)),
        6 => rotate90(&image),
        7 => flip_horizontal(&rotate270(&image)),
        8 => rotate270(&image),
        _ => image,
    }
}

/// Converts any colour type to RGB8, compositing transparency on white (what a person sees on a
/// page; black, the naive result, turns logos and cut-outs into silhouettes).
pub fn flatten_to_rgb8(image: DynamicImage) -> RgbImage {
    if !image.color().has_alpha() {
        return image.into_rgb8();
    }
    let rgba = image.into_rgba8();
    let (w, h) = rgba.dimensions();
    let mut out = RgbImage::new(w, h);
    for (dst, src) in out.pixels_mut().zip(rgba.pixels()) {
        let a = src[3] as u32;
        for c in 0..3 {
            dst[c] = ((src[c] as u32 * a + 255 * (255 - a) + 127) / 255) as u8;
        }
    }
    out
}

/// Re-encodes an image as a JPEG whose longer side is at most `max_side` and whose shorter side
/// is at least `min_side` (upscaling tiny images), lowering quality until it fits `max_bytes`.
pub fn to_jpeg(
    bytes: &[u8],
    limits: &Limits,
    min_side: u32,
    max_side: u32,
    max_bytes: usize,
) -> Result<Vec<u8>, ImageError> {
    let decoded = decode(bytes, limits)?;
    let (w, h) = decoded.image.dimensions();
    let mut scale = 1.0f64;
    if w.max(h) > max_side {
        scale = max_side as f64 / w.max(h) as f64;
    }
    if (w.min(h) as f64 * scale) < min_side as f64 {
        scale = min_side as f64 / w.min(h) as f64;
    }
    let image = if (scale - 1.0).abs() > f64::EPSILON {
        let nw = ((w as f64 * scale).round() as u32).max(1);
        let nh = ((h as f64 * scale).round() as u32).max(1);
        image::imageops::resize(
            &decoded.image,
            nw,
            nh,
            image::imageops::FilterType::Triangle,
        )
    } else {
        decoded.image
    };
    for quality in [90u8, 80, 70, 55, 40] {
        let mut out = Vec::new();
        let encoder = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, quality);
        image.write_with_encoder(encoder).map_err(|e| {
            ImageError::new(ErrorCode::Internal, format!("JPEG encoding failed: {e}"))
        })?;
        if out.len() <= max_bytes {
            return Ok(out);
        }
    }
    Err(ImageError::new(
        ErrorCode::TooLarge,
        format!("the image does not fit in {max_bytes} bytes even as a JPEG"),
    ))
}
