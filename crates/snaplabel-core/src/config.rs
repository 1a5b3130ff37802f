//! [`Settings`]: everything the handlers, the wiring and the local model need, in one typed value.
//! The Lambda functions read it from environment variables once at start
//! (`snaplabel_pipeline::wiring::settings_from_env`, the only place that reads them); `snaplabel
//! dev` fills it from its command line. Every crate takes it; none reads the environment itself.
//!
//! Parsing takes a lookup function instead of reading the process environment, so it is pure and
//! tested without touching global state.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

/// Rekognition reads S3 objects up to 15 MB; a phone's JPEG is 2–8 MB.
pub const DEFAULT_MAX_UPLOAD_BYTES: u64 = 15 * 1024 * 1024;
/// A 64 MP guard against decompression bombs: bigger than any phone photo, small enough that
/// even an undownscalable PNG of that size fits a 1 GB Lambda.
pub const DEFAULT_MAX_PIXELS: u64 = 64_000_000;
pub const DEFAULT_URL_EXPIRY_SECS: u64 = 900;
/// Presigned URLs signed with SigV4 are valid for at most 7 days.
pub const MAX_URL_EXPIRY_SECS: u64 = 7 * 24 * 3600;
/// Upload URLs one guest may get per hour.
pub const DEFAULT_UPLOADS_PER_HOUR: u32 = 100;
/// Who signs the OpenID tokens of Amazon Cognito identity pools.
pub const COGNITO_TOKEN_ISSUER: &str = "https://cognito-identity.amazonaws.com";
/// Bytes the decoding of one image may hold at once when nothing says how much memory the process
/// has: every pixel buffer (bit depth and alpha included) a decoder and the conversion to RGB
/// need. Bigger images decode downscaled as they stream in (PNG) or are refused unread.
pub const DEFAULT_DECODE_BUDGET_BYTES: u64 = 192 * 1024 * 1024;
/// The smallest decode budget: enough for a 12 MP photo decoded whole.
pub const MIN_DECODE_BUDGET_BYTES: u64 = 64 * 1024 * 1024;
/// What a label function needs besides decoding: the runtime, the four networks and ONNX Runtime
/// (measured ~200 MB resident), inference scratch and the downloaded bytes.
pub const LABEL_FUNCTION_BASE_BYTES: u64 = 512 * 1024 * 1024;

/// The decode budget of a function with `memory_mb` of memory (`AWS_LAMBDA_FUNCTION_MEMORY_SIZE`):
/// half of what is left after [`LABEL_FUNCTION_BASE_BYTES`], between
/// [`MIN_DECODE_BUDGET_BYTES`] and [`DEFAULT_DECODE_BUDGET_BYTES`], so that no accepted input
/// can exhaust the function's memory.
pub fn decode_budget_for_memory_mb(memory_mb: u64) -> u64 {
    let memory = memory_mb.saturating_mul(1024 * 1024);
    (memory.saturating_sub(LABEL_FUNCTION_BASE_BYTES) / 2)
        .clamp(MIN_DECODE_BUDGET_BYTES, DEFAULT_DECODE_BUDGET_BYTES)
}

/// The key of the one-way function from guest identity ids to the owner segment of keys. A secret:
/// with it, anyone who guessed an identity id could compute its owner segment. Never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct OwnerKey(String);

impl OwnerKey {
    pub const MIN_LEN: usize = 32;

    pub fn new(key: impl Into<String>) -> Result<Self, ConfigError> {
        let key = key.into();
        if key.len() < Self::MIN_LEN {
            return Err(ConfigError::invalid(
                "SNAPLABEL_OWNER_KEY",
                format!("must be at least {} characters", Self::MIN_LEN),
            ));
        }
        Ok(OwnerKey(key))
    }

    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl fmt::Debug for OwnerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OwnerKey(<redacted>)")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LabelerKind {
    /// The embedded model (snaplabel-vision).
    Local,
    /// Amazon Rekognition `DetectLabels` (or any endpoint speaking its protocol).
    Rekognition,
}

