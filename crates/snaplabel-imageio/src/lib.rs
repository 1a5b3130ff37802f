//! Image bytes in, upright pixels out — without ever trusting the bytes.
//!
//! - The format comes from the content ([`ImageFormat::sniff`]), never from a name.
//! - [`probe`] reads only the header: format, upright dimensions, EXIF orientation. Pixel limits
//!   are enforced there, before a single pixel buffer is allocated (decompression bombs).
//! - [`decode`] produces an upright 8-bit RGB image: EXIF orientation applied (the `image` crate's
//!   plain `decode()` ignores it), alpha composited on white, 16-bit and grayscale converted,
//!   animated GIFs reduced to their first frame.
//! - [`decode_at_least`] is the path for models that need only a few hundred pixels: the image is
//!   shrunk while it is decoded, so a big one never exists at full size in memory. JPEGs are
//!   decoded downscaled in the DCT domain (1/2, 1/4, 1/8), at 1/8 (phone photos) from DC
//!   coefficients alone with the entropy decoding spread over the cores ([`jpeg_dc`]); PNGs row
//!   by row through a box filter; orientation is applied after shrinking.
//! - Memory is budgeted in bytes, not pixels ([`budget`]): every path estimates its peak from the
//!   header (bit depth, alpha and intermediate copies included) and is taken only if it fits
//!   [`Limits::max_decode_bytes`]; decodes running at once share one pool of that size.
//! - [`to_jpeg`] re-encodes anything decodable as a baseline JPEG within a pixel/byte budget, for
//!   consumers (Amazon Rekognition) that accept only JPEG and PNG.
//!
//! Every failure maps to a stable [`ErrorCode`].

use image::{DynamicImage, ImageDecoder, ImageReader, RgbImage, metadata::Orientation};
use snaplabel_core::{ErrorBody, ErrorCode, ImageFormat};
use std::io::Cursor;

pub mod budget;
pub mod jpeg_dc;
mod png_stream;
pub mod shrink;

pub use budget::Reservation;

/// Below this many pixels on the shorter side an image carries too little to label.
pub const MIN_SIDE: u32 = 32;
/// No supported format legitimately exceeds this on one side.
pub const MAX_SIDE: u32 = 65_535;

/// Decoding limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest width × height accepted (checked from the header).
    pub max_pixels: u64,
    /// Bytes the decoding of one image may hold at once, every intermediate buffer included; also
    /// the size of the process-wide pool all decodes share ([`budget`]).
    pub max_decode_bytes: u64,
}

impl Limits {
    /// `max_pixels` with the default decode budget.
    pub fn new(max_pixels: u64) -> Self {
        Limits {
            max_pixels,
            max_decode_bytes: snaplabel_core::config::DEFAULT_DECODE_BUDGET_BYTES,
        }
    }

    pub fn with_decode_budget(self, max_decode_bytes: u64) -> Self {
        Limits {
            max_decode_bytes,
            ..self
        }
    }

    /// The limits of a pipeline configuration.
    pub fn from_config(config: &snaplabel_core::config::Settings) -> Self {
        Limits::new(config.max_pixels).with_decode_budget(config.max_decode_bytes)
    }

