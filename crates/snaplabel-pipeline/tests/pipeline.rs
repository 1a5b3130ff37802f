//! The presign and label handlers against a real S3-protocol server on 127.0.0.1, driven by
//! aws-sdk-s3 and plain HTTP, with the Rekognition labeler talking awsJson1_1 to a local endpoint.

mod common;

use common::{BUCKET, Harness, ORIGIN, fixture};
use serde_json::json;
use snaplabel_localaws::rekognition::ImageSource;
use snaplabel_pipeline::event::{event, object_created_record};
use snaplabel_pipeline::label::{RecordOutcome, parse_event};

#[tokio::test]
async fn presign_upload_label_and_poll_like_a_browser() {
    let h = Harness::start().await;
    let photo = fixture("chelsea.png");
    let created = h
        .upload("chelsea the cat.png", "image/png", photo.clone())
        .await;

    let id = created["id"].as_str().unwrap();
    let key = format!("uploads/anonymous/{id}.png");
    let result_key = created["result"]["key"].as_str().unwrap();
    assert_eq!(result_key, format!("labels/anonymous/{id}.json"));
    assert!(created["expires_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(created["upload"]["method"], "PUT");
    assert_eq!(created["upload"]["headers"]["content-type"], "image/png");

    // Before labeling the result does not exist: HEAD answers "not yet".
    let head_url = created["result"]["head_url"].as_str().unwrap();
    let before = h.http.head(head_url).send().await.unwrap();
    assert!(
        matches!(before.status().as_u16(), 403 | 404),
        "{}",
        before.status()
    );

    // The stored object is the uploaded bytes, with the original name kept as metadata.
    let stored = h
        .store
        .client()
        .get_object()
        .bucket(BUCKET)
        .key(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(stored.content_type(), Some("image/png"));
    assert_eq!(
        stored
            .metadata()
            .unwrap()
            .get("original-filename")
            .map(String::as_str),
        Some("chelsea%20the%20cat%2Epng")
    );
    assert_eq!(
        stored.body.collect().await.unwrap().into_bytes().as_ref(),
        photo.as_slice()
    );

    // The S3 notification, as JSON, through the label handler.
    let payload = serde_json::to_vec(&event(vec![h.event_for(&key).await])).unwrap();
    let report = h.labels.handle_event(&parse_event(&payload).unwrap()).await;
    assert_eq!(
        report.records,
        vec![RecordOutcome::Labeled {
            key: key.clone(),
            result_key: result_key.to_string(),
            error: None
        }]
    );

    // Now HEAD answers 200 and GET returns the document.
    let after = h.http.head(head_url).send().await.unwrap();
    assert_eq!(after.status(), 200);
    let doc: serde_json::Value = h
        .http
        .get(created["result"]["get_url"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(doc["status"], "ok");
    assert_eq!(doc["source"]["key"], key);
    assert_eq!(doc["source"]["size"], photo.len());
    assert_eq!(
        doc["image"],
        json!({"width": 451, "height": 300, "format": "png"})
    );
    assert_eq!(doc["labeler"]["name"], "rekognition");
    let names: Vec<&str> = doc["Labels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["Name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Format png", "Via S3Object", "Size 451x300"]);
    assert_eq!(doc["LabelModelVersion"], "test");
    assert!(doc["timings_ms"]["total"].as_f64().unwrap() > 0.0);
}

#[tokio::test]
async fn presigned_put_refuses_another_type_or_a_bigger_body() {
    let h = Harness::start().await;
    let photo = fixture("rocket.jpg");
    let (_, created) = h
        .post_upload(
            json!({"filename": "r.jpg", "content_type": "image/jpeg", "size": photo.len()}),
        )
        .await;
    let url = created["upload"]["url"].as_str().unwrap();

    let wrong_type = h
        .http
        .put(url)
        .header("content-type", "image/png")
        .body(photo.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(
        wrong_type.status(),
        403,
        "a different Content-Type than signed"
    );

    let mut bigger = photo.clone();
    bigger.extend_from_slice(&[0u8; 1024]);
    let too_big = h
        .http
        .put(url)
        .header("content-type", "image/jpeg")
        .body(bigger)
        .send()
        .await
        .unwrap();
    assert_eq!(too_big.status(), 403, "a bigger body than signed");

    // One hex digit of the signature changed.
    let signature_at = url.find("X-Amz-Signature=").unwrap() + "X-Amz-Signature=".len();
    let flipped = if &url[signature_at..signature_at + 1] == "0" {
        "1"
    } else {
        "0"
    };
    let tampered = format!(
        "{}{flipped}{}",
        &url[..signature_at],
        &url[signature_at + 1..]
    );
    let bad_sig = h
        .http
        .put(&tampered)
        .header("content-type", "image/jpeg")
        .body(photo.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(bad_sig.status(), 403, "an edited signature");

    let unsigned = h
        .http
        .get(format!("{}/{BUCKET}/", h.s3.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(unsigned.status(), 403, "unsigned requests");

    // Nothing got stored by the refused attempts.
    let listed = h
        .store
        .client()
        .list_objects_v2()
        .bucket(BUCKET)
        .prefix("uploads/")
        .send()
        .await
        .unwrap();
    assert_eq!(listed.key_count(), Some(0));

    // The signed request itself works.
    assert_eq!(h.put_presigned(&created, photo).await.status(), 200);
}

#[tokio::test]
async fn presign_requests_are_validated_with_stable_codes() {
    let h = Harness::with_config(|c| c.max_upload_bytes = 1_000_000).await;
    let cases = [
        (
            json!({"filename": "a.txt", "content_type": "text/plain", "size": 10}),
            "unsupported_content_type",
        ),
        (
            json!({"filename": "a.svg", "content_type": "image/svg+xml", "size": 10}),
            "unsupported_content_type",
        ),
        (
            json!({"filename": "a.jpg", "size": 10}),
            "unsupported_content_type",
        ),
        (
            json!({"filename": "a.jpg", "content_type": "image/jpeg"}),
            "invalid_size",
        ),
        (
            json!({"filename": "a.jpg", "content_type": "image/jpeg", "size": 0}),
            "invalid_size",
        ),
        (
            json!({"filename": "a.jpg", "content_type": "image/jpeg", "size": -5}),
            "invalid_size",
        ),
        (
            json!({"filename": "a.jpg", "content_type": "image/jpeg", "size": "12"}),
            "invalid_size",
        ),
        (
            json!({"filename": "a.jpg", "content_type": "image/jpeg", "size": 1.5}),
            "invalid_size",
        ),
        (
            json!({"filename": "a.jpg", "content_type": "image/jpeg", "size": 1_000_001}),
            "too_large",
        ),
        (
            json!({"filename": 2000, "content_type": "image/jpeg", "size": 10}),
            "malformed_request",
        ),
        (json!(["not", "an", "object"]), "malformed_request"),
    ];
    for (body, code) in cases {
        let (status, answer) = h.post_upload(body.clone()).await;
        assert_eq!(status, 400, "{body} → {answer}");
        assert_eq!(answer["error"]["code"], code, "{body} → {answer}");
        assert!(!answer["error"]["message"].as_str().unwrap().is_empty());
    }

    let raw = |method: &str, path: &str, body: &'static str| {
        http::Request::builder()
            .method(method)
            .uri(path)
            .header("origin", ORIGIN)
            .body(bytes::Bytes::from_static(body.as_bytes()))
            .unwrap()
    };
    let malformed = h
        .call(raw(
            "POST",
            "/api/uploads",
            "{\"content_type\": \"image/jpeg\", ",
        ))
        .await;
    assert_eq!(malformed.status(), 400);
    let not_found = h.call(raw("POST", "/api/elsewhere", "{}")).await;
    assert_eq!(not_found.status(), 404);
    let wrong_method = h.call(raw("DELETE", "/api/uploads", "")).await;
    assert_eq!(wrong_method.status(), 405);
    // Error answers carry CORS headers too, so the browser can read the message.
    assert_eq!(
        wrong_method.headers()["access-control-allow-origin"],
        ORIGIN
    );
}

#[tokio::test]
async fn cors_is_granted_to_configured_origins_only() {
    let h = Harness::start().await;
    let preflight = |origin: &'static str| {
        http::Request::builder()
            .method("OPTIONS")
            .uri("/api/uploads")
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .body(bytes::Bytes::new())
            .unwrap()
    };
    let ok = h.call(preflight(ORIGIN)).await;
    assert_eq!(ok.status(), 204);
    assert_eq!(ok.headers()["access-control-allow-origin"], ORIGIN);
    assert!(
        ok.headers()["access-control-allow-methods"]
            .to_str()
            .unwrap()
            .contains("POST")
    );
    let other = h.call(preflight("http://evil.example")).await;
    assert!(other.headers().get("access-control-allow-origin").is_none());

    // The S3 endpoint answers the browser's preflight for the presigned PUT without credentials.
    let s3_preflight = h
        .http
        .request(
            reqwest::Method::OPTIONS,
            format!("{}/{BUCKET}/uploads/anonymous/x.jpg", h.s3.url()),
        )
        .header("origin", ORIGIN)
        .header("access-control-request-method", "PUT")
        .header("access-control-request-headers", "content-type")
        .send()
        .await
        .unwrap();
    assert!(s3_preflight.status().is_success());
    assert_eq!(
        s3_preflight.headers()["access-control-allow-origin"],
        ORIGIN
    );
    // The upload's answer lets the page read its ETag.
    let photo = fixture("rocket.jpg");
    let (_, created) = h
        .post_upload(
            json!({"filename": "r.jpg", "content_type": "image/jpeg", "size": photo.len()}),
        )
        .await;
    let mut put = h
        .http
        .put(created["upload"]["url"].as_str().unwrap())
        .header("origin", ORIGIN);
    for (name, value) in created["upload"]["headers"].as_object().unwrap() {
        put = put.header(name, value.as_str().unwrap());
    }
    let uploaded = put.body(photo).send().await.unwrap();
    assert_eq!(uploaded.status(), 200);
    assert_eq!(uploaded.headers()["access-control-allow-origin"], ORIGIN);
    assert!(
        uploaded.headers()["access-control-expose-headers"]
            .to_str()
            .unwrap()
            .to_ascii_lowercase()
            .contains("etag")
    );
}

#[tokio::test]
async fn every_record_of_an_event_gets_its_own_outcome() {
    let h = Harness::start().await;
    let good = h
        .upload("cat.png", "image/png", fixture("chelsea.png"))
        .await;
    let good_key = format!("uploads/anonymous/{}.png", good["id"].as_str().unwrap());

    // Bytes that claim to be a JPEG but are not one, an empty object, a text file renamed .jpg,
    // a key with spaces and unicode written by another tool, a result key, and a deletion.
    h.put_raw(
        "uploads/broken.jpg",
        vec![
            0xFF, 0xD8, 0xFF, 0xE0, 0, 16, b'J', b'F', b'I', b'F', 0, 1, 2, 3,
        ],
    )
    .await;
    h.put_raw("uploads/empty.jpg", Vec::new()).await;
    h.put_raw(
        "uploads/notes.jpg",
        b"this is a shopping list, not a photo\n".to_vec(),
    )
    .await;
    h.put_raw("uploads/holiday photos/café (1).png", fixture("coffee.png"))
        .await;
    h.put_raw("labels/anonymous/foreign.json", b"{}".to_vec())
        .await;

    let mut records = Vec::new();
    for key in [
        &good_key as &str,
        "uploads/broken.jpg",
        "uploads/empty.jpg",
        "uploads/notes.jpg",
        "uploads/holiday photos/café (1).png",
    ] {
        records.push(h.event_for(key).await);
    }
    records.push(h.event_for("labels/anonymous/foreign.json").await);
    records.push(object_created_record(
        BUCKET,
        "uploads/gone.jpg",
        10,
        None,
        "ObjectRemoved:Delete",
    ));
    records.push(object_created_record(
        "another-bucket",
        "uploads/x.jpg",
        10,
        None,
        "ObjectCreated:Put",
    ));
    records.push(object_created_record(
        BUCKET,
        "uploads/never-existed.jpg",
        10,
        None,
        "ObjectCreated:Put",
    ));
    let report = h.labels.handle_event(&event(records)).await;

    let outcome = |i: usize| report.records[i].clone();
    assert!(
        matches!(outcome(0), RecordOutcome::Labeled { error: None, .. }),
        "{:?}",
        outcome(0)
    );
    assert!(
        matches!(outcome(5), RecordOutcome::Ignored { .. }),
        "{:?}",
        outcome(5)
    );
    assert!(
        matches!(outcome(6), RecordOutcome::Ignored { .. }),
        "{:?}",
        outcome(6)
    );
    assert!(
        matches!(outcome(7), RecordOutcome::Ignored { .. }),
        "{:?}",
        outcome(7)
    );
    assert!(report.clone().into_result().is_ok());

    let code_of = |doc: &serde_json::Value| doc["error"]["code"].as_str().map(str::to_string);
    let broken = h.read_result("labels/broken.jpg.json").await.unwrap();
    assert_eq!(
        code_of(&broken).as_deref(),
        Some("corrupt_image"),
        "{broken}"
    );
    assert_eq!(broken["status"], "error");
    assert_eq!(broken["Labels"], json!([]));
    let empty = h.read_result("labels/empty.jpg.json").await.unwrap();
    assert_eq!(code_of(&empty).as_deref(), Some("empty_object"));
    let notes = h.read_result("labels/notes.jpg.json").await.unwrap();
    assert_eq!(code_of(&notes).as_deref(), Some("unsupported_format"));
    assert!(
        notes["error"]["message"].as_str().unwrap().contains("text"),
        "{notes}"
    );
    let missing = h
        .read_result("labels/never-existed.jpg.json")
        .await
        .unwrap();
    assert_eq!(code_of(&missing).as_deref(), Some("object_missing"));

    let unicode = h
        .read_result("labels/holiday photos/café (1).png.json")
        .await
        .unwrap();
    assert_eq!(unicode["status"], "ok", "{unicode}");
    assert_eq!(
        unicode["source"]["key"],
        "uploads/holiday photos/café (1).png"
    );
    assert_eq!(unicode["image"]["width"], 600);

    // Nothing was written for the ignored records; the foreign result was left alone.
    assert_eq!(
        h.read_result("labels/anonymous/foreign.json")
            .await
            .unwrap(),
        json!({})
    );
    assert!(
        h.read_result("labels/labels/anonymous/foreign.json.json")
            .await
            .is_none()
    );
}

#[tokio::test]
async fn an_event_exactly_as_aws_sends_it_is_handled() {
    let h = Harness::start().await;
    h.put_raw(
        "uploads/holiday photos/café (1).png",
        fixture("chelsea.png"),
    )
    .await;
    h.put_raw("uploads/rocket.jpg", fixture("rocket.jpg")).await;
    let payload = snaplabel_fixtures::read("events/s3-put-two-records.json");
    let report = h.labels.handle_event(&parse_event(&payload).unwrap()).await;
    assert_eq!(report.records.len(), 2);
    for (record, result_key) in report.records.iter().zip([
        "labels/holiday photos/café (1).png.json",
        "labels/rocket.jpg.json",
    ]) {
        assert!(
            matches!(record, RecordOutcome::Labeled { error: None, .. }),
            "{record:?}"
        );
        assert_eq!(h.read_result(result_key).await.unwrap()["status"], "ok");
    }
    assert!(parse_event(b"{\"hello\": 1}").is_err());
    assert!(parse_event(b"not json").is_err());
}

#[tokio::test]
async fn duplicate_delivery_leaves_the_document_unchanged() {
    let h = Harness::start().await;
    let created = h
        .upload("coffee.png", "image/png", fixture("coffee.png"))
        .await;
    let key = format!("uploads/anonymous/{}.png", created["id"].as_str().unwrap());
    let result_key = created["result"]["key"].as_str().unwrap().to_string();
    let record = h.event_for(&key).await;

    let first = h.labels.handle_event(&event(vec![record.clone()])).await;
    assert!(matches!(first.records[0], RecordOutcome::Labeled { .. }));
    let read_raw = || async {
        let out = h
            .store
            .client()
            .get_object()
            .bucket(BUCKET)
            .key(&result_key)
            .send()
            .await
            .unwrap();
        out.body.collect().await.unwrap().into_bytes()
    };
    let before = read_raw().await;
    let calls_before = h.rekognition.calls.lock().unwrap().len();

    // The same event twice more, once inside a two-record event with itself.
    let second = h
        .labels
        .handle_event(&event(vec![record.clone(), record.clone()]))
        .await;
    assert!(
        second
            .records
            .iter()
            .all(|r| matches!(r, RecordOutcome::AlreadyLabeled { .. })),
        "{second:?}"
    );
    assert_eq!(
        read_raw().await,
        before,
        "the document is byte-for-byte the same"
    );
    assert_eq!(
        h.rekognition.calls.lock().unwrap().len(),
        calls_before,
        "no second labeling"
    );

    // New bytes at the same key (a re-upload) are labeled again.
    h.put_raw(&key, fixture("chelsea.png")).await;
    let third = h
        .labels
        .handle_event(&event(vec![h.event_for(&key).await]))
        .await;
    assert!(
        matches!(third.records[0], RecordOutcome::Labeled { .. }),
        "{third:?}"
    );
    assert_eq!(
        h.read_result(&result_key).await.unwrap()["image"]["width"],
        451
    );
}

#[tokio::test]
async fn size_and_pixel_limits_are_checked_before_labeling() {
    let h = Harness::with_config(|c| {
        c.max_upload_bytes = 200_000;
        c.max_pixels = 200_000;
    })
    .await;
    h.put_raw("uploads/big.png", fixture("astronaut.png")).await; // 791 KB
    h.put_raw("uploads/many-pixels.jpg", fixture("rocket.jpg"))
        .await; // 640×427 = 273k pixels, 112 KB
    let report = h
        .labels
        .handle_event(&event(vec![
            h.event_for("uploads/big.png").await,
            h.event_for("uploads/many-pixels.jpg").await,
        ]))
        .await;
    assert!(
        report
            .records
            .iter()
            .all(|r| matches!(r, RecordOutcome::Labeled { error: Some(_), .. })),
        "{report:?}"
    );
    assert_eq!(
        h.read_result("labels/big.png.json").await.unwrap()["error"]["code"],
        "too_large"
    );
    assert_eq!(
        h.read_result("labels/many-pixels.jpg.json").await.unwrap()["error"]["code"],
        "too_many_pixels"
    );
    assert!(
        h.rekognition.calls.lock().unwrap().is_empty(),
        "nothing reached the labeler"
    );
}

#[tokio::test]
async fn rekognition_gets_jpeg_and_png_by_reference_and_the_rest_converted() {
    let h = Harness::start().await;
    let cat = image::load_from_memory(&fixture("chelsea.png")).unwrap();
    let encode = |format: image::ImageFormat| {
        let mut out = std::io::Cursor::new(Vec::new());
        cat.write_to(&mut out, format).unwrap();
        out.into_inner()
    };
    let tiny = {
        let mut out = std::io::Cursor::new(Vec::new());
        cat.thumbnail(60, 40)
            .write_to(&mut out, image::ImageFormat::Png)
            .unwrap();
        out.into_inner()
    };
    let uploads = [
        ("uploads/a.jpg", fixture("rocket.jpg"), "jpeg", true),
        ("uploads/b.png", fixture("chelsea.png"), "png", true),
        (
            "uploads/c.webp",
            encode(image::ImageFormat::WebP),
            "jpeg",
            false,
        ),
        (
            "uploads/d.gif",
            encode(image::ImageFormat::Gif),
            "jpeg",
            false,
        ),
        (
            "uploads/e.bmp",
            encode(image::ImageFormat::Bmp),
            "jpeg",
            false,
        ),
        (
            "uploads/f.tiff",
            encode(image::ImageFormat::Tiff),
            "jpeg",
            false,
        ),
        ("uploads/g.png", tiny, "jpeg", false),
    ];
    let mut records = Vec::new();
    for (key, bytes, _, _) in &uploads {
        h.put_raw(key, bytes.clone()).await;
        records.push(h.event_for(key).await);
    }
    let report = h.labels.handle_event(&event(records)).await;
    assert!(
        report
            .records
            .iter()
            .all(|r| matches!(r, RecordOutcome::Labeled { error: None, .. })),
        "{report:?}"
    );
    let calls = h.rekognition.calls.lock().unwrap().clone();
    for ((key, _, sent_format, by_reference), (format, source)) in uploads.iter().zip(calls) {
        assert_eq!(&format, sent_format, "{key}");
        assert_eq!(
            matches!(source, ImageSource::S3Object { .. }),
            *by_reference,
            "{key}: {source:?}"
        );
    }
    // The 60×40 PNG was upscaled to Rekognition's 80-pixel minimum; the reported image is the original.
    let tiny_doc = h.read_result("labels/g.png.json").await.unwrap();
    assert!(
        tiny_doc["Labels"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["Name"] == "Size 120x80"),
        "{tiny_doc}"
    );
    assert_eq!(tiny_doc["image"]["width"], 60);
}

#[tokio::test]
async fn rekognition_refusals_become_failure_documents() {
    let h = Harness::start().await;
    // A PNG whose pixel data is cut off: the header probes fine, Rekognition (here: its stand-in
    // decoding it) refuses it, and the document says so.
    let png = fixture("chelsea.png");
    h.put_raw("uploads/cut.png", png[..png.len() / 3].to_vec())
        .await;
    let report = h
        .labels
        .handle_event(&event(vec![h.event_for("uploads/cut.png").await]))
        .await;
    assert!(
        matches!(
            report.records[0],
            RecordOutcome::Labeled { error: Some(_), .. }
        ),
        "{report:?}"
    );
    let doc = h.read_result("labels/cut.png.json").await.unwrap();
    assert_eq!(doc["status"], "error");
    assert!(
        doc["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Rekognition"),
        "{doc}"
    );
}

#[tokio::test]
async fn store_failures_ask_for_a_retry_instead_of_losing_the_upload() {
    let h = Harness::start().await;
    h.put_raw("uploads/a.png", fixture("chelsea.png")).await;
    let record = h.event_for("uploads/a.png").await;
    // Stop the S3 endpoint: nothing can be read or written.
    let s3_url = h.s3.url();
    let Harness { s3, labels, .. } = h;
    s3.shutdown().await;
    let report = labels.handle_event(&event(vec![record])).await;
    assert!(
        matches!(report.records[0], RecordOutcome::Failed { .. }),
        "{report:?} ({s3_url})"
    );
    let err = report.into_result().unwrap_err();
    assert!(err.to_string().contains("uploads/a.png"), "{err}");
}

#[tokio::test]
async fn the_local_s3_serves_whole_objects_and_ranges_byte_exact() {
    let h = Harness::start().await;
    let photo = fixture("astronaut.png");
    h.put_raw("uploads/x/whole.png", photo.clone()).await;
    let client = h.store.client();
    let whole = client
        .get_object()
        .bucket(BUCKET)
        .key("uploads/x/whole.png")
        .send()
        .await
        .unwrap();
    assert_eq!(whole.content_length(), Some(photo.len() as i64));
    let bytes = whole.body.collect().await.unwrap().into_bytes();
    assert!(bytes == photo[..], "whole object differs");
    // Ranges keep s3s-fs's own streaming read.
    let part = client
        .get_object()
        .bucket(BUCKET)
        .key("uploads/x/whole.png")
        .range("bytes=1000-1999")
        .send()
        .await
        .unwrap();
    assert_eq!(part.content_length(), Some(1000));
    let bytes = part.body.collect().await.unwrap().into_bytes();
    assert!(bytes == photo[1000..2000], "range differs");
}

/// Bucket notifications carry what S3's events carry: the event name, and the size of the object
/// as stored, whether it was put, assembled from parts or copied.
#[tokio::test]
async fn the_local_s3_reports_each_creation_with_its_stored_size() {
    use aws_sdk_s3::primitives::ByteStream;
    use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
    use snaplabel_localaws::local_fs::{Listener, ObjectCreated};
    use snaplabel_localaws::s3;

    let dir = tempfile::tempdir().unwrap();
    let seen: std::sync::Arc<std::sync::Mutex<Vec<ObjectCreated>>> = Default::default();
    let record = seen.clone();
    let listener: Listener = std::sync::Arc::new(move |created| {
        record.lock().unwrap().push(created);
        Box::pin(async {})
    });
    let server = s3::start_notifying(
        s3::LocalS3Config {
            root: dir.path().to_path_buf(),
            credentials: snaplabel_localaws::Credentials::new(
                common::ACCESS_KEY,
                common::SECRET_KEY,
            ),
            public_host: None,
            buckets: vec![BUCKET.into()],
            cors_origins: Vec::new(),
        },
        snaplabel_localaws::server::bind_loopback(0).await.unwrap(),
        Some(listener),
    )
    .unwrap();
    let sdk = snaplabel_pipeline::aws::static_sdk_config(
        common::ACCESS_KEY,
        common::SECRET_KEY,
        "us-east-1",
    );
    let client = snaplabel_pipeline::aws::s3_client(&sdk, Some(&server.url()));

    let photo = fixture("chelsea.png");
    client
        .put_object()
        .bucket(BUCKET)
        .key("uploads/put.png")
        .body(ByteStream::from(photo.clone()))
        .send()
        .await
        .unwrap();

    let upload = client
        .create_multipart_upload()
        .bucket(BUCKET)
        .key("uploads/parts.png")
        .send()
        .await
        .unwrap();
    let upload_id = upload.upload_id().unwrap();
    // Every part but the last must be at least 5 MiB, as in S3.
    let first: Vec<u8> = photo.iter().cycle().take(5 << 20).copied().collect();
    let mut parts = Vec::new();
    for (number, part) in [(1, first.as_slice()), (2, photo.as_slice())] {
        let part = client
            .upload_part()
            .bucket(BUCKET)
            .key("uploads/parts.png")
            .upload_id(upload_id)
            .part_number(number)
            .body(ByteStream::from(part.to_vec()))
            .send()
            .await
            .unwrap();
        parts.push(
            CompletedPart::builder()
                .part_number(number)
                .set_e_tag(part.e_tag().map(str::to_string))
                .build(),
        );
    }
    client
        .complete_multipart_upload()
        .bucket(BUCKET)
        .key("uploads/parts.png")
        .upload_id(upload_id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(parts))
                .build(),
        )
        .send()
        .await
        .unwrap();

    client
        .copy_object()
        .bucket(BUCKET)
        .key("uploads/copy.png")
        .copy_source(format!("{BUCKET}/uploads/put.png"))
        .send()
        .await
        .unwrap();

    let seen = seen.lock().unwrap().clone();
    let summary: Vec<(&str, &str, u64)> = seen
        .iter()
        .map(|c| (c.key.as_str(), c.event_name, c.size))
        .collect();
    let size = photo.len() as u64;
    assert_eq!(
        summary,
        [
            ("uploads/put.png", "ObjectCreated:Put", size),
            (
                "uploads/parts.png",
                "ObjectCreated:CompleteMultipartUpload",
                (5 << 20) + size
            ),
            ("uploads/copy.png", "ObjectCreated:Copy", size),
        ]
    );
    // A put and a copy name the stored object's ETag (s3s-fs reports none for an assembled
    // multipart object).
    assert!(seen[0].etag.as_deref().is_some_and(|e| !e.is_empty()));
    assert_eq!(
        seen[2].etag, seen[0].etag,
        "a copy has its source's content"
    );
}
