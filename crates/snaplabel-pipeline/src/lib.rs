//! The two functions of snaplabel, as plain async handlers over small traits.
//!
//! - [`api::ApiHandler`]: the presign API (`POST /api/uploads`): validates a request, generates the
//!   key, signs PUT (type and length included), HEAD and GET URLs.
//! - [`label::LabelHandler`]: the S3-triggered labeler: every record of an event → one result
//!   document under `labels/`.
//!
//! They depend only on [`store::ObjectStore`], [`labeler::Labeler`] and
//! [`identity::IdentityVerifier`]. The AWS implementations ([`store::S3Store`],
//! [`rekognition::RekognitionLabeler`], [`identity::CognitoTokens`]) are what both the Lambda
//! functions and `snaplabel dev` use — in dev they are simply pointed at local endpoints
//! ([`aws`]). The thin Lambda `main`s live in `snaplabel-lambda-*`.

pub mod api;
pub mod aws;
pub mod event;
pub mod gallery;
pub mod gallery_api;
pub mod http;
pub mod identity;
pub mod jwks;
pub mod label;
pub mod labeler;
#[cfg(feature = "local")]
pub mod local;
pub mod rekognition;
pub mod store;
pub mod telemetry;
pub mod wiring;

pub use api::ApiHandler;
pub use label::{LabelHandler, LabelSettings};
pub use labeler::{LabelRequest, Labeler};
pub use store::{ObjectStore, S3Store};
