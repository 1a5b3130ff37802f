//! The token issuer's public keys (its JWKS), fetched once per process and cached.
//!
//! Uploads must not fail because the issuer's key URL has a bad minute, so:
//! - keys are fetched at start-up when possible ([`JwksCache::prefetch`]), else at first use;
//! - cached keys are used for as long as the process lives; a day after a fetch the next lookup
//!   tries a refresh, and a refresh that fails keeps the old keys;
//! - a token naming a key the cache lacks (the issuer rotated its keys) triggers one refresh, at
//!   most every [`MIN_REFETCH`], so a stream of forged key ids cannot hammer the issuer;
//! - only with no keys at all and the URL down is an upload refused, as unavailable (503).

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use jsonwebtoken::jwk::Jwk;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{Mutex, RwLock};

/// Refresh cached keys this long after they were fetched (Cognito rotates rarely).
const REFRESH_AFTER: Duration = Duration::from_secs(24 * 3600);
/// Fetch again for an unknown key id at most this often.
const MIN_REFETCH: Duration = Duration::from_secs(30);
/// One fetch attempt may take this long.
const FETCH_TIMEOUT: Duration = Duration::from_secs(3);
/// A key set is a few kilobytes; anything bigger is not one.
const MAX_JWKS_BYTES: usize = 256 * 1024;

type HttpClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, Empty<Bytes>>;

/// Why the issuer's keys could not be fetched.
#[derive(Debug, thiserror::Error)]
pub enum JwksError {
    #[error("{0} is not a URL")]
    Url(String),
    #[error("no answer from the key URL")]
    Request(#[source] hyper_util::client::legacy::Error),
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("the key URL answered HTTP {0}")]
    Status(http::StatusCode),
    #[error("the key set could not be read")]
    Body(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("the answer is not a key set")]
    Json(#[source] serde_json::Error),
    #[error("the key set holds no RSA key with an id")]
    NoKeys,
}

/// What the cache knows about a key id.
#[derive(Debug, Clone)]
pub enum KeyLookup {
    Found(Box<Jwk>),
    /// The issuer does not publish this key (after a refresh, or one too recent to repeat).
    Unknown,
    /// No keys could be fetched.
    Unavailable(Arc<JwksError>),
}

#[derive(Default)]
struct Cached {
    keys: Vec<Jwk>,
    fetched: Option<Instant>,
    attempted: Option<Instant>,
    /// Fetch attempts so far, and how the last one ended: callers that waited for a fetch in
    /// progress take its result instead of fetching again.
    attempts: u64,
    last_error: Option<Arc<JwksError>>,
}

pub struct JwksCache {
    url: String,
    client: HttpClient,
    cached: RwLock<Cached>,
    /// One fetch at a time; the others wait for its result.
    fetching: Mutex<()>,
}

impl JwksCache {
    /// A cache of the keys published at `url` (https, or http for a local issuer).
    pub fn new(url: impl Into<String>) -> Result<Self, std::io::Error> {
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_native_roots()?
            .https_or_http()
            .enable_http1()
            .build();
        Ok(JwksCache {
            url: url.into(),
            client: Client::builder(TokioExecutor::new()).build(https),
            cached: RwLock::new(Cached::default()),
            fetching: Mutex::new(()),
        })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// Fetches the keys now (at start-up), so the first upload does not wait for them. A failure
    /// is only logged: lookups try again.
    pub async fn prefetch(&self) {
        if let Err(e) = self.refresh().await {
            let error = aws_sdk_s3::error::DisplayErrorContext(&*e);
            tracing::warn!(url = %self.url, error = %error, "could not fetch the identity keys yet");
        }
    }

    /// The key `kid`, refreshing the cache when it is stale or lacks the key.
    pub async fn key(&self, kid: &str) -> KeyLookup {
        let (found, stale, empty, recently_tried) = {
            let c = self.cached.read().await;
            (
                c.keys
                    .iter()
                    .find(|k| k.common.key_id.as_deref() == Some(kid))
                    .cloned(),
                c.fetched.is_none_or(|t| t.elapsed() > REFRESH_AFTER),
                c.keys.is_empty(),
                c.attempted.is_some_and(|t| t.elapsed() < MIN_REFETCH),
            )
        };
        match found {
            Some(jwk) if !stale || recently_tried => return KeyLookup::Found(Box::new(jwk)),
            Some(jwk) => {
                // Stale: try a refresh, but an outage keeps the keys we have.
                if let Err(e) = self.refresh().await {
                    let error = aws_sdk_s3::error::DisplayErrorContext(&*e);
                    tracing::warn!(url = %self.url, error = %error, "identity key refresh failed; using cached keys");
                }
                return match self.find(kid).await {
                    Some(fresh) => KeyLookup::Found(Box::new(fresh)),
                    None => KeyLookup::Found(Box::new(jwk)),
                };
            }
            None if recently_tried && !empty => return KeyLookup::Unknown,
            None => {}
        }
        // Missing: with nothing cached (a cold start during an outage) try a few times, quickly.
        let attempts = if empty { 3 } else { 1 };
        let mut last_error = None;
        for attempt in 0..attempts {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(200 << attempt)).await;
            }
            match self.refresh().await {
                Ok(()) => break,
                Err(e) => last_error = Some(e),
            }
        }
        match (self.find(kid).await, last_error) {
            (Some(jwk), _) => KeyLookup::Found(Box::new(jwk)),
            (None, Some(error)) if self.cached.read().await.keys.is_empty() => {
                KeyLookup::Unavailable(error)
            }
            (None, _) => KeyLookup::Unknown,
        }
    }

