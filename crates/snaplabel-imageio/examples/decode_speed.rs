//! Compares full decoding with DCT-scaled decoding: `cargo run --release --example decode_speed -- FILE.jpg`.

use snaplabel_imageio::{Limits, decode, decode_at_least};
use std::time::Instant;

fn main() {
    let path = std::env::args().nth(1).expect("usage: decode_speed FILE");
    let bytes = std::fs::read(&path).expect("readable file");
    let limits = Limits::default();
    for (name, f) in [
        (
            "full decode (image crate)",
            &(|b: &[u8]| decode(b, &limits).map(|d| d.image.dimensions())) as &dyn Fn(&[u8]) -> _,
        ),
        ("DCT-scaled to ≥256 px (jpeg-decoder)", &|b: &[u8]| {
            decode_at_least(b, &limits, 256).map(|d| d.image.dimensions())
        }),
    ] {
        let mut times = Vec::new();
        let mut dims = (0, 0);
        for _ in 0..10 {
            let started = Instant::now();
            dims = f(&bytes).expect("decodes");
            times.push(started.elapsed().as_secs_f64() * 1e3);
        }
        times.sort_by(|a, b| a.total_cmp(b));
        println!(
            "{name}: {}×{} p50 {:.1} ms, min {:.1} ms",
            dims.0, dims.1, times[5], times[0]
        );
    }
}
