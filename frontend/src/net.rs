//! Talking to the backend from the browser: `/config.json`, the guest identity (Cognito `GetId`,
//! kept in localStorage) and the token proving it (`GetOpenIdToken`, kept in memory for a few
//! minutes), the presign API, the upload itself (XMLHttpRequest, for progress events), and HEAD
//! polling of the result.
//!
//! The identity id is a secret: it goes to Cognito only. The API gets the token.

use crate::logic::{
    Backoff, BrowserConfig, GalleryQuery, PollAnswer, classify_head, parse_config, parse_result,
};
use futures::channel::oneshot;
use gloo_net::http::{Method, Request, RequestBuilder};
use gloo_timers::future::sleep;
use snaplabel_core::api::{
    CreateUploadRequest, CreateUploadResponse, ExportResponse, GalleryLabels, PresignedUpload,
    SearchAnswer, UploadHistory,
};
use snaplabel_core::error::ApiError;
use snaplabel_core::result::ResultDocument;
use std::cell::RefCell;
use std::rc::Rc;
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::Closure;

/// A failure worth showing: a stable code and a sentence for people.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    pub code: String,
    pub message: String,
}

impl Failure {
    fn new(code: &str, message: impl Into<String>) -> Self {
        Failure {
            code: code.into(),
            message: message.into(),
        }
    }

    fn network(what: &str) -> Self {
        Failure::new(
            "network",
            format!("Could not reach the server while {what}. Check the connection and retry."),
        )
    }
}

/// GETs `url` as text. `doing` names the step in messages ("loading config.json"); `code` is the
/// failure's code when the server answers with an error.
async fn get_text(url: &str, doing: &str, code: &str) -> Result<String, Failure> {
    let response = Request::get(url)
        .send()
        .await
        .map_err(|_| Failure::network(doing))?;
    if !response.ok() {
        return Err(Failure::new(
            code,
            format!("HTTP {} while {doing}.", response.status()),
        ));
    }
    response.text().await.map_err(|_| Failure::network(doing))
}

pub async fn load_config() -> Result<BrowserConfig, Failure> {
    let text = get_text("config.json", "loading config.json", "config").await?;
    parse_config(&text).map_err(|e| Failure::new("config", e.message()))
}

/// The backend as the page uses it: configuration plus the guest identity.
pub struct Backend {
    pub config: BrowserConfig,
    identity: RefCell<Option<String>>,
    /// The identity's OpenID token and when it was obtained (ms since the epoch).
    token: RefCell<Option<(String, f64)>>,
    /// One identity and token request at a time: requests made together at start-up (the
    /// history and the label chips) would otherwise each ask Cognito for a new identity, and the
    /// page would upload as one guest and remember another.
    token_request: futures::lock::Mutex<()>,
}

/// Cognito's tokens last 10 minutes; one is reused for this long.
const TOKEN_REUSE_MS: f64 = 8.0 * 60.0 * 1000.0;

/// An awsJson1_1 call to the Cognito Identity endpoint: the HTTP status, the `__type` of an
/// error (without any namespace) and the JSON answer.
async fn cognito(
    endpoint: &str,
    operation: &str,
    body: serde_json::Value,
) -> Result<(u16, String, serde_json::Value), Failure> {
    let response = Request::post(endpoint)
        .header(
            "X-Amz-Target",
            &format!("AWSCognitoIdentityService.{operation}"),
        )
        .header("Content-Type", "application/x-amz-json-1.1")
        .body(body.to_string())
        .map_err(|_| Failure::new("internal", "could not build the identity request"))?
        .send()
        .await
        .map_err(|_| Failure::network("getting a guest identity"))?;
    let status = response.status();
    let json: serde_json::Value = response.json().await.unwrap_or_default();
    let kind = json["__type"]
        .as_str()
        .unwrap_or_default()
        .rsplit('#')
        .next()
        .unwrap_or_default()
        .to_string();
    Ok((status, kind, json))
}