    async fn find(&self, kid: &str) -> Option<Jwk> {
        let c = self.cached.read().await;
        c.keys
            .iter()
            .find(|k| k.common.key_id.as_deref() == Some(kid))
            .cloned()
    }

    /// Fetches the key set and replaces the cache with it; on failure the cache keeps its keys.
    async fn refresh(&self) -> Result<(), Arc<JwksError>> {
        let seen = self.cached.read().await.attempts;
        let _one_at_a_time = self.fetching.lock().await;
        {
            // Another caller fetched while this one waited: its result is ours.
            let c = self.cached.read().await;
            if c.attempts != seen {
                return c.last_error.clone().map_or(Ok(()), Err);
            }
        }
        let result = tokio::time::timeout(FETCH_TIMEOUT, self.fetch())
            .await
            .unwrap_or(Err(JwksError::Timeout(FETCH_TIMEOUT)))
            .map_err(Arc::new);
        let mut c = self.cached.write().await;
        c.attempts += 1;
        c.attempted = Some(Instant::now());
        match result {
            Ok(keys) => {
                c.keys = keys;
                c.fetched = c.attempted;
                c.last_error = None;
                Ok(())
            }
            Err(e) => {
                c.last_error = Some(e.clone());
                Err(e)
            }
        }
    }

    async fn fetch(&self) -> Result<Vec<Jwk>, JwksError> {
        let uri: http::Uri = self
            .url
            .parse()
            .map_err(|_| JwksError::Url(self.url.clone()))?;
        let response = self.client.get(uri).await.map_err(JwksError::Request)?;
        if !response.status().is_success() {
            return Err(JwksError::Status(response.status()));
        }
        let body = Limited::new(response.into_body(), MAX_JWKS_BYTES)
            .collect()
            .await
            .map_err(JwksError::Body)?
            .to_bytes();
        parse_key_set(&body)
    }
}

/// The usable keys of a JWKS document: RSA signing keys with an id. Keys of other kinds are
/// skipped rather than failing the set.
pub fn parse_key_set(body: &[u8]) -> Result<Vec<Jwk>, JwksError> {
    #[derive(serde::Deserialize)]
    struct Set {
        keys: Vec<serde_json::Value>,
    }
    let set: Set = serde_json::from_slice(body).map_err(JwksError::Json)?;
    let keys: Vec<Jwk> = set
        .keys
        .into_iter()
        .filter_map(|k| serde_json::from_value::<Jwk>(k).ok())
        .filter(|k| {
            k.common.key_id.is_some()
                && matches!(k.algorithm, jsonwebtoken::jwk::AlgorithmParameters::RSA(_))
        })
        .collect();
    if keys.is_empty() {
        return Err(JwksError::NoKeys);
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_sets_keep_their_rsa_keys_and_skip_the_rest() {
        // The shape Cognito publishes, plus keys of other kinds.
        let body = br#"{"keys":[
            {"kty":"RSA","alg":"RS512","use":"sig","kid":"us-east-11","n":"sXch","e":"AQAB"},
            {"kty":"EC","crv":"P-256","kid":"ec","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"},
            {"kty":"RSA","n":"sXch","e":"AQAB"},
            {"kty":"weird"}
        ]}"#;
        let keys = parse_key_set(body).unwrap();
        assert_eq!(keys.len(), 1);
        assert_eq!(keys[0].common.key_id.as_deref(), Some("us-east-11"));
        assert!(parse_key_set(b"{\"keys\": []}").is_err());
        assert!(parse_key_set(b"<html>").is_err());
    }
}
