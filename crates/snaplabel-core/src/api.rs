//! Bodies of the presign HTTP API: `/api/uploads` (create, history, delete), `/api/search`,
//! `/api/labels` and `/api/exports`.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// `POST /api/uploads` body. `size` is kept loose here so that a missing or non-numeric size is
/// reported as `invalid_size` rather than as malformed JSON.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CreateUploadRequest {
    #[serde(default)]
    pub filename: Option<String>,
    #[serde(default)]
    pub content_type: Option<String>,
    #[serde(default)]
    pub size: Option<serde_json::Value>,
}

/// `201 Created` answer to `POST /api/uploads`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CreateUploadResponse {
    pub id: String,
    pub upload: PresignedUpload,
    pub result: ResultLocation,
    /// RFC 3339 UTC instant after which the URLs stop working.
    pub expires_at: String,
}

/// How to send the image: the exact method, URL and headers that were signed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PresignedUpload {
    pub url: String,
    pub method: String,
    /// Headers the request must carry exactly as given (Content-Type among them). The body must be
    /// exactly the declared size: Content-Length is signed too.
    pub headers: BTreeMap<String, String>,
}

/// Where the result document will appear, with separately presigned HEAD and GET URLs (the
/// method is part of a SigV4 signature).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResultLocation {
    pub key: String,
    pub head_url: String,
    pub get_url: String,
}

/// `GET /api/uploads` answer: the caller's uploads, newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UploadHistory {
    pub uploads: Vec<UploadSummary>,
    /// Pass as `?before=` for the next (older) page; absent on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_before: Option<String>,
    /// When the URLs in this page stop working.
    pub expires_at: String,
}

/// One earlier upload with fresh presigned URLs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UploadSummary {
    pub id: String,
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filename: Option<String>,
    pub content_type: String,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uploaded_at: Option<String>,
    /// Presigned GET of the image itself (thumbnails).
    pub image_url: String,
    pub result: ResultLocation,
}

/// `GET /api/search?q=dog` (words, as typed) or `?label=Dog` (one label, as a chip names it):
/// the guest's labeled uploads matching, newest first, a page at a time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SearchAnswer {
    /// How many uploads match in all (the page holds at most `limit`).
    pub total: usize,
    /// The labels, parents and aliases that matched, with how many uploads carry each.
    pub labels: Vec<crate::gallery::LabelCount>,
    pub uploads: Vec<UploadSummary>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_before: Option<String>,
    pub expires_at: String,
}

/// `GET /api/labels`: every label of the guest's gallery with its count, most common first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GalleryLabels {
    /// Labeled uploads in the gallery.
    pub uploads: usize,
    pub labels: Vec<crate::gallery::LabelCount>,
}

/// `POST /api/exports` body: `{"format": "csv"}` or `{"format": "ndjson"}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ExportRequest {
    #[serde(default)]
    pub format: Option<String>,
}

/// `201 Created` answer to `POST /api/exports`: a presigned GET of the file (served as an
/// attachment named `filename`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExportResponse {
    pub url: String,
    pub filename: String,
    pub content_type: String,
    /// Uploads in the file.
    pub uploads: usize,
    pub expires_at: String,
}

/// Cognito's pattern for identity ids (`[\w-]+:[0-9a-f-]+`, 1–55 characters): anything else is
/// refused before it is looked up or trusted.
pub fn is_cognito_identity_id(id: &str) -> bool {
    let Some((region, guid)) = id.split_once(':') else {
        return false;
    };
    (1..=55).contains(&id.len())
        && !region.is_empty()
        && region
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        && !guid.is_empty()
        && guid
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b) || b == b'-')
}

/// How a guest proves who it is to the presign API: `Authorization: Bearer <token>`, the token
/// being the OpenID token Cognito's `GetOpenIdToken` gave for the guest's identity. The identity
/// id itself never travels to the API.
pub const BEARER_PREFIX: &str = "Bearer ";

/// User metadata key recording the client's original file name (percent-encoded: headers are
/// ASCII).
pub const FILENAME_METADATA: &str = "original-filename";

