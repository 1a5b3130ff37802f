//! AWS-compatible endpoints on 127.0.0.1, so the AWS SDK code paths of snaplabel run for real
//! without an account or a network.
//!
//! - [`s3`]: an S3 server over a folder (s3s + s3s-fs), path-style, SigV4-verified, as an axum
//!   router with CORS (tower-http), refusing unsigned metadata and browser form uploads.
//! - [`local_fs`]: s3s-fs plus bucket notifications (s3s-fs has none), S3's metadata limit,
//!   race-free conditional creation, and whole-object reads in one go.
//! - [`aws_json`]: the awsJson1_1 route for [`cognito`] (guest identities and their tokens) and
//!   [`rekognition`] (`DetectLabels` over any [`rekognition::DetectLabelsBackend`]), checking
//!   SigV4 signatures ([`sigv4`]) as AWS does.
//! - [`guard`]: the Host allow-list every local port has (DNS rebinding).
//! - [`server`]: `axum::serve` on a loopback listener with read timeouts.
//!
//! Nothing secret is a constant: [`Credentials::for_data_dir`] makes the key pair of a data
//! folder, [`secret_file`] keeps such secrets readable by their owner only.

pub mod aws_json;
pub mod cognito;
pub mod guard;
pub mod local_fs;
pub mod rekognition;
pub mod s3;
pub mod server;
pub mod sigv4;

pub use server::ServerHandle;

/// The key pair the local endpoints accept (SigV4), made per data folder.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub access_key: String,
    pub secret_key: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credentials({}, <secret>)", self.access_key)
    }
}

impl Credentials {
    pub fn new(access_key: impl Into<String>, secret_key: impl Into<String>) -> Self {
        Credentials {
            access_key: access_key.into(),
            secret_key: secret_key.into(),
        }
    }

    /// The data folder's key pair (`credentials`: the access key, then the secret, one per line),
    /// made from the system's random source on first use.
    pub fn for_data_dir(data_dir: &std::path::Path) -> std::io::Result<Self> {
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
        let text = secret_file(&data_dir.join("credentials"), || {
            let mut random = [0u8; 51];
            aws_lc_rs::rand::fill(&mut random)
                .map_err(|_| std::io::Error::other("no random source for the local credentials"))?;
            let pick = |bytes: &[u8]| -> String {
                bytes
                    .iter()
                    .map(|b| ALPHABET[(b % 32) as usize] as char)
                    .collect()
            };
            // AWS's shapes: a 20-character access key id, a 40-character secret.
            let access_key = format!("SNAPLABEL{}", pick(&random[..11]));
            let secret_key: String = pick(&random[11..]).to_lowercase();
            Ok(format!("{access_key}\n{secret_key}\n").into_bytes())
        })?;
        let text = String::from_utf8_lossy(&text);
        let mut lines = text.lines().map(str::trim);
        match (lines.next(), lines.next()) {
            (Some(access), Some(secret)) if !access.is_empty() && !secret.is_empty() => {
                Ok(Credentials::new(access, secret))
            }
            _ => Err(std::io::Error::other(format!(
                "{} is not an access key and a secret on two lines",
                data_dir.join("credentials").display()
            ))),
        }
    }
}

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
