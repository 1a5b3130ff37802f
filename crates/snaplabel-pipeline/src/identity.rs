//! Who is asking, and which keys are theirs.
//!
//! A Cognito guest identity id is a bearer secret: whoever knows it can get tokens for it without
//! a login. So it never reaches the API, a key, a URL, a document or a log line. The browser
//! sends proof instead: the OpenID token Cognito's `GetOpenIdToken` issues for its identity,
//! verified here without any call to Cognito (RS256/RS512 against the issuer's published keys,
//! fetched once and cached). The owner segment of the guest's keys is a keyed one-way function of
//! the identity id ([`owner_segment`]), so a key or URL someone shared reveals nothing that lets
//! them list or fetch the guest's uploads, and cannot be computed from a guessed id.

use crate::jwks::{JwksCache, KeyLookup};
use async_trait::async_trait;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use snaplabel_core::api::is_cognito_identity_id;
use snaplabel_core::config::OwnerKey;
use snaplabel_core::keys::ANONYMOUS_OWNER;
use std::sync::Arc;

/// Why a request's proof of identity was not accepted.
#[derive(Debug, Clone, thiserror::Error)]
pub enum IdentityError {
    /// The caller's fault: no token, a malformed, expired or foreign one. The message is safe to
    /// show (it never repeats the token or the identity id).
    #[error("{0}")]
    Invalid(String),
    /// The issuer's keys could not be fetched and none are cached: nobody can be verified now.
    /// The cause is for the logs only.
    #[error("the identity keys at {url} are unavailable")]
    Unavailable {
        url: String,
        #[source]
        source: std::sync::Arc<crate::jwks::JwksError>,
    },
}

/// Turns a request's `Authorization` header into the owner segment of the caller's keys.
#[async_trait]
pub trait IdentityVerifier: Send + Sync {
    async fn owner(&self, authorization: Option<&str>) -> Result<String, IdentityError>;
}

/// No identities: every caller shares the `anonymous` owner. For single-user setups only.
pub struct SharedAnonymous;

#[async_trait]
impl IdentityVerifier for SharedAnonymous {
    async fn owner(&self, _authorization: Option<&str>) -> Result<String, IdentityError> {
        Ok(ANONYMOUS_OWNER.to_string())
    }
}

/// The owner segment of an identity's keys: the first 128 bits of HMAC-SHA256 under the
/// deployment's secret key, in hex. One-way (the id cannot be recovered from it) and keyed (a
/// guessed id cannot be turned into it without the key).
pub fn owner_segment(key: &OwnerKey, identity_id: &str) -> String {
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, key.as_bytes());
    let mut context = aws_lc_rs::hmac::Context::with_key(&key);
    // Domain separation: the same key must never produce this value for another purpose.
    context.update(b"snaplabel owner v1\n");
    context.update(identity_id.as_bytes());
    context.sign().as_ref()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[derive(Debug, Deserialize)]
struct Claims {
    sub: String,
    #[serde(default)]
    amr: Vec<String>,
}

/// Guests of one Cognito identity pool, proved by their OpenID tokens.
pub struct CognitoTokens {
    pool_id: String,
    issuer: String,
    owner_key: OwnerKey,
    keys: Arc<JwksCache>,
}

/// Tokens are checked against the clock with this much slack (clocks differ a little).
const CLOCK_LEEWAY_SECS: u64 = 30;

fn invalid(message: &str) -> IdentityError {
    IdentityError::Invalid(message.to_string())
}

impl CognitoTokens {
    pub fn new(
        pool_id: impl Into<String>,
        issuer: impl Into<String>,
        owner_key: OwnerKey,
        keys: Arc<JwksCache>,
    ) -> Self {
        CognitoTokens {
            pool_id: pool_id.into(),
            issuer: issuer.into().trim_end_matches('/').to_string(),
            owner_key,
            keys,
        }
    }

