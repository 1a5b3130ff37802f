//! `snaplabel dev` on a developer's laptop, attacked the ways a web page in the same browser (or a
//! process on the same machine) can: each attack of the one-HTTP-layer issue, over real HTTP
//! against `snaplabel dev` in its own process.

mod common;

use bytes::Bytes;
use common::{Dev, MB};
use serde_json::Value;
use snaplabel_dev::client::{GuestClient, Polling};
use std::time::{Duration, Instant};

const MINUTE: Duration = Duration::from_secs(60);

fn photo(name: &str) -> Bytes {
    Bytes::from(snaplabel_fixtures::photo(name))
}

/// Every file under `dir`.
fn files_under(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| {
                    if e.path().is_dir() {
                        files_under(&e.path())
                    } else {
                        1
                    }
                })
                .sum()
        })
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_web_page_cannot_post_a_form_to_the_local_s3() {
    let dev = Dev::start(&[]).await;
    let uploads = dev.data_dir().join("s3/snaplabel/uploads");
    let before = files_under(&uploads);
    // What a page elsewhere would send: a multipart form POST to the bucket.
    let boundary = "----snaplabel-test";
    let body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"key\"\r\n\r\nuploads/evil/x.jpg\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"x.jpg\"\r\nContent-Type: image/jpeg\r\n\r\nJPEGDATA\r\n--{boundary}--\r\n"
    );
    let answer = reqwest::Client::new()
        .post(format!("{}/snaplabel", dev.s3))
        .header("origin", "https://evil.example")
        .header(
            "content-type",
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 403);
    assert!(
        answer
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
    assert!(answer.text().await.unwrap().contains("AccessDenied"));
    assert_eq!(files_under(&uploads), before, "nothing was stored");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_for_another_host_name_are_refused_on_both_ports() {
    let dev = Dev::start(&[]).await;
    // DNS rebinding: a page from evil.example whose name now resolves to 127.0.0.1 sends its own
    // name as Host. A signed request is no way around it either.
    let http = reqwest::Client::new();
    for url in [
        format!("{}/config.json", dev.app),
        format!("{}/api/uploads", dev.app),
        format!("{}/", dev.app),
        format!("{}/snaplabel?list-type=2", dev.s3),
    ] {
        let answer = http
            .get(&url)
            .header("host", "evil.example")
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 421, "{url}");
        let answer = http
            .get(&url)
            .header("host", "evil.example:8080")
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 421, "{url} with a port");
    }
    let signed = snaplabel_pipeline::aws::s3_client(&dev.sdk(), Some(&dev.s3));
    let listing = signed
        .list_objects_v2()
        .bucket(snaplabel_dev::BUCKET)
        .customize()
        .mutate_request(|request| {
            request.headers_mut().insert("host", "evil.example");
        })
        .send()
        .await;
    assert!(listing.is_err(), "a listing for another host");
    // The names a developer uses work.
    for host in ["127.0.0.1", "localhost"] {
        let port = dev.app.rsplit(':').next().unwrap();
        let answer = http
            .get(format!("{}/config.json", dev.app))
            .header("host", format!("{host}:{port}"))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 200, "{host}");
    }
    // And a public name the stack is told about.
    drop(dev);
    let dev = Dev::start(&["--public-host", "dev.example.org"]).await;
    let answer = http
        .get(format!("{}/config.json", dev.app))
        .header("host", "dev.example.org")
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
}

