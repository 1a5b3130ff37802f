//! A real S3-protocol server (s3s over a temp folder) on 127.0.0.1, a local Rekognition endpoint,
//! and the handlers wired to them exactly as in Lambda.

#![allow(dead_code)]

use async_trait::async_trait;
use bytes::Bytes;
use snaplabel_core::config::Settings;
use snaplabel_core::detect::{DetectLabelsResponse, DetectOptions, Label, NamedItem};
use snaplabel_localaws::rekognition::{DetectLabelsBackend, ImageSource, RekognitionError};
use snaplabel_localaws::{ServerHandle, rekognition, s3};
use snaplabel_pipeline::identity::SharedAnonymous;
use snaplabel_pipeline::rekognition::RekognitionLabeler;
use snaplabel_pipeline::{ApiHandler, LabelHandler, LabelSettings, S3Store, aws};
use std::sync::{Arc, Mutex};

pub const BUCKET: &str = "snaplabel-test";
pub const ACCESS_KEY: &str = "AKIDSNAPLABELTEST";
pub const SECRET_KEY: &str = "snaplabel-test-secret-key";
pub const ORIGIN: &str = "http://localhost:8080";

pub use snaplabel_fixtures::photo as fixture;

/// Stands in for Amazon Rekognition, which cannot run here: it decodes what it receives with
/// snaplabel-imageio and answers with labels naming the format and how the image arrived, so the
/// tests can see exactly what the Rekognition labeler sent over the wire.
#[derive(Default)]
pub struct RecordingRekognition {
    pub calls: Mutex<Vec<(String, ImageSource)>>,
}

#[async_trait]
impl DetectLabelsBackend for RecordingRekognition {
    async fn detect_labels(
        &self,
        image: Bytes,
        source: ImageSource,
        options: DetectOptions,
    ) -> Result<DetectLabelsResponse, RekognitionError> {
        let probe = snaplabel_imageio::decode(&image, &Default::default())
            .map_err(|e| RekognitionError::new("InvalidImageFormatException", e.message))?
            .probe;
        if !probe.format.rekognition_native() {
            return Err(RekognitionError::new(
                "InvalidImageFormatException",
                "Request has unsupported image format",
            ));
        }
        self.calls
            .lock()
            .unwrap()
            .push((probe.format.to_string(), source.clone()));
        let via = match source {
            ImageSource::Inline => "Inline",
            ImageSource::S3Object { .. } => "S3Object",
        };
        let labels = vec![
            Label {
                name: format!("Format {}", probe.format),
                confidence: 99.0,
                categories: vec![NamedItem::new("Test")],
                ..Default::default()
            },
            Label {
                name: format!("Via {via}"),
                confidence: 98.0,
                ..Default::default()
            },
            Label {
                name: format!("Size {}x{}", probe.width, probe.height),
                confidence: 97.0,
                ..Default::default()
            },
        ];
        Ok(DetectLabelsResponse {
            labels: options.filter_labels(labels),
            label_model_version: Some("test".into()),
            ..Default::default()
        })
    }
}

pub struct Harness {
    pub dir: tempfile::TempDir,
    pub s3: ServerHandle,
    pub rekognition_endpoint: ServerHandle,
    pub rekognition: Arc<RecordingRekognition>,
    pub store: Arc<S3Store>,
    pub config: Settings,
    /// The presign API's router, as the Lambda function serves it.
    pub api: axum::Router,
    pub labels: LabelHandler,
    pub http: reqwest::Client,
}

impl Harness {
    pub async fn start() -> Harness {
        Harness::with_config(|_| {}).await
    }

    pub async fn with_config(adjust: impl FnOnce(&mut Settings)) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let s3_root = dir.path().join("s3");
        let s3 = s3::start(
            s3::LocalS3Config {
                root: s3_root.clone(),
                credentials: snaplabel_localaws::Credentials::new(ACCESS_KEY, SECRET_KEY),
                buckets: vec![BUCKET.into()],
                cors_origins: vec![ORIGIN.into()],
                public_host: None,
            },
            snaplabel_localaws::server::bind_loopback(0).await.unwrap(),
        )
        .unwrap();
        let rekognition = Arc::new(RecordingRekognition::default());
        let rekognition_endpoint = snaplabel_localaws::aws_json::start(
            snaplabel_localaws::server::bind_loopback(0).await.unwrap(),
            snaplabel_localaws::Credentials::new(ACCESS_KEY, SECRET_KEY),
            "us-east-1",
            None,
            Some(Arc::new(rekognition::RekognitionService::new(
                rekognition.clone(),
                Some(s3_root),
            ))),
        )
        .unwrap();

        let mut config = Settings::new(BUCKET);
        config.allowed_origins = vec![ORIGIN.into()];
        config.min_confidence = 50.0;
        adjust(&mut config);