fn identity_refused(status: u16, kind: &str) -> Failure {
    if status == 429 || kind == "TooManyRequestsException" {
        return Failure::new(
            "rate_limited",
            "Too many new guests right now; try again in a moment.",
        );
    }
    Failure::new(
        "invalid_identity",
        format!("The identity service refused a guest identity (HTTP {status})."),
    )
}

impl Backend {
    pub fn new(config: BrowserConfig) -> Rc<Backend> {
        let identity = storage()
            .and_then(|s| s.get_item(&identity_storage_key(&config)).ok().flatten())
            .filter(|id| !id.is_empty());
        Rc::new(Backend {
            config,
            identity: RefCell::new(identity),
            token: RefCell::new(None),
            token_request: futures::lock::Mutex::new(()),
        })
    }

    /// The guest identity id, from localStorage or a fresh Cognito `GetId`.
    async fn identity(&self) -> Result<String, Failure> {
        if let Some(id) = self.identity.borrow().clone() {
            return Ok(id);
        }
        let identity = &self.config.identity;
        let (status, kind, json) = cognito(
            &identity.endpoint,
            "GetId",
            serde_json::json!({ "IdentityPoolId": identity.pool_id }),
        )
        .await?;
        let id = json["IdentityId"].as_str().unwrap_or_default().to_string();
        if status != 200 || id.is_empty() {
            return Err(identity_refused(status, &kind));
        }
        if let Some(s) = storage() {
            let _ = s.set_item(&identity_storage_key(&self.config), &id);
        }
        *self.identity.borrow_mut() = Some(id.clone());
        Ok(id)
    }

    /// A token proving the identity (Cognito `GetOpenIdToken`), reused while it is fresh. An
    /// identity Cognito no longer knows (a wiped dev data folder, a new pool) is replaced once.
    async fn token(&self) -> Result<String, Failure> {
        // Whoever waited here finds the token the request before it got.
        let _one_at_a_time = self.token_request.lock().await;
        let now = js_sys::Date::now();
        if let Some((token, at)) = self.token.borrow().clone()
            && now - at < TOKEN_REUSE_MS
        {
            return Ok(token);
        }
        for attempt in 0..2 {
            let id = self.identity().await?;
            let (status, kind, json) = cognito(
                &self.config.identity.endpoint,
                "GetOpenIdToken",
                serde_json::json!({ "IdentityId": id }),
            )
            .await?;
            if let Some(token) = json["Token"].as_str().filter(|_| status == 200) {
                *self.token.borrow_mut() = Some((token.to_string(), now));
                return Ok(token.to_string());
            }
            let unknown = matches!(
                kind.as_str(),
                "ResourceNotFoundException"
                    | "InvalidParameterException"
                    | "NotAuthorizedException"
            );
            if !unknown || attempt == 1 {
                return Err(identity_refused(status, &kind));
            }
            self.forget_identity();
        }
        Err(Failure::new(
            "invalid_identity",
            "The identity service keeps refusing a guest identity.",
        ))
    }

    /// Forgets a stored identity the server no longer knows (a wiped dev data folder, a new pool).
    fn forget_identity(&self) {
        if let Some(s) = storage() {
            let _ = s.remove_item(&identity_storage_key(&self.config));
        }
        *self.identity.borrow_mut() = None;
        *self.token.borrow_mut() = None;
    }

    /// Sends an API request with the identity's token; a token the server refuses is replaced
    /// once (it may have expired, or the identity be unknown).
    async fn api(
        &self,
        method: Method,
        path: &str,
        body: Option<String>,
    ) -> Result<String, Failure> {
        for attempt in 0..2 {
            let token = self.token().await?;
            let mut request = RequestBuilder::new(&self.config.api_url(path))
                .method(method.clone())
                .header("Authorization", &format!("Bearer {token}"));
            let request = match &body {
                Some(json) => {
                    request = request.header("Content-Type", "application/json");
                    request.body(json.clone())
                }
                None => request.build(),
            }
            .map_err(|_| Failure::new("internal", "could not build the request"))?;
            let response = request
                .send()
                .await
                .map_err(|_| Failure::network("talking to the API"))?;
            let status = response.status();
            let text = response.text().await.unwrap_or_default();
            if (200..300).contains(&status) {
                return Ok(text);
            }
            let error = serde_json::from_str::<ApiError>(&text)
                .ok()
                .map(|e| e.error);
            if let Some(error) = &error
                && error.code == snaplabel_core::ErrorCode::InvalidIdentity
                && attempt == 0
            {
                *self.token.borrow_mut() = None;
                continue;
            }
            return Err(match error {
                Some(e) => Failure::new(e.code.as_str(), e.message),
                None => Failure::new("http", format!("The API answered HTTP {status}.")),
            });
        }
        Err(Failure::new(
            "invalid_identity",
            "The server keeps refusing the guest identity.",
        ))
    }

