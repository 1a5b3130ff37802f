//! Hostile images, made on the spot: small files that declare huge, deep pixel buffers. None is
//! committed: they are generated in a few hundred milliseconds, streamed row by row so that
//! making them never needs the memory they make a careless decoder use.

use std::cell::RefCell;
use std::io::Write;
use std::rc::Rc;

/// A writer whose bytes are read back after an encoder that insists on owning its writer is done.
#[derive(Clone, Default)]
struct Shared(Rc<RefCell<Vec<u8>>>);

impl Write for Shared {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.borrow_mut().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A blocky pattern: each 64×64 block one colour, so the files compress to almost nothing.
fn sample(x: u32, y: u32, channel: u32) -> u16 {
    let (bx, by) = (x / 64, y / 64);
    ((bx * 7919 + by * 104_729 + channel * 31_337) % 65_536) as u16
}

/// A big-endian EXIF block holding only an orientation (1–8).
pub fn exif_orientation(orientation: u16) -> Vec<u8> {
    let mut exif = b"MM\x00\x2a\x00\x00\x00\x08".to_vec();
    exif.extend_from_slice(&1u16.to_be_bytes()); // one entry
    exif.extend_from_slice(&0x0112u16.to_be_bytes()); // Orientation
    exif.extend_from_slice(&3u16.to_be_bytes()); // SHORT
    exif.extend_from_slice(&1u32.to_be_bytes());
    exif.extend_from_slice(&orientation.to_be_bytes());
    exif.extend_from_slice(&[0, 0]);
    exif.extend_from_slice(&0u32.to_be_bytes()); // no next IFD
    exif
}

/// A 16-bit RGBA PNG of `width` × `height` with an EXIF orientation (the attack is
/// 8000×8000 with orientation 6: under 0.5 MB on the wire, 512 MB as one decoded buffer).
pub fn png_rgba16(width: u32, height: u32, orientation: Option<u16>) -> Vec<u8> {
    let out = Shared::default();
    let mut encoder = png::Encoder::new(out.clone(), width, height);
    encoder.set_color(png::ColorType::Rgba);
    encoder.set_depth(png::BitDepth::Sixteen);
    encoder.set_compression(png::Compression::High);
    // Blocks repeat for 64 rows: "Up" makes those rows zeros.
    encoder.set_filter(png::Filter::Up);
    let mut writer = encoder.write_header().expect("PNG header");
    if let Some(o) = orientation {
        writer
            .write_chunk(png::chunk::eXIf, &exif_orientation(o))
            .expect("eXIf chunk");
    }
    let mut stream = writer.into_stream_writer().expect("PNG stream");
    let mut row = vec![0u8; width as usize * 8];
    for y in 0..height {
        if y % 64 == 0 {
            for x in 0..width {
                for c in 0..4 {
                    let v = if c == 3 { 40_000 } else { sample(x, y, c) };
                    let at = (x as usize * 4 + c as usize) * 2;
                    row[at..at + 2].copy_from_slice(&v.to_be_bytes());
                }
            }
        }
        stream.write_all(&row).expect("PNG row");
    }
    stream.finish().expect("PNG end");
    out.0.take()
}

/// An interlaced (Adam7) 8-bit RGB PNG of `width` × `height` whose pixel (x, y) is `pixel(x, y)`.
/// Interlaced rows arrive scattered over seven passes, so a decoder that shrinks while it
/// decodes must place every sample itself. Filter "none", one IDAT: at most a few megapixels.
/// The pass table is written out here again on purpose: an encoder sharing the decoder's table
/// would share its mistakes.
pub fn png_interlaced_rgb8(
    width: u32,
    height: u32,
    pixel: impl Fn(u32, u32) -> [u8; 3],
) -> Vec<u8> {
    const PASSES: [(u32, u32, u32, u32); 7] = [
        (8, 0, 8, 0),
        (8, 4, 8, 0),
        (4, 0, 8, 4),
        (4, 2, 4, 0),
        (2, 0, 4, 2),
        (2, 1, 2, 0),
        (1, 0, 2, 1),
    ];
    let mut raw = Vec::new();
    for (xs, xo, ys, yo) in PASSES {
        let xs_in_pass: Vec<u32> = (xo..width).step_by(xs as usize).collect();
        if xs_in_pass.is_empty() {
            continue;
        }
        for y in (yo..height).step_by(ys as usize) {
            raw.push(0); // filter: none
            for &x in &xs_in_pass {
                raw.extend_from_slice(&pixel(x, y));
            }
        }
    }
    let chunk = |out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]| {
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        out.extend_from_slice(kind);
        out.extend_from_slice(data);
        let mut crc = crc32fast::Hasher::new();
        crc.update(kind);
        crc.update(data);
        out.extend_from_slice(&crc.finalize().to_be_bytes());
    };
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&width.to_be_bytes());
    ihdr.extend_from_slice(&height.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 1]); // 8-bit, RGB, deflate, adaptive filters, Adam7
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    chunk(&mut out, b"IHDR", &ihdr);
    chunk(
        &mut out,
        b"IDAT",
        &miniz_oxide::deflate::compress_to_vec_zlib(&raw, 6),
    );
    chunk(&mut out, b"IEND", &[]);
    out
}