        let sdk = aws::static_sdk_config(ACCESS_KEY, SECRET_KEY, "us-east-1");
        let store = Arc::new(S3Store::new(aws::s3_client(&sdk, Some(&s3.url())), BUCKET));
        let limits = snaplabel_imageio::Limits::new(config.max_pixels);
        let labeler = Arc::new(RekognitionLabeler::new(
            aws::rekognition_client(&sdk, Some(&rekognition_endpoint.url())),
            limits,
        ));
        let api = snaplabel_pipeline::http::api_router(Arc::new(ApiHandler::new(
            store.clone(),
            Arc::new(SharedAnonymous),
            config.clone(),
        )));
        let labels = LabelHandler::new(store.clone(), labeler, LabelSettings::from_config(&config));
        Harness {
            dir,
            s3,
            rekognition_endpoint,
            rekognition,
            store,
            config,
            api,
            labels,
            http: reqwest::Client::new(),
        }
    }

    /// `POST /api/uploads` through the API handler, as the Lambda function URL would deliver it.
    pub async fn post_upload(&self, body: serde_json::Value) -> (u16, serde_json::Value) {
        self.api_call("POST", "/api/uploads", &body.to_string())
            .await
    }

    /// Any API request through the router (from the configured origin): the status and the JSON
    /// answer (`null` for an empty body, as a `204` has).
    pub async fn api_call(&self, method: &str, path: &str, body: &str) -> (u16, serde_json::Value) {
        let request = http::Request::builder()
            .method(method)
            .uri(format!("https://fn.example{path}"))
            .header("content-type", "application/json")
            .header("origin", ORIGIN)
            .body(Bytes::from(body.to_string()))
            .unwrap();
        let response = self.call(request).await;
        let status = response.status().as_u16();
        let json = if response.body().is_empty() {
            serde_json::Value::Null
        } else {
            serde_json::from_slice(response.body()).unwrap()
        };
        (status, json)
    }

    /// A request the API is expected to refuse: its status, and the error's code and message
    /// (empty when the answer carries none).
    pub async fn refusal(&self, method: &str, path: &str, body: &str) -> (u16, String, String) {
        let (status, answer) = self.api_call(method, path, body).await;
        let text = |field: &str| {
            answer["error"][field]
                .as_str()
                .unwrap_or_default()
                .to_string()
        };
        (status, text("code"), text("message"))
    }

    /// The bucket's HEAD answer for `key`, through the SDK.
    async fn head(
        &self,
        key: &str,
    ) -> Result<
        aws_sdk_s3::operation::head_object::HeadObjectOutput,
        aws_sdk_s3::error::SdkError<aws_sdk_s3::operation::head_object::HeadObjectError>,
    > {
        self.store
            .client()
            .head_object()
            .bucket(BUCKET)
            .key(key)
            .send()
            .await
    }

    /// Whether an object exists in the bucket.
    pub async fn exists(&self, key: &str) -> bool {
        self.head(key).await.is_ok()
    }

    /// A request through the API's router, its answer's body collected.
    pub async fn call(&self, request: http::Request<Bytes>) -> http::Response<Bytes> {
        use http_body_util::BodyExt;
        use tower::ServiceExt;
        let response = self
            .api
            .clone()
            .oneshot(request.map(axum::body::Body::from))
            .await
            .unwrap();
        let (parts, body) = response.into_parts();
        http::Response::from_parts(parts, body.collect().await.unwrap().to_bytes())
    }

    /// Uploads through the presigned URL exactly as a browser would.
    pub async fn put_presigned(
        &self,
        created: &serde_json::Value,
        body: Vec<u8>,
    ) -> reqwest::Response {
        let mut request = self
            .http
            .put(created["upload"]["url"].as_str().unwrap())
            .body(body);
        for (name, value) in created["upload"]["headers"].as_object().unwrap() {
            request = request.header(name, value.as_str().unwrap());
        }
        request.send().await.unwrap()
    }

    /// Creates an upload and PUTs the bytes; returns the create response.
    pub async fn upload(
        &self,
        filename: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> serde_json::Value {
        let (status, created) =
            self.post_upload(serde_json::json!({"filename": filename, "content_type": content_type, "size": body.len()})).await;
        assert_eq!(status, 201, "{created}");
        let put = self.put_presigned(&created, body).await;
        assert_eq!(put.status(), 200, "{}", put.text().await.unwrap());
        created
    }

    /// Puts an object directly with credentials (for keys the API would never generate).
    pub async fn put_raw(&self, key: &str, body: Vec<u8>) {
        self.store
            .client()
            .put_object()
            .bucket(BUCKET)
            .key(key)
            .body(body.into())
            .send()
            .await
            .unwrap();
    }

    pub async fn event_for(&self, key: &str) -> aws_lambda_events::event::s3::S3EventRecord {
        let head = self.head(key).await.unwrap();
        snaplabel_pipeline::event::object_created_record(
            BUCKET,
            key,
            head.content_length().unwrap() as u64,
            head.e_tag(),
            "ObjectCreated:Put",
        )
    }

    pub async fn read_result(&self, key: &str) -> Option<serde_json::Value> {
        let out = self
            .store
            .client()
            .get_object()
            .bucket(BUCKET)
            .key(key)
            .send()
            .await
            .ok()?;
        Some(serde_json::from_slice(&out.body.collect().await.unwrap().into_bytes()).unwrap())
    }
}
