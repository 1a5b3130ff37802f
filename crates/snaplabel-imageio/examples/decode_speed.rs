//! Compares the ways of decoding a JPEG for a model input:
//! `cargo run --release --example decode_speed -- FILE.jpg...` (`WAY=DC` runs only the ways whose
//! name contains "DC", e.g. under a profiler).

use snaplabel_imageio::{Limits, decode, decode_at_least, jpeg_dc, probe};
use std::time::Instant;

type Way<'a> = (&'a str, Box<dyn Fn(&[u8]) -> Option<(u32, u32)> + 'a>);

fn main() {
    let limits = Limits::default();
    let ways: Vec<Way> = vec![
        (
            "full decode (image crate)",
            Box::new(|b| decode(b, &limits).ok().map(|d| d.image.dimensions())),
        ),
        (
            "DCT-scaled (jpeg-decoder)",
            Box::new(|b| {
                let mut d = jpeg_decoder::Decoder::new(b);
                d.read_info().ok()?;
                let info = d.info()?;
                let dims = d
                    .scale(info.width.div_ceil(8), info.height.div_ceil(8))
                    .ok()?;
                d.decode().ok()?;
                Some((dims.0 as u32, dims.1 as u32))
            }),
        ),
        (
            "header probe only",
            Box::new(|b| probe(b, &limits).ok().map(|p| (p.width, p.height))),
        ),
        (
            "DC only, 1 thread",
            Box::new(|b| {
                jpeg_dc::decode_eighth(b, 1)
                    .ok()
                    .map(|e| (e.width, e.height))
            }),
        ),
        (
            "DC only, 2 threads",
            Box::new(|b| {
                jpeg_dc::decode_eighth(b, 2)
                    .ok()
                    .map(|e| (e.width, e.height))
            }),
        ),
        (
            "decode_at_least(256)",
            Box::new(|b| {
                decode_at_least(b, &limits, 256)
                    .ok()
                    .map(|d| d.image.dimensions())
            }),
        ),
    ];
    let only = std::env::var("WAY").ok();
    for path in std::env::args().skip(1) {
        let bytes = std::fs::read(&path).expect("readable file");
        println!("{path} ({:.1} MB)", bytes.len() as f64 / 1e6);
        for (name, way) in &ways {
            if only.as_deref().is_some_and(|o| !name.contains(o)) {
                continue;
            }
            let mut times = Vec::new();
            let mut dims = None;
            for _ in 0..11 {
                let started = Instant::now();
                dims = way(&bytes);
                times.push(started.elapsed().as_secs_f64() * 1e3);
            }
            times.sort_by(|a, b| a.total_cmp(b));
            match dims {
                Some((w, h)) => println!("  {name:<28} {w}×{h} p50 {:.1} ms", times[5]),
                None => println!("  {name:<28} declined"),
            }
        }
    }
}