/// A 16-bit RGBA TIFF of `width` × `height` in deflated strips of 64 rows. Every strip points at
/// the same compressed bytes (TIFF allows it), so even 8000×8000 is a small file made at once.
/// Written by hand: the tiff crate's encoder leaves strips written one by one uncompressed.
pub fn tiff_rgba16(width: u32, height: u32) -> Vec<u8> {
    const ROWS: u32 = 64;
    let strip: Vec<u8> = (0..ROWS)
        .flat_map(|y| (0..width).flat_map(move |x| (0..4).map(move |c| sample(x, y, c))))
        .flat_map(u16::to_le_bytes)
        .collect();
    let full = miniz_oxide::deflate::compress_to_vec_zlib(&strip, 6);
    let strips = height.div_ceil(ROWS);
    let last_rows = height - (strips - 1) * ROWS;
    let last =
        miniz_oxide::deflate::compress_to_vec_zlib(&strip[..(last_rows * width * 8) as usize], 6);
    // Header, IFD at 8 (entry count, entries, next-IFD offset), then the bits per sample, the
    // strip offsets and byte counts, and the two compressed strips.
    const ENTRIES: u16 = 11;
    let ifd_len = 2 + ENTRIES as u32 * 12 + 4;
    let bits_at = 8 + ifd_len;
    let offsets_at = bits_at + 8;
    let counts_at = offsets_at + 4 * strips;
    let full_at = counts_at + 4 * strips;
    let last_at = full_at + full.len() as u32;
    let mut out = b"II\x2a\x00".to_vec();
    out.extend_from_slice(&8u32.to_le_bytes());
    out.extend_from_slice(&ENTRIES.to_le_bytes());
    let mut entry = |tag: u16, kind: u16, count: u32, value: u32| {
        out.extend_from_slice(&tag.to_le_bytes());
        out.extend_from_slice(&kind.to_le_bytes());
        out.extend_from_slice(&count.to_le_bytes());
        out.extend_from_slice(&value.to_le_bytes());
    };
    out_entries(
        &mut entry, width, height, strips, bits_at, offsets_at, counts_at, ROWS,
    );
    out.extend_from_slice(&0u32.to_le_bytes()); // no next IFD
    for _ in 0..4 {
        out.extend_from_slice(&16u16.to_le_bytes());
    }
    for i in 0..strips {
        let at = if i + 1 == strips { last_at } else { full_at };
        out.extend_from_slice(&at.to_le_bytes());
    }
    for i in 0..strips {
        let len = if i + 1 == strips {
            last.len()
        } else {
            full.len()
        };
        out.extend_from_slice(&(len as u32).to_le_bytes());
    }
    out.extend_from_slice(&full);
    out.extend_from_slice(&last);
    out
}

/// The IFD entries of [`tiff_rgba16`], in ascending tag order as TIFF requires.
#[allow(clippy::too_many_arguments)]
fn out_entries(
    entry: &mut impl FnMut(u16, u16, u32, u32),
    width: u32,
    height: u32,
    strips: u32,
    bits_at: u32,
    offsets_at: u32,
    counts_at: u32,
    rows: u32,
) {
    const SHORT: u16 = 3;
    const LONG: u16 = 4;
    entry(256, LONG, 1, width);
    entry(257, LONG, 1, height);
    entry(258, SHORT, 4, bits_at); // BitsPerSample 16,16,16,16
    entry(259, SHORT, 1, 8); // Compression: Adobe deflate
    entry(262, SHORT, 1, 2); // RGB
    entry(273, LONG, strips, offsets_at);
    entry(277, SHORT, 1, 4); // SamplesPerPixel
    entry(278, LONG, 1, rows);
    entry(279, LONG, strips, counts_at);
    entry(284, SHORT, 1, 1); // chunky
    entry(338, SHORT, 1, 2); // ExtraSamples: unassociated alpha
}

/// A GIF of `width` × `height`, one frame.
pub fn gif(width: u16, height: u16) -> Vec<u8> {
    let palette: Vec<u8> = (0..=255u8).flat_map(|i| [i, 255 - i, i / 2]).collect();
    let pixels: Vec<u8> = (0..height as u32)
        .flat_map(|y| (0..width as u32).map(move |x| (sample(x, y, 0) % 256) as u8))
        .collect();
    let mut out = Vec::new();
    {
        let mut encoder = gif::Encoder::new(&mut out, width, height, &palette).expect("GIF header");
        let frame = gif::Frame::from_indexed_pixels(width, height, pixels, None);
        encoder.write_frame(&frame).expect("GIF frame");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_files_are_small_on_the_wire() {
        let png = png_rgba16(8000, 8000, Some(6));
        assert!(
            png.starts_with(b"\x89PNG") && png.len() < 2_000_000,
            "{}",
            png.len()
        );
        let tiff = tiff_rgba16(2000, 300);
        assert!(tiff.starts_with(b"II") || tiff.starts_with(b"MM"));
        assert!(gif(500, 300).starts_with(b"GIF8"));
    }
}
