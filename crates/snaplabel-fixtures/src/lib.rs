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

#[cfg(test)]
mod tests {
    #[test]
    fn the_photos_are_there() {
        assert!(super::photo("chelsea.png").starts_with(b"\x89PNG"));
    }
}
