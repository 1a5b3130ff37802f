//! No input makes decoding allocate more than its budget. Every allocation of this test binary
//! is counted (one test, so nothing else runs beside it), and each hostile image is decoded under
//! budgets from tight to roomy: it either decodes within the budget or is refused, never more.

use snaplabel_core::ErrorCode;
use snaplabel_imageio::{Limits, decode_at_least};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

struct Counting;

static CURRENT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            let now = CURRENT.fetch_add(layout.size(), Ordering::SeqCst) + layout.size();
            PEAK.fetch_max(now, Ordering::SeqCst);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        CURRENT.fetch_sub(layout.size(), Ordering::SeqCst);
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            if new_size > layout.size() {
                let now = CURRENT.fetch_add(new_size - layout.size(), Ordering::SeqCst)
                    + (new_size - layout.size());
                PEAK.fetch_max(now, Ordering::SeqCst);
            } else {
                CURRENT.fetch_sub(layout.size() - new_size, Ordering::SeqCst);
            }
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const MB: u64 = 1024 * 1024;

/// Peak bytes allocated while decoding, above what was allocated before.
fn peak_decoding(bytes: &[u8], limits: &Limits) -> (u64, Result<(u32, u32), ErrorCode>) {
    let before = CURRENT.load(Ordering::SeqCst);
    PEAK.store(before, Ordering::SeqCst);
    let result = decode_at_least(bytes, limits, 256)
        .map(|d| d.image.dimensions())
        .map_err(|e| e.code);
    ((PEAK.load(Ordering::SeqCst) - before) as u64, result)
}

fn jpeg(width: u16, height: u16, color: jpeg_encoder::ColorType, progressive: bool) -> Vec<u8> {
    let channels = match color {
        jpeg_encoder::ColorType::Cmyk => 4,
        _ => 3,
    };
    let pixels: Vec<u8> = (0..height as usize * width as usize * channels)
        .map(|i| (i / 97 % 251) as u8)
        .collect();
    let mut out = Vec::new();
    let mut encoder = jpeg_encoder::Encoder::new(&mut out, 80);
    encoder.set_progressive(progressive);
    encoder.encode(&pixels, width, height, color).unwrap();
    out
}

#[test]
fn no_input_allocates_more_than_its_decode_budget() {
    use snaplabel_fixtures::hostile;
    let mut webp = Vec::new();
    image::RgbaImage::from_fn(2500, 2000, |x, y| {
        image::Rgba([(x % 256) as u8, (y % 256) as u8, 7, 200])
    })
    .write_to(
        &mut std::io::Cursor::new(&mut webp),
        image::ImageFormat::WebP,
    )
    .unwrap();
    let progressive = jpeg(4000, 3000, jpeg_encoder::ColorType::Rgb, true);
    // Cut inside the AC scans: the DC path declines, jpeg-decoder keeps every coefficient.
    let damaged_progressive = {
        let mut bytes = progressive.clone();
        let at = bytes.len() * 2 / 3;
        bytes[at..at + 64].fill(0xFF);
        bytes
    };
    let inputs: Vec<(&str, Vec<u8>)> = vec![
        (
            "PNG 8000×8000 RGBA16 EXIF 6",
            hostile::png_rgba16(8000, 8000, Some(6)),
        ),
        (
            "PNG 3000×2000 interlaced",
            hostile::png_interlaced_rgb8(3000, 2000, |x, y| [x as u8, y as u8, 9]),
        ),
        ("TIFF 8000×8000 RGBA16", hostile::tiff_rgba16(8000, 8000)),
        ("TIFF 3000×2000 RGBA16", hostile::tiff_rgba16(3000, 2000)),
        ("GIF 8000×8000", hostile::gif(8000, 8000)),
        ("GIF 3000×2000", hostile::gif(3000, 2000)),
        ("WebP 2500×2000 RGBA", webp),
        ("JPEG 4000×3000 progressive", progressive),
        ("JPEG 4000×3000 progressive, damaged", damaged_progressive),
        (
            "JPEG 4000×3000 CMYK",
            jpeg(4000, 3000, jpeg_encoder::ColorType::Cmyk, false),
        ),
        (
            "JPEG 1500×1000 CMYK progressive",
            jpeg(1500, 1000, jpeg_encoder::ColorType::Cmyk, true),
        ),
    ];
    for (name, bytes) in &inputs {
        let mut decoded_at = None;
        for budget in [64 * MB, 128 * MB, 192 * MB, 512 * MB] {
            let limits = Limits::default().with_decode_budget(budget);
            let (peak, result) = peak_decoding(bytes, &limits);
            eprintln!(
                "{name:40} budget {:>3} MB: peak {:>4} MB, {result:?}",
                budget / MB,
                peak.div_ceil(MB)
            );
            match result {
                Ok(_) => {
                    assert!(
                        peak <= budget,
                        "{name}: {peak} bytes over a budget of {budget}"
                    );
                    decoded_at.get_or_insert(budget);
                }
                Err(ErrorCode::TooManyPixels) => {
                    // Refused before its pixels, or after cheaper paths failed within the budget.
                    assert!(peak <= budget, "{name}: refused after {peak} bytes");
                    assert!(
                        decoded_at.is_none(),
                        "{name}: refused under a bigger budget"
                    );
                }
                Err(other) => panic!("{name}: {other}"),
            }
        }
        // Under the default budget, the attack images of the issue decode (shrunk).
        if name.starts_with("PNG") || name.contains("JPEG 4000×3000 progressive") {
            assert!(decoded_at.is_some_and(|b| b <= 192 * MB), "{name}");
        }
    }
}
