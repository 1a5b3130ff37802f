//! The dev stack as a browser (or curl) uses it: plain HTTP against ephemeral ports.

use bytes::Bytes;
use serde_json::Value;
use snaplabel_dev::client::{GuestClient, Polling};
use snaplabel_dev::{DevConfig, DevStack, IDENTITY_POOL_ID};
use std::path::Path;
use std::time::{Duration, Instant};

fn fixture(name: &str) -> Bytes {
    Bytes::from(snaplabel_fixtures::photo(name))
}

fn config(data: &Path) -> DevConfig {
    let mut config = DevConfig::new(data.to_path_buf());
    // Where the README's test command put the models.
    config.model = snaplabel_pipeline::wiring::model_settings_from_env();
    config.port = 0;
    config.s3_port = 0;
    // Tests upload more from one guest than a person would in an hour.
    config.uploads_per_hour = 10_000;
    config
}

async fn start(data: &Path) -> (DevStack, GuestClient) {
    let stack = DevStack::start(config(data))
        .await
        .expect("the stack starts (models from the README's test command)");
    let client = GuestClient::connect(&stack.app_url).await.unwrap();
    (stack, client)
}

const MINUTE: Duration = Duration::from_secs(60);

fn names(doc: &Value) -> Vec<&str> {
    doc["Labels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["Name"].as_str().unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_uploads_a_photo_and_a_broken_file_and_sees_both_outcomes() {
    let dir = tempfile::tempdir().unwrap();
    let (stack, me) = start(dir.path()).await;
    let config: Value = me
        .http
        .get(format!("{}/config.json", stack.app_url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(config["identity"]["pool_id"], IDENTITY_POOL_ID);
    let page = me
        .http
        .get(format!("{}/", stack.app_url))
        .send()
        .await
        .unwrap();
    // The app comes with the security headers CloudFront adds in AWS.
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert_eq!(
        csp,
        snaplabel_core::api::content_security_policy(&stack.s3_url, &stack.app_url)
    );
    assert_eq!(page.headers()["x-frame-options"], "DENY");
    assert_eq!(page.headers()["x-content-type-options"], "nosniff");
    assert!(page.text().await.unwrap().contains("snaplabel"));

    let created = me
        .upload("chelsea.png", "image/png", fixture("chelsea.png"))
        .await
        .unwrap();
    // The owner segment is derived from the identity, never the identity itself.
    let result_key = created["result"]["key"].as_str().unwrap();
    let owner = snaplabel_dev::client::owner_segment(&created).unwrap();
    assert!(
        owner.len() == 32 && owner.bytes().all(|b| b.is_ascii_hexdigit()),
        "{result_key}"
    );
    assert!(!created.to_string().contains(&me.identity), "{created}");
    let doc = me.result(&created, Polling::backoff(MINUTE)).await.unwrap();
    assert_eq!(doc["status"], "ok", "{doc}");
    assert!(names(&doc).contains(&"Cat"), "{doc}");

    let created = me
        .upload(
            "holiday.jpg",
            "image/jpeg",
            Bytes::from_static(b"PK\x03\x04 this is a zip archive, renamed"),
        )
        .await
        .unwrap();
    let doc = me.result(&created, Polling::backoff(MINUTE)).await.unwrap();
    assert_eq!(doc["status"], "error");
    assert_eq!(doc["error"]["code"], "unsupported_format");

    // The history lists both, newest first, with the original names.
    let history = me.history().await.unwrap();
    let files: Vec<&str> = history["uploads"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["filename"].as_str().unwrap())
        .collect();
    assert_eq!(files, ["holiday.jpg", "chelsea.png"]);
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identities_are_verified_and_isolated() {
    let dir = tempfile::tempdir().unwrap();
    let (stack, alice) = start(dir.path()).await;
    let bob = GuestClient::connect(&stack.app_url).await.unwrap();
    assert_ne!(alice.identity, bob.identity);

    // No proof, the identity id itself (the old header's way), garbage, a forged token: refused.
    let forged = {
        // Alice's token with Bob's identity in it: the signature no longer matches.
        let parts: Vec<&str> = alice.authorization["Bearer ".len()..].split('.').collect();
        use base64::Engine;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let claims = String::from_utf8(b64.decode(parts[1]).unwrap())
            .unwrap()
            .replace(&alice.identity, &bob.identity);
        format!("Bearer {}.{}.{}", parts[0], b64.encode(claims), parts[2])
    };
    for authorization in [
        String::new(),
        "Bearer ".into(),
        alice.identity.clone(),
        format!("Bearer {}", alice.identity),
        "Bearer not.a.token".into(),
        forged,
    ] {
        let (status, answer) = alice
            .with_authorization(&authorization)
            .create_upload("a.png", "image/png", 10)
            .await
            .unwrap();
        assert_eq!(status, 403, "{authorization:?}: {answer}");
        assert_eq!(answer["error"]["code"], "invalid_identity");
        assert!(answer["error"]["request_id"].is_string(), "{answer}");
    }

    let created = alice
        .upload("coffee.png", "image/png", fixture("coffee.png"))
        .await
        .unwrap();
    alice
        .result(&created, Polling::backoff(MINUTE))
        .await
        .unwrap();
    assert_eq!(
        alice.history().await.unwrap()["uploads"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert!(
        bob.history().await.unwrap()["uploads"]
            .as_array()
            .unwrap()
            .is_empty(),
        "Bob sees nothing of Alice's"
    );

    // Alice's presigned URLs are for Alice's keys only; editing the key or the expiry breaks them.
    let bobs = bob
        .upload("rocket.jpg", "image/jpeg", fixture("rocket.jpg"))
        .await
        .unwrap();
    let owner = |created: &Value| {
        snaplabel_dev::client::owner_segment(created)
            .unwrap()
            .to_string()
    };
    let get_url = created["result"]["get_url"].as_str().unwrap();
    let other_key = get_url.replace(&owner(&created), &owner(&bobs));
    assert_eq!(
        alice.http.get(other_key).send().await.unwrap().status(),
        403
    );
    let longer = get_url.replace("X-Amz-Expires=900", "X-Amz-Expires=9000");
    assert_eq!(alice.http.get(longer).send().await.unwrap().status(), 403);
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_concurrent_uploads_all_get_results() {
    let dir = tempfile::tempdir().unwrap();
    let (stack, me) = start(dir.path()).await;
    // Small distinct photos (crops of a real one) keep the test quick; the queue is what is tested.
    let cat = image::load_from_memory(&fixture("chelsea.png")).unwrap();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..200u32 {
        let crop = cat
            .crop_imm(i % 100, (i / 100) * 20, 300, 220)
            .thumbnail(96, 96);
        let mut bytes = std::io::Cursor::new(Vec::new());
        crop.write_to(&mut bytes, image::ImageFormat::Png).unwrap();
        let me = me.clone();
        tasks.push(tokio::spawn(async move {
            let created = me
                .upload(
                    &format!("crop-{i}.png"),
                    "image/png",
                    Bytes::from(bytes.into_inner()),
                )
                .await
                .unwrap();
            me.result(&created, Polling::backoff(Duration::from_secs(300)))
                .await
                .unwrap()
        }));
    }
    let mut ok = 0;
    for task in tasks {
        ok += (task.await.unwrap()["status"] == "ok") as usize;
    }
    eprintln!(
        "200 uploads labeled in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    assert_eq!(ok, 200);
    assert_eq!(stack.pending(), 0);
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_presigned_url_uploads_once_and_labels_once() {
    let dir = tempfile::tempdir().unwrap();
    let (stack, me) = start(dir.path()).await;
    let photo = fixture("rocket.jpg");
    let created = me
        .upload("rocket.jpg", "image/jpeg", photo.clone())
        .await
        .unwrap();
    me.wait_result(&created, Polling::backoff(MINUTE))
        .await
        .unwrap();
    let get = created["result"]["get_url"].as_str().unwrap();
    let first = me
        .http
        .get(get)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    // The same URL again, with the same bytes or others of the same size: refused by S3 itself
    // (If-None-Match: * is signed in), so no second event and no second label run.
    let mut other = photo.to_vec();
    other.reverse();
    for body in [photo.clone(), Bytes::from(other)] {
        assert_eq!(me.put(&created, body).await.unwrap(), 412);
    }
    assert_eq!(stack.pending(), 0, "nothing was queued");
    let second = me
        .http
        .get(get)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(first, second, "the document is untouched");
    let stored = std::fs::read(
        dir.path().join("s3/snaplabel").join(
            created["result"]["key"]
                .as_str()
                .unwrap()
                .replace("labels/", "uploads/")
                .replace(".json", ".jpg"),
        ),
    )
    .unwrap();
    assert_eq!(stored, photo.to_vec(), "the image is the first upload's");
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
    let (stack, _) = start(dir.path()).await;
    let deadline = Instant::now() + MINUTE;
    let result = dir
        .path()
        .join("s3/snaplabel/labels/anonymous-test/left-behind.png.json");
    while !result.exists() {
        assert!(
            Instant::now() < deadline,
            "the left-behind upload was not labeled"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let doc: Value = serde_json::from_slice(&std::fs::read(&result).unwrap()).unwrap();
    assert!(names(&doc).contains(&"Cat"), "{doc}");
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_upload_urls_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path());
    config.url_expiry_secs = 1;
    let stack = DevStack::start(config).await.unwrap();
    let me = GuestClient::connect(&stack.app_url).await.unwrap();
    let photo = fixture("rocket.jpg");
    let (_, created) = me
        .create_upload("rocket.jpg", "image/jpeg", photo.len())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(
        me.put(&created, photo).await.unwrap(),
        403,
        "an expired URL"
    );
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_from_the_trunk_dev_server_may_call_the_identity_service_and_no_other_site_may() {
    let dir = tempfile::tempdir().unwrap();
    let (stack, me) = start(dir.path()).await;
    let trunk = "http://127.0.0.1:8081";
    let preflight = me
        .http
        .request(reqwest::Method::OPTIONS, format!("{}/", stack.app_url))
        .header("origin", trunk)
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "content-type,x-amz-target",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(preflight.status(), 204);
    assert_eq!(preflight.headers()["access-control-allow-origin"], trunk);
    assert!(
        preflight.headers()["access-control-allow-headers"]
            .to_str()
            .unwrap()
            .contains("x-amz-target")
    );
    let get_id = |origin: &'static str| {
        me.http
            .post(format!("{}/", stack.app_url))
            .header("origin", origin)
            .header("x-amz-target", "AWSCognitoIdentityService.GetId")
            .header("content-type", "application/x-amz-json-1.1")
            .body(format!("{{\"IdentityPoolId\":\"{IDENTITY_POOL_ID}\"}}"))
            .send()
    };
    let allowed = get_id(trunk).await.unwrap();
    assert_eq!(allowed.status(), 200);
    assert_eq!(allowed.headers()["access-control-allow-origin"], trunk);
    let foreign = get_id("https://evil.example").await.unwrap();
    assert!(
        foreign
            .headers()
            .get("access-control-allow-origin")
            .is_none(),
        "no CORS grant for a foreign site"
    );
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_upload_never_comes_back_through_a_re_scan() {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = config(dir.path());
    settings.rescan_every = Duration::from_millis(500);
    let stack = DevStack::start(settings).await.unwrap();
    let me = GuestClient::connect(&stack.app_url).await.unwrap();
    let created = me
        .upload("cat.png", "image/png", fixture("chelsea.png"))
        .await
        .unwrap();
    me.result(&created, Polling::backoff(MINUTE)).await.unwrap();
    let id = created["id"].as_str().unwrap();
    assert_eq!(me.search("cat").await.unwrap().1["total"], 1);
    assert_eq!(me.delete(id).await.unwrap().0, 204);

    // As if deleting the image had failed half-way: it is back in storage, with no event; only
    // the re-scan (every half second here, and at start-up) can find it.
    let owner = snaplabel_dev::client::owner_segment(&created).unwrap();
    let bucket = dir.path().join("s3/snaplabel");
    let image = bucket.join(format!("uploads/{owner}/{id}.png"));
    let result = bucket.join(format!("labels/{owner}/{id}.json"));
    assert!(!image.exists() && !result.exists(), "deleted from storage");
    std::fs::write(&image, fixture("chelsea.png")).unwrap();
    let deadline = Instant::now() + MINUTE;
    while !result.exists() {
        assert!(Instant::now() < deadline, "the re-scan did not label it");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Labeled again, but never shown again: not in the history, not found, not counted.
    assert_eq!(
        me.history().await.unwrap()["uploads"],
        serde_json::json!([])
    );
    let (_, found) = me.search("cat").await.unwrap();
    assert_eq!(found["total"], 0, "{found}");
    // That search's repair removed what was left, so the re-scan has nothing more to label.
    assert!(!image.exists() && !result.exists(), "left-overs removed");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(!result.exists(), "not labeled again");
    let (_, labels) = me
        .api(reqwest::Method::GET, "/api/labels", &[], None)
        .await
        .unwrap();
    assert_eq!(labels["uploads"], 0, "{labels}");
    stack.shutdown().await;
}