impl LabelerKind {
    pub fn as_str(self) -> &'static str {
        match self {
            LabelerKind::Local => "local",
            LabelerKind::Rekognition => "rekognition",
        }
    }
}

/// A labeler name that is neither `local` nor `rekognition`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown labeler {0:?} (expected \"local\" or \"rekognition\")")]
pub struct UnknownLabeler(pub String);

impl FromStr for LabelerKind {
    type Err = UnknownLabeler;
    fn from_str(s: &str) -> Result<Self, UnknownLabeler> {
        match s.trim().to_ascii_lowercase().as_str() {
            "local" => Ok(LabelerKind::Local),
            "rekognition" => Ok(LabelerKind::Rekognition),
            other => Err(UnknownLabeler(other.to_string())),
        }
    }
}

impl fmt::Display for LabelerKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where the AWS SDK clients send their requests. `None` means the real AWS endpoint for the
/// configured region.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Endpoints {
    /// `SNAPLABEL_S3_ENDPOINT`
    pub s3: Option<String>,
    /// `SNAPLABEL_REKOGNITION_ENDPOINT`
    pub rekognition: Option<String>,
}

/// The embedded model: where its files are and which engine runs them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelSettings {
    /// `SNAPLABEL_MODEL_DIR`; in AWS Lambda `$LAMBDA_TASK_ROOT/models` (the function's zip carries
    /// them); else `~/.cache/snaplabel/models` (where `cargo xtask setup` puts them).
    pub dir: PathBuf,
    /// `SNAPLABEL_ENGINE`: `ort` (default) or `tract`.
    pub engine: String,
    /// `SNAPLABEL_ORT_LIBRARY`: the ONNX Runtime library, when not in the model folder.
    pub ort_library: Option<PathBuf>,
}

impl ModelSettings {
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Self {
        let get = |name: &str| {
            lookup(name)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let dir = get("SNAPLABEL_MODEL_DIR")
            .map(PathBuf::from)
            .or_else(|| get("LAMBDA_TASK_ROOT").map(|root| PathBuf::from(root).join("models")))
            .unwrap_or_else(|| {
                PathBuf::from(get("HOME").unwrap_or_else(|| ".".into()))
                    .join(".cache/snaplabel/models")
            });
        ModelSettings {
            dir,
            engine: get("SNAPLABEL_ENGINE").unwrap_or_else(|| "ort".into()),
            ort_library: get("SNAPLABEL_ORT_LIBRARY").map(PathBuf::from),
        }
    }
}

impl Default for ModelSettings {
    /// The defaults with nothing set (the model folder relative to the working directory).
    fn default() -> Self {
        ModelSettings::from_lookup(|_| None)
    }
}

/// Everything the presign and label handlers, their wiring and the local model need to know.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// `SNAPLABEL_BUCKET` (required): the bucket holding `uploads/` and `labels/`.
    pub bucket: String,
    /// `SNAPLABEL_MAX_UPLOAD_BYTES`: the largest image accepted, signed into every upload URL.
    pub max_upload_bytes: u64,
    /// `SNAPLABEL_MAX_PIXELS`: width × height above which an image is refused unread.
    pub max_pixels: u64,
    /// `SNAPLABEL_URL_EXPIRY_SECS`: lifetime of presigned URLs.
    pub url_expiry_secs: u64,
    /// `SNAPLABEL_ALLOWED_ORIGINS`: comma-separated browser origins allowed by CORS (`*` for any).
    pub allowed_origins: Vec<String>,
    /// `SNAPLABEL_LABELER`: `local` (default) or `rekognition`.
    pub labeler: LabelerKind,
    /// `SNAPLABEL_MIN_CONFIDENCE`: labels below this are dropped (default 55, as Rekognition).
    pub min_confidence: f32,
    /// `SNAPLABEL_MAX_LABELS`: at most this many labels per image. By default none: every label
    /// above `min_confidence`, as Rekognition does when `MaxLabels` is not given.
    pub max_labels: Option<u32>,
    /// `SNAPLABEL_REQUIRE_IDENTITY`: `true` makes the presign API demand a verified guest identity.
    pub require_identity: bool,
    /// `SNAPLABEL_IDENTITY_POOL_ID`: the Cognito identity pool whose guests may upload (the
    /// audience of their tokens).
    pub identity_pool_id: Option<String>,
    /// `SNAPLABEL_TOKEN_ISSUER`: who signs the guests' OpenID tokens (`iss`).
    pub token_issuer: String,
    /// `SNAPLABEL_JWKS_URL`: where the issuer publishes its keys; by default
    /// `{token_issuer}/.well-known/jwks_uri`, as Cognito does.
    pub jwks_url: Option<String>,
    /// `SNAPLABEL_OWNER_KEY`: the secret key of the owner segments.
    pub owner_key: Option<OwnerKey>,
    /// `SNAPLABEL_UPLOADS_PER_HOUR`: upload URLs one guest may get per hour.
    pub uploads_per_hour: u32,
    /// `SNAPLABEL_DECODE_BUDGET_BYTES`: memory the decoding of images may hold at once; by
    /// default derived from `AWS_LAMBDA_FUNCTION_MEMORY_SIZE` ([`decode_budget_for_memory_mb`]).
    pub max_decode_bytes: u64,
    pub endpoints: Endpoints,
    pub model: ModelSettings,
}

