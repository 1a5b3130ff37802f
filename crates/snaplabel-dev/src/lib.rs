//! `snaplabel dev`: the complete AWS pipeline on 127.0.0.1, with the same handler code as Lambda.
//!
//! ```text
//!  app port (8080)                                   S3 port (9000)
//!  ├─ /api/uploads      → ApiHandler (presign)       s3s + s3s-fs over <data>/s3, SigV4, CORS
//!  ├─ /config.json      → what the SPA needs           │ every PutObject / CompleteMultipartUpload
//!  ├─ POST / + X-Amz-Target: Cognito Identity,         ▼ under uploads/ → S3 event record
//!  │                     Rekognition DetectLabels    bounded queue ──► workers ──► LabelHandler
//!  ├─ /.well-known/jwks_uri → the local Cognito's token keys (the API fetches them like AWS's)
//!  └─ /                 → the built SPA (or a placeholder page)
//! ```
//!
//! Secrets are made per data directory, never constants: the token signing key
//! (`cognito-signing-key.pem`) and the key of owner segments (`owner-key`).
//!
//! Delivery is at least once: at start-up and then periodically every upload without a result is
//! queued again, so a process killed at any moment, or storage failing for a while, loses
//! nothing; the handler's ETag check makes redelivery harmless.
//! The queue is bounded: when uploads outpace labeling, the S3 PUT waits (back-pressure) rather
//! than memory growing.

mod app;
pub mod client;

use snaplabel_core::config::{LabelerKind, Settings};
use snaplabel_core::keys::{LABELS_PREFIX, UPLOADS_PREFIX, result_key_for};
use snaplabel_localaws::cognito::CognitoService;
use snaplabel_localaws::local_fs::{Listener, ObjectCreated};
use snaplabel_localaws::rekognition::{
    DetectLabelsBackend, ImageSource, RekognitionError, RekognitionService,
};
use snaplabel_localaws::{Credentials, ServerHandle, s3, server};
use snaplabel_pipeline::event::{event, object_created_record};
use snaplabel_pipeline::label::{LabelHandler, LabelSettings, RecordOutcome, S3EventRecord};
use snaplabel_pipeline::local::LocalLabeler;
use snaplabel_pipeline::wiring;
use snaplabel_pipeline::{Labeler, ObjectStore, aws};
use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::{Mutex, mpsc};

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

pub const BUCKET: &str = "snaplabel";
pub const REGION: &str = "us-east-1";
pub const IDENTITY_POOL_ID: &str = "us-east-1:00000000-0000-4000-8000-5a9ab3100dev";

#[derive(Debug, Clone)]
pub struct DevConfig {
    /// App port (0 picks a free one).
    pub port: u16,
    pub s3_port: u16,
    /// Everything that must survive restarts: objects, identities.
    pub data_dir: PathBuf,
    /// The built SPA; a placeholder page is served when absent.
    pub static_dir: Option<PathBuf>,
    pub labeler: LabelerKind,
    pub model: snaplabel_core::config::ModelSettings,
    /// Label workers.
    pub workers: usize,
    /// Events waiting for a worker before uploads are slowed down.
    pub queue_capacity: usize,
    pub max_upload_bytes: u64,
    /// Lifetime of presigned URLs.
    pub url_expiry_secs: u64,
    /// Extra browser origins allowed by CORS (the Trunk dev server, say).
    pub extra_origins: Vec<String>,
    /// Upload URLs one guest may get per hour.
    pub uploads_per_hour: u32,
    /// A host name the stack is reached by besides 127.0.0.1 and localhost (a tunnel, a LAN
    /// name); requests naming any other host are refused.
    pub public_host: Option<String>,
    /// How often uploads without a result are looked for and queued again (besides at start-up).
    pub rescan_every: Duration,
    /// Where the presign API fetches the token keys; by default this stack's own
    /// `/.well-known/jwks_uri` (another URL simulates the issuer being down).
    pub jwks_url: Option<String>,
}

impl DevConfig {
    pub fn new(data_dir: PathBuf) -> Self {
        let cores = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2);
        DevConfig {
            port: 8080,
            s3_port: 9000,
            data_dir,
            static_dir: None,
            labeler: LabelerKind::Local,
            model: snaplabel_core::config::ModelSettings::default(),
            workers: cores,
            queue_capacity: 64,
            max_upload_bytes: snaplabel_core::config::DEFAULT_MAX_UPLOAD_BYTES,
            url_expiry_secs: snaplabel_core::config::DEFAULT_URL_EXPIRY_SECS,
            extra_origins: vec![
                "http://127.0.0.1:8081".into(),
                "http://localhost:8081".into(),
            ],
            uploads_per_hour: snaplabel_core::config::DEFAULT_UPLOADS_PER_HOUR,
            public_host: None,
            rescan_every: Duration::from_secs(60),
            jwks_url: None,
        }
    }
}

