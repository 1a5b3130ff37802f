//! Adapting `lambda_http` events to the plain `http` types [`snaplabel_pipeline::ApiHandler`]
//! speaks, and back.

use bytes::Bytes;
use lambda_http::{Body, Request, Response};

/// A Function URL / API Gateway / ALB request as `http::Request<Bytes>` (base64 bodies decoded by
/// `lambda_http`).
pub fn to_api_request(request: Request) -> lambda_http::http::Request<Bytes> {
    let (parts, body) = request.into_parts();
    let bytes = match body {
        Body::Text(text) => Bytes::from(text),
        Body::Binary(binary) => Bytes::from(binary),
        _ => Bytes::new(),
    };
    lambda_http::http::Request::from_parts(parts, bytes)
}

/// The handler's answer as a Lambda HTTP response (JSON bodies go out as text).
pub fn to_lambda_response(response: lambda_http::http::Response<Bytes>) -> Response<Body> {
    let (parts, body) = response.into_parts();
    let body = match String::from_utf8(body.to_vec()) {
        Ok(text) if text.is_empty() => Body::Empty,
        Ok(text) => Body::Text(text),
        Err(binary) => Body::Binary(binary.into_bytes()),
    };
    Response::from_parts(parts, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A Lambda Function URL event, as AWS delivers it (payload format 2.0).
    fn function_url_event(body: &str, base64: bool) -> String {
        serde_json::json!({
            "version": "2.0",
            "routeKey": "$default",
            "rawPath": "/api/uploads",
            "rawQueryString": "",
            "headers": {"content-type": "application/json", "origin": "https://app.example.com", "host": "abc.lambda-url.eu-west-1.on.aws"},
            "requestContext": {
                "accountId": "anonymous", "apiId": "abc", "domainName": "abc.lambda-url.eu-west-1.on.aws", "domainPrefix": "abc",
                "http": {"method": "POST", "path": "/api/uploads", "protocol": "HTTP/1.1", "sourceIp": "203.0.113.9", "userAgent": "test"},
                "requestId": "r1", "routeKey": "$default", "stage": "$default", "time": "29/Nov/2026:05:00:00 +0000", "timeEpoch": 1795928400000u64
            },
            "body": body,
            "isBase64Encoded": base64
        })
        .to_string()
    }

    #[test]
    fn function_url_events_become_plain_requests() {
        let json = r#"{"filename":"cat.jpg","content_type":"image/jpeg","size":10}"#;
        for (body, base64) in [
            (json.to_string(), false),
            (base64_encode(json.as_bytes()), true),
        ] {
            let request =
                lambda_http::request::from_str(&function_url_event(&body, base64)).unwrap();
            let api = to_api_request(request);
            assert_eq!(api.method(), "POST");
            assert_eq!(api.uri().path(), "/api/uploads");
            assert_eq!(api.headers()["origin"], "https://app.example.com");
            assert_eq!(api.body().as_ref(), json.as_bytes());
        }
    }

    #[test]
    fn responses_keep_status_headers_and_body() {
        let response = lambda_http::http::Response::builder()
            .status(201)
            .header("content-type", "application/json")
            .body(Bytes::from_static(b"{\"id\":\"x\"}"))
            .unwrap();
        let out = to_lambda_response(response);
        assert_eq!(out.status(), 201);
        assert_eq!(out.headers()["content-type"], "application/json");
        assert!(matches!(out.body(), Body::Text(t) if t == "{\"id\":\"x\"}"));
    }

    fn base64_encode(bytes: &[u8]) -> String {
        const ALPHABET: &[u8; 64] =
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut out = String::new();
        for chunk in bytes.chunks(3) {
            let b = [
                chunk[0],
                *chunk.get(1).unwrap_or(&0),
                *chunk.get(2).unwrap_or(&0),
            ];
            let n = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
            for i in 0..4 {
                if i <= chunk.len() {
                    out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
                } else {
                    out.push('=');
                }
            }
        }
        out
    }
}
