//! The dev stack as a browser (or curl) uses it: plain HTTP against ephemeral ports.

use reqwest::Client;
use serde_json::{Value, json};
use snaplabel_dev::{DevConfig, DevStack, IDENTITY_POOL_ID};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/photos").join(name)).unwrap()
}

async fn start(data: &Path) -> DevStack {
    let mut config = DevConfig::new(data.to_path_buf());
    config.port = 0;
    config.s3_port = 0;
    DevStack::start(config).await.expect("the stack starts (models from the README's test command)")
}

async fn guest(http: &Client, stack: &DevStack) -> String {
    let r: Value = http
        .post(format!("{}/", stack.app_url))
        .header("x-amz-target", "AWSCognitoIdentityService.GetId")
        .header("content-type", "application/x-amz-json-1.1")
        .body(json!({"IdentityPoolId": IDENTITY_POOL_ID}).to_string())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    r["IdentityId"].as_str().unwrap().to_string()
}

async fn presign(http: &Client, stack: &DevStack, identity: &str, name: &str, content_type: &str, size: usize) -> (u16, Value) {
    let r = http
        .post(format!("{}/api/uploads", stack.app_url))
        .header("x-snaplabel-identity", identity)
        .json(&json!({"filename": name, "content_type": content_type, "size": size}))
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

async fn put(http: &Client, created: &Value, body: Vec<u8>) -> u16 {
    let mut request = http.put(created["upload"]["url"].as_str().unwrap()).body(body);
    for (name, value) in created["upload"]["headers"].as_object().unwrap() {
        request = request.header(name, value.as_str().unwrap());
    }
    request.send().await.unwrap().status().as_u16()
}

/// HEAD with backoff until 200 (403/404 mean "not yet"), then GET — as the SPA polls.
async fn poll(http: &Client, created: &Value, within: Duration) -> Value {
    let deadline = Instant::now() + within;
    let mut delay = Duration::from_millis(50);
    loop {
        let status = http.head(created["result"]["head_url"].as_str().unwrap()).send().await.unwrap().status().as_u16();
        if status == 200 {
            return http.get(created["result"]["get_url"].as_str().unwrap()).send().await.unwrap().json().await.unwrap();
        }
        assert!(matches!(status, 403 | 404), "unexpected HEAD status {status}");
        assert!(Instant::now() < deadline, "no result within {within:?}");
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(1));
    }
}