    pub async fn create_upload(
        &self,
        filename: &str,
        content_type: &str,
        size: u64,
    ) -> Result<CreateUploadResponse, Failure> {
        let body = serde_json::to_string(&CreateUploadRequest {
            filename: Some(filename.to_string()),
            content_type: Some(content_type.to_string()),
            size: Some(size.into()),
        })
        .unwrap_or_default();
        self.api_json(Method::POST, "uploads", Some(body)).await
    }

    pub async fn history(&self, before: Option<&str>) -> Result<UploadHistory, Failure> {
        let path = match before {
            Some(id) => format!("uploads?before={id}"),
            None => "uploads".to_string(),
        };
        self.api_json(Method::GET, &path, None).await
    }

    /// A page of the photos matching `query`.
    pub async fn search(
        &self,
        query: &GalleryQuery,
        before: Option<&str>,
    ) -> Result<SearchAnswer, Failure> {
        self.api_json(Method::GET, &query.api_path(before), None)
            .await
    }

    /// Every label of the guest's photos with its count.
    pub async fn gallery_labels(&self) -> Result<GalleryLabels, Failure> {
        self.api_json(Method::GET, "labels", None).await
    }

    /// Deletes an upload: its image, its labels and its place in the gallery.
    pub async fn delete_upload(&self, id: &str) -> Result<(), Failure> {
        self.api(Method::DELETE, &format!("uploads/{id}"), None)
            .await
            .map(drop)
    }

    /// A download of the guest's labels (`csv` or `ndjson`).
    pub async fn export(&self, format: &str) -> Result<ExportResponse, Failure> {
        let body = serde_json::json!({ "format": format }).to_string();
        self.api_json(Method::POST, "exports", Some(body)).await
    }

    /// An API call whose answer is a JSON document of type `T`.
    async fn api_json<T: serde::de::DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<String>,
    ) -> Result<T, Failure> {
        let text = self.api(method, path, body).await?;
        serde_json::from_str(&text)
            .map_err(|e| Failure::new("http", format!("unexpected API answer: {e}")))
    }
}

fn storage() -> Option<web_sys::Storage> {
    web_sys::window()?.local_storage().ok().flatten()
}

/// One identity per pool: switching backends does not reuse a foreign id.
fn identity_storage_key(config: &BrowserConfig) -> String {
    format!("snaplabel.identity.{}", config.identity.pool_id)
}

