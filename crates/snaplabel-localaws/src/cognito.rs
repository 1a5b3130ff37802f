//! Amazon Cognito Identity on 127.0.0.1, for one identity pool of unauthenticated guests:
//! `GetId` hands out a new identity id, `DescribeIdentity` tells whether an id exists. Identities
//! are kept in a JSON file, so they survive restarts (a browser keeps its id in localStorage).
//!
//! The real service is the model: awsJson1_1, `X-Amz-Target: AWSCognitoIdentityService.<Op>`,
//! errors `ResourceNotFoundException` / `InvalidParameterException`. Credentials are never handed
//! out (`GetCredentialsForIdentity` answers `NotAuthorizedException`): in snaplabel the browser
//! gets presigned URLs, not AWS credentials.

use crate::rekognition::{RekognitionError as AwsError, aws_json};
use crate::server::Body;
use bytes::Bytes;
use http::{Response, StatusCode};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

const PREFIX: &str = "AWSCognitoIdentityService.";

pub struct CognitoService {
    pool_id: String,
    region: String,
    file: PathBuf,
    /// identity id → creation time (seconds since the epoch).
    identities: Mutex<BTreeMap<String, u64>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct GetIdRequest {
    identity_pool_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DescribeIdentityRequest {
    identity_id: Option<String>,
}

impl CognitoService {
    /// Loads (or starts) the identity file of pool `pool_id` (`region:name`).
    pub fn open(pool_id: impl Into<String>, file: PathBuf) -> std::io::Result<Self> {
        let pool_id = pool_id.into();
        let region = pool_id.split(':').next().unwrap_or("us-east-1").to_string();
        let identities = match std::fs::read(&file) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(std::io::Error::other)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) => return Err(e),
        };
        Ok(CognitoService {
            pool_id,
            region,
            file,
            identities: Mutex::new(identities),
        })
    }

    pub fn pool_id(&self) -> &str {
        &self.pool_id
    }

    fn new_identity(&self) -> Result<String, AwsError> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        // A v4-style UUID from the clock and process-local randomness (RandomState is seeded per
        // process); uniqueness, not secrecy, is what matters: access is checked server-side.
        let mut bytes = [0u8; 16];
        for (i, chunk) in bytes.chunks_mut(8).enumerate() {
            use std::hash::{BuildHasher, Hasher};
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_u128(now.as_nanos());
            h.write_usize(i);
            chunk.copy_from_slice(&h.finish().to_le_bytes());
        }
        bytes[6] = (bytes[6] & 0x0f) | 0x40;
        bytes[8] = (bytes[8] & 0x3f) | 0x80;
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let id = format!(
            "{}:{}-{}-{}-{}-{}",
            self.region,
            &hex[..8],
            &hex[8..12],
            &hex[12..16],
            &hex[16..20],
            &hex[20..]
        );
        let mut identities = self
            .identities
            .lock()
            .map_err(|_| AwsError::new("InternalErrorException", "identity store poisoned"))?;
        identities.insert(id.clone(), now.as_secs());
        let json = serde_json::to_vec_pretty(&*identities).expect("identities serialize");
        let tmp = self.file.with_extension("json.partial");
        std::fs::write(&tmp, json)
            .and_then(|_| std::fs::rename(&tmp, &self.file))
            .map_err(|e| {
                AwsError::new(
                    "InternalErrorException",
                    format!("cannot store the identity: {e}"),
                )
            })?;
        Ok(id)
    }

    /// Serves one awsJson1_1 request.
    pub fn call(&self, target: &str, body: &[u8]) -> Result<serde_json::Value, AwsError> {
        let operation = target.strip_prefix(PREFIX).unwrap_or_default();
        let invalid = |m: &str| AwsError::new("InvalidParameterException", m.to_string());
        match operation {
            "GetId" => {
                let request: GetIdRequest =
                    serde_json::from_slice(body).map_err(|e| invalid(&e.to_string()))?;
                if request.identity_pool_id.as_deref() != Some(self.pool_id.as_str()) {
                    return Err(AwsError::new(
                        "ResourceNotFoundException",
                        format!(
                            "IdentityPool '{}' not found.",
                            request.identity_pool_id.unwrap_or_default()
                        ),
                    ));
                }
                Ok(serde_json::json!({"IdentityId": self.new_identity()?}))
            }
            "DescribeIdentity" => {
                let request: DescribeIdentityRequest =
                    serde_json::from_slice(body).map_err(|e| invalid(&e.to_string()))?;
                let id = request
                    .identity_id
                    .ok_or_else(|| invalid("IdentityId is required"))?;
                let identities = self.identities.lock().map_err(|_| {
                    AwsError::new("InternalErrorException", "identity store poisoned")
                })?;
                match identities.get(&id) {
                    Some(&created) => Ok(
                        serde_json::json!({"IdentityId": id, "Logins": [], "CreationDate": created, "LastModifiedDate": created}),
                    ),
                    None => Err(AwsError::new(
                        "ResourceNotFoundException",
                        format!("Identity '{id}' not found."),
                    )),
                }
            }
            "GetCredentialsForIdentity" | "GetOpenIdToken" => Err(AwsError::new(
                "NotAuthorizedException",
                "guests of this pool get no AWS credentials; use the presign API",
            )),
            other => Err(AwsError::new(
                "UnknownOperationException",
                format!("{other:?} is not served here"),
            )),
        }
    }

    pub fn respond(&self, target: &str, body: &Bytes) -> Response<Body> {
        match self.call(target, body) {
            Ok(value) => aws_json(StatusCode::OK, value.to_string().into_bytes(), None),
            Err(err) => aws_json(
                err.status(),
                serde_json::json!({"__type": err.kind, "message": err.message})
                    .to_string()
                    .into_bytes(),
                Some(err.kind),
            ),
        }
    }
}

/// Whether an `X-Amz-Target` names a Cognito Identity operation.
pub fn is_cognito_target(target: &str) -> bool {
    target.starts_with(PREFIX)
}
