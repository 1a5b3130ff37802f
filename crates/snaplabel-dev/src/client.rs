//! What the browser does, in Rust: get a guest identity and a token proving it (Cognito `GetId`
//! and `GetOpenIdToken`, through `aws-sdk-cognitoidentity`), ask for upload URLs, PUT the photo,
//! poll HEAD until the result exists, read it, list the history, search the gallery, delete an
//! upload, export the labels. Used by the tests and by
//! `snaplabel dev-bench`, and a readable reference for any other client.

use bytes::Bytes;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

pub type ClientError = Box<dyn std::error::Error + Send + Sync>;

#[derive(Clone)]
pub struct GuestClient {
    pub http: reqwest::Client,
    pub app_url: String,
    /// The guest identity id: a secret the client keeps (only Cognito ever sees it).
    pub identity: String,
    /// What the API gets: `Bearer <OpenID token>`.
    pub authorization: String,
}

/// A Cognito Identity client for the pool's endpoint. Guest calls are unsigned in AWS; the
/// credentials here only satisfy the SDK's configuration.
fn cognito(endpoint: &str) -> aws_sdk_cognitoidentity::Client {
    let sdk = snaplabel_pipeline::aws::static_sdk_config(
        "GUEST",
        "guest-calls-are-unsigned",
        crate::REGION,
    );
    snaplabel_pipeline::aws::cognito_client(&sdk, Some(endpoint))
}

/// `GetOpenIdToken` for `identity`.
pub async fn open_id_token(endpoint: &str, identity: &str) -> Result<String, ClientError> {
    let answer = cognito(endpoint)
        .get_open_id_token()
        .identity_id(identity)
        .send()
        .await
        .map_err(|e| {
            format!(
                "GetOpenIdToken: {}",
                aws_sdk_cognitoidentity::error::DisplayErrorContext(e)
            )
        })?;
    Ok(answer
        .token()
        .ok_or("GetOpenIdToken returned no token")?
        .to_string())
}

/// How to poll for a result: HEAD every `start`, doubling up to `max`, until `timeout`.
#[derive(Debug, Clone, Copy)]
pub struct Polling {
    pub start: Duration,
    pub max: Duration,
    pub timeout: Duration,
}

impl Polling {
    /// Close to the browser app's schedule (75 ms growing to 2 s): what real clients cost.
    pub fn backoff(timeout: Duration) -> Self {
        Polling {
            start: Duration::from_millis(75),
            max: Duration::from_secs(2),
            timeout,
        }
    }

    /// Every 5 ms, for measuring latency to within a few milliseconds. Tighter loops measure
    /// themselves: on two cores, hundreds of signed HEADs a second take CPU from the labeler.
    pub fn tight(timeout: Duration) -> Self {
        Polling {
            start: Duration::from_millis(5),
            max: Duration::from_millis(5),
            timeout,
        }
    }
}

/// The owner segment of an upload's keys, from the presign API's answer (`result.key` is
/// `labels/{owner}/{id}.json`).
pub fn owner_segment(created: &Value) -> Option<&str> {
    created["result"]["key"].as_str()?.split('/').nth(1)
}

impl GuestClient {
    /// Reads `/config.json`, gets a new guest identity from the pool it names (Cognito `GetId`)
    /// and a token proving it (`GetOpenIdToken`, valid for 10 minutes).
    pub async fn connect(app_url: &str) -> Result<GuestClient, ClientError> {
        let http = reqwest::Client::new();
        let config: Value = http
            .get(format!("{app_url}/config.json"))
            .send()
            .await?
            .json()
            .await?;
        let pool = config["identity"]["pool_id"]
            .as_str()
            .ok_or("config.json names no identity pool")?;
        let endpoint = config["identity"]["endpoint"]
            .as_str()
            .ok_or("config.json names no identity endpoint")?;
        let answer = cognito(endpoint)
            .get_id()
            .identity_pool_id(pool)
            .send()
            .await
            .map_err(|e| {
                format!(
                    "GetId: {}",
                    aws_sdk_cognitoidentity::error::DisplayErrorContext(e)
                )
            })?;
        let identity = answer
            .identity_id()
            .ok_or("GetId returned no IdentityId")?
            .to_string();
        let token = open_id_token(endpoint, &identity).await?;
        Ok(GuestClient {
            http,
            app_url: app_url.to_string(),
            identity,
            authorization: format!("Bearer {token}"),
        })
    }