    fn for_image_crate(&self) -> image::Limits {
        let mut limits = image::Limits::default();
        limits.max_image_width = Some(MAX_SIDE);
        limits.max_image_height = Some(MAX_SIDE);
        limits.max_alloc = Some(self.max_decode_bytes);
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

pub(crate) fn orientation_number(o: Orientation) -> u8 {
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

/// A decoded, upright, 8-bit RGB image with what its header said. Its pixels stay reserved
/// from the decode pool ([`budget`]) until it is dropped.
#[derive(Debug)]
pub struct Decoded {
    pub probe: Probe,
    pub image: RgbImage,
    pub memory: Reservation,
}

/// Decodes the whole image at full size: upright, RGB8, alpha on white, first frame of an
/// animation. Refused with `too_many_pixels` when that needs more memory than the budget.
pub fn decode(bytes: &[u8], limits: &Limits) -> Result<Decoded, ImageError> {
    decode_sized(bytes, limits, None)
}

/// Decodes an upright RGB8 image whose shorter side is at least `min_short_side` pixels (or the
/// whole image when it is smaller), shrunk while it is decoded: JPEGs in the DCT domain (from DC
/// coefficients alone at 1/8), PNGs row by row through a box filter, other formats after a
/// whole decode that fits the budget. The short side ends below twice `min_short_side` (except for
/// extremely elongated images, bounded at [`shrink::MAX_WORKING_PIXELS`]). Orientation is applied
/// to the shrunk image.
pub fn decode_at_least(
    bytes: &[u8],
    limits: &Limits,
    min_short_side: u32,
) -> Result<Decoded, ImageError> {
    decode_sized(bytes, limits, Some(min_short_side))
}

fn decode_sized(
    bytes: &[u8],
    limits: &Limits,
    min_short_side: Option<u32>,
) -> Result<Decoded, ImageError> {
    let probe = probe(bytes, limits)?;
    let factor = |w: u32, h: u32| min_short_side.map_or(1, |m| shrink::factor_for(w, h, m));
    let (image, memory) = match probe.format {
        ImageFormat::Png => png_stream::decode(bytes, limits, factor, probe.exif_orientation)?,
        ImageFormat::Jpeg => {
            match min_short_side.map(|m| decode_jpeg_scaled(bytes, limits, &probe, m)) {
                Some(Ok(decoded)) => decoded,
                // Rare flavours jpeg-decoder does not know (arithmetic coding, …) and damage go to
                // the image crate's decoder, which also reports the damage properly.
                Some(Err(JpegFallback::Declined)) | None => {
                    decode_whole(bytes, limits, &probe, factor)?
                }
                Some(Err(JpegFallback::Refused(e))) => {
                    decode_whole(bytes, limits, &probe, factor).map_err(|_| e)?
                }
            }
        }
        _ => decode_whole(bytes, limits, &probe, factor)?,
    };
    Ok(Decoded {
        probe,
        image,
        memory,
    })
}

/// Reserves `needed` bytes for decoding a `width` × `height` `what`, or refuses the image when
/// that is over the budget.
pub(crate) fn reserve_for(
    needed: u64,
    limits: &Limits,
    what: &str,
    width: u32,
    height: u32,
) -> Result<Reservation, ImageError> {
    if needed > limits.max_decode_bytes {
        return Err(ImageError::new(
            ErrorCode::TooManyPixels,
            format!(
                "decoding this {width}×{height} {what} needs {} MB, over the {} MB this labeler allows per image",
                budget::mib(needed),
                budget::mib(limits.max_decode_bytes)
            ),
        ));
    }
    budget::reserve(needed, limits.max_decode_bytes).ok_or_else(|| {
        ImageError::new(
            ErrorCode::LabelerFailed,
            "other images held the decoding memory for two minutes; try again",
        )
    })
}

/// Decodes with the `image` crate into one buffer of the decoder's own colour type, then converts
/// row by row into the (shrunk) RGB8 output: the full image exists once, in its own format.
fn decode_whole(
    bytes: &[u8],
    limits: &Limits,
    probe: &Probe,
    factor: impl FnOnce(u32, u32) -> u32,
) -> Result<(RgbImage, Reservation), ImageError> {
    let format = probe.format;
    let decoder = reader(bytes, format, limits)
        .into_decoder()
        .map_err(|e| classify(format, e))?;
    let (width, height) = decoder.dimensions();
    let color = decoder.color_type();
    let pixels = width as u64 * height as u64;
    let buffer = pixels * color.bytes_per_pixel() as u64;
    // What the decoders hold besides their output: GIF composes frames and WebP keeps its own
    // planes (lossless: one 32-bit word per pixel); TIFF may inflate a whole strip beside the
    // output; zune-jpeg keeps component planes, and coefficients for progressive files.
    let internal = match format {
        ImageFormat::Gif | ImageFormat::Webp => pixels * 4,
        ImageFormat::Tiff => buffer,
        ImageFormat::Jpeg => pixels * 3 * color.channel_count() as u64,
        _ => 0,
    };
    let factor = factor(width, height);
    let output = shrink::shrunk(width, factor) as u64 * shrink::shrunk(height, factor) as u64 * 3;
    let keeps_buffer = factor == 1 && color == image::ColorType::Rgb8;
    let needed = buffer
        + internal
        + if keeps_buffer {
            0
        } else {
            shrink::working_bytes(width, height, factor)
        }
        + output;
    let mut reservation = reserve_for(needed, limits, &format.to_string(), width, height)?;
    let image = DynamicImage::from_decoder(decoder).map_err(|e| classify(format, e))?;
    let image = if keeps_buffer {
        image.into_rgb8()
    } else {
        let mut sink = shrink::BoxShrink::new(width, height, factor);
        let mut row = vec![0u8; width as usize * 3];
        for y in 0..height {
            rgb_row(&image, y, &mut row);
            sink.row(y, &row);
        }
        drop(image);
        sink.finish()
    };
    let image = orient(image, probe.exif_orientation);
    reservation.shrink_to(output);
    Ok((image, reservation))
}

/// Why the JPEG-specific paths did not produce the image.
enum JpegFallback {
    /// They cannot decode this file (a flavour they lack, damage): try the general decoder.
    Declined,
    /// They could, but it would take more memory than the budget: the general decoder may still
    /// fit; if not, this is the answer.
    Refused(ImageError),
}

fn decode_jpeg_scaled(
    bytes: &[u8],
    limits: &Limits,
    probe: &Probe,
    min_short_side: u32,
) -> Result<(RgbImage, Reservation), JpegFallback> {
    let (sw, sh) = (probe.stored_width, probe.stored_height);
    let short = sw.min(sh).max(1);
    let mut refused = None;
    if short.div_ceil(8) >= min_short_side {
        let (ew, eh) = (sw.div_ceil(8) as u64, sh.div_ceil(8) as u64);
        // The unstuffed entropy data, DC values per component (and their speculative copies),
        // the RGB output and its oriented copy.
        let needed = bytes.len() as u64 + ew * eh * (4 * 4 * 2 + 3 + 3);
        match reserve_for(needed, limits, "JPEG", sw, sh) {
            Ok(mut reservation) => {
                // Asked once: the answer involves reading cgroup files.
                static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
                let threads = *CORES
                    .get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
                if let Ok(eighth) = jpeg_dc::decode_eighth(bytes, threads)
                    && let Some(image) = RgbImage::from_raw(eighth.width, eighth.height, eighth.rgb)
                {
                    let output = image.as_raw().len() as u64;
                    let image = orient(image, probe.exif_orientation);
                    reservation.shrink_to(output);
                    return Ok((image, reservation));
                }
            }
            Err(e) => refused = Some(e),
        }
    }
    let mut decoder = jpeg_decoder::Decoder::new(Cursor::new(bytes));
    decoder.read_info().map_err(|_| JpegFallback::Declined)?;
    let info = decoder.info().ok_or(JpegFallback::Declined)?;
    let factor = (min_short_side as f64 / short as f64).min(1.0);
    let want_w = ((sw as f64 * factor).ceil() as u32).clamp(1, u16::MAX as u32) as u16;
    let want_h = ((sh as f64 * factor).ceil() as u32).clamp(1, u16::MAX as u32) as u16;
    let (w, h) = decoder
        .scale(want_w, want_h)
        .map_err(|_| JpegFallback::Declined)?;
    let (w, h) = (w as u32, h as u32);
    let components = info.pixel_format.pixel_bytes() as u64;
    // Progressive and lossless files keep every coefficient (or sample) at full size; every file
    // has its component planes and interleaved output at the scaled size, then our RGB copy and
    // its oriented copy.
    let whole_frame = match info.coding_process {
        jpeg_decoder::CodingProcess::DctSequential => 0,
        _ => sw as u64 * sh as u64 * 2 * components,
    };
    let scaled = w as u64 * h as u64;
    let needed = whole_frame + scaled * (2 * components + 6);
    let mut reservation = match reserve_for(needed, limits, "JPEG", sw, sh) {
        Ok(r) => r,
        Err(e) => return Err(JpegFallback::Refused(refused.unwrap_or(e))),
    };
    let pixels = decoder.decode().map_err(|_| JpegFallback::Declined)?;
    let info = decoder.info().ok_or(JpegFallback::Declined)?;
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
    let image = RgbImage::from_raw(w, h, rgb).ok_or(JpegFallback::Declined)?;
    let output = image.as_raw().len() as u64;
    let image = orient(image, probe.exif_orientation);
    reservation.shrink_to(output);
    Ok((image, reservation))
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

/// A pixel with opacity `alpha` composited on white (what a person sees on a page; black, the
/// naive result, turns logos and cut-outs into silhouettes).
pub(crate) fn on_white(rgb: [u8; 3], alpha: u8) -> [u8; 3] {
    if alpha == 255 {
        return rgb;
    }
    let a = alpha as u32;
    rgb.map(|c| ((c as u32 * a + 255 * (255 - a) + 127) / 255) as u8)
}

/// Row `y` of any image as RGB8 on white, converted straight from the decoder's buffer.
fn rgb_row(image: &DynamicImage, y: u32, out: &mut [u8]) {
    fn convert<T: Copy>(
        raw: &[T],
        width: u32,
        channels: usize,
        y: u32,
        out: &mut [u8],
        to8: impl Fn(T) -> u8,
    ) {
        let row = &raw[y as usize * width as usize * channels..][..width as usize * channels];
        for (px, dst) in row.chunks_exact(channels).zip(out.chunks_exact_mut(3)) {
            let (rgb, alpha) = match channels {
                1 => ([to8(px[0]); 3], 255),
                2 => ([to8(px[0]); 3], to8(px[1])),
                3 => ([to8(px[0]), to8(px[1]), to8(px[2])], 255),
                _ => ([to8(px[0]), to8(px[1]), to8(px[2])], to8(px[3])),
            };
            dst.copy_from_slice(&on_white(rgb, alpha));
        }
    }
    let wide = |v: u16| ((v as u32 + 128) / 257) as u8;
    let float = |v: f32| (v.clamp(0.0, 1.0) * 255.0).round() as u8;
    let w = image.width();
    match image {
        DynamicImage::ImageRgb8(b) => convert(b.as_raw(), w, 3, y, out, |v| v),
        DynamicImage::ImageRgba8(b) => convert(b.as_raw(), w, 4, y, out, |v| v),
        DynamicImage::ImageLuma8(b) => convert(b.as_raw(), w, 1, y, out, |v| v),
        DynamicImage::ImageLumaA8(b) => convert(b.as_raw(), w, 2, y, out, |v| v),
        DynamicImage::ImageRgb16(b) => convert(b.as_raw(), w, 3, y, out, wide),
        DynamicImage::ImageRgba16(b) => convert(b.as_raw(), w, 4, y, out, wide),
        DynamicImage::ImageLuma16(b) => convert(b.as_raw(), w, 1, y, out, wide),
        DynamicImage::ImageLumaA16(b) => convert(b.as_raw(), w, 2, y, out, wide),
        DynamicImage::ImageRgb32F(b) => convert(b.as_raw(), w, 3, y, out, float),
        DynamicImage::ImageRgba32F(b) => convert(b.as_raw(), w, 4, y, out, float),
        other => {
            use image::GenericImageView;
            for (x, dst) in out.chunks_exact_mut(3).enumerate().take(w as usize) {
                let p = other.get_pixel(x as u32, y).0;
                dst.copy_from_slice(&on_white([p[0], p[1], p[2]], p[3]));
            }
        }
    }
}

/// Converts any colour type to RGB8, compositing transparency on white.
pub fn flatten_to_rgb8(image: DynamicImage) -> RgbImage {
    if let DynamicImage::ImageRgb8(rgb) = image {
        return rgb;
    }
    let (w, h) = (image.width(), image.height());
    let mut out = RgbImage::new(w, h);
    for (y, row) in out.as_mut().chunks_exact_mut(w as usize * 3).enumerate() {
        rgb_row(&image, y as u32, row);
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
    // Decoded only as big as needed: shrunk while decoding to about the largest side allowed.
    let p = probe(bytes, limits)?;
    let (long, short) = (p.width.max(p.height), p.width.min(p.height));
    let decoded = if long > max_side {
        let short_needed = (short as u64 * max_side as u64).div_ceil(long as u64) as u32;
        decode_at_least(bytes, limits, short_needed.max(min_side))?
    } else {
        decode(bytes, limits)?
    };
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