/// S3 refuses an object whose user metadata (keys and values, in UTF-8 bytes) exceeds 2 KB. The
/// encoded file name is kept to half of that, so the key and any other metadata still fit.
pub const MAX_FILENAME_METADATA_BYTES: usize = 1024;

/// The `x-amz-meta-original-filename` value for a client's file name: percent-encoded, and cut
/// on a character boundary (the extension kept, `…` marking the cut) to at most
/// [`MAX_FILENAME_METADATA_BYTES`]. `None` for a blank name.
pub fn filename_metadata(name: &str) -> Option<String> {
    const CUT_MARK: &str = "…";
    let encode = |s: &str| {
        percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
    };
    let name = name.trim();
    if name.is_empty() {
        return None;
    }
    let whole = encode(name);
    if whole.len() <= MAX_FILENAME_METADATA_BYTES {
        return Some(whole);
    }
    // An extension is a short run of letters and digits after the last dot; anything longer is
    // part of the name and may be cut.
    let (stem, extension) = match name.rsplit_once('.') {
        Some((stem, ext))
            if !stem.is_empty()
                && (1..=10).contains(&ext.chars().count())
                && ext.chars().all(char::is_alphanumeric) =>
        {
            (stem, encode(&format!(".{ext}")))
        }
        _ => (name, String::new()),
    };
    let budget = MAX_FILENAME_METADATA_BYTES - extension.len() - encode(CUT_MARK).len();
    let mut kept = String::new();
    let mut used = 0;
    for c in stem.chars() {
        let mut buf = [0u8; 4];
        let encoded = encode(c.encode_utf8(&mut buf)).len();
        if used + encoded > budget {
            break;
        }
        used += encoded;
        kept.push(c);
    }
    Some(format!("{}{}{extension}", encode(&kept), encode(CUT_MARK)))
}

/// The file name recorded by [`filename_metadata`], decoded.
pub fn filename_from_metadata(value: &str) -> String {
    percent_encoding::percent_decode_str(value)
        .decode_utf8_lossy()
        .into_owned()
}

/// `/config.json`: everything the browser app needs to find its backend, so one build of the
/// app works under `snaplabel dev` and on S3/CloudFront. `snaplabel dev` serves it; the deploy
/// command writes it from the stack outputs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BrowserConfig {
    /// Base of the presign API, e.g. `http://127.0.0.1:8080/api` or `<function URL>api`.
    pub api_base: String,
    #[serde(default)]
    pub region: String,
    pub identity: BrowserIdentity,
    pub limits: BrowserLimits,
    /// `local` or `rekognition`, for display.
    #[serde(default)]
    pub labeler: String,
}

/// Where the app gets its guest identity (`GetId`, once per browser) and the proof of it it
/// sends to the API (`GetOpenIdToken`, valid for minutes). Both calls are unsigned, as in AWS.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BrowserIdentity {
    /// Cognito Identity endpoint (awsJson1_1).
    pub endpoint: String,
    pub pool_id: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BrowserLimits {
    pub max_upload_bytes: u64,
    pub content_types: Vec<String>,
}

impl BrowserConfig {
    /// The configuration for a backend; content types are every format snaplabel labels.
    pub fn new(
        api_base: impl Into<String>,
        region: impl Into<String>,
        identity_endpoint: impl Into<String>,
        pool_id: impl Into<String>,
        max_upload_bytes: u64,
        labeler: impl Into<String>,
    ) -> Self {
        BrowserConfig {
            api_base: api_base.into(),
            region: region.into(),
            identity: BrowserIdentity {
                endpoint: identity_endpoint.into(),
                pool_id: pool_id.into(),
            },
            limits: BrowserLimits {
                max_upload_bytes,
                content_types: crate::ImageFormat::ALL
                    .iter()
                    .map(|f| f.content_type().to_string())
                    .collect(),
            },
            labeler: labeler.into(),
        }
    }

    /// Amazon Cognito Identity's public endpoint in `region`.
    pub fn cognito_endpoint(region: &str) -> String {
        format!("https://cognito-identity.{region}.amazonaws.com/")
    }

    /// `api_base` joined with a path, without doubling the slash.
    pub fn api_url(&self, path: &str) -> String {
        format!(
            "{}/{}",
            self.api_base.trim_end_matches('/'),
            path.trim_start_matches('/')
        )
    }
}