    /// The same client sending another `Authorization` header (for attacks on the API).
    pub fn with_authorization(&self, authorization: &str) -> GuestClient {
        GuestClient {
            authorization: authorization.to_string(),
            ..self.clone()
        }
    }

    /// `POST /api/uploads`: the HTTP status and the JSON answer.
    pub async fn create_upload(
        &self,
        filename: &str,
        content_type: &str,
        size: usize,
    ) -> Result<(u16, Value), ClientError> {
        let response = self
            .http
            .post(format!("{}/api/uploads", self.app_url))
            .header("authorization", &self.authorization)
            .json(&json!({"filename": filename, "content_type": content_type, "size": size}))
            .send()
            .await?;
        Ok((response.status().as_u16(), response.json().await?))
    }

    /// PUTs the body with exactly the signed headers; returns the S3 status.
    pub async fn put(&self, created: &Value, body: Bytes) -> Result<u16, ClientError> {
        let url = created["upload"]["url"].as_str().ok_or("no upload URL")?;
        let mut request = self.http.put(url).body(body);
        for (name, value) in created["upload"]["headers"]
            .as_object()
            .ok_or("no upload headers")?
        {
            request = request.header(name, value.as_str().unwrap_or_default());
        }
        Ok(request.send().await?.status().as_u16())
    }

    /// Creates an upload and PUTs it; fails unless both succeed.
    pub async fn upload(
        &self,
        filename: &str,
        content_type: &str,
        body: Bytes,
    ) -> Result<Value, ClientError> {
        let (status, created) = self
            .create_upload(filename, content_type, body.len())
            .await?;
        if status != 201 {
            return Err(format!("presign answered {status}: {created}").into());
        }
        let put = self.put(&created, body).await?;
        if put != 200 {
            return Err(format!("S3 answered {put} to the presigned PUT").into());
        }
        Ok(created)
    }

    /// HEADs the result until 200 (403/404 mean "not yet").
    pub async fn wait_result(&self, created: &Value, polling: Polling) -> Result<(), ClientError> {
        let url = created["result"]["head_url"]
            .as_str()
            .ok_or("no result HEAD URL")?;
        let deadline = Instant::now() + polling.timeout;
        let mut delay = polling.start;
        loop {
            let status = self.http.head(url).send().await?.status().as_u16();
            match status {
                200 => return Ok(()),
                403 | 404 if Instant::now() < deadline => {}
                403 | 404 => return Err(format!("no result within {:?}", polling.timeout).into()),
                other => return Err(format!("unexpected HEAD status {other}").into()),
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(polling.max);
        }
    }

    /// Waits for the result, then GETs the document.
    pub async fn result(&self, created: &Value, polling: Polling) -> Result<Value, ClientError> {
        self.wait_result(created, polling).await?;
        let url = created["result"]["get_url"]
            .as_str()
            .ok_or("no result GET URL")?;
        Ok(self.http.get(url).send().await?.json().await?)
    }

    /// `GET /api/uploads`.
    pub async fn history(&self) -> Result<Value, ClientError> {
        let (status, answer) = self.history_page("").await?;
        if status != 200 {
            return Err(format!("history answered {status}: {answer}").into());
        }
        Ok(answer)
    }

    /// `GET /api/uploads?{query}`: the status and the JSON answer.
    pub async fn history_page(&self, query: &str) -> Result<(u16, Value), ClientError> {
        let response = self
            .http
            .get(format!("{}/api/uploads?{query}", self.app_url))
            .header("authorization", &self.authorization)
            .send()
            .await?;
        Ok((response.status().as_u16(), response.json().await?))
    }

    /// Any API call with the guest's token: the status and the JSON answer (`null` when empty).
    pub async fn api(
        &self,
        method: reqwest::Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<Value>,
    ) -> Result<(u16, Value), ClientError> {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.app_url))
            .query(query)
            .header("authorization", &self.authorization);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await?;
        let status = response.status().as_u16();
        let text = response.text().await?;
        let json = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text)?
        };
        Ok((status, json))
    }

    /// `GET /api/search?q={words}`: the status and the answer.
    pub async fn search(&self, words: &str) -> Result<(u16, Value), ClientError> {
        self.api(reqwest::Method::GET, "/api/search", &[("q", words)], None)
            .await
    }

    /// `DELETE /api/uploads/{id}`: the status and the answer (empty for a `204`).
    pub async fn delete(&self, id: &str) -> Result<(u16, Value), ClientError> {
        self.api(
            reqwest::Method::DELETE,
            &format!("/api/uploads/{id}"),
            &[],
            None,
        )
        .await
    }
}
