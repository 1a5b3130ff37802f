//! `snaplabel dev` killed with SIGKILL while uploads are queued loses none of them.

use serde_json::{Value, json};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn start(data: &std::path::Path, port: u16, s3_port: u16) -> Child {
    Command::new(env!("CARGO_BIN_EXE_snaplabel"))
        .args(["dev", "--port", &port.to_string(), "--s3-port", &s3_port.to_string(), "--data-dir"])
        .arg(data)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

async fn wait_ready(http: &reqwest::Client, app: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while http.get(format!("{app}/healthz")).send().await.is_err() {
        assert!(Instant::now() < deadline, "snaplabel dev did not come up");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn sigkill_mid_queue_then_restart_labels_every_upload() {
    let dir = tempfile::tempdir().unwrap();
    let (port, s3_port) = (free_port(), free_port());
    let app = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let mut child = start(dir.path(), port, s3_port);
    wait_ready(&http, &app).await;

    let config: Value = http.get(format!("{app}/config.json")).send().await.unwrap().json().await.unwrap();
    let id: Value = http
        .post(format!("{app}/"))
        .header("x-amz-target", "AWSCognitoIdentityService.GetId")
        .header("content-type", "application/x-amz-json-1.1")
        .body(json!({"IdentityPoolId": config["identity"]["pool_id"]}).to_string())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let me = id["IdentityId"].as_str().unwrap().to_string();

    let photo = std::fs::read(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/photos/grace_hopper.jpg")).unwrap();
    let mut created = Vec::new();
    for i in 0..12 {
        let c: Value = http
            .post(format!("{app}/api/uploads"))
            .header("x-snaplabel-identity", &me)
            .json(&json!({"filename": format!("hopper-{i}.jpg"), "content_type": "image/jpeg", "size": photo.len()}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let mut put = http.put(c["upload"]["url"].as_str().unwrap()).body(photo.clone());
        for (name, value) in c["upload"]["headers"].as_object().unwrap() {
            put = put.header(name, value.as_str().unwrap());
        }
        assert_eq!(put.send().await.unwrap().status(), 200);
        created.push(c);
    }
    // Killed while (most of) the queue is still waiting.
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let labeled_before = created.iter().filter(|c| {
        let key = c["result"]["key"].as_str().unwrap();
        dir.path().join("s3/snaplabel").join(key).exists()
    });
    eprintln!("{} of 12 labeled before the kill", labeled_before.count());

    let mut child = start(dir.path(), port, s3_port);
    wait_ready(&http, &app).await;
    let deadline = Instant::now() + Duration::from_secs(120);
    for c in &created {
        loop {
            let status = http.head(c["result"]["head_url"].as_str().unwrap()).send().await.unwrap().status();
            if status == 200 {
                break;
            }
            assert!(Instant::now() < deadline, "an upload was lost: {}", c["id"]);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let doc: Value = http.get(c["result"]["get_url"].as_str().unwrap()).send().await.unwrap().json().await.unwrap();
        assert_eq!(doc["status"], "ok", "{doc}");
    }
    child.kill().unwrap();
    child.wait().unwrap();
}
