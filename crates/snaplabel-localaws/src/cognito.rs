//! Amazon Cognito Identity on 127.0.0.1, for one identity pool of unauthenticated guests:
//! `GetId` hands out a new identity id, `GetOpenIdToken` a signed proof of one, and the issuer's
//! public keys are served as a JWKS, so the presign API verifies tokens here exactly as it does in
//! AWS (same code, only the issuer URL differs).
//!
//! The real service is the model: awsJson1_1, `X-Amz-Target: AWSCognitoIdentityService.<Op>`,
//! both calls unsigned; tokens are JWTs with `iss`, `aud` (the pool), `sub` (the identity id),
//! `amr: ["unauthenticated"]`, valid for 10 minutes. The signing key is an RSA key made once per
//! data directory (`cognito-signing-key.pem`, readable by its owner only), never a constant.
//! Identity ids are appended to `identities.txt`, one line each, so they survive restarts (a
//! browser keeps its id in localStorage) without the file being rewritten per `GetId`.
//! `GetId` is throttled like the real service (`TooManyRequestsException`), so a script cannot
//! mint identities (and with them fresh upload quotas) as fast as it can send requests. AWS
//! credentials are never handed out (`GetCredentialsForIdentity` answers
//! `NotAuthorizedException`): in snaplabel the browser gets presigned URLs, not credentials.

use crate::aws_json::{AwsError, aws_json};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use jsonwebtoken::jwk::{Jwk, JwkSet, PublicKeyUse};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::{Deserialize, Serialize};
use snaplabel_core::api::is_cognito_identity_id;
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub const TARGET_PREFIX: &str = "AWSCognitoIdentityService.";
/// How long a token proves its identity (as Cognito's).
pub const TOKEN_LIFETIME: Duration = Duration::from_secs(600);
/// `GetId` calls allowed at once, and refilled per second afterwards.
const GET_ID_BURST: f64 = 20.0;
const GET_ID_PER_SECOND: f64 = 5.0;
const SIGNING_KEY_FILE: &str = "cognito-signing-key.pem";
const IDENTITIES_FILE: &str = "identities.txt";

pub struct CognitoService {
    pool_id: String,
    region: String,
    /// `iss` of the tokens: the URL this service is reached at.
    issuer: String,
    key: EncodingKey,
    key_id: String,
    jwks: JwkSet,
    identities: Mutex<Identities>,
    get_id: Mutex<TokenBucket>,
}

struct Identities {
    /// identity id → creation time (seconds since the epoch).
    known: HashMap<String, u64>,
    log: std::fs::File,
}

/// A token bucket: `burst` calls at once, `per_second` after that.
struct TokenBucket {
    tokens: f64,
    at: Instant,
}

impl TokenBucket {
    fn take(&mut self) -> bool {
        let now = Instant::now();
        self.tokens = (self.tokens + now.duration_since(self.at).as_secs_f64() * GET_ID_PER_SECOND)
            .min(GET_ID_BURST);
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct GetIdRequest {
    identity_pool_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct IdentityRequest {
    identity_id: Option<String>,
}

#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    aud: &'a str,
    sub: &'a str,
    amr: [&'a str; 1],
    iat: u64,
    exp: u64,
}

fn io_error(e: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::other(e.to_string())
}

/// The data directory's signing key (PKCS#8 PEM), made on first use.
fn signing_key(data_dir: &Path) -> std::io::Result<Vec<u8>> {
    crate::secret_file(&data_dir.join(SIGNING_KEY_FILE), || {
        use aws_lc_rs::encoding::AsDer;
        let pair = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048)
            .map_err(|_| io_error("cannot generate an RSA key"))?;
        let der = pair
            .as_der()
            .map_err(|_| io_error("cannot encode the RSA key"))?;
        Ok(pem::encode(&pem::Pem::new("PRIVATE KEY", der.as_ref().to_vec())).into_bytes())
    })
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
}

impl CognitoService {
    /// Opens (or starts) the pool `pool_id` (`region:name`) kept in `data_dir`, issuing tokens
    /// as `issuer` (the URL the service is reached at).
    pub fn open(
        pool_id: impl Into<String>,
        data_dir: &Path,
        issuer: impl Into<String>,
    ) -> std::io::Result<Self> {
        let pool_id = pool_id.into();
        let region = pool_id.split(':').next().unwrap_or("us-east-1").to_string();
        std::fs::create_dir_all(data_dir)?;
        let key = EncodingKey::from_rsa_pem(&signing_key(data_dir)?).map_err(io_error)?;
        let mut jwk = Jwk::from_encoding_key(&key, Algorithm::RS256).map_err(io_error)?;
        // The key id names the key: a new data directory's key is a new id, which verifiers
        // that cached the old one fetch anew.
        let modulus = match &jwk.algorithm {
            jsonwebtoken::jwk::AlgorithmParameters::RSA(rsa) => rsa.n.clone(),
            _ => String::new(),
        };
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, modulus.as_bytes());
        let key_id: String = digest.as_ref()[..8]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        jwk.common.key_id = Some(key_id.clone());
        jwk.common.public_key_use = Some(PublicKeyUse::Signature);

        let file = data_dir.join(IDENTITIES_FILE);
        let known = read_identities(&file)?;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&file)?;
        Ok(CognitoService {
            pool_id,
            region,
            issuer: issuer.into().trim_end_matches('/').to_string(),
            key,
            key_id,
            jwks: JwkSet { keys: vec![jwk] },
            identities: Mutex::new(Identities { known, log }),
            get_id: Mutex::new(TokenBucket {
                tokens: GET_ID_BURST,
                at: Instant::now(),
            }),
        })
    }