impl Settings {
    /// Defaults for everything but the bucket.
    pub fn new(bucket: impl Into<String>) -> Self {
        Settings {
            bucket: bucket.into(),
            max_upload_bytes: DEFAULT_MAX_UPLOAD_BYTES,
            max_pixels: DEFAULT_MAX_PIXELS,
            url_expiry_secs: DEFAULT_URL_EXPIRY_SECS,
            allowed_origins: Vec::new(),
            labeler: LabelerKind::Local,
            min_confidence: crate::detect::DEFAULT_MIN_CONFIDENCE,
            max_labels: None,
            require_identity: false,
            identity_pool_id: None,
            token_issuer: COGNITO_TOKEN_ISSUER.to_string(),
            jwks_url: None,
            owner_key: None,
            uploads_per_hour: DEFAULT_UPLOADS_PER_HOUR,
            max_decode_bytes: DEFAULT_DECODE_BUDGET_BYTES,
            endpoints: Endpoints::default(),
            model: ModelSettings::default(),
        }
    }

    /// Where the token issuer's keys are: [`Self::jwks_url`] or Cognito's convention.
    pub fn jwks_url(&self) -> String {
        self.jwks_url.clone().unwrap_or_else(|| {
            format!(
                "{}/.well-known/jwks_uri",
                self.token_issuer.trim_end_matches('/')
            )
        })
    }

