//! The vocabulary every other snaplabel crate speaks.
//!
//! Nothing here performs I/O, so the same types compile for the Lambda functions, the local dev
//! stack, the CLI and the browser (WASM) front end, and a document written by one is read by the
//! others without translation.
//!
//! - [`detect`]: Amazon Rekognition `DetectLabels` request options and response shapes
//!   (PascalCase on the wire), so code written for Rekognition reads snaplabel results unchanged.
//! - [`result`]: the result document stored next to every upload (success or failure).
//! - [`api`]: the presign HTTP API's request and response bodies.
//! - [`gallery`]: a guest's gallery index (labels per upload) and label search over it.
//! - [`export`]: the guest's labels as CSV and NDJSON downloads.
//! - [`keys`]: the object-key layout (`uploads/…` → `labels/…`) and its parsing.
//! - [`format`]: image formats, recognised from content bytes and MIME types.
//! - [`error`]: stable error codes with human messages.
//! - [`config`]: pipeline configuration shared by the Lambda functions and `snaplabel dev`.

pub mod api;
pub mod config;
pub mod detect;
pub mod error;
pub mod export;
pub mod format;
pub mod gallery;
pub mod keys;
pub mod result;

pub use error::{ErrorBody, ErrorCode};
pub use format::ImageFormat;
