//! The eighth-scale DC decoder against a general decoder, on every sampling layout, with and
//! without restart markers, split into any number of pieces, and on damaged input.

use image::RgbImage;
use jpeg_encoder::{ColorType, Encoder, SamplingFactor};
use snaplabel_imageio::jpeg_dc::{DcError, Eighth, decode_eighth, decode_eighth_split};

use snaplabel_fixtures::read as fixture;

/// A real photo at the given size with a little deterministic sensor noise, as phones make them.
fn photo(width: u32, height: u32) -> RgbImage {
    let source = image::load_from_memory(&fixture("photos/chelsea.png"))
        .unwrap()
        .into_rgb8();
    let mut img = image::imageops::resize(
        &source,
        width,
        height,
        image::imageops::FilterType::Triangle,
    );
    let mut seed = 0x2545_F491_4F6C_DD1Du64;
    for px in img.pixels_mut() {
        for c in px.0.iter_mut() {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            *c = (*c as i32 + (seed % 9) as i32 - 4).clamp(0, 255) as u8;
        }
    }
    img
}

struct Settings {
    sampling: SamplingFactor,
    restart: Option<u16>,
    gray: bool,
    progressive: bool,
    quality: u8,
}

fn encode(img: &RgbImage, s: &Settings) -> Vec<u8> {
    let mut out = Vec::new();
    let mut encoder = Encoder::new(&mut out, s.quality);
    encoder.set_sampling_factor(s.sampling);
    encoder.set_progressive(s.progressive);
    if let Some(interval) = s.restart {
        encoder.set_restart_interval(interval);
    }
    let (w, h) = (img.width() as u16, img.height() as u16);
    if s.gray {
        let luma = image::DynamicImage::ImageRgb8(img.clone()).into_luma8();
        encoder
            .encode(luma.as_raw(), w, h, ColorType::Luma)
            .unwrap();
    } else {
        encoder.encode(img.as_raw(), w, h, ColorType::Rgb).unwrap();
    }
    out
}

/// jpeg-decoder's own 1/8 scaled decode, as RGB.
fn reference(bytes: &[u8]) -> Eighth {
    let mut decoder = jpeg_decoder::Decoder::new(bytes);
    decoder.read_info().unwrap();
    let info = decoder.info().unwrap();
    let (w, h) = decoder
        .scale(info.width.div_ceil(8), info.height.div_ceil(8))
        .unwrap();
    let pixels = decoder.decode().unwrap();
    let rgb = match decoder.info().unwrap().pixel_format {
        jpeg_decoder::PixelFormat::L8 => pixels.iter().flat_map(|&v| [v, v, v]).collect(),
        jpeg_decoder::PixelFormat::RGB24 => pixels,
        other => panic!("unexpected {other:?}"),
    };
    Eighth {
        width: w as u32,
        height: h as u32,
        rgb,
    }
}

fn mean_difference(a: &Eighth, b: &Eighth) -> f64 {
    assert_eq!((a.width, a.height), (b.width, b.height));
    let sum: u64 = a
        .rgb
        .iter()
        .zip(&b.rgb)
        .map(|(&x, &y)| (x as i32 - y as i32).unsigned_abs() as u64)
        .sum();
    sum as f64 / a.rgb.len() as f64
}

#[test]
fn agrees_with_a_general_decoder_on_every_layout() {
    use SamplingFactor::*;
    let mut checked = 0;
    for (width, height) in [(640, 480), (803, 601)] {
        let img = photo(width, height);
        // 4:1:1 and 2:4 are written one component per scan, the others interleaved.
        for sampling in [F_1_1, F_2_2, F_2_1, F_1_2, F_4_1, F_2_4] {
            for restart in [None, Some(1), Some(7)] {
                for (gray, progressive) in [(false, false), (true, false), (false, true)] {
                    let settings = Settings {
                        sampling,
                        restart,
                        gray,
                        progressive,
                        quality: 88,
                    };
                    let what = format!(
                        "{width}×{height} {sampling:?} {restart:?} gray={gray} progressive={progressive}"
                    );
                    let bytes = encode(&img, &settings);
                    let ours = decode_eighth(&bytes, 3).unwrap_or_else(|e| panic!("{what}: {e:?}"));
                    let diff = mean_difference(&ours, &reference(&bytes));
                    assert!(diff < 2.5, "{what}: mean difference {diff:.2}");
                    checked += 1;
                }
            }
        }
    }
    assert_eq!(checked, 108);
}

