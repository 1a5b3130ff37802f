//! AWS-compatible endpoints on 127.0.0.1, so the AWS SDK code paths of snaplabel run for real
//! without an account or a network.
//!
//! - [`s3`]: an S3 server over a folder (s3s + s3s-fs), path-style, SigV4-verified, with the CORS
//!   layer s3s lacks (preflight answered without auth, `ETag` exposed).
//! - [`local_fs`]: s3s-fs plus bucket notifications (s3s-fs has none) and whole-object reads in
//!   one go (s3s-fs reads GET bodies 4 KB at a time).
//! - [`rekognition`]: Rekognition `DetectLabels` (awsJson1_1) over any [`rekognition::DetectLabelsBackend`].
//! - [`cognito`]: Cognito Identity `GetId` / `DescribeIdentity` for one unauthenticated guest pool,
//!   persisted in a JSON file.
//! - [`server`]: the small hyper server all of them share.

pub mod cognito;
pub mod local_fs;
pub mod rekognition;
pub mod s3;
pub mod server;

pub use server::{Body, ServerHandle};

/// A secret kept in a file of the data directory, readable by its owner only: read if it exists,
/// else made by `make` and written atomically (a crash never leaves half a key behind).
pub fn secret_file(
    path: &std::path::Path,
    make: impl FnOnce() -> std::io::Result<Vec<u8>>,
) -> std::io::Result<Vec<u8>> {
    use std::io::Write;
    match std::fs::read(path) {
        Ok(secret) => return Ok(secret),
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
        Err(_) => {}
    }
    let secret = make()?;
    let partial = path.with_extension("partial");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(&partial)?.write_all(&secret)?;
    std::fs::rename(&partial, path)?;
    Ok(secret)
}