/// The data directory's key of owner segments (`owner-key`), made on first use from the system's
/// random source.
fn owner_key(data_dir: &std::path::Path) -> Result<snaplabel_core::config::OwnerKey, BoxError> {
    let key = snaplabel_localaws::secret_file(&data_dir.join("owner-key"), || {
        let mut bytes = [0u8; 32];
        aws_lc_rs::rand::fill(&mut bytes)
            .map_err(|_| std::io::Error::other("no random source for the owner key"))?;
        Ok(bytes
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
            .into_bytes())
    })?;
    Ok(snaplabel_core::config::OwnerKey::new(
        String::from_utf8_lossy(&key).trim().to_string(),
    )?)
}

/// The running stack.
pub struct DevStack {
    pub app_url: String,
    pub s3_url: String,
    /// The key pair of this data folder's local endpoints (the S3 and awsJson services).
    pub credentials: Credentials,
    app: ServerHandle,
    s3: ServerHandle,
    workers: Vec<tokio::task::JoinHandle<()>>,
    rescanner: tokio::task::JoinHandle<()>,
    queue: Arc<Queue>,
}

/// The label queue: S3 event records, bounded, shared by the workers.
struct Queue {
    sender: mpsc::Sender<S3EventRecord>,
    receiver: Mutex<mpsc::Receiver<S3EventRecord>>,
    /// Records accepted and not yet fully handled.
    pending: AtomicUsize,
    /// Keys queued or being labeled, so that a re-scan does not queue them twice.
    in_flight: std::sync::Mutex<HashSet<String>>,
}

impl Queue {
    /// Queues an event record (waiting while the queue is full).
    async fn push(&self, record: S3EventRecord) {
        if let Some(key) = record.s3.object.key.clone()
            && let Ok(mut in_flight) = self.in_flight.lock()
        {
            in_flight.insert(key);
        }
        self.pending.fetch_add(1, Ordering::SeqCst);
        if self.sender.send(record).await.is_err() {
            self.pending.fetch_sub(1, Ordering::SeqCst);
        }
    }

    /// Queues the upload `key` again unless it is queued or being labeled already.
    async fn requeue(&self, key: &str) -> bool {
        let record = object_created_record(BUCKET, key, 0, None, "ObjectCreated:Put");
        let encoded = record.s3.object.key.clone().unwrap_or_default();
        if self
            .in_flight
            .lock()
            .is_ok_and(|in_flight| in_flight.contains(&encoded))
        {
            return false;
        }
        self.push(record).await;
        true
    }