    /// The identity id a token proves, or why it proves nothing.
    pub async fn identity(&self, token: &str) -> Result<String, IdentityError> {
        let header = jsonwebtoken::decode_header(token)
            .map_err(|_| invalid("the identity token is not a JSON Web Token"))?;
        // Only the RSA signatures Cognito uses: never "none", never a shared-secret algorithm
        // that a public key could be abused as.
        if !matches!(header.alg, Algorithm::RS256 | Algorithm::RS512) {
            return Err(invalid(
                "the identity token is not signed the way Cognito signs",
            ));
        }
        let kid = header
            .kid
            .ok_or_else(|| invalid("the identity token names no signing key"))?;
        let jwk = match self.keys.key(&kid).await {
            KeyLookup::Found(jwk) => jwk,
            KeyLookup::Unknown => {
                return Err(invalid(
                    "the identity token is signed by a key its issuer does not publish",
                ));
            }
            KeyLookup::Unavailable(source) => {
                return Err(IdentityError::Unavailable {
                    url: self.keys.url().to_string(),
                    source,
                });
            }
        };
        let key = DecodingKey::from_jwk(&jwk)
            .map_err(|_| invalid("the identity token's signing key is not an RSA key"))?;
        let mut validation = Validation::new(header.alg);
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[&self.pool_id]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = CLOCK_LEEWAY_SECS;
        let claims = jsonwebtoken::decode::<Claims>(token, &key, &validation)
            .map_err(|e| {
                use jsonwebtoken::errors::ErrorKind;
                invalid(match e.kind() {
                    ErrorKind::ExpiredSignature => {
                        "the identity token has expired; get a new one (GetOpenIdToken)"
                    }
                    ErrorKind::InvalidAudience => "the identity token is for another identity pool",
                    ErrorKind::InvalidIssuer => "the identity token comes from another issuer",
                    ErrorKind::InvalidSignature => "the identity token's signature is wrong",
                    _ => "the identity token is malformed",
                })
            })?
            .claims;
        if !claims.amr.iter().any(|m| m == "unauthenticated") {
            return Err(invalid(
                "only guest (unauthenticated) identities may upload here",
            ));
        }
        let pool_region = self.pool_id.split(':').next().unwrap_or_default();
        if !is_cognito_identity_id(&claims.sub) || claims.sub.split(':').next() != Some(pool_region)
        {
            return Err(invalid("the identity token names a malformed identity"));
        }
        Ok(claims.sub)
    }
}

#[async_trait]
impl IdentityVerifier for CognitoTokens {
    async fn owner(&self, authorization: Option<&str>) -> Result<String, IdentityError> {
        let token = authorization
            .map(str::trim)
            .and_then(|h| {
                h.get(..7)
                    .filter(|scheme| scheme.eq_ignore_ascii_case("bearer "))
                    .map(|_| h[7..].trim())
            })
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                invalid(
                    "send your guest identity's OpenID token (Cognito GetOpenIdToken) as \
                     `Authorization: Bearer <token>`",
                )
            })?;
        // A token is three base64url parts of a few hundred bytes each; anything far longer is
        // refused before it is parsed.
        if token.len() > 16 * 1024 {
            return Err(invalid("the identity token is too long"));
        }
        let identity = self.identity(token).await?;
        Ok(owner_segment(&self.owner_key, &identity))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_segments_are_keyed_and_one_way() {
        let key = OwnerKey::new("k".repeat(32)).unwrap();
        let other = OwnerKey::new("j".repeat(32)).unwrap();
        let id = "us-east-1:0b7a6c4e-1d2f-4a5b-9c8d-7e6f5a4b3c2d";
        let owner = owner_segment(&key, id);
        assert_eq!(owner.len(), 32);
        assert!(snaplabel_core::keys::is_valid_owner(&owner));
        assert_eq!(owner, owner_segment(&key, id), "stable");
        assert_ne!(owner, owner_segment(&other, id), "keyed");
        assert_ne!(owner, owner_segment(&key, "us-east-1:0b7a6c4e"));
        assert!(!owner.contains("0b7a6c4e"));
    }
}
