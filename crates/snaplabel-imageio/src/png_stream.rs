//! PNG decoded row by row straight into a [`BoxShrink`]: the image never exists at full size, so
//! an 8000×8000 16-bit RGBA file (512 MB as one buffer) costs a few rows and the shrunk output.

use crate::budget::Reservation;
use crate::shrink::{self, BoxShrink};
use crate::{ImageError, Limits, orient};
use image::RgbImage;
use snaplabel_core::ErrorCode;
use std::io::Cursor;

/// Ancillary chunks (text, colour profiles) may not make the decoder allocate more than this:
/// none of them is needed for labels.
const MAX_CHUNK_BYTES: usize = 8 * 1024 * 1024;

/// Adam7's passes: (x step, x offset, y step, y offset), in the order the rows arrive.
const ADAM7: [(u32, u32, u32, u32); 7] = [
    (8, 0, 8, 0),
    (8, 4, 8, 0),
    (4, 0, 8, 4),
    (4, 2, 4, 0),
    (2, 0, 4, 2),
    (2, 1, 2, 0),
    (1, 0, 2, 1),
];

/// Where each decoded row goes: `(y, first x, x step)`, in the order the decoder yields rows
/// (passes without pixels are skipped, as the decoder skips them).
fn row_places(
    width: u32,
    height: u32,
    interlaced: bool,
) -> Box<dyn Iterator<Item = (u32, u32, u32)>> {
    if !interlaced {
        return Box::new((0..height).map(|y| (y, 0, 1)));
    }
    Box::new(ADAM7.iter().flat_map(move |&(xs, xo, ys, yo)| {
        let samples = width.saturating_sub(xo).div_ceil(xs);
        let lines = if samples == 0 {
            0
        } else {
            height.saturating_sub(yo).div_ceil(ys)
        };
        (0..lines).map(move |line| (line * ys + yo, xo, xs))
    }))
}

fn classify(err: png::DecodingError) -> ImageError {
    match err {
        png::DecodingError::LimitsExceeded => ImageError::new(
            ErrorCode::TooManyPixels,
            "the PNG needs more memory to decode than its budget allows",
        ),
        png::DecodingError::IoError(e) => ImageError::new(
            ErrorCode::CorruptImage,
            format!("the PNG data ends early: {e}"),
        ),
        other => ImageError::new(
            ErrorCode::CorruptImage,
            format!("the PNG data is damaged or truncated: {other}"),
        ),
    }
}

/// Decodes a PNG shrunk by the factor `factor_for` picks for its size, RGB8 (alpha on white,
/// 16-bit rounded to 8), then applies `orientation` (EXIF, 1–8) to the shrunk image. The memory
/// it needs is reserved from the decode pool; the returned reservation covers the output.
pub(crate) fn decode(
    bytes: &[u8],
    limits: &Limits,
    factor_for: impl FnOnce(u32, u32) -> u32,
    orientation: u8,
) -> Result<(RgbImage, Reservation), ImageError> {
    let mut decoder = png::Decoder::new_with_limits(
        Cursor::new(bytes),
        png::Limits {
            bytes: MAX_CHUNK_BYTES.min(limits.max_decode_bytes as usize),
        },
    );
    // Palettes, transparency chunks and bit depths under 8 become plain 8-bit samples; 16-bit
    // stays 16-bit and is rounded below.
    decoder.set_transformations(png::Transformations::EXPAND);
    decoder.set_ignore_text_chunk(true);
    decoder.set_ignore_iccp_chunk(true);
    let mut reader = decoder.read_info().map_err(classify)?;
    let (width, height, interlaced) = {
        let info = reader.info();
        (info.width, info.height, info.interlaced)
    };
    let (color, depth) = reader.output_color_type();
    let channels = color.samples();
    let wide = depth == png::BitDepth::Sixteen;
    let line_bytes = width as u64 * channels as u64 * if wide { 2 } else { 1 };
    let factor = factor_for(width, height);
    let (out_w, out_h) = (
        shrink::shrunk(width, factor),
        shrink::shrunk(height, factor),
    );
    let output = out_w as u64 * out_h as u64 * 3;
    // The decoder's current and previous raw rows and its output row, our RGB row, the
    // accumulator, and a second output for the orientation.
    let needed =
        3 * line_bytes + width as u64 * 3 + shrink::working_bytes(width, height, factor) + output;
    let mut reservation = crate::reserve_for(needed, limits, "PNG", width, height)?;

    let mut sink = BoxShrink::new(width, height, factor);
    let mut rgb = vec![0u8; width as usize * 3];
    let mut places = row_places(width, height, interlaced);
    let sample = |data: &[u8], i: usize| -> u8 {
        if wide {
            let v = u16::from_be_bytes([data[2 * i], data[2 * i + 1]]) as u32;
            ((v + 128) / 257) as u8
        } else {
            data[i]
        }
    };
    while let Some(row) = reader.next_row().map_err(classify)? {
        let Some((y, x0, step)) = places.next() else {
            break;
        };
        let data = row.data();
        let pixels = (data.len() / (channels * if wide { 2 } else { 1 })).min(width as usize);
        for (p, out) in rgb.chunks_exact_mut(3).take(pixels).enumerate() {
            let at = p * channels;
            let (r, g, b, a) = match channels {
                1 => {
                    let v = sample(data, at);
                    (v, v, v, 255)
                }
                2 => {
                    let v = sample(data, at);
                    (v, v, v, sample(data, at + 1))
                }
                3 => (
                    sample(data, at),
                    sample(data, at + 1),
                    sample(data, at + 2),
                    255,
                ),
                _ => (
                    sample(data, at),
                    sample(data, at + 1),
                    sample(data, at + 2),
                    sample(data, at + 3),
                ),
            };
            out.copy_from_slice(&crate::on_white([r, g, b], a));
        }
        sink.samples(y, x0, step, &rgb[..pixels * 3]);
    }
    drop(reader);
    let image = orient(sink.finish(), orientation);
    reservation.shrink_to(output);
    Ok((image, reservation))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adam7_places_cover_every_pixel_once() {
        for (w, h) in [(1, 1), (3, 2), (8, 8), (37, 23), (5, 1), (1, 9)] {
            let mut seen = vec![0u8; w * h];
            for (y, x0, step) in row_places(w as u32, h as u32, true) {
                for x in (x0..w as u32).step_by(step as usize) {
                    seen[y as usize * w + x as usize] += 1;
                }
            }
            assert!(seen.iter().all(|&n| n == 1), "{w}×{h}: {seen:?}");
        }
    }

    #[test]
    fn budget_is_checked_before_rows_are_read() {
        // 8000×8000 RGBA, 16-bit, decoded whole: 192 MB of RGB alone.
        let png = snaplabel_fixtures::hostile::png_rgba16(8000, 8000, None);
        let limits = Limits::default();
        let err = decode(&png, &limits, |_, _| 1, 1).unwrap_err();
        assert_eq!(err.code, ErrorCode::TooManyPixels, "{err}");
        let (image, reservation) =
            decode(&png, &limits, |w, h| shrink::factor_for(w, h, 256), 6).unwrap();
        assert_eq!(image.dimensions(), (259, 259));
        assert_eq!(reservation.bytes(), 259 * 259 * 3);
    }
}