    fn done(&self, record: &S3EventRecord) {
        if let Some(key) = &record.s3.object.key
            && let Ok(mut in_flight) = self.in_flight.lock()
        {
            in_flight.remove(key);
        }
        self.pending.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Queues every upload that has no result (an event lost to a crash or a kill, a result that
/// could not be written): at start-up and then every `every`, so nothing waits for a restart.
async fn rescan(queue: Arc<Queue>, store: Arc<dyn ObjectStore>, every: Duration) {
    loop {
        match unlabeled(store.as_ref()).await {
            Ok(keys) => {
                let mut queued = 0;
                for key in keys {
                    queued += queue.requeue(&key).await as usize;
                }
                if queued > 0 {
                    tracing::info!(count = queued, "re-queued uploads that have no result yet");
                }
            }
            Err(e) => tracing::error!(error = %e, "could not scan for unlabeled uploads"),
        }
        tokio::time::sleep(every).await;
    }
}

impl DevStack {
    pub async fn start(config: DevConfig) -> Result<DevStack, BoxError> {
        let s3_root = config.data_dir.join("s3");
        std::fs::create_dir_all(&s3_root)?;
        let credentials = Credentials::for_data_dir(&config.data_dir)?;
        let app_listener = server::bind_loopback(config.port)
            .await
            .map_err(|e| format!("cannot listen on 127.0.0.1:{}: {e}", config.port))?;
        let s3_listener = server::bind_loopback(config.s3_port)
            .await
            .map_err(|e| format!("cannot listen on 127.0.0.1:{}: {e}", config.s3_port))?;
        let app_url = format!("http://{}", app_listener.local_addr()?);
        let s3_url = format!("http://{}", s3_listener.local_addr()?);
        let app_port = app_listener.local_addr()?.port();
        let mut origins = vec![
            format!("http://127.0.0.1:{app_port}"),
            format!("http://localhost:{app_port}"),
        ];
        origins.extend(config.extra_origins.iter().cloned());

        let (sender, receiver) = mpsc::channel(config.queue_capacity.max(1));
        let queue = Arc::new(Queue {
            sender,
            receiver: Mutex::new(receiver),
            pending: AtomicUsize::new(0),
            in_flight: std::sync::Mutex::new(HashSet::new()),
        });

        // Bucket notifications: object creations under uploads/ become S3 event records.
        let notify_queue = queue.clone();
        let listener: Listener = Arc::new(move |created: ObjectCreated| {
            let queue = notify_queue.clone();
            Box::pin(async move {
                if created.bucket == BUCKET && created.key.starts_with(UPLOADS_PREFIX) {
                    let record = object_created_record(
                        &created.bucket,
                        &created.key,
                        created.size,
                        created.etag.as_deref(),
                        created.event_name,
                    );
                    queue.push(record).await;
                }
            })
        });
        let s3 = s3::start_notifying(
            s3::LocalS3Config {
                root: s3_root.clone(),
                credentials: credentials.clone(),
                buckets: vec![BUCKET.into()],
                cors_origins: origins.clone(),
                public_host: config.public_host.clone(),
            },
            s3_listener,
            Some(listener),
        )?;

        // The same wiring as in AWS, with every endpoint on this machine.
        let sdk = aws::static_sdk_config(&credentials.access_key, &credentials.secret_key, REGION);
        let mut pipeline = Settings::new(BUCKET);
        pipeline.endpoints = snaplabel_core::config::Endpoints {
            s3: Some(s3_url.clone()),
            rekognition: Some(app_url.clone()),
        };
        pipeline.model = config.model.clone();
        pipeline.allowed_origins = origins;
        pipeline.require_identity = true;
        pipeline.labeler = config.labeler;
        pipeline.max_upload_bytes = config.max_upload_bytes;
        pipeline.url_expiry_secs = config.url_expiry_secs;
        pipeline.uploads_per_hour = config.uploads_per_hour;
        pipeline.identity_pool_id = Some(IDENTITY_POOL_ID.into());
        // Tokens are issued by this stack's Cognito, whose keys the API fetches over HTTP.
        pipeline.token_issuer = app_url.clone();
        pipeline.jwks_url = config.jwks_url.clone();
        pipeline.owner_key = Some(owner_key(&config.data_dir)?);
        let store = wiring::store(&sdk, &pipeline);

        // The embedded model is loaded once; it also backs the local Rekognition endpoint.
        let local = Arc::new(LocalLabeler::load(&pipeline)?);
        let labeler: Arc<dyn Labeler> = match config.labeler {
            LabelerKind::Local => local.clone(),
            // The Rekognition SDK path, for real, against this stack's own endpoint.
            LabelerKind::Rekognition => wiring::labeler(&sdk, &pipeline)?,
        };
        let rekognition = Arc::new(RekognitionService::new(
            Arc::new(ModelBackend {
                model: local.model().clone(),
            }),
            Some(s3_root),
        ));
        let cognito = Arc::new(CognitoService::open(
            IDENTITY_POOL_ID,
            &config.data_dir,
            app_url.clone(),
        )?);
        let api = Arc::new(wiring::api_handler(&sdk, pipeline.clone())?);
        let handler = Arc::new(LabelHandler::new(
            store.clone(),
            labeler,
            LabelSettings::from_config(&pipeline),
        ));

        let app = server::serve(
            app_listener,
            app::router(app::App {
                api,
                rekognition,
                cognito,
                credentials: credentials.clone(),
                region: REGION.into(),
                labeling_limit: snaplabel_localaws::aws_json::default_labeling_limit(),
                static_dir: config.static_dir.clone(),
                config_json: snaplabel_core::api::BrowserConfig::new(
                    format!("{app_url}/api"),
                    REGION,
                    app_url.clone(),
                    IDENTITY_POOL_ID,
                    pipeline.max_upload_bytes,
                    pipeline.labeler.as_str(),
                ),
                pending: {
                    let queue = queue.clone();
                    Arc::new(move || queue.pending.load(Ordering::SeqCst))
                },
                csp: http::HeaderValue::from_str(&snaplabel_core::api::content_security_policy(
                    &s3_url, &app_url,
                ))?,
                public_host: config.public_host.clone(),
            }),
        )?;

        let workers = (0..config.workers.max(1))
            .map(|_| {
                let queue = queue.clone();
                let handler = handler.clone();
                tokio::spawn(async move { work(queue, handler).await })
            })
            .collect();

        // At-least-once: whatever was uploaded but never labeled (a crash, a kill, storage that
        // failed) goes round again, now and periodically.
        let rescanner = tokio::spawn(rescan(queue.clone(), store.clone(), config.rescan_every));

        Ok(DevStack {
            app_url,
            s3_url,
            credentials,
            app,
            s3,
            workers,
            rescanner,
            queue,
        })
    }

    /// Events queued or being labeled.
    pub fn pending(&self) -> usize {
        self.queue.pending.load(Ordering::SeqCst)
    }

    /// Stops accepting requests, then stops the workers (queued events are picked up again at the
    /// next start, from the uploads without results).
    pub async fn shutdown(self) {
        self.app.shutdown().await;
        self.s3.shutdown().await;
        self.rescanner.abort();
        for worker in self.workers {
            worker.abort();
        }
    }
}

async fn work(queue: Arc<Queue>, handler: Arc<LabelHandler>) {
    loop {
        let record = {
            let mut receiver = queue.receiver.lock().await;
            match receiver.recv().await {
                Some(record) => record,
                None => return,
            }
        };
        // Infrastructure failures (the document could not be written) are retried with backoff;
        // after that the periodic re-scan queues the upload again until storage takes it.
        let mut delay = Duration::from_millis(200);
        for attempt in 1..=5 {
            let report = handler.handle_event(&event(vec![record.clone()])).await;
            if !report
                .records
                .iter()
                .any(|r| matches!(r, RecordOutcome::Failed { .. }))
            {
                break;
            }
            if attempt == 5 {
                tracing::warn!("the result could not be stored; the next re-scan tries again");
                break;
            }
            tracing::warn!(attempt, "labeling failed; retrying");
            tokio::time::sleep(delay).await;
            delay *= 2;
        }
        queue.done(&record);
    }
}

/// Keys under `uploads/` whose result document does not exist.
async fn unlabeled(store: &dyn ObjectStore) -> Result<Vec<String>, BoxError> {
    let list_all = |prefix: &'static str| async move {
        let mut keys = Vec::new();
        let mut token = None;
        loop {
            let page = store.list(prefix, 1000, None, token).await?;
            keys.extend(page.objects.into_iter().map(|o| o.key));
            token = page.next_token;
            if token.is_none() {
                return Ok::<_, BoxError>(keys);
            }
        }
    };
    let results: HashSet<String> = list_all(LABELS_PREFIX).await?.into_iter().collect();
    Ok(list_all(UPLOADS_PREFIX)
        .await?
        .into_iter()
        .filter(|k| result_key_for(k).is_some_and(|r| !results.contains(&r)))
        .collect())
}

/// The local Rekognition endpoint's labeler: the embedded model.
struct ModelBackend {
    model: Arc<snaplabel_vision::LocalLabeler>,
}

#[async_trait::async_trait]
impl DetectLabelsBackend for ModelBackend {
    async fn detect_labels(
        &self,
        image: bytes::Bytes,
        _source: ImageSource,
        options: snaplabel_core::detect::DetectOptions,
    ) -> Result<snaplabel_core::detect::DetectLabelsResponse, RekognitionError> {
        let model = self.model.clone();
        let labeled = tokio::task::spawn_blocking(move || model.label(&image, &options))
            .await
            .map_err(|e| RekognitionError::new("InternalServerError", e.to_string()))?;
        labeled.map(|l| l.response).map_err(|e| {
            let body: snaplabel_core::ErrorBody = e.into();
            let kind =
                match body.code {
                    snaplabel_core::ErrorCode::TooManyPixels
                    | snaplabel_core::ErrorCode::TooLarge => "ImageTooLargeException",
                    snaplabel_core::ErrorCode::LabelerFailed
                    | snaplabel_core::ErrorCode::Internal => "InternalServerError",
                    _ => "InvalidImageFormatException",
                };
            RekognitionError::new(kind, body.message)
        })
    }
}