/// The browser app's Content-Security-Policy: scripts, styles and the API from the app's own
/// origin (WebAssembly compiled from it), images and uploads to the bucket, the guest identity
/// from Cognito; nothing else, no framing, no plugins, no forms. CloudFront sends it in AWS
/// (infra/template.yaml spells out the same policy, and its tests compare the two);
/// `snaplabel dev` sends it with the app too, so the browser tests run under it.
pub fn content_security_policy(bucket_origin: &str, identity_origin: &str) -> String {
    format!(
        "default-src 'none'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self' 'unsafe-inline'; \
         img-src 'self' data: blob: {bucket_origin}; connect-src 'self' {bucket_origin} {identity_origin}; \
         base-uri 'none'; form-action 'none'; frame-ancestors 'none'; object-src 'none'"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_ids_follow_cognitos_pattern() {
        assert!(is_cognito_identity_id(
            "eu-west-1:6f1c2a3b-1d2f-4a5b-9c8d-7e6f5a4b3c2d"
        ));
        for bad in [
            "",
            "no-colon",
            "us-east-1:XYZ",
            "us-east-1:",
            ":abc",
            "us-east-1:0b7a6c4e/../x",
            &format!("us-east-1:{}", "a".repeat(60)),
        ] {
            assert!(!is_cognito_identity_id(bad), "{bad}");
        }
    }

    #[test]
    fn the_content_security_policy_names_exactly_its_origins() {
        let csp =
            content_security_policy("https://b.s3.eu-west-1.amazonaws.com", "https://id.example");
        assert!(csp.contains(
            "connect-src 'self' https://b.s3.eu-west-1.amazonaws.com https://id.example;"
        ));
        assert!(csp.contains("frame-ancestors 'none'"));
        assert!(!csp.contains('*'), "no wildcard source");
        assert!(!csp.contains("  "), "{csp}");
    }

    #[test]
    fn browser_config_round_trips_and_joins_paths() {
        let config = BrowserConfig::new(
            "https://abc.lambda-url.eu-west-1.on.aws/api",
            "eu-west-1",
            BrowserConfig::cognito_endpoint("eu-west-1"),
            "eu-west-1:pool",
            20_000_000,
            "local",
        );
        assert_eq!(
            config.api_url("/uploads"),
            "https://abc.lambda-url.eu-west-1.on.aws/api/uploads"
        );
        assert_eq!(
            config.identity.endpoint,
            "https://cognito-identity.eu-west-1.amazonaws.com/"
        );
        assert!(config.limits.content_types.contains(&"image/jpeg".into()));
        let json = serde_json::to_string(&config).unwrap();
        assert_eq!(
            serde_json::from_str::<BrowserConfig>(&json).unwrap(),
            config
        );
    }

    #[test]
    fn file_names_fit_s3_metadata_and_keep_their_extension() {
        assert_eq!(filename_metadata("  "), None);
        assert_eq!(filename_metadata("cat.jpg").as_deref(), Some("cat%2Ejpg"));
        for name in [
            "a".repeat(1024) + ".jpeg",
            "猫".repeat(1024) + ".png",
            "😀".repeat(700) + ".webp",
            "x".repeat(5000),
            "é".repeat(300) + "." + &"b".repeat(40),
        ] {
            let value = filename_metadata(&name).unwrap();
            assert!(
                value.len() <= MAX_FILENAME_METADATA_BYTES,
                "{} bytes",
                value.len()
            );
            assert!(value.is_ascii());
            let back = filename_from_metadata(&value);
            assert!(back.contains('…'), "{back}");
            let prefix: String = back.split('…').next().unwrap().to_string();
            assert!(name.starts_with(&prefix), "cut on a character boundary");
            if let Some((_, ext)) = name.rsplit_once('.').filter(|(_, e)| e.len() <= 10) {
                assert!(back.ends_with(&format!(".{ext}")), "{back}");
            }
        }
        // A name that fits is kept whole, whatever its script.
        let name = "Überraschung 猫 (1).HEIC.jpg";
        assert_eq!(
            filename_from_metadata(&filename_metadata(name).unwrap()),
            name
        );
    }
}