    pub fn pool_id(&self) -> &str {
        &self.pool_id
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The issuer's public keys, as served at `/.well-known/jwks_uri`.
    pub fn jwks_json(&self) -> String {
        serde_json::to_string(&self.jwks).expect("a key set serializes")
    }

    /// The OpenID discovery document, as served at `/.well-known/openid-configuration`.
    pub fn openid_configuration_json(&self) -> String {
        serde_json::json!({
            "issuer": self.issuer,
            "jwks_uri": format!("{}/.well-known/jwks_uri", self.issuer),
            "response_types_supported": ["id_token"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
        })
        .to_string()
    }

    fn new_identity(&self) -> Result<String, AwsError> {
        let id = format!("{}:{}", self.region, uuid::Uuid::new_v4());
        let mut identities = self
            .identities
            .lock()
            .map_err(|_| AwsError::new("InternalErrorException", "identity store poisoned"))?;
        let created = now_secs();
        // One line appended per identity; written before the id is handed out.
        writeln!(identities.log, "{id} {created}")
            .and_then(|_| identities.log.flush())
            .map_err(|e| {
                AwsError::new(
                    "InternalErrorException",
                    format!("cannot store the identity: {e}"),
                )
            })?;
        identities.known.insert(id.clone(), created);
        Ok(id)
    }

    fn created(&self, id: &str) -> Result<u64, AwsError> {
        if !is_cognito_identity_id(id) {
            return Err(AwsError::new(
                "InvalidParameterException",
                "1 validation error detected: Value at 'identityId' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w-]+:[0-9a-f-]+",
            ));
        }
        let identities = self
            .identities
            .lock()
            .map_err(|_| AwsError::new("InternalErrorException", "identity store poisoned"))?;
        identities.known.get(id).copied().ok_or_else(|| {
            AwsError::new(
                "ResourceNotFoundException",
                "Identity not found.".to_string(),
            )
        })
    }

    /// A token proving `id`, signed with this data directory's key.
    pub fn token_for(&self, id: &str) -> Result<String, AwsError> {
        self.created(id)?;
        let iat = now_secs();
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(self.key_id.clone());
        header.typ = Some("JWS".into());
        let claims = Claims {
            iss: &self.issuer,
            aud: &self.pool_id,
            sub: id,
            amr: ["unauthenticated"],
            iat,
            exp: iat + TOKEN_LIFETIME.as_secs(),
        };
        jsonwebtoken::encode(&header, &claims, &self.key)
            .map_err(|e| AwsError::new("InternalErrorException", format!("cannot sign: {e}")))
    }

    /// Serves one awsJson1_1 request.
    pub fn call(&self, target: &str, body: &[u8]) -> Result<serde_json::Value, AwsError> {
        let operation = target.strip_prefix(TARGET_PREFIX).unwrap_or_default();
        let invalid = |m: &str| AwsError::new("InvalidParameterException", m.to_string());
        match operation {
            "GetId" => {
                let request: GetIdRequest =
                    serde_json::from_slice(body).map_err(|e| invalid(&e.to_string()))?;
                if request.identity_pool_id.as_deref() != Some(self.pool_id.as_str()) {
                    return Err(AwsError::new(
                        "ResourceNotFoundException",
                        "IdentityPool not found.".to_string(),
                    ));
                }
                let allowed = self
                    .get_id
                    .lock()
                    .map(|mut bucket| bucket.take())
                    .unwrap_or(false);
                if !allowed {
                    return Err(AwsError::new(
                        "TooManyRequestsException",
                        "Rate exceeded: too many new identities; try again in a moment",
                    ));
                }
                Ok(serde_json::json!({"IdentityId": self.new_identity()?}))
            }
            "GetOpenIdToken" => {
                let request: IdentityRequest =
                    serde_json::from_slice(body).map_err(|e| invalid(&e.to_string()))?;
                let id = request
                    .identity_id
                    .ok_or_else(|| invalid("IdentityId is required"))?;
                let token = self.token_for(&id)?;
                Ok(serde_json::json!({"IdentityId": id, "Token": token}))
            }
            "DescribeIdentity" => {
                let request: IdentityRequest =
                    serde_json::from_slice(body).map_err(|e| invalid(&e.to_string()))?;
                let id = request
                    .identity_id
                    .ok_or_else(|| invalid("IdentityId is required"))?;
                let created = self.created(&id)?;
                Ok(
                    serde_json::json!({"IdentityId": id, "Logins": [], "CreationDate": created, "LastModifiedDate": created}),
                )
            }
            "GetCredentialsForIdentity" => Err(AwsError::new(
                "NotAuthorizedException",
                "guests of this pool get no AWS credentials; use the presign API",
            )),
            other => Err(AwsError::new(
                "UnknownOperationException",
                format!("{other:?} is not served here"),
            )),
        }
    }

    /// Serves one awsJson1_1 request as an HTTP answer.
    pub fn respond(&self, target: &str, body: &Bytes) -> Response {
        match self.call(target, body) {
            Ok(value) => aws_json(StatusCode::OK, value.to_string()),
            Err(err) => err.into_response(),
        }
    }
}

/// The identities of `identities.txt` (`id created` per line; a torn last line is skipped).
fn read_identities(file: &PathBuf) -> std::io::Result<HashMap<String, u64>> {
    let text = match std::fs::read_to_string(file) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(HashMap::new()),
        Err(e) => return Err(e),
    };
    Ok(text
        .lines()
        .filter_map(|line| {
            let (id, created) = line.split_once(' ')?;
            is_cognito_identity_id(id)
                .then(|| (id.to_string(), created.trim().parse().unwrap_or(0)))
        })
        .collect())
}

/// Whether an `X-Amz-Target` names a Cognito Identity operation.
pub fn is_cognito_target(target: &str) -> bool {
    target.starts_with(TARGET_PREFIX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(
        service: &CognitoService,
        op: &str,
        body: serde_json::Value,
    ) -> Result<serde_json::Value, AwsError> {
        service.call(&format!("{TARGET_PREFIX}{op}"), body.to_string().as_bytes())
    }

    #[test]
    fn identities_and_keys_survive_a_restart_and_get_id_is_throttled() {
        let dir = tempfile::tempdir().unwrap();
        let pool = "us-east-1:pool";
        let first = CognitoService::open(pool, dir.path(), "http://127.0.0.1:1").unwrap();
        let id = call(&first, "GetId", serde_json::json!({"IdentityPoolId": pool})).unwrap()
            ["IdentityId"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(is_cognito_identity_id(&id), "{id}");
        let jwks = first.jwks_json();
        drop(first);

        let again = CognitoService::open(pool, dir.path(), "http://127.0.0.1:1").unwrap();
        assert_eq!(again.jwks_json(), jwks, "the same key after a restart");
        let token = call(
            &again,
            "GetOpenIdToken",
            serde_json::json!({"IdentityId": id}),
        )
        .unwrap();
        assert_eq!(token["Token"].as_str().unwrap().split('.').count(), 3);
        for (bad, kind) in [
            ("us-east-1:not-hex!", "InvalidParameterException"),
            ("us-east-1:0000", "ResourceNotFoundException"),
        ] {
            let err = call(
                &again,
                "GetOpenIdToken",
                serde_json::json!({"IdentityId": bad}),
            )
            .unwrap_err();
            assert_eq!(err.kind, kind);
        }
        let refused = (0..40)
            .map(|_| call(&again, "GetId", serde_json::json!({"IdentityPoolId": pool})))
            .filter(|r| {
                r.as_ref()
                    .is_err_and(|e| e.kind == "TooManyRequestsException")
            })
            .count();
        assert!(refused >= 15, "a burst of 40 GetId: {refused} throttled");
        assert_eq!(
            std::fs::read_to_string(dir.path().join(IDENTITIES_FILE))
                .unwrap()
                .lines()
                .count(),
            41 - refused
        );
    }
}