fn names(doc: &Value) -> Vec<&str> {
    doc["Labels"].as_array().unwrap().iter().map(|l| l["Name"].as_str().unwrap()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_uploads_a_photo_and_a_broken_file_and_sees_both_outcomes() {
    let dir = tempfile::tempdir().unwrap();
    let stack = start(dir.path()).await;
    let http = Client::new();
    let config: Value = http.get(format!("{}/config.json", stack.app_url)).send().await.unwrap().json().await.unwrap();
    assert_eq!(config["identity"]["pool_id"], IDENTITY_POOL_ID);
    let page = http.get(format!("{}/", stack.app_url)).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("snaplabel"));

    let me = guest(&http, &stack).await;
    let photo = fixture("chelsea.png");
    let (status, created) = presign(&http, &stack, &me, "chelsea.png", "image/png", photo.len()).await;
    assert_eq!(status, 201, "{created}");
    assert!(created["result"]["key"].as_str().unwrap().starts_with(&format!("labels/{me}/")));
    assert_eq!(put(&http, &created, photo).await, 200);
    let doc = poll(&http, &created, Duration::from_secs(60)).await;
    assert_eq!(doc["status"], "ok", "{doc}");
    assert!(names(&doc).contains(&"Cat"), "{doc}");

    let junk = b"PK\x03\x04 this is a zip archive, renamed".to_vec();
    let (_, created) = presign(&http, &stack, &me, "holiday.jpg", "image/jpeg", junk.len()).await;
    assert_eq!(put(&http, &created, junk).await, 200);
    let doc = poll(&http, &created, Duration::from_secs(60)).await;
    assert_eq!(doc["status"], "error");
    assert_eq!(doc["error"]["code"], "unsupported_format");

    // The history lists both, newest first, with the original names.
    let history: Value = http
        .get(format!("{}/api/uploads", stack.app_url))
        .header("x-snaplabel-identity", &me)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let files: Vec<&str> = history["uploads"].as_array().unwrap().iter().map(|u| u["filename"].as_str().unwrap()).collect();
    assert_eq!(files, ["holiday.jpg", "chelsea.png"]);
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identities_are_verified_and_isolated() {
    let dir = tempfile::tempdir().unwrap();
    let stack = start(dir.path()).await;
    let http = Client::new();
    let alice = guest(&http, &stack).await;
    let bob = guest(&http, &stack).await;
    assert_ne!(alice, bob);

    // No identity, a made-up one, a malformed one: refused.
    for identity in ["", "us-east-1:00000000-1111-4222-8333-444444444444", "../../etc"] {
        let (status, answer) = presign(&http, &stack, identity, "a.png", "image/png", 10).await;
        assert_eq!(status, 403, "{identity:?}: {answer}");
        assert_eq!(answer["error"]["code"], "invalid_identity");
    }

    let photo = fixture("coffee.png");
    let (_, created) = presign(&http, &stack, &alice, "coffee.png", "image/png", photo.len()).await;
    assert_eq!(put(&http, &created, photo).await, 200);
    poll(&http, &created, Duration::from_secs(60)).await;

    let history = |who: String| {
        let http = http.clone();
        let url = format!("{}/api/uploads", stack.app_url);
        async move { http.get(url).header("x-snaplabel-identity", who).send().await.unwrap().json::<Value>().await.unwrap() }
    };
    assert_eq!(history(alice.clone()).await["uploads"].as_array().unwrap().len(), 1);
    assert!(history(bob.clone()).await["uploads"].as_array().unwrap().is_empty(), "Bob sees nothing of Alice's");

    // Alice's presigned URLs are for Alice's keys only; editing the key breaks the signature.
    let url = created["result"]["get_url"].as_str().unwrap().replace(&alice.replace(':', "%3A"), &bob.replace(':', "%3A"));
    assert_eq!(http.get(url).send().await.unwrap().status(), 403);
    let tampered = created["result"]["get_url"].as_str().unwrap().replace("X-Amz-Expires=900", "X-Amz-Expires=9000");
    assert_eq!(http.get(tampered).send().await.unwrap().status(), 403);
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_concurrent_uploads_all_get_results() {
    let dir = tempfile::tempdir().unwrap();
    let stack = start(dir.path()).await;
    let http = Client::new();
    let me = guest(&http, &stack).await;
    // Small distinct photos (crops of a real one) keep the test quick; the queue is what is tested.
    let cat = image::load_from_memory(&fixture("chelsea.png")).unwrap();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..200u32 {
        let crop = cat.crop_imm(i % 100, (i / 100) * 20, 300, 220).thumbnail(96, 96);
        let mut bytes = std::io::Cursor::new(Vec::new());
        crop.write_to(&mut bytes, image::ImageFormat::Png).unwrap();
        let bytes = bytes.into_inner();
        let (http, me, app) = (http.clone(), me.clone(), stack.app_url.clone());
        tasks.push(tokio::spawn(async move {
            let r = http
                .post(format!("{app}/api/uploads"))
                .header("x-snaplabel-identity", &me)
                .json(&json!({"filename": format!("crop-{i}.png"), "content_type": "image/png", "size": bytes.len()}))
                .send()
                .await
                .unwrap();
            let created: Value = r.json().await.unwrap();
            assert_eq!(put(&http, &created, bytes).await, 200);
            poll(&http, &created, Duration::from_secs(300)).await
        }));
    }
    let mut ok = 0;
    for task in tasks {
        let doc = task.await.unwrap();
        assert!(doc["status"] == "ok" || doc["status"] == "error", "{doc}");
        ok += (doc["status"] == "ok") as usize;
    }
    eprintln!("200 uploads labeled in {:.1} s", started.elapsed().as_secs_f64());
    assert_eq!(ok, 200);
    assert_eq!(stack.pending(), 0);
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploading_the_same_bytes_again_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let stack = start(dir.path()).await;
    let http = Client::new();
    let me = guest(&http, &stack).await;
    let photo = fixture("rocket.jpg");
    let (_, created) = presign(&http, &stack, &me, "rocket.jpg", "image/jpeg", photo.len()).await;
    assert_eq!(put(&http, &created, photo.clone()).await, 200);
    poll(&http, &created, Duration::from_secs(60)).await;
    let get = created["result"]["get_url"].as_str().unwrap();
    let first = http.get(get).send().await.unwrap().bytes().await.unwrap();
    // The same PUT again: S3 emits a second event for the same bytes.
    assert_eq!(put(&http, &created, photo).await, 200);
    let deadline = Instant::now() + Duration::from_secs(30);
    while stack.pending() > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let second = http.get(get).send().await.unwrap().bytes().await.unwrap();
    assert_eq!(first, second, "the document is untouched by the duplicate event");
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_without_results_are_labeled_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    // An upload that reached S3 while no stack was running to label it: written straight into
    // the data folder, as if the process had died between the PUT and the label.
    let folder = dir.path().join("s3/snaplabel/uploads/anonymous-test");
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::write(folder.join("left-behind.png"), fixture("chelsea.png")).unwrap();
    let stack = start(dir.path()).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    let result = dir.path().join("s3/snaplabel/labels/anonymous-test/left-behind.png.json");
    while !result.exists() {
        assert!(Instant::now() < deadline, "the left-behind upload was not labeled");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let doc: Value = serde_json::from_slice(&std::fs::read(&result).unwrap()).unwrap();
    assert!(names(&doc).contains(&"Cat"), "{doc}");
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_upload_urls_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = DevConfig::new(dir.path().to_path_buf());
    config.port = 0;
    config.s3_port = 0;
    config.url_expiry_secs = 1;
    let stack = DevStack::start(config).await.unwrap();
    let http = Client::new();
    let me = guest(&http, &stack).await;
    let photo = fixture("rocket.jpg");
    let (_, created) = presign(&http, &stack, &me, "rocket.jpg", "image/jpeg", photo.len()).await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(put(&http, &created, photo).await, 403, "an expired URL");
    stack.shutdown().await;
}
