//! Decoding real photos and hostile inputs.

use image::{ImageEncoder, RgbImage, Rgba, RgbaImage};
use snaplabel_core::{ErrorCode, ImageFormat};
use snaplabel_imageio::{Limits, decode, probe, to_jpeg};

use snaplabel_fixtures::photo as fixture;

fn encode(img: &RgbImage, format: image::ImageFormat) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, format).unwrap();
    out.into_inner()
}

fn code(bytes: &[u8]) -> ErrorCode {
    probe(bytes, &Limits::default())
        .and_then(|_| decode(bytes, &Limits::default()))
        .unwrap_err()
        .code
}

#[test]
fn real_photos_decode_upright_rgb() {
    for (name, format, w, h) in [
        ("chelsea.png", ImageFormat::Png, 451, 300),
        ("coffee.png", ImageFormat::Png, 600, 400),
        ("rocket.jpg", ImageFormat::Jpeg, 640, 427),
        ("grace_hopper.jpg", ImageFormat::Jpeg, 512, 600),
    ] {
        let d = decode(&fixture(name), &Limits::default()).unwrap();
        assert_eq!(
            (d.probe.format, d.probe.width, d.probe.height),
            (format, w, h),
            "{name}"
        );
        assert_eq!(d.image.dimensions(), (w, h), "{name}");
    }
}

#[test]
fn every_supported_container_decodes() {
    let src = decode(&fixture("chelsea.png"), &Limits::default())
        .unwrap()
        .image;
    for (format, ours) in [
        (image::ImageFormat::Jpeg, ImageFormat::Jpeg),
        (image::ImageFormat::WebP, ImageFormat::Webp),
        (image::ImageFormat::Gif, ImageFormat::Gif),
        (image::ImageFormat::Bmp, ImageFormat::Bmp),
        (image::ImageFormat::Tiff, ImageFormat::Tiff),
    ] {
        let bytes = encode(&src, format);
        let d = decode(&bytes, &Limits::default()).unwrap_or_else(|e| panic!("{format:?}: {e}"));
        assert_eq!(d.probe.format, ours);
        assert_eq!(d.image.dimensions(), (451, 300));
    }
}

#[test]
fn exif_orientation_is_applied() {
    // A 200×100 JPEG whose EXIF says "rotate 90° clockwise" (orientation 6) is upright 100×200.
    let mut img = RgbImage::from_pixel(200, 100, image::Rgb([255, 255, 255]));
    for y in 0..100 {
        for x in 0..20 {
            img.put_pixel(x, y, image::Rgb([255, 0, 0])); // red band on the stored left edge
        }
    }
    let jpeg = encode(&img, image::ImageFormat::Jpeg);
    let with_exif = snaplabel_fixtures::with_exif_orientation(&jpeg, 6);
    let p = probe(&with_exif, &Limits::default()).unwrap();
    assert_eq!((p.width, p.height, p.exif_orientation), (100, 200, 6));
    let d = decode(&with_exif, &Limits::default()).unwrap();
    assert_eq!(d.image.dimensions(), (100, 200));
    // Rotating clockwise moves the stored left edge to the top.
    let top = d.image.get_pixel(50, 5);
    let bottom = d.image.get_pixel(50, 195);
    assert!(
        top[0] > 200 && top[1] < 80,
        "top should be red, got {top:?}"
    );
    assert!(bottom[1] > 200, "bottom should be white, got {bottom:?}");
}

#[test]
fn transparency_is_composited_on_white() {
    let img = RgbaImage::from_pixel(64, 64, Rgba([0, 0, 0, 0]));
    let mut png = Vec::new();
    image::codecs::png::PngEncoder::new(&mut png)
        .write_image(img.as_raw(), 64, 64, image::ExtendedColorType::Rgba8)
        .unwrap();
    let d = decode(&png, &Limits::default()).unwrap();
    assert_eq!(d.image.get_pixel(10, 10).0, [255, 255, 255]);
}

