//! The awsJson1_1 services on one route (`POST /`, told apart by `X-Amz-Target`): Cognito
//! Identity and Rekognition, as the AWS SDKs and the browser app call them.
//!
//! As in AWS, requests must be signed (SigV4, [`crate::sigv4`]) with the stack's credentials,
//! except Cognito's guest calls (`GetId`, `GetOpenIdToken`, `GetCredentialsForIdentity`), which
//! are public. Rekognition is the expensive one: a hostile image can take a second and a lot of
//! memory, so only a few labelings run at once (a tower concurrency limit in front of it); the
//! rest wait their turn.

use crate::cognito::CognitoService;
use crate::rekognition::{self, RekognitionService};
use crate::sigv4;
use crate::{Credentials, cognito};
use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::MethodRouter;
use bytes::Bytes;
use http_body_util::BodyExt;
use std::sync::Arc;
use tower::ServiceExt;
use tower::util::BoxCloneSyncService;

/// An awsJson error as it goes on the wire: `{"__type", "message"}` plus `x-amzn-ErrorType`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsError {
    /// The exception name, e.g. `InvalidImageFormatException`.
    pub kind: &'static str,
    pub message: String,
}

impl AwsError {
    pub fn new(kind: &'static str, message: impl Into<String>) -> Self {
        AwsError {
            kind,
            message: message.into(),
        }
    }

    pub fn status(&self) -> StatusCode {
        match self.kind {
            "InternalServerError" | "InternalErrorException" => StatusCode::INTERNAL_SERVER_ERROR,
            "AccessDeniedException"
            | "NotAuthorizedException"
            | "InvalidSignatureException"
            | "UnrecognizedClientException"
            | "MissingAuthenticationTokenException" => StatusCode::FORBIDDEN,
            "ResourceNotFoundException" => StatusCode::NOT_FOUND,
            "TooManyRequestsException" | "ThrottlingException" => StatusCode::TOO_MANY_REQUESTS,
            _ => StatusCode::BAD_REQUEST,
        }
    }
}

impl IntoResponse for AwsError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({"__type": self.kind, "message": self.message}).to_string();
        let mut response = aws_json(self.status(), body);
        response
            .headers_mut()
            .insert("x-amzn-errortype", HeaderValue::from_static(self.kind));
        response
    }
}

/// An awsJson1_1 answer.
pub fn aws_json(status: StatusCode, body: impl Into<Body>) -> Response {
    let mut response = Response::new(body.into());
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-amz-json-1.1"),
    );
    response
}

/// Labelings at once: one per core, like the label workers.
pub fn default_labeling_limit() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

/// A signed awsJson request, after its signature was checked.
struct Signed {
    target: String,
    body: Bytes,
}

type RekognitionLane = BoxCloneSyncService<Signed, Response, std::convert::Infallible>;

#[derive(Clone)]
struct AwsJson {
    credentials: Credentials,
    region: String,
    cognito: Option<Arc<CognitoService>>,
    /// Rekognition behind its concurrency limit.
    rekognition: Option<RekognitionLane>,
}

/// The awsJson services given, as the `POST` of a route (the app port also serves `GET /`),
/// checking signatures against `credentials` in `region`.
pub fn post_route(
    credentials: Credentials,
    region: impl Into<String>,
    cognito: Option<Arc<CognitoService>>,
    rekognition: Option<Arc<RekognitionService>>,
    labeling_limit: usize,
) -> MethodRouter {
    let rekognition = rekognition.map(|service| {
        BoxCloneSyncService::new(
            tower::ServiceBuilder::new()
                .concurrency_limit(labeling_limit.max(1))
                .service_fn(move |signed: Signed| {
                    let service = service.clone();
                    async move {
                        Ok::<_, std::convert::Infallible>(
                            match service.call(&signed.target, &signed.body).await {
                                Ok(answer) => aws_json(
                                    StatusCode::OK,
                                    serde_json::to_vec(&answer).expect("serializable"),
                                ),
                                Err(e) => e.into_response(),
                            },
                        )
                    }
                }),
        )
    });
    axum::routing::post(serve).with_state(AwsJson {
        credentials,
        region: region.into(),
        cognito,
        rekognition,
    })
}

/// A stand-alone endpoint (`POST /`) for the services given.
pub fn start(
    listener: tokio::net::TcpListener,
    credentials: Credentials,
    region: &str,
    cognito: Option<Arc<CognitoService>>,
    rekognition: Option<Arc<RekognitionService>>,
) -> std::io::Result<crate::ServerHandle> {
    let route = post_route(
        credentials,
        region,
        cognito,
        rekognition,
        default_labeling_limit(),
    );
    crate::server::serve(listener, Router::new().route("/", route))
}

/// Cognito's public operations: a browser calls them before it has any credentials.
fn is_guest_call(target: &str) -> bool {
    matches!(
        target.strip_prefix(cognito::TARGET_PREFIX),
        Some("GetId" | "GetOpenIdToken" | "GetCredentialsForIdentity")
    )
}

async fn serve(State(services): State<AwsJson>, request: Request) -> Response {
    let target = request
        .headers()
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let (parts, body) = request.into_parts();
    let body = match http_body_util::Limited::new(body, rekognition::MAX_REQUEST_BYTES)
        .collect()
        .await
    {
        Ok(body) => body.to_bytes(),
        Err(_) => {
            return AwsError::new(
                "ImageTooLargeException",
                "the request exceeds the 5 MB image limit",
            )
            .into_response();
        }
    };
    let (service, signing_name) = if target.starts_with(cognito::TARGET_PREFIX) {
        ("cognito", "cognito-identity")
    } else if target.starts_with(rekognition::TARGET_PREFIX) {
        ("rekognition", "rekognition")
    } else {
        return AwsError::new(
            "UnknownOperationException",
            format!("{target:?} is not served here"),
        )
        .into_response();
    };
    if !is_guest_call(&target)
        && let Err(e) = sigv4::verify(
            &parts,
            &body,
            &services.credentials,
            &services.region,
            signing_name,
        )
    {
        return e.into_response();
    }
    match service {
        "cognito" => match &services.cognito {
            Some(cognito) => cognito.respond(&target, &body),
            None => AwsError::new("UnknownOperationException", "Cognito is not served here")
                .into_response(),
        },
        _ => match services.rekognition.clone() {
            Some(lane) => match lane.oneshot(Signed { target, body }).await {
                Ok(response) => response,
                Err(never) => match never {},
            },
            None => AwsError::new(
                "UnknownOperationException",
                "Rekognition is not served here",
            )
            .into_response(),
        },
    }
}
