//! Guest tokens verified against the issuer's published keys: the local Cognito issues and
//! publishes them over HTTP, exactly as the real one does, and every forgery is refused.

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use snaplabel_core::config::OwnerKey;
use snaplabel_localaws::ServerHandle;
use snaplabel_localaws::cognito::CognitoService;
use snaplabel_localaws::server::{bind_loopback, serve};
use snaplabel_pipeline::identity::{CognitoTokens, IdentityError, IdentityVerifier, owner_segment};
use snaplabel_pipeline::jwks::JwksCache;
use std::sync::Arc;

const POOL: &str = "us-east-1:00000000-0000-4000-8000-000000000042";
const ISSUER: &str = "http://issuer.test";

/// The pool's key set, served over HTTP on a loopback port.
async fn publish(cognito: Arc<CognitoService>) -> ServerHandle {
    let keys = axum::routing::get(move || async move { cognito.jwks_json() });
    serve(
        bind_loopback(0).await.unwrap(),
        axum::Router::new().route("/jwks", keys),
    )
    .unwrap()
}

fn owner_key() -> OwnerKey {
    OwnerKey::new("an owner key of at least thirty-two characters").unwrap()
}

fn new_identity(cognito: &CognitoService) -> String {
    let answer = cognito
        .call(
            "AWSCognitoIdentityService.GetId",
            format!("{{\"IdentityPoolId\":\"{POOL}\"}}").as_bytes(),
        )
        .unwrap();
    answer["IdentityId"].as_str().unwrap().to_string()
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

#[tokio::test]
async fn tokens_prove_identities_and_forgeries_are_refused() {
    let data = tempfile::tempdir().unwrap();
    let cognito = Arc::new(CognitoService::open(POOL, data.path(), ISSUER).unwrap());
    let server = publish(cognito.clone()).await;
    let keys = Arc::new(JwksCache::new(format!("{}/jwks", server.url())).unwrap());
    let verifier = CognitoTokens::new(POOL, ISSUER, owner_key(), keys.clone());

    let id = new_identity(&cognito);
    let token = cognito.token_for(&id).unwrap();
    let owner = verifier.owner(Some(&bearer(&token))).await.unwrap();
    assert_eq!(owner, owner_segment(&owner_key(), &id));
    assert_eq!(
        verifier
            .owner(Some(&format!("bearer   {token} ")))
            .await
            .unwrap(),
        owner,
        "the scheme is case-insensitive"
    );

    // Claims signed with the pool's own key, but wrong: each is refused with its reason.
    let pem = std::fs::read(data.path().join("cognito-signing-key.pem")).unwrap();
    let key = EncodingKey::from_rsa_pem(&pem).unwrap();
    let kid = jsonwebtoken::decode_header(&token).unwrap().kid.unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let sign = |claims: serde_json::Value| {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(kid.clone());
        jsonwebtoken::encode(&header, &claims, &key).unwrap()
    };
    let claims = |iss: &str, aud: &str, sub: &str, amr: &str, exp: u64| serde_json::json!({"iss": iss, "aud": aud, "sub": sub, "amr": [amr], "iat": now, "exp": exp});
    for (what, forged, reason) in [
        (
            "expired",
            sign(claims(ISSUER, POOL, &id, "unauthenticated", now - 120)),
            "expired",
        ),
        (
            "another pool",
            sign(claims(
                ISSUER,
                "us-east-1:other",
                &id,
                "unauthenticated",
                now + 60,
            )),
            "another identity pool",
        ),
        (
            "another issuer",
            sign(claims(
                "https://evil.example",
                POOL,
                &id,
                "unauthenticated",
                now + 60,
            )),
            "another issuer",
        ),
        (
            "an authenticated identity",
            sign(claims(ISSUER, POOL, &id, "authenticated", now + 60)),
            "guest",
        ),
        (
            "a malformed identity",
            sign(claims(
                ISSUER,
                POOL,
                "us-east-1:../x",
                "unauthenticated",
                now + 60,
            )),
            "malformed identity",
        ),
        (
            "another region's identity",
            sign(claims(
                ISSUER,
                POOL,
                "eu-west-1:0000-aaaa",
                "unauthenticated",
                now + 60,
            )),
            "malformed identity",
        ),
    ] {
        match verifier.owner(Some(&bearer(&forged))).await {
            Err(IdentityError::Invalid(message)) => {
                assert!(message.contains(reason), "{what}: {message}")
            }
            other => panic!("{what}: {other:?}"),
        }
    }
    // Tampering with a real token: the payload edited, the algorithm swapped for "none" or for
    // HS256 keyed with something public, the key id unknown.
    let parts: Vec<&str> = token.split('.').collect();
    let tampered = format!("{}.{}x.{}", parts[0], parts[1], parts[2]);
    let none = {
        use base64::Engine;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        format!(
            "{}.{}.",
            b64.encode(r#"{"alg":"none","typ":"JWT"}"#),
            parts[1]
        )
    };
    let hs256 = {
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(kid.clone());
        jsonwebtoken::encode(
            &header,
            &claims(ISSUER, POOL, &id, "unauthenticated", now + 60),
            &EncodingKey::from_secret(cognito.jwks_json().as_bytes()).unwrap(),
        )
        .unwrap()
    };
    let unknown_kid = {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some("rotated-away".into());
        jsonwebtoken::encode(
            &header,
            &claims(ISSUER, POOL, &id, "unauthenticated", now + 60),
            &key,
        )
        .unwrap()
    };
    for forged in [
        tampered,
        none,
        hs256,
        unknown_kid,
        "garbage".into(),
        String::new(),
    ] {
        assert!(
            matches!(
                verifier.owner(Some(&bearer(&forged))).await,
                Err(IdentityError::Invalid(_))
            ),
            "{forged}"
        );
    }
    assert!(matches!(
        verifier.owner(None).await,
        Err(IdentityError::Invalid(_))
    ));
    assert!(
        matches!(
            verifier.owner(Some(&id)).await,
            Err(IdentityError::Invalid(_))
        ),
        "the bare id"
    );

    // The key URL goes down: tokens signed with the cached keys keep working.
    server.shutdown().await;
    let second = new_identity(&cognito);
    let token = cognito.token_for(&second).unwrap();
    assert_eq!(
        verifier.owner(Some(&bearer(&token))).await.unwrap(),
        owner_segment(&owner_key(), &second)
    );
    // A fresh process during that outage has no keys at all: unavailable, not invalid.
    let cold = CognitoTokens::new(
        POOL,
        ISSUER,
        owner_key(),
        Arc::new(JwksCache::new(keys.url()).unwrap()),
    );
    assert!(matches!(
        cold.owner(Some(&bearer(&token))).await,
        Err(IdentityError::Unavailable { .. })
    ));
}