    /// Reads `SNAPLABEL_*` variables through `lookup` (normally `std::env::var(..).ok()`).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &'static str| {
            lookup(name)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let bucket = get("SNAPLABEL_BUCKET").ok_or(ConfigError::missing("SNAPLABEL_BUCKET"))?;
        let mut config = Settings::new(bucket);
        config.endpoints = Endpoints {
            s3: get("SNAPLABEL_S3_ENDPOINT"),
            rekognition: get("SNAPLABEL_REKOGNITION_ENDPOINT"),
        };
        config.model = ModelSettings::from_lookup(&lookup);
        if let Some(v) = get("SNAPLABEL_MAX_UPLOAD_BYTES") {
            config.max_upload_bytes =
                parse_in("SNAPLABEL_MAX_UPLOAD_BYTES", &v, 1..=5 * 1024 * 1024 * 1024)?;
        }
        if let Some(v) = get("SNAPLABEL_MAX_PIXELS") {
            config.max_pixels = parse_in("SNAPLABEL_MAX_PIXELS", &v, 1..=1_000_000_000)?;
        }
        if let Some(v) = get("SNAPLABEL_URL_EXPIRY_SECS") {
            config.url_expiry_secs =
                parse_in("SNAPLABEL_URL_EXPIRY_SECS", &v, 1..=MAX_URL_EXPIRY_SECS)?;
        }
        if let Some(v) = get("SNAPLABEL_ALLOWED_ORIGINS") {
            config.allowed_origins = v
                .split(',')
                .map(|o| o.trim().trim_end_matches('/').to_string())
                .filter(|o| !o.is_empty())
                .collect();
        }
        if let Some(v) = get("SNAPLABEL_LABELER") {
            config.labeler = v.parse().map_err(|e: UnknownLabeler| {
                ConfigError::invalid("SNAPLABEL_LABELER", e.to_string())
            })?;
        }
        if let Some(v) = get("SNAPLABEL_MIN_CONFIDENCE") {
            let c: f32 = v.parse().map_err(|_| {
                ConfigError::invalid("SNAPLABEL_MIN_CONFIDENCE", format!("{v:?} is not a number"))
            })?;
            if !(0.0..=100.0).contains(&c) {
                return Err(ConfigError::invalid(
                    "SNAPLABEL_MIN_CONFIDENCE",
                    format!("{c} is outside 0..=100"),
                ));
            }
            config.min_confidence = c;
        }
        if let Some(v) = get("SNAPLABEL_MAX_LABELS") {
            config.max_labels = Some(parse_in(
                "SNAPLABEL_MAX_LABELS",
                &v,
                1..=crate::detect::MAX_LABELS_LIMIT as u64,
            )? as u32);
        }
        config.identity_pool_id = get("SNAPLABEL_IDENTITY_POOL_ID");
        if let Some(v) = get("SNAPLABEL_TOKEN_ISSUER") {
            config.token_issuer = v.trim_end_matches('/').to_string();
        }
        config.jwks_url = get("SNAPLABEL_JWKS_URL");
        config.owner_key = get("SNAPLABEL_OWNER_KEY").map(OwnerKey::new).transpose()?;
        if let Some(v) = get("SNAPLABEL_UPLOADS_PER_HOUR") {
            config.uploads_per_hour =
                parse_in("SNAPLABEL_UPLOADS_PER_HOUR", &v, 1..=1_000_000)? as u32;
        }
        if let Some(v) = get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE") {
            let memory_mb = parse_in("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", &v, 128..=10_240)?;
            config.max_decode_bytes = decode_budget_for_memory_mb(memory_mb);
        }
        if let Some(v) = get("SNAPLABEL_DECODE_BUDGET_BYTES") {
            config.max_decode_bytes = parse_in(
                "SNAPLABEL_DECODE_BUDGET_BYTES",
                &v,
                MIN_DECODE_BUDGET_BYTES..=64 * 1024 * 1024 * 1024,
            )?;
        }
        if let Some(v) = get("SNAPLABEL_REQUIRE_IDENTITY") {
            config.require_identity = match v.to_ascii_lowercase().as_str() {
                "1" | "true" | "yes" => true,
                "0" | "false" | "no" => false,
                _ => {
                    return Err(ConfigError::invalid(
                        "SNAPLABEL_REQUIRE_IDENTITY",
                        format!("{v:?} is not true/false"),
                    ));
                }
            };
        }
        Ok(config)
    }

    /// The CORS origin to echo for a request's `Origin`, if it is allowed.
    pub fn cors_origin<'a>(&'a self, origin: &'a str) -> Option<&'a str> {
        cors_origin(&self.allowed_origins, origin)
    }
}

