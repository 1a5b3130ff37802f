//! Where the repository's test fixtures are, for the tests and benchmarks of every crate:
//! `fixtures/photos` (real photos, licences in its LICENSES.md), `fixtures/variants` (re-encodings
//! of them), `fixtures/events` (sample S3 events); and [`hostile`] images made on the spot.

pub mod hostile;

use std::path::{Path, PathBuf};

/// The `fixtures` folder at the top of the repository being tested.
///
/// Found from the package Cargo is running (it sets `CARGO_MANIFEST_DIR` for tests and `cargo
/// run`), then from where this crate was compiled: a build directory shared by several checkouts
/// keeps this crate from whichever checkout compiled it first, so a path fixed at compile time
/// can point into another (even deleted) checkout.
pub fn dir() -> PathBuf {
    let running = std::env::var_os("CARGO_MANIFEST_DIR").map(PathBuf::from);
    let compiled = Path::new(env!("CARGO_MANIFEST_DIR"));
    running
        .iter()
        .map(PathBuf::as_path)
        .chain([compiled])
        .flat_map(Path::ancestors)
        .map(|dir| dir.join("fixtures"))
        .find(|fixtures| fixtures.join("photos").is_dir())
        .unwrap_or_else(|| compiled.join("../../fixtures"))
}

/// The folder of real photos.
pub fn photos() -> PathBuf {
    dir().join("photos")
}

/// A fixture's path, e.g. `"variants/chelsea-cmyk.jpg"`.
pub fn path(relative: &str) -> PathBuf {
    dir().join(relative)
}

/// A fixture's bytes; a missing fixture fails the test with its path.
pub fn read(relative: &str) -> Vec<u8> {
    let path = path(relative);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A real photo's bytes, by file name.
pub fn photo(name: &str) -> Vec<u8> {
    read(&format!("photos/{name}"))
}

/// A JPEG with an APP1 EXIF segment holding only `orientation` (1–8), inserted right after SOI.
pub fn with_exif_orientation(jpeg: &[u8], orientation: u16) -> Vec<u8> {
    assert!(jpeg.starts_with(&[0xFF, 0xD8]), "not a JPEG");
    let mut payload = b"Exif\0\0".to_vec();
    payload.extend_from_slice(&hostile::exif_orientation(orientation));
    let mut out = jpeg[..2].to_vec();
    out.extend_from_slice(&[0xFF, 0xE1]);
    out.extend_from_slice(&((payload.len() + 2) as u16).to_be_bytes());
    out.extend_from_slice(&payload);
    out.extend_from_slice(&jpeg[2..]);
    out
}

/// A photo as a phone stores it when held upright: the sensor's pixels turned a quarter to the
/// left, and EXIF orientation 6 ("turn 90° clockwise to show") to put it right. Shown as EXIF
/// says, it is `photo` (re-encoded as a JPEG at quality 90).
pub fn stored_sideways(photo: &[u8]) -> Vec<u8> {
    let upright = image::load_from_memory(photo).expect("a photo").to_rgb8();
    let stored = image::imageops::rotate270(&upright);
    let mut jpeg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 90)
        .encode_image(&stored)
        .expect("JPEG encoding");
    with_exif_orientation(&jpeg, 6)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_photos_are_there() {
        assert!(super::photo("chelsea.png").starts_with(b"\x89PNG"));
    }

    #[test]
    fn a_sideways_photo_is_stored_turned_with_orientation_6() {
        let sideways = super::stored_sideways(&super::photo("home.jpg"));
        let stored = image::load_from_memory(&sideways).unwrap();
        // The image crate does not apply EXIF: it sees the stored, portrait pixels.
        assert_eq!((stored.width(), stored.height()), (384, 512));
        let app1 = &sideways[2..4];
        assert_eq!(app1, [0xFF, 0xE1]);
        assert!(sideways[6..12].starts_with(b"Exif\0\0"));
    }
}
