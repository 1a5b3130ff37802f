//! SigV4 checks for the local awsJson services, as the real ones make them: the request is
//! signed again with the stack's secret (by `aws-sigv4`, the SDK's own signer) over exactly the
//! headers the client says it signed, and the two signatures must match. The clock may be off by
//! at most 15 minutes, as AWS allows.

use crate::Credentials;
use crate::aws_json::AwsError;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use axum::http::request::Parts;
use std::time::{Duration, SystemTime};

const MAX_CLOCK_SKEW: Duration = Duration::from_secs(15 * 60);

/// The parts of `Authorization: AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=…`.
struct Authorization<'a> {
    access_key: &'a str,
    region: &'a str,
    service: &'a str,
    signed_headers: Vec<&'a str>,
    signature: &'a str,
}

fn parse(header: &str) -> Option<Authorization<'_>> {
    let rest = header.strip_prefix("AWS4-HMAC-SHA256")?.trim_start();
    let (mut credential, mut signed, mut signature) = (None, None, None);
    for part in rest.split(',') {
        let (name, value) = part.trim().split_once('=')?;
        match name {
            "Credential" => credential = Some(value),
            "SignedHeaders" => signed = Some(value),
            "Signature" => signature = Some(value),
            _ => {}
        }
    }
    // AKID/20261204/us-east-1/rekognition/aws4_request
    let mut scope = credential?.split('/');
    let access_key = scope.next()?;
    let _date = scope.next()?;
    let region = scope.next()?;
    let service = scope.next()?;
    Some(Authorization {
        access_key,
        region,
        service,
        signed_headers: signed?.split(';').collect(),
        signature: signature?,
    })
}

fn refused(kind: &'static str, message: &str) -> AwsError {
    AwsError::new(kind, message.to_string())
}

/// Whether the request was signed with `credentials` for `service` in `region`.
pub fn verify(
    parts: &Parts,
    body: &[u8],
    credentials: &Credentials,
    region: &str,
    service: &str,
) -> Result<(), AwsError> {
    let header = parts
        .headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| {
            refused(
                "MissingAuthenticationTokenException",
                "Missing Authentication Token: the request must be signed (SigV4)",
            )
        })?;
    let auth = parse(header).ok_or_else(|| {
        refused(
            "IncompleteSignatureException",
            "the Authorization header is malformed",
        )
    })?;
    if auth.access_key != credentials.access_key {
        return Err(refused(
            "UnrecognizedClientException",
            "The security token included in the request is invalid.",
        ));
    }
    if auth.region != region || auth.service != service {
        return Err(refused(
            "InvalidSignatureException",
            "Credential should be scoped to a valid region and service.",
        ));
    }
    let date = parts
        .headers
        .get("x-amz-date")
        .and_then(|v| v.to_str().ok())
        .and_then(|d| {
            time::PrimitiveDateTime::parse(
                d,
                time::macros::format_description!("[year][month][day]T[hour][minute][second]Z"),
            )
            .ok()
        })
        .map(|t| SystemTime::from(t.assume_utc()))
        .ok_or_else(|| {
            refused(
                "IncompleteSignatureException",
                "X-Amz-Date is missing or malformed",
            )
        })?;
    let now = SystemTime::now();
    let skew = now
        .duration_since(date)
        .or_else(|_| date.duration_since(now))
        .unwrap_or_default();
    if skew > MAX_CLOCK_SKEW {
        return Err(refused(
            "InvalidSignatureException",
            "Signature expired: the request time is more than 15 minutes from the server's",
        ));
    }
    let mut signed = Vec::with_capacity(auth.signed_headers.len());
    for name in &auth.signed_headers {
        if *name == "x-amz-date" {
            continue;
        }
        let value = parts
            .headers
            .get(*name)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| {
                refused(
                    "InvalidSignatureException",
                    "a signed header is missing from the request",
                )
            })?;
        signed.push((*name, value));
    }
    let identity = aws_credential_types::Credentials::new(
        &credentials.access_key,
        &credentials.secret_key,
        None,
        None,
        "snaplabel-local",
    )
    .into();
    let mut settings = SigningSettings::default();
    // Sign exactly what the client signed: nothing excluded, nothing added but the date.
    settings.excluded_headers = Some(Vec::new());
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(service)
        .time(date)
        .settings(settings)
        .build()
        .map_err(|e| AwsError::new("InternalErrorException", e.to_string()))?
        .into();
    let uri = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let signable = SignableRequest::new(
        parts.method.as_str(),
        uri,
        signed.into_iter(),
        SignableBody::Bytes(body),
    )
    .map_err(|e| refused("InvalidSignatureException", &e.to_string()))?;
    let (_, expected) = sign(signable, &params)
        .map_err(|e| refused("InvalidSignatureException", &e.to_string()))?
        .into_parts();
    if aws_lc_rs::constant_time::verify_slices_are_equal(
        expected.as_bytes(),
        auth.signature.as_bytes(),
    )
    .is_err()
    {
        return Err(refused(
            "InvalidSignatureException",
            "The request signature we calculated does not match the signature you provided.",
        ));
    }
    Ok(())
}
