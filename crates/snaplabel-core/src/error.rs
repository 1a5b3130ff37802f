//! Stable error codes. Clients branch on [`ErrorCode`]; the message is for people.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Every failure snaplabel reports, by a code that never changes once released.
///
/// Serialized in `snake_case` (`"unsupported_format"`), both in HTTP error bodies and in failure
/// result documents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    // --- request validation (presign API) ---
    /// The request body is not the JSON the endpoint expects.
    MalformedRequest,
    /// The declared content type is not an image type snaplabel labels.
    UnsupportedContentType,
    /// The declared or actual size exceeds the configured cap.
    TooLarge,
    /// The request lacks a positive `size`.
    InvalidSize,
    /// The guest's proof of identity (a Cognito OpenID token) is missing, malformed, expired,
    /// for another pool, or signed by a key the issuer does not publish.
    InvalidIdentity,
    /// The guest asked for more uploads than its quota allows; `Retry-After` says when to retry.
    RateLimited,
    /// No route for this method and path.
    NotFound,
    /// The method is not allowed on this path.
    MethodNotAllowed,
    // --- image content (label function) ---
    /// The object has zero bytes.
    EmptyObject,
    /// The bytes are not an image format snaplabel understands.
    UnsupportedFormat,
    /// The bytes look like a supported format but cannot be decoded (truncated, damaged).
    CorruptImage,
    /// Width × height exceeds the pixel limit (decompression-bomb guard), checked from the header.
    TooManyPixels,
    /// The image is too small to say anything meaningful about.
    ImageTooSmall,
    /// The object disappeared between the event and the download.
    ObjectMissing,
    // --- infrastructure ---
    /// The labeler (local model or Rekognition) failed.
    LabelerFailed,
    /// Object storage failed after retries.
    StorageFailed,
    /// A service snaplabel depends on (the identity issuer's keys) did not answer; retry later.
    Unavailable,
    /// Anything else; always a bug worth reporting.
    Internal,
}

impl ErrorCode {
    /// The code as written on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::MalformedRequest => "malformed_request",
            ErrorCode::UnsupportedContentType => "unsupported_content_type",
            ErrorCode::TooLarge => "too_large",
            ErrorCode::InvalidSize => "invalid_size",
            ErrorCode::InvalidIdentity => "invalid_identity",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::NotFound => "not_found",
            ErrorCode::MethodNotAllowed => "method_not_allowed",
            ErrorCode::EmptyObject => "empty_object",
            ErrorCode::UnsupportedFormat => "unsupported_format",
            ErrorCode::CorruptImage => "corrupt_image",
            ErrorCode::TooManyPixels => "too_many_pixels",
            ErrorCode::ImageTooSmall => "image_too_small",
            ErrorCode::ObjectMissing => "object_missing",
            ErrorCode::LabelerFailed => "labeler_failed",
            ErrorCode::StorageFailed => "storage_failed",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::Internal => "internal",
        }
    }

    /// The HTTP status an API answers with for this code.
    pub fn http_status(self) -> u16 {
        match self {
            ErrorCode::NotFound | ErrorCode::ObjectMissing => 404,
            ErrorCode::MethodNotAllowed => 405,
            ErrorCode::InvalidIdentity => 403,
            ErrorCode::RateLimited => 429,
            ErrorCode::LabelerFailed | ErrorCode::StorageFailed | ErrorCode::Internal => 500,
            ErrorCode::Unavailable => 503,
            _ => 400,
        }
    }

    /// Whether the failure is the input's fault (retrying the same bytes cannot help).
    pub fn is_permanent(self) -> bool {
        !matches!(
            self,
            ErrorCode::LabelerFailed
                | ErrorCode::StorageFailed
                | ErrorCode::Internal
                | ErrorCode::Unavailable
                | ErrorCode::RateLimited
        )
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A code with its human explanation: `{"code": "...", "message": "..."}`, and for API answers
/// the request id under which the server logged what happened (`"request_id"`): failures of
/// services behind the API are answered with a generic message, and the id is what a person
/// quotes to find the details in the logs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub code: ErrorCode,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

impl ErrorBody {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ErrorBody {
            code,
            message: message.into(),
            request_id: None,
        }
    }

    pub fn with_request_id(mut self, request_id: impl Into<String>) -> Self {
        self.request_id = Some(request_id.into());
        self
    }
}

impl fmt::Display for ErrorBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for ErrorBody {}

/// The body of every non-2xx API answer: `{"error": {"code", "message"}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiError {
    pub error: ErrorBody,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_serialize_as_their_stable_names() {
        for code in [
            ErrorCode::MalformedRequest,
            ErrorCode::UnsupportedContentType,
            ErrorCode::TooLarge,
            ErrorCode::InvalidSize,
            ErrorCode::InvalidIdentity,
            ErrorCode::RateLimited,
            ErrorCode::NotFound,
            ErrorCode::MethodNotAllowed,
            ErrorCode::EmptyObject,
            ErrorCode::UnsupportedFormat,
            ErrorCode::CorruptImage,
            ErrorCode::TooManyPixels,
            ErrorCode::ImageTooSmall,
            ErrorCode::ObjectMissing,
            ErrorCode::LabelerFailed,
            ErrorCode::StorageFailed,
            ErrorCode::Unavailable,
            ErrorCode::Internal,
        ] {
            let json = serde_json::to_string(&code).unwrap();
            assert_eq!(json, format!("\"{}\"", code.as_str()));
            let back: ErrorCode = serde_json::from_str(&json).unwrap();
            assert_eq!(back, code);
        }
    }
}