/// PUTs the file exactly as signed, reporting `(sent, total)` as the browser sends it. `fetch`
/// has no upload progress, hence XMLHttpRequest.
pub async fn upload(
    target: &PresignedUpload,
    file: &web_sys::File,
    on_progress: impl Fn(u64, u64) + 'static,
) -> Result<(), Failure> {
    let xhr = web_sys::XmlHttpRequest::new()
        .map_err(|_| Failure::new("internal", "XMLHttpRequest is unavailable"))?;
    xhr.open_with_async(&target.method, &target.url, true)
        .map_err(|_| Failure::new("internal", "could not open the upload request"))?;
    for (name, value) in &target.headers {
        // The browser sets these itself (and refuses to be told); they are signed all the same.
        if name.eq_ignore_ascii_case("content-length") || name.eq_ignore_ascii_case("host") {
            continue;
        }
        let _ = xhr.set_request_header(name, value);
    }

    let (done_tx, done_rx) = oneshot::channel::<Result<u16, ()>>();
    let done_tx = Rc::new(RefCell::new(Some(done_tx)));
    let finish = {
        let done_tx = done_tx.clone();
        let xhr = xhr.clone();
        Closure::<dyn FnMut(web_sys::ProgressEvent)>::new(move |_| {
            if let Some(tx) = done_tx.borrow_mut().take() {
                let _ = tx.send(Ok(xhr.status().unwrap_or(0)));
            }
        })
    };
    let fail = {
        let done_tx = done_tx.clone();
        Closure::<dyn FnMut(web_sys::ProgressEvent)>::new(move |_| {
            if let Some(tx) = done_tx.borrow_mut().take() {
                let _ = tx.send(Err(()));
            }
        })
    };
    let progress =
        Closure::<dyn FnMut(web_sys::ProgressEvent)>::new(move |e: web_sys::ProgressEvent| {
            if e.length_computable() {
                on_progress(e.loaded() as u64, e.total() as u64);
            }
        });
    xhr.set_onload(Some(finish.as_ref().unchecked_ref()));
    xhr.set_onerror(Some(fail.as_ref().unchecked_ref()));
    xhr.set_onabort(Some(fail.as_ref().unchecked_ref()));
    xhr.set_ontimeout(Some(fail.as_ref().unchecked_ref()));
    if let Ok(upload) = xhr.upload() {
        upload.set_onprogress(Some(progress.as_ref().unchecked_ref()));
    }
    xhr.send_with_opt_blob(Some(file))
        .map_err(|_| Failure::new("internal", "the browser refused to send the file"))?;
    let outcome = done_rx.await.unwrap_or(Err(()));
    // The closures must outlive the request; drop them only now.
    drop((finish, fail, progress));
    match outcome {
        Ok(200..=299) => Ok(()),
        Ok(403) => Err(Failure::new(
            "upload_refused",
            "Storage refused the upload: the link expired or the file changed. Try again.",
        )),
        // `If-None-Match: *` is signed into every link: it uploads one file, once.
        Ok(409 | 412) => Err(Failure::new(
            "upload_refused",
            "This upload link was already used; each link uploads one file once. Try again for a new one.",
        )),
        Ok(status) => Err(Failure::new(
            "upload_failed",
            format!("Storage answered HTTP {status} to the upload."),
        )),
        Err(()) => Err(Failure::network("uploading")),
    }
}

/// HEADs the result URL on the backoff schedule until it exists, then GETs and parses it. Stops
/// (`cancelled`) as soon as `wanted` says the result is no longer wanted (its photo was deleted).
pub async fn wait_for_result(
    head_url: &str,
    get_url: &str,
    backoff: Backoff,
    wanted: impl Fn() -> bool,
) -> Result<ResultDocument, Failure> {
    let mut ready = false;
    for delay in backoff.delays() {
        sleep(delay).await;
        if !wanted() {
            return Err(Failure::new("cancelled", "The photo was deleted."));
        }
        // no-store: a cached 404 would hide the result until the deadline.
        let status = match RequestBuilder::new(head_url)
            .method(Method::HEAD)
            .cache(web_sys::RequestCache::NoStore)
            .send()
            .await
        {
            Ok(r) => r.status(),
            Err(_) => 0,
        };
        match classify_head(status) {
            PollAnswer::Ready => {
                ready = true;
                break;
            }
            PollAnswer::NotYet => continue,
            PollAnswer::Broken(status) => {
                return Err(Failure::new(
                    "poll_failed",
                    format!("Checking for the result failed with HTTP {status}."),
                ));
            }
        }
    }
    if !ready {
        return Err(Failure::new(
            "timeout",
            format!(
                "No result after {} s; the labeler may be stopped or overloaded.",
                backoff.deadline.as_secs()
            ),
        ));
    }
    let text = get_text(get_url, "downloading the result", "http").await?;
    parse_result(&text).map_err(|e| Failure::new("bad_result", e.message()))
}
