//! A hostile guest against a real `snaplabel dev` (its own process, so its memory and its log
//! are its own), over HTTP only: each attack of the guest-boundary issue, and what it gets now.

mod common;

use bytes::Bytes;
use common::{Dev, MB};
use serde_json::Value;
use snaplabel_dev::client::{GuestClient, Polling, open_id_token};
use std::time::{Duration, Instant};

fn photo(name: &str) -> Bytes {
    Bytes::from(snaplabel_fixtures::photo(name))
}

fn owner_of(created: &Value) -> String {
    snaplabel_dev::client::owner_segment(created)
        .unwrap()
        .to_string()
}

const MINUTE: Duration = Duration::from_secs(60);

/// A new guest with one photo of a cat, uploaded as `name` and labeled: the guest, the presign
/// API's answer for the upload, and the result document.
async fn guest_with_a_cat(dev: &Dev, name: &str) -> (GuestClient, Value, Value) {
    let guest = GuestClient::connect(&dev.app).await.unwrap();
    let created = guest
        .upload(name, "image/png", photo("chelsea.png"))
        .await
        .unwrap();
    let doc = guest
        .result(&created, Polling::backoff(MINUTE))
        .await
        .unwrap();
    assert_eq!(doc["status"], "ok", "{doc}");
    (guest, created, doc)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shared_key_url_or_document_gives_no_access_and_the_identity_id_leaks_nowhere() {
    let dev = Dev::start(&[]).await;
    let (victim, created, doc) = guest_with_a_cat(&dev, "holiday at home.png").await;
    let history = victim.history().await.unwrap();
    assert_eq!(history["uploads"].as_array().unwrap().len(), 1);

    // What the victim shares: a result URL, its key, the document (source.key).
    let owner = owner_of(&created);
    assert_eq!(
        doc["source"]["key"].as_str().unwrap().split('/').nth(1),
        Some(owner.as_str())
    );
    let attacker = GuestClient::connect(&dev.app).await.unwrap();
    let http = reqwest::Client::new();
    // Today's attack: the owner segment as the identity header. And every other way of
    // presenting what a shared URL or document reveals.
    for (header, value) in [
        ("x-snaplabel-identity", owner.clone()),
        ("authorization", format!("Bearer {owner}")),
        ("authorization", owner.clone()),
        ("authorization", String::new()),
    ] {
        let answer = http
            .get(format!("{}/api/uploads", dev.app))
            .header(header, &value)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 403, "{header}: {value}");
        let body: Value = answer.json().await.unwrap();
        assert_eq!(body["error"]["code"], "invalid_identity", "{body}");
        assert!(body["uploads"].is_null());
    }
    // With a valid token of their own the attacker sees only their own (empty) history, and
    // cannot page into the victim's with the victim's upload id.
    let (status, own) = attacker
        .history_page(&format!("before={}", created["id"].as_str().unwrap()))
        .await
        .unwrap();
    assert_eq!(status, 200);
    assert!(own["uploads"].as_array().unwrap().is_empty(), "{own}");
    // Nor can anyone get a token for the victim without the victim's identity id, which is
    // nowhere to be found: not in any key, URL, document, API answer or log line.
    let id = &victim.identity;
    for (what, text) in [
        ("the presign answer", created.to_string()),
        ("the result document", doc.to_string()),
        ("the history", history.to_string()),
        ("the log", dev.log()),
    ] {
        assert!(
            !text.contains(id.as_str()),
            "{what} contains the identity id"
        );
        let guid = id.split(':').nth(1).unwrap();
        assert!(
            !text.contains(guid),
            "{what} contains the identity id's GUID"
        );
    }
    let stored: Vec<String> = walk(&dev.data.path().join("data/s3"));
    assert!(
        stored
            .iter()
            .all(|p| !p.contains(id.split(':').nth(1).unwrap())),
        "{stored:?}"
    );
    // The owner segment is fixed for an identity and tells nothing about it: another token for
    // the same identity lands in the same place, another identity elsewhere.
    let again = victim
        .with_authorization(&format!(
            "Bearer {}",
            open_id_token(&dev.app, &victim.identity).await.unwrap()
        ))
        .upload("second.png", "image/png", photo("coffee.png"))
        .await
        .unwrap();
    assert_eq!(owner_of(&again), owner);
    let theirs = attacker
        .upload("mine.png", "image/png", photo("coffee.png"))
        .await
        .unwrap();
    assert_ne!(owner_of(&theirs), owner);
}