/// The `Access-Control-Allow-Origin` value for a request's `Origin`, if one of `allowed` admits
/// it: the origin itself, or `*` when `*` is allowed. Shared by every endpoint that answers CORS.
pub fn cors_origin<'a>(allowed: &'a [String], origin: &'a str) -> Option<&'a str> {
    let origin_trimmed = origin.trim_end_matches('/');
    allowed.iter().find_map(|a| match a.as_str() {
        "*" => Some("*"),
        a if a.eq_ignore_ascii_case(origin_trimmed) => Some(origin),
        _ => None,
    })
}

fn parse_in(
    name: &'static str,
    value: &str,
    range: std::ops::RangeInclusive<u64>,
) -> Result<u64, ConfigError> {
    let n: u64 = value
        .replace('_', "")
        .parse()
        .map_err(|_| ConfigError::invalid(name, format!("{value:?} is not a whole number")))?;
    if !range.contains(&n) {
        return Err(ConfigError::invalid(
            name,
            format!("{n} is outside {}..={}", range.start(), range.end()),
        ));
    }
    Ok(n)
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub variable: &'static str,
    pub message: String,
}

impl ConfigError {
    pub fn missing(variable: &'static str) -> Self {
        ConfigError {
            variable,
            message: "is required but not set".into(),
        }
    }
    pub fn invalid(variable: &'static str, message: impl Into<String>) -> Self {
        ConfigError {
            variable,
            message: message.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.variable, self.message)
    }
}