#[test]
fn real_photos_agree_with_a_general_decoder() {
    // 4:4:4 and 4:2:0 from cameras' encoders; progressive with DC successive approximation
    // (ImageMagick; libjpeg-turbo with restart markers), and gray.
    for name in [
        "photos/rocket.jpg",
        "photos/grace_hopper.jpg",
        "variants/chelsea-progressive.jpg",
        "variants/chelsea-progressive-restarts.jpg",
        "variants/chelsea-gray.jpg",
    ] {
        let bytes = fixture(name);
        let ours = decode_eighth(&bytes, 2).unwrap();
        let diff = mean_difference(&ours, &reference(&bytes));
        assert!(diff < 2.5, "{name}: mean difference {diff:.2}");
    }
}

#[test]
fn any_split_of_the_entropy_data_gives_identical_pixels() {
    let img = photo(1600, 1200);
    for (sampling, restart) in [
        (SamplingFactor::F_1_1, None),
        (SamplingFactor::F_2_2, None),
        (SamplingFactor::F_2_1, Some(5)),
        (SamplingFactor::F_4_1, None),
    ] {
        let bytes = encode(
            &img,
            &Settings {
                sampling,
                restart,
                gray: false,
                progressive: false,
                quality: 95,
            },
        );
        let whole = decode_eighth_split(&bytes, 1, usize::MAX).unwrap();
        for pieces in [2, 3, 4, 7, 16] {
            let split = decode_eighth_split(&bytes, pieces, 0).unwrap();
            assert!(
                split == whole,
                "{sampling:?} {restart:?}: {pieces} pieces differ from one"
            );
        }
    }
}

#[test]
fn other_jpeg_flavours_are_declined_not_misread() {
    let img = photo(320, 240);
    let mut cmyk = Vec::new();
    let ink: Vec<u8> = img.pixels().flat_map(|p| [p[0], p[1], p[2], 0]).collect();
    Encoder::new(&mut cmyk, 85)
        .encode(&ink, 320, 240, ColorType::Cmyk)
        .unwrap();
    assert_eq!(decode_eighth(&cmyk, 2), Err(DcError::Unsupported));
    assert_eq!(
        decode_eighth(&fixture("variants/chelsea-cmyk.jpg"), 2),
        Err(DcError::Unsupported)
    );
}

#[test]
fn damaged_data_never_panics_and_truncation_is_corrupt() {
    for progressive in [false, true] {
        let bytes = encode(
            &photo(400, 300),
            &Settings {
                sampling: SamplingFactor::F_2_2,
                restart: None,
                gray: false,
                progressive,
                quality: 90,
            },
        );
        assert!(decode_eighth(&bytes, 2).is_ok());
        // Cut anywhere: the header parse or the entropy decoding notices; nothing panics.
        for cut in (0..bytes.len()).step_by(97) {
            assert!(
                decode_eighth_split(&bytes[..cut], 3, 0).is_err(),
                "progressive={progressive}: cut at {cut} of {}",
                bytes.len()
            );
        }
        // Flipped bytes anywhere: any answer but a panic.
        let mut seed = 7u64;
        for _ in 0..300 {
            let mut damaged = bytes.clone();
            for _ in 0..4 {
                seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                let at = (seed >> 33) as usize % damaged.len();
                damaged[at] ^= (seed >> 20) as u8 | 1;
            }
            let _ = decode_eighth_split(&damaged, 3, 0);
        }
    }
}