/// `DetectLabels` through the Rekognition SDK, signed with `sdk`'s credentials.
async fn detect(dev: &Dev, sdk: &aws_config::SdkConfig, image: Bytes) -> Result<usize, String> {
    let client = snaplabel_pipeline::aws::rekognition_client(sdk, Some(&dev.app));
    client
        .detect_labels()
        .image(
            aws_sdk_rekognition::types::Image::builder()
                .bytes(aws_sdk_rekognition::primitives::Blob::new(image.to_vec()))
                .build(),
        )
        .send()
        .await
        .map(|answer| answer.labels().len())
        .map_err(|e| format!("{}", aws_sdk_rekognition::error::DisplayErrorContext(e)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_local_rekognition_wants_a_signature_and_labels_a_few_at_a_time() {
    let dev = Dev::start(&[]).await;
    let cat = photo("chelsea.png");
    // Unsigned: refused, as Rekognition refuses it.
    let unsigned = reqwest::Client::new()
        .post(format!("{}/", dev.app))
        .header("x-amz-target", "RekognitionService.DetectLabels")
        .header("content-type", "application/x-amz-json-1.1")
        .body(r#"{"Image":{"S3Object":{"Bucket":"snaplabel","Name":"uploads/x.png"}}}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(unsigned.status(), 403);
    let body: Value = unsigned.json().await.unwrap();
    assert_eq!(body["__type"], "MissingAuthenticationTokenException");
    // Signed with the well-known keys of earlier versions, or with a wrong secret: refused.
    for (access, secret) in [
        (
            "SNAPLABELDEVACCESSKEY",
            "snaplabel-dev-secret-key-not-for-aws",
        ),
        (dev.credentials().access_key.as_str(), "not-the-secret"),
    ] {
        let wrong =
            snaplabel_pipeline::aws::static_sdk_config(access, secret, snaplabel_dev::REGION);
        let refused = detect(&dev, &wrong, cat.clone()).await.unwrap_err();
        assert!(
            refused.contains("UnrecognizedClient") || refused.contains("InvalidSignature"),
            "{refused}"
        );
    }
    // Cognito's non-guest operations want a signature too; its guest calls do not, as in AWS.
    let cognito = |target: &str| {
        reqwest::Client::new()
            .post(format!("{}/", dev.app))
            .header(
                "x-amz-target",
                format!("AWSCognitoIdentityService.{target}"),
            )
            .header("content-type", "application/x-amz-json-1.1")
            .body(r#"{"IdentityId":"us-east-1:00000000-0000-4000-8000-000000000000"}"#)
            .send()
    };
    assert_eq!(cognito("DescribeIdentity").await.unwrap().status(), 403);
    assert_eq!(
        cognito("GetOpenIdToken").await.unwrap().status(),
        404,
        "unknown id, but heard"
    );
    // Signed with the data folder's credentials: labeled.
    assert!(detect(&dev, &dev.sdk(), cat.clone()).await.unwrap() > 0);

    // Six hostile images at once: they wait for each other instead of all decoding together.
    let idle = dev.memory("VmRSS");
    dev.reset_peak();
    let deep = Bytes::from(snaplabel_fixtures::hostile::png_rgba16(4000, 3000, Some(6)));
    assert!(deep.len() < 5_000_000);
    let sdk = dev.sdk();
    let calls = (0..6).map(|_| detect(&dev, &sdk, deep.clone()));
    for answer in futures::future::join_all(calls).await {
        assert!(answer.is_ok(), "{answer:?}");
    }
    let peak = dev.memory("VmHWM");
    eprintln!(
        "six DetectLabels at once: +{} MB",
        peak.saturating_sub(idle) / MB
    );
    assert!(peak.saturating_sub(idle) <= 300 * MB);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_presigned_url_takes_no_metadata_its_signer_did_not_sign() {
    let dev = Dev::start(&[]).await;
    let me = GuestClient::connect(&dev.app).await.unwrap();
    let bytes = photo("coffee.png");
    let (_, created) = me
        .create_upload("coffee.png", "image/png", bytes.len())
        .await
        .unwrap();
    let mut put = reqwest::Client::new().put(created["upload"]["url"].as_str().unwrap());
    for (name, value) in created["upload"]["headers"].as_object().unwrap() {
        put = put.header(name, value.as_str().unwrap());
    }
    let answer = put
        .header("x-amz-meta-status", "approved-by-admin")
        .body(bytes.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 403);
    assert!(answer.text().await.unwrap().contains("not signed"));
    // Exactly as signed, it works.
    assert_eq!(me.put(&created, bytes).await.unwrap(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_result_that_cannot_be_written_is_written_once_storage_is_back_without_a_restart() {
    let dev = Dev::start(&["--rescan-secs", "2"]).await;
    let me = GuestClient::connect(&dev.app).await.unwrap();
    let bytes = photo("rocket.jpg");
    let (status, created) = me
        .create_upload("rocket.jpg", "image/jpeg", bytes.len())
        .await
        .unwrap();
    assert_eq!(status, 201, "{created}");
    // The guest's result folder is blocked by a file: every result write fails.
    let result_key = created["result"]["key"].as_str().unwrap();
    let owner_dir = dev
        .data_dir()
        .join("s3/snaplabel")
        .join(result_key.rsplit_once('/').unwrap().0);
    std::fs::create_dir_all(owner_dir.parent().unwrap()).unwrap();
    std::fs::write(&owner_dir, b"in the way").unwrap();
    assert_eq!(me.put(&created, bytes).await.unwrap(), 200);
    // Until the worker has given up its own retries (each one also retried by the SDK).
    let deadline = Instant::now() + Duration::from_secs(60);
    while !dev.log().contains("the next re-scan tries again") {
        assert!(Instant::now() < deadline, "{}", dev.log());
        let written = dev
            .log()
            .lines()
            .any(|l| l.contains(result_key) && l.contains("labeled"));
        assert!(!written, "no document can have been written: {}", dev.log());
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // Storage is back: the periodic re-scan labels it, with no restart.
    std::fs::remove_file(&owner_dir).unwrap();
    let doc = me.result(&created, Polling::backoff(MINUTE)).await.unwrap();
    assert_eq!(doc["status"], "ok", "{doc}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_credentials_are_made_per_data_folder_and_never_handed_to_the_page() {
    let first = Dev::start(&[]).await;
    let second = Dev::start(&[]).await;
    let (a, b) = (first.credentials(), second.credentials());
    assert_ne!(a, b);
    assert_ne!(a.access_key, "SNAPLABELDEVACCESSKEY");
    assert!(
        first.log().contains(&a.access_key),
        "snaplabel dev prints its access key"
    );
    let config = reqwest::get(format!("{}/config.json", first.app))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        !config.contains(&a.secret_key) && !config.contains(&a.access_key),
        "{config}"
    );
    // One folder's keys are useless against the other.
    let other = snaplabel_pipeline::aws::s3_client(&second.sdk(), Some(&first.s3));
    assert!(
        other
            .list_objects_v2()
            .bucket(snaplabel_dev::BUCKET)
            .send()
            .await
            .is_err()
    );
    let own = snaplabel_pipeline::aws::s3_client(&first.sdk(), Some(&first.s3));
    assert!(
        own.list_objects_v2()
            .bucket(snaplabel_dev::BUCKET)
            .send()
            .await
            .is_ok()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_client_is_disconnected_and_oversized_bodies_are_refused() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let dev = Dev::start(&[]).await;
    // Too big for any route: refused without being read to the end.
    let big = vec![b'x'; 9 * 1024 * 1024];
    let answer = reqwest::Client::new()
        .post(format!("{}/", dev.app))
        .header("x-amz-target", "AWSCognitoIdentityService.GetId")
        .body(big)
        .send()
        .await;
    match answer {
        Ok(answer) => assert_eq!(answer.status(), 413),
        Err(e) => assert!(e.is_request() || e.is_body(), "{e}"),
    }
    let answer = reqwest::Client::new()
        .post(format!("{}/api/uploads", dev.app))
        .body(vec![b' '; 64 * 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 400);
    // A client that stops sending mid-request holds nothing up (the disconnection itself is
    // tested on the server with a short read timeout).
    let mut slow = tokio::net::TcpStream::connect(dev.app.trim_start_matches("http://"))
        .await
        .unwrap();
    slow.write_all(b"GET /config.json HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 64];
    let waited = tokio::time::timeout(Duration::from_secs(1), slow.read(&mut buf)).await;
    assert!(waited.is_err(), "no answer to an unfinished request");
    assert_eq!(
        reqwest::get(format!("{}/healthz", dev.app))
            .await
            .unwrap()
            .status(),
        200
    );
}