impl std::error::Error for ConfigError {}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn from(pairs: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn defaults_need_only_a_bucket() {
        let c = from(&[("SNAPLABEL_BUCKET", "pics")]).unwrap();
        assert_eq!(c, Settings::new("pics"));
        assert_eq!(c.max_upload_bytes, 15 * 1024 * 1024);
        assert_eq!(c.labeler, LabelerKind::Local);
        assert_eq!(from(&[]).unwrap_err().variable, "SNAPLABEL_BUCKET");
    }

    #[test]
    fn every_variable_is_read_and_checked() {
        let c = from(&[
            ("SNAPLABEL_BUCKET", "pics"),
            ("SNAPLABEL_MAX_UPLOAD_BYTES", "1_000_000"),
            ("SNAPLABEL_MAX_PIXELS", "20000000"),
            ("SNAPLABEL_URL_EXPIRY_SECS", "60"),
            (
                "SNAPLABEL_ALLOWED_ORIGINS",
                "http://localhost:8080/, https://app.example.com",
            ),
            ("SNAPLABEL_LABELER", "Rekognition"),
            ("SNAPLABEL_MIN_CONFIDENCE", "70.5"),
            ("SNAPLABEL_MAX_LABELS", "10"),
            ("SNAPLABEL_REQUIRE_IDENTITY", "true"),
        ])
        .unwrap();
        assert_eq!(c.max_upload_bytes, 1_000_000);
        assert_eq!(c.max_pixels, 20_000_000);
        assert_eq!(c.url_expiry_secs, 60);
        assert_eq!(
            c.allowed_origins,
            ["http://localhost:8080", "https://app.example.com"]
        );
        assert_eq!(c.labeler, LabelerKind::Rekognition);
        assert_eq!(c.min_confidence, 70.5);
        assert_eq!(c.max_labels, Some(10));
        assert!(c.require_identity);

        let c = from(&[
            ("SNAPLABEL_BUCKET", "pics"),
            ("SNAPLABEL_IDENTITY_POOL_ID", "eu-west-1:pool"),
            ("SNAPLABEL_TOKEN_ISSUER", "http://127.0.0.1:8080/"),
            ("SNAPLABEL_OWNER_KEY", "0123456789abcdef0123456789abcdef"),
            ("SNAPLABEL_UPLOADS_PER_HOUR", "20"),
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "1024"),
        ])
        .unwrap();
        assert_eq!(c.identity_pool_id.as_deref(), Some("eu-west-1:pool"));
        assert_eq!(c.jwks_url(), "http://127.0.0.1:8080/.well-known/jwks_uri");
        assert!(c.owner_key.is_some());
        assert!(
            !format!("{c:?}").contains("0123456789abcdef"),
            "the key is never printed"
        );
        assert_eq!(c.uploads_per_hour, 20);
        assert_eq!(c.max_decode_bytes, 192 * 1024 * 1024);
        assert_eq!(
            Settings::new("b").jwks_url(),
            "https://cognito-identity.amazonaws.com/.well-known/jwks_uri"
        );

        // The model's place: set, in Lambda, or the user's cache.
        let model = |pairs: &[(&str, &str)]| {
            from(&[&[("SNAPLABEL_BUCKET", "b")], pairs].concat())
                .unwrap()
                .model
        };
        assert_eq!(
            model(&[("SNAPLABEL_MODEL_DIR", "/m")]).dir,
            PathBuf::from("/m")
        );
        assert_eq!(
            model(&[("LAMBDA_TASK_ROOT", "/var/task")]).dir,
            PathBuf::from("/var/task/models")
        );
        assert_eq!(
            model(&[("HOME", "/home/u")]).dir,
            PathBuf::from("/home/u/.cache/snaplabel/models")
        );
        assert_eq!(model(&[("SNAPLABEL_ENGINE", "tract")]).engine, "tract");
        let endpoints = from(&[
            ("SNAPLABEL_BUCKET", "b"),
            ("SNAPLABEL_S3_ENDPOINT", "http://127.0.0.1:9000"),
        ])
        .unwrap()
        .endpoints;
        assert_eq!(endpoints.s3.as_deref(), Some("http://127.0.0.1:9000"));

        for (var, bad) in [
            ("SNAPLABEL_MAX_UPLOAD_BYTES", "lots"),
            ("SNAPLABEL_MAX_UPLOAD_BYTES", "0"),
            ("SNAPLABEL_URL_EXPIRY_SECS", "999999999"),
            ("SNAPLABEL_LABELER", "magic"),
            ("SNAPLABEL_MIN_CONFIDENCE", "150"),
            ("SNAPLABEL_REQUIRE_IDENTITY", "maybe"),
            ("SNAPLABEL_OWNER_KEY", "short"),
            ("SNAPLABEL_UPLOADS_PER_HOUR", "0"),
            ("SNAPLABEL_DECODE_BUDGET_BYTES", "1000"),
        ] {
            let err = from(&[("SNAPLABEL_BUCKET", "pics"), (var, bad)]).unwrap_err();
            assert_eq!(err.variable, var, "{bad}");
        }
    }

    #[test]
    fn the_decode_budget_follows_the_function_memory() {
        let mb = 1024 * 1024;
        assert_eq!(decode_budget_for_memory_mb(512), 64 * mb);
        assert_eq!(decode_budget_for_memory_mb(768), 128 * mb);
        assert_eq!(
            decode_budget_for_memory_mb(2048),
            DEFAULT_DECODE_BUDGET_BYTES
        );
        for memory_mb in [512, 640, 768, 1024, 1536, 10_240] {
            let budget = decode_budget_for_memory_mb(memory_mb);
            assert!(budget + LABEL_FUNCTION_BASE_BYTES <= memory_mb * mb || memory_mb < 640);
        }
    }

    #[test]
    fn cors_matches_configured_origins_only() {
        let mut c = Settings::new("b");
        assert_eq!(c.cors_origin("http://evil.example"), None);
        c.allowed_origins = vec!["http://localhost:8080".into()];
        assert_eq!(
            c.cors_origin("http://localhost:8080"),
            Some("http://localhost:8080")
        );
        assert_eq!(c.cors_origin("http://localhost:8081"), None);
        c.allowed_origins = vec!["*".into()];
        assert_eq!(c.cors_origin("http://anything"), Some("*"));
    }
}