#[test]
fn sixteen_bit_and_gray_pngs_decode() {
    let gray16 = image::ImageBuffer::<image::Luma<u16>, _>::from_fn(80, 60, |x, _| {
        image::Luma([(x * 800) as u16])
    });
    let mut png = Vec::new();
    image::codecs::png::PngEncoder::new(&mut png)
        .write_image(
            bytemuck_u16(gray16.as_raw()),
            80,
            60,
            image::ExtendedColorType::L16,
        )
        .unwrap();
    let d = decode(&png, &Limits::default()).unwrap();
    assert_eq!(d.image.dimensions(), (80, 60));
    let p = d.image.get_pixel(79, 0);
    assert!(p[0] == p[1] && p[1] == p[2] && p[0] > 200);
}

fn bytemuck_u16(v: &[u16]) -> &[u8] {
    // PNG encoders take native-endian u16 samples as bytes.
    unsafe { std::slice::from_raw_parts(v.as_ptr() as *const u8, v.len() * 2) }
}

#[test]
fn hostile_inputs_get_stable_codes() {
    assert_eq!(code(b""), ErrorCode::EmptyObject);
    assert_eq!(
        code(b"this is a text file renamed to photo.jpg\n"),
        ErrorCode::UnsupportedFormat
    );
    assert_eq!(
        code(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3"),
        ErrorCode::UnsupportedFormat
    );
    assert_eq!(
        code(&[0xFF, 0xD8, 0xFF, 0xE0, 1, 2, 3]),
        ErrorCode::CorruptImage
    );
    assert_eq!(
        code(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"),
        ErrorCode::CorruptImage
    );

    let png = fixture("chelsea.png");
    assert_eq!(
        code(&png[..png.len() / 2]),
        ErrorCode::CorruptImage,
        "truncated PNG"
    );

    let tiny = encode(&RgbImage::new(16, 16), image::ImageFormat::Png);
    assert_eq!(code(&tiny), ErrorCode::ImageTooSmall);
}

#[test]
fn decompression_bombs_are_refused_from_the_header() {
    // A PNG header declaring 60000×60000 (3.6 gigapixels) followed by nothing useful.
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = b"IHDR".to_vec();
    ihdr.extend_from_slice(&60000u32.to_be_bytes());
    ihdr.extend_from_slice(&60000u32.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    png.extend_from_slice(&13u32.to_be_bytes());
    png.extend_from_slice(&ihdr);
    png.extend_from_slice(&crc32(&ihdr).to_be_bytes());
    let err = probe(&png, &Limits::default()).unwrap_err();
    assert_eq!(err.code, ErrorCode::TooManyPixels, "{err}");

    // A real photo is refused by a small configured limit before decoding.
    let err = decode(&fixture("coffee.png"), &Limits::new(100_000)).unwrap_err();
    assert_eq!(err.code, ErrorCode::TooManyPixels);
    assert!(err.message.contains("600×400"), "{}", err.message);
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[test]
fn jpeg_conversion_respects_bounds() {
    let webp = encode(
        &decode(&fixture("coffee.png"), &Limits::default())
            .unwrap()
            .image,
        image::ImageFormat::WebP,
    );
    let jpeg = to_jpeg(&webp, &Limits::default(), 80, 300, 5 << 20).unwrap();
    let p = probe(&jpeg, &Limits::default()).unwrap();
    assert_eq!((p.format, p.width, p.height), (ImageFormat::Jpeg, 300, 200));

    let small = encode(
        &RgbImage::from_pixel(40, 50, image::Rgb([9, 9, 9])),
        image::ImageFormat::Png,
    );
    let jpeg = to_jpeg(&small, &Limits::default(), 80, 10_000, 5 << 20).unwrap();
    let p = probe(&jpeg, &Limits::default()).unwrap();
    assert_eq!((p.width, p.height), (80, 100));
}

fn variant(name: &str) -> Vec<u8> {
    snaplabel_fixtures::read(&format!("variants/{name}"))
}

/// Mean absolute difference per channel between two same-sized images.
fn difference(a: &RgbImage, b: &RgbImage) -> f64 {
    assert_eq!(a.dimensions(), b.dimensions());
    let total: u64 = a
        .as_raw()
        .iter()
        .zip(b.as_raw())
        .map(|(x, y)| (*x as i32 - *y as i32).unsigned_abs() as u64)
        .sum();
    total as f64 / a.as_raw().len() as f64
}

#[test]
fn jpeg_flavours_decode_with_the_right_colours_on_both_paths() {
    let reference = decode(&fixture("chelsea.png"), &Limits::default())
        .unwrap()
        .image;
    let reference =
        image::imageops::resize(&reference, 240, 160, image::imageops::FilterType::Triangle);
    let gray_reference = image::DynamicImage::ImageRgb8(reference.clone())
        .grayscale()
        .into_rgb8();
    for (name, against) in [
        ("chelsea-cmyk.jpg", &reference),
        ("chelsea-progressive.jpg", &reference),
        ("chelsea-gray.jpg", &gray_reference),
    ] {
        let bytes = variant(name);
        let full = decode(&bytes, &Limits::default()).unwrap().image;
        let fast = snaplabel_imageio::decode_at_least(&bytes, &Limits::default(), 1000)
            .unwrap()
            .image;
        for (path, image) in [("image crate", &full), ("DCT path", &fast)] {
            let d = difference(image, against);
            assert!(
                d < 12.0,
                "{name} via {path}: mean difference {d:.1} (inverted or shifted colours?)"
            );
        }
    }
}

/// The rocket photo enlarged to a phone-like size, as a JPEG.
fn big_rocket_jpeg(width: u32, height: u32) -> Vec<u8> {
    let rocket = decode(&fixture("rocket.jpg"), &Limits::default()).unwrap();
    let big = image::imageops::resize(
        &rocket.image,
        width,
        height,
        image::imageops::FilterType::Triangle,
    );
    encode(&big, image::ImageFormat::Jpeg)
}

#[test]
fn dct_scaling_shrinks_big_jpegs_at_decode_time() {
    let jpeg = big_rocket_jpeg(2560, 1708);
    let d = snaplabel_imageio::decode_at_least(&jpeg, &Limits::default(), 256).unwrap();
    assert_eq!(
        (d.probe.width, d.probe.height),
        (2560, 1708),
        "the probe reports the real size"
    );
    // 1/4 scale: 640×427, the smallest DCT scale whose short side is still ≥ 256.
    assert_eq!(d.image.dimensions(), (640, 427));
}

#[test]
fn dct_path_applies_exif_orientation_too() {
    let img = RgbImage::from_fn(800, 400, |x, _| {
        if x < 100 {
            image::Rgb([255, 0, 0])
        } else {
            image::Rgb([255, 255, 255])
        }
    });
    let jpeg =
        snaplabel_fixtures::with_exif_orientation(&encode(&img, image::ImageFormat::Jpeg), 6);
    // 1/4 (jpeg-decoder) and 1/8 (DC coefficients only, `jpeg_dc`).
    for (min_side, upright) in [(100, (100, 200)), (50, (50, 100))] {
        let d = snaplabel_imageio::decode_at_least(&jpeg, &Limits::default(), min_side).unwrap();
        assert_eq!(d.image.dimensions(), upright);
        let top = d.image.get_pixel(upright.0 / 2, 1);
        assert!(top[0] > 200 && top[1] < 80, "{min_side}: {top:?}");
    }
}

#[test]
fn animated_gifs_give_their_first_frame() {
    let d = decode(&variant("chelsea-animated.gif"), &Limits::default()).unwrap();
    assert_eq!(d.image.dimensions(), (240, 160));
    // The second frame is black; the first is the cat.
    let mean: f64 =
        d.image.as_raw().iter().map(|&v| v as f64).sum::<f64>() / d.image.as_raw().len() as f64;
    assert!(mean > 40.0, "mean {mean}");
}

#[test]
fn damaged_big_jpegs_on_the_eighth_scale_path_end_in_a_code_or_pixels() {
    // Big enough that `decode_at_least` takes the DC-coefficient path; damage makes it decline
    // and the general decoders decide: pixels (they fill what is missing) or a stable code.
    let jpeg = big_rocket_jpeg(2304, 2048);
    let whole = snaplabel_imageio::decode_at_least(&jpeg, &Limits::default(), 256).unwrap();
    assert_eq!(whole.image.dimensions(), (288, 256));
    for cut in [jpeg.len() / 5, jpeg.len() / 2, jpeg.len() - 3] {
        match snaplabel_imageio::decode_at_least(&jpeg[..cut], &Limits::default(), 256) {
            // The general decoders fill what is missing, at whatever scale they manage.
            Ok(d) => {
                let (w, h) = d.image.dimensions();
                assert!(h >= 256 && w * 2048 == h * 2304, "cut at {cut}: {w}×{h}");
            }
            Err(e) => assert!(e.code == ErrorCode::CorruptImage, "cut at {cut}: {e}"),
        }
    }
    let mut scrambled = jpeg.clone();
    for i in (jpeg.len() / 3..jpeg.len() / 3 + 4000).step_by(7) {
        scrambled[i] ^= 0x5A;
    }
    if let Err(e) = snaplabel_imageio::decode_at_least(&scrambled, &Limits::default(), 256) {
        assert_eq!(e.code, ErrorCode::CorruptImage, "{e}");
    }
}

#[test]
fn mutated_files_of_every_format_end_in_a_code_or_pixels() {
    // Seeded mutations (flipped, overwritten, deleted, inserted bytes, dimension-sized runs of
    // 0xFF, truncation) of one small file per container and of the JPEG variants. A longer run
    // of this (300 000 cases, also the fixtures) found nothing; this keeps the property in CI.
    let small = RgbImage::from_fn(96, 72, |x, y| {
        image::Rgb([(x * 7) as u8, (y * 5) as u8, ((x * y) % 251) as u8])
    });
    let mut seeds: Vec<Vec<u8>> = [
        image::ImageFormat::Jpeg,
        image::ImageFormat::Png,
        image::ImageFormat::WebP,
        image::ImageFormat::Gif,
        image::ImageFormat::Bmp,
        image::ImageFormat::Tiff,
    ]
    .into_iter()
    .map(|f| encode(&small, f))
    .collect();
    seeds.extend(
        [
            "chelsea-progressive-restarts.jpg",
            "chelsea-gray.jpg",
            "chelsea-animated.gif",
        ]
        .map(variant),
    );
    let expected = [
        ErrorCode::CorruptImage,
        ErrorCode::UnsupportedFormat,
        ErrorCode::ImageTooSmall,
        ErrorCode::TooManyPixels,
        ErrorCode::EmptyObject,
    ];
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for case in 0..360 {
        let mut bytes = seeds[case % seeds.len()].clone();
        let kind = next() % 5;
        for _ in 0..1 + next() % 6 {
            let at = next() as usize % bytes.len();
            match kind {
                0 => bytes[at] ^= next() as u8 | 1,
                1 => bytes[at] = [0x00, 0xFF, 0x7F, 0x80][next() as usize % 4],
                2 => {
                    let end = (at + 1 + next() as usize % 48).min(bytes.len() - 1);
                    bytes.drain(at..end.max(at));
                }
                3 => {
                    let run: Vec<u8> = (0..1 + next() % 24).map(|_| next() as u8).collect();
                    bytes.splice(at..at, run);
                }
                _ => {
                    let end = (at + 4).min(bytes.len());
                    bytes[at..end].fill(0xFF);
                }
            }
        }
        if next() % 4 == 0 {
            bytes.truncate(next() as usize % bytes.len());
        }
        match snaplabel_imageio::decode_at_least(&bytes, &Limits::default(), 256) {
            Ok(d) => {
                let (w, h) = d.image.dimensions();
                assert!(w > 0 && h > 0, "case {case}: an empty image");
            }
            Err(e) => assert!(expected.contains(&e.code), "case {case}: {e}"),
        }
    }
}

/// What the `image` crate itself makes of a PNG (its own decoder, no shrinking), as RGB8 on white.
fn image_crate_rgb(png: &[u8]) -> RgbImage {
    snaplabel_imageio::flatten_to_rgb8(image::load_from_memory(png).unwrap())
}

#[test]
fn pngs_streamed_row_by_row_match_the_image_crate() {
    // Whole size: the same pixels as the image crate's decoder, for every PNG flavour here.
    let rgba = RgbaImage::from_fn(97, 61, |x, y| {
        Rgba([(x * 3) as u8, (y * 4) as u8, 90, (x + y) as u8])
    });
    let mut rgba_png = Vec::new();
    image::codecs::png::PngEncoder::new(&mut rgba_png)
        .write_image(rgba.as_raw(), 97, 61, image::ExtendedColorType::Rgba8)
        .unwrap();
    let interlaced = snaplabel_fixtures::hostile::png_interlaced_rgb8(101, 67, |x, y| {
        [(x * 2) as u8, (y * 3) as u8, ((x * y) % 251) as u8]
    });
    for (name, png) in [
        ("chelsea", fixture("chelsea.png")),
        ("coffee", fixture("coffee.png")),
        ("rgba", rgba_png),
        ("interlaced", interlaced.clone()),
    ] {
        let ours = decode(&png, &Limits::default()).unwrap().image;
        assert_eq!(ours, image_crate_rgb(&png), "{name}");
    }
    // Shrunk: each output pixel the mean of its block, also when the rows arrive as Adam7
    // passes.
    let big = snaplabel_fixtures::hostile::png_interlaced_rgb8(1200, 800, |x, y| {
        [(x / 5) as u8, (y / 4) as u8, ((x + y) % 256) as u8]
    });
    let shrunk = snaplabel_imageio::decode_at_least(&big, &Limits::default(), 256)
        .unwrap()
        .image;
    let whole = image_crate_rgb(&big);
    assert_eq!(shrunk.dimensions(), (400, 267));
    for (x, y) in [(0, 0), (10, 20), (399, 265), (200, 133)] {
        let mean = |c: usize| {
            let values: Vec<u32> = (0..3)
                .flat_map(|dy| (0..3).map(move |dx| (x * 3 + dx, y * 3 + dy)))
                .map(|(xx, yy)| whole.get_pixel(xx, yy)[c] as u32)
                .collect();
            ((values.iter().sum::<u32>() + 4) / 9) as u8
        };
        assert_eq!(
            shrunk.get_pixel(x, y).0,
            [mean(0), mean(1), mean(2)],
            "({x}, {y})"
        );
    }
}

#[test]
fn big_deep_pngs_are_shrunk_while_decoding_and_oriented_afterwards() {
    // The attack: 8000×8000 16-bit RGBA with EXIF orientation 6, half a gigabyte decoded whole.
    let png = snaplabel_fixtures::hostile::png_rgba16(8000, 6000, Some(6));
    let whole = decode(&png, &Limits::default()).unwrap_err();
    assert_eq!(whole.code, ErrorCode::TooManyPixels, "{whole}");
    let d = snaplabel_imageio::decode_at_least(&png, &Limits::default(), 256).unwrap();
    assert_eq!((d.probe.width, d.probe.height), (6000, 8000), "upright");
    assert_eq!(
        d.image.dimensions(),
        (261, 348),
        "shrunk by 23, then turned"
    );
    assert_eq!(d.memory.bytes(), 261 * 348 * 3);
}