/// Every file under `dir`, as paths relative to it.
fn walk(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path.strip_prefix(dir).unwrap().display().to_string());
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_url_uploads_once_and_labels_once() {
    let dev = Dev::start(&[]).await;
    let me = GuestClient::connect(&dev.app).await.unwrap();
    let bytes = photo("rocket.jpg");
    let created = me
        .upload("rocket.jpg", "image/jpeg", bytes.clone())
        .await
        .unwrap();
    let first = me.result(&created, Polling::backoff(MINUTE)).await.unwrap();
    let mut other = bytes.to_vec();
    other[1000..2000].fill(0x55);
    for (what, body) in [
        ("the same bytes", bytes.clone()),
        ("other bytes of the same size", Bytes::from(other)),
    ] {
        for _ in 0..3 {
            assert_eq!(me.put(&created, body.clone()).await.unwrap(), 412, "{what}");
        }
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = me.result(&created, Polling::backoff(MINUTE)).await.unwrap();
    assert_eq!(first, after);
    let result_key = created["result"]["key"].as_str().unwrap();
    let runs = || {
        dev.log()
            .lines()
            .filter(|l| l.contains(result_key) && l.contains("labeled"))
            .count()
    };
    // The log line follows the document by a moment.
    let deadline = Instant::now() + Duration::from_secs(10);
    while runs() == 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        runs(),
        1,
        "one label run for one upload URL; the log:\n{}",
        dev.log()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deep_huge_images_cost_bounded_memory_and_always_get_a_document() {
    let dev = Dev::start(&[]).await;
    let me = GuestClient::connect(&dev.app).await.unwrap();
    // Warm up: the networks' working memory is part of idle, not of an image's cost.
    let warm = me
        .upload("cat.png", "image/png", photo("chelsea.png"))
        .await
        .unwrap();
    me.wait_result(&warm, Polling::backoff(MINUTE))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let idle = dev.memory("VmRSS");

    use snaplabel_fixtures::hostile;
    // The attack (8000×8000 16-bit RGBA, EXIF-rotated; 6000 high here to see the turn),
    // and the same trick in the formats that cannot be shrunk while decoding, uploaded at once so
    // that both label workers decode side by side.
    let attacks: Vec<(&str, &str, Bytes, &str)> = vec![
        (
            "deep.png",
            "image/png",
            Bytes::from(hostile::png_rgba16(8000, 6000, Some(6))),
            "ok",
        ),
        (
            "deep.tiff",
            "image/tiff",
            Bytes::from(hostile::tiff_rgba16(8000, 8000)),
            "too_many_pixels",
        ),
        (
            "wide.gif",
            "image/gif",
            Bytes::from(hostile::gif(8000, 8000)),
            "too_many_pixels",
        ),
        (
            "deep-2.png",
            "image/png",
            Bytes::from(hostile::png_rgba16(8000, 8000, Some(3))),
            "ok",
        ),
    ];
    for (name, _, bytes, _) in &attacks {
        eprintln!("{name}: {} kB on the wire", bytes.len() / 1000);
    }
    dev.reset_peak();
    let started = Instant::now();
    let mut uploads = Vec::new();
    for (name, content_type, bytes, _) in &attacks {
        uploads.push(me.upload(name, content_type, bytes.clone()).await.unwrap());
    }
    for ((name, _, _, expected), created) in attacks.iter().zip(&uploads) {
        let doc = me.result(created, Polling::backoff(MINUTE)).await.unwrap();
        let outcome = doc["error"]["code"].as_str().unwrap_or("ok");
        assert_eq!(outcome, *expected, "{name}: {doc}");
        if *name == "deep.png" {
            assert_eq!(
                (
                    doc["image"]["width"].as_u64(),
                    doc["image"]["height"].as_u64()
                ),
                (Some(6000), Some(8000))
            );
        }
    }
    let peak = dev.memory("VmHWM");
    eprintln!(
        "idle {} MB, peak {} MB: +{} MB for four hostile images in {:.1} s",
        idle / MB,
        peak / MB,
        peak.saturating_sub(idle) / MB,
        started.elapsed().as_secs_f64()
    );
    assert!(
        peak.saturating_sub(idle) <= 300 * MB,
        "+{} MB",
        peak.saturating_sub(idle) / MB
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_file_name_is_cut_to_fit_s3_metadata_and_the_upload_works() {
    let dev = Dev::start(&[]).await;
    let me = GuestClient::connect(&dev.app).await.unwrap();
    for name in ["a".repeat(1020) + ".png", "猫".repeat(1020) + ".png"] {
        let (status, created) = me
            .create_upload(&name, "image/png", photo("coffee.png").len())
            .await
            .unwrap();
        assert_eq!(status, 201, "{created}");
        let meta = created["upload"]["headers"]["x-amz-meta-original-filename"]
            .as_str()
            .unwrap();
        assert!(
            "original-filename".len() + meta.len() <= 2048,
            "{} bytes",
            meta.len()
        );
        assert_eq!(
            me.put(&created, photo("coffee.png")).await.unwrap(),
            200,
            "the local S3 accepts it, as S3 would"
        );
    }
    let history = me.history().await.unwrap();
    for upload in history["uploads"].as_array().unwrap() {
        let name = upload["filename"].as_str().unwrap();
        assert!(name.ends_with("….png"), "{}", &name[name.len() - 12..]);
    }
    // And the local S3 refuses what S3 refuses: more than 2 KB of user metadata.
    // The data folder's own key pair (`snaplabel dev` made it).
    let credentials =
        snaplabel_localaws::Credentials::for_data_dir(&dev.data.path().join("data")).unwrap();
    let sdk = snaplabel_pipeline::aws::static_sdk_config(
        &credentials.access_key,
        &credentials.secret_key,
        snaplabel_dev::REGION,
    );
    let s3 = snaplabel_pipeline::aws::s3_client(&sdk, Some(&dev.s3));
    let refused = s3
        .put_object()
        .bucket(snaplabel_dev::BUCKET)
        .key("elsewhere/big-metadata.txt")
        .metadata("note", "x".repeat(2100))
        .body(Bytes::from_static(b"hello").into())
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        refused.raw_response().map(|r| r.status().as_u16()),
        Some(400)
    );
    assert!(
        format!("{refused:?}").contains("MetadataTooLarge"),
        "{refused:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_behind_the_api_answer_generically_with_a_request_id_and_are_logged() {
    // The issuer's keys cannot be fetched (its URL is down, and nothing is cached yet).
    let closed = snaplabel_localaws::server::free_loopback_port().unwrap();
    let jwks = format!("http://127.0.0.1:{closed}/.well-known/jwks_uri");
    let dev = Dev::start(&["--jwks-url", &jwks]).await;
    let me = GuestClient::connect(&dev.app).await.unwrap();
    let (status, answer) = me.create_upload("a.png", "image/png", 1000).await.unwrap();
    assert_eq!(status, 503, "{answer}");
    assert_eq!(answer["error"]["code"], "unavailable");
    let request_id = answer["error"]["request_id"].as_str().unwrap().to_string();
    assert!(
        !answer.to_string().contains(&closed.to_string()),
        "no internal URL: {answer}"
    );
    let log = dev.log();
    let line = log
        .lines()
        .find(|l| l.contains(&request_id))
        .expect("logged under its request id");
    assert!(
        line.contains("unavailable") && line.contains(&closed.to_string()),
        "{line}"
    );
    drop(dev);

    // Identity ids Cognito's own pattern refuses, before anything is looked up.
    let dev = Dev::start(&[]).await;
    for bad in [
        "not-hex:xyz",
        &format!("us-east-1:{}", "a".repeat(60)),
        "us-east-1:../../x",
    ] {
        let err = open_id_token(&dev.app, bad).await.unwrap_err().to_string();
        assert!(err.contains("InvalidParameterException"), "{bad}: {err}");
    }
    // Storage failing behind the API: the caller learns nothing of it but the request id.
    let me = GuestClient::connect(&dev.app).await.unwrap();
    std::fs::remove_dir_all(dev.data.path().join("data/s3/snaplabel")).unwrap();
    let (status, answer) = me.create_upload("a.png", "image/png", 1000).await.unwrap();
    assert_eq!(status, 500, "{answer}");
    assert_eq!(answer["error"]["code"], "storage_failed");
    let text = answer.to_string();
    for internal in ["NoSuchBucket", "127.0.0.1", "snaplabel/", "quota/"] {
        assert!(!text.contains(internal), "{internal} in {text}");
    }
    let request_id = answer["error"]["request_id"].as_str().unwrap();
    let log = dev.log();
    let line = log
        .lines()
        .find(|l| l.contains(request_id))
        .expect("logged under its request id");
    assert!(
        line.contains("storage_failed") && line.contains("NoSuchBucket"),
        "{line}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_newest_upload_heads_the_history_of_ten_thousand() {
    let dev = Dev::start(&[]).await;
    let me = GuestClient::connect(&dev.app).await.unwrap();
    let first = me
        .upload("first.png", "image/png", photo("coffee.png"))
        .await
        .unwrap();
    me.wait_result(&first, Polling::backoff(MINUTE))
        .await
        .unwrap();
    // 10,000 earlier uploads of the same guest, older than the first (as a long-time user would
    // have), put straight into the store's folder.
    let owner = owner_of(&first);
    let folder = dev
        .data
        .path()
        .join("data/s3/snaplabel/uploads")
        .join(&owner);
    let then = std::time::SystemTime::now() - Duration::from_secs(30 * 24 * 3600);
    for i in 0..10_000u64 {
        let at = then + Duration::from_millis(i * 100);
        let id = snaplabel_core::keys::upload_id(ulid::Ulid::from_datetime(at).0);
        std::fs::write(folder.join(format!("{id}.png")), b"old").unwrap();
    }
    let newest = me
        .upload("newest.png", "image/png", photo("chelsea.png"))
        .await
        .unwrap();
    let started = Instant::now();
    let (status, page) = me.history_page("limit=3").await.unwrap();
    let took = started.elapsed();
    assert_eq!(status, 200, "{page}");
    let ids: Vec<&str> = page["uploads"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids[0], newest["id"].as_str().unwrap());
    assert_eq!(ids[1], first["id"].as_str().unwrap());
    assert_eq!(ids.len(), 3);
    // The next page continues with the older ones.
    let before = page["next_before"].as_str().unwrap();
    let (_, next) = me
        .history_page(&format!("limit=100&before={before}"))
        .await
        .unwrap();
    assert_eq!(next["uploads"].as_array().unwrap().len(), 100);
    eprintln!(
        "history page of 10,002 uploads in {:.0} ms",
        took.as_secs_f64() * 1000.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guest_gets_its_hourly_quota_of_upload_links_and_new_guests_are_throttled() {
    let dev = Dev::start(&["--uploads-per-hour", "3"]).await;
    let me = GuestClient::connect(&dev.app).await.unwrap();
    for i in 0..3 {
        let (status, answer) = me
            .create_upload(&format!("{i}.png"), "image/png", 1000)
            .await
            .unwrap();
        assert_eq!(status, 201, "{answer}");
    }
    let response = reqwest::Client::new()
        .post(format!("{}/api/uploads", dev.app))
        .header("authorization", &me.authorization)
        .json(&serde_json::json!({"filename": "4.png", "content_type": "image/png", "size": 1000}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 429);
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((3000..=3600).contains(&retry_after), "{retry_after}");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "rate_limited");
    // Counted per guest: another one starts with its whole quota.
    let other = GuestClient::connect(&dev.app).await.unwrap();
    assert_eq!(
        other
            .create_upload("x.png", "image/png", 1000)
            .await
            .unwrap()
            .0,
        201
    );
    // Minting guests is throttled too (GetId bursts), so quotas cannot be multiplied at will.
    let http = reqwest::Client::new();
    let get_ids = (0..60).map(|_| {
        http.post(format!("{}/", dev.app))
            .header("x-amz-target", "AWSCognitoIdentityService.GetId")
            .header("content-type", "application/x-amz-json-1.1")
            .body(format!(
                "{{\"IdentityPoolId\":\"{}\"}}",
                snaplabel_dev::IDENTITY_POOL_ID
            ))
            .send()
    });
    let mut throttled = 0;
    for answer in futures::future::join_all(get_ids).await {
        let answer = answer.unwrap();
        if answer.status() == 429 {
            let body: Value = answer.json().await.unwrap();
            assert_eq!(body["__type"], "TooManyRequestsException");
            throttled += 1;
        }
    }
    assert!(
        throttled >= 30,
        "of 60 GetId at once, {throttled} were throttled"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_guest_can_neither_find_delete_nor_export_someone_elses_photos() {
    let dev = Dev::start(&[]).await;
    let (victim, created, _) = guest_with_a_cat(&dev, "my cat.png").await;
    let id = created["id"].as_str().unwrap();
    let (status, found) = victim.search("cat").await.unwrap();
    assert_eq!((status, found["total"].as_u64()), (200, Some(1)), "{found}");
    assert_eq!(found["uploads"][0]["filename"], "my cat.png");

    let attacker = GuestClient::connect(&dev.app).await.unwrap();
    let (_, theirs) = attacker.search("cat").await.unwrap();
    assert_eq!(theirs["total"], 0, "{theirs}");
    let (_, labels) = attacker
        .api(reqwest::Method::GET, "/api/labels", &[], None)
        .await
        .unwrap();
    assert_eq!(labels["uploads"], 0, "{labels}");
    let (status, export) = attacker
        .api(
            reqwest::Method::POST,
            "/api/exports",
            &[],
            Some(serde_json::json!({"format": "ndjson"})),
        )
        .await
        .unwrap();
    assert_eq!(
        (status, export["uploads"].as_u64()),
        (201, Some(0)),
        "{export}"
    );
    // Someone else's id answers exactly as an id that never existed: 404, not 403.
    let (status, refusal) = attacker.delete(id).await.unwrap();
    assert_eq!(
        (status, refusal["error"]["code"].as_str()),
        (404, Some("not_found"))
    );
    let (_, unknown) = attacker.delete("01JDQ3ZK8M4V6X0N2B7C9D5E1F").await.unwrap();
    assert_eq!(unknown["error"]["code"], refusal["error"]["code"]);
    // Without a token, nothing.
    let anonymous = attacker.with_authorization("");
    assert_eq!(anonymous.delete(id).await.unwrap().0, 403);
    // The photo is still there, with its result.
    assert_eq!(victim.search("cat").await.unwrap().1["total"], 1);
    let head = reqwest::Client::new()
        .head(created["result"]["head_url"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), 200);

    // The owner deletes it: gone from the history, the search and storage.
    assert_eq!(victim.delete(id).await.unwrap().0, 204);
    assert_eq!(
        victim.history().await.unwrap()["uploads"],
        serde_json::json!([])
    );
    assert_eq!(victim.search("cat").await.unwrap().1["total"], 0);
    let head = reqwest::Client::new()
        .head(created["result"]["head_url"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert!(
        matches!(head.status().as_u16(), 403 | 404),
        "{}",
        head.status()
    );
    assert_eq!(victim.delete(id).await.unwrap().0, 404);
}
